/* Signature statistics over each flow's payload sequence (sizes and directions of its first payload packets),
 * one pass a flow instead of numpy's several over the whole (flows, packets) matrix. */
#include <stdint.h>

/* Where each flow's first payload packets from each direction sit (SignatureView.index):
 * out[(d * k + n) * m + r]: position of row r's (n+1)-th payload packet from direction d among its first
 * n_seq[r] (of width), -1 if it has fewer. */
void sequence_positions(int64_t m, const int8_t *seq_dir, int64_t width, const int64_t *n_seq, int64_t k,
                        int64_t *out) {
    for (int64_t i = 0; i < 2 * k * m; i++) out[i] = -1;
    for (int64_t r = 0; r < m; r++) {
        const int8_t *dirs = seq_dir + r * width;
        int64_t seen[2] = {0, 0};
        const int64_t n = n_seq[r] < width ? n_seq[r] : width;
        for (int64_t j = 0; j < n && (seen[0] < k || seen[1] < k); j++) {
            const int d = dirs[j];
            if ((d == 0 || d == 1) && seen[d] < k) out[(d * k + seen[d]++) * m + r] = j;
        }
    }
}

/* Is n a multiple of the divisor whose `inverse` is UINT64_MAX / divisor + 1? (Lemire, Kaser and Kurz, "Faster
 * remainder by direct computation", 2019: exact for every 32-bit n and divisor; a multiplication where a division
 * per packet cost most of the pass.) */
static int divisible(uint32_t n, uint64_t inverse) { return (uint64_t)n * inverse <= inverse - 1; }

/* Tor's cells (tor.py): the share of row r's responder payload packets among its first n_seq[r] whose size is a
 * multiple of `a` or of `b` (positive, below 2^32), 0 where it has none; divided as numpy divides the two counts. */
void cell_share(int64_t m, const int32_t *seq_len, const int8_t *seq_dir, int64_t width, const int64_t *n_seq,
                int64_t a, int64_t b, double *out) {
    const uint64_t inverse_a = UINT64_MAX / (uint64_t)a + 1, inverse_b = UINT64_MAX / (uint64_t)b + 1;
    for (int64_t r = 0; r < m; r++) {
        const int32_t *sizes = seq_len + r * width;
        const int8_t *dirs = seq_dir + r * width;
        const int64_t n = n_seq[r] < width ? n_seq[r] : width;
        int64_t down = 0, cells = 0;
        for (int64_t j = 0; j < n; j++) {
            const int32_t size = sizes[j];
            if (dirs[j] != 1 || size <= 0) continue;
            down++;
            cells += (size >= a && divisible((uint32_t)size, inverse_a))
                     || (size >= b && divisible((uint32_t)size, inverse_b));
        }
        out[r] = down > 0 ? (double)cells / (double)down : 0.0;
    }
}

/* Payload bursts (runs of packets from one direction) among row r's first n_seq[r] packets: their summed sizes
 * and directions in sizes[r * width + b] and dirs[r * width + b], size 0 and direction -1 past the last. */
void sequence_bursts(int64_t m, const int32_t *seq_len, const int8_t *seq_dir, int64_t width, const int64_t *n_seq,
                     int64_t *sizes, int64_t *dirs) {
    for (int64_t i = 0; i < m * width; i++) sizes[i] = 0, dirs[i] = -1;
    for (int64_t r = 0; r < m; r++) {
        const int32_t *len = seq_len + r * width;
        const int8_t *dir = seq_dir + r * width;
        const int64_t n = n_seq[r] < width ? n_seq[r] : width;
        int64_t b = -1, previous = -1;
        for (int64_t j = 0; j < n; j++) {
            const int64_t d = dir[j];
            if (d >= 0 && (b < 0 || d != previous)) dirs[r * width + ++b] = d;
            if (d >= 0) sizes[r * width + b] += len[j];
            previous = d;
        }
    }
}

/* TLS-in-TLS (features/signatures/tls_in_tls.py): for each of `rows` r, over its payload bursts (as sequence_bursts
 * makes them),
 * the start b in [first, stop) with the most parts of an inner handshake in a row: a client burst of hello[0] to
 * hello[1] bytes, then a server burst of at least `flight`, then a client burst of finished[0] to finished[1]
 * (the first such start on a tie). level[r]: that many parts (0-3); start[r]: b, -1 where level is 0;
 * shown[r * 3 + i]: the size of burst b + i. stop + 2 must be at most 16. */
void inner_handshakes(int64_t n_rows, const int64_t *rows, const int32_t *seq_len, const int8_t *seq_dir,
                      int64_t width, const int64_t *n_seq, int64_t first, int64_t stop, const int64_t *hello,
                      int64_t flight, const int64_t *finished, int64_t *level, int64_t *start, int64_t *shown) {
    for (int64_t i = 0; i < n_rows; i++) {
        const int64_t r = rows[i];
        const int32_t *len = seq_len + r * width;
        const int8_t *dir = seq_dir + r * width;
        const int64_t n = n_seq[r] < width ? n_seq[r] : width;
        int64_t sizes[16] = {0}, dirs[16];
        for (int64_t b = 0; b < 16; b++) dirs[b] = -1;
        int64_t b = -1, previous = -1;
        for (int64_t j = 0; j < n; j++) {
            const int64_t d = dir[j];
            if (d >= 0 && (b < 0 || d != previous)) {
                if (++b == stop + 2) break;
                dirs[b] = d;
            }
            if (d >= 0) sizes[b] += len[j];
            previous = d;
        }
        int64_t best = 0, at = -1;
        for (b = first; b < stop; b++) {
            const int64_t parts = dirs[b] == 0 && sizes[b] >= hello[0] && sizes[b] <= hello[1]
                ? 1 + (dirs[b + 1] == 1 && sizes[b + 1] >= flight
                       ? 1 + (dirs[b + 2] == 0 && sizes[b + 2] >= finished[0] && sizes[b + 2] <= finished[1])
                       : 0)
                : 0;
            if (parts > best) best = parts, at = b;
        }
        level[i] = best;
        start[i] = at;
        for (int64_t j = 0; j < 3; j++) shown[i * 3 + j] = at >= 0 ? sizes[at + j] : 0;
    }
}
