"""Writing a benchmark result: JSON (everything), Markdown (the tables), PNG plots, one HTML page."""

from __future__ import annotations

import base64
import html
import json
from pathlib import Path


def _rows(metrics: dict, key: str) -> list[str]:
    lines = [f"| {key} | precision | recall | F1 | flows |", "|---|---|---|---|---|"]
    for name, m in metrics.items():
        lines.append(f"| {name} | {m['precision']:.4f} | {m['recall']:.4f} | {m['f1']:.4f} | {m['support']} |")
    return lines


def markdown(result: dict) -> str:
    out = ["# vpndetect benchmark", "", f"Data: {result['data']['captures']} captures, "
           f"{result['data']['flows']} flows. Model: {result['model']}.", ""]
    for name in ("files", "ndpi_files"):
        if name in result:
            out += [f"## {'vpndetect' if name == 'files' else 'nDPI'} per file", ""]
            out += [f"- {k}: {v}" for k, v in result[name].items()] + [""]
    for name, block in result.get("results", {}).items():
        out += [f"## {name}", ""]
        out.append(f"- tunnel (vpn+proxy) recall: {_fmt(block.get('tunnel_recall'))}; false-positive rate on normal "
                   f"flows: {_fmt(block.get('false_positive_rate'))} ({block.get('false_positives')} of "
                   f"{block.get('normal_flows')})")
        if "roc_auc" in block:
            out.append(f"- ROC-AUC {block['roc_auc']:.4f}; FPR at recall " + ", ".join(
                f"{k}: {v:.5f}" for k, v in block.get("fpr_at_recall", {}).items()))
        if block.get("named_correctly") is not None:
            out.append(f"- protocol named correctly for {block['named_correctly']:.4f} of vpn/proxy flows")
        out += [""] + _rows(block["per_label"], "label") + [""]
        if "per_protocol" in block:
            out += _rows(block["per_protocol"], "protocol") + [""]
        matrix = block["confusion"]
        out += ["Confusion (rows: truth, columns: verdict)", "", "| | " + " | ".join(matrix["labels"]) + " |",
                "|---" * (len(matrix["labels"]) + 1) + "|"]
        out += [f"| {label} | " + " | ".join(map(str, row)) + " |" for label, row in zip(matrix["labels"], matrix["matrix"])]
        out.append("")
    if "early" in result:
        out += ["## Early detection", "", "| packets | accuracy | tunnel recall | FPR | flows |", "|---|---|---|---|---|"]
        out += [f"| {k} | {v['accuracy']:.4f} | {_fmt(v['tunnel_recall'])} | {_fmt(v['false_positive_rate'])} | {v['flows']} |"
                for k, v in result["early"].items()] + [""]
    if "ports" in result:
        p = result["ports"]
        out += ["## Rewritten ports", "", f"{p['changed']} of {p['flows']} verdicts changed when every TCP/UDP port "
                f"was remapped ({p['changed_protocol']} protocol names changed).", ""]
    if "leave_one_out" in result:
        out += ["## Leave one protocol out", "", "| left out | label | flows | still flagged | share | as |",
                "|---|---|---|---|---|---|"]
        out += [f"| {r['left_out']} | {r['label']} | {r['flows']} | {r['flagged']} | {r['flagged_share']:.3f} | "
                f"{r['as_label']} |" for r in result["leave_one_out"]] + [""]
    if "throughput" in result:
        t = result["throughput"]
        out += ["## Throughput", "", f"analyze end to end (read, features, model) in this process: "
                f"{t['packets']} packets in {t['seconds']:.2f} s = {t['packets_per_s']:,.0f} packets/s", ""]
    return "\n".join(out)


def _fmt(value):
    return "n/a" if value is None else f"{value:.4f}"


def plots(result: dict, directory: Path) -> list[Path]:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    made = []
    if "results" not in result:
        return made
    fig, ax = plt.subplots(figsize=(5, 4))
    for name, block in result["results"].items():
        if "roc" in block:
            ax.plot(block["roc"]["fpr"], block["roc"]["tpr"], label=f"{name} (AUC {block['roc_auc']:.3f})")
    ax.set_xscale("symlog", linthresh=1e-3)
    ax.set_xlabel("false-positive rate (normal flows)")
    ax.set_ylabel("recall (vpn + proxy flows)")
    ax.legend(loc="lower right", fontsize=7)
    ax.set_title("ROC")
    made.append(_save(fig, directory / "roc.png"))

    for name, block in result["results"].items():
        matrix = block["confusion"]
        fig, ax = plt.subplots(figsize=(4, 3.5))
        ax.imshow(matrix["matrix"], cmap="Blues")
        ax.set_xticks(range(3), matrix["labels"])
        ax.set_yticks(range(3), matrix["labels"])
        ax.set_xlabel("verdict")
        ax.set_ylabel("truth")
        for i, row in enumerate(matrix["matrix"]):
            for j, value in enumerate(row):
                ax.text(j, i, str(value), ha="center", va="center", fontsize=8)
        ax.set_title(f"confusion: {name}")
        made.append(_save(fig, directory / f"confusion-{name}.png"))

    if "early" in result:
        fig, ax = plt.subplots(figsize=(5, 3.5))
        keys = list(result["early"])
        ax.plot(range(len(keys)), [result["early"][k]["accuracy"] for k in keys], marker="o", label="accuracy")
        ax.plot(range(len(keys)), [result["early"][k]["tunnel_recall"] or 0 for k in keys], marker="s",
                label="vpn+proxy recall")
        ax.set_xticks(range(len(keys)), keys)
        ax.set_xlabel("packets seen")
        ax.set_ylim(0, 1.02)
        ax.legend(loc="lower right")
        ax.set_title("early detection")
        made.append(_save(fig, directory / "early.png"))
    return made


def _save(fig, path):
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    import matplotlib.pyplot as plt
    plt.close(fig)
    return path


def write_report(result: dict, directory) -> Path:
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    (directory / "bench.json").write_text(json.dumps(result, indent=2) + "\n")
    text = markdown(result)
    (directory / "bench.md").write_text(text)
    images = plots(result, directory)
    body = "".join(f'<img src="data:image/png;base64,{base64.b64encode(p.read_bytes()).decode()}" alt="{p.stem}">'
                   for p in images)
    page = (f"<!doctype html><meta charset=utf-8><title>vpndetect benchmark</title>"
            f"<style>body{{font-family:sans-serif;max-width:1100px;margin:auto}}img{{margin:6px}}</style>"
            f"<div>{body}</div><pre>{html.escape(text)}</pre>")
    (directory / "index.html").write_text(page)
    return directory / "index.html"
