"""Compiled flow-table kernel: per-packet flow lookup, direction, counters and expiry over numpy state.

The state of every flow is one row of an int64 matrix; an open-addressing index maps a symmetric hash of
the flow key to its row. Two doubly linked lists (open flows, and TCP flows that saw FIN+FIN or RST) are
kept in order of last activity, so idle expiry and eviction only ever look at a list head.
Rows that expire during a batch are not reused before the batch ends, so a row number names one flow
for the whole batch and plugins can scatter per-packet values into per-row arrays.
"""

from __future__ import annotations

import numba as nb
import numpy as np

# Columns of the state matrix.
(A_HI, A_LO, B_HI, B_LO, PORT_A, PORT_B, PROTO, VLAN, INIT_IS_A, FIRST_TS, LAST_TS,
 PKTS_FWD, PKTS_REV, BYTES_FWD, BYTES_REV, FLAGS, HASH, PREV, NEXT, LIST, FLOW_ID, END_REASON) = range(22)
N_COLUMNS = 22

# FLAGS bits.
FIN_FWD, FIN_REV, RST_SEEN, CONTINUATION, SYN_SEEN = 1, 2, 4, 8, 16

# LIST values.
NO_LIST, OPEN, CLOSED = 0, 1, 2

# End reasons (after IPFIX flowEndReason where one exists).
IDLE_TIMEOUT, ACTIVE_TIMEOUT, FIN, RST, EVICTED, END_OF_CAPTURE = 1, 2, 3, 4, 5, 6
END_REASONS = {IDLE_TIMEOUT: "idle_timeout", ACTIVE_TIMEOUT: "active_timeout", FIN: "fin", RST: "rst",
               EVICTED: "evicted", END_OF_CAPTURE: "end_of_capture"}

# Slots of the meta array.
(OPEN_HEAD, OPEN_TAIL, CLOSED_HEAD, CLOSED_TAIL, NOW, FREE_TOP, LIVE, NEXT_FLOW_ID, N_EXPIRED) = range(9)
N_META = 9

TCP = 6
_TCP_FIN, _TCP_SYN, _TCP_RST, _TCP_ACK = 0x01, 0x02, 0x04, 0x10


