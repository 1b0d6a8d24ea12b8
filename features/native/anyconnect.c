/* The DTLS server-flight test of anyconnect.py over stream prefixes and first packets (packets.h). */
#include "packets.h"

/* One DTLS record (content type, first handshake type or -1) of a server flight, for anyconnect_resumed: 1 once a
 * ServerHello was followed by ServerHelloDone or ChangeCipherSpec, -1 at a Certificate, else 0 (go on). */
static int flight_step(int content, int handshake, int *hello) {
    if (handshake == 11) return -1;
    *hello |= handshake == 2;
    return *hello && (handshake == 14 || content == 20);
}

/* AnyConnect's DTLS channel (anyconnect.py) for each of `rows`: does the server flight go from ServerHello to
 * ServerHelloDone or ChangeCipherSpec without a Certificate, over the records of the first server datagram (its
 * stream prefix, data[r * width:], lengths[r] bytes) and the first record of each of the next three? */
void anyconnect_resumed(int64_t n_rows, const int64_t *rows, const uint8_t *data, int64_t width,
                        const int64_t *lengths, const Packets *p, int64_t *out) {
    for (int64_t i = 0; i < n_rows; i++) {
        const int64_t r = rows[i], n = lengths[r] < width ? lengths[r] : width;
        const uint8_t *row = data + r * width;
        int hello = 0, verdict = 0;
        for (int64_t pos = 0; pos + 13 <= n && !verdict; pos += 13 + be16(row + pos + 11))
            verdict = flight_step(row[pos], row[pos] == 22 && pos + 13 < n ? row[pos + 13] : -1, &hello);
        for (int64_t j = 1; j < 4 && !verdict; j++) {
            const uint8_t *h = head(p, r, position(p, r, 1, j));
            if (h[0]) verdict = flight_step(h[0], h[0] == 22 ? h[13] : -1, &hello);
        }
        out[i] = verdict == 1;
    }
}
