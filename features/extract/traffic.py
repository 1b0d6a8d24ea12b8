"""Size, timing, flag and burst statistics: over the whole flow (streaming state) and its first packets (exact).

Both produce the same block of columns (see `features.schema._traffic_block`); the early one is prefixed.
"""

from __future__ import annotations

import numpy as np

from features.extract import _kernel as k
from features.schema import STATS, TCP_FLAGS

QUANTILES = {"p10": 0.10, "p25": 0.25, "p50": 0.50, "p75": 0.75, "p90": 0.90}
DIRS = ("src2dst", "dst2src", "bidirectional")
NS_PER_MS = 1e6


def _ratio(num, den):
    num = np.asarray(num, np.float64)
    den = np.asarray(den, np.float64)
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(den > 0, num / np.where(den > 0, den, 1), np.nan)


def hist_quantiles(hist, q, bins_per_octave, offset, lo, hi):
    """Quantile q of each row's log2 histogram (bin b spans [2^(b/bpo), 2^((b+1)/bpo)) - offset), interpolated
    geometrically inside the bin and clipped to the exact [lo, hi] of the row; NaN for empty rows."""
    hist = hist.astype(np.float64)
    total = hist.sum(axis=1)
    cum = np.cumsum(hist, axis=1)
    rank = q * total
    b = np.minimum((cum < rank[:, None]).sum(axis=1), hist.shape[1] - 1)
    rows = np.arange(len(hist))
    before = np.where(b > 0, cum[rows, np.maximum(b - 1, 0)], 0.0)
    inside = hist[rows, b]
    frac = np.clip(_ratio(rank - before, inside), 0, 1)
    frac = np.nan_to_num(frac, nan=0.5)
    value = 2.0 ** ((b + frac) / bins_per_octave) - offset
    value = np.clip(value, lo, hi)
    return np.where(total > 0, value, np.nan)


def _stats_from_moments(prefix, name, count, total, squares, lo, hi, hist, bins_per_octave, offset, scale):
    """min/max/mean/std/quantiles columns from streaming sums (values in the unit of `total`, then * scale)."""
    n = count.astype(np.float64)
    mean = _ratio(total, n)
    var = np.maximum(_ratio(squares, n) - mean * mean, 0.0)
    has = n > 0
    lo = np.where(has, lo, np.nan)
    hi = np.where(has, hi, np.nan)
    out = {f"{prefix}_{name}_min": lo * scale, f"{prefix}_{name}_max": hi * scale,
           f"{prefix}_{name}_mean": mean * scale, f"{prefix}_{name}_std": np.sqrt(var) * scale}
    for q_name, q in QUANTILES.items():
        out[f"{prefix}_{name}_{q_name}"] = hist_quantiles(hist, q, bins_per_octave, offset, lo, hi) * scale
    return out


