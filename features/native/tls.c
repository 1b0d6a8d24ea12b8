/* TLS ClientHellos at the start of client streams (features/tls.py): framed as parse_client_hello frames
 * them, with the same refusals, but without building Python objects per hello.
 *
 * Per row it writes whether a hello was found, its handshake length, where its server name and ALPN list
 * lie in the stream, and a key: every field the fingerprints read (legacy version, cipher suites, extension
 * types, groups, point formats, signature algorithms, supported versions, first ALPN name, whether a server
 * name is there), each behind its length. Equal keys mean equal fingerprints, so Python computes them once
 * per distinct key rather than once per flow.
 *
 * Also the commonName spans of server certificates, and which spans of bytes (keys, names) are equal. */
#include <stdint.h>
#include <string.h>

enum { EXT_SNI = 0, EXT_GROUPS = 10, EXT_POINT_FORMATS = 11, EXT_SIG_ALGS = 13, EXT_ALPN = 16, EXT_VERSIONS = 43 };
enum { NO_HELLO = 0, HELLO = 1, KEY_TOO_LONG = 2 };

typedef struct { int64_t off, len; } span_t;     /* bytes [off, off + len) of the row */

static inline int64_t u16(const uint8_t *p) { return ((int64_t)p[0] << 8) | p[1]; }

typedef struct {
    uint8_t *out;
    int64_t n, cap;
} key_t_;

static void put(key_t_ *k, const uint8_t *src, int64_t len) {
    if (k->n + 2 + len > k->cap) {
        k->n = k->cap + 1;              /* overflow: the caller sees KEY_TOO_LONG */
        return;
    }
    k->out[k->n] = (uint8_t)(len >> 8);
    k->out[k->n + 1] = (uint8_t)len;
    memcpy(k->out + k->n + 2, src, (size_t)len);
    k->n += 2 + len;
}

static inline span_t cut(int64_t off, int64_t len, int64_t end) {
    /* Python's s[off:off + len] on a buffer that ends at `end`. */
    span_t s = {off, len};
    if (s.off > end) s.off = end;
    if (s.off + s.len > end) s.len = end - s.off;
    if (s.len < 0) s.len = 0;
    return s;
}

/* _u16_list(data, skip) of an extension's data d that starts at `off` in the row: data[skip:] cut to whole
 * 16-bit values. */
static inline span_t u16_list(span_t d, int64_t off, int64_t skip) {
    span_t s = cut(skip, d.len, d.len);
    s.off += off;
    s.len &= ~(int64_t)1;
    return s;
}

