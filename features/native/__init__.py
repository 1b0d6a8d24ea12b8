"""The compiled kernels (scan.c, flowtable.c, features.c, ...), called through ctypes with numpy arrays.

They are plain C functions over arrays, built as an extension module by `pip install`; ctypes keeps the
binding to one declaration per function and costs a few microseconds per call, that is per batch.
"""

from __future__ import annotations

import ctypes
from pathlib import Path

import numpy as np

_HERE = Path(__file__).parent

# Why a record walker stopped (scan.c).
OK, BAD_LENGTH, NEEDS_PYTHON, BAD_INTERFACE = 0, 1, 2, 3


def _load():
    candidates = sorted(_HERE.glob("_kernels*.so")) + sorted(_HERE.glob("_kernels*.pyd"))
    if not candidates:
        raise ImportError("vpndetect's compiled kernels are missing: install the package with `pip install -e .` "
                          "(needs a C compiler)")
    return ctypes.CDLL(str(candidates[0]))


_lib = _load()
POINTER, INT = ctypes.c_void_p, ctypes.c_int64
_P, _I = POINTER, INT


def declare(name, *argtypes, restype=None):
    """A kernel function of the compiled library with its ctypes signature (also used by detector.live)."""
    fn = getattr(_lib, name)
    fn.argtypes = list(argtypes)
    fn.restype = restype
    return fn


_scan_pcap = declare("scan_pcap", _P, _P, _I, ctypes.c_int, _I, _I, _I, _I, _P, _P, _P, _P, _P, restype=_I)
_scan_pcapng = declare("scan_pcapng", _P, _P, _I, ctypes.c_int, _I, _P, _P, _P, _P, _P, _P, _I, _I,
                        _P, _P, _P, _P, _P, _P, restype=_I)
_process = declare("process", _I, *([_P] * 15), _P, _P, _I, _P, _P, _P, _P, _I, _I, _I, _I, _I, _I, _P, _P, _P)
_expire_idle = declare("expire_idle", _P, _P, _I, _P, _P, _P, _I, _I, _I)
_expire_all = declare("expire_all", _P, _P, _I, _P, _P, _P, _I)
_rebuild_index = declare("rebuild_index", _P, _P, _I, _P)
key_hash = declare("key_hash", *([_I] * 8), restype=_I)


def _ptr(array: np.ndarray, dtype=np.int64):
    if array.dtype != dtype or not array.flags.c_contiguous:
        raise TypeError(f"kernel argument must be a contiguous {np.dtype(dtype)} array, got {array.dtype}")
    return array.ctypes.data


def scan_pcap(buf, pos, end, big_endian, header_len, frac_ns, max_caplen, out_offset, out_caplen, out_wirelen, out_ts):
    """Locate pcap records in buf[pos:end]; returns (records, next position, status)."""
    position, status = np.array([pos], np.int64), np.zeros(1, np.int64)
    n = _scan_pcap(_ptr(buf, np.uint8), _ptr(position), end, int(big_endian), header_len, frac_ns, max_caplen,
                   len(out_offset), _ptr(out_offset), _ptr(out_caplen), _ptr(out_wirelen), _ptr(out_ts), _ptr(status))
    return n, int(position[0]), int(status[0])


def scan_pcapng(buf, pos, end, big_endian, max_block, if_linktype, if_snaplen, if_ts_mul, if_ts_div, if_ts_shift,
                if_ts_offset, n_interfaces, out_offset, out_caplen, out_wirelen, out_ts, out_linktype):
    """Locate pcapng packet blocks in buf[pos:end]; returns (records, next position, status)."""
    position, status = np.array([pos], np.int64), np.zeros(1, np.int64)
    n = _scan_pcapng(_ptr(buf, np.uint8), _ptr(position), end, int(big_endian), max_block,
                     _ptr(if_linktype), _ptr(if_snaplen), _ptr(if_ts_mul), _ptr(if_ts_div), _ptr(if_ts_shift),
                     _ptr(if_ts_offset), n_interfaces, len(out_offset), _ptr(out_offset), _ptr(out_caplen),
                     _ptr(out_wirelen), _ptr(out_ts), _ptr(out_linktype), _ptr(status))
    return n, int(position[0]), int(status[0])


