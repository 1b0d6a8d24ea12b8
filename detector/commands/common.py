"""Options and error handling shared by the subcommands that read captures."""

from __future__ import annotations

import os
import sys

import click

from detector.output import FORMATS

EXIT_BAD_INPUT = 2


def reader_options(func):
    """Input options shared by every command that assembles flows."""
    options = [
        click.argument("paths", nargs=-1, required=True, type=click.Path(path_type=str)),
        click.option("--idle-timeout", default=120.0, show_default=True, type=click.FloatRange(min=0, min_open=True),
                     help="Seconds without packets after which a flow ends."),
        click.option("--active-timeout", default=1800.0, show_default=True,
                     type=click.FloatRange(min=0, min_open=True),
                     help="Seconds after its first packet at which a flow is cut (the rest continues as a new flow)."),
        click.option("--max-flows", default=500_000, show_default=True, type=click.IntRange(min=1),
                     help="Open flows kept at most; the least recently active one is evicted past it."),
    ]
    for option in reversed(options):
        func = option(func)
    return func


def threads_option(func):
    """The second thread of the commands that compute features (FlowReader's `threads`)."""
    return click.option("--threads", type=click.IntRange(1, 2), default=None,
                        help="1: one thread. 2: features are computed in a worker thread beside the one that "
                             "assembles flows (the same output). Default: 2 when the process may use more than one "
                             "core.")(func)


def output_options(func):
    func = click.option("-o", "--output", "output", default=None, type=click.Path(dir_okay=False),
                        help="Write to this file instead of stdout.")(func)
    func = click.option("--format", "fmt", type=click.Choice(FORMATS), default=None,
                        help="Output format (default: from the -o extension, else table).")(func)
    return func


def pick_format(fmt, output):
    if fmt:
        return fmt
    if output:
        for ext, name in ((".csv", "csv"), (".jsonl", "jsonl"), (".json", "jsonl"), (".parquet", "parquet")):
            if output.endswith(ext):
                return name
    return "table"


def report_errors(reader) -> int:
    """Print each notice and error on one line to stderr; the exit code the command should end with."""
    for notice in reader.notices:
        click.echo(f"vpndetect: warning: {notice}", err=True)
    for error in reader.errors:
        click.echo(f"vpndetect: error: {error}", err=True)
    return EXIT_BAD_INPUT if reader.errors else 0


def fail(message: str):
    click.echo(f"vpndetect: error: {message}", err=True)
    sys.exit(EXIT_BAD_INPUT)


def quiet_broken_pipe():
    """The reader of our output went away (`| head`): stop quietly, as command-line tools do."""
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, sys.stdout.fileno())
    sys.exit(0)


def emit(reader, batches, fmt, output, table_writer=None):
    """Write the record batches in the chosen format, then exit with the reader's errors reported.

    `table_writer(batches, output)` replaces the plain table for commands with a people-facing view of their own.
    """
    from detector.output import write_flows

    try:
        if fmt == "table" and table_writer is not None:
            table_writer(batches, output)
        else:
            write_flows(batches, fmt, output)
    except BrokenPipeError:
        quiet_broken_pipe()
    except (OSError, ValueError) as exc:
        fail(str(exc))
    sys.exit(report_errors(reader))
