/* Read-out of the size, timing, flag and burst columns of ended flows: one pass per flow.
 *
 * Column order follows the schema (features/extract/traffic.py, readout_columns()): round-trip estimate,
 * the whole-flow block, the early block (first `early_packets` packets), the payload-packet sequence.
 * Whole-flow quantiles come from the log2 histograms (interpolated inside a bin, clipped to the exact
 * min/max); early ones are exact (numpy's linear method). The state layout is features.c's. */
#include <math.h>
#include <stdint.h>

enum { PKTS = 1, PL_PKTS = 3, PL_BYTES = 5, PL_MIN = 7, PL_MAX = 9, LAST_TS = 11, IAT_N = 14, IAT_MIN = 17,
       IAT_MAX = 20, FIRST_TS = 23, FLAG_COUNTS = 24, BURSTS = 43, BURST_MAX_PKTS = 44, BURST_MAX_BYTES = 46,
       N_INT = 56 };
enum { PL_SUM = 0, PL_SQ = 2, IAT_SUM = 4, IAT_SQ = 7, N_FLOAT = 10 };
enum { BINS = 48, SYN = 0x02, ACK = 0x10 };

static const double QUANTILES[5] = {0.10, 0.25, 0.50, 0.75, 0.90};
static const double NS_PER_MS = 1e6;

typedef struct {
    const int64_t *I;
    const double *F;
    const int32_t *size_hist, *iat_hist;
    const int64_t *rec_ts;
    const int32_t *rec_payload, *rec_wire;
    const int8_t *rec_dir;
    const uint8_t *rec_flags;
    const int32_t *seq_len;
    const int8_t *seq_dir;
    const int64_t *seq_ts;
    int64_t n_rec, n_seq;
    const int64_t *index;     /* flow r is row index[r] of the arrays (the state itself); NULL: row r */
} flow_rows_t;

static inline double ratio(double a, double b) { return b > 0 ? a / b : NAN; }
static inline double dmin(double a, double b) { return b < a ? b : a; }
static inline double dmax(double a, double b) { return b > a ? b : a; }

/* min, max, mean, std, p10..p90 of a streamed quantity into out[c..c+8]; `other` is added to `hist` bin by
 * bin when with_other (both directions). */
static double *hist_stats(double *out, int64_t count, double total, double squares, double lo, double hi,
                          const int32_t *hist, const int32_t *other, int64_t with_other, double bins_per_octave,
                          double offset, double scale) {
    if (count == 0) {
        for (int i = 0; i < 9; i++) out[i] = NAN;
        return out + 9;
    }
    double mean = total / (double)count;
    double var = dmax(squares / (double)count - mean * mean, 0.0);
    out[0] = lo * scale;
    out[1] = hi * scale;
    out[2] = mean * scale;
    out[3] = sqrt(var) * scale;
    if (lo == hi) {              /* one value (or all equal): every quantile clips to it, whatever the bins say */
        for (int q = 0; q < 5; q++) out[4 + q] = lo * scale;
        return out + 9;
    }
    /* Quantiles rise, so each search goes on from the bin where the last one stopped: the same bins and the
     * same running sums as a search from bin 0, in one pass over the histogram. The sums are of counts, exact
     * in integers as they would be in float64 (far below 2^53). */
    int64_t cum = 0, b = 0;
    for (int q = 0; q < 5; q++) {
        double rank = QUANTILES[q] * (double)count;
        while (b < BINS - 1 && (double)(cum + hist[b] + with_other * other[b]) < rank) {
            cum += hist[b] + with_other * other[b];
            b++;
        }
        int64_t inside = hist[b] + with_other * other[b];
        double frac = inside > 0 ? dmin(dmax((rank - (double)cum) / (double)inside, 0.0), 1.0) : 0.5;
        /* exp2, not pow(2, x): the values must not depend on which of the two a compiler picks. */
        double value = exp2(((double)b + frac) / bins_per_octave) - offset;
        out[4 + q] = dmin(dmax(value, lo), hi) * scale;
    }
    return out + 9;
}

