"""Live capture: the flow side on replayed batches, the command's errors, and (as root) real traffic between
network namespaces: a WireGuard tunnel and an HTTPS download from the lab, sniffed on the client's veth."""

from __future__ import annotations

import json
import os
import shutil
import signal
import struct
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from detector.live.capture import LiveError, compile_bpf
from detector.live.engine import EVENT_COLUMNS, LiveFlows
from detector.live.output import JsonlEvents
from detector.live.verdicts import SignatureDetector, load_verdict_detector
from features.batch import PacketBatch
from features.readers import iter_batches
from features.schema import MODEL_FEATURES

ROOT = Path(__file__).resolve().parents[1]
DEMO = ROOT / "pcaps" / "demo" / "mixed-vpn-proxy-https.pcap.gz"
VPNDETECT = [sys.executable, "-m", "detector.cli"]


# -- the flow side, on batches read from a capture ------------------------------------------------------------

def _replay(path, early=10, batch_size=37, **options):
    clock = [0]
    flows = LiveFlows(SignatureDetector(), early, capture=str(path), clock=lambda: clock[0], **options)
    events = []
    for batch in iter_batches(path, batch_size, notices=[]):
        clock[0] = int(batch.ts_ns[-1])
        events += flows.add(batch)
    events += flows.flush()
    return pd.concat(events, ignore_index=True), flows


def _same(a, b):
    a, b = np.asarray(a, float), np.asarray(b, float)
    return np.allclose(a, b, rtol=1e-5, atol=1e-6, equal_nan=True)


def test_early_verdict_sees_exactly_the_first_n_packets():
    """Batches cut anywhere: the early snapshot equals the flow cut at N packets by the file path (what the
    model trains on), and the final rows equal the file path's whole flows."""
    from features.extract.api import extract_features
    events, flows = _replay(DEMO, early=10, batch_size=37)
    assert list(events.columns) == EVENT_COLUMNS
    early = events[events.event == "early"].set_index("flow_id")
    final = events[events.event == "final"].set_index("flow_id")
    whole = extract_features(str(DEMO)).set_index("flow_id")
    cut = extract_features(str(DEMO), max_packets=10).set_index("flow_id")
    cut = cut[cut.packets >= 10]
    assert sorted(final.index) == sorted(whole.index)
    assert sorted(early.index) == sorted(cut.index) and len(early) > 0
    assert (early.packets == 10).all() and (early.packets_at_verdict == 10).all()
    assert early.end_reason.isna().all()
    for column in ("packets", "bytes", "src_port", "dst_port", "first_seen", "last_seen"):
        assert _same(early[column], cut.loc[early.index, column]), column
        assert _same(final[column], whole.loc[final.index, column]), column
    assert set(early.label) <= {"vpn", "proxy", "normal"}
    # Same verdict inputs as the file path: classify the cut flows and compare labels.
    expected = SignatureDetector().classify(cut.reset_index().copy()).set_index("flow_id")
    assert (early.label == expected.loc[early.index, "label"]).all()
    assert (early.protocol == expected.loc[early.index, "protocol"]).all()


def test_early_features_match_the_flow_cut_at_n():
    from features.extract.api import extract_features
    from detector.live.engine import LiveFlows as Flows

    captured = []

    class Keep(SignatureDetector):
        def classify(self, frame):
            captured.append(frame)
            return super().classify(frame)

    flows = Flows(Keep(), 5, clock=lambda: 0)
    for batch in iter_batches(DEMO, 11, notices=[]):
        flows.add(batch)
    flows.flush()
    frames = pd.concat(captured, ignore_index=True)
    early = frames[frames.end_reason.isna()].set_index("flow_id")
    cut = extract_features(str(DEMO), early_packets=5, max_packets=5).set_index("flow_id")
    cut = cut.loc[early.index]
    different = [c for c in MODEL_FEATURES if not _same(early[c], cut[c])]
    assert different == []


