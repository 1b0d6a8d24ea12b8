/* Rows of a state array gathered by index (FeatureState.take_held): numpy's fancy indexing copies item by
 * item and waits on each row's cache misses in turn; here rows are copied while the next few are already
 * being fetched, into L2: the lines of 8 rows overflow L1's misses in flight (as in readout.c). With `used`
 * (else NULL), only the first used[i] bytes of row i, in whole cache lines, are copied: the rest of the
 * destination row keeps whatever it held. */
#include <stdint.h>
#include <string.h>

enum { AHEAD = 8, LINE = 64 };

static inline int64_t span(const int64_t *used, int64_t i, int64_t row_bytes) {
    if (!used) return row_bytes;
    int64_t bytes = (used[i] + LINE - 1) / LINE * LINE;
    return bytes < 0 ? 0 : (bytes > row_bytes ? row_bytes : bytes);
}

void gather_rows(int64_t n, const int64_t *rows, const uint8_t *src, int64_t row_bytes, const int64_t *used,
                 uint8_t *dst) {
    for (int64_t i = 0; i < n; i++) {
        if (i + AHEAD < n) {
            const uint8_t *next = src + rows[i + AHEAD] * row_bytes;
            const int64_t ahead = span(used, i + AHEAD, row_bytes);
            for (int64_t b = 0; b < ahead; b += LINE) __builtin_prefetch(next + b, 0, 2);
        }
        memcpy(dst + i * row_bytes, src + rows[i] * row_bytes, (size_t)span(used, i, row_bytes));
    }
}