def process(packets, table, out_slot, out_dir, out_ordinal):
    """Assign packets to flows (see flowtable.c); `packets` is the tuple of per-packet input arrays."""
    ts, valid = packets[0], packets[1]
    _process(len(ts), _ptr(ts), _ptr(valid, np.uint8), *(_ptr(a) for a in packets[2:]),
             _ptr(table.state), _ptr(table.index), len(table.index), _ptr(table.free), _ptr(table.expired),
             _ptr(table.meta), _ptr(table.frag), len(table.frag), table.idle_ns, table.active_ns, table.grace_ns,
             table.max_flows, table.max_packets, _ptr(out_slot), _ptr(out_dir), _ptr(out_ordinal))


def expire_idle(table, now):
    _expire_idle(_ptr(table.state), _ptr(table.index), len(table.index), _ptr(table.free), _ptr(table.expired),
                 _ptr(table.meta), now, table.idle_ns, table.grace_ns)


def expire_all(table, reason):
    _expire_all(_ptr(table.state), _ptr(table.index), len(table.index), _ptr(table.free), _ptr(table.expired),
                _ptr(table.meta), reason)


def rebuild_index(table):
    _rebuild_index(_ptr(table.state), _ptr(table.index), len(table.index), _ptr(table.meta))


class _FeatureState(ctypes.Structure):
    """features.c's feature_state_t: the state arrays of a FeatureState and their per-row sizes."""
    _fields_ = [(name, _P) for name in (
        "row_of", "free", "free_top", "I", "F", "size_hist", "iat_hist", "rec_ts", "rec_payload", "rec_wire",
        "rec_dir", "rec_flags", "seq_len", "seq_dir", "seq_ts", "seq_cap", "heads", "prefix0", "prefix1", "opcodes")] \
        + [(name, _I) for name in ("n_rec", "n_seq", "n_heads", "head_bytes", "prefix0_cap", "prefix1_cap")]


_feature_update = declare("feature_update", _I, *([_P] * 14), ctypes.POINTER(_FeatureState))


def feature_update(state, slot, direction, ordinal, ts, proto, sport, dport, tcp_flags, pl_off, pl_len, pl_cap,
                   l4_off, wirelen, data):
    """Scatter a batch into the feature rows of `state` (a FeatureState; see features.c)."""
    arrays = {name: getattr(state, name) for name, kind in _FeatureState._fields_ if kind is _P}
    struct = _FeatureState(**{name: _ptr(a, a.dtype) for name, a in arrays.items()},
                           n_rec=state.rec_ts.shape[1], n_seq=state.seq_len.shape[1], n_heads=state.heads.shape[1],
                           head_bytes=state.heads.shape[2], prefix0_cap=state.prefix0.shape[1],
                           prefix1_cap=state.prefix1.shape[1])
    _feature_update(len(slot), *(_ptr(a) for a in (slot, direction, ordinal, ts, proto, sport, dport, tcp_flags,
                                                     pl_off, pl_len, pl_cap, l4_off, wirelen)),
                    _ptr(data, np.uint8), ctypes.byref(struct))


class _FlowRows(ctypes.Structure):
    """readout.c's flow_rows_t: the state of ended flows, its per-row sizes, and which rows they are."""
    _fields_ = [(name, _P) for name in ("I", "F", "size_hist", "iat_hist", "rec_ts", "rec_payload", "rec_wire",
                                        "rec_dir", "rec_flags", "seq_len", "seq_dir", "seq_ts")] \
        + [("n_rec", _I), ("n_seq", _I), ("index", _P)]


_readout = declare("readout", _I, ctypes.POINTER(_FlowRows), _I, _I, _I, _I, _P, _P, _P, restype=_I)
_READOUT_KINDS = {np.dtype(np.float64): 0, np.dtype(np.float32): 1, np.dtype(np.int32): 2, np.dtype(np.int8): 3}