def _udp(ts_ns, payload=64, sport=40000, dport=7777):
    a, b = bytes([192, 0, 2, 1]), bytes([192, 0, 2, 2])
    udp = struct.pack("!HHHH", sport, dport, 8 + payload, 0) + bytes(payload)
    ip = struct.pack("!BBHHHBBH4s4s", 0x45, 0, 20 + len(udp), 0, 0, 64, 17, 0, a, b) + udp
    frame = b"\x02" * 6 + b"\x04" * 6 + b"\x08\x00" + ip
    n = len(ts_ns)
    data = np.frombuffer(frame * n, np.uint8).copy()
    caplen = np.full(n, len(frame), np.int64)
    return PacketBatch(data, np.arange(n, dtype=np.int64) * len(frame), caplen, caplen.copy(),
                       np.asarray(ts_ns, np.int64), np.ones(n, np.int64))


def test_idle_flows_end_by_the_wall_clock_without_packets():
    t0 = 1_700_000_000 * 10**9
    clock = [t0]
    flows = LiveFlows(SignatureDetector(), 10, idle_timeout=2.0, clock=lambda: clock[0])
    assert flows.add(_udp([t0, t0 + 1000, t0 + 2000])) == []
    clock[0] = t0 + 10**9
    assert flows.tick() == []
    assert flows.open_flows == 1
    clock[0] = t0 + 2_300_000_000
    (events,) = flows.tick()
    assert list(events.event) == ["final"] and list(events.end_reason) == ["idle_timeout"]
    assert events.packets_at_verdict[0] == 3
    assert 250 <= events.latency_ms[0] <= 350  # 2.3 s after the last packet, 2 s of which is the timeout
    assert flows.open_flows == 0 and flows.flush() == []


def test_feature_rows_are_given_back_in_both_tables():
    """Hours of capture must not grow memory: every ended flow's feature rows return, in the early table too."""
    clock = [0]
    flows = LiveFlows(SignatureDetector(), 10, idle_timeout=1.0, clock=lambda: clock[0])
    for rep in range(2):
        for batch in iter_batches(DEMO, 64, notices=[]):
            batch.ts_ns = batch.ts_ns + rep * 10**12
            clock[0] = int(batch.ts_ns[-1])
            flows.add(batch)
            flows.tick()
        assert flows.open_flows == flows.early_table.live
    flows.flush()
    assert flows.open_flows == 0 and flows.early_table.live == 0
    for state in (flows.plugin.state, flows.early_plugin.state):
        if hasattr(state, "row_of"):
            assert not (state.row_of >= 0).any()
        if hasattr(state, "free_top"):
            assert int(state.free_top[0]) == state.capacity


def test_latency_histogram_quantiles():
    from detector.live.engine import LatencyHistogram
    h = LatencyHistogram()
    assert h.quantile(0.5) is None
    h.add(np.array([10.0, 20.0, 30.0, 40.0, 1e6]))
    assert len(h) == 5 and abs(h.quantile(0.5) - 30.05) < 1e-9 and h.quantile(1.0) > 9999


def test_a_flow_reaching_n_in_one_batch_gets_both_verdicts_once():
    t0 = 1_700_000_000 * 10**9
    flows = LiveFlows(SignatureDetector(), 4, clock=lambda: t0)
    events = pd.concat(flows.add(_udp(t0 + np.arange(9) * 1000)) + flows.flush())
    assert list(events.event) == ["early", "final"]
    assert list(events.packets_at_verdict) == [4, 9]


def test_jsonl_events(tmp_path):
    events, _ = _replay(DEMO, batch_size=500)
    out = JsonlEvents(tmp_path / "e.jsonl")
    out.write(events)
    out.summary({"packets": 1, "kernel_dropped": 0})
    out.close()
    lines = [json.loads(line) for line in (tmp_path / "e.jsonl").read_text().splitlines()]
    assert len(lines) == len(events) + 1 and lines[-1]["event"] == "summary"
    for line in lines[:-1]:
        assert set(EVENT_COLUMNS) <= set(line) and line["event"] in ("early", "final")
        assert line["label"] in ("vpn", "proxy", "normal")