/* The same nine statistics, exactly, over values[:n] (sorted in place; n <= 32). */
static double *exact_stats(double *out, double *v, int64_t n, double scale) {
    if (n == 0) {
        for (int i = 0; i < 9; i++) out[i] = NAN;
        return out + 9;
    }
    for (int64_t i = 1; i < n; i++) {
        double x = v[i];
        int64_t j = i - 1;
        while (j >= 0 && v[j] > x) {
            v[j + 1] = v[j];
            j--;
        }
        v[j + 1] = x;
    }
    double total = 0.0, squares = 0.0;
    for (int64_t i = 0; i < n; i++) {
        total += v[i];
        squares += v[i] * v[i];
    }
    double mean = total / (double)n;
    out[0] = v[0] * scale;
    out[1] = v[n - 1] * scale;
    out[2] = mean * scale;
    out[3] = sqrt(dmax(squares / (double)n - mean * mean, 0.0)) * scale;
    for (int q = 0; q < 5; q++) {
        double pos = QUANTILES[q] * (double)(n - 1);
        int64_t lo = (int64_t)floor(pos);
        int64_t hi = lo + 1 < n - 1 ? lo + 1 : n - 1;
        out[4 + q] = (v[lo] + (v[hi] - v[lo]) * (pos - (double)lo)) * scale;
    }
    return out + 9;
}

/* mean, p50 and p90 inter-arrival times (entries 2, 6, 8 of the stats) over the round-trip estimate. */
static double *normalised(double *out, const double *iat, double rtt_ms) {
    out[0] = ratio(iat[2], rtt_ms);
    out[1] = ratio(iat[6], rtt_ms);
    out[2] = ratio(iat[8], rtt_ms);
    return out + 3;
}

/* Round-trip estimate in ns and its source: SYN -> SYN-ACK -> ACK (1), else first request -> first
 * response (2), else source 0. */
static int64_t round_trip(const flow_rows_t *f, int64_t r, int64_t n_rec, int64_t n_seq, int64_t *rtt_ns) {
    const int64_t *ts = f->rec_ts + r * f->n_rec;
    const int8_t *dir = f->rec_dir + r * f->n_rec;
    const uint8_t *flags = f->rec_flags + r * f->n_rec;
    int64_t syn = -1, synack = -1;
    for (int64_t j = 0; j < n_rec; j++) {
        int fl = flags[j] & (SYN | ACK);
        if (syn < 0) {
            if (dir[j] == 0 && fl == SYN) syn = j;
        } else if (synack < 0) {
            if (dir[j] == 1 && fl == (SYN | ACK)) synack = j;
        } else if (dir[j] == 0 && fl == ACK) {
            int64_t gap = ts[j] - ts[syn];
            if (gap > 0) {
                *rtt_ns = gap;
                return 1;
            }
            break;
        }
    }
    if (synack >= 0 && ts[synack] - ts[syn] > 0) {
        *rtt_ns = ts[synack] - ts[syn];
        return 1;
    }
    const int64_t *sts = f->seq_ts + r * f->n_seq;
    const int8_t *sdir = f->seq_dir + r * f->n_seq;
    int64_t request = -1;
    for (int64_t j = 0; j < n_seq; j++) {
        if (request < 0 && sdir[j] == 0) {
            request = j;
        } else if (request >= 0 && sdir[j] == 1) {
            int64_t gap = sts[j] - sts[request];
            if (gap > 0) {
                *rtt_ns = gap;
                return 2;
            }
            return 0;
        }
    }
    return 0;
}

