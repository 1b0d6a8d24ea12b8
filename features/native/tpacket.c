/* Live capture: draining a TPACKET_V3 receive ring (AF_PACKET, Linux) into flat arrays.
 *
 * The ring is a sequence of blocks; the kernel fills a block with a chain of tpacket3_hdr records and hands
 * it to user space (TP_STATUS_USER) when it is full or its retire timer fires. `tp_drain` walks every block
 * that is ready, in ring order, copies each frame into a caller-owned buffer laid out as pcap records
 * (16-byte record header, then the frame), records where each frame lies, and hands the block back
 * (TP_STATUS_KERNEL). The buffer is then at once the batch's `data` and, unchanged, the body of a pcap file.
 */
#define _GNU_SOURCE
#include <stdint.h>
#include <string.h>

#ifdef __linux__
#include <linux/if_packet.h>
#include <sys/mman.h>

void *tp_mmap(int64_t fd, int64_t size) {
    void *p = mmap(NULL, (size_t)size, PROT_READ | PROT_WRITE, MAP_SHARED, (int)fd, 0);
    return p == MAP_FAILED ? NULL : p;
}

int64_t tp_munmap(void *ring, int64_t size) {
    return munmap(ring, (size_t)size);
}

static inline void put32(uint8_t *p, uint32_t v) { memcpy(p, &v, 4); }

/* Drain ready blocks starting at *cursor. A block is taken whole or not at all: it is left in the ring when
 * its frames would not fit in `out` (out_cap bytes) or in the output arrays (limit records).
 * reinsert_vlan: put back the 802.1Q tag that the kernel moved out of an Ethernet frame.
 * info[0] = bytes used in out, info[1] = blocks drained, info[2] = 1 when stopped for lack of room.
 * Returns the number of frames. */
int64_t tp_drain(uint8_t *ring, int64_t block_size, int64_t n_blocks, int64_t *cursor, uint8_t *out,
                 int64_t out_cap, int64_t limit, int64_t reinsert_vlan, int64_t *out_offset, int64_t *out_caplen,
                 int64_t *out_wirelen, int64_t *out_ts, int64_t *info) {
    int64_t n = 0, used = 0, blocks = 0, b = *cursor;
    info[2] = 0;
    while (blocks < n_blocks) {
        struct tpacket_block_desc *desc = (struct tpacket_block_desc *)(ring + b * block_size);
        uint32_t status = __atomic_load_n(&desc->hdr.bh1.block_status, __ATOMIC_ACQUIRE);
        if (!(status & TP_STATUS_USER)) break;
        uint32_t num = desc->hdr.bh1.num_pkts;
        uint32_t blk_len = desc->hdr.bh1.blk_len;
        if (n + (int64_t)num > limit || used + (int64_t)blk_len + (int64_t)num * 20 > out_cap) {
            info[2] = 1;
            break;
        }
        uint8_t *p = (uint8_t *)desc + desc->hdr.bh1.offset_to_first_pkt;
        for (uint32_t i = 0; i < num; i++) {
            struct tpacket3_hdr *h = (struct tpacket3_hdr *)p;
            uint32_t caplen = h->tp_snaplen, wirelen = h->tp_len;
            const uint8_t *frame = p + h->tp_mac;
            uint8_t *rec = out + used;
            uint8_t *dst = rec + 16;
            int tagged = reinsert_vlan && (h->tp_status & TP_STATUS_VLAN_VALID) && caplen >= 12;
            if (tagged) {
                uint16_t tpid = (h->tp_status & TP_STATUS_VLAN_TPID_VALID) && h->hv1.tp_vlan_tpid
                                    ? h->hv1.tp_vlan_tpid : 0x8100;
                uint16_t tci = h->hv1.tp_vlan_tci;
                memcpy(dst, frame, 12);
                dst[12] = tpid >> 8; dst[13] = tpid & 0xff; dst[14] = tci >> 8; dst[15] = tci & 0xff;
                memcpy(dst + 16, frame + 12, caplen - 12);
                caplen += 4;
                wirelen += 4;
            } else {
                memcpy(dst, frame, caplen);
            }
            put32(rec, h->tp_sec);
            put32(rec + 4, h->tp_nsec);
            put32(rec + 8, caplen);
            put32(rec + 12, wirelen);
            out_offset[n] = used + 16;
            out_caplen[n] = caplen;
            out_wirelen[n] = wirelen > caplen ? wirelen : caplen;
            out_ts[n] = (int64_t)h->tp_sec * 1000000000LL + h->tp_nsec;
            used += 16 + caplen;
            n++;
            p += h->tp_next_offset;
        }
        __atomic_store_n(&desc->hdr.bh1.block_status, TP_STATUS_KERNEL, __ATOMIC_RELEASE);
        blocks++;
        b = (b + 1) % n_blocks;
    }
    *cursor = b;
    info[0] = used;
    info[1] = blocks;
    return n;
}

#else /* not Linux: no TPACKET ring; the portable fallback captures instead */

void *tp_mmap(int64_t fd, int64_t size) { (void)fd; (void)size; return 0; }
int64_t tp_munmap(void *ring, int64_t size) { (void)ring; (void)size; return -1; }
int64_t tp_drain(uint8_t *ring, int64_t block_size, int64_t n_blocks, int64_t *cursor, uint8_t *out,
                 int64_t out_cap, int64_t limit, int64_t reinsert_vlan, int64_t *out_offset, int64_t *out_caplen,
                 int64_t *out_wirelen, int64_t *out_ts, int64_t *info) {
    (void)ring; (void)block_size; (void)n_blocks; (void)cursor; (void)out; (void)out_cap; (void)limit;
    (void)reinsert_vlan; (void)out_offset; (void)out_caplen; (void)out_wirelen; (void)out_ts;
    info[0] = info[1] = info[2] = 0;
    return -1;
}
#endif