def readout(rows, early_packets, sequence_width, columns, targets):
    """Compute the traffic columns of the flows in `rows` (a FlowRows; see readout.c), `columns` values per
    flow, and write them to the rows of 2-D blocks: for each (block, block_rows, values) in `targets`, value
    values[i] of each flow to row block_rows[i] of the block (float64, float32, int32 or int8, converted as
    numpy's astype converts, NaN as 0 in integers; each row len(rows) contiguous entries); returns the number
    of values per flow (-1: not `columns`). Rows held in a FeatureState (a HeldRows, with `state` and
    `state_rows`) are read there, in place."""
    state = getattr(rows, "state", None)
    source, index = (state, np.ascontiguousarray(rows.state_rows, np.int64)) if state is not None else (rows, None)
    if index is not None and len(index) and (index.min() < 0 or index.max() >= len(source.I)):
        raise IndexError("row out of range")
    arrays = {name: np.ascontiguousarray(getattr(source, name)) for name, kind in _FlowRows._fields_
              if kind is _P and name != "index"}
    if index is None and any(len(a) != len(rows) for a in arrays.values()):
        raise ValueError("every array of rows must have one entry per flow")
    struct = _FlowRows(**{name: _ptr(a, a.dtype) for name, a in arrays.items()},
                       n_rec=source.rec_ts.shape[1], n_seq=source.seq_len.shape[1],
                       index=None if index is None else _ptr(index))
    # Pointers per block row, in numpy: a Python step per column (~300) would cost half a millisecond a call.
    values, pointers, kinds = [], [], []
    for block, block_rows, block_values in targets:
        block_rows, block_values = np.asarray(block_rows, np.int64), np.asarray(block_values, np.int64)
        if len(block_rows) != len(block_values):
            raise ValueError("a read-out target needs one read-out value per block row")
        if block.ndim != 2 or block.shape[1] != len(rows) or block.strides[1] != block.itemsize \
                or block.dtype not in _READOUT_KINDS:
            raise ValueError("read-out blocks must be float64, float32, int32 or int8, rows of contiguous entries, "
                             "one entry per flow")
        if len(block_rows) and (block_rows.min() < 0 or block_rows.max() >= len(block)):
            raise IndexError("block row out of range")
        values.append(block_values)
        pointers.append((block.ctypes.data + block_rows * block.strides[0]).astype(np.uintp))
        kinds.append(np.full(len(block_rows), _READOUT_KINDS[block.dtype], np.int64))
    values, pointers, kinds = (np.concatenate(a) if a else np.zeros(0, dtype)
                               for a, dtype in ((values, np.int64), (pointers, np.uintp), (kinds, np.int64)))
    return _readout(len(rows), ctypes.byref(struct), early_packets, sequence_width, columns, len(values),
                    _ptr(values), pointers.ctypes.data, _ptr(kinds))


_ack_bins = declare("ack_bins", _I, _P, _I, _P, _I, _P)


def ack_bins(seq_len, n_seq, packets):
    """(m, 3): per row of payload sizes (int32, the first n_seq of the row's), how many of the first `packets`
    (at most 30) in each 10-packet bin have the row's most common size of 1-128 bytes (see readout.c)."""
    seq_len = np.ascontiguousarray(seq_len, np.int32)
    n_seq = np.ascontiguousarray(n_seq, np.int64)
    out = np.zeros((len(seq_len), 3), np.int64)
    _ack_bins(len(seq_len), _ptr(seq_len, np.int32), seq_len.shape[1], _ptr(n_seq), packets, _ptr(out))
    return out


_byte_profiles = declare("byte_profiles", _I, _P, _I, _P, _P, _I, _P, _P, _P, _P, _P, _P)


def byte_profiles(data, lengths, c_log_c, out):
    """Byte statistics of each row data[i, :lengths[i]] into the arrays of `out` (see bytestats.c)."""
    data = np.ascontiguousarray(data, np.uint8)
    lengths = np.ascontiguousarray(lengths, np.int64)
    _byte_profiles(len(data), _ptr(data, np.uint8), data.shape[1], _ptr(lengths), _ptr(c_log_c, np.float64),
                   len(c_log_c), *(_ptr(out[name], np.float64) for name in ("entropy", "popcount", "printable_share",
                                                                              "ascii_share")),
                   _ptr(out["longest_printable_run"]), _ptr(out["first6_printable"], np.bool_))


_byte_entropies = declare("byte_entropies", _I, _P, _I, _P, _P, _I, _P)


def byte_entropies(data, lengths, c_log_c, out):
    """Entropy of each row data[i, :lengths[i]] into `out`, as byte_profiles computes it (see bytestats.c)."""
    data = np.ascontiguousarray(data, np.uint8)
    lengths = np.ascontiguousarray(lengths, np.int64)
    _byte_entropies(len(data), _ptr(data, np.uint8), data.shape[1], _ptr(lengths), _ptr(c_log_c, np.float64),
                    len(c_log_c), _ptr(out, np.float64))


_gather_rows = declare("gather_rows", _I, _P, _P, _I, _P, _P)


