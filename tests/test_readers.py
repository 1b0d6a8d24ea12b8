"""Readers: every pcap and pcapng variation, compression, directories, and bad input."""

import bz2
import gzip
import lzma
import subprocess
import sys

import pytest
from captures import pcap_bytes, pcapng_section, tcp_session

from features import CaptureError, FlowReader, read_flows

SESSION = tcp_session()


def _one_flow(path):
    df = read_flows(path, on_error="raise")
    assert len(df) == 1
    return df.iloc[0]


@pytest.mark.parametrize("big_endian", [False, True])
@pytest.mark.parametrize("nanosecond", [False, True])
def test_pcap_byte_orders_and_resolutions(write, big_endian, nanosecond):
    frames = [(1_700_000_000.123456789 if nanosecond else 1_700_000_000.123456, SESSION[0][1])] + SESSION[1:]
    flow = _one_flow(write("s.pcap", pcap_bytes(frames, big_endian=big_endian, nanosecond=nanosecond)))
    assert flow.packets == len(SESSION)
    expected = 1_700_000_000.123456789 if nanosecond else 1_700_000_000.123456
    assert flow.first_seen == pytest.approx(expected, abs=1e-9)
    assert flow.bytes == sum(len(f) for _, f in SESSION)


@pytest.mark.parametrize("opener,suffix", [(gzip.compress, ".gz"), (bz2.compress, ".bz2"), (lzma.compress, ".xz")])
def test_compressed(write, opener, suffix):
    flow = _one_flow(write("s.pcap" + suffix, opener(pcap_bytes(SESSION))))
    assert flow.packets == len(SESSION)


@pytest.mark.parametrize("kind", ["pcap", "pcapng"])
def test_batches_kept_by_the_consumer_keep_their_bytes_while_chunk_buffers_are_reused(write, kind):
    from features.readers import iter_batches
    frames = [(1_700_000_000 + i / 100, frame + bytes([i % 256]) * 40) for i, (_, frame) in enumerate(SESSION * 60)]
    data = pcap_bytes(frames) if kind == "pcap" else pcapng_section([(1, None)], [(0, ts, f) for ts, f in frames])
    path = write(f"many.{kind}", data)

    def packets(batches):
        return [bytes(b.data[o:o + c]) for b in batches for o, c in zip(b.offset, b.caplen)]

    expected = [frame for _, frame in frames]
    # Small chunks and batches: many refills, with and without the consumer keeping every batch.
    assert packets(iter_batches(path, batch_size=7, chunk_size=2048)) == expected
    kept = list(iter_batches(path, batch_size=7, chunk_size=2048))
    assert packets(kept) == expected


def test_pcapng_sections_interfaces_resolutions_and_unknown_blocks(write):
    raw = [f for _, f in tcp_session(ether=False)]
    eth = [f for _, f in SESSION]
    first = pcapng_section([(1, None), (101, 9)], [(0, 10.5, eth[0]), (1, 10.6, raw[1])],
                           extra_blocks=[(0x0BAD, b"unknown block body"), (5, b"\0" * 8)])
    second = pcapng_section([(101, 0x80 | 20)], [(0, 10.7 + i * 0.01, f) for i, f in enumerate(raw[2:])],
                            big_endian=True)
    df = read_flows(write("s.pcapng", first + second), on_error="raise")
    assert len(df) == 1
    flow = df.iloc[0]
    assert flow.packets == len(SESSION)
    assert flow.first_seen == pytest.approx(10.5)
    assert flow.last_seen == pytest.approx(10.7 + (len(raw) - 3) * 0.01, abs=1e-6)


def test_directory_recursive_and_several_files(tmp_path):
    (tmp_path / "a" / "b").mkdir(parents=True)
    (tmp_path / "a" / "one.pcap").write_bytes(pcap_bytes(SESSION))
    (tmp_path / "a" / "b" / "two.pcap.gz").write_bytes(gzip.compress(pcap_bytes(SESSION)))
    (tmp_path / "a" / "notes.txt").write_text("not a capture")
    df = read_flows(tmp_path / "a", on_error="raise")
    assert len(df) == 2
    assert sorted(df.capture.str.rsplit("/", n=1).str[-1]) == ["one.pcap", "two.pcap.gz"]
    both = read_flows([tmp_path / "a" / "one.pcap", tmp_path / "a" / "b" / "two.pcap.gz"], on_error="raise")
    assert len(both) == 2


