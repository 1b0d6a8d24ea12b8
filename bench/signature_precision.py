"""Signature firing counts on labelled captures: silence on normal traffic, hits on protocol captures.

    python bench/signature_precision.py /work/shared/pcaps/public-dev/MANIFEST.tsv   # one label per file
    python bench/signature_precision.py pcaps/lab/labels.csv                         # one label per flow

A MANIFEST.tsv names each file's `local_file`, `label_family` and `protocol`: every flow of the file takes
them. The lab's labels.csv labels each server endpoint of a capture; flows take them as the model's
training data does (`detector.dataset.attach_labels`).
"""

from __future__ import annotations

import argparse
import collections
import csv
import os
import sys
import warnings

import pandas as pd

from features import extract_features


def labelled_flows(label_file):
    """Every flow of the labelled captures with `truth_label` and `truth_protocol`."""
    root = os.path.dirname(os.path.abspath(label_file))
    if label_file.endswith(".tsv"):          # public-dev MANIFEST: one label per file
        frames = []
        with open(label_file, newline="") as handle:
            for row in csv.DictReader(handle, delimiter="\t"):
                frame = _features(os.path.join(root, row["local_file"]))
                frames.append(frame.assign(truth_label=row["label_family"], truth_protocol=row["protocol"]))
        return pd.concat(frames, ignore_index=True)
    from detector.dataset import attach_labels, load_labels   # the lab's labels: one per server endpoint
    labels = load_labels([label_file])
    frames = [_features(os.path.join(root, capture)) for capture in sorted(labels["capture"].unique())]
    return attach_labels(pd.concat(frames, ignore_index=True).copy(), labels)   # copy: one block per dtype


def _features(path):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return extract_features(path, on_error="collect")


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("labels")
    parser.add_argument("--verbose", action="store_true", help="print every flow where a signature fired")
    args = parser.parse_args(argv)
    frame = labelled_flows(args.labels)
    flows = collections.Counter()
    fired = collections.defaultdict(collections.Counter)
    for row in frame.itertuples():
        key = (row.truth_label, row.truth_protocol)
        flows[key] += 1
        for name in filter(None, row.signatures.split(",")):
            fired[key][name] += 1
        if args.verbose and row.signatures:
            print(f"  {os.path.basename(row.capture)} [{key[0]}/{key[1]}] {row.transport}/{row.dst_port}: {row.evidence}")
    print(f"{'family':10} {'protocol':24} {'flows':>6}  signatures fired (flows)")
    for key in sorted(flows):
        print(f"{key[0]:10} {key[1]:24} {flows[key]:6}  {dict(fired[key]) or '-'}")
    for family in sorted({f for f, _ in flows}):
        total = sum(n for (f, _), n in flows.items() if f == family)
        hits = sum(sum(c.values()) for (f, _), c in fired.items() if f == family)
        print(f"total {family:10} {total:6} flows, {hits} signature firings")
    return 0


if __name__ == "__main__":
    sys.exit(main())
