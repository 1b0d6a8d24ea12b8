"""`vpndetect sniff`: watch an interface and report VPN and proxy flows within their first packets."""

from __future__ import annotations

import os
import sys

import click

from detector.commands.common import EXIT_BAD_INPUT, fail


def _drop_privileges(user: str) -> None:
    import pwd
    try:
        entry = pwd.getpwnam(user)
    except KeyError:
        fail(f"--user: no such user: {user}")
    try:
        os.setgroups([])
        os.setgid(entry.pw_gid)
        os.setuid(entry.pw_uid)
    except PermissionError:
        fail(f"--user: cannot switch to {user} (only root can)")


@click.command()
@click.option("-i", "--interface", "iface", required=True, help="Interface to capture on (e.g. eth0).")
@click.option("--bpf", default=None, metavar="FILTER", help="tcpdump filter expression, run in the kernel.")
@click.option("--early-packets", default=10, show_default=True, type=click.IntRange(1, 32),
              help="A flow gets its early verdict once it has this many packets.")
@click.option("--format", "fmt", type=click.Choice(("table", "jsonl")), default=None,
              help="table for people (live-updating on a terminal), jsonl for machines: one event per verdict "
                   "(default: jsonl when -o ends in .jsonl/.json, else table).")
@click.option("-o", "--output", default=None, type=click.Path(dir_okay=False), help="Write events to this file.")
@click.option("--duration", default=None, type=click.FloatRange(min=0, min_open=True),
              help="Stop after this many seconds (default: until SIGINT/SIGTERM).")
@click.option("--write-pcap", default=None, type=click.Path(dir_okay=False),
              help="Also write every captured packet to this pcap file (nanosecond timestamps).")
@click.option("--alerts-only", is_flag=True, help="Report only vpn and proxy verdicts.")
@click.option("--idle-timeout", default=120.0, show_default=True, type=click.FloatRange(min=0, min_open=True),
              help="Seconds without packets after which a flow ends (by the wall clock).")
@click.option("--active-timeout", default=1800.0, show_default=True, type=click.FloatRange(min=0, min_open=True),
              help="Seconds after its first packet at which a flow is cut.")
@click.option("--max-flows", default=500_000, show_default=True, type=click.IntRange(min=1),
              help="Open flows kept at most; the least recently active one is evicted past it.")
@click.option("--user", default=None, help="Drop root privileges to this user once the capture socket is open.")
@click.option("--model", "model_dir", type=click.Path(exists=True, file_okay=False), default=None,
              help="Folder of a model made by `vpndetect train` (default: the shipped model).")
@click.option("--detector", "detector_kind", type=click.Choice(("auto", "model", "signatures")), default="auto",
              show_default=True, help="auto: the model when there is one, else the handshake signatures alone.")
@click.option("--all-columns", is_flag=True, help="Put every feature column in the jsonl events.")
@click.option("--explain", type=click.Choice(("final", "all", "none")), default="final", show_default=True,
              help="Which verdicts carry the model's per-feature explanation (its costliest step); signature "
                   "evidence is always there.")
@click.option("--ring-blocks", default=64, show_default=True, type=click.IntRange(2, 4096),
              help="Blocks in the TPACKET_V3 ring.")
@click.option("--block-size", default=1 << 20, show_default=True, type=click.IntRange(4096, 1 << 27),
              help="Bytes per ring block (a multiple of the page size).")
@click.option("--retire-ms", default=50, show_default=True, type=click.IntRange(1, 10_000),
              help="A block that is not full is handed over after this many milliseconds.")
@click.option("--backend", type=click.Choice(("auto", "tpacket", "scapy")), default="auto", show_default=True,
              help="Capture backend: TPACKET_V3 ring on Linux, scapy elsewhere.")
def sniff(iface, bpf, early_packets, fmt, output, duration, write_pcap, alerts_only, idle_timeout, active_timeout,
          max_flows, user, model_dir, detector_kind, all_columns, explain, ring_blocks, block_size, retire_ms,
          backend):
    """Capture on an interface and report VPN and proxy flows as they happen.

    Each flow gets an early verdict once it has --early-packets packets and a final one when it ends (FIN/RST,
    idle or active timeout by the wall clock, or shutdown). SIGINT/SIGTERM end every open flow and print a
    summary: packets, flows, verdicts, kernel drops.
    """
    from detector.live.capture import LiveError, PcapWriter, open_source
    from detector.live.engine import LiveFlows
    from detector.live.output import make_output, summary_text
    from detector.live.sniffer import Sniffer
    from detector.live.verdicts import ModelUnavailable, load_verdict_detector

    # One core, one thread: LightGBM's OpenMP threads would only wait on each other (and cost ~8 ms a call
    # when the other cores are busy); set before the model library loads.
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    if user:
        import pwd
        try:
            pwd.getpwnam(user)
        except KeyError:
            fail(f"--user: no such user: {user}")
    if fmt is None:
        fmt = "jsonl" if output and output.endswith((".jsonl", ".json")) else "table"
    try:
        source = open_source(iface, bpf, backend, block_size=block_size, blocks=ring_blocks, retire_ms=retire_ms)
    except LiveError as exc:
        fail(str(exc))
    pcap = out = None
    try:
        try:
            detector = load_verdict_detector(model_dir, detector_kind,
                                             warn=lambda m: click.echo(f"vpndetect: warning: {m}", err=True))
        except ModelUnavailable as exc:
            fail(str(exc))
        flows = LiveFlows(detector, early_packets, idle_timeout, active_timeout, max_flows, capture=iface,
                          keep_features=all_columns, explain=explain)
        flows.warm_up()
        try:
            if write_pcap:
                pcap = PcapWriter(write_pcap, source.linktype or 1)
            out = make_output(fmt, output)
        except OSError as exc:
            fail(f"{exc.filename}: {exc.strerror}")
        try:
            source.start()
        except LiveError as exc:
            fail(str(exc))
        if user:
            _drop_privileges(user)
        click.echo(f"vpndetect: capturing on {iface} ({source.backend}"
                   f"{', filter ' + repr(bpf) if bpf else ''}), verdicts by {getattr(detector, 'name', 'model')}"
                   f"{', as ' + user if user else ''}; Ctrl-C to stop", err=True)
        sniffer = Sniffer(source, flows, out, alerts_only=alerts_only, duration=duration, pcap=pcap)
        try:
            stats = sniffer.run()
        except BrokenPipeError:
            devnull = os.open(os.devnull, os.O_WRONLY)
            os.dup2(devnull, sys.stdout.fileno())
            sys.exit(0)
        out.summary(stats)
    finally:
        if out is not None:
            try:
                out.close()
            except BrokenPipeError:
                pass
        if pcap is not None:
            pcap.close()
        source.close()
    click.echo(summary_text(stats), err=True)
    if stats.get("error"):
        click.echo(f"vpndetect: error: {stats['error']}; capture stopped", err=True)
        sys.exit(1)
    if stats.get("kernel_dropped"):
        click.echo(f"vpndetect: warning: the kernel dropped {stats['kernel_dropped']} packets (ring full); "
                   f"try a bigger ring (--ring-blocks) or a --bpf filter", err=True)


__all__ = ["sniff", "EXIT_BAD_INPUT"]
