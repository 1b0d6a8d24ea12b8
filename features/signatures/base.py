"""The signature contract and the view of early flow data that signatures read.

A signature is declared once (name, kind, well-known ports, extra feature columns) with a `detect`
function that works on all ended flows at once: arrays of the first payload packets' sizes, directions
and 64-byte heads, the stream prefixes, and the feature columns computed before it. It returns a score in
[0, 1] per flow (it fires at >= 0.5) and evidence text for the flows where it fires (protocol signatures give
none: only a VPN, proxy or tunnel signature's evidence is shown).

Signatures must see both sides of an exchange before firing (a one-sided byte match is how WireGuard and
OpenVPN analyzers of other tools misfired on DNS), so most scores stay below 0.5 on one packet alone.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cached_property
from typing import Callable

import numpy as np

from features import native
from features.extract import _kernel as k
from features.extract.state import RowsSubset

TCP, UDP = 6, 17
FIRES = 0.5
KINDS = ("vpn", "proxy", "tunnel", "protocol")
PACKETS_LOCATED = 4            # SignatureView.index knows each direction's first payload packets, this many
PREFIX_START = 128             # bytes of SignatureView.prefix_start: evidence lines and every literal tested fit


@dataclass
class Detection:
    score: np.ndarray                                  # (m,) in [0, 1]
    evidence: dict = field(default_factory=dict)       # row -> text, for rows that fire
    features: dict = field(default_factory=dict)       # extra columns declared by the signature


@dataclass(frozen=True)
class Signature:
    name: str
    title: str
    kind: str                                          # vpn, proxy, tunnel, or protocol (recognised, not a VPN)
    summary: str
    detect: Callable[["SignatureView"], Detection]
    ports: tuple = ()                                  # well-known (transport, port) pairs
    features: tuple = ()                               # extra columns: (name, dtype, unit, meaning)
    model_input: bool = True                           # its score is a model feature (see features.schema)


class SignatureView:
    """Early data of m ended flows, as arrays; built once and shared by every signature."""

    def __init__(self, rows, columns: dict, root: "SignatureView | None" = None, at: np.ndarray | None = None):
        # A restricted view reads packets straight from its root's arrays at its flows' rows `at`: gathering
        # its flows' rows first would copy 1 KB of heads a flow for the few packets signatures look at.
        self.rows = rows
        self.columns = columns
        self.m = len(rows)
        self._root = root or self
        self._at = np.arange(self.m) if at is None else at
        self.proto = rows.proto
        self._cache = {}
        self._index_ids = set()

    # The arrays below are made on first use: a view restricted to a signature's candidates often needs
    # none of them.
    @cached_property
    def n_sequence(self):
        """Payload packets recorded per flow: the first this many of rows.seq_len and seq_dir are its."""
        return self.rows.n_sequence if self._root is self else self._root.n_sequence[self._at]

    @cached_property
    def _positions(self):
        if self._root is self:
            return native.sequence_positions(self.rows.seq_dir, self.n_sequence, PACKETS_LOCATED)
        return np.take(self._root._positions, self._at, axis=2)

    @property
    def n_heads(self):
        return self._root.rows.heads.shape[1]

    def restricted(self, mask: np.ndarray) -> "SignatureView":
        """The same view over only the flows in `mask`: signatures check cheap candidates first and run
        their full tests on those alone."""
        where = np.flatnonzero(mask)
        return SignatureView(RowsSubset(self.rows, where), _LazyColumns(self.columns, where), self._root,
                             self._at[where])

    def memo(self, key, make):
        """make(), computed once per view: signatures ask for the same packets (first from each side, ...)
        and the same tests."""
        value = self._cache.get(key)
        if value is None:
            value = self._cache[key] = make()
        return value

    # -- locating packets ----------------------------------------------------------------------------

    def index(self, direction: int, nth: int = 0) -> np.ndarray:
        """Sequence position of each flow's nth (< PACKETS_LOCATED) payload packet from `direction` (0 initiator),
        -1 if none."""
        key = ("index", direction, nth)
        if key not in self._cache:
            self._index_ids.add(id(self.memo(key, lambda: self._positions[direction, nth])))
        return self._cache[key]

    def head(self, idx: np.ndarray) -> np.ndarray:
        """(m, head_bytes) first bytes of the packet at each flow's `idx` (zeros where idx < 0 or past the heads)."""
        if id(idx) in self._index_ids:       # a memoised index array: its id cannot be reused
            return self.memo(("head", id(idx)), lambda: self._head(idx))
        return self._head(idx)

    def _head(self, idx):
        ok = (idx >= 0) & (idx < self.n_heads)
        # np.take of whole rows on the flat (flow, packet) index: numpy's indexing with two arrays copies the
        # same heads three times slower.
        heads = self._root.rows.heads
        out = np.take(heads.reshape(-1, heads.shape[2]), self._at * self.n_heads + _clip(idx, self.n_heads - 1), axis=0)
        out[~ok] = 0
        return out

    def held(self, idx: np.ndarray) -> np.ndarray:
        """Bytes held in the head at idx (0 where none)."""
        if id(idx) in self._index_ids:
            return self.memo(("held", id(idx)), lambda: self._held(idx))
        return self._held(idx)

    def _held(self, idx):
        ok = (idx >= 0) & (idx < self.n_heads) & (idx < self.n_sequence)
        rows = self._root.rows
        held = np.minimum(rows.seq_cap[self._at, _clip(idx, self.n_heads - 1)], rows.heads.shape[2])
        return np.where(ok, held, 0)

    def size(self, idx: np.ndarray) -> np.ndarray:
        """Payload size of the packet at idx (0 where none)."""
        # Evidence text asks for the size of one flow's packet at a time: memoised like heads.
        if id(idx) in self._index_ids:
            return self.memo(("size", id(idx)), lambda: self._size(idx))
        return self._size(idx)

    def _size(self, idx):
        seq_len = self._root.rows.seq_len
        column = _clip(idx, seq_len.shape[1] - 1)
        return np.where((idx >= 0) & (column < self.n_sequence), seq_len[self._at, column], 0).astype(np.int64)

    def packets(self):
        """(heads, seq_len, seq_cap, n_sequence, positions) of the root view, and this view's flows' rows in
        them: what a kernel needs to read the packets that head, size and held read, in place."""
        root = self._root
        return (root.rows.heads, root.rows.seq_len, root.rows.seq_cap, root.n_sequence, root._positions), self._at

    def sequences(self):
        """(seq_len, seq_dir, n_sequence) of the root view, and this view's flows' rows in them: for kernels that
        read a few flows' payload sequences in place."""
        root = self._root
        return (root.rows.seq_len, root.rows.seq_dir, root.n_sequence), self._at

    def prefix(self, direction: int):
        return self.rows.prefix(direction)

    def prefix_start(self, direction: int):
        """(bytes, lengths) of the first PREFIX_START bytes of a direction's stream prefix: all that the tests of
        how a stream opens read. A restricted view gathers that much of its flows' prefixes, not all 1-2 KB."""
        data, lengths = self._root.rows.prefix(direction)
        if self._root is self:
            return data[:, :PREFIX_START], lengths
        return self.memo(("prefix start", direction), lambda: (data[self._at, :PREFIX_START], lengths[self._at]))

    def prefix_in_place(self, direction: int):
        """(bytes, lengths) of a direction's stream prefixes in the root view, and this view's flows' rows in them:
        for kernels that read a few flows' whole prefixes."""
        return self._root.rows.prefix(direction), self._at

    def http_answered(self) -> np.ndarray:
        """TCP flows whose server stream opens with "HTTP/": what every HTTP-based signature checks first, and
        few flows pass, so they look only at these."""
        return self.memo("http", lambda: (self.proto == TCP) & startswith(*self.prefix(1), b"HTTP/"))

    def both_ssh(self) -> np.ndarray:
        """TCP flows where both sides open with an SSH banner."""
        return self.memo("ssh", lambda: (self.proto == TCP) & startswith(*self.prefix(0), b"SSH-")
                          & startswith(*self.prefix(1), b"SSH-"))

    def bursts(self):
        """Payload bursts among the first payload packets: (sizes, directions) of shape (m, K), -1 direction
        past the last burst."""
        return native.sequence_bursts(self.rows.seq_len, self.rows.seq_dir, self.n_sequence)

    @property
    def payload_packets(self):
        return self.rows.I[:, k.PL_PKTS:k.PL_PKTS + 2]

    @property
    def opcodes(self):
        return self.rows.opcodes


