"""`vpndetect analyze`: a verdict for every flow of captures — vpn, proxy or normal, which protocol, why."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import click

from detector.commands.common import emit, fail, output_options, pick_format, reader_options, threads_option

RECORD_COLUMNS = ["capture", "src_ip", "src_port", "dst_ip", "dst_port", "transport", "vlan", "first_seen",
                  "last_seen", "src2dst_packets", "dst2src_packets", "packets", "src2dst_bytes", "dst2src_bytes",
                  "bytes", "end_reason", "label", "protocol", "score", "evidence", "signatures", "tls_sni"]


CLASSIFY_ROWS = 4096


def verdict_batches(reader, analyzer, columns=None, rows=CLASSIFY_ROWS):
    """Classify the flows of a feature reader as they come, at least `rows` at a time (the model's cost per call
    would dominate a directory of small captures); yields Arrow record batches, in order.

    When the reader computes features beside flow assembly (threads=2), the classification takes a thread of
    its own too, one chunk behind the reader, in order (the analyzer remembers flagged servers from chunk to
    chunk)."""
    import pyarrow as pa

    def classified(pending):
        # Neither joined into one chunk per column nor into 2-D blocks: each cost more than the conversion.
        frame = analyzer.classify(pa.Table.from_batches(pending).to_pandas(split_blocks=True))
        if columns:
            frame = frame[[c for c in columns if c in frame.columns]]
        return pa.Table.from_pandas(frame, preserve_index=False).combine_chunks().to_batches()

    def chunks():
        pending, held = [], 0
        for batch in reader:
            pending.append(batch)
            held += batch.num_rows
            if held >= rows:
                yield pending
                pending, held = [], 0
        if pending:
            yield pending

    if getattr(reader, "threads", 1) < 2:
        for pending in chunks():
            yield from classified(pending)
        return
    with ThreadPoolExecutor(1, "vpndetect-verdicts") as worker:
        previous = None
        for pending in chunks():
            current = worker.submit(classified, pending)
            if previous is not None:
                yield from previous.result()
            previous = current
        if previous is not None:
            yield from previous.result()


@click.command()
@reader_options
@threads_option
@output_options
@click.option("--model", "model_dir", type=click.Path(exists=True, file_okay=False), default=None,
              help="Folder of a model made by `vpndetect train` (default: the shipped model).")
@click.option("--all-columns", is_flag=True, help="Write every feature column too (csv, jsonl, parquet).")
@click.option("--threshold", type=click.FloatRange(0, 1), default=None,
              help="Score a flow needs to be flagged on the model alone, without a signature (default 0.98).")
def analyze(paths, idle_timeout, active_timeout, max_flows, threads, fmt, output, model_dir, all_columns, threshold):
    """Label every flow of captures as vpn, proxy or normal, with its protocol, a score and the evidence."""
    from detector.model import ModelError
    from detector.pipeline import THRESHOLD, load_detector
    from detector.report import print_verdict_table
    from features.extract.api import feature_reader

    try:
        analyzer = load_detector(model_dir, THRESHOLD if threshold is None else threshold)
    except ModelError as exc:
        fail(str(exc))
    reader = feature_reader(paths, idle_timeout=idle_timeout, active_timeout=active_timeout, max_flows=max_flows,
                            on_error="collect", progress=True, threads=threads)
    batches = verdict_batches(reader, analyzer, None if all_columns else RECORD_COLUMNS)
    emit(reader, batches, pick_format(fmt, output), output, print_verdict_table)
