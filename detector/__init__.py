"""vpndetect: passive detection of VPN and proxy traffic."""

__version__ = "0.1.0"