def test_verdict_step_takes_any_detector_object():
    class Everything:
        name = "all-vpn"

        def classify(self, frame):
            return frame.assign(label="vpn", protocol="x", score=1.0, evidence="test")

    flows = LiveFlows(Everything(), 3, clock=lambda: 0)
    events = pd.concat(flows.add(_udp(10**18 + np.arange(3))) + flows.flush())
    assert set(events.label) == {"vpn"}
    assert load_verdict_detector(detector="signatures").name == "signatures"


class _ReplaySource:
    """Batches of a capture handed out like a ring does, through an fd that poll() finds readable."""

    backend = "replay"
    iface = "replay"

    def __init__(self, path, batch_size):
        self.batches = list(iter_batches(path, batch_size, notices=[]))
        self.r, self.w = os.pipe()
        os.write(self.w, b"x")

    def fileno(self):
        return self.r

    def read(self):
        return self.batches.pop(0) if self.batches else None

    def more_ready(self):
        return bool(self.batches)

    def stats(self):
        return {"kernel_received": 0, "kernel_dropped": 0, "ring_freezes": 0}

    def close(self):
        os.close(self.r)
        os.close(self.w)


class _Collect:
    def __init__(self):
        self.frames = []
        self.statuses = 0

    def write(self, events):
        self.frames.append(events)

    def status(self, stats):
        self.statuses += 1


def test_loop_alerts_only_and_duration():
    from detector.live.sniffer import Sniffer
    source = _ReplaySource(DEMO, 50)
    flows = LiveFlows(SignatureDetector(), 10, capture="replay")
    out = _Collect()
    started = time.monotonic()
    stats = Sniffer(source, flows, out, alerts_only=True, duration=1.0).run()
    source.close()
    assert time.monotonic() - started < 10
    events = pd.concat(out.frames)
    assert len(events) and set(events.label) <= {"vpn", "proxy"}
    assert stats["alerts"] == len(events)
    assert stats["final_verdicts"] == stats["flows_ended"] > len(events[events.event == "final"])
    assert stats["open_flows"] == 0 and stats["signal"] is None


def test_loop_in_a_thread_stops_on_request():
    import threading
    from detector.live.sniffer import Sniffer
    source = _ReplaySource(DEMO, 50)
    out = _Collect()
    sniffer = Sniffer(source, LiveFlows(SignatureDetector(), 10, capture="replay"), out)
    result = {}
    thread = threading.Thread(target=lambda: result.update(sniffer.run()))
    thread.start()
    time.sleep(1.0)
    sniffer.stop()
    thread.join(timeout=10)
    source.close()
    assert not thread.is_alive() and result["open_flows"] == 0
    assert result["final_verdicts"] == result["flows_ended"] > 0


def test_only_final_verdicts_ask_for_the_costly_explanation():
    calls = []

    class Explaining:
        def classify(self, frame, explain=True):
            calls.append((sorted(set(frame["end_reason"].isna())), explain))
            return frame.assign(label="vpn", protocol="x", score=1.0, evidence="")

    t0 = 1_700_000_000 * 10**9
    flows = LiveFlows(Explaining(), 4, clock=lambda: t0)
    flows.add(_udp(t0 + np.arange(5) * 1000, sport=1))   # early only
    flows.flush()                                          # final only
    flows.add(_udp(t0 + np.arange(5) * 1000, sport=2))
    assert calls == [([True], False), ([False], True), ([True], False)]
    calls.clear()
    both = LiveFlows(Explaining(), 2, clock=lambda: t0, explain="none")
    both.add(_udp(t0 + np.arange(3) * 1000))
    both.flush()
    assert [explain for _, explain in calls] == [False, False]


# -- BPF and the command's errors ----------------------------------------------------------------------------

def test_bpf_compiles_in_user_space():
    code = compile_bpf("udp port 53")
    assert len(code) % 8 == 0 and len(code) >= 8 * 4
    with pytest.raises(LiveError, match="bad BPF filter"):
        compile_bpf("port port port")


def _vpndetect(*args, timeout=60, **kw):
    return subprocess.run(VPNDETECT + list(args), capture_output=True, text=True, timeout=timeout, cwd=ROOT, **kw)


def test_unknown_interface_is_one_line_and_exit_2():
    proc = _vpndetect("sniff", "-i", "nosuchif0")
    assert proc.returncode == 2
    assert proc.stderr.strip().count("\n") == 0 and "no such interface: nosuchif0" in proc.stderr


