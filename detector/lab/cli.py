"""`vpndetect lab`: build the traffic lab's captures and labels."""

from __future__ import annotations

import shutil
import sys
import time
from pathlib import Path

import click

from detector.lab.variant import all_variants


def _missing_binaries(variant) -> list[str]:
    return [b for b in variant.binaries if shutil.which(b) is None]


@click.group()
def lab():
    """Real VPN, proxy and normal traffic between network namespaces, captured and labelled."""


@lab.command("list")
@click.option("--label", type=click.Choice(["vpn", "proxy", "normal"]), help="Only variants with this label.")
def list_variants(label):
    """Show the variants and whether their Debian packages are installed."""
    variants = [v for v in all_variants().values() if label is None or v.label == label]
    missing_all: set[str] = set()
    for v in sorted(variants, key=lambda v: (v.label, v.protocol, v.name)):
        missing = v.missing_packages()
        missing_all.update(missing)
        state = "ready" if not missing else "missing " + " ".join(missing)
        port = v.default_port if v.default_port else "-"
        click.echo(f"{v.name:26s} {v.label:6s} {v.protocol:12s} {v.implementation:28s} {str(port):>5s}  {state}")
    counts = {lbl: sum(1 for v in variants if v.label == lbl) for lbl in ("vpn", "proxy", "normal")}
    click.echo(f"{len(variants)} variants: " + ", ".join(f"{n} {lbl}" for lbl, n in counts.items()))
    if missing_all:
        click.echo(f"to install the missing packages: apt-get install --no-install-recommends {' '.join(sorted(missing_all))}")


@lab.command("run")
@click.option("--variants", "names", default="", help="Comma-separated variant names (default: all).")
@click.option("--label", type=click.Choice(["vpn", "proxy", "normal"]), help="Only variants with this label.")
@click.option("--sessions", default=12, show_default=True, type=click.IntRange(1, 50), help="Sessions per variant.")
@click.option("--seed", default=1, show_default=True, type=int, help="Base seed of every choice the lab makes.")
@click.option("--out", "out_dir", default="pcaps/lab", show_default=True, type=click.Path(file_okay=False))
@click.option("--work", "work_root", default="lab-work", show_default=True, type=click.Path(file_okay=False),
              help="Folder for configs, keys and daemon state (nothing is written outside it and --out).")
@click.option("--jobs", default=4, show_default=True, type=click.IntRange(1, 4),
              help="Sessions run at once (each in its own namespaces).")
@click.option("--retries", default=1, show_default=True, type=click.IntRange(0, 3), help="Retries of a failed session.")
@click.option("--keep-work", is_flag=True, help="Keep the work folder (configs and daemon logs) for debugging.")
def run(names, label, sessions, seed, out_dir, work_root, jobs, retries, keep_work):
    """Run the variants (as root on Linux) and write captures plus labels.csv to --out."""
    from detector.lab.netns import LabError, is_root

    if not is_root():
        raise click.ClickException("the lab needs root on Linux (network namespaces); run it with sudo")
    registry = all_variants()
    if names:
        wanted = [n.strip() for n in names.split(",") if n.strip()]
        unknown = [n for n in wanted if n not in registry]
        if unknown:
            raise click.ClickException(f"unknown variant(s): {', '.join(unknown)} (see `vpndetect lab list`)")
        variants = [registry[n] for n in wanted]
    else:
        variants = list(registry.values())
    if label:
        variants = [v for v in variants if v.label == label]
    if not variants:
        raise click.ClickException("no variant selected")
    missing = sorted({p for v in variants for p in v.missing_packages()} | {b for v in variants for b in _missing_binaries(v)})
    base = sorted(p for p in ("tcpdump", "iproute2", "ethtool", "nginx-light", "openssl", "procps", "bind9-dnsutils", "dnsmasq-base") if not _have_base(p))
    if missing or base:
        raise click.ClickException(
            f"missing packages for {', '.join(v.name for v in variants if v.missing_packages()) or 'the lab'}: "
            f"apt-get install --no-install-recommends {' '.join(sorted(set(missing) | set(base)))}")
    from detector.lab.runner import run_lab

    t0 = time.monotonic()
    try:
        result = run_lab(variants, sessions, seed, Path(out_dir), Path(work_root), jobs=jobs, retries=retries,
                         keep_work=keep_work, log=lambda m: click.echo(m, err=False))
    except LabError as exc:
        raise click.ClickException(str(exc).splitlines()[0])
    except KeyboardInterrupt:
        click.echo("interrupted: lab torn down", err=True)
        sys.exit(130)
    elapsed = time.monotonic() - t0
    click.echo(f"{len(result.stats)} captures, {sum(s['flows'] for s in result.stats)} flows, "
               f"{sum(s['packets'] for s in result.stats)} packets in {elapsed:.0f} s; labels in {Path(out_dir) / 'labels.csv'}")
    if result.failures:
        first, why = result.failures[0]
        raise click.ClickException(f"{len(result.failures)} session(s) failed, first {first}: {why.splitlines()[0][:300]}")


@lab.command("summary")
@click.option("--out", "out_dir", default="pcaps/lab", show_default=True, type=click.Path(exists=True, file_okay=False))
def summary(out_dir):
    """Captures, flows and packets per variant of a built dataset (from its captures.csv and labels.csv)."""
    import csv

    out = Path(out_dir)
    with open(out / "captures.csv", newline="") as f:
        caps = list(csv.DictReader(f))
    with open(out / "labels.csv", newline="") as f:
        labels = list(csv.DictReader(f))
    per: dict[str, dict] = {}
    for c in caps:
        v = per.setdefault(c["variant"], {"label": c["label"], "protocol": c["protocol"], "captures": 0, "flows": 0,
                                          "packets": 0, "conditions": set(), "ports": set()})
        v["captures"] += 1
        v["flows"] += int(c["flows"])
        v["packets"] += int(c["packets"])
        v["conditions"].add(c["condition"])
        v["ports"].add(c["server_port"])
    click.echo(f"{'variant':26s} {'label':6s} {'protocol':12s} {'captures':>8s} {'flows':>6s} {'packets':>8s}  conditions / ports")
    for name, v in sorted(per.items(), key=lambda kv: (kv[1]["label"], kv[0])):
        click.echo(f"{name:26s} {v['label']:6s} {v['protocol']:12s} {v['captures']:8d} {v['flows']:6d} {v['packets']:8d}  "
                   f"{','.join(sorted(v['conditions']))} / {','.join(sorted(v['ports'], key=int))}")
    size = sum(p.stat().st_size for p in out.glob("*.pcap.gz"))
    by_label = {lbl: sum(1 for v in per.values() if v["label"] == lbl) for lbl in ("vpn", "proxy", "normal")}
    kinds = {r["protocol"] for r in labels if r["label"] == "normal"}
    click.echo(f"{len(per)} variants ({by_label['vpn']} vpn, {by_label['proxy']} proxy, {by_label['normal']} normal; "
               f"{len(kinds)} normal protocols), {len(caps)} captures, {sum(v['flows'] for v in per.values())} flows, "
               f"{sum(v['packets'] for v in per.values())} packets, {size / 1e6:.1f} MB compressed, "
               f"{len(labels)} label rows")


def _have_base(pkg: str) -> bool:
    binary = {"iproute2": "ip", "nginx-light": "nginx", "procps": "sysctl", "bind9-dnsutils": "dig",
              "dnsmasq-base": "dnsmasq"}.get(pkg, pkg)
    return shutil.which(binary) is not None or Path(f"/usr/sbin/{binary}").exists()
