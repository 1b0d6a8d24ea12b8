"""Accuracy measures of verdicts against ground truth, and honest splits: by capture, never by flow."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
from sklearn.metrics import confusion_matrix, precision_recall_fscore_support, roc_auc_score, roc_curve
from sklearn.model_selection import GroupKFold

from detector.dataset import class_names
from detector.model import LABELS, VpnDetector
from detector.pipeline import Analyzer
from features.extract.api import feature_matrix

RECALL_POINTS = (0.9, 0.95, 0.98, 0.99)


def capture_groups(frame: pd.DataFrame) -> np.ndarray:
    return frame["capture"].map(lambda p: Path(p).name).to_numpy()


def label_metrics(truth: np.ndarray, predicted: np.ndarray, score: np.ndarray | None = None) -> dict:
    """Precision, recall, F1 per label; the confusion matrix; ROC-AUC and FPR at fixed recall of vpn+proxy."""
    p, r, f, support = precision_recall_fscore_support(truth, predicted, labels=list(LABELS), zero_division=0)
    out = {"flows": int(len(truth)),
           "per_label": {label: {"precision": float(p[i]), "recall": float(r[i]), "f1": float(f[i]),
                                 "support": int(support[i])} for i, label in enumerate(LABELS)},
           "confusion": {"labels": list(LABELS),
                         "matrix": confusion_matrix(truth, predicted, labels=list(LABELS)).tolist()}}
    positive = truth != "normal"
    flagged = predicted != "normal"
    negatives = int((~positive).sum())
    out["tunnel_recall"] = float(flagged[positive].mean()) if positive.any() else None
    out["false_positive_rate"] = float(flagged[~positive].mean()) if negatives else None
    out["false_positives"] = int(flagged[~positive].sum())
    out["normal_flows"] = negatives
    if score is not None and positive.any() and negatives:
        out["roc_auc"] = float(roc_auc_score(positive, score))
        fpr, tpr, thresholds = roc_curve(positive, score)
        out["roc"] = {"fpr": fpr.tolist(), "tpr": tpr.tolist()}
        out["fpr_at_recall"] = {str(level): float(fpr[np.searchsorted(tpr, level)]) for level in RECALL_POINTS
                                if (tpr >= level).any()}
    return out


def protocol_metrics(truth_label, truth_protocol, predicted_label, predicted_protocol) -> dict:
    """Per-protocol precision/recall/F1 over vpn and proxy flows, and the share named correctly."""
    tunnel = truth_label != "normal"
    truth_class = np.char.add(np.char.add(truth_label.astype(str), ":"), truth_protocol.astype(str))
    predicted_class = np.char.add(np.char.add(predicted_label.astype(str), ":"), predicted_protocol.astype(str))
    classes = sorted(set(truth_class[tunnel]))
    p, r, f, support = precision_recall_fscore_support(truth_class, predicted_class, labels=classes, zero_division=0)
    return {"named_correctly": float((truth_class[tunnel] == predicted_class[tunnel]).mean()) if tunnel.any() else None,
            "per_protocol": {c: {"precision": float(p[i]), "recall": float(r[i]), "f1": float(f[i]),
                                 "support": int(support[i])} for i, c in enumerate(classes)}}


def evaluate_frame(frame: pd.DataFrame) -> dict:
    """Measures of a classified frame (truth_* and verdict columns) over whole flows."""
    truth, predicted = frame["truth_label"].to_numpy(), frame["label"].to_numpy()
    out = label_metrics(truth, predicted, frame["score"].to_numpy())
    out.update(protocol_metrics(truth, frame["truth_protocol"].to_numpy(), predicted, frame["protocol"].to_numpy()))
    return out


def early_curve(frame: pd.DataFrame) -> dict:
    """Accuracy of the label (and tunnel recall) for flows cut after k packets, and for whole flows."""
    curve = {}
    for limit, part in frame.groupby("packets_limit"):
        key = "flow_end" if limit == 0 else str(int(limit))
        truth, predicted = part["truth_label"].to_numpy(), part["label"].to_numpy()
        tunnel = truth != "normal"
        curve[key] = {"accuracy": float((truth == predicted).mean()), "flows": int(len(part)),
                      "tunnel_recall": float((predicted[tunnel] != "normal").mean()) if tunnel.any() else None,
                      "false_positive_rate": float((predicted[~tunnel] != "normal").mean()) if (~tunnel).any() else None}
    order = sorted((k for k in curve if k != "flow_end"), key=int) + (["flow_end"] if "flow_end" in curve else [])
    return {k: curve[k] for k in order}


def classify_table(analyzer: Analyzer, table: pd.DataFrame) -> pd.DataFrame:
    """Verdicts for a table of whole and cut flows: each cut is classified as a capture of its own, so that a
    flow cut early never draws on verdicts of whole flows (companion flows, detector.companions)."""
    if "packets_limit" not in table:
        return analyzer.classify(table)
    out = []
    for _, part in table.groupby("packets_limit", sort=False):
        analyzer.servers.clear()
        out.append(analyzer.classify(part))
    return pd.concat(out).loc[table.index]


def cross_validate(table: pd.DataFrame, folds=5, random_state=0, **params) -> pd.DataFrame:
    """Verdicts for every row, each from a model that never saw that row's capture (grouped K-fold)."""
    groups = capture_groups(table)
    X, y = feature_matrix(table), class_names(table)
    out = []
    for train, test in GroupKFold(n_splits=folds).split(X, y, groups):
        detector = VpnDetector(random_state=random_state, **params).fit(X[train], y[train], groups=groups[train])
        out.append(classify_table(Analyzer(detector), table.iloc[test]))
    return pd.concat(out).loc[table.index]


def leave_one_out(table: pd.DataFrame, key="truth_protocol", random_state=0, **params) -> list[dict]:
    """For each vpn/proxy protocol: train without any of its captures, and count its flows still flagged."""
    rows = []
    whole = table["packets_limit"] == 0
    for protocol in sorted(table.loc[table["truth_label"] != "normal", key].unique()):
        held = (table[key] == protocol).to_numpy()
        train = table[~held]
        detector = VpnDetector(random_state=random_state, **params).fit(
            feature_matrix(train), class_names(train), groups=capture_groups(train))
        test = Analyzer(detector).classify(table[held & whole])
        flagged = test["label"] != "normal"
        rows.append({"left_out": protocol, "label": test["truth_label"].iloc[0], "flows": int(len(test)),
                     "flagged": int(flagged.sum()), "flagged_share": float(flagged.mean()),
                     "as_label": test.loc[flagged, "label"].value_counts().to_dict()})
    return rows
