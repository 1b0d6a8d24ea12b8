"""Signature firing counts on labelled captures: silence on normal traffic, hits on protocol captures.

    python bench/signature_precision.py /work/shared/pcaps/public-dev/MANIFEST.tsv   # one label per file
    python bench/signature_precision.py pcaps/lab/labels.csv                         # one label per flow

A MANIFEST.tsv names each file's `local_file`, `label_family` and `protocol`: every flow of the file takes
them. The lab's labels.csv names per capture the server address, port and transport of each labelled flow
(`capture,label,protocol,...,server_ip,server_port,transport,...`); other flows of a lab capture (name
lookups, the lab's own chatter) are counted as `unlabelled`.
"""

from __future__ import annotations

import argparse
import collections
import csv
import os
import sys
import warnings

from features import extract_features


def read_labels(path):
    """capture path -> list of label rows, and whether labels are per flow."""
    root = os.path.dirname(os.path.abspath(path))
    per_capture = collections.defaultdict(list)
    with open(path, newline="") as handle:
        rows = list(csv.DictReader(handle, delimiter="\t" if path.endswith(".tsv") else ","))
    per_flow = bool(rows) and "server_ip" in rows[0]
    for row in rows:
        file = row.get("local_file") or row.get("capture")
        per_capture[os.path.join(root, file)].append(row)
    return per_capture, per_flow


def flow_labels(frame, rows, per_flow):
    """(family, protocol) for each flow of a capture's frame."""
    if not per_flow:
        row = rows[0]
        return [(row.get("label_family") or row.get("label"), row["protocol"])] * len(frame)
    # A port of "*" stands for any port of that server (FTP data, ICMP); exact ports win.
    by_server = {(r["server_ip"], r["server_port"], r["transport"]): (r["label"], r["protocol"]) for r in rows}
    out = []
    for dst, dport, src, sport, transport in zip(frame["dst_ip"], frame["dst_port"], frame["src_ip"],
                                                 frame["src_port"], frame["transport"]):
        label = None
        for key in ((dst, str(dport), transport), (src, str(sport), transport), (dst, "*", transport), (src, "*", transport)):
            label = label or by_server.get(key)
        out.append(label or ("unlabelled", "-"))
    return out


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("labels")
    parser.add_argument("--verbose", action="store_true", help="print every flow where a signature fired")
    args = parser.parse_args(argv)
    per_capture, per_flow = read_labels(args.labels)
    flows = collections.Counter()
    fired = collections.defaultdict(collections.Counter)
    for path, rows in sorted(per_capture.items()):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            frame = extract_features(path, on_error="collect")
        for (family, protocol), names, evidence, transport, dport in zip(
                flow_labels(frame, rows, per_flow), frame["signatures"], frame["evidence"], frame["transport"],
                frame["dst_port"]):
            flows[(family, protocol)] += 1
            for name in filter(None, names.split(",")):
                fired[(family, protocol)][name] += 1
            if args.verbose and names:
                print(f"  {os.path.basename(path)} [{family}/{protocol}] {transport}/{dport}: {evidence}")
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
