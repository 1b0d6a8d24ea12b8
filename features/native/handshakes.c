/* Handshake tests of signatures over the first packets of each flow (features/signatures/*.py), one pass a flow:
 * in numpy they take a hundred calls over a few hundred candidate flows each, and the calls cost the time. */
#include <stdint.h>
#include <string.h>

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

static int64_t position(const Packets *p, int64_t r, int64_t direction, int64_t nth) {
    return p->positions[(direction * p->k + nth) * p->m + r];
}

/* SignatureView.head, size and held at a position: zeros, 0 and 0 where there is no such packet or head. */
static const uint8_t *head(const Packets *p, int64_t r, int64_t idx) {
    return idx >= 0 && idx < p->n_heads ? p->heads + (r * p->n_heads + idx) * p->head_bytes : NO_HEAD;
}

static int64_t size(const Packets *p, int64_t r, int64_t idx) {
    const int64_t column = idx < p->width - 1 ? idx : p->width - 1;
    return idx >= 0 && column < p->n_seq[r] ? p->seq_len[r * p->width + column] : 0;
}

static int64_t held(const Packets *p, int64_t r, int64_t idx) {
    if (idx < 0 || idx >= p->n_heads || idx >= p->n_seq[r]) return 0;
    const int64_t cap = p->seq_cap[r * p->width + idx];
    return cap < p->head_bytes ? cap : p->head_bytes;
}

/* OpenVPN (openvpn.py), behind `offset` bytes of TCP length prefix: the opcode/key-id byte of the packet at idx
 * and whether it is framed (the length prefix matches and the head holds the header). */
static int openvpn_framed(const Packets *p, int64_t r, int64_t idx, int64_t offset, int64_t *opbyte) {
    const uint8_t *h = head(p, r, idx);
    *opbyte = h[offset];
    const int frame_ok = !offset || (((int64_t)h[0] << 8 | h[1]) == size(p, r, idx) - 2);
    return frame_ok && held(p, r, idx) > offset + 8;
}

/* For each of `rows` (proto[i] its transport: 17 UDP, 6 TCP behind a 2-byte length): level[i] 3 for a client
 * hard reset (P_CONTROL_HARD_RESET_CLIENT_V2 or _V3 for tls-crypt-v2, key id 0, first packet) answered by a server
 * hard reset (P_CONTROL_HARD_RESET_SERVER_V2) whose session id is echoed by the server or kept in a later client
 * control packet (P_CONTROL_V1, P_ACK_V1 or a reset), 2 for the exchange alone, 1 for the client's reset alone,
 * else 0; where the first packet's opcode byte is no client reset, nothing more is read. opcode[i] the client's
 * opcode; echo[i] where the server head repeats the client's session id (-1 if nowhere, or no exchange); kept[i]
 * how many of the client's 2nd-4th packets keep it. */
void openvpn_handshakes(int64_t n_rows, const int64_t *rows, const int64_t *proto, const uint8_t *heads,
                        int64_t n_heads, int64_t head_bytes, const int32_t *seq_len, const int32_t *seq_cap,
                        int64_t width, const int64_t *n_seq, const int64_t *positions, int64_t k, int64_t m,
                        int64_t *level, int64_t *opcode, int64_t *echo, int64_t *kept) {
    const Packets p = {heads, n_heads, head_bytes, seq_len, seq_cap, width, n_seq, positions, k, m};
    for (int64_t i = 0; i < n_rows; i++) {
        const int64_t r = rows[i], offset = proto[i] == 6 ? 2 : 0;
        level[i] = opcode[i] = kept[i] = 0;
        echo[i] = -1;
        if (proto[i] != 6 && proto[i] != 17) continue;
        const int64_t c0 = position(&p, r, 0, 0), s0 = position(&p, r, 1, 0);
        const uint8_t reset = head(&p, r, c0)[offset];
        if (reset != 0x38 && reset != 0x50) continue;                  /* opcode 7 or 10, key id 0 */
        int64_t client, server;
        const int ok_c = openvpn_framed(&p, r, c0, offset, &client);
        const int ok_s = openvpn_framed(&p, r, s0, offset, &server);
        opcode[i] = client >> 3;
        const int client_reset = ok_c && (client >> 3 == 7 || client >> 3 == 10) && (client & 7) == 0 && c0 == 0;
        if (!client_reset) continue;
        level[i] = 1;
        if (!(ok_s && server >> 3 == 8 && (server & 7) == 0)) continue;
        level[i] = 2;
        const uint8_t *session = head(&p, r, c0) + offset + 1, *hs = head(&p, r, s0);
        if (head_bytes >= offset + 17) {
            for (int64_t at = offset + 9; at + 8 <= head_bytes; at++) {
                if (!memcmp(hs + at, session, 8)) {
                    echo[i] = at;
                    break;
                }
            }
        }
        for (int64_t j = 1; j < 4; j++) {
            const int64_t idx = position(&p, r, 0, j);
            int64_t later;
            const int ok = openvpn_framed(&p, r, idx, offset, &later);
            const int64_t op = later >> 3;
            kept[i] += ok && (op == 4 || op == 5 || op == 7 || op == 10)
                       && !memcmp(head(&p, r, idx) + offset + 1, session, 8);
        }
        if (echo[i] >= 0 || kept[i] > 0) level[i] = 3;
    }
}

