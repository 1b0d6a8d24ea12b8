"""The traffic lab: a quick end-to-end run of three variants, plus the label-matching rules."""

from __future__ import annotations

import csv
import os
import shutil
from pathlib import Path

import pytest

from detector.lab.flows import Flow, match_flows
from detector.lab.netns import lab_namespaces
from detector.lab.runner import plan_sessions
from detector.lab.variant import LABELS, all_variants

QUICK = ("wireguard", "shadowsocks", "https_python")


def _row(ip, port, transport, protocol="x"):
    return {"server_ip": ip, "server_port": port, "transport": transport, "protocol": protocol}


def test_exact_port_row_beats_wildcard_row():
    rows = [_row("10.99.0.2", "*", "udp", "dtls"), _row("10.99.0.2", 53, "udp", "dns")]
    dns = Flow("udp", "10.99.0.1", 40000, "10.99.0.2", 53)
    dtls = Flow("udp", "10.99.0.1", 40001, "10.99.0.2", 443)
    other = Flow("tcp", "10.99.0.1", 40002, "10.99.0.2", 22)
    matched, unmatched, ambiguous = match_flows(rows, [dns, dtls, other])
    assert [(f.b_port, r["protocol"]) for f, r in matched] == [(53, "dns"), (443, "dtls")]
    assert unmatched == [other] and ambiguous == []


def test_every_variant_has_a_random_port_session_and_all_conditions():
    variants = list(all_variants().values())
    plans = plan_sessions(variants, 3, seed=7)
    for v in variants:
        mine = [p for p in plans if p.variant is v]
        assert any(p.random_port for p in mine) or not v.random_port
        assert {p.condition for p in mine} == {"lan", "wan30", "wan150loss1"}
    assert plans == plan_sessions(variants, 3, seed=7)  # seeds make the plan reproducible


def test_registry_uses_known_labels():
    assert {v.label for v in all_variants().values()} <= set(LABELS)


def _lab_ready() -> str | None:
    if os.geteuid() != 0:
        return "needs root"
    if not os.path.exists("/proc/self/ns/net") or shutil.which("ip") is None:
        return "needs network namespaces and iproute2"
    for tool in ("tcpdump", "ethtool", "nginx", "openssl", "dig", "dnsmasq"):
        if shutil.which(tool) is None and not os.path.exists(f"/usr/sbin/{tool}"):
            return f"{tool} is not installed"
    registry = all_variants()
    missing = sorted({p for name in QUICK for p in registry[name].missing_packages()})
    if missing:
        return "missing packages: " + " ".join(missing)
    return None


