/* The handshake test of sstp.py over stream prefixes and first packets (packets.h). */
#include <string.h>

#include "packets.h"

/* Does the stream prefix data[r * width:] (lengths[r] bytes) open with literal[0:n]? */
static int opens_with(const uint8_t *data, int64_t width, const int64_t *lengths, int64_t r, const uint8_t *literal,
                      int64_t n) {
    return width >= n && lengths[r] >= n && !memcmp(data + r * width, literal, n);
}

/* SSTP for each of `rows` (TCP only): evidence[i] 1 where the client stream opens with `request` and the server's
 * with `answer`, 2 where (otherwise) the first packets both ways carry SSTP control framing (version 1.0, control
 * bit, a length that matches, Call Connect Request then Ack), else 0; score[i] 1 for either. Flows whose client
 * stream opens with neither "S?T" nor 10 01 are not tested further. */
void sstp_handshakes(int64_t n_rows, const int64_t *rows, const int64_t *proto, const uint8_t *client,
                     int64_t client_width, const int64_t *client_lengths, const uint8_t *server, int64_t server_width,
                     const int64_t *server_lengths, const uint8_t *request, int64_t request_length,
                     const uint8_t *answer, int64_t answer_length, const Packets *p, double *score,
                     int64_t *evidence) {
    for (int64_t i = 0; i < n_rows; i++) {
        const int64_t r = rows[i], i0 = position(p, r, 0, 0), r0 = position(p, r, 1, 0);
        const uint8_t *c = client + r * client_width, *hi = head(p, r, i0), *hr = head(p, r, r0);
        score[i] = 0.0;
        evidence[i] = 0;
        if (proto[i] != 6 || !((c[0] == 'S' && c[2] == 'T') || (c[0] == 0x10 && hi[0] == 0x10 && hi[1] == 0x01)))
            continue;
        if (opens_with(client, client_width, client_lengths, r, request, request_length)
            && opens_with(server, server_width, server_lengths, r, answer, answer_length))
            evidence[i] = 1;
        else if (hi[0] == 0x10 && hi[1] == 0x01 && (be16(hi + 2) & 0x0FFF) == size(p, r, i0) && be16(hi + 4) == 1
                 && hr[0] == 0x10 && hr[1] == 0x01 && be16(hr + 4) == 2)
            evidence[i] = 2;
        score[i] = evidence[i] ? 1.0 : 0.0;
    }
}
