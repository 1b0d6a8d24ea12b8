"""Fake TLS handshakes (simple-obfs tls mode and kin): the server answers a ClientHello with ServerHello and
ChangeCipherSpec, as a TLS 1.2 session resumption would, but the handshake record after ChangeCipherSpec,
which in real TLS 1.2 is the encrypted Finished (32 to about 90 bytes), carries hundreds of bytes of
tunnelled data. TLS 1.3 sends its encrypted handshake as application-data records, so it never matches."""

from __future__ import annotations

import numpy as np

from features import native
from features.signatures.base import TCP, Detection, Signature, SignatureView, evidence_at

FINISHED_AT_MOST = 128


def detect(view: SignatureView) -> Detection:
    c = view.columns
    server, slen = view.prefix(1)
    # Only TLS handshakes can match: the records are walked (fake_tls.c) for those rows alone.
    rows = np.flatnonzero((view.proto == TCP) & (c["tls_client_hello"] == 1) & (c["tls_server_hello"] == 1))
    length = native.fake_tls_finished(server, slen, rows, FINISHED_AT_MOST)
    fake = length >= 0
    score = np.zeros(view.m)
    score[rows[fake]] = 0.9
    evidence = evidence_at(rows[fake], lambda size: (
        f"fake tls: ServerHello, ChangeCipherSpec, then a {size}-byte 'Finished' record "
        f"(real ones are under {FINISHED_AT_MOST} bytes): data tunnelled in the handshake"), length[fake])
    return Detection(score, evidence)


SIGNATURE = Signature(
    name="fake_tls", title="Fake TLS handshake", kind="proxy", detect=detect, ports=(),
    summary="TLS 1.2-style abbreviated handshake whose Finished record carries hundreds of bytes",
)
