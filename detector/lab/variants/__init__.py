"""Every implementation family's module; importing this package registers all variants."""

import importlib

MODULES = [
    "baseline_web",
    "wireguard",
    "shadowsocks",
    "openvpn",
    "v2ray",
    "tls_proxies",
    "ssh_tunnel",
    "plain_proxies",
    "obfs4",
    "anyconnect",
    "ipsec",
    "iodine",
    "softether",
    "tor",
    "baseline_services",
    "uml",
    "quic",
]

for _name in MODULES:
    importlib.import_module(f"{__name__}.{_name}")