static int64_t be32(const uint8_t *h) { return (int64_t)h[0] << 24 | h[1] << 16 | h[2] << 8 | h[3]; }

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
                      const uint8_t *heads, int64_t n_heads, int64_t head_bytes, const int32_t *seq_len,
                      const int32_t *seq_cap, int64_t width, const int64_t *n_seq, const int64_t *positions,
                      int64_t k, int64_t m, double *score, int64_t *facts) {
    const Packets p = {heads, n_heads, head_bytes, seq_len, seq_cap, width, n_seq, positions, k, m};
    enum { IKE, EVIDENCE, MARKER, VERSION, EXCHANGE, ANSWERED, LINKED, SPI };
    for (int64_t i = 0; i < n_rows; i++) {
        int64_t *fact = facts + i * 8;
        const int64_t r = rows[i], transport = proto[i];
        memset(fact, 0, 8 * sizeof *fact);
        fact[SPI] = -1;
        score[i] = 0.0;
        const int udp = transport == 17;
        if (!udp && transport != 50 && transport != 51) continue;
        const int64_t i0 = position(&p, r, 0, 0), r0 = position(&p, r, 1, 0);
        const uint8_t *hi = head(&p, r, i0), *hr = head(&p, r, r0);
        const int64_t size_i = size(&p, r, i0), size_r = size(&p, r, r0);
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
            if (!ike_header(hi, size_i, held(&p, r, i0), marker)) continue;
            /* Unlinked answers happen when both peers initiate at once; valid headers both ways still suffice. A
             * request alone still fires, for less: a version, an exchange type and a length field that equals the
             * datagram are no accident, and an unanswered IKE request is a VPN being attempted. */
            const int answer = ike_header(hr, size_r, held(&p, r, r0), marker);
            const int linked = answer && !memcmp(hr + o, hi + o, 8);
            const double level = linked ? 1.0 : answer ? 0.8 : 0.6;
            s = level > s ? level : s;
            fact[IKE] |= answer;
            fact[EVIDENCE] = 1, fact[MARKER] = marker, fact[VERSION] = hi[o + 17], fact[EXCHANGE] = hi[o + 18];
            fact[ANSWERED] = answer, fact[LINKED] = linked;
        }
        int64_t spi;                    /* ESP in UDP (NAT-T) needs both directions */
        if (udp && esp_run(&p, r, 0, 0, 3, &spi) && esp_run(&p, r, 1, 0, 3, &spi) && !fact[IKE]) {
            s = s > 0.9 ? s : 0.9;
            fact[EVIDENCE] = 2;
        }
        if (!udp) {                     /* ESP/AH as IP protocols are what their number says */
            const int run = esp_run(&p, r, 0, transport == 51 ? 4 : 0, 2, &spi);
            s = 1.0;
            fact[EVIDENCE] = 3;
            fact[SPI] = run ? spi : -1;
        }
        score[i] = s;
    }
}

