"""`vpndetect flows`: one row per bidirectional flow."""

from __future__ import annotations

import sys

import click

from detector.commands.common import fail, output_options, pick_format, quiet_broken_pipe, reader_options, report_errors
from detector.output import write_flows
from features import FlowReader


@click.command()
@reader_options
@output_options
def flows(paths, idle_timeout, active_timeout, max_flows, fmt, output):
    """List the bidirectional flows of captures (pcap, pcapng, compressed, directories)."""
    reader = FlowReader(paths, idle_timeout=idle_timeout, active_timeout=active_timeout, max_flows=max_flows,
                        on_error="collect", progress=True)
    try:
        write_flows(reader, pick_format(fmt, output), output)
    except BrokenPipeError:
        quiet_broken_pipe()
    except (OSError, ValueError) as exc:
        fail(str(exc))
    sys.exit(report_errors(reader))
