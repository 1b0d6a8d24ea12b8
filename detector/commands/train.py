"""`vpndetect train`: fit a model on labelled captures (the lab's, or your own)."""

from __future__ import annotations

import sys

import click

from detector.commands.common import fail


@click.command()
@click.argument("data", nargs=-1, required=True, type=click.Path(exists=True))
@click.option("--labels", "label_files", multiple=True, type=click.Path(exists=True, dir_okay=False),
              help="labels.csv file(s) (default: labels.csv beside the data).")
@click.option("-o", "--output", "out_dir", required=True, type=click.Path(file_okay=False),
              help="Folder to write the model (model-label.txt, model-protocol.txt, metadata.json) into.")
@click.option("--seed", default=0, show_default=True, help="Seed of the validation split and of LightGBM.")
def train(data, label_files, out_dir, seed):
    """Train a model on labelled captures; the same data and seed give the same model, byte for byte."""
    from detector.dataset import LabelError
    from detector.training import train as fit
    from features.errors import CaptureError

    try:
        meta = fit(data, out_dir, label_files=label_files or None, random_state=seed)
    except (LabelError, CaptureError) as exc:
        fail(str(exc))
    td = meta["training_data"]
    click.echo(f"model written to {out_dir}: {td['flows']} flows ({td['rows']} rows with early cuts) from "
               f"{td['captures']} captures, {len(meta['classes'])} classes, rounds {meta['best_iterations']}, "
               f"validation log-loss {meta['validation_logloss']}", err=True)
    sys.exit(0)
