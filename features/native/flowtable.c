/* Flow-table kernel: per-packet flow lookup, direction, counters and expiry over numpy-owned state.
 *
 * The state of every flow is one row of an int64 matrix (columns below, mirrored in features/flowstate.py);
 * an open-addressing index maps a symmetric hash of the flow key to its row. Two doubly linked lists (open
 * flows, and TCP flows that saw FIN from both sides or RST) are kept in order of last activity, so idle
 * expiry and eviction only ever look at a list head. Rows that expire during a batch are not reused before
 * the batch ends, so a row number names one flow for the whole batch and plugins can scatter into per-row
 * arrays. */
#include <stdint.h>

enum { A_HI, A_LO, B_HI, B_LO, PORT_A, PORT_B, PROTO, VLAN, INIT_IS_A, FIRST_TS, LAST_TS, PKTS_FWD, PKTS_REV,
       BYTES_FWD, BYTES_REV, FLAGS, HASH, PREV, NEXT, LIST, FLOW_ID, END_REASON, ACTIVE_TS, NC };
enum { FIN_FWD = 1, FIN_REV = 2, RST_SEEN = 4, CONTINUATION = 8, SYN_SEEN = 16 };
enum { NO_LIST = 0, OPEN = 1, CLOSED = 2 };
enum { IDLE_TIMEOUT = 1, ACTIVE_TIMEOUT = 2, END_FIN = 3, END_RST = 4, EVICTED = 5, END_OF_CAPTURE = 6 };
enum { OPEN_HEAD, OPEN_TAIL, CLOSED_HEAD, CLOSED_TAIL, NOW, FREE_TOP, LIVE, NEXT_FLOW_ID, N_EXPIRED, N_META };
enum { TCP = 6, TH_FIN = 0x01, TH_SYN = 0x02, TH_RST = 0x04, TH_ACK = 0x10 };

typedef struct {
    int64_t *state, *index, *free, *expired, *meta, *frag;
    int64_t index_mask, frag_mask;
} table_t;

#define S(s, c) (t->state[(s) * NC + (c)])

static inline uint64_t mix(uint64_t x) {
    x = (x ^ (x >> 30)) * 0xBF58476D1CE4E5B9ULL;
    x = (x ^ (x >> 27)) * 0x94D049BB133111EBULL;
    return x ^ (x >> 31);
}

int64_t key_hash(int64_t a_hi, int64_t a_lo, int64_t b_hi, int64_t b_lo, int64_t port_a, int64_t port_b,
                 int64_t proto, int64_t vlan) {
    uint64_t h = mix((uint64_t)a_hi ^ 0x9E3779B97F4A7C15ULL);
    h = mix(h ^ (uint64_t)a_lo);
    h = mix(h ^ (uint64_t)b_hi);
    h = mix(h ^ (uint64_t)b_lo);
    h = mix(h ^ (((uint64_t)port_a << 32) | ((uint64_t)port_b << 16) | (uint64_t)proto) ^ ((uint64_t)vlan << 48));
    return (int64_t)(h & 0x7FFFFFFFFFFFFFFFULL);
}

static void unlink_row(table_t *t, int64_t s) {
    int64_t head = S(s, LIST) == OPEN ? OPEN_HEAD : CLOSED_HEAD;
    int64_t prev = S(s, PREV), next = S(s, NEXT);
    if (prev >= 0) S(prev, NEXT) = next; else t->meta[head] = next;
    if (next >= 0) S(next, PREV) = prev; else t->meta[head + 1] = prev;
    S(s, LIST) = NO_LIST;
}

static void append_row(table_t *t, int64_t s, int64_t which) {
    int64_t head = which == OPEN ? OPEN_HEAD : CLOSED_HEAD;
    int64_t tail = t->meta[head + 1];
    S(s, PREV) = tail;
    S(s, NEXT) = -1;
    if (tail >= 0) S(tail, NEXT) = s; else t->meta[head] = s;
    t->meta[head + 1] = s;
    S(s, LIST) = which;
}

static void index_insert(table_t *t, int64_t s, int64_t h) {
    int64_t i = h & t->index_mask;
    while (t->index[i] >= 0) i = (i + 1) & t->index_mask;
    t->index[i] = s;
}

static void index_remove(table_t *t, int64_t s) {
    int64_t mask = t->index_mask, p = S(s, HASH) & mask;
    while (t->index[p] != s) p = (p + 1) & mask;
    t->index[p] = -1;
    for (int64_t j = (p + 1) & mask;; j = (j + 1) & mask) {
        int64_t occupant = t->index[j];
        if (occupant < 0) return;
        int64_t home = S(occupant, HASH) & mask;
        /* Backward-shift deletion: move the occupant into the hole unless its home lies cyclically in (p, j]. */
        int stays = p <= j ? (p < home && home <= j) : (home > p || home <= j);
        if (!stays) {
            t->index[p] = occupant;
            t->index[j] = -1;
            p = j;
        }
    }
}

