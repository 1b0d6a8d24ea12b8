/* Feature-state kernel: one pass over a batch, scattering each packet into its flow's feature row.
 *
 * The state is numpy-owned (features/extract/state.py, FeatureState); the column layout of the int64 and
 * float64 matrices is mirrored in features/extract/_kernel.py. A feature row is taken from the free stack
 * and reset at a flow's first packet (ordinal 0), so rows need no clearing when flows end. The arithmetic
 * follows the order of the Python description exactly (sums in float64, bins from libm's log2), so the
 * features do not depend on which implementation computed them. */
#include <math.h>
#include <stdint.h>
#include <string.h>

enum { PROTO = 0, PKTS = 1, PL_PKTS = 3, PL_BYTES = 5, PL_MIN = 7, PL_MAX = 9, LAST_TS = 11, IAT_N = 14,
       IAT_MIN = 17, IAT_MAX = 20, FIRST_TS = 23, FLAG_COUNTS = 24, BURST_DIR = 40, BURST_PKTS = 41,
       BURST_BYTES = 42, BURSTS = 43, BURST_MAX_PKTS = 44, BURST_MAX_BYTES = 46, PREFIX_LEN = 48,
       PREFIX_FIRST = 50, PREFIX_NEXT_SEQ = 52, RESETS_LATE = 54, RESPONDER_PORT = 55, N_INT = 56 };
enum { PL_SUM = 0, PL_SQ = 2, IAT_SUM = 4, IAT_SQ = 7, N_FLOAT = 10 };
enum { SIZE_BINS = 48, IAT_BINS = 48, N_OPCODES = 32, OPCODE_PACKETS = 100, TCP = 6 };

/* Per-row shapes of the state arrays (FeatureState._row_shapes). */
typedef struct {
    int64_t *row_of, *free, *free_top, *I;
    double *F;
    int32_t *size_hist, *iat_hist;
    int64_t *rec_ts;
    int32_t *rec_payload, *rec_wire;
    int8_t *rec_dir;
    uint8_t *rec_flags;
    int32_t *seq_len;
    int8_t *seq_dir;
    int64_t *seq_ts;
    int32_t *seq_cap;
    uint8_t *heads, *prefix0, *prefix1;
    int16_t *opcodes;
    int64_t n_rec, n_seq, n_heads, head_bytes, prefix0_cap, prefix1_cap;
} feature_state_t;

static inline int64_t clip_bin(double x, int64_t bins) {
    int64_t b = (int64_t)x;                   /* truncation, as Python's int() */
    return b < 0 ? 0 : (b > bins - 1 ? bins - 1 : b);
}

/* Payload sizes are integers below 64 KiB in practice: their bins come from a table made with the same
 * log2 the formula names, and larger sizes take the formula. */
static int8_t size_bin_table[65536];

static inline int64_t size_bin(int64_t size) {
    if (size < 65536) return size_bin_table[size];
    return clip_bin(log2((double)size) * 3.0, SIZE_BINS);
}

static void make_size_bins(void) {
    size_bin_table[0] = 0;                    /* log2(0) is -inf: clipped to bin 0 */
    for (int64_t s = 1; s < 65536; s++) size_bin_table[s] = (int8_t)clip_bin(log2((double)s) * 3.0, SIZE_BINS);
}

/* clip(int(log2(us + 1) * 2)) with us = gap / 1000: two bins per octave. The bin never falls as the gap (ns)
 * grows, so each bin is entered at one gap, found once by bisection with the very same computation; a gap is
 * then placed by comparing it with those edges. Two log2 calls per packet were a fifth of the update. */
static int64_t iat_edge[IAT_BINS + 2];        /* smallest gap of each bin, then bounds no gap reaches */
static int64_t iat_low_bin[64];               /* bin of the smallest gap of each bit length */

static int64_t iat_formula(int64_t gap) {
    return clip_bin(log2((double)gap / 1000.0 + 1.0) * 2.0, IAT_BINS);
}

static int64_t iat_bin_by_edges(int64_t gap) {
    int64_t b = 0;
    while (gap >= iat_edge[b + 1]) b++;
    return b;
}

