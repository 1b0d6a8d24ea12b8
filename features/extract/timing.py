"""The flow's own round-trip estimate, and the sequence of its first payload packets.

The estimate comes from the TCP handshake (SYN to SYN-ACK to ACK: a full round trip wherever the capture
point sits), else from the first request and the first response after it. Dividing times by it lets
timing features carry across network conditions.
"""

from __future__ import annotations

import numpy as np

from features.schema import SEQUENCE_PACKETS

_SYN, _ACK = 0x02, 0x10


def _first(mask):
    """Index of the first True per row, -1 if none."""
    return np.where(mask.any(1), mask.argmax(1), -1)


def _take(a, idx):
    return np.take_along_axis(a, np.maximum(idx, 0)[:, None], axis=1)[:, 0]


def round_trip(rows):
    """(rtt_ms, source) per flow: source 1 TCP handshake, 2 request/response, 0 none (rtt NaN)."""
    mask = rows.record_mask()
    flags, direction, ts = rows.rec_flags, rows.rec_dir, rows.rec_ts
    n = flags.shape[1]
    cols = np.arange(n)
    syn = _first(mask & (direction == 0) & ((flags & (_SYN | _ACK)) == _SYN))
    synack = _first(mask & (direction == 1) & ((flags & (_SYN | _ACK)) == (_SYN | _ACK)) & (cols > syn[:, None]) & (syn[:, None] >= 0))
    ack = _first(mask & (direction == 0) & ((flags & (_SYN | _ACK)) == _ACK) & (cols > synack[:, None]) & (synack[:, None] >= 0))
    handshake = np.where(ack >= 0, _take(ts, ack) - _take(ts, syn),
                         np.where(synack >= 0, _take(ts, synack) - _take(ts, syn), -1))

    smask = rows.sequence_mask()
    sdir, sts = rows.seq_dir, rows.seq_ts
    scol = np.arange(sdir.shape[1])
    request = _first(smask & (sdir == 0))
    response = _first(smask & (sdir == 1) & (scol > request[:, None]) & (request[:, None] >= 0))
    exchange = np.where(response >= 0, _take(sts, response) - _take(sts, request), -1)

    source = np.where(handshake > 0, 1, np.where(exchange > 0, 2, 0)).astype(np.int8)
    rtt_ns = np.where(source == 1, handshake, np.where(source == 2, exchange, -1))
    rtt_ms = np.where(source > 0, rtt_ns / 1e6, np.nan)
    return rtt_ms, source


def sequence(rows, rtt_ms) -> dict:
    """seqNN_size (signed by direction), seqNN_iat_ms and seqNN_iat_rtt for the first payload packets."""
    m = len(rows)
    n = min(SEQUENCE_PACKETS, rows.seq_len.shape[1])
    mask = rows.sequence_mask()[:, :n]
    size = np.where(mask, np.where(rows.seq_dir[:, :n] == 0, 1, -1) * rows.seq_len[:, :n].astype(np.int64), 0)
    ts = rows.seq_ts[:, :n]
    first_ts = rows.rec_ts[:, 0]
    prev = np.concatenate([first_ts[:, None], ts[:, :-1]], axis=1)
    iat = np.where(mask, np.maximum(ts - prev, 0) / 1e6, np.nan)
    with np.errstate(divide="ignore", invalid="ignore"):
        iat_rtt = iat / rtt_ms[:, None]
    out = {}
    for i in range(SEQUENCE_PACKETS):
        if i < n:
            out[f"seq{i:02d}_size"] = size[:, i]
            out[f"seq{i:02d}_iat_ms"] = iat[:, i]
            out[f"seq{i:02d}_iat_rtt"] = iat_rtt[:, i]
        else:
            out[f"seq{i:02d}_size"] = np.zeros(m, np.int64)
            out[f"seq{i:02d}_iat_ms"] = out[f"seq{i:02d}_iat_rtt"] = np.full(m, np.nan)
    return out