static void expire_row(table_t *t, int64_t s, int64_t reason) {
    unlink_row(t, s);
    index_remove(t, s);
    if (S(s, END_REASON) == 0) S(s, END_REASON) = reason;
    t->expired[t->meta[N_EXPIRED]++] = s;
    t->meta[LIVE]--;
}

static void expire_idle_rows(table_t *t, int64_t now, int64_t idle_ns, int64_t grace_ns) {
    int64_t s;
    while ((s = t->meta[OPEN_HEAD]) >= 0 && now - S(s, ACTIVE_TS) > idle_ns) expire_row(t, s, IDLE_TIMEOUT);
    while ((s = t->meta[CLOSED_HEAD]) >= 0 && now - S(s, ACTIVE_TS) > grace_ns) expire_row(t, s, IDLE_TIMEOUT);
}

#define TABLE(state, index, index_size, free, expired, meta, frag, frag_slots) \
    table_t tbl = {state, index, free, expired, meta, frag, (index_size) - 1, (frag_slots) - 1}; table_t *t = &tbl

void expire_idle(int64_t *state, int64_t *index, int64_t index_size, int64_t *free, int64_t *expired,
                 int64_t *meta, int64_t now, int64_t idle_ns, int64_t grace_ns) {
    TABLE(state, index, index_size, free, expired, meta, 0, 1);
    expire_idle_rows(t, now, idle_ns, grace_ns);
}

void expire_all(int64_t *state, int64_t *index, int64_t index_size, int64_t *free, int64_t *expired,
                int64_t *meta, int64_t reason) {
    TABLE(state, index, index_size, free, expired, meta, 0, 1);
    int64_t s;
    while ((s = t->meta[CLOSED_HEAD]) >= 0) expire_row(t, s, reason);
    while ((s = t->meta[OPEN_HEAD]) >= 0) expire_row(t, s, reason);
}

void rebuild_index(int64_t *state, int64_t *index, int64_t index_size, int64_t *meta) {
    TABLE(state, index, index_size, 0, 0, meta, 0, 1);
    for (int64_t i = 0; i < index_size; i++) index[i] = -1;
    for (int64_t head = OPEN_HEAD; head <= CLOSED_HEAD; head += 2)
        for (int64_t s = meta[head]; s >= 0; s = S(s, NEXT)) index_insert(t, s, S(s, HASH));
}

/* Ports of IP fragments after the first come from the first one, remembered in a small direct-mapped table. */
static void fragment_ports(table_t *t, int64_t h, int store, int64_t *sport, int64_t *dport) {
    int64_t *slot = &t->frag[(h & t->frag_mask) * 3];
    if (store) { slot[0] = h; slot[1] = *sport; slot[2] = *dport; return; }
    if (slot[0] == h) { *sport = slot[1]; *dport = slot[2]; }
    else { *sport = 0; *dport = 0; }
}

