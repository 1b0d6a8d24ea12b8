"""Flow features: schema, hand-computed statistics, entropy and fully-encrypted tests, TLS fingerprints,
port-rewrite invariance, the command."""

from __future__ import annotations

import dataclasses
import gzip
import math
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from click.testing import CliRunner

from captures import pcap_bytes, tcp_session

pytest.importorskip("scapy")

from features import extract_features, feature_matrix  # noqa: E402
from features.extract import _kernel as k, bytestats, traffic  # noqa: E402
from features.extract.state import FeatureState, FlowRows  # noqa: E402
from features.flows import FLOW_COLUMNS  # noqa: E402
from features.schema import (COMPUTED_COLUMNS, FEATURE_SCHEMA, FEATURE_SCHEMA_VERSION, MODEL_FEATURES,  # noqa: E402
                             schema_frame)
from test_signatures import openvpn_udp, tcp_exchange, wireguard  # noqa: E402


def rows_of(*payloads):
    width = max(len(p) for p in payloads)
    data = np.zeros((len(payloads), width), np.uint8)
    for i, p in enumerate(payloads):
        data[i, :len(p)] = np.frombuffer(p, np.uint8)
    return data, np.array([len(p) for p in payloads])


# -- schema ----------------------------------------------------------------------------------------------

def test_schema_is_one_table_without_forbidden_inputs():
    names = [f.name for f in FEATURE_SCHEMA]
    assert len(names) == len(set(names))
    assert FEATURE_SCHEMA_VERSION
    for f in FEATURE_SCHEMA:
        assert f.dtype in ("float32", "int32", "int8", "string") and f.unit and f.meaning
        assert f.direction in ("src2dst", "dst2src", "both", "-")
    forbidden = ("ip", "port", "ttl", "ip_id", "addr")
    for name in MODEL_FEATURES:
        parts = name.split("_")
        if name not in ("well_known_vpn_port", "tls_sni_is_ip"):  # a flag on the SNI text, not an address
            assert not any(p in forbidden for p in parts), name
    assert all(FEATURE_SCHEMA[[f.name for f in FEATURE_SCHEMA].index(n)].dtype != "string" for n in MODEL_FEATURES)
    assert len(schema_frame()) == len(FEATURE_SCHEMA)


def test_output_has_flow_columns_then_every_feature(write):
    frame = extract_features(write("s.pcap", pcap_bytes(tcp_session())))
    assert list(frame.columns) == [name for name, _, _ in FLOW_COLUMNS] + COMPUTED_COLUMNS
    matrix = feature_matrix(frame)
    assert matrix.shape == (1, len(MODEL_FEATURES)) and matrix.dtype == np.float32


# -- hand-computed statistics ----------------------------------------------------------------------------

def test_sizes_timing_and_sequence_by_hand(write):
    # SYN, SYN-ACK, ACK, then payloads 100 (client), 200 (server), 300 (client); 10 ms apart; FIN exchange.
    frames = tcp_session(payloads=((0, 100), (1, 200), (0, 300)))
    row = extract_features(write("s.pcap", pcap_bytes(frames))).iloc[0]
    assert row["src2dst_payload_packets"] == 2 and row["dst2src_payload_packets"] == 1
    assert row["src2dst_payload_min"] == 100 and row["src2dst_payload_max"] == 300
    assert row["src2dst_payload_mean"] == pytest.approx(200)
    assert row["src2dst_payload_std"] == pytest.approx(100)
    assert row["bidirectional_payload_bytes"] == 600
    assert row["src2dst_payload_share"] == pytest.approx(2 / 6)   # SYN, ACK, 100, 300, FIN, ACK
    assert row["duration_ms"] == pytest.approx(80, abs=0.01)      # 9 packets, 10 ms apart
    assert row["bidirectional_iat_mean"] == pytest.approx(10, abs=0.01)
    assert row["rtt_source"] == 1 and row["rtt_ms"] == pytest.approx(20, abs=0.01)  # SYN -> SYN-ACK -> ACK
    assert row["bidirectional_iat_mean_rtt"] == pytest.approx(0.5, abs=1e-3)
    assert [row[f"seq0{i}_size"] for i in range(4)] == [100, -200, 300, 0]
    assert row["seq00_iat_ms"] == pytest.approx(30, abs=0.01)     # from the SYN to the first payload
    assert row["seq01_iat_rtt"] == pytest.approx(0.5, abs=1e-3)
    assert row["bursts"] == 3 and row["src2dst_burst_bytes_max"] == 300
    assert row["src2dst_syn_count"] == 1 and row["dst2src_syn_count"] == 1 and row["src2dst_fin_count"] == 1
    # Early features over the default 10 packets cover all 9: 6 from the client, 3 from the server.
    assert row["early_src2dst_packets"] == 6 and row["early_dst2src_packets"] == 3
    assert row["early_src2dst_payload_std"] == pytest.approx(100) and row["early_duration_ms"] == pytest.approx(80, abs=0.01)


