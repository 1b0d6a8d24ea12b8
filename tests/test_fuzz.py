"""Property-based tests: random and mutated bytes never crash the readers or the decoder."""

import gzip

import numpy as np
from captures import pcap_bytes, pcapng_section, tcp_session
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from features import CaptureError, FlowReader
from features.batch import PacketBatch
from features.decode import decode

SESSION = tcp_session(payloads=((0, 300), (1, 1200), (0, 40)))
VALID = {
    "pcap": pcap_bytes(SESSION),
    "pcap_be_ns": pcap_bytes(SESSION, big_endian=True, nanosecond=True),
    "pcapng": pcapng_section([(1, None), (101, 9)], [(0, 1.0 + i, f) for i, (_, f) in enumerate(SESSION)]),
}
FUZZ = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])


def _read_all(tmp_path, data, name="f.pcap"):
    path = tmp_path / name
    path.write_bytes(data)
    reader = FlowReader(path, on_error="collect")
    df = reader.to_pandas()
    assert all(isinstance(e, CaptureError) for e in reader.errors)
    assert len(df) <= len(data)  # a flow needs at least one packet, a packet at least one byte
    return df, reader


@FUZZ
@given(data=st.binary(max_size=2048))
def test_random_bytes(tmp_path, data):
    _read_all(tmp_path, data)


@FUZZ
@given(kind=st.sampled_from(sorted(VALID)), edits=st.lists(st.tuples(st.integers(0, 10_000), st.integers(0, 255)),
                                                           min_size=1, max_size=8),
       cut=st.integers(0, 10_000))
def test_mutated_captures(tmp_path, kind, edits, cut):
    data = bytearray(VALID[kind])
    for position, value in edits:
        data[position % len(data)] = value
    data = bytes(data[:max(cut, 4)]) if cut < len(data) else bytes(data)
    df, _ = _read_all(tmp_path, data)
    assert df.packets.sum() <= len(SESSION)


@FUZZ
@given(data=st.binary(min_size=4, max_size=512))
def test_random_after_valid_header(tmp_path, data):
    df, reader = _read_all(tmp_path, VALID["pcap"][:24] + data)
    assert df.packets.sum() * 16 <= len(data)


@FUZZ
@given(data=st.binary(max_size=512))
def test_gzip_of_random_bytes_and_broken_gzip(tmp_path, data):
    _read_all(tmp_path, gzip.compress(VALID["pcap"][:24] + data), "f.pcap.gz")
    _read_all(tmp_path, gzip.compress(VALID["pcap"])[: 10 + len(data) % 200], "g.pcap.gz")


@FUZZ
@given(frames=st.lists(st.binary(max_size=120), min_size=1, max_size=20),
       linktype=st.sampled_from([0, 1, 9, 12, 101, 108, 113, 228, 229, 276]))
def test_decoder_on_random_frames(frames, linktype):
    data = np.frombuffer(b"".join(frames) or b"\0", np.uint8)
    lengths = np.array([len(f) for f in frames], np.int64)
    offsets = np.concatenate([[0], np.cumsum(lengths)[:-1]]).astype(np.int64)
    batch = PacketBatch(data, offsets, lengths, lengths, np.zeros(len(frames), np.int64), np.full(len(frames), linktype))
    decoded = decode(batch)
    assert np.all(decoded.payload_captured >= 0)
    assert np.all(decoded.payload_captured <= np.maximum(lengths, 0))
