"""SSTP: the SSTP_DUPLEX_POST request to /sra_{BA195980-...}/ answered by HTTP 200, visible where TLS is
terminated before the capture point (the request is inside TLS otherwise: then only the model's size and
TLS features can tell); or the SSTP control framing (version 1.0, control bit, Call Connect Request)."""

from __future__ import annotations

import numpy as np

from features.signatures.base import TCP, Detection, Signature, SignatureView, on_candidates, startswith, u16, u8

REQUEST = b"SSTP_DUPLEX_POST /sra_{BA195980-CD49-458b-9E23-C84EE0ADCD75}/"


def detect(view: SignatureView) -> Detection:
    client, clen = view.prefix(0)
    h0 = view.head(view.index(0))
    # The request's first bytes (SSH banners start with "SS" too), or the control framing's first two.
    request = (client[:, 0] == ord("S")) & (client[:, 2] == ord("T"))
    framing = (client[:, 0] == 0x10) & (h0[:, 0] == 0x10) & (h0[:, 1] == 0x01)
    candidates = (view.proto == TCP) & (request | framing)
    return on_candidates(view, candidates, _detect)


def _detect(view: SignatureView) -> Detection:
    client, clen = view.prefix_start(0)
    server, slen = view.prefix_start(1)
    tcp = view.proto == TCP
    http = tcp & startswith(client, clen, REQUEST) & startswith(server, slen, b"HTTP/1.1 200")
    i0, r0 = view.index(0), view.index(1)
    hi, hr = view.head(i0), view.head(r0)
    framed = tcp & (u8(hi, 0) == 0x10) & (u8(hi, 1) == 0x01) & ((u16(hi, 2) & 0x0FFF) == view.size(i0)) \
        & (u16(hi, 4) == 0x0001) & (u8(hr, 0) == 0x10) & (u8(hr, 1) == 0x01) & (u16(hr, 4) == 0x0002)
    fires = http | framed
    evidence = {r: "sstp: SSTP_DUPLEX_POST /sra_{BA195980-...}/ answered by HTTP 200" for r in np.flatnonzero(http)}
    evidence.update({r: "sstp: SSTP control framing, Call Connect Request / Ack" for r in np.flatnonzero(framed & ~http)})
    return Detection(np.where(fires, 1.0, 0.0), evidence)


SIGNATURE = Signature(
    name="sstp", title="SSTP", kind="vpn", detect=detect, ports=(),
    summary="SSTP_DUPLEX_POST with HTTP 200, or SSTP control framing (only where not inside TLS)",
)