def test_early_window_is_an_option(write):
    frames = tcp_session(payloads=((0, 100), (1, 200), (0, 300)))
    row = extract_features(write("s.pcap", pcap_bytes(frames)), early_packets=4).iloc[0]
    # The first 4 packets: SYN, SYN-ACK, ACK, payload 100.
    assert row["early_src2dst_packets"] == 3 and row["early_bidirectional_payload_packets"] == 1
    assert row["early_duration_ms"] == pytest.approx(30, abs=0.01) and row["early_dst2src_payload_packets"] == 0
    with pytest.raises(ValueError):
        extract_features(write("t.pcap", pcap_bytes(frames)), early_packets=0)


def test_histogram_quantiles_stay_within_a_bin():
    rng = np.random.default_rng(1)
    values = rng.integers(1, 1500, 1000)
    # One flow whose initiator sent these payload sizes, as the per-packet kernel would have streamed them.
    state = FeatureState(initial_rows=1)
    I, F = state.I[0], state.F[0]
    I[k.PKTS] = I[k.PL_PKTS] = len(values)
    I[k.PL_MIN], I[k.PL_MAX], I[k.PL_BYTES] = values.min(), values.max(), values.sum()
    F[k.PL_SUM], F[k.PL_SQ] = float(values.sum()), float((values.astype(float) ** 2).sum())
    np.add.at(state.size_hist[0, 0], np.minimum((np.log2(values) * 3).astype(int), 47), 1)
    rows = FlowRows(**{f.name: getattr(state, f.name)[:1] for f in dataclasses.fields(FlowRows)})
    out = traffic.columns(rows, early_packets=1)
    stat = {name: out[f"src2dst_payload_{name}"][0] for name in ("min", "max", "mean", "std")}
    assert stat["min"] == values.min() and stat["max"] == values.max() and stat["mean"] == pytest.approx(values.mean())
    assert stat["std"] == pytest.approx(values.std())
    for q in (10, 25, 50, 75, 90):
        assert abs(math.log2(out[f"src2dst_payload_p{q}"][0] / np.quantile(values, q / 100))) <= 1 / 3


# -- entropy and the fully-encrypted tests, against values computed by hand --------------------------------

def test_entropy_by_hand():
    data, lengths = rows_of(b"aaaa", b"aabb", b"abcd", bytes(range(256)), b"")
    h = bytestats.entropy(data, lengths)
    assert h[0] == 0.0 and h[1] == pytest.approx(1.0) and h[2] == pytest.approx(2.0) and h[3] == pytest.approx(8.0)
    assert np.isnan(h[4])


def _tests(payload):
    data, lengths = rows_of(payload)
    out = bytestats.fully_encrypted_tests(data, lengths, bytestats.byte_profile(data, lengths))
    return {k: bool(v[0]) if v.dtype == bool else int(v[0]) for k, v in out.items()}


def test_popcount_exemption_boundaries():
    # 4 x 0x0F (4 bits) + 6 x 0x07 (3 bits) = 34 bits over 10 bytes: exactly 3.4, exempt (<= 3.4).
    assert _tests(b"\x0f" * 4 + b"\x07" * 6)["fe_ex1_popcount"]
    # 4 x 0xF0 (4 bits) + 6 x 0xF8 (5 bits) = 46 bits / 10 = 4.6, exempt (>= 4.6).
    assert _tests(b"\xf0" * 4 + b"\xf8" * 6)["fe_ex1_popcount"]
    # 5 x 0x0F + 5 x 0x07 = 35 bits / 10 = 3.5: not exempt by rule 1, and nothing printable: fully encrypted.
    t = _tests(b"\x0f" * 5 + b"\x07" * 5)
    assert not t["fe_ex1_popcount"] and t["fully_encrypted_first_payload"]