@pytest.mark.root
def test_three_variants_end_to_end(tmp_path):
    why = _lab_ready()
    if why:
        pytest.skip(why)
    from detector.lab.runner import run_lab

    registry = all_variants()
    out, work = tmp_path / "out", tmp_path / "work"
    result = run_lab([registry[n] for n in QUICK], sessions=1, seed=11, out_dir=out, work_root=work,
                     retries=0, log=lambda m: None)

    # The payload went through: a session only succeeds when the inner server's bodies arrived intact.
    assert result.failures == []
    assert sorted(s["variant"] for s in result.stats) == sorted(QUICK)

    with open(out / "labels.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    captures = sorted(out.glob("*.pcap.gz"))
    assert {c.name for c in captures} == {r["capture"] for r in rows}
    by_capture = {}
    for r in rows:
        by_capture.setdefault(r["capture"], []).append(r)
    assert {by_capture[f"{n}_00.pcap.gz"][0]["label"] for n in QUICK} == {"vpn", "proxy", "normal"}

    # Every flow the packet core sees matches exactly one label row of its capture.
    try:
        from features import FlowReader
    except ImportError:  # the packet core is optional for this test; the lab's own reader is the fallback
        FlowReader = None
    if FlowReader is not None:
        df = FlowReader([str(c) for c in captures]).to_pandas()
        assert len(df) > 0
        for rec in df.itertuples():
            flow = Flow(rec.transport, rec.src_ip, int(rec.src_port), rec.dst_ip, int(rec.dst_port))
            matched, unmatched, ambiguous = match_flows(by_capture[Path(rec.capture).name], [flow])
            assert len(matched) == 1, f"{Path(rec.capture).name}: {flow.describe()} has no single label row"
    for name in QUICK:
        main = [r for r in by_capture[f"{name}_00.pcap.gz"] if r["role"] == "main"]
        assert main and main[0]["protocol"] == registry[name].protocol

    # Nothing left behind: no namespace, no process in a namespace the lab made, no work folder.
    from detector.lab import netns

    assert not (netns._EVER_CREATED & set(lab_namespaces()))
    assert netns.EVER_INODES and netns.leaked_processes() == []
    assert not any(work.iterdir())


DATASET = Path(__file__).resolve().parent.parent / "pcaps" / "lab"


@pytest.mark.skipif(not (DATASET / "labels.csv").exists(), reason="the lab dataset is not built")
def test_committed_dataset_is_complete_and_fully_labelled():
    with open(DATASET / "labels.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    captures = sorted(DATASET.glob("*.pcap.gz"))
    assert {c.name for c in captures} == {r["capture"] for r in rows}
    assert sum(c.stat().st_size for c in captures) <= 40 * 1024 * 1024

    mains = [r for r in rows if r["role"] == "main"]
    variants = {r["variant"]: r["label"] for r in mains}
    assert sum(1 for lbl in variants.values() if lbl in ("vpn", "proxy")) >= 28
    assert sum(1 for lbl in variants.values() if lbl == "normal") >= 15
    for variant in variants:
        sessions = {r["capture"]: r for r in mains if r["variant"] == variant}
        assert len(sessions) >= 3
        assert {r["condition"] for r in sessions.values()} >= {"lan", "wan30", "wan150loss1"}

    # Every flow of every capture has exactly one ground-truth row.
    try:
        from features import FlowReader
    except ImportError:
        FlowReader = None
    by_capture = {}
    for r in rows:
        by_capture.setdefault(r["capture"], []).append(r)
    if FlowReader is not None:
        df = FlowReader([str(c) for c in captures]).to_pandas()
        flows = [(Path(rec.capture).name, Flow(rec.transport, rec.src_ip, int(rec.src_port), rec.dst_ip, int(rec.dst_port)))
                 for rec in df.itertuples()]
    else:
        from detector.lab.flows import read_flows

        flows = [(c.name, f) for c in captures for f in read_flows(c)[0]]
    bad = []
    for name, flow in flows:
        matched, _, _ = match_flows(by_capture[name], [flow])
        if len(matched) != 1:
            bad.append(f"{name}: {flow.describe()}")
    assert bad == []


def test_lab_run_refuses_without_root_and_names_missing_packages(monkeypatch):
    from click.testing import CliRunner

    from detector.lab import cli as lab_cli
    from detector.lab import netns
    from detector.lab.variant import Variant

    monkeypatch.setattr(netns, "is_root", lambda: False)
    result = CliRunner().invoke(lab_cli.lab, ["run", "--variants", "wireguard"])
    assert result.exit_code != 0 and "needs root" in result.output and "Traceback" not in result.output

    fake = Variant("fake_vpn", "vpn", "openvpn", "nothing", ("no-such-package-xyz",), 1194, lambda s: None)
    monkeypatch.setattr(netns, "is_root", lambda: True)
    monkeypatch.setattr(lab_cli, "all_variants", lambda: {"fake_vpn": fake})
    result = CliRunner().invoke(lab_cli.lab, ["run", "--variants", "fake_vpn"])
    assert result.exit_code != 0
    assert "apt-get install --no-install-recommends no-such-package-xyz" in result.output
    listing = CliRunner().invoke(lab_cli.lab, ["list"])
    assert "missing no-such-package-xyz" in listing.output
