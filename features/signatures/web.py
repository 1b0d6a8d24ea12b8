"""TLS and HTTP (recognised, not VPNs): a parsed ClientHello answered by a ServerHello; an HTTP request
answered by an HTTP response."""

from __future__ import annotations

import numpy as np

from features.signatures.base import TCP, Detection, Signature, SignatureView, startswith, startswith_any

METHODS = (b"GET ", b"POST ", b"HEAD ", b"PUT ", b"DELETE ", b"OPTIONS ", b"PATCH ", b"CONNECT ")


def detect_tls(view: SignatureView) -> Detection:
    c = view.columns
    fires = (c["tls_client_hello"] == 1) & (c["tls_server_hello"] == 1)
    evidence = {r: f"tls: ClientHello (SNI '{c['tls_sni'][r]}') answered by ServerHello" for r in np.flatnonzero(fires)}
    return Detection(np.where(fires, 1.0, np.where(c["tls_client_hello"] == 1, 0.4, 0.0)), evidence)


def detect_http(view: SignatureView) -> Detection:
    client, clen = view.prefix(0)
    server, slen = view.prefix(1)
    fires = (view.proto == TCP) & startswith_any(client, clen, METHODS) & startswith(server, slen, b"HTTP/")
    return Detection(np.where(fires, 1.0, 0.0), {r: "http: request answered by a response" for r in np.flatnonzero(fires)})


SIGNATURES = (
    Signature(name="tls", title="TLS", kind="protocol", detect=detect_tls, ports=(("tcp", 443),),
              summary="ClientHello answered by ServerHello"),
    Signature(name="http", title="HTTP", kind="protocol", detect=detect_http, ports=(("tcp", 80),),
              summary="HTTP request answered by an HTTP response"),
)
