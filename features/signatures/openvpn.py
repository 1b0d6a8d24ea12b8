"""OpenVPN: a client hard reset (opcode 7 or 10, key id 0) answered by a server hard reset (opcode 8) over
UDP, or over TCP behind a 2-byte length prefix; the session id stays the same in the client's later control
packets, and without tls-crypt the server echoes it (its offset tells plain, tls-auth and its HMAC size).
Also the opcode-distribution and ACK-size features of Xue et al. (USENIX Security 2022), which survive XOR
obfuscation and are features only (no signature fires on them alone)."""

from __future__ import annotations

import numpy as np

from features import native
from features.extract import _kernel as k
from features.signatures.base import TCP, Detection, Signature, SignatureView, evidence_texts

HMAC_SIZES = {20: "SHA1", 32: "SHA256", 48: "SHA384", 64: "SHA512"}


def _ack_bins(view):
    """Xue's ACK filter: the most common small payload size among the first 30 payload packets, and how
    many packets of that size fall in each 10-packet bin."""
    bins = native.ack_bins(view.rows.seq_len, view.n_sequence, 30)
    return [bins[:, b] for b in range(3)]


def _distinct_opcodes(view):
    """Opcodes seen per flow: the 32 flags (0 or 1 a byte) as four words, set bits counted after shifting each word
    to its own bit of the bytes. A sum along rows of 32 flags costs five times more."""
    words = (view.opcodes > 0).view(np.uint64)
    return np.bitwise_count(words[:, 0] | words[:, 1] << 1 | words[:, 2] << 2 | words[:, 3] << 3).astype(np.int64)


def _statistics(view):
    distinct = _distinct_opcodes(view)
    bins = _ack_bins(view)
    return {"ovpn_opcode_distinct": distinct, "ovpn_resets_late": view.rows.I[:, k.RESETS_LATE],
            "ovpn_ack_bin0": bins[0], "ovpn_ack_bin1": bins[1], "ovpn_ack_bin2": bins[2]}


# By how much of the exchange was seen (openvpn.c): none, the client's reset alone, the exchange, the exchange
# with the session id echoed by the server or kept by the client.
SCORES = np.array([0.0, 0.3, 0.7, 1.0])


def detect(view: SignatureView) -> Detection:
    # The hard-reset exchange, framing, session id echoed and kept: openvpn.c, one pass over the flows' packets.
    packets, at = view.packets()
    level, opcode, echo, kept = native.openvpn_handshakes(packets, at, view.proto)
    score = SCORES[level]
    sizes = view.size(view.index(0)), view.size(view.index(1))
    evidence = evidence_texts(level >= 2, _evidence, view.proto, opcode, echo, kept, *sizes)
    return Detection(score, evidence, _statistics(view))


def _evidence(transport, op, echoed, kept_in, client_size, server_size) -> str:
    """The evidence of an exchange: the transport, sizes, how the session id was echoed (the mode), and kept."""
    name, offset = ("tcp", 2) if transport == TCP else ("udp", 0)
    if echoed == offset + 14:
        mode = "no tls-auth"
    elif echoed >= 0:
        hmac = echoed - offset - 22
        mode = f"tls-auth (HMAC {hmac} B{', ' + HMAC_SIZES[hmac] if hmac in HMAC_SIZES else ''})"
    else:
        mode = "session id not echoed in clear (tls-crypt)"
    return (f"openvpn/{name}: client hard reset opcode {op} ({client_size} B) / server hard "
            f"reset ({server_size} B), {mode}, session id kept in {kept_in} later client control packets")


SIGNATURE = Signature(
    name="openvpn", title="OpenVPN", kind="vpn", detect=detect, ports=(("udp", 1194), ("tcp", 1194)),
    summary="client/server hard reset with key id 0, TCP length framing, session id kept and echoed",
    features=(
        ("ovpn_opcode_distinct", "int32", "count",
         "distinct values of the opcode position (byte 0, or 2 over TCP) in the first 100 payload packets"),
        ("ovpn_resets_late", "int32", "count", "hard-reset opcodes after the first two payload packets"),
        ("ovpn_ack_bin0", "int32", "packets", "ACK-sized packets among payload packets 0-9 (Xue et al. ACK filter)"),
        ("ovpn_ack_bin1", "int32", "packets", "ACK-sized packets among payload packets 10-19"),
        ("ovpn_ack_bin2", "int32", "packets", "ACK-sized packets among payload packets 20-29"),
    ),
)
