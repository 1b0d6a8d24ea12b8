"""Evaluation pieces: metrics by hand, port rewriting, analyze output records."""

import json
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from detector.evaluation import early_curve, label_metrics
from detector.portmap import remap, rewrite_ports
from features import read_flows

ROOT = Path(__file__).resolve().parents[1]
DEMO = ROOT / "pcaps" / "demo"
DEMO_CAPTURE = DEMO / "mixed-vpn-proxy-https.pcap.gz"


def test_label_metrics_by_hand():
    truth = np.array(["vpn", "vpn", "proxy", "normal", "normal", "normal", "normal"])
    predicted = np.array(["vpn", "normal", "vpn", "normal", "normal", "proxy", "normal"])
    score = np.array([0.9, 0.4, 0.8, 0.1, 0.2, 0.7, 0.3])
    m = label_metrics(truth, predicted, score)
    assert m["per_label"]["vpn"] == {"precision": 0.5, "recall": 0.5, "f1": 0.5, "support": 2}
    assert m["tunnel_recall"] == pytest.approx(2 / 3)
    assert m["false_positive_rate"] == 0.25 and m["false_positives"] == 1
    assert m["confusion"]["matrix"] == [[1, 0, 1], [1, 0, 0], [0, 1, 3]]
    # Of the 12 (tunnel, normal) pairs, only (0.4, 0.7) is ranked the wrong way round.
    assert m["roc_auc"] == pytest.approx(11 / 12)


def test_early_curve_groups_by_cut():
    import pandas as pd
    frame = pd.DataFrame({"packets_limit": [0, 0, 2, 2], "truth_label": ["vpn", "normal", "vpn", "normal"],
                          "label": ["vpn", "normal", "normal", "normal"]})
    curve = early_curve(frame)
    assert list(curve) == ["2", "flow_end"]
    assert curve["2"]["tunnel_recall"] == 0.0 and curve["flow_end"]["accuracy"] == 1.0


def test_remap_is_a_bijection_that_moves_ports():
    ports = np.arange(1, 65536)
    moved = remap(ports)
    assert len(np.unique(moved)) == 65535 and moved.min() == 1 and moved.max() == 65535
    assert (moved != ports).mean() > 0.999
    assert remap(np.array([0]))[0] == 0


def test_rewrite_ports_keeps_flows_and_changes_every_port(tmp_path):
    out = tmp_path / "moved.pcap"
    rewrite_ports(DEMO_CAPTURE, out)
    before, after = read_flows(DEMO_CAPTURE), read_flows(out)
    assert len(before) == len(after)
    assert list(after.packets) == list(before.packets) and list(after.bytes) == list(before.bytes)
    assert list(after.dst_port) == list(remap(before.dst_port.to_numpy()))


@pytest.fixture(scope="module")
def demo_model(tmp_path_factory):
    from detector.training import train
    base = tmp_path_factory.mktemp("model")
    data = base / "data"
    data.mkdir()
    for name in ("mixed-vpn-proxy-https.pcap.gz", "labels.csv"):
        shutil.copy(DEMO / name, data / name)
    train([data], base / "model", steps=(2, 5), n_estimators=20)
    return base / "model"


def test_analyze_jsonl_records(demo_model):
    run = subprocess.run([sys.executable, "-m", "detector.cli", "analyze", str(DEMO_CAPTURE), "--model", str(demo_model),
                          "--format", "jsonl"], capture_output=True, text=True, check=True)
    records = [json.loads(line) for line in run.stdout.splitlines()]
    assert len(records) == 7
    required = {"capture", "src_ip", "src_port", "dst_ip", "dst_port", "transport", "first_seen", "last_seen",
                "packets", "bytes", "label", "protocol", "score", "evidence"}
    assert all(required <= set(r) for r in records)
    by_port = {r["dst_port"]: r for r in records}
    assert by_port[51820]["label"] == "vpn" and by_port[51820]["protocol"] == "wireguard"
    assert "wireguard: handshake initiation 148 B" in by_port[51820]["evidence"]
    assert all(r["capture"] == str(DEMO_CAPTURE) for r in records)


def test_analyze_table_has_summary(demo_model):
    run = subprocess.run([sys.executable, "-m", "detector.cli", "analyze", str(DEMO_CAPTURE), "--model", str(demo_model)],
                         capture_output=True, text=True, check=True)
    assert "per capture" in run.stdout and "wireguard" in run.stdout


def test_bench_on_demo(demo_model, tmp_path):
    run = subprocess.run([sys.executable, "-m", "detector.cli", "bench", str(DEMO), "--model", str(demo_model),
                          "--no-ndpi", "--report", str(tmp_path / "r")], capture_output=True, text=True)
    assert run.returncode == 0, run.stderr
    result = json.loads((tmp_path / "r" / "bench.json").read_text())
    assert result["data"]["flows"] == 7 and result["ports"]["flows"] == 7
    assert {"roc.png", "early.png", "index.html", "bench.md"} <= {p.name for p in (tmp_path / "r").iterdir()}
