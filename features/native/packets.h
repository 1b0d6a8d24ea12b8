/* The first payload packets of each flow as the handshake kernels (openvpn.c, ipsec.c, socks.c, ...) read them:
 * in numpy the handshake tests of the signatures (features/signatures) take a hundred calls over a few hundred
 * candidate flows each, and the calls cost the time; in C they are one pass a flow. */
#ifndef VPNDETECT_PACKETS_H
#define VPNDETECT_PACKETS_H

#include <stdint.h>

/* A flow's first payload packets, as SignatureView reads them: the 64-byte heads of the first n_heads, the
 * sizes and bytes held of the first `width`, of which the row's first n_seq are its; positions[(d * k + n) * m + r]
 * is where row r's (n+1)-th packet from direction d sits (-1 if none). */
typedef struct {
    const uint8_t *heads;
    int64_t n_heads, head_bytes;
    const int32_t *seq_len, *seq_cap;
    int64_t width;
    const int64_t *n_seq, *positions;
    int64_t k, m;
} Packets;

static const uint8_t NO_HEAD[256];

static inline int64_t position(const Packets *p, int64_t r, int64_t direction, int64_t nth) {
    return p->positions[(direction * p->k + nth) * p->m + r];
}

/* SignatureView.head, size and held at a position: zeros, 0 and 0 where there is no such packet or head. */
static inline const uint8_t *head(const Packets *p, int64_t r, int64_t idx) {
    return idx >= 0 && idx < p->n_heads ? p->heads + (r * p->n_heads + idx) * p->head_bytes : NO_HEAD;
}

static inline int64_t size(const Packets *p, int64_t r, int64_t idx) {
    const int64_t column = idx < p->width - 1 ? idx : p->width - 1;
    return idx >= 0 && column < p->n_seq[r] ? p->seq_len[r * p->width + column] : 0;
}

static inline int64_t held(const Packets *p, int64_t r, int64_t idx) {
    if (idx < 0 || idx >= p->n_heads || idx >= p->n_seq[r]) return 0;
    const int64_t cap = p->seq_cap[r * p->width + idx];
    return cap < p->head_bytes ? cap : p->head_bytes;
}

static inline int64_t be16(const uint8_t *h) { return (int64_t)h[0] << 8 | h[1]; }

static inline int64_t be32(const uint8_t *h) { return (int64_t)h[0] << 24 | h[1] << 16 | h[2] << 8 | h[3]; }

#endif
