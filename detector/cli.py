"""The `vpndetect` command line."""

from __future__ import annotations

import importlib

import click

from detector import __version__

# Subcommands are imported on first use so that `vpndetect flows` never pays for LightGBM or the lab.
_SUBCOMMANDS = {
    "flows": "detector.commands.flows:flows",
    "features": "detector.commands.features:features",
    "lab": "detector.lab.cli:lab",
    "sniff": "detector.commands.sniff:sniff",
    "analyze": "detector.commands.analyze:analyze",
    "train": "detector.commands.train:train",
    "bench": "detector.commands.bench:bench",
}


class _LazyGroup(click.Group):
    def list_commands(self, ctx):
        return sorted(_SUBCOMMANDS)

    def get_command(self, ctx, name):
        target = _SUBCOMMANDS.get(name)
        if target is None:
            return None
        module, attr = target.split(":")
        return getattr(importlib.import_module(module), attr)


@click.group(cls=_LazyGroup)
@click.version_option(__version__, prog_name="vpndetect")
def main():
    """Passive detection of VPN and proxy traffic in captures and on live interfaces."""


if __name__ == "__main__":
    main()