def gather_rows(array: np.ndarray, rows: np.ndarray, out: np.ndarray | None = None,
                used: np.ndarray | None = None) -> np.ndarray:
    """array[rows] for a C-contiguous array and int64 row numbers within it (see gather.c), written into
    `out` (C-contiguous, of array's dtype and row shape, len(rows) rows) when given. With `used` (bytes per
    gathered row), only that many first bytes of each row are copied (in whole cache lines) and the rest of
    `out`'s row is left as it was."""
    if not array.flags.c_contiguous:
        raise TypeError("gather_rows needs a C-contiguous array")
    rows = np.ascontiguousarray(rows, np.int64)
    if len(rows) and (rows.min() < 0 or rows.max() >= len(array)):
        raise IndexError("row out of range")
    if out is None:
        out = np.empty((len(rows),) + array.shape[1:], array.dtype)
    elif out.shape != (len(rows),) + array.shape[1:] or out.dtype != array.dtype or not out.flags.c_contiguous:
        raise ValueError("out must be a C-contiguous array of the gathered rows' shape and dtype")
    row_bytes = array.itemsize * int(np.prod(array.shape[1:], dtype=np.int64))
    if used is not None:
        used = np.ascontiguousarray(used, np.int64)
        if len(used) != len(rows):
            raise ValueError("used must give one byte count per gathered row")
    _gather_rows(len(rows), _ptr(rows), array.ctypes.data, row_bytes, None if used is None else _ptr(used),
                 out.ctypes.data)
    return out


_client_hellos = declare("client_hellos", _I, _P, _P, _I, _P, *([_P] * 6), _P, _I, _P)
NO_HELLO, HELLO, KEY_TOO_LONG = 0, 1, 2             # tls.c: status of a row


def client_hellos(data, lengths, rows):
    """The TLS ClientHello opening data[r, :lengths[r]] for each r in `rows`: status, handshake length,
    server name and ALPN extension spans (offset -1 if absent), and a key of the fingerprinted fields
    (keys[i, :key_len[i]]); see tls.c."""
    data = np.ascontiguousarray(data, np.uint8)
    lengths = np.ascontiguousarray(lengths, np.int64)
    rows = np.ascontiguousarray(rows, np.int64)
    m = len(rows)
    out = {name: np.zeros(m, np.int64) for name in ("status", "length", "sni_off", "sni_len", "alpn_off", "alpn_len",
                                                     "key_len")}
    out["keys"] = np.empty((m, data.shape[1] + 64), np.uint8)   # a key is shorter than its hello, plus headers
    _client_hellos(m, _ptr(rows), _ptr(data, np.uint8), data.shape[1], _ptr(lengths),
                   *(_ptr(out[name]) for name in ("status", "length", "sni_off", "sni_len", "alpn_off", "alpn_len")),
                   _ptr(out["keys"], np.uint8), out["keys"].shape[1], _ptr(out["key_len"]))
    return out


_certificate_names = declare("certificate_names", _I, _P, _P, _I, _P, _P, _P, _P, _P, _P)


def certificate_names(data, lengths, rows):
    """For each r in `rows`, the handshake bytes of server stream data[r, :lengths[r]] (messages, one row each)
    and the spans there of its certificate's issuer and subject commonName (lengths 0 if not both seen);
    see tls.c."""
    data = np.ascontiguousarray(data, np.uint8)
    lengths = np.ascontiguousarray(lengths, np.int64)
    rows = np.ascontiguousarray(rows, np.int64)
    out = {name: np.zeros(len(rows), np.int64) for name in ("issuer_off", "issuer_len", "subject_off", "subject_len")}
    out["messages"] = np.empty((len(rows), data.shape[1]), np.uint8)
    _certificate_names(len(rows), _ptr(rows), _ptr(data, np.uint8), data.shape[1], _ptr(lengths),
                       _ptr(out["messages"], np.uint8),
                       *(_ptr(out[name]) for name in ("issuer_off", "issuer_len", "subject_off", "subject_len")))
    return out


_distinct_spans = declare("distinct_spans", _I, _P, _I, _P, _P, _P, _P, _I, _P, _P, restype=_I)


def distinct_spans(data, rows, off, length):
    """The distinct byte strings among the spans data[rows[i], off[i]:off[i] + length[i]]: (first, group), the
    span first to hold each and, for each span, which of them it holds (span i == span first[group[i]])."""
    data = np.ascontiguousarray(data, np.uint8)
    rows, off, length = (np.ascontiguousarray(a, np.int64) for a in (rows, off, length))
    if len(rows) and (rows.min() < 0 or rows.max() >= len(data) or off.min() < 0 or length.min() < 0
                      or (off + length).max() > data.shape[1]):
        raise IndexError("span out of range")
    first, group = np.empty(len(rows), np.int64), np.empty(len(rows), np.int64)
    slots = np.empty(1 << (2 * len(rows)).bit_length(), np.int64)
    k = _distinct_spans(len(rows), _ptr(data, np.uint8), data.shape[1], _ptr(rows), _ptr(off), _ptr(length),
                        _ptr(slots), len(slots), _ptr(first), _ptr(group))
    return first[:k], group


