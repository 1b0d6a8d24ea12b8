"""Compiled per-batch update of the feature state: one pass over a batch, scattering into per-flow rows.

Every per-flow quantity lives in a row of numpy arrays (see `FeatureState`); `row_of` maps a flow-table row
to its feature row. The kernel is called once per batch; it takes a free feature row and resets it when a
flow's first packet (ordinal 0) arrives, so rows need no clearing at expiry.
"""

from __future__ import annotations

import numba as nb
import numpy as np

# Columns of the int64 state matrix. Index 0/1 of a pair is the direction (0: initiator to responder);
# triples add 2 for "either direction".
PROTO = 0
PKTS = 1                  # 1, 2
PL_PKTS = 3               # 3, 4
PL_BYTES = 5              # 5, 6
PL_MIN = 7                # 7, 8
PL_MAX = 9                # 9, 10
LAST_TS = 11              # 11, 12, 13 (ns)
IAT_N = 14                # 14, 15, 16
IAT_MIN = 17              # 17, 18, 19 (ns)
IAT_MAX = 20              # 20, 21, 22 (ns)
FIRST_TS = 23
FLAG_COUNTS = 24          # 24..31 direction 0, 32..39 direction 1: FIN SYN RST PSH ACK URG ECE CWR
BURST_DIR = 40            # direction of the current run of payload packets, -1 before the first
BURST_PKTS = 41
BURST_BYTES = 42
BURSTS = 43
BURST_MAX_PKTS = 44       # 44, 45
BURST_MAX_BYTES = 46      # 46, 47
PREFIX_LEN = 48           # 48, 49: bytes of the stream prefix kept per direction
PREFIX_FIRST = 50         # 50, 51: payload length of the first payload packet per direction
PREFIX_NEXT_SEQ = 52      # 52, 53: TCP sequence number that continues the prefix, -1 once it is closed
RESETS_LATE = 54          # OpenVPN hard-reset opcodes seen after the first two payload packets
RESPONDER_PORT = 55       # only for the well-known-port flag; never a feature itself
N_INT = 56

# Columns of the float64 state matrix.
PL_SUM = 0                # 0, 1
PL_SQ = 2                 # 2, 3
IAT_SUM = 4               # 4, 5, 6 (microseconds)
IAT_SQ = 7                # 7, 8, 9
N_FLOAT = 10

SIZE_BINS = 48            # log2 histogram of payload sizes, 3 bins per octave: 1 B .. 64 KiB
IAT_BINS = 48             # log2 histogram of inter-arrival times in microseconds, 2 bins per octave: 1 us .. 16 s+
SIZE_BINS_PER_OCTAVE = 3.0
IAT_BINS_PER_OCTAVE = 2.0

OPCODE_PACKETS = 100      # payload packets whose OpenVPN opcode position is counted (Xue et al. 2022)

_TCP = 6
_SYN, _ACK = 0x02, 0x10


@nb.njit(cache=True, inline="always")
def _size_bin(size):
    b = int(np.log2(size) * SIZE_BINS_PER_OCTAVE)
    return min(max(b, 0), SIZE_BINS - 1)


@nb.njit(cache=True, inline="always")
def _iat_bin(us):
    b = int(np.log2(us + 1.0) * IAT_BINS_PER_OCTAVE)
    return min(max(b, 0), IAT_BINS - 1)


@nb.njit(cache=True)
def _reset(s, I, F, size_hist, iat_hist, opcodes, proto, t):
    I[s, :] = 0
    F[s, :] = 0.0
    size_hist[s, :, :] = 0
    iat_hist[s, :, :] = 0
    opcodes[s, :] = 0
    I[s, PROTO] = proto
    I[s, FIRST_TS] = t
    for k in range(3):
        I[s, LAST_TS + k] = -1
    I[s, BURST_DIR] = -1
    I[s, PREFIX_NEXT_SEQ] = -1
    I[s, PREFIX_NEXT_SEQ + 1] = -1


@nb.njit(cache=True, inline="always")
def _read_u32(data, pos):
    return (np.int64(data[pos]) << 24) | (np.int64(data[pos + 1]) << 16) | (np.int64(data[pos + 2]) << 8) \
        | np.int64(data[pos + 3])


@nb.njit(cache=True)
def _append_prefix(s, d, proto, seq, first, data, off, cap, length, I, prefix):
    """Extend the direction's stream prefix: TCP segments only in sequence (a retransmission or a gap ends
    it, so the prefix is always bytes as the application sent them); other transports keep one datagram."""
    have = I[s, PREFIX_LEN + d]
    room = prefix.shape[1] - have
    if proto == _TCP:
        expected = I[s, PREFIX_NEXT_SEQ + d]
        if first:
            expected = seq
        elif expected < 0:
            return
        if seq != expected:
            # Behind: a retransmission, skip it. Ahead: a segment is missing; the prefix ends here.
            delta = (seq - expected) & 0xFFFFFFFF
            if delta < 0x80000000:
                I[s, PREFIX_NEXT_SEQ + d] = -1
            return
        if cap < length:
            I[s, PREFIX_NEXT_SEQ + d] = -1
        else:
            I[s, PREFIX_NEXT_SEQ + d] = (seq + length) & 0xFFFFFFFF
    elif have > 0:
        return
    n = min(cap, room)
    prefix[s, have:have + n] = data[off:off + n]
    I[s, PREFIX_LEN + d] = have + n


