"""Cisco AnyConnect / OpenConnect: the CSTP tunnel request (CONNECT /CSCOSSLC/tunnel with X-CSTP headers)
where visible in clear, and its DTLS channel: a DTLS ClientHello that resumes the session announced over
CSTP (32-byte session id) answered by a handshake without a server certificate (ServerHello then
ServerHelloDone or ChangeCipherSpec: the keys come from the CSTP session). WebRTC DTLS always sends a
certificate, and PSK DTLS of IoT devices opens without a session id."""

from __future__ import annotations

import numpy as np

from features import native
from features.signatures.base import (TCP, UDP, Detection, Signature, SignatureView, find_in_rows, one_of,
                                      startswith, u16, u8)

DTLS_VERSIONS = (0xFEFF, 0xFEFD)
HANDSHAKE = 22


def detect(view: SignatureView) -> Detection:
    client, clen = view.prefix(0)
    server, slen = view.prefix(1)
    cstp_rows = np.flatnonzero((view.proto == TCP) & startswith(client, clen, b"CONNECT /CSCOSSLC/tunnel"))
    cstp = np.zeros(view.m, bool)
    for r in find_in_rows(client, clen, cstp_rows, b"X-CSTP-"):
        cstp[r] = True
    # DTLS ClientHellos with a 32-byte session id, checked on the datagrams that open with a handshake record.
    hello = np.zeros(view.m, bool)
    rows = np.flatnonzero((view.proto == UDP) & (client[:, 0] == HANDSHAKE))
    first = client[rows, :60]
    hello[rows] = ((clen[rows] >= 60) & one_of(u16(first, 1), DTLS_VERSIONS) & (u8(first, 13) == 1)
                   & (u8(first, 59) == 32))
    # The server flight of the DTLS hellos (the first datagram whole, the next three's first records) is walked in
    # anyconnect.c, reading the prefixes and packets in place.
    rows = np.flatnonzero(hello & (slen >= 26))
    packets, at = view.packets()
    (flights, flight_lengths), _ = view.prefix_in_place(1)
    resumed = np.zeros(view.m, bool)
    resumed[rows] = native.anyconnect_resumed(packets, at[rows], flights, flight_lengths)
    fires = cstp | (hello & resumed)
    evidence = {r: "anyconnect: CONNECT /CSCOSSLC/tunnel with X-CSTP headers" for r in np.flatnonzero(cstp)}
    for r in np.flatnonzero(hello & resumed):
        evidence[r] = ("anyconnect: DTLS ClientHello resuming a 32-byte session id (announced over CSTP) answered "
                       "by a handshake without server certificate")
    return Detection(np.where(fires, 1.0, np.where(hello, 0.2, 0.0)), evidence)


SIGNATURE = Signature(
    name="anyconnect", title="AnyConnect/OpenConnect", kind="vpn", detect=detect, ports=(),   # 443: everyone's port
    summary="CSTP CONNECT in clear, or DTLS resuming a session without server certificate",
)