_dns_questions = declare("dns_questions", _I, _P, _I, _P, _P, _I, _P, _P, _P, _P, _P)


def dns_questions(data, lengths, tcp, response: bool, entropy: bool = True):
    """(id, name length, longest label, question type, name entropy) of the DNS message opening each row;
    id -1 where there is none; entropy None unless asked for (see dns.c)."""
    data = np.ascontiguousarray(data, np.uint8)
    lengths = np.ascontiguousarray(lengths, np.int64)
    tcp = np.ascontiguousarray(tcp, np.bool_)
    m = len(data)
    out = [np.zeros(m, np.int64) for _ in range(4)] + [np.zeros(m, np.float64) if entropy else None]
    _dns_questions(m, _ptr(data, np.uint8), data.shape[1], _ptr(lengths), _ptr(tcp, np.bool_), int(response),
                   *(None if a is None else _ptr(a, a.dtype) for a in out))
    return out


_sequence_positions = declare("sequence_positions", _I, _P, _I, _P, _I, _P)


def sequence_positions(seq_dir, n_seq, k):
    """(2, k, m): position of each row's first k payload packets from each direction among its first n_seq
    (seq_dir, m x width directions), -1 past the last (see sequence.c)."""
    seq_dir = np.ascontiguousarray(seq_dir, np.int8)
    n_seq = np.ascontiguousarray(n_seq, np.int64)
    out = np.empty((2, k, len(seq_dir)), np.int64)
    _sequence_positions(len(seq_dir), _ptr(seq_dir, np.int8), seq_dir.shape[1], _ptr(n_seq), k, _ptr(out))
    return out


_cell_share = declare("cell_share", _I, _P, _P, _I, _P, _I, _I, _P)


def cell_share(seq_len, seq_dir, n_seq, record_sizes):
    """Per row, the share of responder payload packets (of the first n_seq) whose size is a multiple of either
    of the two `record_sizes`; 0 where there is none (see sequence.c)."""
    seq_len = np.ascontiguousarray(seq_len, np.int32)
    seq_dir = np.ascontiguousarray(seq_dir, np.int8)
    n_seq = np.ascontiguousarray(n_seq, np.int64)
    out = np.empty(len(seq_len), np.float64)
    _cell_share(len(seq_len), _ptr(seq_len, np.int32), _ptr(seq_dir, np.int8), seq_len.shape[1], _ptr(n_seq),
                *record_sizes, _ptr(out, np.float64))
    return out


_sequence_bursts = declare("sequence_bursts", _I, _P, _P, _I, _P, _P, _P)


def sequence_bursts(seq_len, seq_dir, n_seq):
    """(sizes, directions), each (m, width): the payload bursts among each row's first n_seq packets, size 0
    and direction -1 past the last (see sequence.c)."""
    seq_len = np.ascontiguousarray(seq_len, np.int32)
    seq_dir = np.ascontiguousarray(seq_dir, np.int8)
    n_seq = np.ascontiguousarray(n_seq, np.int64)
    sizes, dirs = np.empty(seq_len.shape, np.int64), np.empty(seq_len.shape, np.int64)
    _sequence_bursts(len(seq_len), _ptr(seq_len, np.int32), _ptr(seq_dir, np.int8), seq_len.shape[1], _ptr(n_seq),
                     _ptr(sizes), _ptr(dirs))
    return sizes, dirs



_inner_handshakes = declare("inner_handshakes", _I, _P, _P, _P, _I, _P, _I, _I, _P, _I, _P, _P, _P, _P)


def inner_handshakes(sequences, rows, first, stop, hello, flight, finished):
    """(level, start, sizes (n, 3)): for each of `rows` of the payload sequences (seq_len, seq_dir, n_seq), the
    burst start in [first, stop) with the most parts of an inner TLS handshake shape (a client burst in the
    `hello` size range, a server burst of at least `flight`, a client burst in the `finished` range, in a row),
    how many, and the three bursts' sizes (see sequence.c)."""
    if stop + 2 > 16:
        raise ValueError("inner_handshakes looks at the first 16 bursts")
    seq_len, seq_dir, n_seq = sequences
    seq_len = np.ascontiguousarray(seq_len, np.int32)
    seq_dir = np.ascontiguousarray(seq_dir, np.int8)
    n_seq = np.ascontiguousarray(n_seq, np.int64)
    rows = np.ascontiguousarray(rows, np.int64)
    hello, finished = np.array(hello, np.int64), np.array(finished, np.int64)
    n = len(rows)
    level, start, sizes = np.empty(n, np.int64), np.empty(n, np.int64), np.empty((n, 3), np.int64)
    _inner_handshakes(n, _ptr(rows), _ptr(seq_len, np.int32), _ptr(seq_dir, np.int8), seq_len.shape[1], _ptr(n_seq),
                      first, stop, _ptr(hello), flight, _ptr(finished), _ptr(level), _ptr(start), _ptr(sizes))
    return level, start, sizes