def test_printable_exemptions():
    noise = b"\x0f\xf0" * 20                       # 4.0 set bits per byte, nothing printable
    t = _tests(b"abcdef" + noise)                  # rule 2: first six bytes printable
    assert t["fe_ex2_first6_printable"] and not t["fe_ex3_half_printable"] and not t["fully_encrypted_first_payload"]
    t = _tests(b"\x0f" + b"a\x0f" * 10 + b"a")     # 11 of 22 printable: exactly half, not more
    assert not t["fe_ex3_half_printable"]
    t = _tests(b"\x0f" + b"a\x0f" * 10 + b"aa")    # 12 of 23 printable: more than half
    assert t["fe_ex3_half_printable"]
    t = _tests(b"\x0f" + b"x" * 21 + noise * 2)    # rule 4: 21 contiguous printable bytes
    assert t["fe_ex4_run20_printable"] and t["fe_longest_printable_run"] == 21
    t = _tests(b"\x0f" + b"x" * 20 + noise * 2)    # 20 is not more than 20
    assert not t["fe_ex4_run20_printable"]


def test_tls_and_http_exemption():
    assert _tests(b"\x16\x03\x01\x02\x00" + b"\x0f\xf0" * 20)["fe_ex5_tls_or_http"]
    assert _tests(b"POST /x HTTP/1.1\r\n")["fe_ex5_tls_or_http"]
    assert not _tests(b"\x16\x04\x01" + b"\x0f\xf0" * 20)["fe_ex5_tls_or_http"]


# -- TLS ------------------------------------------------------------------------------------------------

def client_hello():
    from scapy.layers.tls.handshake import TLSClientHello
    from scapy.layers.tls.extensions import TLS_Ext_ServerName, ServerName, TLS_Ext_ALPN, ProtocolName, \
        TLS_Ext_SupportedGroups, TLS_Ext_SignatureAlgorithms, TLS_Ext_SupportedVersion_CH
    from scapy.layers.tls.record import TLS
    hello = TLSClientHello(ciphers=[0x1301, 0x1302, 0xC02F], ext=[
        TLS_Ext_ServerName(servernames=[ServerName(servername=b"example.com")]),
        TLS_Ext_ALPN(protocols=[ProtocolName(protocol=b"h2"), ProtocolName(protocol=b"http/1.1")]),
        TLS_Ext_SupportedGroups(groups=[29, 23]),
        TLS_Ext_SignatureAlgorithms(sig_algs=[0x0403, 0x0804]),
        TLS_Ext_SupportedVersion_CH(versions=[0x0304, 0x0303]),
    ])
    return bytes(TLS(msg=[hello]))


def test_client_hello_fingerprints(write):
    server_hello = b"\x16\x03\x03\x00\x04\x02\x00\x00\x00"
    frames = tcp_exchange([(0, client_hello()), (1, server_hello)], sport=443)
    row = extract_features(write("tls.pcap", pcap_bytes(frames))).iloc[0]
    assert row["tls_client_hello"] == 1 and row["tls_sni"] == "example.com" and row["tls_alpn"] == "h2,http/1.1"
    assert row["tls_version"] == 0x0304 and row["tls_cipher_count"] == 3 and row["tls_extension_count"] == 5
    assert row["ja4"].startswith("t13d0305h2_")
    assert len(row["ja3"]) == 32 and row["protocols"] == "tls" and row["signatures"] == ""


def test_ja4_hashes_follow_the_spec():
    import hashlib
    from features.tls import ja4, parse_client_hello
    ch = parse_client_hello(client_hello())
    ciphers = hashlib.sha256(b"1301,1302,c02f").hexdigest()[:12]
    exts = hashlib.sha256(b"000a,000d,002b_0403,0804").hexdigest()[:12]
    assert ja4(ch) == f"t13d0305h2_{ciphers}_{exts}"


def test_fingerprints_match_a_published_chrome_hello():
    # A Chrome 143 ClientHello as published with its JA3/JA4 by a fingerprinting service: fields in wire order.
    from features.tls import ClientHello, ja3, ja4
    hex_list = lambda text: [int(x, 16) for x in text.split(",")]  # noqa: E731
    ch = ClientHello(
        legacy_version=0x0303, length=0,
        ciphers=[0x2A2A] + hex_list("1301,1302,1303,c02b,c02f,c02c,c030,cca9,cca8,c013,c014,009c,009d,002f,0035"),
        extensions=[(t, b"") for t in [0x3A3A] + hex_list("002d,0033,0010,fe0d,0017,44cd,0000,000b,000a,002b,ff01,"
                                                          "0023,0012,0005,000d,001b")],
        sni="tls.browserleaks.com", alpn=["h2", "http/1.1"], groups=[0x4A4A, 4588, 29, 23, 24], point_formats=[0],
        sig_algs=hex_list("0403,0804,0401,0503,0805,0501,0806,0601"), versions=[0x5A5A, 0x0304, 0x0303])
    assert ja4(ch) == "t13d1516h2_8daaf6152771_d8a2da3f94cd"
    assert ja3(ch) == "98487aa16281980e7d1120d399efb6a4"


