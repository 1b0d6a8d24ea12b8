/* The first-datagram-and-answer tests of quic.py, dtls.py and stun.py over each flow's first packets (packets.h). */
#include "packets.h"

/* QUIC for each of `rows` (UDP): score[i] 1 for a long-header Initial of at least 1200 bytes with a known version
 * (1, 2, or a draft's FF0000xx) and a connection id length of at most 20, answered by a long-header packet of a
 * known version or version negotiation (0) or a short-header packet; 0.4 for the Initial alone. */
void quic_handshakes(int64_t n_rows, const int64_t *rows, const int64_t *proto, const Packets *p,
                     double *score) {
    for (int64_t i = 0; i < n_rows; i++) {
        const int64_t r = rows[i], i0 = position(p, r, 0, 0), r0 = position(p, r, 1, 0);
        const uint8_t *hi = head(p, r, i0), *hr = head(p, r, r0);
        score[i] = 0.0;
        if (proto[i] != 17 || i0 != 0) continue;
        const int64_t version = be32(hi + 1), answered = be32(hr + 1);
        const int known = version == 0x00000001 || version == 0x6B3343CF || version >> 8 == 0xFF0000;
        const int initial = (hi[0] & 0xC0) == 0xC0 && known && hi[5] <= 20 && size(p, r, i0) >= 1200;
        const int long_known = (hr[0] & 0x80) && (answered == 0 || answered == 0x00000001 || answered == 0x6B3343CF);
        const int answer = r0 > 0 && (long_known || (hr[0] & 0xC0) == 0x40);
        score[i] = initial && answer ? 1.0 : initial ? 0.4 : 0.0;
    }
}

static int dtls_version(int64_t version) { return version == 0xFEFF || version == 0xFEFD || version == 0xFEFC; }

/* DTLS for each of `rows` (UDP): score[i] 1 for a ClientHello record of a DTLS version from the initiator answered
 * by DTLS records (change cipher spec, alert or handshake), 0.4 for the ClientHello alone. */
void dtls_handshakes(int64_t n_rows, const int64_t *rows, const int64_t *proto, const Packets *p,
                     double *score) {
    for (int64_t i = 0; i < n_rows; i++) {
        const int64_t r = rows[i], i0 = position(p, r, 0, 0), r0 = position(p, r, 1, 0);
        const uint8_t *hi = head(p, r, i0), *hr = head(p, r, r0);
        const int hello = proto[i] == 17 && i0 == 0 && hi[0] == 22 && dtls_version(be16(hi + 1)) && hi[13] == 1
                          && held(p, r, i0) >= 14;
        const int answer = hello && (hr[0] == 20 || hr[0] == 21 || hr[0] == 22) && dtls_version(be16(hr + 1))
                           && held(p, r, r0) >= 13;
        score[i] = answer ? 1.0 : hello ? 0.4 : 0.0;
    }
}

/* STUN (stun.py): an RFC 5389 message at idx: two zero bits, the magic cookie, a length field (a multiple of 4)
 * that with the 20-byte header is the payload. */
static int stun_message(const Packets *p, int64_t r, int64_t idx) {
    const uint8_t *h = head(p, r, idx);
    const int64_t length = be16(h + 2);
    return (h[0] & 0xC0) == 0 && be32(h + 4) == 0x2112A442 && length % 4 == 0 && length + 20 == size(p, r, idx)
           && held(p, r, idx) >= 8;
}

/* STUN for each of `rows` (UDP): score[i] 1 for a message from the initiator answered by one, 0.7 for the first
 * alone. */
void stun_handshakes(int64_t n_rows, const int64_t *rows, const int64_t *proto, const Packets *p,
                     double *score) {
    for (int64_t i = 0; i < n_rows; i++) {
        const int64_t r = rows[i], i0 = position(p, r, 0, 0), r0 = position(p, r, 1, 0);
        const int request = proto[i] == 17 && i0 == 0 && stun_message(p, r, i0);
        score[i] = request && r0 > 0 && stun_message(p, r, r0) ? 1.0 : request ? 0.7 : 0.0;
    }
}
