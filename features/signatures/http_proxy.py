"""HTTP proxies: a CONNECT request, or a request with an absolute URI, answered by an HTTP response."""

from __future__ import annotations

import numpy as np

from features.signatures.base import (Detection, Signature, SignatureView, lines, on_candidates, one_of, payloads,
                                      startswith)

METHODS = (b"GET", b"POST", b"HEAD", b"PUT", b"DELETE", b"OPTIONS", b"PATCH")


def _answered(view):
    return view.memo("http/1", lambda: startswith(*view.prefix_start(1), b"HTTP/1."))


def _connect(view: SignatureView) -> Detection:
    client, clen = view.prefix_start(0)
    fires = _answered(view) & startswith(client, clen, b"CONNECT ")
    evidence = {r: f"http connect: '{request}' -> '{response}'" for r, request, response in _lines(view, fires)}
    return Detection(np.where(fires, 1.0, 0.0), evidence)


def _absolute(view: SignatureView) -> Detection:
    client, clen = view.prefix_start(0)
    absolute = np.zeros(view.m, bool)
    # A method (3 to 7 letters) and a space, then a scheme's first letter: few requests have it, and only those
    # are read as text.
    after_space = (client[:, 3:8] == 0x20) & one_of((client[:, 4:9] | 0x20).ravel(), b"hf").reshape(-1, 5)
    candidates = np.flatnonzero(_answered(view) & one_of(client[:, 0], b"GPHDO") & after_space.any(1))
    known = {}                                      # requests repeat: each distinct start is read once
    for r, start in zip(candidates.tolist(), payloads(client, clen, candidates, 16)):
        found = known.get(start)
        if found is None:
            method, _, rest = start.partition(b" ")
            found = known[start] = method in METHODS and rest.lower().startswith((b"http://", b"https://", b"ftp://"))
        absolute[r] = found
    fires = absolute
    evidence = {r: f"http proxy: absolute-URI request '{request}' -> '{response}'"
                for r, request, response in _lines(view, fires)}
    return Detection(np.where(fires, 1.0, 0.0), evidence)


def _lines(view, fires):
    """(row, request line, response line) of each flow that fires, for evidence."""
    rows = np.flatnonzero(fires)
    return zip(rows.tolist(), lines(*view.prefix_start(0), rows), lines(*view.prefix_start(1), rows))


def detect_connect(view: SignatureView) -> Detection:
    return on_candidates(view, view.http_answered(), _connect, shared="http")


def detect_absolute(view: SignatureView) -> Detection:
    return on_candidates(view, view.http_answered(), _absolute, shared="http")


SIGNATURES = (
    Signature(name="http_connect", title="HTTP CONNECT proxy", kind="proxy", detect=detect_connect,
              ports=(("tcp", 3128), ("tcp", 8080)), summary="CONNECT request answered by an HTTP response"),
    Signature(name="http_proxy", title="HTTP forward proxy", kind="proxy", detect=detect_absolute,
              ports=(("tcp", 3128), ("tcp", 8080)), summary="request with an absolute URI answered by HTTP"),
)
