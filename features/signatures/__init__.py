"""Handshake signatures: one module per protocol, each declaring its Signature(s); all registered here.

`REGISTRY` is the ordered list the feature schema and the extractor both read. Add a protocol by writing
a module with `SIGNATURE = Signature(...)` (or `SIGNATURES = (...)`) and naming it in `_MODULES`.
"""

from __future__ import annotations

import importlib

import numpy as np

from features.signatures.base import FIRES, KINDS, Detection, Signature, SignatureView

_MODULES = ("openvpn", "wireguard", "ipsec", "l2tp", "pptp", "sstp", "anyconnect", "softether", "tor",
            "fully_encrypted", "tls_in_tls", "tls_tunnel", "websocket_tunnel", "fake_tls", "socks", "http_proxy", "ssh", "dns", "quic", "dtls", "web")

REGISTRY: list[Signature] = []


def register(signature: Signature) -> Signature:
    if signature.kind not in KINDS:
        raise ValueError(f"signature {signature.name}: kind must be one of {KINDS}")
    if any(s.name == signature.name for s in REGISTRY):
        raise ValueError(f"signature {signature.name} registered twice")
    REGISTRY.append(signature)
    return signature


for _name in _MODULES:
    _module = importlib.import_module(f"features.signatures.{_name}")
    for _sig in getattr(_module, "SIGNATURES", ()) or (_module.SIGNATURE,):
        register(_sig)

VPN_PORTS = {(t, p) for s in REGISTRY if s.kind != "protocol" for t, p in s.ports}
_TRANSPORTS = {"tcp": 6, "udp": 17}


def well_known_port(proto, responder_port):
    """1 where the responder port is a well-known port of a VPN/proxy protocol on that transport."""
    out = np.zeros(len(proto), np.int8)
    for transport, port in VPN_PORTS:
        out |= ((proto == _TRANSPORTS[transport]) & (responder_port == port)).astype(np.int8)
    return out


def run_signatures(rows, columns: dict, responder_port) -> dict:
    """Every registered signature over the ended flows: score and extra columns, plus the names that fired
    and their evidence."""
    view = SignatureView(rows, columns)
    out = {}
    fired = [[] for _ in range(view.m)]
    recognised = [[] for _ in range(view.m)]
    evidence = [[] for _ in range(view.m)]
    for sig in REGISTRY:
        result = sig.detect(view)
        out[f"sig_{sig.name}"] = result.score
        out.update(result.features)
        for r in np.flatnonzero(result.score >= FIRES):
            (recognised if sig.kind == "protocol" else fired)[r].append(sig.name)
            text = result.evidence.get(r)
            if text and sig.kind != "protocol":
                evidence[r].append(text)
    out["well_known_vpn_port"] = well_known_port(view.proto, responder_port)
    out["signatures"] = np.array([",".join(f) for f in fired], object)
    out["protocols"] = np.array([",".join(f) for f in recognised], object)
    out["evidence"] = np.array(["; ".join(e) for e in evidence], object)
    return out


__all__ = ["Detection", "REGISTRY", "Signature", "SignatureView", "register", "run_signatures", "well_known_port"]
