"""SSTP: the SSTP_DUPLEX_POST request to /sra_{BA195980-...}/ answered by HTTP 200, visible where TLS is
terminated before the capture point (the request is inside TLS otherwise: then only the model's size and
TLS features can tell); or the SSTP control framing (version 1.0, control bit, Call Connect Request)."""

from __future__ import annotations

import numpy as np

from features import native
from features.signatures.base import Detection, Signature, SignatureView

REQUEST = b"SSTP_DUPLEX_POST /sra_{BA195980-CD49-458b-9E23-C84EE0ADCD75}/"


def detect(view: SignatureView) -> Detection:
    # Candidates by the request's first bytes (SSH banners start with "SS" too) or the control framing's first
    # two, then the request and its answer or the framing both ways: sstp.c, reading prefixes and packets in
    # place.
    packets, at = view.packets()
    client, server = view.prefix_in_place(0)[0], view.prefix_in_place(1)[0]
    score, kind = native.sstp_handshakes(packets, at, view.proto, client, server, REQUEST, b"HTTP/1.1 200")
    evidence = {r: "sstp: SSTP_DUPLEX_POST /sra_{BA195980-...}/ answered by HTTP 200"
                for r in np.flatnonzero(kind == 1)}
    evidence.update({r: "sstp: SSTP control framing, Call Connect Request / Ack" for r in np.flatnonzero(kind == 2)})
    return Detection(score, evidence)


SIGNATURE = Signature(
    name="sstp", title="SSTP", kind="vpn", detect=detect, ports=(),
    summary="SSTP_DUPLEX_POST with HTTP 200, or SSTP control framing (only where not inside TLS)",
)
