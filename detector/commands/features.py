"""`vpndetect features`: one row per flow with every feature, or the feature schema itself."""

from __future__ import annotations

import sys

import click

from detector.commands.common import emit, output_options, pick_format, reader_options, threads_option
from detector.output import write_flows


def _print_schema(fmt, output):
    from features.schema import FEATURE_SCHEMA_VERSION, schema_frame
    frame = schema_frame()
    if fmt in ("csv", "parquet", "jsonl") or output:
        import pyarrow as pa
        write_flows([pa.RecordBatch.from_pandas(frame, preserve_index=False)], pick_format(fmt, output), output)
        return
    click.echo(f"# feature schema version {FEATURE_SCHEMA_VERSION}: {len(frame)} columns, "
               f"{int(frame['model'].sum())} model features")
    for row in frame.itertuples():
        flag = "" if row.model else "  (not a model feature)"
        source = "  [flow column]" if row.source == "flow" else ""
        click.echo(f"{row.name:40} {row.dtype:8} {row.unit:10} {row.direction:8} {row.meaning}{flag}{source}")


def _write_table(batches, output):
    """For people: each flow's endpoints and size, what it was recognised as, and the evidence that fired
    (every feature is in the csv/jsonl/parquet output)."""
    handle = open(output, "w", encoding="utf-8") if output not in (None, "-") else sys.stdout
    try:
        handle.write(f"{'flow':58} {'proto':5} {'packets':>8}  {'recognised':12} {'signatures':20} evidence\n")
        for batch in batches:
            for row in batch.select(["src_ip", "src_port", "dst_ip", "dst_port", "transport", "packets", "protocols",
                                     "signatures", "evidence"]).to_pylist():
                flow = f"{row['src_ip']}:{row['src_port']} -> {row['dst_ip']}:{row['dst_port']}"
                handle.write(f"{flow:58} {row['transport']:5} {row['packets']:8}  {row['protocols'] or '-':12} "
                             f"{row['signatures'] or '-':20} {row['evidence']}\n".rstrip() + "\n")
    finally:
        if handle is not sys.stdout:
            handle.close()


@click.command()
@click.option("--schema", "show_schema", is_flag=True, help="Print the feature schema (name, dtype, unit, direction, meaning) and exit.")
@click.option("--early-packets", default=10, show_default=True, type=click.IntRange(1, 32),
              help="The early_ columns are computed over this many first packets of each flow.")
@reader_options
@threads_option
@output_options
def features(paths, show_schema, early_packets, idle_timeout, active_timeout, max_flows, threads, fmt, output):
    """Flows of captures with their features: sizes, timing, entropy, handshake signatures, TLS fingerprints."""
    if show_schema:
        _print_schema(fmt, output)
        return
    if not paths:
        raise click.UsageError("Missing argument 'PATHS...'.")
    from features.extract.api import feature_reader
    reader = feature_reader(paths, early_packets=early_packets, idle_timeout=idle_timeout,
                            active_timeout=active_timeout, max_flows=max_flows, on_error="collect", progress=True,
                            threads=threads)
    emit(reader, reader, pick_format(fmt, output), output, _write_table)


# --schema needs no capture: the shared PATHS argument becomes optional here and is checked above.
for _param in features.params:
    if _param.name == "paths":
        _param.required = False
