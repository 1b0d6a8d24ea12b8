/* What follows a client's WebSocket upgrade (features/signatures/websocket_tunnel.py), read in one pass a row
 * instead of Python's bytes operations per flow. */
#include <stdint.h>
#include <string.h>

static int lower(int c) { return c >= 'A' && c <= 'Z' ? c + 32 : c; }

/* Does "websocket" occur in data[0:n], A-Z read as a-z (as bytes.lower() does)? */
static int mentions_websocket(const uint8_t *data, int64_t n) {
    static const char word[] = "websocket";
    for (int64_t i = 0; i + 9 <= n; i++) {
        int64_t j = 0;
        while (j < 9 && lower(data[i + j]) == word[j]) j++;
        if (j == 9) return 1;
    }
    return 0;
}

/* For each of `rows` (data[r * width:], lengths[r] bytes: a client stream opening with an HTTP request): what
 * follows the request's blank line, if its header mentions websocket. Where that is no plausible client frame
 * (masked; a data frame, or a final control frame of at most 125 bytes; a whole 4-byte mask), those bytes
 * themselves: kind 1. Where it is a binary frame without RSV bits, its payload (as far as held), unmasked:
 * kind 2. Otherwise kind 0. out_size[i]: how many bytes that is; out_counts[i * 256 + b]: how many are b. */
void websocket_payloads(int64_t n_rows, const uint8_t *data, int64_t width, const int64_t *lengths,
                        const int64_t *rows, int64_t *out_kind, int64_t *out_size, int64_t *out_counts) {
    memset(out_counts, 0, (size_t)n_rows * 256 * sizeof *out_counts);
    for (int64_t i = 0; i < n_rows; i++) {
        const uint8_t *row = data + rows[i] * width;
        const int64_t n = lengths[rows[i]] < width ? lengths[rows[i]] : width;
        int64_t *counts = out_counts + i * 256;
        out_kind[i] = out_size[i] = 0;
        int64_t end = -1;
        for (int64_t j = 0; j + 4 <= n; j++) {
            if (row[j] == '\r' && row[j + 1] == '\n' && row[j + 2] == '\r' && row[j + 3] == '\n') {
                end = j;
                break;
            }
        }
        if (end < 0 || !mentions_websocket(row, end)) continue;
        const uint8_t *rest = row + end + 4;
        const int64_t held = n - end - 4;
        /* The frame header: length 126 and 127 are followed by a 2- and an 8-byte length. */
        int framed = held >= 6 && (rest[1] & 0x80);
        uint64_t length = rest[1] & 0x7F;
        int64_t pos = 2;
        if (framed && length == 126) {
            length = (uint64_t)rest[2] << 8 | rest[3];
            pos = 4;
        } else if (framed && length == 127) {
            length = 0;
            for (int64_t j = 2; j < 10 && j < held; j++) length = length << 8 | rest[j];
            pos = 10;
        }
        const int opcode = framed ? rest[0] & 0x0F : 0, final = framed ? rest[0] & 0x80 : 0;
        framed = framed && pos + 4 <= held
                 && (opcode == 1 || opcode == 2
                     || ((opcode == 8 || opcode == 9 || opcode == 10) && final && length <= 125));
        if (!framed) {
            out_kind[i] = 1;
            out_size[i] = held;
            for (int64_t j = 0; j < held; j++) counts[rest[j]]++;
        } else if (opcode == 2 && !(rest[0] & 0x70)) {
            const uint8_t *mask = rest + pos;
            const int64_t body = held - pos - 4;
            const int64_t size = length < (uint64_t)body ? (int64_t)length : body;
            out_kind[i] = 2;
            out_size[i] = size;
            for (int64_t j = 0; j < size; j++) counts[rest[pos + 4 + j] ^ mask[j & 3]]++;
        }
    }
}

/* The shares of the bytes present in each of n payloads (counts[i * 256 + b] of its sizes[i] bytes are b), in
 * byte order, one payload after the other: shares[...] = count / size, as numpy divides them; distinct[i]: how
 * many bytes payload i has. Returns how many shares there are. */
int64_t byte_shares(int64_t n, const int64_t *counts, const int64_t *sizes, double *shares, int64_t *distinct) {
    int64_t k = 0;
    for (int64_t i = 0; i < n; i++) {
        const int64_t start = k;
        for (int64_t b = 0; b < 256; b++)
            if (counts[i * 256 + b]) shares[k++] = (double)counts[i * 256 + b] / (double)sizes[i];
        distinct[i] = k - start;
    }
    return k;
}

/* numpy's pairwise summation of n doubles, as np.add.reduce sums a contiguous float64 array: fewer than 8 in
 * order, up to 128 in 8 running sums, more in halves (the first a multiple of 8). A sum here equals numpy's bit
 * for bit (the build does not contract or reorder floating-point operations). */
static double pairwise_sum(const double *a, int64_t n) {
    if (n < 8) {
        double sum = -0.0;
        for (int64_t i = 0; i < n; i++) sum += a[i];
        return sum;
    }
    if (n <= 128) {
        double r[8];
        int64_t i;
        for (int j = 0; j < 8; j++) r[j] = a[j];
        for (i = 8; i < n - n % 8; i += 8)
            for (int j = 0; j < 8; j++) r[j] += a[i + j];
        double sum = ((r[0] + r[1]) + (r[2] + r[3])) + ((r[4] + r[5]) + (r[6] + r[7]));
        for (; i < n; i++) sum += a[i];
        return sum;
    }
    int64_t half = n / 2;
    half -= half % 8;
    return pairwise_sum(a, half) + pairwise_sum(a + half, n - half);
}

/* out[i]: the sum of the i-th of consecutive segments of `terms` (lengths[i] each), as numpy's sum of that slice
 * gives it (its reduction starts from 0): one call for the entropies of all payloads instead of one each. */
void segment_sums(int64_t n_segments, const double *terms, const int64_t *lengths, double *out) {
    for (int64_t i = 0; i < n_segments; i++) {
        out[i] = 0.0 + pairwise_sum(terms, lengths[i]);
        terms += lengths[i];
    }
}