def _clip(idx, top):
    # np.clip's Python wrapper costs more than the clipping on these short arrays.
    return np.minimum(np.maximum(idx, 0), top)


class _LazyColumns(dict):
    """Feature columns restricted to some flows (their rows `where`), each gathered on first use: a boolean mask
    over all flows would read every one of them again for each column."""

    def __init__(self, columns: dict, where: np.ndarray):
        super().__init__()
        self._columns, self._where = columns, where

    def __missing__(self, name):
        value = self[name] = np.asarray(self._columns[name])[self._where]
        return value


# -- byte helpers over (m, width) arrays ----------------------------------------------------------------

def on_candidates(view: SignatureView, candidates: np.ndarray, detect, shared: str = "", **defaults) -> Detection:
    """Run `detect` on the candidate flows only and spread its result back over the whole view; extra
    feature columns take `defaults` (name -> value) on the other flows. Signatures with the same candidates
    name them `shared`: the view over them is then built once."""
    if not candidates.any():
        return Detection(np.zeros(view.m), {}, {n: np.full(view.m, v) for n, v in defaults.items()})
    where = np.flatnonzero(candidates)
    if shared:
        part = detect(view.memo(("restricted", shared), lambda: view.restricted(candidates)))
    else:
        part = detect(view.restricted(candidates))
    score = np.zeros(view.m)
    score[where] = part.score
    features = {}
    for name, values in part.features.items():
        full = np.full(view.m, defaults.get(name, 0), dtype=np.asarray(values).dtype)
        full[where] = values
        features[name] = full
    rows = where[np.fromiter(part.evidence, np.int64, len(part.evidence))].tolist()
    return Detection(score, dict(zip(rows, part.evidence.values())), features)


