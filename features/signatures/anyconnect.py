"""Cisco AnyConnect / OpenConnect: the CSTP tunnel request (CONNECT /CSCOSSLC/tunnel with X-CSTP headers)
where visible in clear, and its DTLS channel: a DTLS ClientHello that resumes the session announced over
CSTP (32-byte session id) answered by a handshake without a server certificate (ServerHello then
ServerHelloDone or ChangeCipherSpec: the keys come from the CSTP session). WebRTC DTLS always sends a
certificate, and PSK DTLS of IoT devices opens without a session id."""

from __future__ import annotations

import numpy as np

from features.signatures.base import (TCP, UDP, Detection, Signature, SignatureView, find_in_rows, one_of,
                                      startswith, u16, u8)

DTLS_VERSIONS = (0xFEFF, 0xFEFD)


CERTIFICATE, SERVER_HELLO, SERVER_HELLO_DONE = 11, 2, 14
HANDSHAKE, CHANGE_CIPHER_SPEC = 22, 20


def _records(data: bytes):
    """(content type, first handshake type or -1) of the DTLS records of one datagram."""
    pos = 0
    while pos + 13 <= len(data):
        content, length = data[pos], int.from_bytes(data[pos + 11:pos + 13], "big")
        yield content, (data[pos + 13] if content == HANDSHAKE and pos + 13 < len(data) else -1)
        pos += 13 + length


def _without_certificate(view, server, slen, rows):
    """Rows whose server flight goes from ServerHello to ServerHelloDone or ChangeCipherSpec without a
    Certificate, over the first server datagram (whole) and the starts of the next three."""
    out = np.zeros(view.m, bool)
    later = [view.head(view.index(1, j)) for j in range(1, 4)]
    for r in rows:
        events = list(_records(server[r, :slen[r]].tobytes()))
        events += [(int(h[r, 0]), int(h[r, 13]) if h[r, 0] == HANDSHAKE else -1) for h in later if h[r, 0]]
        hello = False
        for content, handshake in events:
            if handshake == CERTIFICATE:
                break
            hello |= handshake == SERVER_HELLO
            if hello and (handshake == SERVER_HELLO_DONE or content == CHANGE_CIPHER_SPEC):
                out[r] = True
                break
    return out


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
    # The later server packets are looked up among the DTLS hellos alone: the whole view would pay for
    # packet positions no other signature asks for.
    candidates = hello & (slen >= 26)
    resumed = np.zeros(view.m, bool)
    if candidates.any():
        sub = view.restricted(candidates)
        sub_server, sub_slen = sub.prefix(1)
        resumed[candidates] = _without_certificate(sub, sub_server, sub_slen, np.arange(sub.m))
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
