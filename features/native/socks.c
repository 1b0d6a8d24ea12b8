/* The handshake tests of socks.py (SOCKS5 both ways, SOCKS4) over each flow's first packets (packets.h). */
#include <string.h>

#include "packets.h"

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
void socks_handshakes(int64_t n_rows, const int64_t *rows, const int64_t *proto, const Packets *p,
                      double *score, int64_t *facts) {
    enum { EVIDENCE, OFFERED, CHOSEN, REQUEST };
    for (int64_t i = 0; i < n_rows; i++) {
        int64_t *fact = facts + i * 6;
        const int64_t r = rows[i];
        memset(fact, 0, 6 * sizeof *fact);
        score[i] = 0.0;
        if (proto[i] != 6) continue;
        const int64_t i0 = position(p, r, 0, 0), r0 = position(p, r, 1, 0);
        const uint8_t *hi = head(p, r, i0), *hr = head(p, r, r0);
        if (hi[0] != 4 && hi[0] != 5 && hr[0] != 5) continue;           /* no SOCKS version opens either side */
        int greeting, reverse_greeting;
        int64_t offered, offered_reverse;
        const int first = i0 == 0;
        const int forward = socks5(p, r, first ? i0 : -1, r0, &greeting, &offered);
        const int64_t i_after = i0 > r0 ? i0 : position(p, r, 0, 1);
        const int reverse = !forward && socks5(p, r, r0 >= 0 ? r0 : -1, i_after, &reverse_greeting, &offered_reverse);
        const int request4 = first && hi[0] == 4 && (hi[1] == 1 || hi[1] == 2) && size(p, r, i0) >= 9;
        const int socks4 = request4 && size(p, r, r0) == 8 && hr[0] == 0 && hr[1] >= 0x5A && hr[1] <= 0x5D;
        score[i] = forward || reverse || socks4 ? 1.0 : greeting || request4 ? 0.3 : 0.0;
        if (socks4) {
            fact[EVIDENCE] = 3, fact[OFFERED] = hi[1], fact[CHOSEN] = hr[1];
        } else if (reverse) {
            fact[EVIDENCE] = 2, fact[OFFERED] = offered_reverse, fact[CHOSEN] = head(p, r, i_after)[1];
            socks5_request(p, r, position(p, r, 1, 1), fact + REQUEST);
        } else if (forward) {
            fact[EVIDENCE] = 1, fact[OFFERED] = offered, fact[CHOSEN] = hr[1];
            socks5_request(p, r, position(p, r, 0, 1), fact + REQUEST);
        }
    }
}
