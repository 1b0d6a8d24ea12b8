/* The handshake tests of wireguard.py over each flow's first packets (packets.h). */
#include <string.h>

#include "packets.h"

static int64_t le32(const uint8_t *h) { return (int64_t)h[0] | h[1] << 8 | h[2] << 16 | (int64_t)h[3] << 24; }

/* WireGuard (wireguard.py): a message of type `kind` (then three zero bytes). */
static int wireguard_message(const uint8_t *h, int kind) { return h[0] == kind && !h[1] && !h[2] && !h[3]; }

/* The first 3 payload packets of a direction are transport data (type 4, at least 32 bytes, a multiple of 16)
 * with one receiver index and counters that increase (as signed 64-bit numbers, as numpy compares them). */
static int wireguard_transport(const Packets *p, int64_t r, int64_t direction) {
    const uint8_t *first = NULL;
    int64_t last = -1;
    for (int64_t j = 0; j < 3; j++) {
        const int64_t idx = position(p, r, direction, j), n = size(p, r, idx);
        const uint8_t *h = head(p, r, idx);
        if (idx < 0 || held(p, r, idx) < 16 || !wireguard_message(h, 4) || n < 32 || n % 16) return 0;
        if (first && memcmp(h + 4, first + 4, 4)) return 0;
        first = first ? first : h;
        const int64_t counter = (int64_t)((uint64_t)le32(h + 8) | (uint64_t)le32(h + 12) << 32);
        if (counter <= last) return 0;
        last = counter;
    }
    return 1;
}

/* WireGuard for each of `rows` (UDP only; the first packet a message type 1-4 with three zero bytes): score[i]
 * 1 for a handshake initiation (148 bytes) answered by a response (92 bytes) whose receiver index is the
 * initiator's sender index, 0.8 for transport data both ways, 0.3 for an initiation alone; evidence[i] 1 for
 * the linked handshake, 2 for transport data both ways, else 0. */
void wireguard_handshakes(int64_t n_rows, const int64_t *rows, const int64_t *proto, const Packets *p,
                          double *score, int64_t *evidence) {
    for (int64_t i = 0; i < n_rows; i++) {
        const int64_t r = rows[i], i0 = position(p, r, 0, 0), r0 = position(p, r, 1, 0);
        const uint8_t *hi = head(p, r, i0), *hr = head(p, r, r0);
        score[i] = 0.0;
        evidence[i] = 0;
        if (proto[i] != 17 || hi[0] < 1 || hi[0] > 4 || hi[1] || hi[2] || hi[3]) continue;
        const int initiation = i0 == 0 && wireguard_message(hi, 1) && size(p, r, i0) == 148;
        const int linked = initiation && wireguard_message(hr, 2) && size(p, r, r0) == 92 && held(p, r, r0) >= 12
                           && !memcmp(hr + 8, hi + 4, 4);
        const int data = wireguard_transport(p, r, 0) && wireguard_transport(p, r, 1);
        score[i] = linked ? 1.0 : data ? 0.8 : initiation ? 0.3 : 0.0;
        evidence[i] = linked ? 1 : data ? 2 : 0;
    }
}
