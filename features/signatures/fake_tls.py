"""Fake TLS handshakes (simple-obfs tls mode and kin): the server answers a ClientHello with ServerHello and
ChangeCipherSpec, as a TLS 1.2 session resumption would, but the handshake record after ChangeCipherSpec,
which in real TLS 1.2 is the encrypted Finished (32 to about 90 bytes), carries hundreds of bytes of
tunnelled data. TLS 1.3 sends its encrypted handshake as application-data records, so it never matches."""

from __future__ import annotations

import numpy as np

from features.signatures.base import TCP, Detection, Signature, SignatureView, u16

HANDSHAKE, CHANGE_CIPHER_SPEC = 22, 20
FINISHED_AT_MOST = 128


def _at(data, rows, pos, width):
    """u8 or u16 at per-row positions of data[rows] (0 past the data)."""
    ok = pos + width <= data.shape[1]
    p = np.where(ok, pos, 0)
    value = data[rows, p].astype(np.int64)
    if width == 2:
        value = (value << 8) | data[rows, p + 1]
    return np.where(ok, value, 0), ok


def detect(view: SignatureView) -> Detection:
    c = view.columns
    server, slen = view.prefix(1)
    # Only TLS handshakes can match: the records are walked for those rows alone.
    rows = np.flatnonzero((view.proto == TCP) & (c["tls_client_hello"] == 1) & (c["tls_server_hello"] == 1))
    second = 5 + u16(server[rows, :5], 3)                        # the record after ServerHello
    kind, ok2 = _at(server, rows, second, 1)
    third = second + 5 + _at(server, rows, second + 3, 2)[0]
    kind3, ok3 = _at(server, rows, third, 1)
    length3 = _at(server, rows, third + 3, 2)[0]
    fake = (ok2 & ok3 & (kind == CHANGE_CIPHER_SPEC) & (kind3 == HANDSHAKE) & (length3 > FINISHED_AT_MOST)
            & (third + 5 <= slen[rows]) & (server[rows, 0] == HANDSHAKE))
    score = np.zeros(view.m)
    score[rows[fake]] = 0.9
    evidence = {int(rows[j]): (f"fake tls: ServerHello, ChangeCipherSpec, then a {length3[j]}-byte 'Finished' record "
                               f"(real ones are under {FINISHED_AT_MOST} bytes): data tunnelled in the handshake")
                for j in np.flatnonzero(fake)}
    return Detection(score, evidence)


SIGNATURE = Signature(
    name="fake_tls", title="Fake TLS handshake", kind="proxy", detect=detect, ports=(),
    summary="TLS 1.2-style abbreviated handshake whose Finished record carries hundreds of bytes",
)