def test_bad_filter_is_one_line_and_exit_2():
    proc = _vpndetect("sniff", "-i", "lo", "--bpf", "tcp port ((")
    assert proc.returncode == 2 and "bad BPF filter" in proc.stderr
    assert proc.stderr.strip().count("\n") == 0


def _without_cap_net_raw():
    """In the child before exec: drop CAP_NET_RAW from the bounding set, so even root lacks it after exec."""
    import ctypes
    libc = ctypes.CDLL(None, use_errno=True)
    PR_CAPBSET_DROP, CAP_NET_RAW = 24, 13
    if libc.prctl(PR_CAPBSET_DROP, CAP_NET_RAW, 0, 0, 0) != 0:
        raise OSError(ctypes.get_errno(), "prctl(PR_CAPBSET_DROP)")


def test_without_cap_net_raw_the_message_says_so():
    kw = {"preexec_fn": _without_cap_net_raw} if os.geteuid() == 0 else {}
    try:
        proc = _vpndetect("sniff", "-i", "lo", **kw)
    except subprocess.SubprocessError as exc:  # the capability could not be dropped here
        pytest.skip(f"cannot drop CAP_NET_RAW: {exc}")
    assert proc.returncode == 2, proc.stderr
    assert "needs CAP_NET_RAW" in proc.stderr and proc.stderr.strip().count("\n") == 0


# -- real traffic between namespaces (root) ------------------------------------------------------------------

def _lab_ready(*variants) -> str | None:
    if os.geteuid() != 0 or not sys.platform.startswith("linux"):
        return "needs root on Linux"
    if shutil.which("ip") is None or not os.path.exists("/proc/self/ns/net"):
        return "needs network namespaces and iproute2"
    if variants:
        from detector.lab.variant import all_variants
        registry = all_variants()
        missing = sorted({p for name in variants for p in registry[name].missing_packages()})
        if missing:
            return "missing packages: " + " ".join(missing)
    return None


def _events(path: Path) -> list[dict]:
    if not path.exists():
        return []
    out = []
    for line in path.read_text().splitlines():
        try:
            out.append(json.loads(line))
        except ValueError:  # a line being written
            pass
    return out


def _wait_for(predicate, timeout, what, proc=None):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        if proc is not None and not proc.alive():
            raise AssertionError(f"the sniffer exited before {what}: {proc.output()[-1500:]}")
        time.sleep(0.1)
    raise AssertionError(f"no {what} within {timeout} s" + (f": {proc.output()[-1500:]}" if proc else ""))


def _start_sniffer(net, events_path: Path, *extra):
    cmd = VPNDETECT + ["sniff", "-i", net.client_if, "--format", "jsonl", "-o", str(events_path), *extra]
    proc = net.start(net.client_ns, cmd, "sniff", env={"PYTHONPATH": str(ROOT)})
    proc.wait_output("capturing on", timeout=60)
    return proc


def _stop_sniffer(proc, timeout=20) -> int:
    os.kill(proc.pid, signal.SIGINT)
    return proc.popen.wait(timeout=timeout)


def _no_namespace_left(net):
    from detector.lab.netns import lab_namespaces
    return not any(ns in lab_namespaces() for ns in net.namespaces())


