"""The verdict step of live capture: a detector object with `classify(frame) -> frame`.

`classify` takes flows with their feature columns (as `features.extract_features` gives them) and returns
them with `label` (vpn, proxy, normal), `protocol`, `score` and `evidence`. The trained model
(`detector.pipeline.load_detector`, the model shipped in `models/` or one made by `vpndetect train`) is used
when there is one; without a trained model the live path still runs on `SignatureDetector`, which decides
from the handshake signatures alone (said once on stderr).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

VERDICT_COLUMNS = ["label", "protocol", "score", "evidence"]
FIRES = 0.5
# Signature kinds (features.signatures) and the label they stand for; "protocol" ones recognise normal traffic.
_KIND_LABEL = {"vpn": "vpn", "proxy": "proxy", "tunnel": "proxy"}


class SignatureDetector:
    """Verdicts from the signatures only: the highest-scoring vpn/proxy signature that fired names the flow."""

    name = "signatures"

    def __init__(self):
        from features.signatures import REGISTRY
        self.flagging = [(s.name, _KIND_LABEL[s.kind]) for s in REGISTRY if s.kind in _KIND_LABEL]

    def classify(self, frame: pd.DataFrame) -> pd.DataFrame:
        n = len(frame)
        label = np.full(n, "normal", object)
        protocol = np.full(n, "", object)
        score = np.zeros(n)
        for name, kind_label in self.flagging:
            column = f"sig_{name}"
            if column not in frame:
                continue
            values = frame[column].to_numpy(dtype=float, na_value=0.0)
            better = (values >= FIRES) & (values > score)
            label[better] = kind_label
            protocol[better] = _protocol_name(name)
            score[better] = values[better]
        normal = label == "normal"
        if "protocols" in frame:
            recognised = frame["protocols"].fillna("").astype(str).str.split(",").str[0].to_numpy(object)
        else:
            recognised = np.full(n, "", object)
        protocol[normal] = np.where(recognised[normal] != "", recognised[normal], "other")
        evidence = frame["evidence"].fillna("").to_numpy(object) if "evidence" in frame else np.full(n, "", object)
        # assign: a new frame without copying the feature columns (pandas copy-on-write).
        return frame.assign(label=label, protocol=protocol, score=np.round(score, 4), evidence=evidence)


def _protocol_name(signature: str) -> str:
    return {"http_connect": "http_proxy", "fully_encrypted": "fully_encrypted"}.get(signature, signature)


class ModelUnavailable(Exception):
    pass


def load_verdict_detector(model_dir=None, detector: str = "auto", warn=None):
    """The detector for live verdicts.

    detector: "model" (the trained model, or ModelUnavailable), "signatures", or "auto" (the model when one
    is there, else signatures, with a warning through `warn`).
    """
    if detector == "signatures":
        return SignatureDetector()
    try:
        from detector.model import ModelError
        from detector.pipeline import load_detector
    except ImportError as exc:  # the model code is optional for the live path
        if detector == "model":
            raise ModelUnavailable(f"the model code cannot be loaded: {exc}") from None
        if warn:
            warn(f"no model code ({exc}); verdicts from handshake signatures only")
        return SignatureDetector()
    try:
        analyzer = load_detector(model_dir)
    except ModelError as exc:
        if detector == "model" or model_dir is not None:
            raise ModelUnavailable(str(exc)) from None
        if warn:
            warn(f"{exc}; verdicts from handshake signatures only")
        return SignatureDetector()
    analyzer.name = "model"
    return analyzer


def classify_flows(detector, frame: pd.DataFrame, explain: bool = True) -> pd.DataFrame:
    """The verdict step: `detector.classify(frame)`, checked to carry every verdict column. `explain=False`
    asks the detector to leave out its costly per-feature explanations, when its classify takes `explain`."""
    if _takes_explain(detector):
        out = detector.classify(frame, explain=explain)
    else:
        out = detector.classify(frame)
    missing = [c for c in VERDICT_COLUMNS if c not in out.columns]
    if missing:
        raise TypeError(f"{type(detector).__name__}.classify returned no {missing} columns")
    return out


def _takes_explain(detector) -> bool:
    import inspect
    cached = getattr(detector, "_live_takes_explain", None)
    if cached is None:
        try:
            cached = "explain" in inspect.signature(detector.classify).parameters
        except (TypeError, ValueError):
            cached = False
        try:
            detector._live_takes_explain = cached
        except AttributeError:
            pass
    return cached
