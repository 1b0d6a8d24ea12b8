"""What a lab variant is, and the one registry every implementation module adds its variants to."""

from __future__ import annotations

import shutil
import subprocess
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Callable

LABELS = ("vpn", "proxy", "normal")

VPN_PROTOCOLS = {"openvpn", "wireguard", "ipsec", "l2tp", "pptp", "sstp", "anyconnect", "softether"}
PROXY_PROTOCOLS = {
    "shadowsocks", "vmess", "vless", "trojan", "obfs4", "tor", "ssh_tunnel",
    "socks", "http_proxy", "tls_tunnel", "dns_tunnel",
}


@dataclass(frozen=True)
class Endpoint:
    """One server endpoint of a variant; `port=None` means the session's port, `"*"` any port."""

    transport: str = "tcp"
    port: int | str | None = None
    ip: str | None = None  # None: the server's veth address


@dataclass(frozen=True)
class Variant:
    name: str
    label: str
    protocol: str
    implementation: str
    packages: tuple[str, ...]
    default_port: int | None
    run: Callable  # run(session) -> Access | None; starts server and client, raises LabError on failure
    endpoints: tuple[Endpoint, ...] = (Endpoint(),)
    # Binaries that must exist besides the packages (checked instead of dpkg when set, cheaper and exact).
    binaries: tuple[str, ...] = ()
    random_port: bool = True  # False when the protocol cannot move (ESP, GRE, iodine's fixed DNS port)
    needs_uml: bool | str = False  # True: client and server run in UML guests; "client": only the client
    setup_budget: float = 20.0  # seconds the tunnel may take to come up
    description: str = ""
    extra: dict = field(default_factory=dict, hash=False, compare=False)

    def __post_init__(self):
        if self.label not in LABELS:
            raise ValueError(f"{self.name}: label {self.label!r} not in {LABELS}")
        if self.label == "vpn" and self.protocol not in VPN_PROTOCOLS:
            raise ValueError(f"{self.name}: {self.protocol!r} is not a VPN protocol name")
        if self.label == "proxy" and self.protocol not in PROXY_PROTOCOLS:
            raise ValueError(f"{self.name}: {self.protocol!r} is not a proxy protocol name")

    def missing_packages(self) -> list[str]:
        return [p for p in self.packages if not package_installed(p)]

    @property
    def version(self) -> str:
        return package_version(self.packages[0]) if self.packages else ""


_REGISTRY: dict[str, Variant] = {}


def register(*variants: Variant) -> None:
    for variant in variants:
        if variant.name in _REGISTRY:
            raise ValueError(f"variant {variant.name!r} registered twice")
        _REGISTRY[variant.name] = variant


def all_variants() -> dict[str, Variant]:
    # Importing the package registers every implementation module's variants.
    import detector.lab.variants  # noqa: F401

    return dict(_REGISTRY)


@lru_cache(maxsize=None)
def _dpkg_status() -> dict[str, str]:
    if shutil.which("dpkg-query") is None:
        return {}
    out = subprocess.run(
        ["dpkg-query", "-W", "-f", "${Package}\t${Version}\t${db:Status-Abbrev}\n"],
        capture_output=True, text=True, check=False,
    ).stdout
    status = {}
    for line in out.splitlines():
        parts = line.split("\t")
        if len(parts) == 3 and parts[2].startswith("ii"):
            status[parts[0]] = parts[1]
    return status


def package_installed(name: str) -> bool:
    return name in _dpkg_status()


def package_version(name: str) -> str:
    return _dpkg_status().get(name, "")
