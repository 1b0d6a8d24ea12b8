"""Handshake signatures: one module per protocol, each declaring its Signature(s); all registered here.

`REGISTRY` is the ordered list the feature schema and the extractor both read. Add a protocol by writing
a module with `SIGNATURE = Signature(...)` (or `SIGNATURES = (...)`) and naming it in `_MODULES`.
"""

from __future__ import annotations

import importlib

import numpy as np

from features.signatures.base import FIRES, KINDS, Detection, Signature, SignatureView

_MODULES = ("openvpn", "wireguard", "ipsec", "l2tp", "pptp", "sstp", "anyconnect", "softether", "tor",
            "fully_encrypted", "tls_in_tls", "tls_tunnel", "websocket_tunnel", "fake_tls", "socks", "http_proxy",
            "ssh", "dns", "quic", "dtls", "stun", "fbzero", "web")

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

if len(REGISTRY) > 62:
    raise RuntimeError("run_signatures codes the signatures that fired as bits of an int64: at most 62")
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
    fired = np.zeros((view.m, len(REGISTRY)), bool)
    evidence = {}
    for j, sig in enumerate(REGISTRY):
        result = sig.detect(view)
        out[f"sig_{sig.name}"] = result.score
        out.update(result.features)
        fired[:, j] = result.score >= FIRES
        if sig.kind != "protocol":
            for r in np.flatnonzero(fired[:, j]):
                text = result.evidence.get(r)
                if text:
                    evidence.setdefault(int(r), []).append(text)
    protocol = np.array([sig.kind == "protocol" for sig in REGISTRY])
    out["well_known_vpn_port"] = well_known_port(view.proto, responder_port)
    out["signatures"] = _joined_names(fired & ~protocol)
    out["protocols"] = _joined_names(fired & protocol)
    out["evidence"] = np.full(view.m, "", object)
    for r, texts in evidence.items():
        out["evidence"][r] = "; ".join(texts)
    return out


def _joined_names(fired: np.ndarray) -> np.ndarray:
    """Per row, the names of the signatures that fired (columns of `fired`, in registry order), comma
    separated. Few combinations occur, so each is joined once rather than once per flow."""
    codes = fired.astype(np.int64) @ (np.int64(1) << np.arange(fired.shape[1], dtype=np.int64))
    combos = np.unique(codes)
    which = np.searchsorted(combos, codes)          # unique(return_inverse=True) argsorts the codes: 5x slower
    names = np.array([",".join(sig.name for j, sig in enumerate(REGISTRY) if code >> j & 1) for code in combos], object)
    return names[which]


__all__ = ["Detection", "REGISTRY", "Signature", "SignatureView", "register", "run_signatures", "well_known_port"]