@pytest.mark.root
def test_wireguard_is_vpn_and_https_normal_live(tmp_path):
    why = _lab_ready("wireguard", "https_curl")
    if why:
        pytest.skip(why)
    from detector.lab.netns import INNER_IP, LabNet
    from detector.lab.pki import make_pki
    from detector.lab.session import Access, Session, SessionPlan
    from detector.lab.variant import all_variants

    registry = all_variants()
    pki = make_pki(tmp_path / "pki")
    events_path = tmp_path / "events.jsonl"
    idle = 3.0
    with LabNet(tmp_path / "net") as net:
        sniffer = _start_sniffer(net, events_path, "--early-packets", "10", "--idle-timeout", str(idle),
                                 "--write-pcap", str(tmp_path / "live.pcap"))
        # WireGuard: tunnel up, then the seeded payload through it to the inner web server.
        wg = Session(SessionPlan(registry["wireguard"], 0, 41, "bulk", "lan", True), net, pki, tmp_path / "wg")
        wg.make_site()
        wg.start_nginx("inner-web", [f"{INNER_IP}:80", f"{INNER_IP}:443 ssl http2"])
        access = registry["wireguard"].run(wg) or Access()
        # Inside the tunnel too: wgc has no link header (ARPHRD_NONE), its frames are raw IP.
        inner_path = tmp_path / "inner.jsonl"
        inner = net.start(net.client_ns, VPNDETECT + ["sniff", "-i", "wgc", "--format", "jsonl", "-o", str(inner_path),
                                                      "--early-packets", "3"], "sniff-inner", env={"PYTHONPATH": str(ROOT)})
        inner.wait_output("capturing on", timeout=60)
        wg.payload(access)
        # HTTPS: nginx on the server's veth address, a download with curl.
        web = Session(SessionPlan(registry["https_curl"], 1, 42, "bulk", "lan", True), net, pki, tmp_path / "web")
        web.make_site()
        registry["https_curl"].run(web)

        def flow_events(port, transport, event=None):
            return [e for e in _events(events_path) if e.get("dst_port") == port and e.get("transport") == transport
                    and (event is None or e["event"] == event)]

        wg_early = _wait_for(lambda: flow_events(wg.port, "udp", "early"), 15, "early WireGuard verdict", sniffer)
        assert wg_early[0]["label"] == "vpn" and wg_early[0]["protocol"] == "wireguard", wg_early[0]
        assert wg_early[0]["packets_at_verdict"] == 10
        https_early = _wait_for(lambda: flow_events(web.port, "tcp", "early"), 15, "early HTTPS verdict", sniffer)
        assert https_early[0]["label"] == "normal", https_early[0]
        https_final = _wait_for(lambda: flow_events(web.port, "tcp", "final"), 15, "final HTTPS verdict", sniffer)
        assert https_final[0]["label"] == "normal" and https_final[0]["end_reason"] in ("fin", "rst")

        # Idle expiry by the wall clock: three datagrams, then nothing; the flow must end on its own.
        sent = time.time()
        net.ns_run(net.client_ns, [sys.executable, "-c",
                                   "import socket\ns = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)\n"
                                   "for _ in range(3): s.sendto(b'x' * 40, ('10.99.0.2', 9))"])
        probe = _wait_for(lambda: flow_events(9, "udp", "final"), idle + 10, "idle expiry of the probe flow", sniffer)
        assert probe[0]["end_reason"] == "idle_timeout" and probe[0]["packets"] == 3
        assert probe[0]["time"] - probe[0]["last_seen"] >= idle
        assert probe[0]["time"] - sent <= idle + 5

        assert _stop_sniffer(inner) == 0, inner.output()[-1500:]
        tunnelled = [e for e in _events(inner_path) if e.get("dst_ip") == INNER_IP and e["event"] == "final"]
        assert tunnelled and tunnelled[0]["transport"] == "tcp" and tunnelled[0]["packets"] > 3

        # Clean shutdown: SIGINT flushes the open flows and prints the summary.
        assert _stop_sniffer(sniffer) == 0, sniffer.output()[-1500:]
        log = sniffer.output()
        assert "vpndetect sniff:" in log and "dropped" in log and "Traceback" not in log
        events = _events(events_path)
        summary = events[-1]
        assert summary["event"] == "summary" and summary["signal"] == "SIGINT"
        assert summary["kernel_dropped"] == 0 and summary["packets"] == summary["kernel_received"] > 0
        wg_final = [e for e in events if e.get("dst_port") == wg.port and e["event"] == "final"]
        assert wg_final and wg_final[0]["label"] == "vpn" and wg_final[0]["packets"] > 10
        assert all(e["event"] in ("early", "final") for e in events[:-1])
    assert _no_namespace_left(net)
    assert not sniffer.alive()
    # Every captured packet went to the pcap too, and reads back as the same flows.
    from features import FlowReader
    reader = FlowReader(str(tmp_path / "live.pcap"), idle_timeout=idle, on_error="raise")
    flows = reader.to_pandas()
    assert reader.packets_read == summary["packets"]
    assert wg.port in set(flows.dst_port) and web.port in set(flows.dst_port)


