/* DNS messages at the start of stream prefixes (features/signatures/dns.py): header and first question. */
#include <math.h>
#include <stdint.h>

/* For each row (data[r * width:], lengths[r] bytes, with a 2-byte length prefix where tcp[r]): the message
 * id, first query name's length, longest label, question type and the entropy of the name's characters (unless
 * out_entropy is NULL: responses are matched by id alone, and the entropy's logarithms cost most of the parsing);
 * id -1 where the row is not a DNS message of the wanted kind (query or response) with one question. */
void dns_questions(int64_t m, const uint8_t *data, int64_t width, const int64_t *lengths, const uint8_t *tcp,
                   int64_t want_response, int64_t *out_id, int64_t *out_name_len, int64_t *out_longest,
                   int64_t *out_qtype, double *out_entropy) {
    /* Zero between rows: each row clears the counts it made, over the range of characters it saw (clearing
     * all 256 per row cost more than the parsing). */
    int64_t counts[256] = {0};
    for (int64_t r = 0; r < m; r++) {
        const uint8_t *row = data + r * width;
        out_id[r] = -1;
        int64_t o = tcp[r] ? 2 : 0, n = lengths[r] < width ? lengths[r] : width;   /* never past the row */
        if (n < o + 17) continue;
        int64_t flags = ((int64_t)row[o + 2] << 8) | row[o + 3];
        int64_t qdcount = ((int64_t)row[o + 4] << 8) | row[o + 5];
        if (((flags >> 15) & 1) != want_response || ((flags >> 11) & 0xF) != 0 || qdcount != 1) continue;
        if (tcp[r] && (((int64_t)row[0] << 8) | row[1]) < 17) continue;
        int64_t pos = o + 12, name_len = 0, longest = 0, labels = 0, lo = 255, hi = 0;
        int ok = 0;
        while (pos < n) {
            int64_t label = row[pos];
            if (label == 0) {
                ok = 1;
                pos++;
                break;
            }
            if (label > 63 || pos + 1 + label > n) break;
            for (int64_t j = pos + 1; j < pos + 1 + label && out_entropy; j++) {
                counts[row[j]]++;
                lo = row[j] < lo ? row[j] : lo;
                hi = row[j] > hi ? row[j] : hi;
            }
            name_len += label + (labels ? 1 : 0);
            longest = label > longest ? label : longest;
            labels++;
            pos += 1 + label;
        }
        const int named = ok && pos + 4 <= n;
        int64_t total = labels ? name_len - (labels - 1) : 0;
        double h = 0.0;
        for (int64_t c = lo; c <= hi && out_entropy; c++) {
            if (counts[c] && named) {
                double p = (double)counts[c] / (double)total;
                h -= p * log2(p);
            }
            counts[c] = 0;
        }
        if (!named) continue;
        out_id[r] = ((int64_t)row[o] << 8) | row[o + 1];
        out_name_len[r] = name_len;
        out_longest[r] = longest;
        out_qtype[r] = ((int64_t)row[pos] << 8) | row[pos + 1];
        if (out_entropy) out_entropy[r] = h;
    }
}