_websocket_payloads = declare("websocket_payloads", _I, _P, _I, _P, _P, _P, _P, _P)


def websocket_payloads(data, lengths, rows):
    """(kind, size, byte counts (n, 256)) of what follows the WebSocket upgrade request opening each of `rows`
    of `data`: kind 1 unframed bytes, 2 a binary frame's unmasked payload, 0 neither (see websocket.c)."""
    data = np.ascontiguousarray(data, np.uint8)
    lengths = np.ascontiguousarray(lengths, np.int64)
    rows = np.ascontiguousarray(rows, np.int64)
    kind, size = np.empty(len(rows), np.int64), np.empty(len(rows), np.int64)
    counts = np.empty((len(rows), 256), np.int64)
    _websocket_payloads(len(rows), _ptr(data, np.uint8), data.shape[1], _ptr(lengths), _ptr(rows), _ptr(kind),
                        _ptr(size), _ptr(counts))
    return kind, size, counts


class _Packets(ctypes.Structure):
    """packets.h's Packets: the first payload packets of all the rows of a view, as the handshake kernels read them."""
    _fields_ = [("heads", _P), ("n_heads", _I), ("head_bytes", _I), ("seq_len", _P), ("seq_cap", _P), ("width", _I),
                ("n_seq", _P), ("positions", _P), ("k", _I), ("m", _I)]


_PACKETS = (ctypes.POINTER(_Packets),)


def _packet_arguments(packets, rows):
    """The arguments the handshake kernels (packets.h) read a view's packets from (SignatureView.packets): heads,
    sizes, bytes held, packets per row and positions, of all the rows, and the `rows` to test."""
    heads, seq_len, seq_cap, n_seq, positions = packets
    if not 32 <= heads.shape[2] <= 256 or positions.shape[1] < 4:
        raise ValueError("the handshake kernels read heads of 32 to 256 bytes, and each direction's first 4 packets")
    heads = np.ascontiguousarray(heads, np.uint8)
    seq_len, seq_cap = np.ascontiguousarray(seq_len, np.int32), np.ascontiguousarray(seq_cap, np.int32)
    n_seq, positions = np.ascontiguousarray(n_seq, np.int64), np.ascontiguousarray(positions, np.int64)
    rows = np.ascontiguousarray(rows, np.int64)
    struct = _Packets(_ptr(heads, np.uint8), heads.shape[1], heads.shape[2], _ptr(seq_len, np.int32),
                      _ptr(seq_cap, np.int32), seq_len.shape[1], _ptr(n_seq), _ptr(positions), positions.shape[1],
                      positions.shape[2])
    # The arrays are returned with the pointers: they must outlive the call.
    keep = (heads, seq_len, seq_cap, n_seq, positions, rows, struct)
    return keep, (len(rows), _ptr(rows)), (ctypes.byref(struct),)


_openvpn_handshakes = declare("openvpn_handshakes", _I, _P, _P, *_PACKETS, _P, _P, _P, _P)


def openvpn_handshakes(packets, rows, proto):
    """(level, client opcode, echo offset, kept) of OpenVPN's hard-reset exchange for each of `rows` (transport
    `proto`): level 3 exchange with the session id echoed or kept, 2 exchange, 1 client reset alone, 0 none
    (see openvpn.c)."""
    keep, (n, rows_ptr), arrays = _packet_arguments(packets, rows)
    proto = np.ascontiguousarray(proto, np.int64)
    out = [np.empty(n, np.int64) for _ in range(4)]
    _openvpn_handshakes(n, rows_ptr, _ptr(proto), *arrays, *(_ptr(a) for a in out))
    return out