@pytest.mark.root
def test_filter_in_the_kernel_and_dropping_privileges(tmp_path):
    why = _lab_ready()
    if why:
        pytest.skip(why)
    import pwd
    from detector.lab.netns import LabNet
    try:
        nobody = pwd.getpwnam("nobody")
    except KeyError:
        pytest.skip("no user nobody")
    events_path = tmp_path / "events.jsonl"
    with LabNet(tmp_path / "net") as net:
        sniffer = _start_sniffer(net, events_path, "--bpf", "udp port 7777", "--early-packets", "3",
                                 "--user", "nobody", "--idle-timeout", "30")
        status = Path(f"/proc/{sniffer.pid}/status").read_text()
        uid_line = next(line for line in status.splitlines() if line.startswith("Uid:"))
        assert uid_line.split()[1:] == [str(nobody.pw_uid)] * 4
        net.ns_run(net.client_ns, [sys.executable, "-c",
                                   "import socket, time\ns = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)\n"
                                   "for i in range(5):\n"
                                   "    s.sendto(b'x' * 40, ('10.99.0.2', 7777)); s.sendto(b'y' * 40, ('10.99.0.2', 7778))\n"
                                   "    time.sleep(0.01)"])
        _wait_for(lambda: [e for e in _events(events_path) if e["event"] == "early"], 15, "early verdict", sniffer)
        os.kill(sniffer.pid, signal.SIGTERM)
        assert sniffer.popen.wait(timeout=20) == 0, sniffer.output()[-1500:]
        events = _events(events_path)
    assert _no_namespace_left(net)
    assert events[-1]["signal"] == "SIGTERM"
    flows = [e for e in events if e["event"] in ("early", "final")]
    assert {e["dst_port"] for e in flows} == {7777}
    assert [e["event"] for e in flows] == ["early", "final"] and flows[0]["packets_at_verdict"] == 3
    assert events[-1]["packets"] == 5 and events[-1]["kernel_received"] == 5


@pytest.mark.root
def test_portable_backend_reports_the_same_flows(tmp_path):
    why = _lab_ready()
    if why:
        pytest.skip(why)
    pytest.importorskip("scapy")
    from detector.lab.netns import LabNet
    events_path = tmp_path / "events.jsonl"
    with LabNet(tmp_path / "net") as net:
        sniffer = _start_sniffer(net, events_path, "--backend", "scapy", "--bpf", "udp port 7777",
                                 "--early-packets", "4")
        net.ns_run(net.client_ns, [sys.executable, "-c",
                                   "import socket, time\ns = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)\n"
                                   "for i in range(6):\n"
                                   "    s.sendto(b'x' * 40, ('10.99.0.2', 7777)); time.sleep(0.01)"])
        _wait_for(lambda: [e for e in _events(events_path) if e["event"] == "early"], 15, "early verdict", sniffer)
        assert _stop_sniffer(sniffer) == 0, sniffer.output()[-1500:]
        events = _events(events_path)
    flows = [e for e in events if e["event"] in ("early", "final")]
    assert [e["event"] for e in flows] == ["early", "final"]
    assert flows[0]["packets_at_verdict"] == 4 and flows[1]["packets"] == 6
    assert events[-1]["backend"] == "scapy" and events[-1]["kernel_dropped"] is None


@pytest.mark.root
def test_interface_going_away_ends_capture_with_a_summary(tmp_path):
    why = _lab_ready()
    if why:
        pytest.skip(why)
    from detector.lab.netns import LabNet
    events_path = tmp_path / "events.jsonl"
    with LabNet(tmp_path / "net") as net:
        sniffer = _start_sniffer(net, events_path)
        net.ns_run(net.client_ns, ["ip", "link", "del", net.client_if])
        assert sniffer.popen.wait(timeout=20) == 1
        log = sniffer.output()
    assert "vpndetect sniff:" in log and f"interface {net.client_if} disappeared" in log
    assert _events(events_path)[-1]["error"] == f"interface {net.client_if} disappeared"
