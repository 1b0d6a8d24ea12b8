/* The record walk of fake_tls.py over server stream prefixes. */
#include "packets.h"

/* Fake TLS (fake_tls.py), over server stream prefixes (data[r * width:], lengths[r] bytes held): for each of
 * `rows`, the length of the third record where the stream opens with a handshake record (ServerHello), then a
 * ChangeCipherSpec record, then a handshake record longer than `finished_at_most` whose header is held; else -1.
 * Record headers are read wherever they fall within the width, as the numpy version read them. */
void fake_tls_finished(int64_t n_rows, const uint8_t *data, int64_t width, const int64_t *lengths,
                       const int64_t *rows, int64_t finished_at_most, int64_t *out) {
    for (int64_t i = 0; i < n_rows; i++) {
        const uint8_t *row = data + rows[i] * width;
        out[i] = -1;
        const int64_t second = 5 + be16(row + 3);
        const int64_t third = second + 5 + (second + 5 <= width ? be16(row + second + 3) : 0);
        const int64_t length = third + 5 <= width ? be16(row + third + 3) : 0;
        if (row[0] == 22 && second + 1 <= width && row[second] == 20 && third + 1 <= width && row[third] == 22
            && length > finished_at_most && third + 5 <= lengths[rows[i]])
            out[i] = length;
    }
}
