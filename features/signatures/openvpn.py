"""OpenVPN: a client hard reset (opcode 7 or 10, key id 0) answered by a server hard reset (opcode 8) over
UDP, or over TCP behind a 2-byte length prefix; the session id stays the same in the client's later control
packets, and without tls-crypt the server echoes it (its offset tells plain, tls-auth and its HMAC size).
Also the opcode-distribution and ACK-size features of Xue et al. (USENIX Security 2022), which survive XOR
obfuscation and are features only (no signature fires on them alone)."""

from __future__ import annotations

import numpy as np

from features import native
from features.extract import _kernel as k
from features.signatures.base import (TCP, UDP, Detection, Signature, SignatureView, on_candidates, one_of, rows_with,
                                      u16)

CLIENT_RESETS = (7, 10)        # P_CONTROL_HARD_RESET_CLIENT_V2, _V3 (tls-crypt-v2)
SERVER_RESET = 8               # P_CONTROL_HARD_RESET_SERVER_V2
CONTROL = (4, 5)               # P_CONTROL_V1, P_ACK_V1
HMAC_SIZES = {20: "SHA1", 32: "SHA256", 48: "SHA384", 64: "SHA512"}


def _framed(view, idx, offset):
    """Opcode/key-id byte of the packet at idx, and (TCP) whether its length prefix matches its size."""
    h = view.head(idx)
    opbyte = h[:, offset].astype(np.int64)
    frame_ok = (u16(h, 0) == view.size(idx) - 2) if offset else np.ones(view.m, bool)
    return h, opbyte >> 3, opbyte & 7, frame_ok & (view.held(idx) > offset + 8)


def _echo_offset(server_head, client_head, offset):
    """Offset where the server head repeats the client's 8-byte session id (-1 if nowhere)."""
    sid = client_head[:, offset + 1:offset + 9]
    if server_head.shape[1] < offset + 17:                   # heads too short to hold one after the header
        return np.full(len(sid), -1)
    windows = np.lib.stride_tricks.sliding_window_view(server_head[:, offset + 9:], 8, axis=1)
    hit = (windows == sid[:, None, :]).all(2)
    return np.where(hit.any(1), hit.argmax(1) + offset + 9, -1)


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


def detect(view: SignatureView) -> Detection:
    h0 = view.head(view.index(0))
    resets = (0x38, 0x50)          # opcode 7 or 10, key id 0
    candidates = ((view.proto == UDP) & one_of(h0[:, 0], resets)) | ((view.proto == TCP) & one_of(h0[:, 2], resets))
    detection = on_candidates(view, candidates, _handshake)
    detection.features.update(_statistics(view))
    return detection


def _handshake(view: SignatureView) -> Detection:
    score = np.zeros(view.m)
    evidence = {}
    c0, s0 = view.index(0), view.index(1)
    for proto, offset, name in ((UDP, 0, "udp"), (TCP, 2, "tcp")):
        on = view.proto == proto
        hc, op_c, key_c, ok_c = _framed(view, c0, offset)
        hs, op_s, key_s, ok_s = _framed(view, s0, offset)
        client_reset = on & ok_c & one_of(op_c, CLIENT_RESETS) & (key_c == 0) & (c0 == 0)
        server_reset = ok_s & (op_s == SERVER_RESET) & (key_s == 0)
        exchange = client_reset & server_reset
        echo = np.full(view.m, -1)
        echo[exchange] = _echo_offset(hs[exchange], hc[exchange], offset)
        # Later client control packets keep the client's session id.
        consistent = np.zeros(view.m, np.int64)
        for j in range(1, 4):
            idx = view.index(0, j)
            h, op, _, ok = _framed(view, idx, offset)
            session = hc[:, offset + 1:offset + 9]
            same = ok & one_of(op, CONTROL + CLIENT_RESETS) & (h[:, offset + 1:offset + 9] == session).all(1)
            consistent += same
        strong = exchange & ((echo >= 0) | (consistent > 0))
        score = np.where(strong, 1.0, np.where(exchange, 0.7, np.where(client_reset, 0.3, score)))
        for r, opcode, echoed, kept, client_size, server_size in rows_with(exchange, op_c, echo, consistent,
                                                                            view.size(c0), view.size(s0)):
            if echoed == offset + 14:
                mode = "no tls-auth"
            elif echoed >= 0:
                hmac = echoed - offset - 22
                mode = f"tls-auth (HMAC {hmac} B{', ' + HMAC_SIZES[hmac] if hmac in HMAC_SIZES else ''})"
            else:
                mode = "session id not echoed in clear (tls-crypt)"
            evidence[r] = (f"openvpn/{name}: client hard reset opcode {opcode} ({client_size} B) / server hard "
                           f"reset ({server_size} B), {mode}, session id kept in {kept} later client control packets")
    return Detection(score, evidence)


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
