/* The handshake tests of ipsec.py (IKE, ESP in UDP, ESP and AH) over each flow's first packets (packets.h). */
#include <string.h>

#include "packets.h"

/* IPsec (ipsec.py): an ISAKMP header at 0, or at 4 after the zero non-ESP marker: a length field that equals the
 * datagram, version 1 or 2 with one of its exchange types, and an initiator SPI that is not zero. */
static int ike_header(const uint8_t *h, int64_t size, int64_t held, int marker) {
    const int o = marker ? 4 : 0, version = h[o + 17], exchange = h[o + 18];
    const int v1 = version == 0x10 && (exchange == 2 || exchange == 4 || exchange == 5 || exchange == 32);
    const int known = version == 0x20 ? exchange >= 34 && exchange <= 37 : v1;
    return held >= o + 28 && be32(h + o + 24) == size - o && known && (be32(h + o) | be32(h + o + 4)) != 0
           && (!marker || be32(h) == 0);
}

/* The first `packets` packets of a direction carry one SPI (not reserved) at `offset` and sequence numbers
 * n, n+1, ... from an n of 1 to 2^31 - 1; *spi: the first packet's SPI. */
static int esp_run(const Packets *p, int64_t r, int64_t direction, int64_t offset, int64_t packets, int64_t *spi) {
    int ok = 1;
    int64_t previous = 0;
    for (int64_t j = 0; j < packets; j++) {
        const int64_t idx = position(p, r, direction, j);
        const uint8_t *h = head(p, r, idx);
        const int64_t this_spi = be32(h + offset), seq = be32(h + offset + 4);
        ok = ok && idx >= 0 && held(p, r, idx) >= offset + 8 && size(p, r, idx) >= offset + 16 && this_spi >= 256;
        if (j == 0) {
            *spi = this_spi;
            ok = ok && seq >= 1 && seq < (int64_t)1 << 31;
        } else {
            ok = ok && this_spi == *spi && seq == previous + 1;
        }
        previous = seq;
    }
    return ok;
}

/* IPsec for each of `rows` (proto[i] its IP protocol, payload_packets[i * 2 + d] its payload packets from each
 * direction): IKE requests over UDP (with or without the non-ESP marker) and their answers, ESP in UDP with
 * counting sequence numbers both ways, ESP and AH as IP protocols. score[i] as ipsec.py scores it;
 * facts[i * 8 + ...]: IKE answered (an exchange), which evidence (0 none, 1 IKE, 2 ESP in UDP, 3 ESP or AH),
 * and for IKE: marker, version, exchange type, answered, initiator SPI linked; for ESP or AH: the SPI where its
 * sequence numbers count, else -1. Rows whose first packet has neither an IKE length field nor an ESP header
 * (the candidate test of ipsec.py) are scored 0 without further tests. */
void ipsec_handshakes(int64_t n_rows, const int64_t *rows, const int64_t *proto, const int64_t *payload_packets,
                      const Packets *p, double *score, int64_t *facts) {
    enum { IKE, EVIDENCE, MARKER, VERSION, EXCHANGE, ANSWERED, LINKED, SPI };
    for (int64_t i = 0; i < n_rows; i++) {
        int64_t *fact = facts + i * 8;
        const int64_t r = rows[i], transport = proto[i];
        memset(fact, 0, 8 * sizeof *fact);
        fact[SPI] = -1;
        score[i] = 0.0;
        const int udp = transport == 17;
        if (!udp && transport != 50 && transport != 51) continue;
        const int64_t i0 = position(p, r, 0, 0), r0 = position(p, r, 1, 0);
        const uint8_t *hi = head(p, r, i0), *hr = head(p, r, r0);
        const int64_t size_i = size(p, r, i0), size_r = size(p, r, r0);
        if (udp) {
            const int ike = ((hi[17] == 0x10 || hi[17] == 0x20) && be32(hi + 24) == size_i)
                            || ((hi[21] == 0x10 || hi[21] == 0x20) && be32(hi + 28) == size_i - 4);
            const int64_t seq = be32(hi + 4);
            const int esp = payload_packets[i * 2] >= 3 && payload_packets[i * 2 + 1] >= 3 && size_i >= 16
                            && be32(hi) >= 256 && seq >= 1 && seq < (int64_t)1 << 31;
            if (!ike && !esp) continue;
        }
        double s = 0.0;
        for (int marker = 0; udp && i0 == 0 && marker < 2; marker++) {
            const int o = marker ? 4 : 0;
            if (!ike_header(hi, size_i, held(p, r, i0), marker)) continue;
            /* Unlinked answers happen when both peers initiate at once; valid headers both ways still suffice. A
             * request alone still fires, for less: a version, an exchange type and a length field that equals the
             * datagram are no accident, and an unanswered IKE request is a VPN being attempted. */
            const int answer = ike_header(hr, size_r, held(p, r, r0), marker);
            const int linked = answer && !memcmp(hr + o, hi + o, 8);
            const double level = linked ? 1.0 : answer ? 0.8 : 0.6;
            s = level > s ? level : s;
            fact[IKE] |= answer;
            fact[EVIDENCE] = 1, fact[MARKER] = marker, fact[VERSION] = hi[o + 17], fact[EXCHANGE] = hi[o + 18];
            fact[ANSWERED] = answer, fact[LINKED] = linked;
        }
        int64_t spi;                    /* ESP in UDP (NAT-T) needs both directions */
        if (udp && esp_run(p, r, 0, 0, 3, &spi) && esp_run(p, r, 1, 0, 3, &spi) && !fact[IKE]) {
            s = s > 0.9 ? s : 0.9;
            fact[EVIDENCE] = 2;
        }
        if (!udp) {                     /* ESP/AH as IP protocols are what their number says */
            const int run = esp_run(p, r, 0, transport == 51 ? 4 : 0, 2, &spi);
            s = 1.0;
            fact[EVIDENCE] = 3;
            fact[SPI] = run ? spi : -1;
        }
        score[i] = s;
    }
}