def _scored(kernel, packets, rows, proto, n_facts=0, *before):
    """Run a handshake kernel (packets.h) that scores each of `rows` (IP protocol `proto`) and notes `n_facts`
    integers about it, if any; `before`: its arguments between proto and the packets. Returns the scores, and the
    facts (n, n_facts) if any."""
    keep, (n, rows_ptr), arrays = _packet_arguments(packets, rows)
    proto = np.ascontiguousarray(proto, np.int64)
    score, facts = np.empty(n, np.float64), np.empty((n, n_facts), np.int64)
    kernel(n, rows_ptr, _ptr(proto), *before, *arrays, _ptr(score, np.float64), *((_ptr(facts),) if n_facts else ()))
    return (score, facts) if n_facts else score


_ipsec_handshakes = declare("ipsec_handshakes", _I, _P, _P, _P, *_PACKETS, _P, _P)
IPSEC_FACTS = ("ike", "evidence", "marker", "version", "exchange", "answered", "linked", "spi")


def ipsec_handshakes(packets, rows, proto, payload_packets):
    """(score, facts (n, 8), columns IPSEC_FACTS) of IPsec for each of `rows` (IP protocol `proto`, payload
    packets from each direction `payload_packets`): IKE exchanges, ESP in UDP, ESP and AH (see ipsec.c)."""
    payload_packets = np.ascontiguousarray(payload_packets, np.int64)
    return _scored(_ipsec_handshakes, packets, rows, proto, len(IPSEC_FACTS), _ptr(payload_packets))


_socks_handshakes = declare("socks_handshakes", _I, _P, _P, *_PACKETS, _P, _P)
SOCKS_FACTS = ("evidence", "offered", "chosen", "request", "command", "address_type")


def socks_handshakes(packets, rows, proto):
    """(score, facts (n, 6), columns SOCKS_FACTS) of SOCKS4 and SOCKS5 for each of `rows` (IP protocol `proto`)
    (see socks.c)."""
    return _scored(_socks_handshakes, packets, rows, proto, len(SOCKS_FACTS))


_wireguard_handshakes = declare("wireguard_handshakes", _I, _P, _P, *_PACKETS, _P, _P)


def wireguard_handshakes(packets, rows, proto):
    """(score, evidence): WireGuard for each of `rows` (IP protocol `proto`); evidence 1 linked handshake, 2
    transport data both ways, 0 none (see wireguard.c)."""
    score, evidence = _scored(_wireguard_handshakes, packets, rows, proto, 1)
    return score, evidence[:, 0]


_l2tp_handshakes = declare("l2tp_handshakes", _I, _P, _P, *_PACKETS, _P, _P)


def l2tp_handshakes(packets, rows, proto):
    """(score, answered, version, reply size): L2TP's SCCRQ and SCCRP for each of `rows` (IP protocol `proto`)
    (see l2tp_pptp.c)."""
    score, facts = _scored(_l2tp_handshakes, packets, rows, proto, 3)
    return (score, *facts.T)


_pptp_handshakes = declare("pptp_handshakes", _I, _P, _P, *_PACKETS, _P, _P)


def pptp_handshakes(packets, rows, proto):
    """(score, evidence): PPTP for each of `rows` (IP protocol `proto`); evidence 1 control exchange, 2 enhanced
    GRE, 0 none (see l2tp_pptp.c)."""
    score, evidence = _scored(_pptp_handshakes, packets, rows, proto, 1)
    return score, evidence[:, 0]


_quic_handshakes = declare("quic_handshakes", _I, _P, _P, *_PACKETS, _P)
_dtls_handshakes = declare("dtls_handshakes", _I, _P, _P, *_PACKETS, _P)
_stun_handshakes = declare("stun_handshakes", _I, _P, _P, *_PACKETS, _P)


def quic_handshakes(packets, rows, proto):
    """Score of QUIC's Initial and answer for each of `rows` (IP protocol `proto`) (see udp_handshakes.c)."""
    return _scored(_quic_handshakes, packets, rows, proto)


def dtls_handshakes(packets, rows, proto):
    """Score of a DTLS ClientHello and answer for each of `rows` (IP protocol `proto`) (see udp_handshakes.c)."""
    return _scored(_dtls_handshakes, packets, rows, proto)


def stun_handshakes(packets, rows, proto):
    """Score of STUN messages both ways for each of `rows` (IP protocol `proto`) (see udp_handshakes.c)."""
    return _scored(_stun_handshakes, packets, rows, proto)


_byte_shares = declare("byte_shares", _I, _P, _P, _P, _P, restype=_I)


