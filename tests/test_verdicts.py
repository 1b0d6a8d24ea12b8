"""How signatures, the model's score and companion flows combine into verdicts (detector.pipeline)."""

import numpy as np
import pandas as pd
import pytest

from detector.pipeline import Analyzer
from features.schema import MODEL_FEATURES

SCORE = "duration_ms"


class FixedScores:
    """A fitted detector whose P(vpn) is the flow's `duration_ms` column (scores set by hand) and P(proxy) zero."""

    classes_ = np.array(["normal:other", "vpn:openvpn"])
    labels_ = np.array(["vpn", "normal"])

    def label_proba(self, X):
        p = X[:, MODEL_FEATURES.index(SCORE)]
        return np.stack([p, 1 - p], axis=1)

    def protocol_proba(self, X):
        return np.ones((len(X), 2))

    def label_contributions(self, X, labels):
        return np.zeros((len(X), len(MODEL_FEATURES)))


def flows(scores, servers, captures=None, signatures=None, both_ways=True, packets=40):
    n = len(scores)
    frame = pd.DataFrame(np.zeros((n, len(MODEL_FEATURES)), np.float32), columns=MODEL_FEATURES)
    frame[SCORE] = np.asarray(scores, np.float32)
    frame["capture"] = captures or ["a.pcap"] * n
    frame["src_ip"], frame["src_port"], frame["dst_port"], frame["transport"] = "10.0.0.1", 40000, 1194, "udp"
    frame["dst_ip"] = servers
    frame["packets"], frame["src2dst_packets"] = packets, packets // 2
    frame["dst2src_packets"] = packets // 2 if both_ways else 0
    frame["signatures"] = signatures or [""] * n
    frame["protocols"], frame["evidence"] = "", ""
    return frame


def test_a_signature_is_enough_and_names_the_label_where_the_model_knows_nothing():
    frame = flows([0.3, 0.01, 0.01, 0.3], ["s1", "s2", "s3", "s4"],
                  signatures=["fully_encrypted", "fully_encrypted", "wireguard", ""])
    out = Analyzer(FixedScores(), threshold=0.98).classify(frame)
    # The model's lean where it has one (vpn here), the signature's kind where it has none; nothing without
    # a signature below the threshold.
    assert list(out.label) == ["vpn", "proxy", "vpn", "normal"]


def test_a_verified_handshake_decides_label_protocol_and_a_score_of_at_least_decisive():
    frame = flows([0.01, 0.3, 0.97], ["s1", "s2", "s3"], signatures=["socks", "socks", "wireguard"])
    frame["sig_socks"] = np.float32([0.95, 0.95, 0.0])
    frame["sig_wireguard"] = np.float32([0.0, 0.0, 0.95])
    out = Analyzer(FixedScores()).classify(frame)
    # The model leans vpn (its only tunnel label) on every flow; the verified SOCKS handshakes say proxy.
    assert list(out.label) == ["proxy", "proxy", "vpn"]
    assert list(out.protocol) == ["socks", "socks", "wireguard"]
    assert list(out.score) == [0.9, 0.9, 0.97]


def test_companions_of_a_flagged_flow_need_only_the_models_lean():
    # One confident two-way flow to s1; one-way flows to s1 (score 0.6 and 0.3) and to s2 (0.6); a flow to s1
    # in another capture.
    frame = flows([0.99, 0.6, 0.3, 0.6, 0.6], ["s1", "s1", "s1", "s2", "s1"],
                  captures=["a.pcap"] * 4 + ["b.pcap"])
    frame.loc[1:, "dst2src_packets"] = 0
    out = Analyzer(FixedScores()).classify(frame)
    assert list(out.label) == ["vpn", "vpn", "normal", "normal", "normal"]
    assert out.protocol[1] == out.protocol[0] == "openvpn"
    assert out.evidence[1].startswith("same server as a flagged openvpn flow (10.0.0.1:40000 -> s1:1194/udp)")


def test_companions_are_remembered_across_batches_and_forgotten_past_the_bound():
    analyzer = Analyzer(FixedScores())
    analyzer.servers.max_servers = 2
    analyzer.classify(flows([0.99, 0.99, 0.99], ["s1", "s2", "s3"]))
    later = flows([0.6, 0.6, 0.6], ["s1", "s2", "s3"], both_ways=False)
    assert list(analyzer.classify(later).label) == ["normal", "vpn", "vpn"]


@pytest.mark.parametrize("score", [0.49, 0.97])
def test_without_evidence_or_companion_a_score_below_threshold_stays_normal(score):
    out = Analyzer(FixedScores()).classify(flows([score], ["s1"]))
    assert list(out.label) == ["normal"]


@pytest.mark.parametrize("protocol, label", [("tls", "vpn"), ("", "vpn"), ("dtls", "normal"), ("stun", "normal")])
def test_the_model_alone_flags_no_flow_of_a_recognised_protocol_but_tls(protocol, label):
    frame = flows([0.99], ["s1"])
    frame["protocols"] = protocol
    assert list(Analyzer(FixedScores()).classify(frame).label) == [label]


def test_analyze_gives_the_same_verdicts_with_one_or_two_threads(tmp_path):
    """Companion verdicts depend on which flows are classified together: the batches must not depend on threads."""
    from pathlib import Path

    from click.testing import CliRunner

    from detector.cli import main
    lab = sorted((Path(__file__).resolve().parents[1] / "pcaps" / "lab").glob("*.pcap*"))
    if len(lab) < 20:
        pytest.skip("the lab captures are not here")
    outputs = []
    for threads in ("1", "2"):
        out = tmp_path / f"v{threads}.jsonl"
        result = CliRunner().invoke(main, ["analyze", *map(str, lab), "--threads", threads, "-o", str(out)])
        assert result.exit_code == 0, result.output
        outputs.append(out.read_text())
    assert outputs[0] == outputs[1] and outputs[0].count("\n") > 2048