# -- port rewrite invariance ------------------------------------------------------------------------------

@pytest.mark.skipif(shutil.which("tcprewrite") is None, reason="tcprewrite (tcpreplay) not installed")
def test_rewriting_ports_changes_only_the_port_flag(write, tmp_path):
    frames = wireguard() + openvpn_udp()
    original = write("orig.pcap", pcap_bytes(frames))
    rewritten = tmp_path / "rewritten.pcap"
    subprocess.run(["tcprewrite", "--portmap=51820:33333,1194:44444,40001:50001", f"--infile={original}",
                    f"--outfile={rewritten}"], check=True, capture_output=True)
    a = extract_features(str(original)).sort_values("first_seen").reset_index(drop=True)
    b = extract_features(str(rewritten)).sort_values("first_seen").reset_index(drop=True)
    assert (a["dst_port"] != b["dst_port"]).all()
    assert a["well_known_vpn_port"].tolist() == [1, 1] and b["well_known_vpn_port"].tolist() == [0, 0]
    others = [n for n in MODEL_FEATURES if n != "well_known_vpn_port"]
    pd.testing.assert_frame_equal(a[others], b[others])
    assert a["signatures"].tolist() == b["signatures"].tolist() == ["wireguard", "openvpn"]


LAB = Path(__file__).resolve().parents[1] / "pcaps" / "lab"


@pytest.mark.skipif(shutil.which("tcprewrite") is None, reason="tcprewrite (tcpreplay) not installed")
@pytest.mark.parametrize("capture, portmap", [("openvpn_tls_udp_00.pcap.gz", "1194:34567"),
                                              ("wireguard_00.pcap.gz", "51820:23456")])
def test_rewriting_ports_of_a_lab_capture_changes_only_the_port_flag(tmp_path, capture, portmap):
    source = LAB / capture
    if not source.exists():
        pytest.skip(f"{capture} is not in pcaps/lab")
    original = tmp_path / "orig.pcap"
    original.write_bytes(gzip.decompress(source.read_bytes()))
    rewritten = tmp_path / "rewritten.pcap"
    subprocess.run(["tcprewrite", f"--portmap={portmap}", f"--infile={original}", f"--outfile={rewritten}"],
                   check=True, capture_output=True)
    a = extract_features(str(original)).sort_values("first_seen").reset_index(drop=True)
    b = extract_features(str(rewritten)).sort_values("first_seen").reset_index(drop=True)
    moved = a["dst_port"] == int(portmap.split(":")[0])
    assert moved.any() and (b.loc[moved, "dst_port"] == int(portmap.split(":")[1])).all()
    assert (a.loc[moved, "well_known_vpn_port"] == 1).all() and (b.loc[moved, "well_known_vpn_port"] == 0).all()
    others = [n for n in MODEL_FEATURES if n != "well_known_vpn_port"]
    pd.testing.assert_frame_equal(a[others], b[others])
    assert a["signatures"].tolist() == b["signatures"].tolist()


# -- the command ------------------------------------------------------------------------------------------

def test_command_writes_parquet_and_csv(write, tmp_path):
    from detector.cli import main
    capture = write("wg.pcap", pcap_bytes(wireguard()))
    runner = CliRunner()
    for ext in ("parquet", "csv"):
        out = tmp_path / f"f.{ext}"
        result = runner.invoke(main, ["features", str(capture), "-o", str(out)])
        assert result.exit_code == 0, result.output
        frame = pd.read_parquet(out) if ext == "parquet" else pd.read_csv(out)
        assert frame["signatures"].tolist() == ["wireguard"]
    table = runner.invoke(main, ["features", str(capture)])
    assert table.exit_code == 0 and "receiver index linked" in table.output


def test_command_gives_the_same_rows_with_one_or_two_threads(tmp_path):
    from detector.cli import main
    demo = str(Path(__file__).resolve().parents[1] / "pcaps" / "demo")
    outputs = []
    for threads in ("1", "2"):
        out = tmp_path / f"t{threads}.csv"
        result = CliRunner().invoke(main, ["features", demo, "--threads", threads, "-o", str(out)])
        assert result.exit_code == 0, result.output
        outputs.append(out.read_bytes())
    assert outputs[0] == outputs[1] and outputs[0].count(b"\n") > 2
    assert CliRunner().invoke(main, ["features", demo, "--threads", "3"]).exit_code != 0


def test_command_prints_the_schema():
    from detector.cli import main
    result = CliRunner().invoke(main, ["features", "--schema"])
    assert result.exit_code == 0
    assert FEATURE_SCHEMA_VERSION in result.output and "fe_ex1_popcount" in result.output
