/* Byte statistics of payload rows (features/extract/bytestats.py): one pass per row for entropy, set bits,
 * printable and ASCII counts and the longest printable run. */
#include <math.h>
#include <stdint.h>

static const uint8_t POPCOUNT[256] = {
#define B2(n) n, n + 1, n + 1, n + 2
#define B4(n) B2(n), B2(n + 1), B2(n + 1), B2(n + 2)
#define B6(n) B4(n), B4(n + 1), B4(n + 1), B4(n + 2)
    B6(0), B6(1), B6(1), B6(2)
};

/* sum of c * log2(c) over the byte counts of row[:n], counted in `counts` by the caller, which it leaves zeroed.
 *
 * The terms are added over the distinct bytes in order of first appearance (the order fixes the rounding),
 * skipping bytes seen once (1 * log2(1) = 0 would leave the sum as it is). A first walk over the row only
 * collects the counts of that order, with no branch: on random payload `c > 1` is a coin toss the branch
 * predictor loses, and most bytes add nothing. The sum then runs over the few counts collected. */
static inline double sum_c_log_c(const uint8_t *row, int64_t n, uint32_t *counts, const double *c_log_c,
                                 int64_t c_log_c_len) {
    uint32_t repeated[257];       /* k reaches 256 when every byte value repeats; later bytes still store at k */
    int64_t k = 0;
    for (int64_t j = 0; j < n; j++) {
        const uint32_t c = counts[row[j]];
        counts[row[j]] = 0;
        repeated[k] = c;
        k += c > 1;
    }
    double s = 0.0;
    for (int64_t i = 0; i < k; i++) {
        const uint32_t c = repeated[i];
        s += c < c_log_c_len ? c_log_c[c] : (double)c * log2((double)c);
    }
    return s;
}

/* Rows are short and far apart (most of a 2 KB prefix buffer is empty), too short for the hardware prefetcher
 * to find: each would start with a wait on memory. */
static inline void prefetch_row(const uint8_t *row, int64_t n) {
    for (int64_t o = 0; o < n; o += 64) __builtin_prefetch(row + o);
}

/* Row r is data[r * width : r * width + lengths[r]] (cut at width). c_log_c[c] is c * log2(c), given by the
 * caller so that entropies equal those numpy computes; counts past the table take libm's log2. */
void byte_profiles(int64_t m, const uint8_t *data, int64_t width, const int64_t *lengths, const double *c_log_c,
                   int64_t c_log_c_len, double *entropy, double *popcount, double *printable, double *ascii,
                   int64_t *longest, uint8_t *first6) {
    uint32_t counts[256] = {0};
    for (int64_t r = 0; r < m; r++) {
        const uint8_t *row = data + r * width;
        int64_t n = lengths[r] < width ? lengths[r] : width;
        if (r + 4 < m) prefetch_row(data + (r + 4) * width, lengths[r + 4] < width ? lengths[r + 4] : width);
        int64_t bits = 0, printable_n = 0, ascii_n = 0, run = 0, best = 0;
        for (int64_t j = 0; j < n; j++) {
            uint8_t b = row[j];
            counts[b]++;
            bits += POPCOUNT[b];
            int is_printable = (uint8_t)(b - 0x20) < 0x5F;
            printable_n += is_printable;
            run = is_printable ? run + 1 : 0;
            best = run > best ? run : best;
            ascii_n += b < 0x80;
        }
        double s = sum_c_log_c(row, n, counts, c_log_c, c_log_c_len);
        if (n > 0) {
            double h = log2((double)n) - s / (double)n;
            entropy[r] = h < 0.0 ? 0.0 : h;
            popcount[r] = (double)bits / (double)n;
            printable[r] = (double)printable_n / (double)n;
            ascii[r] = (double)ascii_n / (double)n;
        } else {
            entropy[r] = popcount[r] = printable[r] = ascii[r] = NAN;
        }
        longest[r] = best;
        int ok = n >= 6;
        for (int64_t j = 0; j < n && j < 6; j++) ok &= (uint8_t)(row[j] - 0x20) < 0x5F;
        first6[r] = (uint8_t)ok;
    }
}

/* Entropy alone (as byte_profiles computes it) of each row: the sequence heads need nothing else, and the
 * other counts cost as much as the entropy on their short rows. */
void byte_entropies(int64_t m, const uint8_t *data, int64_t width, const int64_t *lengths, const double *c_log_c,
                    int64_t c_log_c_len, double *entropy) {
    uint32_t counts[256] = {0};
    for (int64_t r = 0; r < m; r++) {
        const uint8_t *row = data + r * width;
        int64_t n = lengths[r] < width ? lengths[r] : width;
        if (n <= 0) {
            entropy[r] = NAN;
            continue;
        }
        for (int64_t j = 0; j < n; j++) counts[row[j]]++;
        double s = sum_c_log_c(row, n, counts, c_log_c, c_log_c_len);
        double h = log2((double)n) - s / (double)n;
        entropy[r] = h < 0.0 ? 0.0 : h;
    }
}