/* One row: returns NO_HELLO, HELLO or KEY_TOO_LONG. */
static int64_t hello(const uint8_t *s, int64_t n, int64_t *hlen, span_t *sni, span_t *alpn, uint8_t *key,
                     int64_t key_cap, int64_t *key_len) {
    /* _record: one whole TLS record. */
    if (n < 5) return NO_HELLO;
    int64_t rec = u16(s + 3);
    if (5 + rec > n) return NO_HELLO;
    const uint8_t *data = s + 5;
    if (s[0] != 22 || rec < 4 || data[0] != 1) return NO_HELLO;
    int64_t length = ((int64_t)data[1] << 16) | ((int64_t)data[2] << 8) | data[3];
    if (rec < 4 + length) return NO_HELLO;
    /* _client_hello_body over body = data[4 : 4 + length]; positions below are relative to body. */
    const uint8_t *body = data + 4;
    int64_t blen = length;
    if (blen < 2) return NO_HELLO;                                   /* struct.error on the version */
    int64_t pos = 34;
    if (pos >= blen) return NO_HELLO;                                /* IndexError on the session id length */
    pos += 1 + body[pos];
    if (pos + 2 > blen) return NO_HELLO;                             /* struct.error on the suites length */
    int64_t n_suites = u16(body + pos);
    span_t suites = cut(pos + 2, n_suites, blen);
    suites.len &= ~(int64_t)1;
    pos += 2 + n_suites;
    if (pos >= blen) return NO_HELLO;                                /* IndexError on the compression length */
    pos += 1 + body[pos];
    if (blen < pos) return NO_HELLO;
    key_t_ k = {key, 0, key_cap};
    put(&k, body, 2);
    put(&k, body + suites.off, suites.len);
    /* Extensions as _extensions reads them: loop bound `total`, cut data kept, a cut header refused. */
    uint8_t types[2 * 1024];
    int64_t n_types = 0;
    span_t groups = {0, 0}, formats = {0, 0}, sig_algs = {0, 0}, versions = {0, 0}, first_alpn = {0, 0};
    int64_t sni_nonempty = 0;
    sni->off = alpn->off = -1;
    sni->len = alpn->len = 0;
    if (blen >= pos + 2) {
        const uint8_t *buf = body + pos;
        int64_t buf_len = blen - pos, total = u16(buf), at = 2;
        while (at < total) {
            if (at + 4 > buf_len) return NO_HELLO;
            int64_t type = u16(buf + at), size = u16(buf + at + 2);
            span_t d = cut(at + 4, size, buf_len);
            const uint8_t *e = buf + d.off;
            int64_t off = 5 + 4 + pos + d.off;                       /* offset of the data in the row */
            if (n_types >= 1024) return KEY_TOO_LONG;
            types[2 * n_types] = buf[at];
            types[2 * n_types + 1] = buf[at + 1];
            n_types++;
            if (type == EXT_SNI && d.len >= 5) {
                span_t name = cut(5, u16(e + 3), d.len);
                sni->off = off + name.off;
                sni->len = name.len;
                sni_nonempty = name.len > 0;
            } else if (type == EXT_ALPN && d.len >= 2) {
                alpn->off = off;
                alpn->len = d.len;
                first_alpn = d.len > 2 ? cut(3, e[2], d.len) : (span_t){0, 0};
                first_alpn.off += off;
            } else if (type == EXT_GROUPS) {
                groups = u16_list(d, off, 2);
            } else if (type == EXT_POINT_FORMATS && d.len > 0) {
                formats = cut(1, e[0], d.len);
                formats.off += off;
            } else if (type == EXT_SIG_ALGS) {
                sig_algs = u16_list(d, off, 2);
            } else if (type == EXT_VERSIONS && d.len > 0) {
                versions = u16_list(d, off, 1);
                if (versions.len > 2 * (e[0] / 2)) versions.len = 2 * (e[0] / 2);     /* [:data[0] // 2] */
            }
            at += 4 + size;
        }
    }
    put(&k, types, 2 * n_types);
    put(&k, s + groups.off, groups.len);
    put(&k, s + formats.off, formats.len);
    put(&k, s + sig_algs.off, sig_algs.len);
    put(&k, s + versions.off, versions.len);
    uint8_t flags[2] = {(uint8_t)(alpn->off >= 0), (uint8_t)sni_nonempty};
    put(&k, s + first_alpn.off, first_alpn.len);
    put(&k, flags, 2);
    if (k.n > key_cap) return KEY_TOO_LONG;
    *hlen = length;
    *key_len = k.n;
    return HELLO;
}

/* Rows rows[i] of data (width bytes each, lengths[] held): status, handshake length, server name and ALPN
 * extension spans (offset -1 if absent) and key (key_width bytes per row) for each. */
void client_hellos(int64_t m, const int64_t *rows, const uint8_t *data, int64_t width, const int64_t *lengths,
                   int64_t *status, int64_t *hlen, int64_t *sni_off, int64_t *sni_len, int64_t *alpn_off,
                   int64_t *alpn_len, uint8_t *keys, int64_t key_width, int64_t *key_len) {
    for (int64_t i = 0; i < m; i++) {
        int64_t r = rows[i], n = lengths[r] < width ? lengths[r] : width;
        span_t sni, alpn;
        hlen[i] = key_len[i] = 0;
        status[i] = hello(data + r * width, n, &hlen[i], &sni, &alpn, keys + i * key_width, key_width, &key_len[i]);
        sni_off[i] = sni.off;
        sni_len[i] = sni.len;
        alpn_off[i] = alpn.off;
        alpn_len[i] = alpn.len;
    }
}

static const uint8_t CN_OID[5] = {0x06, 0x03, 0x55, 0x04, 0x03};

/* The first commonName OID at or after `from` in s[:n], or -1: bytes.find. */
static int64_t find_cn(const uint8_t *s, int64_t n, int64_t from) {
    for (int64_t at = from; at + 5 <= n; at++) {
        const uint8_t *p = memchr(s + at, CN_OID[0], (size_t)(n - 4 - at));
        if (p == NULL) break;
        at = p - s;
        if (memcmp(p, CN_OID, 5) == 0) return at;
    }
    return -1;
}