def whole_flow(rows, rtt_ms) -> dict:
    I, F = rows.I, rows.F
    out = {}
    last = I[:, k.LAST_TS + 2]
    duration = np.maximum(last - I[:, k.FIRST_TS], 0) / NS_PER_MS
    out["duration_ms"] = duration
    packets = I[:, k.PKTS:k.PKTS + 2]
    pl_packets = I[:, k.PL_PKTS:k.PL_PKTS + 2]
    pl_bytes = I[:, k.PL_BYTES:k.PL_BYTES + 2]
    for d, name in enumerate(DIRS):
        if d < 2:
            count, total, squares = pl_packets[:, d], F[:, k.PL_SUM + d], F[:, k.PL_SQ + d]
            lo, hi = I[:, k.PL_MIN + d], I[:, k.PL_MAX + d]
            hist = rows.size_hist[:, d]
            n_packets, n_bytes = packets[:, d], pl_bytes[:, d]
        else:
            count, total, squares = pl_packets.sum(1), F[:, k.PL_SUM] + F[:, k.PL_SUM + 1], F[:, k.PL_SQ] + F[:, k.PL_SQ + 1]
            both = pl_packets > 0
            lo = np.where(both, I[:, k.PL_MIN:k.PL_MIN + 2], np.iinfo(np.int64).max).min(1)
            hi = I[:, k.PL_MAX:k.PL_MAX + 2].max(1)
            hist = rows.size_hist.sum(axis=1)
            n_packets, n_bytes = packets.sum(1), pl_bytes.sum(1)
        out[f"{name}_payload_packets"] = count
        out[f"{name}_payload_share"] = _ratio(count, n_packets)
        out[f"{name}_payload_bytes"] = n_bytes
        out.update(_stats_from_moments(name, "payload", count, total, squares, lo, hi, hist,
                                       k.SIZE_BINS_PER_OCTAVE, 0.0, 1.0))
        iat = _stats_from_moments(name, "iat", I[:, k.IAT_N + d], F[:, k.IAT_SUM + d], F[:, k.IAT_SQ + d],
                                  I[:, k.IAT_MIN + d] / 1e3, I[:, k.IAT_MAX + d] / 1e3, rows.iat_hist[:, d],
                                  k.IAT_BINS_PER_OCTAVE, 1.0, 1e-3)
        out.update(iat)
        for s in ("mean", "p50", "p90"):
            out[f"{name}_iat_{s}_rtt"] = _ratio(iat[f"{name}_iat_{s}"], rtt_ms)
    out["dst2src_packet_share"] = _ratio(packets[:, 1], packets.sum(1))
    out["dst2src_payload_byte_share"] = _ratio(pl_bytes[:, 1], pl_bytes.sum(1))
    out["duration_rtt"] = _ratio(duration, rtt_ms)
    out["bursts"] = I[:, k.BURSTS]
    out["burst_packets_mean"] = _ratio(pl_packets.sum(1), I[:, k.BURSTS])
    for d, name in enumerate(DIRS[:2]):
        out[f"{name}_burst_packets_max"] = I[:, k.BURST_MAX_PKTS + d]
        out[f"{name}_burst_bytes_max"] = I[:, k.BURST_MAX_BYTES + d]
        for b, flag in enumerate(TCP_FLAGS):
            out[f"{name}_{flag}_count"] = I[:, k.FLAG_COUNTS + 8 * d + b]
    return out


def _exact_stats(prefix, name, values, mask, scale=1.0):
    """min/max/mean/std/quantiles over masked entries of each row (NaN where a row has none)."""
    v = np.where(mask, values.astype(np.float64), np.nan)
    has = mask.any(axis=1)
    out = {}
    with np.errstate(all="ignore"):
        import warnings
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)
            out[f"{prefix}_{name}_min"] = np.nanmin(np.where(has[:, None], v, 0), axis=1)
            out[f"{prefix}_{name}_max"] = np.nanmax(np.where(has[:, None], v, 0), axis=1)
            out[f"{prefix}_{name}_mean"] = np.nanmean(v, axis=1)
            out[f"{prefix}_{name}_std"] = np.nanstd(v, axis=1)
            qs = np.nanquantile(v, list(QUANTILES.values()), axis=1) if v.shape[1] else None
    for i, q_name in enumerate(QUANTILES):
        out[f"{prefix}_{name}_{q_name}"] = qs[i] if qs is not None else np.full(len(v), np.nan)
    for key in out:
        out[key] = np.where(has, out[key], np.nan) * scale
    return out


def _same_direction_gaps(ts, mask):
    """Gap from each masked entry to the previous masked entry of its row (-1 where there is none)."""
    n = ts.shape[1]
    idx = np.where(mask, np.arange(n), -1)
    last = np.maximum.accumulate(idx, axis=1)
    prev = np.concatenate([np.full((len(ts), 1), -1), last[:, :-1]], axis=1)
    valid = mask & (prev >= 0)
    prev_ts = np.take_along_axis(ts, np.maximum(prev, 0), axis=1)
    return np.maximum(ts - prev_ts, 0), valid