static void make_iat_edges(void) {
    for (int64_t b = 0; b < IAT_BINS; b++) {
        int64_t lo = 0, hi = INT64_C(1) << 62;    /* far into the last bin */
        while (lo < hi) {
            const int64_t mid = lo + (hi - lo) / 2;
            if (iat_formula(mid) >= b) hi = mid;
            else lo = mid + 1;
        }
        iat_edge[b] = lo;
    }
    iat_edge[IAT_BINS] = iat_edge[IAT_BINS + 1] = INT64_MAX;
    for (int length = 0; length < 63; length++) iat_low_bin[length] = iat_bin_by_edges(length ? INT64_C(1) << length : 0);
}

/* Gaps of one bit length span less than an octave of us + 1, so at most two bin edges: the bin is the first
 * of that length's bins or one of the next two. Found from the gap alone, the bin does not wait for the
 * division that gives the microseconds. */
static inline int64_t iat_bin(int64_t gap) {
    const int64_t low = iat_low_bin[63 - __builtin_clzll((uint64_t)gap | 1)];
    return low + (gap >= iat_edge[low + 1]) + (gap >= iat_edge[low + 2]);
}

static int tables_ready;

/* One scope of the inter-arrival statistics: Ik and Fk are the row's columns from the scope's (the packet's
 * direction, or 2 for either direction), hist its bins. Minimum and maximum are chosen, not branched on: which
 * gap is the smallest so far is not predictable. */
static inline void iat_update(int64_t *Ik, double *Fk, int32_t *hist, int64_t t) {
    const int64_t last = Ik[LAST_TS];
    if (last >= 0) {
        const int64_t gap = t - last > 0 ? t - last : 0, count = Ik[IAT_N], min = Ik[IAT_MIN], max = Ik[IAT_MAX];
        const int64_t lower = gap < min ? gap : min;
        Ik[IAT_MIN] = count == 0 ? gap : lower;
        Ik[IAT_MAX] = gap > max ? gap : max;
        const double us = (double)gap / 1000.0;
        Fk[IAT_SUM] += us;
        Fk[IAT_SQ] += us * us;
        hist[iat_bin(gap)] += 1;
        Ik[IAT_N] = count + 1;
    }
    Ik[LAST_TS] = t > last ? t : last;
}

static void reset_row(feature_state_t *st, int64_t s, int64_t proto, int64_t t) {
    int64_t *I = st->I + s * N_INT;
    memset(I, 0, N_INT * sizeof(int64_t));
    memset(st->F + s * N_FLOAT, 0, N_FLOAT * sizeof(double));
    memset(st->size_hist + s * 2 * SIZE_BINS, 0, 2 * SIZE_BINS * sizeof(int32_t));
    memset(st->iat_hist + s * 3 * IAT_BINS, 0, 3 * IAT_BINS * sizeof(int32_t));
    memset(st->opcodes + s * N_OPCODES, 0, N_OPCODES * sizeof(int16_t));
    I[PROTO] = proto;
    I[FIRST_TS] = t;
    I[LAST_TS] = I[LAST_TS + 1] = I[LAST_TS + 2] = -1;
    I[BURST_DIR] = -1;
    I[PREFIX_NEXT_SEQ] = I[PREFIX_NEXT_SEQ + 1] = -1;
}

/* Whether a direction's stream prefix can still grow: TCP segments are kept only in sequence (a retransmission
 * or a gap closes the prefix, so it is always bytes as the application sent them) and while there is room;
 * other transports keep one datagram. Most payload packets of a long flow come after that, and this is told
 * from the row alone, without a branch on the transport (TCP and UDP interleave). */
static inline int prefix_open(const int64_t *I, int64_t d, int64_t proto, int first, int64_t capacity) {
    const int64_t have = I[PREFIX_LEN + d];
    const int tcp = proto == TCP;
    return (tcp & (first | ((I[PREFIX_NEXT_SEQ + d] >= 0) & (have < capacity)))) | (!tcp & (have <= 0));
}