static double *whole(double *out, const flow_rows_t *f, int64_t r, double rtt_ms) {
    const int64_t *I = f->I + r * N_INT;
    const double *F = f->F + r * N_FLOAT;
    const int32_t *size_hist = f->size_hist + r * 2 * BINS, *iat_hist = f->iat_hist + r * 3 * BINS;
    int64_t span = I[LAST_TS + 2] - I[FIRST_TS];
    double duration = (double)(span > 0 ? span : 0) / NS_PER_MS;
    *out++ = duration;
    for (int d = 0; d < 3; d++) {
        int64_t count, packets, pl_bytes, lo, hi, with_other;
        double total, squares;
        if (d < 2) {
            count = I[PL_PKTS + d];
            packets = I[PKTS + d];
            total = F[PL_SUM + d];
            squares = F[PL_SQ + d];
            lo = I[PL_MIN + d];
            hi = I[PL_MAX + d];
            with_other = 0;
            pl_bytes = I[PL_BYTES + d];
        } else {
            count = I[PL_PKTS] + I[PL_PKTS + 1];
            packets = I[PKTS] + I[PKTS + 1];
            total = F[PL_SUM] + F[PL_SUM + 1];
            squares = F[PL_SQ] + F[PL_SQ + 1];
            int64_t lo0 = I[PL_PKTS] > 0 ? I[PL_MIN] : (int64_t)1 << 62;
            int64_t lo1 = I[PL_PKTS + 1] > 0 ? I[PL_MIN + 1] : (int64_t)1 << 62;
            lo = lo0 < lo1 ? lo0 : lo1;
            hi = I[PL_MAX] > I[PL_MAX + 1] ? I[PL_MAX] : I[PL_MAX + 1];
            with_other = 1;
            pl_bytes = I[PL_BYTES] + I[PL_BYTES + 1];
        }
        out[0] = (double)count;
        out[1] = ratio((double)count, (double)packets);
        out[2] = (double)pl_bytes;
        out = hist_stats(out + 3, count, total, squares, (double)lo, (double)hi, size_hist + (d % 2) * BINS,
                         size_hist + BINS, with_other, 3.0, 0.0, 1.0);
        double *iat = out;
        out = hist_stats(out, I[IAT_N + d], F[IAT_SUM + d], F[IAT_SQ + d], (double)I[IAT_MIN + d] / 1e3,
                         (double)I[IAT_MAX + d] / 1e3, iat_hist + d * BINS, iat_hist + d * BINS, 0, 2.0, 1.0, 1e-3);
        out = normalised(out, iat, rtt_ms);
    }
    int64_t packets = I[PKTS] + I[PKTS + 1], pl_bytes = I[PL_BYTES] + I[PL_BYTES + 1], bursts = I[BURSTS];
    out[0] = ratio((double)I[PKTS + 1], (double)packets);
    out[1] = ratio((double)I[PL_BYTES + 1], (double)pl_bytes);
    out[2] = ratio(duration, rtt_ms);
    out[3] = (double)bursts;
    out[4] = ratio((double)(I[PL_PKTS] + I[PL_PKTS + 1]), (double)bursts);
    out += 5;
    for (int d = 0; d < 2; d++) {
        out[0] = (double)I[BURST_MAX_PKTS + d];
        out[1] = (double)I[BURST_MAX_BYTES + d];
        for (int b = 0; b < 8; b++) out[2 + b] = (double)I[FLAG_COUNTS + 8 * d + b];
        out += 10;
    }
    return out;
}

static double *early(double *out, const flow_rows_t *f, int64_t r, int64_t n, double rtt_ms, double *values) {
    const int64_t *ts = f->rec_ts + r * f->n_rec;
    const int32_t *payload = f->rec_payload + r * f->n_rec, *wire = f->rec_wire + r * f->n_rec;
    const int8_t *dir = f->rec_dir + r * f->n_rec;
    const uint8_t *flags = f->rec_flags + r * f->n_rec;
    for (int d = 0; d < 2; d++) {
        int64_t packets = 0, bytes = 0;
        for (int64_t j = 0; j < n; j++) {
            if (dir[j] == d) {
                packets++;
                bytes += wire[j];
            }
        }
        out[0] = (double)packets;
        out[1] = (double)bytes;
        out += 2;
    }
    double duration = 0.0;
    for (int64_t j = 0; j < n; j++) duration = dmax(duration, (double)(ts[j] - ts[0]) / NS_PER_MS);  /* capture order is not always time order */
    *out++ = duration;
    for (int d = 0; d < 3; d++) {
        int64_t packets = 0, count = 0, pl_bytes = 0;
        for (int64_t j = 0; j < n; j++) {
            if (d == 2 || dir[j] == d) {
                packets++;
                if (payload[j] > 0) {
                    values[count++] = (double)payload[j];
                    pl_bytes += payload[j];
                }
            }
        }
        out[0] = (double)count;
        out[1] = ratio((double)count, (double)packets);
        out[2] = (double)pl_bytes;
        out = exact_stats(out + 3, values, count, 1.0);
        int64_t gaps = 0, last = -1;
        for (int64_t j = 0; j < n; j++) {
            if (d == 2 || dir[j] == d) {
                if (last >= 0) values[gaps++] = (double)(ts[j] - last > 0 ? ts[j] - last : 0);
                last = ts[j];
            }
        }
        double *iat = out;
        out = exact_stats(out, values, gaps, 1.0 / NS_PER_MS);
        out = normalised(out, iat, rtt_ms);
    }
    int64_t down = 0, down_bytes = 0, total_bytes = 0;
    for (int64_t j = 0; j < n; j++) {
        if (dir[j] == 1) {
            down++;
            down_bytes += payload[j];
        }
        total_bytes += payload[j];
    }
    out[0] = ratio((double)down, (double)n);
    out[1] = ratio((double)down_bytes, (double)total_bytes);
    out[2] = ratio(duration, rtt_ms);
    /* Bursts: runs of payload packets in one direction. */
    int64_t bursts = 0, current = -1, run_packets = 0, run_bytes = 0, payload_packets = 0;
    int64_t max_packets[2] = {0, 0}, max_bytes[2] = {0, 0};
    for (int64_t j = 0; j < n; j++) {
        int64_t size = payload[j];
        if (size <= 0) continue;
        payload_packets++;
        int64_t d = dir[j];
        if (d != current) {
            bursts++;
            current = d;
            run_packets = run_bytes = 0;
        }
        run_packets++;
        run_bytes += size;
        if (run_packets > max_packets[d]) max_packets[d] = run_packets;
        if (run_bytes > max_bytes[d]) max_bytes[d] = run_bytes;
    }
    out[3] = (double)bursts;
    out[4] = ratio((double)payload_packets, (double)bursts);
    out += 5;
    int64_t flagged[2][8] = {{0}};
    for (int64_t j = 0; j < n; j++) {
        if (dir[j] != 0 && dir[j] != 1) continue;
        for (int b = 0; b < 8; b++) flagged[dir[j]][b] += (flags[j] >> b) & 1;
    }
    for (int d = 0; d < 2; d++) {
        out[0] = (double)max_packets[d];
        out[1] = (double)max_bytes[d];
        for (int b = 0; b < 8; b++) out[2 + b] = (double)flagged[d][b];
        out += 10;
    }
    return out;
}

