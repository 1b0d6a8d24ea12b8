"""Tor: a TLS ClientHello to a random www.<base32>.com/.net name without ALPN (relays generate such names;
browsers always send ALPN), answered by TLS; the share of cell-sized server packets is a feature.
Relay address lists, the usual other evidence, are not used: features never look at addresses."""

from __future__ import annotations

import re

import numpy as np

from features import native
from features.signatures.base import TCP, Detection, Signature, SignatureView

# Tor's TLS layer asks for crypto_random_hostname(4, 25, "www.", ".com"): 4 to 25 base32 characters.
RANDOM_NAME = re.compile(r"^www\.([a-z2-7]{4,25})\.(com|net)$")
CELL_RECORDS = (543, 536)    # a 514-byte cell in one TLS 1.2 (29 B overhead) or TLS 1.3 (22 B) record


def random_looking(label: str) -> bool:
    """Base32 labels from a random generator: a digit, or few vowels, or a long consonant run."""
    if any(c.isdigit() for c in label):
        return True
    vowels = sum(c in "aeiouy" for c in label)
    return vowels / len(label) < 0.25 or re.search(r"[^aeiouy]{5,}", label) is not None


def detect(view: SignatureView) -> Detection:
    sni = view.columns["tls_sni"]
    hello = (view.proto == TCP) & (view.columns["tls_client_hello"] == 1) & (view.columns["tls_alpn_present"] == 0)
    answered = view.columns["tls_server_hello"] == 1
    score = np.zeros(view.m)
    evidence = {}
    share = native.cell_share(view.rows.seq_len, view.rows.seq_dir, view.n_sequence, CELL_RECORDS)
    rows = np.flatnonzero(hello)
    names = sni[rows].tolist()
    # The same names come back in a drain's hellos: each is matched once.
    labels = {name: match.group(1) for name in set(names) if (match := RANDOM_NAME.match(name))}
    for r, name, cells, answer in zip(rows.tolist(), names, share[rows].tolist(), answered[rows].tolist()):
        label = labels.get(name)
        # A pronounceable random label happens (one in five has no digit and many vowels); Tor's cell-sized
        # records (a fifth of the server packets and more) then confirm it.
        if label is not None and (random_looking(label) or cells >= 0.2):
            score[r] = 1.0 if answer else 0.4
            if answer:
                evidence[r] = (f"tor: TLS to random name {name} without ALPN, "
                               f"{cells:.0%} of server payload packets cell-sized")
    return Detection(score, evidence, {"tor_cell_share": share})


SIGNATURE = Signature(
    name="tor", title="Tor", kind="proxy", detect=detect, ports=(("tcp", 9001), ("tcp", 9030)),
    summary="TLS to a random www.<base32>.com/.net SNI without ALPN, answered",
    features=(("tor_cell_share", "float32", "ratio", "share of responder payload packets that are whole 514-byte cells in TLS records"),),
)