def byte_shares(counts, sizes):
    """(shares, distinct): the shares of the bytes present in each payload (`counts` (n, 256) of its `sizes`
    bytes), count / size in byte order, payload after payload, and how many each has (see websocket.c)."""
    counts = np.ascontiguousarray(counts, np.int64)
    sizes = np.ascontiguousarray(sizes, np.int64)
    if counts.shape[1:] != (256,) or len(sizes) != len(counts):
        raise ValueError("byte_shares needs 256 counts and a size per payload")
    shares, distinct = np.empty(counts.size, np.float64), np.empty(len(counts), np.int64)
    k = _byte_shares(len(counts), _ptr(counts), _ptr(sizes), _ptr(shares, np.float64), _ptr(distinct))
    return shares[:k], distinct


_segment_sums = declare("segment_sums", _I, _P, _P, _P)


def segment_sums(terms, lengths):
    """The sums of consecutive segments of `terms` (float64), `lengths` long each, equal to numpy's sums of those
    slices bit for bit (see websocket.c)."""
    terms = np.ascontiguousarray(terms, np.float64)
    lengths = np.ascontiguousarray(lengths, np.int64)
    if lengths.sum() > len(terms):
        raise ValueError("segments past the end of the terms")
    out = np.empty(len(lengths), np.float64)
    _segment_sums(len(lengths), _ptr(terms, np.float64), _ptr(lengths), _ptr(out, np.float64))
    return out


_fake_tls_finished = declare("fake_tls_finished", _I, _P, _I, _P, _P, _I, _P)


def fake_tls_finished(data, lengths, rows, finished_at_most):
    """Per row of `rows` of server stream prefixes: the length of the handshake record after ServerHello and
    ChangeCipherSpec where it is longer than `finished_at_most`, else -1 (see fake_tls.c)."""
    if data.shape[1] < 5:
        raise ValueError("fake_tls_finished reads the first record's header")
    data = np.ascontiguousarray(data, np.uint8)
    lengths = np.ascontiguousarray(lengths, np.int64)
    rows = np.ascontiguousarray(rows, np.int64)
    out = np.empty(len(rows), np.int64)
    _fake_tls_finished(len(rows), _ptr(data, np.uint8), data.shape[1], _ptr(lengths), _ptr(rows), finished_at_most,
                       _ptr(out))
    return out


_anyconnect_resumed = declare("anyconnect_resumed", _I, _P, _P, _I, _P, *_PACKETS, _P)


def anyconnect_resumed(packets, rows, server, server_lengths):
    """Per each of `rows`: 1 where the server's DTLS flight (its stream prefix `server`, then the next three
    packets' heads) goes from ServerHello to ServerHelloDone or ChangeCipherSpec without a Certificate, else 0
    (see anyconnect.c)."""
    keep, (n, rows_ptr), arrays = _packet_arguments(packets, rows)
    server = np.ascontiguousarray(server, np.uint8)
    server_lengths = np.ascontiguousarray(server_lengths, np.int64)
    out = np.empty(n, np.int64)
    _anyconnect_resumed(n, rows_ptr, _ptr(server, np.uint8), server.shape[1], _ptr(server_lengths), *arrays, _ptr(out))
    return out


_sstp_handshakes = declare("sstp_handshakes", _I, _P, _P, _P, _I, _P, _P, _I, _P, _P, _I, _P, _I, *_PACKETS, _P, _P)


def sstp_handshakes(packets, rows, proto, client, server, request: bytes, answer: bytes):
    """(score, evidence) of SSTP for each of `rows` (IP protocol `proto`): evidence 1 where the client stream
    (`client`: bytes, lengths) opens with `request` and the server's with `answer`, 2 for SSTP control framing
    both ways, 0 none (see sstp.c)."""
    (client, client_lengths), (server, server_lengths) = client, server
    if client.shape[1] < 3:
        raise ValueError("sstp_handshakes reads the first 3 bytes of the client prefixes")
    client, server = np.ascontiguousarray(client, np.uint8), np.ascontiguousarray(server, np.uint8)
    client_lengths = np.ascontiguousarray(client_lengths, np.int64)
    server_lengths = np.ascontiguousarray(server_lengths, np.int64)
    request, answer = np.frombuffer(request, np.uint8), np.frombuffer(answer, np.uint8)
    score, evidence = _scored(_sstp_handshakes, packets, rows, proto, 1, _ptr(client, np.uint8), client.shape[1],
                              _ptr(client_lengths), _ptr(server, np.uint8), server.shape[1], _ptr(server_lengths),
                              _ptr(request, np.uint8), len(request), _ptr(answer, np.uint8), len(answer))
    return score, evidence[:, 0]