/* Extend an open stream prefix (see prefix_open); only here is the TCP sequence number read. */
static void append_prefix(int64_t *I, int64_t d, int64_t proto, const uint8_t *tcp, int first, const uint8_t *data,
                          int64_t off, int64_t cap, int64_t length, uint8_t *prefix, int64_t capacity) {
    const int64_t have = I[PREFIX_LEN + d], room = capacity - have;
    if (proto == TCP) {
        int64_t expected = I[PREFIX_NEXT_SEQ + d];
        const int64_t seq = ((int64_t)tcp[4] << 24) | ((int64_t)tcp[5] << 16) | ((int64_t)tcp[6] << 8) | (int64_t)tcp[7];
        if (first) expected = seq;
        if (seq != expected) {
            /* Behind: a retransmission, skip it. Ahead: a segment is missing; the prefix ends here. */
            if (((seq - expected) & 0xFFFFFFFF) < 0x80000000) I[PREFIX_NEXT_SEQ + d] = -1;
            return;
        }
        I[PREFIX_NEXT_SEQ + d] = cap < length ? -1 : ((seq + length) & 0xFFFFFFFF);
    }
    int64_t n = cap < room ? cap : room;
    if (n > 0) memcpy(prefix + have, data + off, (size_t)n);
    I[PREFIX_LEN + d] = have + n;
}

enum { PREFETCH = 8 };

static inline void prefetch_row(const feature_state_t *st, int64_t s) {
    const int64_t *I = st->I + s * N_INT;
    for (int c = 0; c < N_INT; c += 8) __builtin_prefetch(I + c, 1);
    __builtin_prefetch(st->F + s * N_FLOAT, 1);
    __builtin_prefetch(st->F + s * N_FLOAT + 8, 1);
    __builtin_prefetch(st->opcodes + s * N_OPCODES, 1);
}

