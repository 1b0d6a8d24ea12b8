"""`vpndetect bench`: accuracy and speed of detection on labelled captures, beside nDPI's."""

from __future__ import annotations

import sys

import click

from detector.commands.common import fail


@click.command()
@click.argument("data", nargs=-1, required=True, type=click.Path(exists=True))
@click.option("--labels", "label_files", multiple=True, type=click.Path(exists=True, dir_okay=False),
              help="labels.csv file(s) (default: labels.csv beside the data).")
@click.option("--manifest", type=click.Path(exists=True, dir_okay=False),
              help="Per-file labels instead (a MANIFEST.tsv with local_file and label_family columns).")
@click.option("--model", "model_dir", type=click.Path(exists=True, file_okay=False), default=None,
              help="Model to evaluate (default: the shipped one).")
@click.option("--cv", "folds", type=click.IntRange(min=2), default=None,
              help="Instead of a given model, cross-validate: K models, each tested on captures it never saw.")
@click.option("--leave-one-out", is_flag=True, help="Also train without each vpn/proxy protocol in turn.")
@click.option("--ndpi/--no-ndpi", default=True, show_default=True, help="Run nDPI (through NFStream) as the baseline.")
@click.option("--ports/--no-ports", default=True, show_default=True, help="Check verdicts with every port rewritten.")
@click.option("--report", "report_dir", type=click.Path(file_okay=False), default=None,
              help="Write bench.json, bench.md, PNG plots and index.html here.")
def bench(data, label_files, manifest, model_dir, folds, leave_one_out, ndpi, ports, report_dir):
    """Measure detection accuracy (per label and protocol, ROC, early detection, ports) and speed."""
    from detector import benchmark
    from detector.dataset import LabelError
    from detector.model import ModelError
    from features.errors import CaptureError

    try:
        if manifest:
            result = benchmark.run_manifest(data, manifest, model_dir, ndpi)
        else:
            result = benchmark.run(data, label_files, model_dir, folds, leave_one_out, ndpi, ports)
    except (LabelError, ModelError, CaptureError) as exc:
        fail(str(exc))
    from detector.benchreport import markdown, write_report
    click.echo(markdown(result))
    if report_dir:
        click.echo(f"report: {write_report(result, report_dir)}", err=True)
    sys.exit(0)
