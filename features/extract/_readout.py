"""Compiled read-out of the size, timing, flag and burst columns when flows end: one pass per flow.

Column order follows the schema (`readout_columns()`): round-trip estimate, the whole-flow block, the
early block, the payload-packet sequence. Done in compiled code because the equivalent numpy is a few
thousand small array operations per expiry batch, whose fixed costs dominated the feature pipeline.
Whole-flow quantiles come from the log2 histograms (interpolated inside a bin, clipped to the exact
min/max); early ones are exact (numpy's linear method).
"""

from __future__ import annotations

import numba as nb
import numpy as np

from features.extract import _kernel as k

NS_PER_MS = 1e6
QUANTILES = np.array([0.10, 0.25, 0.50, 0.75, 0.90])
_SYN, _ACK = 0x02, 0x10
NAN = np.nan


@nb.njit(cache=True, inline="always")
def _div(a, b):
    return a / b if b > 0 else NAN


@nb.njit(cache=True)
def _hist_stats(out, r, c, count, total, squares, lo, hi, hist, other, with_other, bins_per_octave, offset, scale):
    """min, max, mean, std, p10..p90 of a streamed quantity into out[r, c:c+9]; returns c + 9.
    The histogram is `hist`, plus `other` when `with_other` (both directions)."""
    if count == 0:
        out[r, c:c + 9] = NAN
        return c + 9
    mean = total / count
    var = max(squares / count - mean * mean, 0.0)
    out[r, c] = lo * scale
    out[r, c + 1] = hi * scale
    out[r, c + 2] = mean * scale
    out[r, c + 3] = np.sqrt(var) * scale
    n_bins = hist.shape[0]
    for qi in range(len(QUANTILES)):
        rank = QUANTILES[qi] * count
        cum = 0.0
        b = 0
        while b < n_bins - 1 and cum + hist[b] + with_other * other[b] < rank:
            cum += hist[b] + with_other * other[b]
            b += 1
        inside = hist[b] + with_other * other[b]
        frac = min(max((rank - cum) / inside, 0.0), 1.0) if inside > 0 else 0.5
        value = 2.0 ** ((b + frac) / bins_per_octave) - offset
        out[r, c + 4 + qi] = min(max(value, lo), hi) * scale
    return c + 9


@nb.njit(cache=True)
def _exact_stats(out, r, c, values, n, scale):
    """The same nine statistics, exactly, over values[:n]; returns c + 9."""
    if n == 0:
        out[r, c:c + 9] = NAN
        return c + 9
    v = values
    for i in range(1, n):                    # insertion sort in place: n <= 32, and no allocation
        x = v[i]
        j = i - 1
        while j >= 0 and v[j] > x:
            v[j + 1] = v[j]
            j -= 1
        v[j + 1] = x
    total = 0.0
    squares = 0.0
    for i in range(n):
        total += v[i]
        squares += v[i] * v[i]
    mean = total / n
    out[r, c] = v[0] * scale
    out[r, c + 1] = v[n - 1] * scale
    out[r, c + 2] = mean * scale
    out[r, c + 3] = np.sqrt(max(squares / n - mean * mean, 0.0)) * scale
    for qi in range(len(QUANTILES)):
        pos = QUANTILES[qi] * (n - 1)
        lo = int(np.floor(pos))
        hi = min(lo + 1, n - 1)
        out[r, c + 4 + qi] = (v[lo] + (v[hi] - v[lo]) * (pos - lo)) * scale
    return c + 9


@nb.njit(cache=True)
def _round_trip(rec_ts, rec_dir, rec_flags, n_rec, seq_ts, seq_dir, n_seq):
    """(rtt in ns, source): SYN -> SYN-ACK -> ACK (1), else first request -> first response (2), else (-1, 0)."""
    syn = synack = -1
    for j in range(n_rec):
        f = rec_flags[j] & (_SYN | _ACK)
        if syn < 0:
            if rec_dir[j] == 0 and f == _SYN:
                syn = j
        elif synack < 0:
            if rec_dir[j] == 1 and f == (_SYN | _ACK):
                synack = j
        elif rec_dir[j] == 0 and f == _ACK:
            gap = rec_ts[j] - rec_ts[syn]
            if gap > 0:
                return gap, 1
            break
    if synack >= 0 and rec_ts[synack] - rec_ts[syn] > 0:
        return rec_ts[synack] - rec_ts[syn], 1
    request = -1
    for j in range(n_seq):
        if request < 0 and seq_dir[j] == 0:
            request = j
        elif request >= 0 and seq_dir[j] == 1:
            gap = seq_ts[j] - seq_ts[request]
            return (gap, 2) if gap > 0 else (-1, 0)
    return -1, 0


