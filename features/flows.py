"""Flow records: the columns of `vpndetect flows`, built from the flow table's state rows."""

from __future__ import annotations

import socket

import numpy as np
import pyarrow as pa

from features import flowstate as k
from features.decode.transport import transport_name

FLOW_COLUMNS = [
    # name, arrow type, meaning
    ("capture", pa.string(), "capture file the flow was read from, as given"),
    ("flow_id", pa.int64(), "serial number of the flow within its capture"),
    ("src_ip", pa.string(), "initiator address (sender of the SYN, else of the first packet)"),
    ("src_port", pa.int32(), "initiator port (0 for protocols without ports)"),
    ("dst_ip", pa.string(), "responder address"),
    ("dst_port", pa.int32(), "responder port"),
    ("transport", pa.string(), "tcp, udp, icmp, esp, ah, gre, ..."),
    ("vlan", pa.int32(), "outermost 802.1Q VLAN id, 0 if untagged"),
    ("first_seen", pa.float64(), "epoch seconds of the first packet"),
    ("last_seen", pa.float64(), "epoch seconds of the last packet"),
    ("src2dst_packets", pa.int64(), "packets initiator to responder"),
    ("dst2src_packets", pa.int64(), "packets responder to initiator"),
    ("packets", pa.int64(), "packets in both directions"),
    ("src2dst_bytes", pa.int64(), "frame bytes on the wire, initiator to responder"),
    ("dst2src_bytes", pa.int64(), "frame bytes on the wire, responder to initiator"),
    ("bytes", pa.int64(), "frame bytes on the wire, both directions"),
    ("end_reason", pa.string(), "idle_timeout, active_timeout, fin, rst, evicted or end_of_capture"),
    ("continuation", pa.bool_(), "the flow continues one cut by the active timeout"),
]
FLOW_SCHEMA = pa.schema([(name, kind) for name, kind, _ in FLOW_COLUMNS])

_V4_PREFIX = 0xFFFF


def format_addresses(hi: np.ndarray, lo: np.ndarray) -> list[str]:
    words = np.stack([hi, lo], axis=1).astype(">i8").view(np.uint8).reshape(-1, 16)
    is_v4 = (hi == 0) & ((lo >> 32) == _V4_PREFIX)
    return [socket.inet_ntop(socket.AF_INET, row[12:].tobytes()) if v4 else socket.inet_ntop(socket.AF_INET6, row.tobytes())
            for row, v4 in zip(words, is_v4)]


def flow_record_batch(rows: np.ndarray, capture, extra: dict | None = None) -> pa.RecordBatch:
    """One Arrow record batch from state rows of ended flows (shape (m, N_COLUMNS)); `capture` names the
    capture of them all, or of each row."""
    init_a = rows[:, k.INIT_IS_A] != 0
    pick = lambda a, b: np.where(init_a, rows[:, a], rows[:, b])  # noqa: E731
    src_hi, src_lo, dst_hi, dst_lo = pick(k.A_HI, k.B_HI), pick(k.A_LO, k.B_LO), pick(k.B_HI, k.A_HI), pick(k.B_LO, k.A_LO)
    fwd_packets, rev_packets = rows[:, k.PKTS_FWD], rows[:, k.PKTS_REV]
    fwd_bytes, rev_bytes = rows[:, k.BYTES_FWD], rows[:, k.BYTES_REV]
    protocols = rows[:, k.PROTO]
    names = {p: transport_name(p) for p in np.unique(protocols)}
    columns = {
        "capture": pa.array([capture] * len(rows) if isinstance(capture, str) else capture, pa.string()),
        "flow_id": rows[:, k.FLOW_ID],
        "src_ip": format_addresses(src_hi, src_lo),
        "src_port": pick(k.PORT_A, k.PORT_B).astype(np.int32),
        "dst_ip": format_addresses(dst_hi, dst_lo),
        "dst_port": pick(k.PORT_B, k.PORT_A).astype(np.int32),
        "transport": [names[p] for p in protocols],
        "vlan": rows[:, k.VLAN].astype(np.int32),
        "first_seen": rows[:, k.FIRST_TS] / 1e9,
        "last_seen": rows[:, k.LAST_TS] / 1e9,
        "src2dst_packets": fwd_packets,
        "dst2src_packets": rev_packets,
        "packets": fwd_packets + rev_packets,
        "src2dst_bytes": fwd_bytes,
        "dst2src_bytes": rev_bytes,
        "bytes": fwd_bytes + rev_bytes,
        "end_reason": [k.END_REASONS.get(r, "end_of_capture") for r in rows[:, k.END_REASON]],
        "continuation": (rows[:, k.FLAGS] & k.CONTINUATION) != 0,
    }
    arrays = [pa.array(columns[name], kind) for name, kind, _ in FLOW_COLUMNS]
    names_out = [name for name, _, _ in FLOW_COLUMNS]
    for name, values in (extra or {}).items():
        arrays.append(pa.array(values))
        names_out.append(name)
    return pa.RecordBatch.from_arrays(arrays, names=names_out)
