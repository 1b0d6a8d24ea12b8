"""The measurements behind `vpndetect bench`."""

from __future__ import annotations

import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd

from detector.dataset import class_names, find_label_files, load_labels, training_table
from detector.evaluation import (capture_groups, classify_table, cross_validate, early_curve, evaluate_frame,
                                 label_metrics, leave_one_out)
from detector.model import VpnDetector
from detector.ndpi import join_ndpi, ndpi_verdicts
from detector.pipeline import Analyzer, load_detector
from detector.portmap import rewrite_ports
from features.extract.api import extract_features, feature_matrix, feature_reader
from features.readers import expand_paths


def run(data, label_files, model_dir, folds, leave_out, with_ndpi, with_ports) -> dict:
    label_files = list(label_files) if label_files else find_label_files(data)
    labels = load_labels(label_files)
    captures = expand_paths(data)
    started = time.perf_counter()
    # Whole flows and the same flows cut after 1, 2, 3, 5, 10, 20 packets: the early-detection curve.
    table = training_table(data, labels)
    if folds:
        verdicts = cross_validate(table, folds)
        model_name = f"{folds}-fold cross-validation grouped by capture"
        analyzer = None
    else:
        analyzer = load_detector(model_dir)
        verdicts = classify_table(analyzer, table)
        model_name = str(model_dir or "shipped model")
    whole = verdicts[verdicts["packets_limit"] == 0]
    result = {"model": model_name, "data": {"captures": len(captures), "flows": int(len(whole)),
                                            "label_files": [str(f) for f in label_files]},
              "results": {"vpndetect": evaluate_frame(whole)}, "early": early_curve(verdicts)}
    result["data"]["seconds_to_evaluate"] = time.perf_counter() - started
    if with_ndpi:
        ndpi_label = join_ndpi(whole, ndpi_verdicts(captures)).to_numpy()
        result["results"]["ndpi"] = label_metrics(whole["truth_label"].to_numpy(), ndpi_label)
    if analyzer is None:
        # Port robustness and speed need one model: cross-validation's folds are fitted on the whole data here.
        analyzer = Analyzer(VpnDetector().fit(feature_matrix(table), class_names(table), groups=capture_groups(table)))
    if with_ports:
        result["ports"] = port_robustness(captures, analyzer)
    if leave_out:
        result["leave_one_out"] = leave_one_out(table)
    result["throughput"] = throughput(captures, analyzer)
    return result


def port_robustness(captures, analyzer) -> dict:
    """Verdicts on each capture and on a copy with every TCP/UDP port remapped, flow by flow."""
    changed = changed_protocol = flows = 0
    examples = []
    with tempfile.TemporaryDirectory() as tmp:
        for path in captures:
            moved = Path(tmp) / (Path(path).name + ".ports.pcap")
            rewrite_ports(path, moved)
            before = analyzer.classify(extract_features(path, on_error="raise"))
            after = analyzer.classify(extract_features(moved, on_error="raise"))
            if len(before) != len(after):
                raise RuntimeError(f"{path}: rewriting ports changed the flows ({len(before)} -> {len(after)})")
            diff = before["label"].to_numpy() != after["label"].to_numpy()
            diff_protocol = before["protocol"].to_numpy() != after["protocol"].to_numpy()
            flows += len(before)
            changed += int(diff.sum())
            changed_protocol += int(diff_protocol.sum())
            for i in np.flatnonzero(diff)[:2]:
                examples.append(f"{Path(path).name} flow {before['flow_id'].iloc[i]}: "
                                f"{before['label'].iloc[i]} -> {after['label'].iloc[i]}")
    return {"flows": flows, "changed": changed, "changed_protocol": changed_protocol, "examples": examples[:10]}


def throughput(captures, analyzer) -> dict:
    from detector.commands.analyze import verdict_batches
    started = time.perf_counter()
    reader = feature_reader(captures, on_error="collect")
    for _ in verdict_batches(reader, analyzer):
        pass
    seconds = time.perf_counter() - started
    return {"packets": reader.packets_read, "seconds": seconds, "packets_per_s": reader.packets_read / seconds}


def run_manifest(data, manifest, model_dir, with_ndpi) -> dict:
    """Per-file labels (public test captures): a vpn/proxy file is detected when one of its flows is flagged with
    its label family; every flow of a normal file should be normal. Files labelled `tunnel` are left out."""
    listing = pd.read_csv(manifest, sep="\t", dtype=str)
    root = Path(manifest).parent
    listing = listing[listing["label_family"].isin(["vpn", "proxy", "normal"])]
    paths = [root / f for f in listing["local_file"]]
    analyzer = load_detector(model_dir)
    frame = analyzer.classify(extract_features(paths, on_error="collect"))
    family = dict(zip([str(p) for p in paths], listing["label_family"]))
    frame["family"] = frame["capture"].map(family)
    result = {"model": str(model_dir or "shipped model"),
              "data": {"captures": len(paths), "flows": int(len(frame)), "manifest": str(manifest)},
              "files": _per_file(frame, "label")}
    if with_ndpi:
        frame["ndpi_label"] = join_ndpi(frame, ndpi_verdicts(paths)).to_numpy()
        result["ndpi_files"] = _per_file(frame, "ndpi_label")
    return result


def _per_file(frame, column) -> dict:
    out = {}
    for family in ("vpn", "proxy"):
        files = frame[frame["family"] == family].groupby("capture")[column].apply(lambda s: (s != "normal").any())
        out[f"{family}_files_detected"] = f"{int(files.sum())}/{len(files)}"
    normal = frame[frame["family"] == "normal"]
    flagged = normal[column] != "normal"
    out["normal_flows_flagged"] = f"{int(flagged.sum())}/{len(normal)}"
    out["normal_false_positive_rate"] = float(flagged.mean()) if len(normal) else None
    out["flagged_normal_examples"] = (normal.loc[flagged, "capture"].map(lambda p: Path(p).name) + ": " +
                                      normal.loc[flagged, column] + " " +
                                      normal.loc[flagged].get("protocol", normal.loc[flagged, column])).head(15).tolist()
    return out