void feature_update(int64_t n, const int64_t *slot, const int64_t *direction, const int64_t *ordinal,
                    const int64_t *ts, const int64_t *proto, const int64_t *sport, const int64_t *dport,
                    const int64_t *tcp_flags, const int64_t *pl_off, const int64_t *pl_len, const int64_t *pl_cap,
                    const int64_t *l4_off, const int64_t *wirelen, const uint8_t *data, feature_state_t *st) {
    if (!tables_ready) {
        make_size_bins();
        make_iat_edges();
        tables_ready = 1;
    }
    const int64_t n_rec = st->n_rec, n_seq = st->n_seq, n_heads = st->n_heads, head_bytes = st->head_bytes;
    const int64_t prefix_cap[2] = {st->prefix0_cap, st->prefix1_cap};
    for (int64_t i = 0; i < n; i++) {
        /* The rows of a batch's flows are scattered over megabytes: ask for those of a packet a few ahead
         * while this one is worked on, or each packet waits on several cache misses in turn. So too for the
         * packet's payload (opcodes, heads) and its TCP sequence number (stream prefixes), often a line before. */
        if (i + PREFETCH < n && slot[i + PREFETCH] >= 0 && ordinal[i + PREFETCH] > 0) {
            int64_t ahead = st->row_of[slot[i + PREFETCH]];
            if (ahead >= 0) prefetch_row(st, ahead);
            __builtin_prefetch(data + pl_off[i + PREFETCH]);
            __builtin_prefetch(data + l4_off[i + PREFETCH] + 4);
        }
        if (slot[i] < 0) continue;
        const int64_t d = direction[i], t = ts[i], p = proto[i], o = ordinal[i];
        int64_t s;
        /* Feature rows are handed out per flow (the caller made sure enough are free), not per table row:
         * the table keeps a batch's worth of spare rows, and 6.5 KB each would be most of the memory. */
        if (o == 0) {
            s = st->free[--st->free_top[0]];
            st->row_of[slot[i]] = s;
            reset_row(st, s, p, t);
            st->I[s * N_INT + RESPONDER_PORT] = d == 0 ? dport[i] : sport[i];
        } else {
            s = st->row_of[slot[i]];
            if (s < 0) continue;
        }
        int64_t *I = st->I + s * N_INT;
        double *F = st->F + s * N_FLOAT;
        const int64_t flags = tcp_flags[i] & -(int64_t)(p == TCP);     /* no branch: TCP and UDP interleave */
        const int64_t length = pl_len[i];
        I[PKTS + d] += 1;

        /* Inter-arrival times, per direction and in either direction. */
        int32_t *iat_hist = st->iat_hist + s * 3 * IAT_BINS;
        iat_update(I + d, F + d, iat_hist + d * IAT_BINS, t);
        iat_update(I + 2, F + 2, iat_hist + 2 * IAT_BINS, t);

        /* ACK and PSH are on most TCP packets, in either combination: those two are counted without a
         * branch, the rest only when any is set. */
        int64_t *counts = I + FLAG_COUNTS + 8 * d;
        counts[3] += (flags >> 3) & 1;
        counts[4] += (flags >> 4) & 1;
        if (flags & ~0x18) {
            counts[0] += flags & 1;
            counts[1] += (flags >> 1) & 1;
            counts[2] += (flags >> 2) & 1;
            counts[5] += (flags >> 5) & 1;
            counts[6] += (flags >> 6) & 1;
            counts[7] += (flags >> 7) & 1;
        }

        if (o < n_rec) {
            int64_t r = s * n_rec + o;
            st->rec_ts[r] = t;
            st->rec_payload[r] = (int32_t)length;
            st->rec_wire[r] = (int32_t)wirelen[i];
            st->rec_dir[r] = (int8_t)d;
            st->rec_flags[r] = (uint8_t)flags;
        }

        if (length <= 0) continue;

        /* Payload sizes and bursts (runs of payload packets in one direction). */
        const int64_t k_pl = I[PL_PKTS] + I[PL_PKTS + 1];
        const int64_t before = I[PL_PKTS + d];
        const int64_t pl_min = I[PL_MIN + d], pl_max = I[PL_MAX + d];
        const int64_t lower = length < pl_min ? length : pl_min;
        I[PL_MIN + d] = before == 0 ? length : lower;
        I[PL_MAX + d] = length > pl_max ? length : pl_max;
        I[PL_PKTS + d] = before + 1;
        I[PL_BYTES + d] += length;
        F[PL_SUM + d] += (double)length;
        F[PL_SQ + d] += (double)length * (double)length;
        st->size_hist[(s * 2 + d) * SIZE_BINS + size_bin(length)] += 1;
        /* Without branches: directions alternate unpredictably. */
        const int64_t same = -(int64_t)(I[BURST_DIR] == d);
        const int64_t run_pkts = (I[BURST_PKTS] & same) + 1, run_bytes = (I[BURST_BYTES] & same) + length;
        const int64_t most_pkts = I[BURST_MAX_PKTS + d], most_bytes = I[BURST_MAX_BYTES + d];
        I[BURST_DIR] = d;
        I[BURSTS] += 1 + same;
        I[BURST_PKTS] = run_pkts;
        I[BURST_BYTES] = run_bytes;
        I[BURST_MAX_PKTS + d] = run_pkts > most_pkts ? run_pkts : most_pkts;
        I[BURST_MAX_BYTES + d] = run_bytes > most_bytes ? run_bytes : most_bytes;

        const int64_t cap = pl_cap[i], off = pl_off[i];
        /* The sequence of the first payload packets, with the first bytes of the earliest ones. */
        if (k_pl < n_seq) {
            int64_t r = s * n_seq + k_pl;
            st->seq_len[r] = (int32_t)length;
            st->seq_dir[r] = (int8_t)d;
            st->seq_ts[r] = t;
            st->seq_cap[r] = (int32_t)cap;
            if (k_pl < n_heads) {
                int64_t held = cap < head_bytes ? cap : head_bytes;
                if (held > 0) memcpy(st->heads + (s * n_heads + k_pl) * head_bytes, data + off, (size_t)held);
            }
        }

        /* OpenVPN opcode position: byte 0 over UDP, byte 2 after the length prefix over TCP. */
        if (k_pl < OPCODE_PACKETS) {
            int64_t at = p == TCP ? 2 : 0;
            if (cap > at) {
                int opcode = data[off + at] >> 3;
                st->opcodes[s * N_OPCODES + opcode] += 1;
                if (k_pl >= 2 && (opcode == 7 || opcode == 8 || opcode == 10)) I[RESETS_LATE] += 1;
            }
        }

        if (before == 0) I[PREFIX_FIRST + d] = length;
        const int64_t capacity = prefix_cap[d];
        if (!prefix_open(I, d, p, before == 0, capacity)) continue;
        if (p == TCP && off < l4_off[i] + 20) continue;   /* a non-first IP fragment: no TCP header to place it */
        uint8_t *prefix = (d == 0 ? st->prefix0 : st->prefix1) + s * capacity;
        append_prefix(I, d, p, data + l4_off[i], before == 0, data, off, cap, length, prefix, capacity);
    }
}
