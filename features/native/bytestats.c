/* Byte statistics of payload rows (features/extract/bytestats.py): the entropy from byte counts, and set
 * bits, printable and ASCII counts and the longest printable run from words of 8 bytes. */
#include <math.h>
#include <stdint.h>
#include <string.h>

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

/* Shannon entropy in bits per byte of row[:n] (NaN if empty); `counts` is all zeros, and left so. */
static inline double row_entropy(const uint8_t *row, int64_t n, uint32_t *counts, const double *c_log_c,
                                 int64_t c_log_c_len) {
    if (n <= 0) return NAN;
    for (int64_t j = 0; j < n; j++) counts[row[j]]++;
    const double h = log2((double)n) - sum_c_log_c(row, n, counts, c_log_c, c_log_c_len) / (double)n;
    return h < 0.0 ? 0.0 : h;
}

/* Rows are short and far apart (most of a 2 KB prefix buffer is empty), too short for the hardware prefetcher
 * to find: each would start with a wait on memory. */
static inline void prefetch_row(const uint8_t *row, int64_t n) {
    for (int64_t o = 0; o < n; o += 64) __builtin_prefetch(row + o);
}

static const uint64_t ONES = 0x0101010101010101u, HIGH = 0x8080808080808080u;

/* Bytes p[0:8] as a word whose byte i is p[i] on any machine (one load where the machine is little-endian). */
static inline uint64_t le64(const uint8_t *p) {
    return (uint64_t)p[0] | (uint64_t)p[1] << 8 | (uint64_t)p[2] << 16 | (uint64_t)p[3] << 24 |
           (uint64_t)p[4] << 32 | (uint64_t)p[5] << 40 | (uint64_t)p[6] << 48 | (uint64_t)p[7] << 56;
}

/* How many bytes of a word have their top bit set, bytes' other bits clear. */
static inline int64_t count_high(uint64_t flags) { return (int64_t)(((flags >> 7) * ONES) >> 56); }

/* Set bits, printable bytes (0x20-0x7E) and non-ASCII bytes of row[:n], and its printable bytes as a bitmap
 * (bit i of printable_map[i / 64] for byte i), counted 8 bytes at a time in words: the printable test and the
 * bit counts are the same on every byte of a word, and the carries of the additions stay inside bytes. */
static inline void word_counts(const uint8_t *row, int64_t n, int64_t *bits, int64_t *printable_n, int64_t *high_n,
                               uint64_t *printable_map) {
    for (int64_t j = 0; j < n; j += 8) {
        uint8_t tail[8] = {0};          /* zero bytes past the row: no bits, neither printable nor high */
        if (n - j < 8) memcpy(tail, row + j, (size_t)(n - j));
        const uint64_t w = le64(n - j < 8 ? tail : row + j), low7 = w & ~HIGH;
        const uint64_t printable = (low7 + 0x60 * ONES) & ~(low7 + ONES) & ~w & HIGH;
        uint64_t x = w - ((w >> 1) & 0x55 * ONES);
        x = (x & 0x33 * ONES) + ((x >> 2) & 0x33 * ONES);
        *bits += (int64_t)((((x + (x >> 4)) & 0x0F * ONES) * ONES) >> 56);
        *printable_n += count_high(printable);
        *high_n += count_high(w & HIGH);
        /* the top bits of the bytes gathered into 8 adjacent bits, byte i to bit i */
        printable_map[j / 64] |= (((printable >> 7) * 0x0102040810204080u) >> 56) << (j % 64);
    }
}

/* Longest run of set bits in a bitmap of n bits, a 64-bit word at a time: a run is carried from word to
 * word, and within a word found by shifting it onto itself until nothing is left. */
static inline int64_t longest_run(const uint64_t *map, int64_t n) {
    int64_t run = 0, best = 0;
    for (int64_t i = 0; i < (n + 63) / 64; i++) {
        uint64_t b = map[i];
        if (b == ~(uint64_t)0) {
            run += 64;
            continue;
        }
        int64_t head = run + __builtin_ctzll(~b), inner = 0;
        for (; b; b &= b << 1) inner++;
        best = head > best ? head : best;
        best = inner > best ? inner : best;
        run = __builtin_clzll(~map[i]);
    }
    return run > best ? run : best;
}

/* Row r is data[r * width : r * width + lengths[r]] (cut at width). c_log_c[c] is c * log2(c), given by the
 * caller so that entropies equal those numpy computes; counts past the table take libm's log2. */
void byte_profiles(int64_t m, const uint8_t *data, int64_t width, const int64_t *lengths, const double *c_log_c,
                   int64_t c_log_c_len, double *entropy, double *popcount, double *printable, double *ascii,
                   int64_t *longest, uint8_t *first6) {
    uint32_t counts[256] = {0};
    uint64_t printable_map[width / 64 + 1];
    for (int64_t r = 0; r < m; r++) {
        const uint8_t *row = data + r * width;
        int64_t n = lengths[r] < width ? lengths[r] : width;
        n = n < 0 ? 0 : n;
        if (r + 4 < m) prefetch_row(data + (r + 4) * width, lengths[r + 4] < width ? lengths[r + 4] : width);
        int64_t bits = 0, printable_n = 0, high_n = 0;
        memset(printable_map, 0, (size_t)(n + 63) / 64 * sizeof *printable_map);
        word_counts(row, n, &bits, &printable_n, &high_n, printable_map);
        entropy[r] = row_entropy(row, n, counts, c_log_c, c_log_c_len);
        if (n > 0) {
            popcount[r] = (double)bits / (double)n;
            printable[r] = (double)printable_n / (double)n;
            ascii[r] = (double)(n - high_n) / (double)n;
        } else {
            popcount[r] = printable[r] = ascii[r] = NAN;
        }
        longest[r] = longest_run(printable_map, n);
        first6[r] = n >= 6 && (printable_map[0] & 0x3F) == 0x3F;
    }
}

/* Entropy alone (as byte_profiles computes it) of each row: the sequence heads need nothing else, and the
 * other counts cost as much as the entropy on their short rows. */
void byte_entropies(int64_t m, const uint8_t *data, int64_t width, const int64_t *lengths, const double *c_log_c,
                    int64_t c_log_c_len, double *entropy) {
    uint32_t counts[256] = {0};
    for (int64_t r = 0; r < m; r++) {
        const int64_t n = lengths[r] < width ? lengths[r] : width;
        entropy[r] = row_entropy(data + r * width, n, counts, c_log_c, c_log_c_len);
    }
}
