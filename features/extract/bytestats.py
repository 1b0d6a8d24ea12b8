"""Entropy and byte statistics of early payload, and the fully-encrypted-traffic tests of literature.md 3b.

The five exemptions are those the GFW applies to the first client payload of a TCP connection (Wu et al.,
USENIX Security 2023); a payload none of them exempts is what Shadowsocks, VMess and obfs4 look like.
"""

from __future__ import annotations

import numpy as np

from features import native
from features.extract import _kernel as k
from features.schema import SEQUENCE_HEADS

HTTP_METHODS = (b"GET ", b"POST ", b"PUT ", b"HEAD ", b"DELETE ", b"OPTIONS ", b"CONNECT ", b"PATCH ", b"TRACE ")


# c * log2(c) for every count a row of the prefix can reach: entropy = log2(n) - sum(c log2 c) / n, so the
# per-row loop needs no logarithm.
_C_LOG_C = np.array([c * np.log2(c) if c else 0.0 for c in range(4097)])


def byte_profile(data, lengths) -> dict:
    """Per row of data[i, :lengths[i]]: entropy (bits/byte, NaN if empty), set bits per byte, printable and
    ASCII shares, longest printable run, whether the first 6 bytes are printable."""
    m = len(data)
    out = {name: np.empty(m) for name in ("entropy", "popcount", "printable_share", "ascii_share")}
    out["longest_printable_run"] = np.zeros(m, np.int64)
    out["first6_printable"] = np.zeros(m, np.bool_)
    native.byte_profiles(data, lengths, _C_LOG_C, out)
    return out


def entropy(data, lengths):
    """Shannon entropy in bits per byte of data[i, :lengths[i]] for each row (NaN for empty rows)."""
    out = np.empty(len(data))
    native.byte_entropies(data, lengths, _C_LOG_C, out)
    return out


def _first_word_tests(patterns):
    """(mask, value) of each pattern as a machine word over the first 8 bytes of a row."""
    def word(b):
        return np.frombuffer(b.ljust(8, b"\0"), np.uint64)[0]
    return [(word(b"\xff" * len(p)), word(p), len(p)) for p in patterns]


_HTTP_WORDS = _first_word_tests(HTTP_METHODS)


def starts_like_tls_or_http(data, lengths):
    """GFW exemption 5: a TLS record header ([0x16-0x17] 0x03 [0x00-0x09]) or an HTTP request method.
    The first 8 bytes of each row are read as one word, so that a method is one mask and compare per row."""
    head = np.zeros((len(data), 8), np.uint8)
    head[:, :min(8, data.shape[1])] = data[:, :8]
    word = head.view(np.uint64)[:, 0]
    out = (lengths >= 3) & (head[:, 0] | 1 == 0x17) & (head[:, 1] == 0x03) & (head[:, 2] <= 0x09)
    for mask, value, n in _HTTP_WORDS:
        out |= (lengths >= n) & (word & mask == value)
    return out


def fully_encrypted_tests(data, lengths, profile) -> dict:
    """The five GFW exemptions on the first client payload, and whether none applies."""
    has = lengths > 0
    pop = profile["popcount"]
    ex1 = has & ((pop <= 3.4) | (pop >= 4.6))
    ex2 = has & profile["first6_printable"]
    ex3 = has & (profile["printable_share"] > 0.5)
    ex4 = has & (profile["longest_printable_run"] > 20)
    ex5 = has & starts_like_tls_or_http(data, lengths)
    return {
        "fe_ex1_popcount": ex1, "fe_ex2_first6_printable": ex2, "fe_ex3_half_printable": ex3,
        "fe_ex4_run20_printable": ex4, "fe_ex5_tls_or_http": ex5,
        "fe_longest_printable_run": profile["longest_printable_run"],
        "fully_encrypted_first_payload": has & ~(ex1 | ex2 | ex3 | ex4 | ex5),
    }


def first_payload(rows, direction: int):
    """(bytes, lengths) of the first payload packet of a direction, as far as its prefix holds it."""
    data, held = rows.prefix(direction)
    return data, np.minimum(rows.I[:, k.PREFIX_FIRST + direction], held)


def columns(rows) -> dict:
    out = {}
    for d, name in enumerate(("src2dst", "dst2src")):
        data, lengths = first_payload(rows, d)
        profile = byte_profile(data, lengths)
        out[f"{name}_first_payload_entropy"] = profile["entropy"]
        out[f"{name}_first_payload_popcount"] = profile["popcount"]
        out[f"{name}_first_payload_printable_share"] = profile["printable_share"]
        out[f"{name}_first_payload_ascii_share"] = profile["ascii_share"]
        if d == 0:
            out.update(fully_encrypted_tests(data, lengths, profile))
    heads = rows.heads[:, :SEQUENCE_HEADS]
    m, n, width = heads.shape
    head_entropy = entropy(heads.reshape(m * n, width), rows.head_lengths()[:, :n].reshape(-1)).reshape(m, n)
    for i in range(SEQUENCE_HEADS):
        out[f"seq{i:02d}_entropy"] = head_entropy[:, i] if i < n else np.full(m, np.nan)
    return out