def u8(data, pos):
    return data[:, pos].astype(np.int64)


def u16(data, pos):
    # The two bytes read as one big-endian integer: a shift and an or per byte cost five times more.
    return data[:, pos:pos + 2].view(">u2")[:, 0].astype(np.int64)


def one_of(values, choices) -> np.ndarray:
    """np.isin(values, choices) for a few literal choices, one comparison each: np.isin's own machinery costs
    several times more than the test on these arrays."""
    out = np.zeros(len(values), bool)
    for choice in choices:
        out |= values == choice
    return out


def equal(data, pos, literal: bytes):
    return (data[:, pos:pos + len(literal)] == np.frombuffer(literal, np.uint8)).all(1)


def startswith(data, lengths, literal: bytes):
    out = np.zeros(len(data), bool)
    if data.shape[1] < len(literal):
        return out
    # The first byte rules out most rows: the whole literal is compared on the others alone.
    rows = np.flatnonzero(data[:, 0] == literal[0])
    out[rows] = (np.asarray(lengths)[rows] >= len(literal)) & equal(data[rows, :len(literal)], 0, literal)
    return out


def startswith_any(data, lengths, literals):
    out = np.zeros(len(data), bool)
    for literal in literals:
        out |= startswith(data, lengths, literal)
    return out


def find_in_rows(data, lengths, rows, needle: bytes) -> dict:
    """Offset of `needle` in each of the candidate `rows` (row -> offset, only rows where it occurs).
    Candidates are pre-filtered by a vectorised check, so this loop stays short."""
    out = {}
    for r in rows:
        at = data[r, :lengths[r]].tobytes().find(needle)
        if at >= 0:
            out[int(r)] = at
    return out


def evidence_texts(mask, format, *arrays) -> dict:
    """{row: format(*the values of `arrays` at it)} for each row in `mask`, the values as Python values (formatting
    numpy scalars is several times slower). `format` is called once per distinct combination: the flows that fire in
    a drain repeat a few, and formatting costs more than looking a text up."""
    rows = np.flatnonzero(mask)
    if not len(rows):                               # most signatures fire on no flow of a drain
        return {}
    return evidence_at(rows, format, *(np.asarray(a)[rows] for a in arrays))


def evidence_at(rows, format, *columns) -> dict:
    """evidence_texts for the rows `rows`, the values of each of `columns` at them."""
    values = list(zip(*(c.tolist() for c in columns)))
    keys = values
    if any(c.dtype.kind == "f" or c.ndim > 1 for c in columns):
        # Floats are told apart by their bits (0.0 equals -0.0 but formats apart), rows of several values as tuples.
        keys = zip(*(_hashable(c.view(f"i{c.itemsize}") if c.dtype.kind == "f" else c) for c in columns))
    texts, out = {}, {}
    for r, key, value in zip(np.asarray(rows).tolist(), keys, values):
        text = texts.get(key)
        if text is None:
            text = texts[key] = format(*value)
        out[r] = text
    return out


def _hashable(values: np.ndarray) -> list:
    return values.tolist() if values.ndim == 1 else list(map(tuple, values.tolist()))


def payloads(data, lengths, rows, limit) -> list:
    """data[r, :lengths[r]] of each of `rows`, as bytes, up to `limit` bytes: one copy for all of them."""
    width = min(limit, data.shape[1])
    block = data[rows, :width].tobytes()
    return [block[i * width:i * width + n] for i, n in enumerate(np.minimum(np.asarray(lengths)[rows], width).tolist())]


def lines(data, lengths, rows, limit=120) -> list:
    """First line of the text payload of each of `rows`, for evidence; each distinct payload is read once (requests
    and answers repeat)."""
    out, known = [], {}
    for text in payloads(data, lengths, rows, limit):
        line = known.get(text)
        if line is None:
            line = known[text] = text.split(b"\r\n")[0].split(b"\n")[0].decode("ascii", "replace")
        out.append(line)
    return out