void process(int64_t n, const int64_t *ts, const uint8_t *valid, const int64_t *src_hi, const int64_t *src_lo,
             const int64_t *dst_hi, const int64_t *dst_lo, const int64_t *sport, const int64_t *dport,
             const int64_t *proto, const int64_t *vlan, const int64_t *tcp_flags, const int64_t *wirelen,
             const int64_t *frag_offset, const int64_t *more_fragments, const int64_t *frag_id,
             int64_t *state, int64_t *index, int64_t index_size, int64_t *free, int64_t *expired, int64_t *meta,
             int64_t *frag, int64_t frag_slots, int64_t idle_ns, int64_t active_ns, int64_t grace_ns,
             int64_t max_live, int64_t max_packets, int64_t *out_slot, int64_t *out_dir, int64_t *out_ordinal) {
    TABLE(state, index, index_size, free, expired, meta, frag, frag_slots);
    for (int64_t i = 0; i < n; i++) {
        if (!valid[i]) { out_slot[i] = -1; out_dir[i] = 0; out_ordinal[i] = 0; continue; }
        int64_t now = ts[i];
        if (now > meta[NOW]) {
            meta[NOW] = now;
            expire_idle_rows(t, now, idle_ns, grace_ns);
        }
        int64_t p = proto[i], sp = sport[i], dp = dport[i];
        if (sp < 0 || (more_fragments[i] && frag_offset[i] == 0)) {
            int64_t fh = key_hash(src_hi[i], src_lo[i], dst_hi[i], dst_lo[i], frag_id[i], 0, p, vlan[i]);
            fragment_ports(t, fh, sp >= 0, &sp, &dp);
        }
        int64_t shi = src_hi[i], slo = src_lo[i], dhi = dst_hi[i], dlo = dst_lo[i];
        int src_is_a = shi < dhi || (shi == dhi && (slo < dlo || (slo == dlo && sp <= dp)));
        int64_t ahi = src_is_a ? shi : dhi, alo = src_is_a ? slo : dlo, pa = src_is_a ? sp : dp;
        int64_t bhi = src_is_a ? dhi : shi, blo = src_is_a ? dlo : slo, pb = src_is_a ? dp : sp;
        int64_t v = vlan[i];
        int64_t h = key_hash(ahi, alo, bhi, blo, pa, pb, p, v);
        int64_t flags = p == TCP ? tcp_flags[i] : 0;
        int pure_syn = (flags & TH_SYN) && !(flags & TH_ACK);

        int64_t s = -1;
        for (int64_t j = h & t->index_mask; index[j] >= 0; j = (j + 1) & t->index_mask) {
            int64_t c = index[j];
            if (S(c, HASH) == h && S(c, A_LO) == alo && S(c, B_LO) == blo && S(c, A_HI) == ahi &&
                S(c, B_HI) == bhi && S(c, PORT_A) == pa && S(c, PORT_B) == pb && S(c, PROTO) == p && S(c, VLAN) == v) {
                s = c;
                break;
            }
        }

        int continuation = 0;
        int64_t inherited_init = 0;
        if (s >= 0) {
            if (S(s, LIST) == CLOSED) {
                if (pure_syn || now - S(s, ACTIVE_TS) > grace_ns) { expire_row(t, s, IDLE_TIMEOUT); s = -1; }
            } else if (now - S(s, ACTIVE_TS) > idle_ns) {
                expire_row(t, s, IDLE_TIMEOUT);
                s = -1;
            } else if (now - S(s, FIRST_TS) > active_ns) {
                continuation = 1;
                inherited_init = S(s, INIT_IS_A);
                expire_row(t, s, ACTIVE_TIMEOUT);
                s = -1;
            }
        }

        if (s < 0) {
            if (meta[LIVE] >= max_live)
                expire_row(t, meta[CLOSED_HEAD] >= 0 ? meta[CLOSED_HEAD] : meta[OPEN_HEAD], EVICTED);
            s = free[--meta[FREE_TOP]];
            S(s, A_HI) = ahi; S(s, A_LO) = alo; S(s, B_HI) = bhi; S(s, B_LO) = blo;
            S(s, PORT_A) = pa; S(s, PORT_B) = pb; S(s, PROTO) = p; S(s, VLAN) = v; S(s, HASH) = h;
            if (continuation) {
                S(s, INIT_IS_A) = inherited_init;
                S(s, FLAGS) = CONTINUATION;
            } else {
                /* A SYN-ACK seen first means the SYN was missed: its receiver opened the flow. */
                int syn_ack = (flags & TH_SYN) && (flags & TH_ACK);
                S(s, INIT_IS_A) = syn_ack ? !src_is_a : src_is_a;
                S(s, FLAGS) = (pure_syn || syn_ack) ? SYN_SEEN : 0;
            }
            S(s, FIRST_TS) = now; S(s, LAST_TS) = now; S(s, ACTIVE_TS) = now;
            S(s, PKTS_FWD) = 0; S(s, PKTS_REV) = 0; S(s, BYTES_FWD) = 0; S(s, BYTES_REV) = 0;
            S(s, END_REASON) = 0;
            S(s, FLOW_ID) = meta[NEXT_FLOW_ID]++;
            meta[LIVE]++;
            index_insert(t, s, h);
            append_row(t, s, OPEN);
        } else if (S(s, LIST) == OPEN && pure_syn && !(S(s, FLAGS) & SYN_SEEN)) {
            /* Picked up mid-stream or after a lost SYN: the first SYN names the initiator. */
            S(s, INIT_IS_A) = src_is_a;
            S(s, FLAGS) |= SYN_SEEN;
        }

        int forward = src_is_a == (S(s, INIT_IS_A) != 0);
        int64_t ordinal = S(s, PKTS_FWD) + S(s, PKTS_REV);
        if (now > S(s, ACTIVE_TS)) S(s, ACTIVE_TS) = now;
        if (ordinal < max_packets) {
            out_slot[i] = s;
            out_dir[i] = !forward;
            out_ordinal[i] = ordinal;
            if (forward) { S(s, PKTS_FWD)++; S(s, BYTES_FWD) += wirelen[i]; }
            else { S(s, PKTS_REV)++; S(s, BYTES_REV) += wirelen[i]; }
            if (now > S(s, LAST_TS)) S(s, LAST_TS) = now;
        } else {
            /* Past max_packets a flow is seen as if it had ended there (early-detection studies), but its
             * packets still keep it open and can still close it. */
            out_slot[i] = -1; out_dir[i] = 0; out_ordinal[i] = 0;
        }

        int64_t which = S(s, LIST);
        if (flags & TH_RST) {
            S(s, FLAGS) |= RST_SEEN;
            if (which == OPEN) { S(s, END_REASON) = END_RST; which = CLOSED; }
        } else if (flags & TH_FIN) {
            S(s, FLAGS) |= forward ? FIN_FWD : FIN_REV;
            if (which == OPEN && (S(s, FLAGS) & (FIN_FWD | FIN_REV)) == (FIN_FWD | FIN_REV)) {
                S(s, END_REASON) = END_FIN;
                which = CLOSED;
            }
        }
        unlink_row(t, s);
        append_row(t, s, which);
    }
}
