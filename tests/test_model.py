"""The model: estimator contract, persistence without pickle, refusal of mismatched models, determinism."""

import json
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from detector.dataset import LabelError, attach_labels, load_labels
from detector.model import ModelError, VpnDetector
from detector.pipeline import Analyzer
from detector.training import train
from features import read_flows

ROOT = Path(__file__).resolve().parents[1]
DEMO = ROOT / "pcaps" / "demo"


def _toy_data(n=300, seed=0):
    from features.schema import MODEL_FEATURES
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, len(MODEL_FEATURES))).astype(np.float32)
    y = np.where(X[:, 0] > 0.5, "vpn:wireguard", np.where(X[:, 1] > 0.5, "proxy:socks", "normal:tls"))
    groups = np.arange(n) // 10
    return X, y, groups


def test_estimator_contract():
    X, y, groups = _toy_data()
    detector = VpnDetector(n_estimators=30)
    assert not hasattr(detector, "boosters_")
    assert detector.fit(X, y, groups=groups) is detector
    assert list(detector.classes_) == ["normal:tls", "proxy:socks", "vpn:wireguard"]
    proba = detector.predict_proba(X)
    assert proba.shape == (len(X), 3) and np.allclose(proba.sum(axis=1), 1)
    assert (detector.predict(X) == y).mean() > 0.9
    assert detector.get_params()["n_estimators"] == 30
    # scikit-learn's own tools take it without it importing scikit-learn.
    from sklearn.base import clone, is_classifier
    twin = clone(detector)
    assert is_classifier(twin) and twin.get_params() == detector.get_params() and not hasattr(twin, "boosters_")
    assert detector.score(X, y) == (detector.predict(X) == y).mean()


def test_verdicts_import_neither_lightgbm_nor_scikit_learn():
    code = ("import sys; from detector.pipeline import load_detector; load_detector(); "
            "print(sorted(m for m in ('lightgbm', 'sklearn', 'scipy') if m in sys.modules))")
    run = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, check=True)
    assert run.stdout.strip() == "[]"


def test_save_load_roundtrip_without_pickle(tmp_path):
    X, y, groups = _toy_data()
    detector = VpnDetector(n_estimators=20).fit(X, y, groups=groups)
    detector.save(tmp_path / "m", note="test")
    assert sorted(p.name for p in (tmp_path / "m").iterdir()) == ["metadata.json", "model-label.txt", "model-protocol.txt"]
    loaded = VpnDetector.load(tmp_path / "m")
    assert np.allclose(loaded.predict_proba(X), detector.predict_proba(X))
    assert loaded.metadata_["note"] == "test"


@pytest.mark.parametrize("damage,message", [
    (lambda d: _edit_meta(d, feature_schema_version="0.0"), "feature schema 0.0"),
    (lambda d: (d / "model-label.txt").write_text((d / "model-label.txt").read_text().replace("tree", "Tree", 1)),
     "digest"),
    (lambda d: (d / "metadata.json").unlink(), "metadata.json is missing"),
    (lambda d: (d / "metadata.json").write_text("{"), "not valid JSON"),
])
def test_mismatched_models_are_refused(tmp_path, damage, message):
    X, y, groups = _toy_data()
    VpnDetector(n_estimators=10).fit(X, y, groups=groups).save(tmp_path / "m")
    damage(tmp_path / "m")
    with pytest.raises(ModelError, match=message):
        VpnDetector.load(tmp_path / "m")


def _edit_meta(directory, **changes):
    meta = json.loads((directory / "metadata.json").read_text())
    meta.update(changes)
    (directory / "metadata.json").write_text(json.dumps(meta))


def test_cli_refuses_a_bad_model_in_one_line(tmp_path):
    (tmp_path / "m").mkdir()
    run = subprocess.run([sys.executable, "-m", "detector.cli", "analyze", str(DEMO / "mixed-vpn-proxy-https.pcap.gz"),
                          "--model", str(tmp_path / "m")], capture_output=True, text=True)
    assert run.returncode == 2 and run.stderr.count("\n") == 1 and "no model there" in run.stderr


def test_labels_join_every_flow_and_refuse_unlabelled():
    labels = load_labels([DEMO / "labels.csv"])
    flows = attach_labels(read_flows(DEMO / "mixed-vpn-proxy-https.pcap.gz"), labels)
    assert dict(flows.groupby("truth_protocol").size()) == {"openvpn": 1, "shadowsocks": 1, "tls": 4, "wireguard": 1}
    with pytest.raises(LabelError, match="matches no label row"):
        attach_labels(read_flows(DEMO / "mixed-vpn-proxy-https.pcap.gz"), labels[labels.protocol != "tls"])


