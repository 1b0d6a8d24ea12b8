"""Cisco AnyConnect / OpenConnect: the CSTP tunnel request (CONNECT /CSCOSSLC/tunnel with X-CSTP headers)
where visible in clear, and its DTLS channel: a DTLS ClientHello that resumes the session announced over
CSTP (32-byte session id) answered by an abbreviated handshake (ServerHello then ChangeCipherSpec, no
certificate). Ordinary DTLS (WebRTC) always runs the full handshake."""

from __future__ import annotations

import numpy as np

from features.signatures.base import TCP, UDP, Detection, Signature, SignatureView, find_in_rows, startswith, u16, u8

DTLS_VERSIONS = (0xFEFF, 0xFEFD)


def _abbreviated(server, slen, rows):
    """Rows whose first server datagram holds a ServerHello followed by a ChangeCipherSpec record."""
    out = np.zeros(len(slen), bool)
    for r in rows:
        data = server[r, :slen[r]].tobytes()
        pos, seen_hello = 0, False
        while pos + 13 <= len(data):
            content, length = data[pos], int.from_bytes(data[pos + 11:pos + 13], "big")
            if content == 22 and pos + 13 < len(data):
                if data[pos + 13] == 11:          # Certificate: a full handshake
                    break
                seen_hello |= data[pos + 13] == 2
            elif content == 20 and seen_hello:
                out[r] = True
                break
            pos += 13 + length
    return out


def detect(view: SignatureView) -> Detection:
    client, clen = view.prefix(0)
    server, slen = view.prefix(1)
    cstp_rows = np.flatnonzero((view.proto == TCP) & startswith(client, clen, b"CONNECT /CSCOSSLC/tunnel"))
    cstp = np.zeros(view.m, bool)
    for r in find_in_rows(client, clen, cstp_rows, b"X-CSTP-"):
        cstp[r] = True
    hello = ((view.proto == UDP) & (clen >= 60) & (u8(client, 0) == 22) & np.isin(u16(client, 1), DTLS_VERSIONS)
             & (u8(client, 13) == 1) & (u8(client, 59) == 32))
    resumed = _abbreviated(server, slen, np.flatnonzero(hello & (slen >= 26)))
    fires = cstp | (hello & resumed)
    evidence = {r: "anyconnect: CONNECT /CSCOSSLC/tunnel with X-CSTP headers" for r in np.flatnonzero(cstp)}
    for r in np.flatnonzero(hello & resumed):
        evidence[r] = ("anyconnect: DTLS ClientHello resuming a 32-byte session id, abbreviated handshake "
                       "(ServerHello + ChangeCipherSpec, no certificate)")
    return Detection(np.where(fires, 1.0, np.where(hello, 0.2, 0.0)), evidence)


SIGNATURE = Signature(
    name="anyconnect", title="AnyConnect/OpenConnect", kind="vpn", detect=detect, ports=(("udp", 443),),
    summary="CSTP CONNECT in clear, or DTLS resuming a session with an abbreviated handshake",
)