/* SOCKS5 (socks.py): a greeting (05, n of 1-10 methods, the methods) at packet `client` and the method choice (05
 * and one of the methods offered or FF, none acceptable; 2 bytes) at a later packet `server`. *greeting: whether the
 * greeting is one; returns whether both are; *offered: n. */
static int socks5(const Packets *p, int64_t r, int64_t client, int64_t server, int *greeting, int64_t *offered) {
    const uint8_t *hc = head(p, r, client), *hs = head(p, r, server);
    const int64_t n = hc[1];
    *offered = n;
    *greeting = client >= 0 && hc[0] == 5 && n >= 1 && n <= 10 && size(p, r, client) >= 2 + n
                && held(p, r, client) >= 2 + n;
    int offer = 0;
    for (int64_t j = 0; j < n && j < 10; j++) offer |= hc[2 + j] == hs[1];
    return *greeting && server > client && size(p, r, server) == 2 && hs[0] == 5 && (offer || hs[1] == 0xFF);
}

/* Is the packet at idx the SOCKS5 request that follows a greeting? Its command and address type into fact[0..2]. */
static void socks5_request(const Packets *p, int64_t r, int64_t idx, int64_t *fact) {
    const uint8_t *h = head(p, r, idx);
    fact[0] = h[0] == 5 && held(p, r, idx) >= 4, fact[1] = h[1], fact[2] = h[3];
}

/* SOCKS for each of `rows` (proto[i] its IP protocol; TCP only): score[i] 1 for a SOCKS5 greeting and choice
 * (client first, or reversed: the responder greets and the initiator chooses after it) or a SOCKS4 request (04,
 * command 1 or 2, at least 9 bytes) and grant (00, 5A-5D, 8 bytes); 0.3 for a greeting or a SOCKS4 request
 * alone. facts[i * 6 + ...]: which evidence (0 none, 1 SOCKS5, 2 reversed, 3 SOCKS4); for SOCKS5 the methods
 * offered, the method chosen, and whether the next packet of the greeting side is a request (and its command and
 * address type); for SOCKS4 the command and the reply code. */
void socks_handshakes(int64_t n_rows, const int64_t *rows, const int64_t *proto, const uint8_t *heads,
                      int64_t n_heads, int64_t head_bytes, const int32_t *seq_len, const int32_t *seq_cap,
                      int64_t width, const int64_t *n_seq, const int64_t *positions, int64_t k, int64_t m,
                      double *score, int64_t *facts) {
    const Packets p = {heads, n_heads, head_bytes, seq_len, seq_cap, width, n_seq, positions, k, m};
    enum { EVIDENCE, OFFERED, CHOSEN, REQUEST };
    for (int64_t i = 0; i < n_rows; i++) {
        int64_t *fact = facts + i * 6;
        const int64_t r = rows[i];
        memset(fact, 0, 6 * sizeof *fact);
        score[i] = 0.0;
        if (proto[i] != 6) continue;
        const int64_t i0 = position(&p, r, 0, 0), r0 = position(&p, r, 1, 0);
        const uint8_t *hi = head(&p, r, i0), *hr = head(&p, r, r0);
        if (hi[0] != 4 && hi[0] != 5 && hr[0] != 5) continue;           /* no SOCKS version opens either side */
        int greeting, reverse_greeting;
        int64_t offered, offered_reverse;
        const int first = i0 == 0;
        const int forward = socks5(&p, r, first ? i0 : -1, r0, &greeting, &offered);
        const int64_t i_after = i0 > r0 ? i0 : position(&p, r, 0, 1);
        const int reverse = !forward && socks5(&p, r, r0 >= 0 ? r0 : -1, i_after, &reverse_greeting, &offered_reverse);
        const int request4 = first && hi[0] == 4 && (hi[1] == 1 || hi[1] == 2) && size(&p, r, i0) >= 9;
        const int socks4 = request4 && size(&p, r, r0) == 8 && hr[0] == 0 && hr[1] >= 0x5A && hr[1] <= 0x5D;
        score[i] = forward || reverse || socks4 ? 1.0 : greeting || request4 ? 0.3 : 0.0;
        if (socks4) {
            fact[EVIDENCE] = 3, fact[OFFERED] = hi[1], fact[CHOSEN] = hr[1];
        } else if (reverse) {
            fact[EVIDENCE] = 2, fact[OFFERED] = offered_reverse, fact[CHOSEN] = head(&p, r, i_after)[1];
            socks5_request(&p, r, position(&p, r, 1, 1), fact + REQUEST);
        } else if (forward) {
            fact[EVIDENCE] = 1, fact[OFFERED] = offered, fact[CHOSEN] = hr[1];
            socks5_request(&p, r, position(&p, r, 0, 1), fact + REQUEST);
        }
    }
}

