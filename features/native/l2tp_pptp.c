/* The control-connection tests of l2tp.py and pptp.py over each flow's first packets (packets.h). */
#include "packets.h"

/* L2TP (l2tp.py): a control message behind `offset` bytes (T, L and S bits, version 2 or 3, a length field that
 * equals the payload) whose first AVP is the Message Type `message`; *version: its version. */
static int l2tp_control(const uint8_t *h, int64_t size, int64_t held, int64_t offset, int64_t message,
                        int64_t *version) {
    const uint8_t *avp = h + offset + 12;
    *version = h[offset + 1] & 0x0F;
    return held >= offset + 20 && (h[offset] & 0xC8) == 0xC8 && (*version == 2 || *version == 3)
           && be16(h + offset + 2) == size - offset && (be16(avp) & 0x03FF) == 8 && be16(avp + 2) == 0
           && be16(avp + 4) == 0 && be16(avp + 6) == message;
}

/* L2TP for each of `rows` (over UDP, or IP protocol 115 behind a zero session id): score[i] 1 for an SCCRQ from
 * the initiator answered by an SCCRP in the responder's first or second message, 0.3 for the SCCRQ alone;
 * facts[i * 3 + ...]: whether it was answered, the SCCRQ's version, the SCCRP's size. */
void l2tp_handshakes(int64_t n_rows, const int64_t *rows, const int64_t *proto, const Packets *p,
                     double *score, int64_t *facts) {
    for (int64_t i = 0; i < n_rows; i++) {
        const int64_t r = rows[i], i0 = position(p, r, 0, 0);
        const uint8_t *hi = head(p, r, i0);
        const int64_t size_i = size(p, r, i0), offset = proto[i] == 115 ? 4 : 0;
        int64_t *fact = facts + i * 3, version;
        score[i] = 0.0;
        fact[0] = fact[1] = fact[2] = 0;
        /* Control bits and a length field that equals the payload: few datagrams of other protocols have both. */
        if ((proto[i] != 17 && proto[i] != 115) || (hi[offset] & 0xC8) != 0xC8
            || be16(hi + offset + 2) != size_i - offset)
            continue;
        if ((offset && be32(hi) != 0) || i0 != 0 || !l2tp_control(hi, size_i, held(p, r, i0), offset, 1, &version))
            continue;
        score[i] = 0.3;
        fact[1] = version;
        /* The SCCRP may come second, after a ZLB that acknowledges a retransmitted SCCRQ on a lossy link. */
        for (int64_t j = 0; j < 2; j++) {
            const int64_t r0 = position(p, r, 1, j);
            int64_t reply_version;
            if (l2tp_control(head(p, r, r0), size(p, r, r0), held(p, r, r0), offset, 2, &reply_version)) {
                score[i] = 1.0;
                fact[0] = 1, fact[2] = size(p, r, r0);
                break;
            }
        }
    }
}

/* PPTP (pptp.py): a control message of `type` with its length, message type 1 and the magic cookie. */
static int pptp_control(const uint8_t *h, int64_t size, int64_t held, int64_t type) {
    return held >= 10 && be16(h) == size && be16(h + 2) == 1 && be32(h + 4) == 0x1A2B3C4D && be16(h + 8) == type;
}

/* PPTP for each of `rows`: score[i] 1 for a Start-Control-Connection-Request from the initiator (TCP) answered by a
 * Reply, or enhanced GRE (IP protocol 47, version 1, key present) carrying PPP; 0.3 for the request alone.
 * evidence[i] 1 for the control exchange, 2 for GRE, else 0. */
void pptp_handshakes(int64_t n_rows, const int64_t *rows, const int64_t *proto, const Packets *p,
                     double *score, int64_t *evidence) {
    for (int64_t i = 0; i < n_rows; i++) {
        const int64_t r = rows[i], i0 = position(p, r, 0, 0), r0 = position(p, r, 1, 0);
        const uint8_t *hi = head(p, r, i0), *hr = head(p, r, r0);
        score[i] = 0.0;
        evidence[i] = 0;
        if (proto[i] == 6 && be32(hi + 4) == 0x1A2B3C4D) {
            const int request = i0 == 0 && pptp_control(hi, size(p, r, i0), held(p, r, i0), 1);
            const int control = request && pptp_control(hr, size(p, r, r0), held(p, r, r0), 2);
            score[i] = control ? 1.0 : request ? 0.3 : 0.0;
            evidence[i] = control;
        } else if (proto[i] == 47 && held(p, r, i0) >= 8 && (hi[1] & 0x07) == 1 && (hi[0] & 0x20)
                   && be16(hi + 2) == 0x880B) {
            score[i] = 1.0;
            evidence[i] = 2;
        }
    }
}
