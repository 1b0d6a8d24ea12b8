"""Compiled walkers over record framing: the one inherently sequential step of reading a capture.

Each walker takes a chunk of the file and returns the location of every complete record in it, so that
everything after (decoding, flows, features) works on whole arrays.
"""

from __future__ import annotations

import numba as nb
import numpy as np

# Status codes shared with the Python side.
OK = 0              # stopped at the end of the chunk or at max_records
BAD_LENGTH = 1      # record length impossible: garbage or a corrupt file
NEEDS_PYTHON = 2    # pcapng block that Python handles (section or interface description)
BAD_INTERFACE = 3   # pcapng packet refers to an interface that was never described


@nb.njit(cache=True, inline="always")
def _u32(buf, pos, big_endian):
    if big_endian:
        return (np.int64(buf[pos]) << 24) | (np.int64(buf[pos + 1]) << 16) | (np.int64(buf[pos + 2]) << 8) | buf[pos + 3]
    return (np.int64(buf[pos + 3]) << 24) | (np.int64(buf[pos + 2]) << 16) | (np.int64(buf[pos + 1]) << 8) | buf[pos]


@nb.njit(cache=True, inline="always")
def _u16(buf, pos, big_endian):
    if big_endian:
        return (np.int64(buf[pos]) << 8) | buf[pos + 1]
    return (np.int64(buf[pos + 1]) << 8) | buf[pos]


@nb.njit(cache=True)
def scan_pcap(buf, pos, end, big_endian, header_len, frac_ns, max_caplen,
              out_offset, out_caplen, out_wirelen, out_ts):
    """Locate pcap records in buf[pos:end]; returns (records, next position, status)."""
    n = 0
    limit = len(out_offset)
    while n < limit and pos + header_len <= end:
        caplen = _u32(buf, pos + 8, big_endian)
        if caplen > max_caplen:
            return n, pos, BAD_LENGTH
        if pos + header_len + caplen > end:
            break
        wirelen = _u32(buf, pos + 12, big_endian)
        out_ts[n] = _u32(buf, pos, big_endian) * 1_000_000_000 + _u32(buf, pos + 4, big_endian) * frac_ns
        out_offset[n] = pos + header_len
        out_caplen[n] = caplen
        out_wirelen[n] = wirelen if wirelen > caplen else caplen
        pos += header_len + caplen
        n += 1
    return n, pos, OK


@nb.njit(cache=True, inline="always")
def _pcapng_ts(units, ts_mul, ts_div, ts_shift, ts_offset_ns):
    # Decimal resolutions convert exactly in integers; binary ones (if_tsresol with the top bit) need the shift.
    if ts_shift > 0:
        return (units >> ts_shift) * 1_000_000_000 + (((units & ((np.int64(1) << ts_shift) - 1)) * 1_000_000_000) >> ts_shift) + ts_offset_ns
    if ts_div > 1:
        return units // ts_div + ts_offset_ns
    return units * ts_mul + ts_offset_ns


@nb.njit(cache=True)
def scan_pcapng(buf, pos, end, big_endian, max_block,
                if_linktype, if_snaplen, if_ts_mul, if_ts_div, if_ts_shift, if_ts_offset, n_interfaces,
                out_offset, out_caplen, out_wirelen, out_ts, out_linktype):
    """Locate packet blocks in buf[pos:end]; returns (records, next position, status)."""
    n = 0
    limit = len(out_offset)
    while n < limit and pos + 12 <= end:
        block_type = _u32(buf, pos, big_endian)
        block_len = _u32(buf, pos + 4, big_endian)
        if block_type == 0x0A0D0D0A or block_type == 1:
            return n, pos, NEEDS_PYTHON
        if block_len < 12 or block_len % 4 != 0 or block_len > max_block:
            return n, pos, BAD_LENGTH
        if pos + block_len > end:
            break
        if block_type == 6 or block_type == 2:  # enhanced packet block, obsolete packet block
            if block_len < 32:
                return n, pos, BAD_LENGTH
            iface = _u32(buf, pos + 8, big_endian) if block_type == 6 else _u16(buf, pos + 8, big_endian)
            if iface >= n_interfaces:
                return n, pos, BAD_INTERFACE
            caplen = _u32(buf, pos + 20, big_endian)
            if caplen > block_len - 32:
                return n, pos, BAD_LENGTH
            wirelen = _u32(buf, pos + 24, big_endian)
            units = (_u32(buf, pos + 12, big_endian) << 32) | _u32(buf, pos + 16, big_endian)
            out_ts[n] = _pcapng_ts(units, if_ts_mul[iface], if_ts_div[iface], if_ts_shift[iface], if_ts_offset[iface])
            out_offset[n] = pos + 28
            out_caplen[n] = caplen
            out_wirelen[n] = wirelen if wirelen > caplen else caplen
            out_linktype[n] = if_linktype[iface]
            n += 1
        elif block_type == 3:  # simple packet block: interface 0, no timestamp
            if n_interfaces < 1:
                return n, pos, BAD_INTERFACE
            wirelen = _u32(buf, pos + 8, big_endian)
            caplen = min(wirelen, block_len - 16)
            if if_snaplen[0] > 0:
                caplen = min(caplen, if_snaplen[0])
            out_ts[n] = 0
            out_offset[n] = pos + 12
            out_caplen[n] = caplen
            out_wirelen[n] = wirelen
            out_linktype[n] = if_linktype[0]
            n += 1
        pos += block_len
    return n, pos, OK
