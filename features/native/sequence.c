/* Where each flow's first payload packets from each direction sit in its payload sequence (SignatureView.index):
 * one pass over the directions instead of a comparison, a running count and an argmax over the whole
 * (flows, packets) matrix for every packet asked for. */
#include <stdint.h>

/* out[(d * k + n) * m + r]: position of row r's (n+1)-th payload packet from direction d among its first
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