@nb.njit(cache=True)
def _whole(out, r, c, I, F, size_hist, iat_hist, rtt_ms):
    duration = max(I[r, k.LAST_TS + 2] - I[r, k.FIRST_TS], 0) / NS_PER_MS
    out[r, c] = duration
    c += 1
    for d in range(3):
        if d < 2:
            count = I[r, k.PL_PKTS + d]
            packets = I[r, k.PKTS + d]
            total, squares = F[r, k.PL_SUM + d], F[r, k.PL_SQ + d]
            lo, hi = I[r, k.PL_MIN + d], I[r, k.PL_MAX + d]
            with_other = 0
            pl_bytes = I[r, k.PL_BYTES + d]
        else:
            count = I[r, k.PL_PKTS] + I[r, k.PL_PKTS + 1]
            packets = I[r, k.PKTS] + I[r, k.PKTS + 1]
            total, squares = F[r, k.PL_SUM] + F[r, k.PL_SUM + 1], F[r, k.PL_SQ] + F[r, k.PL_SQ + 1]
            both = (I[r, k.PL_PKTS] > 0, I[r, k.PL_PKTS + 1] > 0)
            lo = min(I[r, k.PL_MIN] if both[0] else 1 << 62, I[r, k.PL_MIN + 1] if both[1] else 1 << 62)
            hi = max(I[r, k.PL_MAX], I[r, k.PL_MAX + 1])
            with_other = 1
            pl_bytes = I[r, k.PL_BYTES] + I[r, k.PL_BYTES + 1]
        out[r, c] = count
        out[r, c + 1] = _div(count, packets)
        out[r, c + 2] = pl_bytes
        c = _hist_stats(out, r, c + 3, count, total, squares, lo, hi, size_hist[r, d % 2], size_hist[r, 1], with_other,
                        k.SIZE_BINS_PER_OCTAVE, 0.0, 1.0)
        iat_start = c
        c = _hist_stats(out, r, c, I[r, k.IAT_N + d], F[r, k.IAT_SUM + d], F[r, k.IAT_SQ + d],
                        I[r, k.IAT_MIN + d] / 1e3, I[r, k.IAT_MAX + d] / 1e3, iat_hist[r, d], iat_hist[r, d], 0,
                        k.IAT_BINS_PER_OCTAVE, 1.0, 1e-3)
        c = _normalised(out, r, c, iat_start, rtt_ms)
    packets = I[r, k.PKTS] + I[r, k.PKTS + 1]
    pl_bytes = I[r, k.PL_BYTES] + I[r, k.PL_BYTES + 1]
    bursts = I[r, k.BURSTS]
    out[r, c] = _div(I[r, k.PKTS + 1], packets)
    out[r, c + 1] = _div(I[r, k.PL_BYTES + 1], pl_bytes)
    out[r, c + 2] = _div(duration, rtt_ms)
    out[r, c + 3] = bursts
    out[r, c + 4] = _div(I[r, k.PL_PKTS] + I[r, k.PL_PKTS + 1], bursts)
    c += 5
    for d in range(2):
        out[r, c] = I[r, k.BURST_MAX_PKTS + d]
        out[r, c + 1] = I[r, k.BURST_MAX_BYTES + d]
        for b in range(8):
            out[r, c + 2 + b] = I[r, k.FLAG_COUNTS + 8 * d + b]
        c += 10
    return c


@nb.njit(cache=True, inline="always")
def _normalised(out, r, c, iat_start, rtt_ms):
    """mean, p50 and p90 inter-arrival times (columns 2, 6, 8 of the stats) over the round-trip estimate."""
    out[r, c] = _div(out[r, iat_start + 2], rtt_ms)
    out[r, c + 1] = _div(out[r, iat_start + 6], rtt_ms)
    out[r, c + 2] = _div(out[r, iat_start + 8], rtt_ms)
    return c + 3