@nb.njit(cache=True)
def update(slot, direction, ordinal, ts, proto, sport, dport, tcp_flags, pl_off, pl_len, pl_cap, l4_off, wirelen, data,
           row_of, free, free_top, I, F, size_hist, iat_hist, rec_ts, rec_payload, rec_wire, rec_dir, rec_flags,
           seq_len, seq_dir, seq_ts, seq_cap, heads, prefix0, prefix1, opcodes):
    n_rec = rec_ts.shape[1]
    n_seq = seq_len.shape[1]
    n_heads, head_bytes = heads.shape[1], heads.shape[2]
    for i in range(len(slot)):
        if slot[i] < 0:
            continue
        d = direction[i]
        t = ts[i]
        p = proto[i]
        o = ordinal[i]
        # Feature rows are handed out per flow (the caller made sure enough are free), not per table row:
        # the table keeps a batch's worth of spare rows, and 6.5 KB each would be most of the memory.
        if o == 0:
            free_top[0] -= 1
            s = free[free_top[0]]
            row_of[slot[i]] = s
            _reset(s, I, F, size_hist, iat_hist, opcodes, p, t)
            I[s, RESPONDER_PORT] = dport[i] if d == 0 else sport[i]
        else:
            s = row_of[slot[i]]
            if s < 0:
                continue
        flags = tcp_flags[i] if p == _TCP else 0
        length = pl_len[i]
        I[s, PKTS + d] += 1

        # Inter-arrival times, per direction and in either direction.
        for k in (d, 2):
            last = I[s, LAST_TS + k]
            if last >= 0:
                gap = max(t - last, 0)
                n = I[s, IAT_N + k]
                if n == 0 or gap < I[s, IAT_MIN + k]:
                    I[s, IAT_MIN + k] = gap
                if gap > I[s, IAT_MAX + k]:
                    I[s, IAT_MAX + k] = gap
                us = gap / 1000.0
                F[s, IAT_SUM + k] += us
                F[s, IAT_SQ + k] += us * us
                iat_hist[s, k, _iat_bin(us)] += 1
                I[s, IAT_N + k] = n + 1
            if t > last:
                I[s, LAST_TS + k] = t

        if flags:
            base = FLAG_COUNTS + 8 * d
            for b in range(8):
                if flags & (1 << b):
                    I[s, base + b] += 1

        if o < n_rec:
            rec_ts[s, o] = t
            rec_payload[s, o] = length
            rec_wire[s, o] = wirelen[i]
            rec_dir[s, o] = d
            rec_flags[s, o] = flags

        if length <= 0:
            continue

        # Payload sizes and bursts (runs of payload packets in one direction).
        k_pl = I[s, PL_PKTS] + I[s, PL_PKTS + 1]
        n = I[s, PL_PKTS + d]
        if n == 0 or length < I[s, PL_MIN + d]:
            I[s, PL_MIN + d] = length
        if length > I[s, PL_MAX + d]:
            I[s, PL_MAX + d] = length
        I[s, PL_PKTS + d] = n + 1
        I[s, PL_BYTES + d] += length
        F[s, PL_SUM + d] += length
        F[s, PL_SQ + d] += float(length) * length
        size_hist[s, d, _size_bin(length)] += 1
        if I[s, BURST_DIR] != d:
            I[s, BURST_DIR] = d
            I[s, BURSTS] += 1
            I[s, BURST_PKTS] = 0
            I[s, BURST_BYTES] = 0
        I[s, BURST_PKTS] += 1
        I[s, BURST_BYTES] += length
        if I[s, BURST_PKTS] > I[s, BURST_MAX_PKTS + d]:
            I[s, BURST_MAX_PKTS + d] = I[s, BURST_PKTS]
        if I[s, BURST_BYTES] > I[s, BURST_MAX_BYTES + d]:
            I[s, BURST_MAX_BYTES + d] = I[s, BURST_BYTES]

        cap = pl_cap[i]
        off = pl_off[i]
        # The sequence of the first payload packets, with the first bytes of the earliest ones.
        if k_pl < n_seq:
            seq_len[s, k_pl] = length
            seq_dir[s, k_pl] = d
            seq_ts[s, k_pl] = t
            seq_cap[s, k_pl] = cap
            if k_pl < n_heads:
                held = min(cap, head_bytes)
                heads[s, k_pl, :held] = data[off:off + held]

        # OpenVPN opcode position: byte 0 over UDP, byte 2 after the length prefix over TCP.
        if k_pl < OPCODE_PACKETS:
            at = 2 if p == _TCP else 0
            if cap > at:
                opcode = data[off + at] >> 3
                opcodes[s, opcode] += 1
                if k_pl >= 2 and (opcode == 7 or opcode == 8 or opcode == 10):
                    I[s, RESETS_LATE] += 1

        if n == 0:
            I[s, PREFIX_FIRST + d] = length
        if p == _TCP and off < l4_off[i] + 20:
            continue            # a non-first IP fragment: no TCP header to place it in the stream
        seq = _read_u32(data, l4_off[i] + 4) if p == _TCP else 0
        if d == 0:
            _append_prefix(s, d, p, seq, n == 0, data, off, cap, length, I, prefix0)
        else:
            _append_prefix(s, d, p, seq, n == 0, data, off, cap, length, I, prefix1)
