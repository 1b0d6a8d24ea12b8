/* Record framing walkers: the one inherently sequential step of reading a capture.
 * Each takes a chunk of the file and records where every complete record lies, so that everything after
 * (decoding, flows, features) works on whole numpy arrays. */
#include <stdint.h>

enum { OK = 0, BAD_LENGTH = 1, NEEDS_PYTHON = 2, BAD_INTERFACE = 3 };

static inline int64_t rd32(const uint8_t *b, int64_t p, int big) {
    return big ? ((int64_t)b[p] << 24) | ((int64_t)b[p + 1] << 16) | ((int64_t)b[p + 2] << 8) | b[p + 3]
               : ((int64_t)b[p + 3] << 24) | ((int64_t)b[p + 2] << 16) | ((int64_t)b[p + 1] << 8) | b[p];
}

static inline int64_t rd16(const uint8_t *b, int64_t p, int big) {
    return big ? ((int64_t)b[p] << 8) | b[p + 1] : ((int64_t)b[p + 1] << 8) | b[p];
}

/* Returns the number of records found; *pos is advanced past them, *status tells why it stopped. */
int64_t scan_pcap(const uint8_t *buf, int64_t *pos, int64_t end, int big, int64_t header_len, int64_t frac_ns,
                  int64_t max_caplen, int64_t limit, int64_t *out_offset, int64_t *out_caplen,
                  int64_t *out_wirelen, int64_t *out_ts, int64_t *status) {
    int64_t n = 0, p = *pos;
    *status = OK;
    while (n < limit && p + header_len <= end) {
        int64_t caplen = rd32(buf, p + 8, big);
        if (caplen > max_caplen) { *status = BAD_LENGTH; break; }
        if (p + header_len + caplen > end) break;
        int64_t wirelen = rd32(buf, p + 12, big);
        out_ts[n] = rd32(buf, p, big) * 1000000000LL + rd32(buf, p + 4, big) * frac_ns;
        out_offset[n] = p + header_len;
        out_caplen[n] = caplen;
        out_wirelen[n] = wirelen > caplen ? wirelen : caplen;
        p += header_len + caplen;
        n++;
    }
    *pos = p;
    return n;
}

static inline int64_t pcapng_ts(uint64_t units, int64_t mul, int64_t div, int64_t shift, int64_t offset_ns) {
    /* Decimal resolutions convert exactly in integers; binary ones (if_tsresol with the top bit) need the shift. */
    if (shift > 0) {
        uint64_t whole = units >> shift, frac = units & ((1ULL << shift) - 1);
        return (int64_t)(whole * 1000000000ULL + (uint64_t)(((__uint128_t)frac * 1000000000ULL) >> shift)) + offset_ns;
    }
    if (div > 1) return (int64_t)(units / (uint64_t)div) + offset_ns;
    return (int64_t)(units * (uint64_t)mul) + offset_ns;
}

int64_t scan_pcapng(const uint8_t *buf, int64_t *pos, int64_t end, int big, int64_t max_block,
                    const int64_t *if_linktype, const int64_t *if_snaplen, const int64_t *if_ts_mul,
                    const int64_t *if_ts_div, const int64_t *if_ts_shift, const int64_t *if_ts_offset,
                    int64_t n_interfaces, int64_t limit, int64_t *out_offset, int64_t *out_caplen,
                    int64_t *out_wirelen, int64_t *out_ts, int64_t *out_linktype, int64_t *status) {
    int64_t n = 0, p = *pos;
    *status = OK;
    while (n < limit && p + 12 <= end) {
        int64_t type = rd32(buf, p, big), len = rd32(buf, p + 4, big);
        if (type == 0x0A0D0D0A || type == 1) { *status = NEEDS_PYTHON; break; }
        if (len < 12 || len % 4 != 0 || len > max_block) { *status = BAD_LENGTH; break; }
        if (p + len > end) break;
        if (type == 6 || type == 2) { /* enhanced packet block, obsolete packet block */
            if (len < 32) { *status = BAD_LENGTH; break; }
            int64_t iface = type == 6 ? rd32(buf, p + 8, big) : rd16(buf, p + 8, big);
            if (iface >= n_interfaces) { *status = BAD_INTERFACE; break; }
            int64_t caplen = rd32(buf, p + 20, big);
            if (caplen > len - 32) { *status = BAD_LENGTH; break; }
            int64_t wirelen = rd32(buf, p + 24, big);
            uint64_t units = ((uint64_t)rd32(buf, p + 12, big) << 32) | (uint64_t)rd32(buf, p + 16, big);
            out_ts[n] = pcapng_ts(units, if_ts_mul[iface], if_ts_div[iface], if_ts_shift[iface], if_ts_offset[iface]);
            out_offset[n] = p + 28;
            out_caplen[n] = caplen;
            out_wirelen[n] = wirelen > caplen ? wirelen : caplen;
            out_linktype[n] = if_linktype[iface];
            n++;
        } else if (type == 3) { /* simple packet block: interface 0, no timestamp */
            if (n_interfaces < 1) { *status = BAD_INTERFACE; break; }
            int64_t wirelen = rd32(buf, p + 8, big);
            int64_t caplen = wirelen < len - 16 ? wirelen : len - 16;
            if (if_snaplen[0] > 0 && caplen > if_snaplen[0]) caplen = if_snaplen[0];
            out_ts[n] = 0;
            out_offset[n] = p + 12;
            out_caplen[n] = caplen;
            out_wirelen[n] = wirelen;
            out_linktype[n] = if_linktype[0];
            n++;
        }
        p += len;
    }
    *pos = p;
    return n;
}
