"""Handshake signatures: one module per protocol, each declaring its Signature(s); all registered here.

`REGISTRY` is the ordered list the feature schema and the extractor both read. Add a protocol by writing
a module with `SIGNATURE = Signature(...)` (or `SIGNATURES = (...)`) and naming it in `_MODULES`.
"""

from __future__ import annotations

import importlib
from functools import lru_cache

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


_PORT_KEYS = np.array(sorted(_TRANSPORTS[t] << 16 | p for t, p in VPN_PORTS), np.int64)


def well_known_port(proto, responder_port):
    """1 where the responder port is a well-known port of a VPN/proxy protocol on that transport."""
    return np.isin(np.asarray(proto, np.int64) << 16 | responder_port, _PORT_KEYS).astype(np.int8)


def run_signatures(rows, columns: dict, responder_port) -> dict:
    """Every registered signature over the ended flows: score and extra columns, plus the names that fired
    and their evidence."""
    view = SignatureView(rows, columns)
    out = {}
    fired = np.zeros(view.m, np.int64)              # bit j: signature j fired
    found = []                                      # (rows that fired, their evidence or None), registry order
    for j, sig in enumerate(REGISTRY):
        result = sig.detect(view)
        out[f"sig_{sig.name}"] = result.score
        out.update(result.features)
        fires = result.score >= FIRES
        fired |= fires.astype(np.int64) << j
        if sig.kind != "protocol" and result.evidence:
            where = np.flatnonzero(fires)
            found.append((where, list(map(result.evidence.get, where.tolist()))))
    out["well_known_vpn_port"] = well_known_port(view.proto, responder_port)
    out["signatures"], out["protocols"] = _joined_names(fired)
    out["evidence"] = _evidence(view.m, found)
    return out


def _evidence(m: int, found: list) -> np.ndarray:
    """Per row, the evidence texts found for it joined by "; " in registry order, "" where none. The texts are
    sorted by row (stably) and only the rows with several are joined in Python: most have one."""
    out = np.full(m, "", object)
    if not found:
        return out
    rows = np.concatenate([where for where, _ in found])
    texts = np.array([text for _, found_texts in found for text in found_texts], object)
    kept = texts.astype(bool)                       # rows without a text (None or "") give none
    order = np.argsort(rows[kept], kind="stable")
    rows, texts = rows[kept][order], texts[kept][order]
    if not len(rows):
        return out
    starts = np.flatnonzero(np.concatenate(([True], rows[1:] != rows[:-1])))
    ends = np.append(starts[1:], len(rows))
    joined = texts[starts]
    for g in np.flatnonzero(ends - starts > 1).tolist():
        joined[g] = "; ".join(texts[starts[g]:ends[g]].tolist())
    out[rows[starts]] = joined
    return out


def _joined_names(fired: np.ndarray):
    """Per row, the names of the VPN/proxy/tunnel signatures and of the protocol signatures that fired (bits of
    `fired`, in registry order), comma separated. Few combinations occur, so each is joined once rather than
    once per flow."""
    combos = np.unique(fired)
    which = np.searchsorted(combos, fired)          # unique(return_inverse=True) argsorts the codes: 5x slower
    names = [_names(code) for code in combos.tolist()]
    return tuple(np.array([pair[kind] for pair in names], object)[which] for kind in (0, 1))


@lru_cache(maxsize=4096)
def _names(code: int) -> tuple:
    """The names of the VPN/proxy/tunnel signatures and of the protocol signatures whose bits are set in `code`,
    each comma separated: the same combinations come back drain after drain."""
    fired = [sig for j, sig in enumerate(REGISTRY) if code >> j & 1]
    return (",".join(sig.name for sig in fired if sig.kind != "protocol"),
            ",".join(sig.name for sig in fired if sig.kind == "protocol"))


__all__ = ["Detection", "REGISTRY", "Signature", "SignatureView", "register", "run_signatures", "well_known_port"]