@nb.njit(cache=True)
def _early(out, r, c, rec_ts, rec_payload, rec_wire, rec_dir, rec_flags, n, rtt_ms, values):
    for d in range(2):
        packets = 0
        wire = 0
        for j in range(n):
            if rec_dir[r, j] == d:
                packets += 1
                wire += rec_wire[r, j]
        out[r, c] = packets
        out[r, c + 1] = wire
        c += 2
    duration = 0.0
    for j in range(n):                # capture order is not always time order
        duration = max(duration, (rec_ts[r, j] - rec_ts[r, 0]) / NS_PER_MS)
    out[r, c] = duration
    c += 1
    for d in range(3):
        packets = count = pl_bytes = 0
        for j in range(n):
            if d == 2 or rec_dir[r, j] == d:
                packets += 1
                if rec_payload[r, j] > 0:
                    values[count] = rec_payload[r, j]
                    count += 1
                    pl_bytes += rec_payload[r, j]
        out[r, c] = count
        out[r, c + 1] = _div(count, packets)
        out[r, c + 2] = pl_bytes
        c = _exact_stats(out, r, c + 3, values, count, 1.0)
        gaps = 0
        last = -1
        for j in range(n):
            if d == 2 or rec_dir[r, j] == d:
                if last >= 0:
                    values[gaps] = max(rec_ts[r, j] - last, 0)
                    gaps += 1
                last = rec_ts[r, j]
        iat_start = c
        c = _exact_stats(out, r, c, values, gaps, 1.0 / NS_PER_MS)
        c = _normalised(out, r, c, iat_start, rtt_ms)
    packets = n
    down = down_bytes = total_bytes = 0
    for j in range(n):
        if rec_dir[r, j] == 1:
            down += 1
            down_bytes += rec_payload[r, j]
        total_bytes += rec_payload[r, j]
    out[r, c] = _div(down, packets)
    out[r, c + 1] = _div(down_bytes, total_bytes)
    out[r, c + 2] = _div(duration, rtt_ms)
    # Bursts: runs of payload packets in one direction.
    bursts = 0
    current = -1
    run_packets = run_bytes = 0
    max_packets = np.zeros(2, np.int64)
    max_bytes = np.zeros(2, np.int64)
    payload_packets = 0
    for j in range(n):
        size = rec_payload[r, j]
        if size <= 0:
            continue
        payload_packets += 1
        d = rec_dir[r, j]
        if d != current:
            bursts += 1
            current = d
            run_packets = run_bytes = 0
        run_packets += 1
        run_bytes += size
        max_packets[d] = max(max_packets[d], run_packets)
        max_bytes[d] = max(max_bytes[d], run_bytes)
    out[r, c + 3] = bursts
    out[r, c + 4] = _div(payload_packets, bursts)
    c += 5
    for d in range(2):
        out[r, c] = max_packets[d]
        out[r, c + 1] = max_bytes[d]
        for b in range(8):
            flagged = 0
            for j in range(n):
                if rec_dir[r, j] == d and rec_flags[r, j] & (1 << b):
                    flagged += 1
            out[r, c + 2 + b] = flagged
        c += 10
    return c


@nb.njit(cache=True)
def _sequence(out, r, c, seq_len, seq_dir, seq_ts, n_seq, first_ts, rtt_ms, width):
    previous = first_ts
    for i in range(width):
        if i < n_seq:
            out[r, c] = seq_len[r, i] if seq_dir[r, i] == 0 else -seq_len[r, i]
            gap = max(seq_ts[r, i] - previous, 0) / NS_PER_MS
            out[r, c + 1] = gap
            out[r, c + 2] = _div(gap, rtt_ms)
            previous = seq_ts[r, i]
        else:
            out[r, c] = 0
            out[r, c + 1] = NAN
            out[r, c + 2] = NAN
        c += 3
    return c


@nb.njit(cache=True)
def readout(I, F, size_hist, iat_hist, rec_ts, rec_payload, rec_wire, rec_dir, rec_flags,
            seq_len, seq_dir, seq_ts, early_packets, sequence_width, out):
    """Fill out[r, :] for every ended flow r; returns the number of columns written."""
    c = 0
    values = np.empty(rec_ts.shape[1])
    for r in range(I.shape[0]):
        n_rec = min(I[r, k.PKTS] + I[r, k.PKTS + 1], rec_ts.shape[1])
        n_seq = min(I[r, k.PL_PKTS] + I[r, k.PL_PKTS + 1], seq_len.shape[1])
        rtt_ns, source = _round_trip(rec_ts[r], rec_dir[r], rec_flags[r], n_rec, seq_ts[r], seq_dir[r], n_seq)
        rtt_ms = rtt_ns / NS_PER_MS if source > 0 else NAN
        out[r, 0] = rtt_ms
        out[r, 1] = source
        c = _whole(out, r, 2, I, F, size_hist, iat_hist, rtt_ms)
        c = _early(out, r, c, rec_ts, rec_payload, rec_wire, rec_dir, rec_flags, min(early_packets, n_rec), rtt_ms,
                   values)
        c = _sequence(out, r, c, seq_len, seq_dir, seq_ts, n_seq, I[r, k.FIRST_TS], rtt_ms, sequence_width)
    return c