static double *sequence(double *out, const flow_rows_t *f, int64_t r, int64_t n_seq, double rtt_ms, int64_t width) {
    const int32_t *len = f->seq_len + r * f->n_seq;
    const int8_t *dir = f->seq_dir + r * f->n_seq;
    const int64_t *ts = f->seq_ts + r * f->n_seq;
    int64_t previous = f->I[r * N_INT + FIRST_TS];
    for (int64_t i = 0; i < width; i++, out += 3) {
        if (i < n_seq) {
            out[0] = dir[i] == 0 ? (double)len[i] : -(double)len[i];
            double gap = (double)(ts[i] - previous > 0 ? ts[i] - previous : 0) / NS_PER_MS;
            out[1] = gap;
            out[2] = ratio(gap, rtt_ms);
            previous = ts[i];
        } else {
            out[0] = 0;
            out[1] = out[2] = NAN;
        }
    }
    return out;
}

/* The lines of a row that the read-out reads: in the state, rows are scattered over megabytes. Fetched into
 * the second-level cache, not the first (locality 2): the ~40 lines of a row, four rows ahead, overflow the
 * first level's misses in flight, and the read-out of a 1M-packet capture then took 31 ms instead of 24 ms. */
static void prefetch_row(const flow_rows_t *f, int64_t s) {
    const char *spans[][2] = {
        {(const char *)(f->I + s * N_INT), (const char *)(f->I + (s + 1) * N_INT)},
        {(const char *)(f->F + s * N_FLOAT), (const char *)(f->F + (s + 1) * N_FLOAT)},
        {(const char *)(f->size_hist + s * 2 * BINS), (const char *)(f->size_hist + (s + 1) * 2 * BINS)},
        {(const char *)(f->iat_hist + s * 3 * BINS), (const char *)(f->iat_hist + (s + 1) * 3 * BINS)},
        {(const char *)(f->rec_ts + s * f->n_rec), (const char *)(f->rec_ts + (s + 1) * f->n_rec)},
        {(const char *)(f->rec_payload + s * f->n_rec), (const char *)(f->rec_payload + (s + 1) * f->n_rec)},
        {(const char *)(f->rec_wire + s * f->n_rec), (const char *)(f->rec_wire + (s + 1) * f->n_rec)},
        {(const char *)(f->rec_dir + s * f->n_rec), (const char *)(f->rec_dir + (s + 1) * f->n_rec)},
        {(const char *)(f->rec_flags + s * f->n_rec), (const char *)(f->rec_flags + (s + 1) * f->n_rec)},
        {(const char *)(f->seq_len + s * f->n_seq), (const char *)(f->seq_len + (s + 1) * f->n_seq)},
        {(const char *)(f->seq_dir + s * f->n_seq), (const char *)(f->seq_dir + (s + 1) * f->n_seq)},
        {(const char *)(f->seq_ts + s * f->n_seq), (const char *)(f->seq_ts + (s + 1) * f->n_seq)},
    };
    for (int a = 0; a < (int)(sizeof spans / sizeof spans[0]); a++)
        for (const char *p = spans[a][0]; p < spans[a][1]; p += 64) __builtin_prefetch(p, 0, 2);
}

