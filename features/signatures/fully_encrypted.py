"""Fully encrypted proxies (Shadowsocks, VMess, obfs4 and kin): the initiator speaks first with a payload
no GFW exemption applies to (literature.md 3b), near-maximal entropy for its length, and the responder
answers with equally random bytes. Which of them it is is left to the model."""

from __future__ import annotations

import numpy as np

from features.extract import _kernel as k
from features.signatures.base import TCP, Detection, Signature, SignatureView, evidence_texts, on_candidates, startswith
from features.signatures.fbzero import opens_with_preamble

MIN_PAYLOAD = 16


def _random(entropy, length):
    """Entropy within 80% of the most a payload of this length can have."""
    ceiling = np.log2(np.clip(length, 2, 256))
    return entropy >= 0.8 * ceiling


def detect(view: SignatureView) -> Detection:
    c = view.columns
    # A score needs a client payload of MIN_PAYLOAD bytes and more that no exemption applies to.
    exempt = c["fe_ex1_popcount"] | c["fe_ex3_half_printable"] | c["fe_ex4_run20_printable"] | c["fe_ex5_tls_or_http"]
    first = view.rows.I[:, k.PREFIX_FIRST]
    # Facebook's Zero protocol opens with random-looking nonces and keys too, behind a known preamble: no score.
    known_client = opens_with_preamble(view)
    return on_candidates(view, (view.proto == TCP) & ~exempt.astype(bool) & (first >= MIN_PAYLOAD) & ~known_client,
                         _detect)


def _detect(view: SignatureView) -> Detection:
    c = view.columns
    i0, r0 = view.index(0), view.index(1)
    c_len, s_len = view.size(i0), view.size(r0)
    server, slen = view.prefix_start(1)
    client_first = (i0 == 0) & (r0 > 0)
    known_server = startswith(server, slen, b"SSH-") | startswith(server, slen, b"HTTP/") \
        | ((server[:, 0] == 0x16) & (server[:, 1] == 0x03))
    # The GFW's exemptions, but for the first six bytes being printable: random bytes meet that one time in
    # 400 (an obfs4 handshake in the lab did), and a payload that passes every other test is random anyway.
    exempt = (c["fe_ex1_popcount"] | c["fe_ex3_half_printable"] | c["fe_ex4_run20_printable"]
              | c["fe_ex5_tls_or_http"]).astype(bool)
    client_random = (c_len >= MIN_PAYLOAD) & ~exempt & _random(c["src2dst_first_payload_entropy"], c_len)
    server_random = (s_len >= MIN_PAYLOAD) & ~known_server & (c["dst2src_first_payload_printable_share"] <= 0.5) \
        & _random(c["dst2src_first_payload_entropy"], s_len)
    tcp = view.proto == TCP
    fires = tcp & client_first & client_random & server_random
    score = np.where(fires, 0.8, np.where(tcp & client_random, 0.4, 0.0))
    evidence = evidence_texts(fires, _evidence, c_len, c["src2dst_first_payload_entropy"],
                              c["src2dst_first_payload_popcount"], c["fe_ex2_first6_printable"], s_len)
    return Detection(score, evidence)


def _evidence(size, entropy, popcount, first6, reply) -> str:
    return (f"fully encrypted: first client payload {size} B, {entropy:.2f} bits/byte entropy, "
            f"{popcount:.2f} set bits/byte, no GFW exemption"
            f"{' but the first six bytes printable' if first6 else ''}; random {reply} B reply")


SIGNATURE = Signature(
    name="fully_encrypted", title="Fully encrypted proxy", kind="proxy", detect=detect, ports=(("tcp", 8388),),
    summary="client-first random payload no GFW exemption applies to, answered by random bytes",
)