def test_training_is_deterministic(tmp_path):
    data = tmp_path / "data"
    data.mkdir()
    for name in ("mixed-vpn-proxy-https.pcap.gz", "labels.csv"):
        shutil.copy(DEMO / name, data / name)
    first = train([data], tmp_path / "a", steps=(2, 5), n_estimators=15, validation_fraction=0.5)
    second = train([data], tmp_path / "b", steps=(2, 5), n_estimators=15, validation_fraction=0.5)
    for name in ("model-label.txt", "model-protocol.txt"):
        assert (tmp_path / "a" / name).read_bytes() == (tmp_path / "b" / name).read_bytes()
    assert first["training_data"]["sha256"] == second["training_data"]["sha256"]
    assert first["training_data"]["flows"] == 7


def test_contributions_add_up_to_lightgbms_raw_score():
    import lightgbm as lgb
    X, y, groups = _toy_data()
    detector = VpnDetector(n_estimators=30, early_stopping_rounds=5).fit(X, y, groups=groups)
    trees = detector.boosters_["label"]
    raw = lgb.Booster(model_str=trees.text).predict(X[:50], raw_score=True)
    labels = np.arange(50) % len(detector.labels_)
    parts = detector.label_contributions(X[:50], labels)
    bias = np.array([trees.bias(c) for c in labels])
    np.testing.assert_allclose(parts.sum(axis=1) + bias, raw[np.arange(50), labels], rtol=0, atol=1e-9)
    # The feature that decides the toy labels carries most of the vpn score.
    vpn = list(detector.labels_).index("vpn")
    assert np.argmax(np.abs(detector.label_contributions(X[:50], np.full(50, vpn))).sum(axis=0)) == 0


def test_decisive_signature_overrides_a_normal_verdict():
    X, y, groups = _toy_data()
    detector = VpnDetector(n_estimators=10).fit(X, y, groups=groups)
    from features.schema import MODEL_FEATURES
    import pandas as pd
    frame = pd.DataFrame(np.full((2, len(MODEL_FEATURES)), -3.0, np.float32), columns=MODEL_FEATURES)
    frame["sig_wireguard"] = [0.95, 0.0]
    frame["packets"], frame["src2dst_packets"], frame["dst2src_packets"] = [2, 2], [1, 1], [1, 1]
    frame["protocols"], frame["evidence"] = ["", "tls"], ["wireguard: handshake", ""]
    frame["signatures"] = ["wireguard", ""]
    out = Analyzer(detector).classify(frame)
    assert list(out.label) == ["vpn", "normal"]
    assert list(out.protocol) == ["wireguard", "tls"]


def test_model_alone_needs_evidence_to_raise_an_alarm():
    import pandas as pd
    from features.schema import MODEL_FEATURES
    X, y, groups = _toy_data()
    detector = VpnDetector(n_estimators=30).fit(X, y, groups=groups)
    tunnel = X[y == "vpn:wireguard"][:3]
    frame = pd.DataFrame(tunnel, columns=MODEL_FEATURES)
    frame[[c for c in MODEL_FEATURES if c.startswith("sig_")]] = 0.0
    # The same confident model verdict: a long two-way flow, a 3-packet flow, a one-way flow.
    frame["packets"], frame["src2dst_packets"], frame["dst2src_packets"] = [40, 3, 40], [20, 2, 40], [20, 1, 0]
    frame["signatures"], frame["protocols"], frame["evidence"] = "", "", ""
    out = Analyzer(detector, threshold=0.5).classify(frame)
    assert list(out.label) == ["vpn", "normal", "normal"]
    frame["signatures"] = "fully_encrypted"
    assert list(Analyzer(detector, threshold=0.5).classify(frame).label) == ["vpn"] * 3


def test_shipped_model_is_reproduced_by_train(tmp_path):
    """`vpndetect train pcaps/lab -o DIR` gives the shipped model byte for byte, from the committed data."""
    from detector.model import DEFAULT_MODEL_DIR
    meta = train([ROOT / "pcaps" / "lab"], tmp_path / "m")
    shipped = json.loads((DEFAULT_MODEL_DIR / "metadata.json").read_text())
    assert meta["training_data"]["sha256"] == shipped["training_data"]["sha256"]
    for name in ("model-label.txt", "model-protocol.txt"):
        assert (tmp_path / "m" / name).read_bytes() == (DEFAULT_MODEL_DIR / name).read_bytes()
