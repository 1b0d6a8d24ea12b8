"""Signature firing counts per labelled capture: silence on normal traffic, hits on protocol captures.

Usage: python bench/signature_precision.py MANIFEST.tsv [--root DIR] [--verbose]
       python bench/signature_precision.py --labels pcaps/lab/labels.csv

A MANIFEST.tsv (public-dev) names each file's `local_file`, `label_family` and `protocol`; a lab
labels.csv names `path` (or `file`/`capture`) and `protocol` (or `variant`/`label`) per capture.
"""

from __future__ import annotations

import argparse
import collections
import csv
import os
import sys
import warnings

from features import extract_features


def read_labels(path, root):
    rows = []
    with open(path, newline="") as handle:
        delimiter = "\t" if path.endswith(".tsv") else ","
        for row in csv.DictReader(handle, delimiter=delimiter):
            file = row.get("local_file") or row.get("path") or row.get("file") or row.get("capture")
            family = row.get("label_family") or row.get("family") or row.get("kind") or ""
            protocol = row.get("protocol") or row.get("variant") or row.get("label") or ""
            if file:
                rows.append((os.path.join(root, file), family, protocol))
    return rows


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("labels")
    parser.add_argument("--root", default=None, help="folder the label file's paths are relative to")
    parser.add_argument("--verbose", action="store_true", help="print every flow where a signature fired")
    args = parser.parse_args(argv)
    root = args.root or os.path.dirname(os.path.abspath(args.labels))
    per_family = collections.defaultdict(collections.Counter)
    flows_per_family = collections.Counter()
    for path, family, protocol in read_labels(args.labels, root):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            frame = extract_features(path, on_error="collect")
        flows_per_family[family] += len(frame)
        fired = frame[frame["signatures"] != ""] if len(frame) else frame
        for names in fired["signatures"] if len(frame) else ():
            for name in names.split(","):
                per_family[family][name] += 1
        summary = collections.Counter(n for names in (fired["signatures"] if len(frame) else ()) for n in names.split(","))
        print(f"{family:8} {protocol:14} {len(frame):6} flows  fired: {dict(summary) or '-'}  {os.path.relpath(path, root)}")
        if args.verbose:
            for _, row in fired.iterrows():
                print(f"    {row['transport']} {row['src_port']}->{row['dst_port']}: {row['evidence']}")
    print("\nflows where a VPN/proxy signature fired, by label family:")
    for family in sorted(flows_per_family):
        print(f"  {family:8} {flows_per_family[family]:7} flows  {dict(per_family[family]) or 'none'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
