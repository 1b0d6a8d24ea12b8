"""TLS-in-TLS tunnels (Trojan, VLESS, V2Ray/Shadowsocks over WebSocket+TLS, stunnel carrying TLS, ...):
after the outer TLS handshake, the client's traffic repeats the size and direction shape of a second TLS
handshake (Xue et al., USENIX Security 2024): a ClientHello-sized client burst, a server burst large enough
for a ServerHello with certificates, then a small client burst the size of a client Finished.
An IP-literal or missing SNI (stunnel-style clients) is reported in the evidence."""

from __future__ import annotations

import numpy as np

from features import native
from features.signatures.base import TCP, Detection, Signature, SignatureView, evidence_texts, on_candidates

CLIENT_HELLO = (400, 2600)     # inner ClientHello + outer record and proxy framing overhead
SERVER_FLIGHT = 700            # ServerHello..Finished with a certificate chain
CLIENT_FINISHED = (75, 180)    # [CCS +] Finished (+ key exchange for TLS 1.2) + outer record and framing
FIRST_CANDIDATE_BURST = 2      # bursts 0 and 1 are the outer ClientHello and the server's reply


# The score of a start with the hello alone, hello and flight, or all three: as the sum
# hello * 0.4 + (hello & flight) * 0.3 + (hello & flight & finished) * 0.3 gives it, computed once.
SCORES = np.array([0.0, 0.4 + 0.0 + 0.0, 0.4 + 0.3 + 0.0, 0.4 + 0.3 + 0.3])


def shape_score(view: SignatureView):
    """(score, burst index, the sizes of the bursts from there) of the best inner-handshake shape among the first
    bursts of each flow (burst index -1 where there is none)."""
    sequences, at = view.sequences()                        # read in place
    stop = min(sequences[0].shape[1] - 2, 12)               # where an inner handshake may start
    level, where, sizes = native.inner_handshakes(sequences, at, FIRST_CANDIDATE_BURST, stop, CLIENT_HELLO,
                                                  SERVER_FLIGHT, CLIENT_FINISHED)
    return SCORES[level], where, sizes


def _detect(view: SignatureView) -> Detection:
    c = view.columns
    outer = (view.proto == TCP) & (c["tls_client_hello"] == 1) & (c["tls_server_hello"] == 1)
    best, where, sizes = shape_score(view)
    score = np.where(outer, best, 0.0)
    fires = score >= 0.99
    evidence = evidence_texts(fires, _evidence, c["tls_sni"], c["tls_sni_is_ip"], sizes)
    return Detection(np.where(fires, 0.8, score * 0.45), evidence, {"tls_in_tls_shape": np.where(outer, best, 0.0)})


def _evidence(sni, is_ip, bursts) -> str:
    note = "no SNI" if not sni else (f"IP-literal SNI {sni}" if is_ip else f"SNI {sni}")
    return (f"tls-in-tls: after the outer handshake ({note}), client {bursts[0]} B / server "
            f"{bursts[1]} B / client {bursts[2]} B, the shape of an inner TLS handshake")


def detect(view: SignatureView) -> Detection:
    c = view.columns
    candidates = (view.proto == TCP) & (c["tls_client_hello"] == 1) & (c["tls_server_hello"] == 1)
    return on_candidates(view, candidates, _detect, tls_in_tls_shape=0.0)


SIGNATURE = Signature(
    name="tls_in_tls", title="TLS-in-TLS tunnel", kind="proxy", detect=detect, ports=(),
    summary="inner ClientHello / server flight / client Finished shape inside an outer TLS session",
    features=(("tls_in_tls_shape", "float32", "score", "how much of an inner TLS handshake shape was found"),),
)
