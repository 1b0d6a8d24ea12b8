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
 * hard reset (opcode 7 or 10, key id 0, first packet) answered by a server hard reset whose session id is echoed
 * by the server or kept in a later client control packet, 2 for the exchange alone, 1 for the client's reset
 * alone, else 0; opcode[i] the client's opcode; echo[i] where the server head repeats the client's session id
 * (-1 if nowhere, or no exchange); kept[i] how many of the client's 2nd-4th packets keep it. */
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
            kept[i] += ok && (op == 4 || op == 5 || op == 7 || op == 10) && !memcmp(head(&p, r, idx) + offset + 1, session, 8);
        }
        if (echo[i] >= 0 || kept[i] > 0) level[i] = 3;
    }
}
