"""TLS wrappers (stunnel and kin): a ClientHello naming an IP literal in its SNI, answered by a ServerHello.
RFC 6066 forbids IP literals there, and browsers and the common TLS libraries leave SNI out instead; a
generic wrapper pointed at an address puts it in. Whether an inner TLS follows is the tls_in_tls signature."""

from __future__ import annotations

import numpy as np

from features.signatures.base import TCP, Detection, Signature, SignatureView, evidence_texts


def detect(view: SignatureView) -> Detection:
    c = view.columns
    fires = (view.proto == TCP) & (c["tls_sni_is_ip"] == 1) & (c["tls_server_hello"] == 1)
    evidence = evidence_texts(fires, lambda sni: (f"tls tunnel: ClientHello names the IP literal {sni} in SNI (RFC "
                                                  f"6066 forbids it; browsers and common libraries omit SNI), "
                                                  f"answered by ServerHello"), c["tls_sni"])
    return Detection(np.where(fires, 0.7, 0.0), evidence)


SIGNATURE = Signature(
    name="tls_tunnel", title="TLS wrapper", kind="proxy", detect=detect, ports=(),
    summary="IP-literal SNI answered by a ServerHello (stunnel-like wrappers)",
)
