"""Subcommands of the `vpndetect` command line, one module each."""
