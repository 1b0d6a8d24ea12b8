"""TLS and HTTP (recognised, not VPNs): a parsed ClientHello answered by a ServerHello; an HTTP request
answered by an HTTP response."""

from __future__ import annotations

import numpy as np

from features.signatures.base import Detection, Signature, SignatureView, on_candidates, startswith_any

METHODS = (b"GET ", b"POST ", b"HEAD ", b"PUT ", b"DELETE ", b"OPTIONS ", b"PATCH ", b"CONNECT ")


def detect_tls(view: SignatureView) -> Detection:
    c = view.columns
    fires = (c["tls_client_hello"] == 1) & (c["tls_server_hello"] == 1)
    return Detection(np.where(fires, 1.0, np.where(c["tls_client_hello"] == 1, 0.4, 0.0)))


def _detect_http(view: SignatureView) -> Detection:
    client, clen = view.prefix_start(0)
    return Detection(np.where(startswith_any(client, clen, METHODS), 1.0, 0.0))


def detect_http(view: SignatureView) -> Detection:
    return on_candidates(view, view.http_answered(), _detect_http, shared="http")


SIGNATURES = (
    Signature(name="tls", title="TLS", kind="protocol", detect=detect_tls, ports=(("tcp", 443),),
              summary="ClientHello answered by ServerHello"),
    Signature(name="http", title="HTTP", kind="protocol", detect=detect_http, ports=(("tcp", 80),),
              summary="HTTP request answered by an HTTP response"),
)
