"""`vpndetect flows`: one row per bidirectional flow."""

from __future__ import annotations

import click

from detector.commands.common import emit, output_options, pick_format, reader_options
from features import FlowReader


@click.command()
@reader_options
@output_options
def flows(paths, idle_timeout, active_timeout, max_flows, fmt, output):
    """List the bidirectional flows of captures (pcap, pcapng, compressed, directories)."""
    reader = FlowReader(paths, idle_timeout=idle_timeout, active_timeout=active_timeout, max_flows=max_flows,
                        on_error="collect", progress=True)
    emit(reader, reader, pick_format(fmt, output), output)