/* Where read-out columns go: value `source` of each flow's row into column `column` (m values) of `kind`. */
enum { AS_FLOAT64, AS_FLOAT32, AS_INT32, AS_INT8 };

/* Compute each of the m ended flows' row of read-out values and write value source[i] of it to column[i]: straight
 * into the typed blocks the columns end in (float32, int32, int8: what numpy's astype does, NaN to 0), and
 * as float64 for the few that later code reads. A row is `columns` values long; returns the length of the
 * rows written (-1 if they would not fit, or differ from `columns`). */
int64_t readout(int64_t m, const flow_rows_t *f, int64_t early_packets, int64_t sequence_width, int64_t columns,
                int64_t n_dest, const int64_t *source, void *const *column, const int64_t *kind) {
    double values[64], row[512];
    int64_t written = 0;
    if (f->n_rec > 64 || columns > 512) return -1;
    for (int64_t i = 0; i < n_dest; i++)
        if (source[i] < 0 || source[i] >= columns) return -1;
    for (int64_t r = 0; r < m; r++) {
        if (f->index && r + 4 < m) prefetch_row(f, f->index[r + 4]);
        const int64_t s = f->index ? f->index[r] : r;
        const int64_t *I = f->I + s * N_INT;
        int64_t n_rec = I[PKTS] + I[PKTS + 1], n_seq = I[PL_PKTS] + I[PL_PKTS + 1];
        if (n_rec > f->n_rec) n_rec = f->n_rec;
        if (n_seq > f->n_seq) n_seq = f->n_seq;
        int64_t rtt_ns = -1;
        int64_t source_of_rtt = round_trip(f, s, n_rec, n_seq, &rtt_ns);
        double rtt_ms = source_of_rtt > 0 ? (double)rtt_ns / NS_PER_MS : NAN;
        double *c = row;
        c[0] = rtt_ms;
        c[1] = (double)source_of_rtt;
        c = whole(c + 2, f, s, rtt_ms);
        c = early(c, f, s, early_packets < n_rec ? early_packets : n_rec, rtt_ms, values);
        c = sequence(c, f, s, n_seq, rtt_ms, sequence_width);
        written = c - row;
        if (written != columns) return -1;
        for (int64_t i = 0; i < n_dest; i++) {
            const double v = row[source[i]];
            switch (kind[i]) {
            case AS_FLOAT64: ((double *)column[i])[r] = v; break;
            case AS_FLOAT32: ((float *)column[i])[r] = (float)v; break;
            case AS_INT32: ((int32_t *)column[i])[r] = isnan(v) ? 0 : (int32_t)v; break;
            default: ((int8_t *)column[i])[r] = isnan(v) ? 0 : (int8_t)(int32_t)v; break;
            }
        }
    }
    return written;
}

/* Xue et al.'s ACK filter over the first `packets` payload sizes of each row (seq_len, of which the first n_seq[r]
 * are the row's packets): the most common size of 1-128 bytes (the smallest on a tie) and how many of the packets
 * in each 10-packet bin have it, into bins[r * 3 + b] (features/signatures/openvpn.py). */
void ack_bins(int64_t m, const int32_t *seq_len, int64_t width, const int64_t *n_seq, int64_t packets, int64_t *bins) {
    for (int64_t r = 0; r < m; r++) {
        const int32_t *sizes = seq_len + r * width;
        int64_t n = packets < width ? packets : width;
        if (n_seq[r] < n) n = n_seq[r];
        uint8_t counts[129] = {0};
        int64_t ack = 0, most = 0;         /* the leader so far, kept while counting (no pass over the 128) */
        for (int64_t j = 0; j < n; j++) {
            const int64_t s = sizes[j];
            if (s <= 0 || s > 128) continue;
            const int64_t c = ++counts[s];
            if (c > most || (c == most && s < ack)) ack = s, most = c;
        }
        int64_t *out = bins + r * 3;
        out[0] = out[1] = out[2] = 0;
        if (ack == 0) continue;
        for (int64_t j = 0; j < n && j < 30; j++) out[j / 10] += sizes[j] == ack;
    }
}