def _bursts(payload, direction, mask):
    """Bursts (runs of payload packets in one direction) among masked payload packets of each row."""
    m, n = payload.shape
    pl = mask & (payload > 0)
    bursts = np.zeros(m, np.int64)
    cur_dir = np.full(m, -1)
    cur_pkts = np.zeros(m, np.int64)
    cur_bytes = np.zeros(m, np.int64)
    max_pkts = np.zeros((m, 2), np.int64)
    max_bytes = np.zeros((m, 2), np.int64)
    rows = np.arange(m)
    for j in range(n):  # columns, not packets: at most 32 vector steps
        on = pl[:, j]
        d = direction[:, j].astype(np.int64)
        new = on & (d != cur_dir)
        bursts += new
        cur_pkts = np.where(new, 0, cur_pkts) + on
        cur_bytes = np.where(new, 0, cur_bytes) + np.where(on, payload[:, j], 0)
        cur_dir = np.where(on, d, cur_dir)
        dd = np.clip(d, 0, 1)
        max_pkts[rows, dd] = np.where(on, np.maximum(max_pkts[rows, dd], cur_pkts), max_pkts[rows, dd])
        max_bytes[rows, dd] = np.where(on, np.maximum(max_bytes[rows, dd], cur_bytes), max_bytes[rows, dd])
    return bursts, max_pkts, max_bytes


def early(rows, n_early: int, rtt_ms) -> dict:
    """The traffic block over the first `n_early` packets of each flow, exactly, prefixed `early_`."""
    n = min(n_early, rows.rec_ts.shape[1])
    mask = rows.record_mask()[:, :n]
    ts = rows.rec_ts[:, :n]
    payload = rows.rec_payload[:, :n].astype(np.int64)
    wire = rows.rec_wire[:, :n].astype(np.int64)
    direction = rows.rec_dir[:, :n]
    flags = rows.rec_flags[:, :n]
    out = {}
    for d, name in enumerate(DIRS[:2]):
        in_dir = mask & (direction == d)
        out[f"early_{name}_packets"] = in_dir.sum(1)
        out[f"early_{name}_bytes"] = np.where(in_dir, wire, 0).sum(1)
    last = np.where(mask, ts, np.iinfo(np.int64).min).max(1)
    duration = np.where(mask.any(1), (last - ts[:, 0]) / NS_PER_MS, 0.0)
    out["early_duration_ms"] = duration
    for d, name in enumerate(DIRS):
        in_dir = mask & (direction == d) if d < 2 else mask
        has_pl = in_dir & (payload > 0)
        out[f"early_{name}_payload_packets"] = has_pl.sum(1)
        out[f"early_{name}_payload_share"] = _ratio(has_pl.sum(1), in_dir.sum(1))
        out[f"early_{name}_payload_bytes"] = np.where(has_pl, payload, 0).sum(1)
        out.update(_exact_stats(f"early_{name}", "payload", payload, has_pl))
        gaps, valid = _same_direction_gaps(ts, in_dir)
        iat = _exact_stats(f"early_{name}", "iat", gaps, valid, 1.0 / NS_PER_MS)
        out.update(iat)
        for s in ("mean", "p50", "p90"):
            out[f"early_{name}_iat_{s}_rtt"] = _ratio(iat[f"early_{name}_iat_{s}"], rtt_ms)
    pl_rev = np.where(mask & (direction == 1), payload, 0).sum(1)
    out["early_dst2src_packet_share"] = _ratio(out["early_dst2src_packets"], mask.sum(1))
    out["early_dst2src_payload_byte_share"] = _ratio(pl_rev, out["early_bidirectional_payload_bytes"])
    out["early_duration_rtt"] = _ratio(duration, rtt_ms)
    bursts, max_pkts, max_bytes = _bursts(payload, direction, mask)
    out["early_bursts"] = bursts
    out["early_burst_packets_mean"] = _ratio(out["early_bidirectional_payload_packets"], bursts)
    for d, name in enumerate(DIRS[:2]):
        out[f"early_{name}_burst_packets_max"] = max_pkts[:, d]
        out[f"early_{name}_burst_bytes_max"] = max_bytes[:, d]
        in_dir = mask & (direction == d)
        for b, flag in enumerate(TCP_FLAGS):
            out[f"early_{name}_{flag}_count"] = (in_dir & ((flags & (1 << b)) != 0)).sum(1)
    return out


assert [s for s, _ in STATS] == ["min", "max", "mean", "std", *QUANTILES]
