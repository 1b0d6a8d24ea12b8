/* The handshake test of openvpn.py over each flow's first packets (packets.h). */
#include <string.h>

#include "packets.h"

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
void openvpn_handshakes(int64_t n_rows, const int64_t *rows, const int64_t *proto, const Packets *p,
                        int64_t *level, int64_t *opcode, int64_t *echo, int64_t *kept) {
    for (int64_t i = 0; i < n_rows; i++) {
        const int64_t r = rows[i], offset = proto[i] == 6 ? 2 : 0;
        level[i] = opcode[i] = kept[i] = 0;
        echo[i] = -1;
        if (proto[i] != 6 && proto[i] != 17) continue;
        const int64_t c0 = position(p, r, 0, 0), s0 = position(p, r, 1, 0);
        const uint8_t reset = head(p, r, c0)[offset];
        if (reset != 0x38 && reset != 0x50) continue;                  /* opcode 7 or 10, key id 0 */
        int64_t client, server;
        const int ok_c = openvpn_framed(p, r, c0, offset, &client);
        const int ok_s = openvpn_framed(p, r, s0, offset, &server);
        opcode[i] = client >> 3;
        const int client_reset = ok_c && (client >> 3 == 7 || client >> 3 == 10) && (client & 7) == 0 && c0 == 0;
        if (!client_reset) continue;
        level[i] = 1;
        if (!(ok_s && server >> 3 == 8 && (server & 7) == 0)) continue;
        level[i] = 2;
        const uint8_t *session = head(p, r, c0) + offset + 1, *hs = head(p, r, s0);
        if (p->head_bytes >= offset + 17) {
            for (int64_t at = offset + 9; at + 8 <= p->head_bytes; at++) {
                if (!memcmp(hs + at, session, 8)) {
                    echo[i] = at;
                    break;
                }
            }
        }
        for (int64_t j = 1; j < 4; j++) {
            const int64_t idx = position(p, r, 0, j);
            int64_t later;
            const int ok = openvpn_framed(p, r, idx, offset, &later);
            const int64_t op = later >> 3;
            kept[i] += ok && (op == 4 || op == 5 || op == 7 || op == 10)
                       && !memcmp(head(p, r, idx) + offset + 1, session, 8);
        }
        if (echo[i] >= 0 || kept[i] > 0) level[i] = 3;
    }
}
