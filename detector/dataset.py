"""Labelled data: the lab's labels joined to flows, and the tables the model trains and is evaluated on.

Labels come per (capture, server endpoint): a flow takes the row whose server address, port (or `*`) and
transport match either of its ends, a row with its exact port before a `*` row. Every flow of a labelled
capture must match exactly one row.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np
import pandas as pd

from features.extract.api import extract_features
from features.readers import expand_paths

TRUTH_COLUMNS = ["truth_label", "truth_protocol", "variant", "session", "condition"]
# Packet counts at which flows are also cut for training and for the early-detection curve; None: whole flow.
EARLY_STEPS = (1, 2, 3, 5, 10, 20)


class LabelError(Exception):
    pass


def find_label_files(paths) -> list[Path]:
    found = []
    for path in map(Path, paths):
        candidate = path / "labels.csv" if path.is_dir() else path.parent / "labels.csv"
        if candidate.exists() and candidate not in found:
            found.append(candidate)
    return found


def load_labels(files) -> pd.DataFrame:
    if not files:
        raise LabelError("no labels.csv beside the data: pass --labels FILE")
    frames = []
    for file in files:
        frame = pd.read_csv(file, dtype=str, keep_default_na=False)
        missing = {"capture", "label", "protocol", "server_ip", "server_port", "transport"} - set(frame.columns)
        if missing:
            raise LabelError(f"{file}: missing columns {sorted(missing)}")
        frames.append(frame)
    return pd.concat(frames, ignore_index=True)


def attach_labels(flows: pd.DataFrame, labels: pd.DataFrame) -> pd.DataFrame:
    """flows with TRUTH_COLUMNS added; raises LabelError when a flow matches no row or several."""
    flows = flows.reset_index(drop=True)
    keyed = flows.assign(_row=np.arange(len(flows)), _capture=flows["capture"].map(lambda p: Path(p).name))
    matches = []
    for end in ("src", "dst"):
        merged = keyed[["_row", "_capture", "transport", f"{end}_ip", f"{end}_port"]].merge(
            labels, left_on=["_capture", "transport", f"{end}_ip"], right_on=["capture", "transport", "server_ip"])
        port_ok = (merged["server_port"] == "*") | (merged["server_port"] == merged[f"{end}_port"].astype(str))
        matches.append(merged[port_ok])
    matched = pd.concat(matches).drop_duplicates(subset=["_row", "capture", "server_ip", "server_port", "transport"])
    # An exact port beats a `*` row: a wildcard for DTLS or ESP to a host must not swallow its DNS flows.
    matched["_exact"] = matched["server_port"] != "*"
    has_exact = matched.groupby("_row")["_exact"].transform("any")
    matched = matched[matched["_exact"] | ~has_exact]
    counts = matched["_row"].value_counts()
    unlabelled = np.setdiff1d(np.arange(len(flows)), counts.index.to_numpy())
    ambiguous = counts.index[counts > 1].to_numpy()
    for rows, problem in ((unlabelled, "matches no label row"), (ambiguous, "matches several label rows")):
        if len(rows):
            f = flows.iloc[rows[0]]
            raise LabelError(f"{f.capture}: flow {f.src_ip}:{f.src_port} -> {f.dst_ip}:{f.dst_port}/{f.transport} "
                             f"{problem} ({len(rows)} such flows)")
    matched = matched.set_index("_row").sort_index()
    out = flows.copy()
    out["truth_label"] = matched["label"].to_numpy()
    out["truth_protocol"] = matched["protocol"].to_numpy()
    for column in ("variant", "session", "condition"):
        out[column] = matched[column].to_numpy() if column in matched else ""
    return out


def labelled_features(paths, labels: pd.DataFrame, max_packets=None) -> pd.DataFrame:
    frame = extract_features(paths, max_packets=max_packets, on_error="raise")
    frame = attach_labels(frame, labels)
    frame["packets_limit"] = 0 if max_packets is None else max_packets
    return frame


def training_table(paths, labels: pd.DataFrame, steps=EARLY_STEPS) -> pd.DataFrame:
    """Whole flows plus the same flows cut after each early step, so that one model serves early verdicts too."""
    parts = [labelled_features(paths, labels)]
    for k in steps:
        cut = labelled_features(paths, labels, max_packets=k)
        # A flow with no more than k packets is already in the table whole.
        parts.append(cut[cut["packets"] >= k])
    return pd.concat(parts, ignore_index=True)


def class_names(frame: pd.DataFrame) -> np.ndarray:
    return (frame["truth_label"] + ":" + frame["truth_protocol"]).to_numpy()


def data_digest(paths, label_files) -> str:
    """SHA-256 over the captures' names and contents and the label files, in a fixed order."""
    digest = hashlib.sha256()
    for path in sorted(expand_paths(paths), key=lambda p: p.name):
        digest.update(path.name.encode())
        digest.update(hashlib.sha256(path.read_bytes()).digest())
    for file in sorted(map(Path, label_files)):
        digest.update(file.read_bytes())
    return digest.hexdigest()