@nb.njit(cache=True, inline="always")
def _mix(x):
    x = (x ^ (x >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
    x = (x ^ (x >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
    return x ^ (x >> np.uint64(31))


@nb.njit(cache=True)
def key_hash(a_hi, a_lo, b_hi, b_lo, port_a, port_b, proto, vlan):
    h = _mix(np.uint64(a_hi) ^ np.uint64(0x9E3779B97F4A7C15))
    h = _mix(h ^ np.uint64(a_lo))
    h = _mix(h ^ np.uint64(b_hi))
    h = _mix(h ^ np.uint64(b_lo))
    h = _mix(h ^ np.uint64((port_a << 32) | (port_b << 16) | proto) ^ (np.uint64(vlan) << np.uint64(48)))
    return np.int64(h & np.uint64(0x7FFFFFFFFFFFFFFF))


@nb.njit(cache=True, inline="always")
def _unlink(state, meta, s):
    head = OPEN_HEAD if state[s, LIST] == OPEN else CLOSED_HEAD
    prev, nxt = state[s, PREV], state[s, NEXT]
    if prev >= 0:
        state[prev, NEXT] = nxt
    else:
        meta[head] = nxt
    if nxt >= 0:
        state[nxt, PREV] = prev
    else:
        meta[head + 1] = prev
    state[s, LIST] = NO_LIST


@nb.njit(cache=True, inline="always")
def _append(state, meta, s, which):
    head = OPEN_HEAD if which == OPEN else CLOSED_HEAD
    tail = meta[head + 1]
    state[s, PREV] = tail
    state[s, NEXT] = -1
    if tail >= 0:
        state[tail, NEXT] = s
    else:
        meta[head] = s
    meta[head + 1] = s
    state[s, LIST] = which


@nb.njit(cache=True)
def _index_insert(index, s, h):
    mask = len(index) - 1
    i = h & mask
    while index[i] >= 0:
        i = (i + 1) & mask
    index[i] = s


@nb.njit(cache=True)
def _index_remove(state, index, s):
    mask = len(index) - 1
    p = state[s, HASH] & mask
    while index[p] != s:
        p = (p + 1) & mask
    index[p] = -1
    j = p
    while True:
        j = (j + 1) & mask
        occupant = index[j]
        if occupant < 0:
            return
        k = state[occupant, HASH] & mask
        # Backward-shift deletion: move the occupant into the hole unless its home lies cyclically in (p, j].
        if p <= j:
            stays = p < k <= j
        else:
            stays = k > p or k <= j
        if not stays:
            index[p] = occupant
            index[j] = -1
            p = j


@nb.njit(cache=True)
def expire(state, index, meta, expired, s, reason):
    """End flow s; its row stays untouched until the Python side releases it after the batch."""
    _unlink(state, meta, s)
    _index_remove(state, index, s)
    if state[s, END_REASON] == 0:
        state[s, END_REASON] = reason
    expired[meta[N_EXPIRED]] = s
    meta[N_EXPIRED] += 1
    meta[LIVE] -= 1


@nb.njit(cache=True)
def expire_idle(state, index, meta, expired, now, idle_ns, grace_ns):
    """End every open flow idle for longer than idle_ns, and every closed one quiet for longer than grace_ns."""
    s = meta[OPEN_HEAD]
    while s >= 0 and now - state[s, LAST_TS] > idle_ns:
        expire(state, index, meta, expired, s, IDLE_TIMEOUT)
        s = meta[OPEN_HEAD]
    s = meta[CLOSED_HEAD]
    while s >= 0 and now - state[s, LAST_TS] > grace_ns:
        expire(state, index, meta, expired, s, IDLE_TIMEOUT)
        s = meta[CLOSED_HEAD]


@nb.njit(cache=True)
def expire_all(state, index, meta, expired, reason):
    for head in (CLOSED_HEAD, OPEN_HEAD):
        s = meta[head]
        while s >= 0:
            expire(state, index, meta, expired, s, reason)
            s = meta[head]


@nb.njit(cache=True)
def rebuild_index(state, index, meta):
    index[:] = -1
    for head in (OPEN_HEAD, CLOSED_HEAD):
        s = meta[head]
        while s >= 0:
            _index_insert(index, s, state[s, HASH])
            s = state[s, NEXT]


@nb.njit(cache=True)
def _fragment_ports(frag, h, store, sport, dport):
    slot = h & (len(frag) - 1)
    if store:
        frag[slot, 0] = h
        frag[slot, 1] = sport
        frag[slot, 2] = dport
        return sport, dport
    if frag[slot, 0] == h:
        return frag[slot, 1], frag[slot, 2]
    return 0, 0


@nb.njit(cache=True)
def process(ts, valid, src_hi, src_lo, dst_hi, dst_lo, sport, dport, proto, vlan, tcp_flags, wirelen,
            frag_offset, more_fragments, frag_id,
            state, index, free, expired, meta, frag, idle_ns, active_ns, grace_ns, max_live,
            out_slot, out_dir, out_ordinal):
    """Assign every packet of a batch to its flow, updating counters and ending flows as they expire."""
    mask = len(index) - 1
    for i in range(len(ts)):
        if not valid[i]:
            out_slot[i] = -1
            continue
        t = ts[i]
        if t > meta[NOW]:
            meta[NOW] = t
            expire_idle(state, index, meta, expired, t, idle_ns, grace_ns)
        p = proto[i]
        sp, dp = sport[i], dport[i]
        if sp < 0 or (more_fragments[i] and frag_offset[i] == 0):
            fh = key_hash(src_hi[i], src_lo[i], dst_hi[i], dst_lo[i], frag_id[i], 0, p, vlan[i])
            sp, dp = _fragment_ports(frag, fh, sp >= 0, sp, dp)
        shi, slo, dhi, dlo = src_hi[i], src_lo[i], dst_hi[i], dst_lo[i]
        src_is_a = (shi < dhi) or (shi == dhi and (slo < dlo or (slo == dlo and sp <= dp)))
        if src_is_a:
            ahi, alo, pa, bhi, blo, pb = shi, slo, sp, dhi, dlo, dp
        else:
            ahi, alo, pa, bhi, blo, pb = dhi, dlo, dp, shi, slo, sp
        v = vlan[i]
        h = key_hash(ahi, alo, bhi, blo, pa, pb, p, v)
        flags = tcp_flags[i] if p == TCP else 0
        pure_syn = (flags & _TCP_SYN) != 0 and (flags & _TCP_ACK) == 0

        s = -1
        j = h & mask
        while index[j] >= 0:
            c = index[j]
            if (state[c, HASH] == h and state[c, A_LO] == alo and state[c, B_LO] == blo and state[c, A_HI] == ahi
                    and state[c, B_HI] == bhi and state[c, PORT_A] == pa and state[c, PORT_B] == pb
                    and state[c, PROTO] == p and state[c, VLAN] == v):
                s = c
                break
            j = (j + 1) & mask

        continuation = False
        inherited_init = 0
        if s >= 0:
            if state[s, LIST] == CLOSED:
                if pure_syn or t - state[s, LAST_TS] > grace_ns:
                    expire(state, index, meta, expired, s, IDLE_TIMEOUT)
                    s = -1
            elif t - state[s, LAST_TS] > idle_ns:
                expire(state, index, meta, expired, s, IDLE_TIMEOUT)
                s = -1
            elif t - state[s, FIRST_TS] > active_ns:
                continuation = True
                inherited_init = state[s, INIT_IS_A]
                expire(state, index, meta, expired, s, ACTIVE_TIMEOUT)
                s = -1

        if s < 0:
            if meta[LIVE] >= max_live:
                victim = meta[CLOSED_HEAD] if meta[CLOSED_HEAD] >= 0 else meta[OPEN_HEAD]
                expire(state, index, meta, expired, victim, EVICTED)
            meta[FREE_TOP] -= 1
            s = free[meta[FREE_TOP]]
            state[s, A_HI] = ahi
            state[s, A_LO] = alo
            state[s, B_HI] = bhi
            state[s, B_LO] = blo
            state[s, PORT_A] = pa
            state[s, PORT_B] = pb
            state[s, PROTO] = p
            state[s, VLAN] = v
            state[s, HASH] = h
            if continuation:
                state[s, INIT_IS_A] = inherited_init
                state[s, FLAGS] = CONTINUATION
            else:
                # A SYN-ACK seen first means we missed the SYN: its receiver opened the flow.
                syn_ack = (flags & _TCP_SYN) != 0 and (flags & _TCP_ACK) != 0
                state[s, INIT_IS_A] = (not src_is_a) if syn_ack else src_is_a
                state[s, FLAGS] = SYN_SEEN if (pure_syn or syn_ack) else 0
            state[s, FIRST_TS] = t
            state[s, LAST_TS] = t
            state[s, PKTS_FWD] = 0
            state[s, PKTS_REV] = 0
            state[s, BYTES_FWD] = 0
            state[s, BYTES_REV] = 0
            state[s, END_REASON] = 0
            state[s, FLOW_ID] = meta[NEXT_FLOW_ID]
            meta[NEXT_FLOW_ID] += 1
            meta[LIVE] += 1
            _index_insert(index, s, h)
            _append(state, meta, s, OPEN)
        elif state[s, LIST] == OPEN and pure_syn and state[s, PKTS_FWD] + state[s, PKTS_REV] > 0 \
                and (state[s, FLAGS] & SYN_SEEN) == 0:
            # Picked up mid-stream or after a lost SYN: the first SYN names the initiator.
            state[s, INIT_IS_A] = src_is_a
            state[s, FLAGS] |= SYN_SEEN

        forward = src_is_a == (state[s, INIT_IS_A] != 0)
        out_slot[i] = s
        out_dir[i] = 0 if forward else 1
        out_ordinal[i] = state[s, PKTS_FWD] + state[s, PKTS_REV]
        if forward:
            state[s, PKTS_FWD] += 1
            state[s, BYTES_FWD] += wirelen[i]
        else:
            state[s, PKTS_REV] += 1
            state[s, BYTES_REV] += wirelen[i]
        if t > state[s, LAST_TS]:
            state[s, LAST_TS] = t

        which = state[s, LIST]
        if flags & _TCP_RST:
            state[s, FLAGS] |= RST_SEEN
            if which == OPEN:
                state[s, END_REASON] = RST
                which = CLOSED
        elif flags & _TCP_FIN:
            state[s, FLAGS] |= FIN_FWD if forward else FIN_REV
            if which == OPEN and (state[s, FLAGS] & (FIN_FWD | FIN_REV)) == (FIN_FWD | FIN_REV):
                state[s, END_REASON] = FIN
                which = CLOSED
        _unlink(state, meta, s)
        _append(state, meta, s, which)