static int64_t be16(const uint8_t *h) { return (int64_t)h[0] << 8 | h[1]; }

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
void wireguard_handshakes(int64_t n_rows, const int64_t *rows, const int64_t *proto, const uint8_t *heads,
                          int64_t n_heads, int64_t head_bytes, const int32_t *seq_len, const int32_t *seq_cap,
                          int64_t width, const int64_t *n_seq, const int64_t *positions, int64_t k, int64_t m,
                          double *score, int64_t *evidence) {
    const Packets p = {heads, n_heads, head_bytes, seq_len, seq_cap, width, n_seq, positions, k, m};
    for (int64_t i = 0; i < n_rows; i++) {
        const int64_t r = rows[i], i0 = position(&p, r, 0, 0), r0 = position(&p, r, 1, 0);
        const uint8_t *hi = head(&p, r, i0), *hr = head(&p, r, r0);
        score[i] = 0.0;
        evidence[i] = 0;
        if (proto[i] != 17 || hi[0] < 1 || hi[0] > 4 || hi[1] || hi[2] || hi[3]) continue;
        const int initiation = i0 == 0 && wireguard_message(hi, 1) && size(&p, r, i0) == 148;
        const int linked = initiation && wireguard_message(hr, 2) && size(&p, r, r0) == 92 && held(&p, r, r0) >= 12
                           && !memcmp(hr + 8, hi + 4, 4);
        const int data = wireguard_transport(&p, r, 0) && wireguard_transport(&p, r, 1);
        score[i] = linked ? 1.0 : data ? 0.8 : initiation ? 0.3 : 0.0;
        evidence[i] = linked ? 1 : data ? 2 : 0;
    }
}

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
void l2tp_handshakes(int64_t n_rows, const int64_t *rows, const int64_t *proto, const uint8_t *heads,
                     int64_t n_heads, int64_t head_bytes, const int32_t *seq_len, const int32_t *seq_cap,
                     int64_t width, const int64_t *n_seq, const int64_t *positions, int64_t k, int64_t m,
                     double *score, int64_t *facts) {
    const Packets p = {heads, n_heads, head_bytes, seq_len, seq_cap, width, n_seq, positions, k, m};
    for (int64_t i = 0; i < n_rows; i++) {
        const int64_t r = rows[i], i0 = position(&p, r, 0, 0);
        const uint8_t *hi = head(&p, r, i0);
        const int64_t size_i = size(&p, r, i0), offset = proto[i] == 115 ? 4 : 0;
        int64_t *fact = facts + i * 3, version;
        score[i] = 0.0;
        fact[0] = fact[1] = fact[2] = 0;
        /* Control bits and a length field that equals the payload: few datagrams of other protocols have both. */
        if ((proto[i] != 17 && proto[i] != 115) || (hi[offset] & 0xC8) != 0xC8
            || be16(hi + offset + 2) != size_i - offset)
            continue;
        if ((offset && be32(hi) != 0) || i0 != 0 || !l2tp_control(hi, size_i, held(&p, r, i0), offset, 1, &version))
            continue;
        score[i] = 0.3;
        fact[1] = version;
        /* The SCCRP may come second, after a ZLB that acknowledges a retransmitted SCCRQ on a lossy link. */
        for (int64_t j = 0; j < 2; j++) {
            const int64_t r0 = position(&p, r, 1, j);
            int64_t reply_version;
            if (l2tp_control(head(&p, r, r0), size(&p, r, r0), held(&p, r, r0), offset, 2, &reply_version)) {
                score[i] = 1.0;
                fact[0] = 1, fact[2] = size(&p, r, r0);
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
void pptp_handshakes(int64_t n_rows, const int64_t *rows, const int64_t *proto, const uint8_t *heads,
                     int64_t n_heads, int64_t head_bytes, const int32_t *seq_len, const int32_t *seq_cap,
                     int64_t width, const int64_t *n_seq, const int64_t *positions, int64_t k, int64_t m,
                     double *score, int64_t *evidence) {
    const Packets p = {heads, n_heads, head_bytes, seq_len, seq_cap, width, n_seq, positions, k, m};
    for (int64_t i = 0; i < n_rows; i++) {
        const int64_t r = rows[i], i0 = position(&p, r, 0, 0), r0 = position(&p, r, 1, 0);
        const uint8_t *hi = head(&p, r, i0), *hr = head(&p, r, r0);
        score[i] = 0.0;
        evidence[i] = 0;
        if (proto[i] == 6 && be32(hi + 4) == 0x1A2B3C4D) {
            const int request = i0 == 0 && pptp_control(hi, size(&p, r, i0), held(&p, r, i0), 1);
            const int control = request && pptp_control(hr, size(&p, r, r0), held(&p, r, r0), 2);
            score[i] = control ? 1.0 : request ? 0.3 : 0.0;
            evidence[i] = control;
        } else if (proto[i] == 47 && held(&p, r, i0) >= 8 && (hi[1] & 0x07) == 1 && (hi[0] & 0x20)
                   && be16(hi + 2) == 0x880B) {
            score[i] = 1.0;
            evidence[i] = 2;
        }
    }
}

/* QUIC for each of `rows` (UDP): score[i] 1 for a long-header Initial of at least 1200 bytes with a known version
 * (1, 2, or a draft's FF0000xx) and a connection id length of at most 20, answered by a long-header packet of a
 * known version or version negotiation (0) or a short-header packet; 0.4 for the Initial alone. */
void quic_handshakes(int64_t n_rows, const int64_t *rows, const int64_t *proto, const uint8_t *heads,
                     int64_t n_heads, int64_t head_bytes, const int32_t *seq_len, const int32_t *seq_cap,
                     int64_t width, const int64_t *n_seq, const int64_t *positions, int64_t k, int64_t m,
                     double *score) {
    const Packets p = {heads, n_heads, head_bytes, seq_len, seq_cap, width, n_seq, positions, k, m};
    for (int64_t i = 0; i < n_rows; i++) {
        const int64_t r = rows[i], i0 = position(&p, r, 0, 0), r0 = position(&p, r, 1, 0);
        const uint8_t *hi = head(&p, r, i0), *hr = head(&p, r, r0);
        score[i] = 0.0;
        if (proto[i] != 17 || i0 != 0) continue;
        const int64_t version = be32(hi + 1), answered = be32(hr + 1);
        const int known = version == 0x00000001 || version == 0x6B3343CF || version >> 8 == 0xFF0000;
        const int initial = (hi[0] & 0xC0) == 0xC0 && known && hi[5] <= 20 && size(&p, r, i0) >= 1200;
        const int long_known = (hr[0] & 0x80) && (answered == 0 || answered == 0x00000001 || answered == 0x6B3343CF);
        const int answer = r0 > 0 && (long_known || (hr[0] & 0xC0) == 0x40);
        score[i] = initial && answer ? 1.0 : initial ? 0.4 : 0.0;
    }
}

static int dtls_version(int64_t version) { return version == 0xFEFF || version == 0xFEFD || version == 0xFEFC; }

/* DTLS for each of `rows` (UDP): score[i] 1 for a ClientHello record of a DTLS version from the initiator answered
 * by DTLS records (change cipher spec, alert or handshake), 0.4 for the ClientHello alone. */
void dtls_handshakes(int64_t n_rows, const int64_t *rows, const int64_t *proto, const uint8_t *heads,
                     int64_t n_heads, int64_t head_bytes, const int32_t *seq_len, const int32_t *seq_cap,
                     int64_t width, const int64_t *n_seq, const int64_t *positions, int64_t k, int64_t m,
                     double *score) {
    const Packets p = {heads, n_heads, head_bytes, seq_len, seq_cap, width, n_seq, positions, k, m};
    for (int64_t i = 0; i < n_rows; i++) {
        const int64_t r = rows[i], i0 = position(&p, r, 0, 0), r0 = position(&p, r, 1, 0);
        const uint8_t *hi = head(&p, r, i0), *hr = head(&p, r, r0);
        const int hello = proto[i] == 17 && i0 == 0 && hi[0] == 22 && dtls_version(be16(hi + 1)) && hi[13] == 1
                          && held(&p, r, i0) >= 14;
        const int answer = hello && (hr[0] == 20 || hr[0] == 21 || hr[0] == 22) && dtls_version(be16(hr + 1))
                           && held(&p, r, r0) >= 13;
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
void stun_handshakes(int64_t n_rows, const int64_t *rows, const int64_t *proto, const uint8_t *heads,
                     int64_t n_heads, int64_t head_bytes, const int32_t *seq_len, const int32_t *seq_cap,
                     int64_t width, const int64_t *n_seq, const int64_t *positions, int64_t k, int64_t m,
                     double *score) {
    const Packets p = {heads, n_heads, head_bytes, seq_len, seq_cap, width, n_seq, positions, k, m};
    for (int64_t i = 0; i < n_rows; i++) {
        const int64_t r = rows[i], i0 = position(&p, r, 0, 0), r0 = position(&p, r, 1, 0);
        const int request = proto[i] == 17 && i0 == 0 && stun_message(&p, r, i0);
        score[i] = request && r0 > 0 && stun_message(&p, r, r0) ? 1.0 : request ? 0.7 : 0.0;
    }
}

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
                        const int64_t *lengths, const uint8_t *heads, int64_t n_heads, int64_t head_bytes,
                        const int32_t *seq_len, const int32_t *seq_cap, int64_t seq_width, const int64_t *n_seq,
                        const int64_t *positions, int64_t k, int64_t m, int64_t *out) {
    const Packets p = {heads, n_heads, head_bytes, seq_len, seq_cap, seq_width, n_seq, positions, k, m};
    for (int64_t i = 0; i < n_rows; i++) {
        const int64_t r = rows[i], n = lengths[r] < width ? lengths[r] : width;
        const uint8_t *row = data + r * width;
        int hello = 0, verdict = 0;
        for (int64_t pos = 0; pos + 13 <= n && !verdict; pos += 13 + be16(row + pos + 11))
            verdict = flight_step(row[pos], row[pos] == 22 && pos + 13 < n ? row[pos + 13] : -1, &hello);
        for (int64_t j = 1; j < 4 && !verdict; j++) {
            const uint8_t *h = head(&p, r, position(&p, r, 1, j));
            if (h[0]) verdict = flight_step(h[0], h[0] == 22 ? h[13] : -1, &hello);
        }
        out[i] = verdict == 1;
    }
}

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
                     const uint8_t *answer, int64_t answer_length, const uint8_t *heads, int64_t n_heads,
                     int64_t head_bytes, const int32_t *seq_len, const int32_t *seq_cap, int64_t width,
                     const int64_t *n_seq, const int64_t *positions, int64_t k, int64_t m, double *score,
                     int64_t *evidence) {
    const Packets p = {heads, n_heads, head_bytes, seq_len, seq_cap, width, n_seq, positions, k, m};
    for (int64_t i = 0; i < n_rows; i++) {
        const int64_t r = rows[i], i0 = position(&p, r, 0, 0), r0 = position(&p, r, 1, 0);
        const uint8_t *c = client + r * client_width, *hi = head(&p, r, i0), *hr = head(&p, r, r0);
        score[i] = 0.0;
        evidence[i] = 0;
        if (proto[i] != 6 || !((c[0] == 'S' && c[2] == 'T') || (c[0] == 0x10 && hi[0] == 0x10 && hi[1] == 0x01)))
            continue;
        if (opens_with(client, client_width, client_lengths, r, request, request_length)
            && opens_with(server, server_width, server_lengths, r, answer, answer_length))
            evidence[i] = 1;
        else if (hi[0] == 0x10 && hi[1] == 0x01 && (be16(hi + 2) & 0x0FFF) == size(&p, r, i0) && be16(hi + 4) == 1
                 && hr[0] == 0x10 && hr[1] == 0x01 && be16(hr + 4) == 2)
            evidence[i] = 2;
        score[i] = evidence[i] ? 1.0 : 0.0;
    }
}
