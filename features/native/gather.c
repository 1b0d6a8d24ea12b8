/* Rows of a state array gathered by index (FeatureState.take_held): numpy's fancy indexing copies item by
 * item and waits on each row's cache misses in turn; here whole rows are copied while the next few are
 * already being fetched. */
#include <stdint.h>
#include <string.h>

enum { AHEAD = 8 };

void gather_rows(int64_t n, const int64_t *rows, const uint8_t *src, int64_t row_bytes, uint8_t *dst) {
    for (int64_t i = 0; i < n; i++) {
        if (i + AHEAD < n) {
            const uint8_t *next = src + rows[i + AHEAD] * row_bytes;
            for (int64_t b = 0; b < row_bytes; b += 64) __builtin_prefetch(next + b);
        }
        memcpy(dst + i * row_bytes, src + rows[i] * row_bytes, (size_t)row_bytes);
    }
}
