"""SoftEther: its HTTP watermark and VPN requests (POST /vpnsvc/connect.cgi or /vpnsvc/vpn.cgi) answered by
HTTP, where visible in clear (the session itself runs inside TLS)."""

from __future__ import annotations

import numpy as np

from features.signatures.base import (Detection, Signature, SignatureView, lines, on_candidates, startswith,
                                      startswith_any)

PATHS = (b"POST /vpnsvc/connect.cgi", b"POST /vpnsvc/vpn.cgi")


def _detect(view: SignatureView) -> Detection:
    client, clen = view.prefix_start(0)
    server, slen = view.prefix_start(1)
    fires = startswith_any(client, clen, PATHS) & startswith(server, slen, b"HTTP/1.")
    rows = np.flatnonzero(fires)
    evidence = {r: f"softether: '{request}' answered by HTTP"
                for r, request in zip(rows.tolist(), lines(client, clen, rows))}
    return Detection(np.where(fires, 1.0, 0.0), evidence)


def detect(view: SignatureView) -> Detection:
    return on_candidates(view, view.http_answered(), _detect, shared="http")


SIGNATURE = Signature(
    name="softether", title="SoftEther", kind="vpn", detect=detect, ports=(("tcp", 5555), ("tcp", 992)),
    summary="POST /vpnsvc/connect.cgi or vpn.cgi answered by HTTP (in clear only)",
)