/* Server streams rows[i] of data: their handshake bytes (the bodies of the leading handshake records, joined)
 * into messages (width bytes per row), and the spans there of the first two commonName values after the
 * start of the Certificate message, issuer then subject, or lengths 0 if there are not two. The OID is
 * searched for rather than X.509 parsed, since the prefix often cuts the certificate; issuer comes before
 * subject in a TBSCertificate. */
void certificate_names(int64_t m, const int64_t *rows, const uint8_t *data, int64_t width, const int64_t *lengths,
                       uint8_t *messages, int64_t *issuer_off, int64_t *issuer_len, int64_t *subject_off,
                       int64_t *subject_len) {
    for (int64_t i = 0; i < m; i++) {
        int64_t r = rows[i], n = lengths[r] < width ? lengths[r] : width;
        const uint8_t *s = data + r * width;
        uint8_t *msg = messages + i * width;
        int64_t len = 0;
        for (int64_t pos = 0; pos + 5 <= n && s[pos] == 22; pos += 5 + u16(s + pos + 3)) {
            span_t body = cut(pos + 5, u16(s + pos + 3), n);
            memcpy(msg + len, s + body.off, (size_t)body.len);
            len += body.len;
        }
        issuer_off[i] = subject_off[i] = issuer_len[i] = subject_len[i] = 0;
        int64_t pos = 0;
        while (pos + 4 <= len && msg[pos] != 11) pos += 4 + (((int64_t)msg[pos + 1] << 16) | u16(msg + pos + 2));
        if (pos + 4 > len) continue;
        span_t names[2];
        int found = 0;
        for (pos += 4; found < 2; pos = names[found].off + names[found].len, found++) {
            int64_t at = find_cn(msg, len, pos);
            if (at < 0 || at + 7 > len || at + 7 + msg[at + 6] > len) break;
            names[found] = (span_t){at + 7, msg[at + 6]};
        }
        if (found < 2) continue;
        issuer_off[i] = names[0].off;
        issuer_len[i] = names[0].len;
        subject_off[i] = names[1].off;
        subject_len[i] = names[1].len;
    }
}

/* Word at a time: a byte at a time would cost as much as the hellos' framing. */
static uint64_t hash_bytes(const uint8_t *p, int64_t n) {
    uint64_t h = 0x9E3779B97F4A7C15u ^ (uint64_t)n, w;
    for (; n >= 8; p += 8, n -= 8) {
        memcpy(&w, p, 8);
        h = (h ^ w) * 0xFF51AFD7ED558CCDu;
        h ^= h >> 32;
    }
    w = 0;
    memcpy(&w, p, (size_t)n);
    h = (h ^ w) * 0xFF51AFD7ED558CCDu;
    return h ^ (h >> 29);
}

/* The distinct byte strings among spans, span i being len[i] bytes from data[rows[i] * width + off[i]]:
 * returns how many there are, writes in first[] the span that holds each first and in group[i] which of them
 * span i holds. slots (n_slots of them, a power of two above m) is the caller's scratch for an open-addressed
 * table of first spans. Lets Python work once per distinct value rather than per flow. */
int64_t distinct_spans(int64_t m, const uint8_t *data, int64_t width, const int64_t *rows, const int64_t *off,
                       const int64_t *len, int64_t *slots, int64_t n_slots, int64_t *first, int64_t *group) {
    int64_t k = 0;
    for (int64_t s = 0; s < n_slots; s++) slots[s] = -1;
    for (int64_t i = 0; i < m; i++) {
        const uint8_t *p = data + rows[i] * width + off[i];
        uint64_t s = hash_bytes(p, len[i]) & (uint64_t)(n_slots - 1);
        for (;; s = (s + 1) & (uint64_t)(n_slots - 1)) {
            int64_t j = slots[s];
            if (j < 0) {
                slots[s] = first[k] = i;
                group[i] = k++;
                break;
            }
            if (len[j] == len[i] && memcmp(data + rows[j] * width + off[j], p, (size_t)len[i]) == 0) {
                group[i] = group[j];
                break;
            }
        }
    }
    return k;
}