def _damaged(write, name, data):
    path = write(name, data)
    reader = FlowReader(path, on_error="collect")
    df = reader.to_pandas()
    assert len(reader.errors) == 1
    return df, reader.errors[0]


def test_empty_file(write):
    _, error = _damaged(write, "e.pcap", b"")
    assert "empty file" in str(error)


def test_wrong_magic(write):
    _, error = _damaged(write, "w.pcap", b"GIF89a" + b"\0" * 100)
    assert "not a pcap or pcapng file" in str(error) and error.offset == 0


def test_truncated_final_record_keeps_earlier_flows(write):
    data = pcap_bytes(SESSION)
    df, error = _damaged(write, "t.pcap", data[:-10])
    assert "truncated record" in str(error)
    assert df.packets.sum() == len(SESSION) - 1
    assert error.offset == len(data) - 16 - len(SESSION[-1][1])


def test_caplen_over_snaplen(write):
    frames = SESSION[:3] + [(SESSION[3][0], SESSION[3][1] + b"\0" * 100)]
    df, error = _damaged(write, "c.pcap", pcap_bytes(frames, snaplen=120))
    assert "exceeds the snap length 120" in str(error)
    assert df.packets.sum() == 3


def test_caplen_over_256k(write):
    header = pcap_bytes(SESSION[:2], snaplen=0)
    bogus = b"\0" * 8 + (300_000).to_bytes(4, "little") * 2
    df, error = _damaged(write, "h.pcap", header + bogus + b"\0" * 64)
    assert "exceeds 256 KiB" in str(error) and error.offset == len(header)
    assert df.packets.sum() == 2


def test_garbage_in_the_middle(write):
    good = pcap_bytes(SESSION[:4])
    df, error = _damaged(write, "g.pcap", good + b"\xff" * 64 + pcap_bytes(SESSION[4:])[24:])
    assert error.offset == len(good)
    assert df.packets.sum() == 4


def test_truncated_pcapng(write):
    data = pcapng_section([(1, None)], [(0, 1.0 + i, f) for i, (_, f) in enumerate(SESSION)])
    df, error = _damaged(write, "t.pcapng", data[:-7])
    assert "truncated" in str(error)
    assert df.packets.sum() == len(SESSION) - 1


def test_unsupported_link_type(write):
    _, error = _damaged(write, "u.pcap", pcap_bytes(SESSION, linktype=127))
    assert "unsupported link type 127 (IEEE802_11_RADIOTAP)" in str(error)


def test_directory_without_captures(tmp_path):
    (tmp_path / "readme.txt").write_text("nothing here")
    reader = FlowReader(tmp_path, on_error="collect")
    assert reader.to_pandas().empty
    assert "no capture files found" in str(reader.errors[0])


def test_on_error_raise(write):
    path = write("t.pcap", pcap_bytes(SESSION)[:-3])
    with pytest.raises(CaptureError):
        read_flows(path, on_error="raise")


def test_cli_bad_input_is_one_line_exit_2_and_keeps_flows(write):
    bad = write("bad.pcap", pcap_bytes(SESSION)[:-5])
    run = subprocess.run([sys.executable, "-m", "detector.cli", "flows", "--format", "csv", str(bad)],
                         capture_output=True, text=True)
    assert run.returncode == 2
    assert run.stderr.count("\n") == 1 and "Traceback" not in run.stderr
    assert f"{bad}: truncated record" in run.stderr
    assert len(run.stdout.strip().splitlines()) == 2  # header + the flow read before the damage


def test_cli_missing_file():
    run = subprocess.run([sys.executable, "-m", "detector.cli", "flows", "/nonexistent/x.pcap"],
                         capture_output=True, text=True)
    assert run.returncode == 2 and "no such file" in run.stderr and "Traceback" not in run.stderr
