"""The feature table: every column `vpndetect features` adds to the flow columns, in one place.

Each entry says what a column is (name, dtype, unit, direction, meaning) and whether the model may use it.
Model features never carry IP addresses, absolute ports, TTL or IP IDs; the only port-derived feature is
`well_known_vpn_port`. Bump FEATURE_SCHEMA_VERSION whenever a formula, a name or the order changes, and
store it next to every trained model.

Directions: `src2dst` is initiator to responder, `dst2src` the reverse, `both` either, `-` not directional.
Whole-flow statistics come from streaming moments and fixed log-scale histograms (quantiles are accurate to
about a third of an octave for sizes and half an octave for times); the `early_` ones are exact over the
first `early_packets` packets of the flow (default 10).
"""

from __future__ import annotations

from dataclasses import dataclass

import pandas as pd

# 1.0 first table; 1.1 prefix entropies dropped, signatures tls_tunnel, ws_tunnel and fake_tls added,
# ssh_tunnel, anyconnect and IKE rules revised (ike_linked became ike_exchange); 1.2 Tor names revised;
# 1.3 STUN recognised, L2TP's SCCRP may follow a ZLB, fully_encrypted ignores the first-six-printable exemption,
# ssh_tunnel also fires on bulk both ways, an unanswered IKE request fires ipsec at 0.6; 1.4 SOCKS5 also reversed,
# Facebook's Zero protocol recognised (not a model input) and exempt from fully_encrypted.
FEATURE_SCHEMA_VERSION = "1.4"

DIRECTIONS = (("src2dst", "src2dst"), ("dst2src", "dst2src"), ("bidirectional", "both"))
STATS = (("min", "minimum"), ("max", "maximum"), ("mean", "mean"), ("std", "standard deviation"),
         ("p10", "10th percentile"), ("p25", "25th percentile"), ("p50", "median"), ("p75", "75th percentile"),
         ("p90", "90th percentile"))
TCP_FLAGS = ("fin", "syn", "rst", "psh", "ack", "urg", "ece", "cwr")
SEQUENCE_PACKETS = 32
SEQUENCE_HEADS = 16


@dataclass(frozen=True)
class Feature:
    name: str
    dtype: str          # float32, int32, int8, string
    unit: str           # bytes, ms, packets, count, ratio, bits/byte, flag, score, rtt, text, ...
    direction: str      # src2dst, dst2src, both, -
    meaning: str
    model: bool = True  # part of the model's feature matrix
    source: str = "features"  # "flow": a column of `vpndetect flows`, documented here because the model uses it


def _traffic_block(prefix: str, scope: str) -> list[Feature]:
    """Size, timing, flag and burst statistics; the same block serves the whole flow and its first packets."""
    out = []
    early = bool(prefix)
    for d, direction in DIRECTIONS[:2]:
        src = "features" if early else "flow"
        out.append(Feature(f"{prefix}{d}_packets", "int32", "packets", direction, f"packets {scope}", source=src))
        out.append(Feature(f"{prefix}{d}_bytes", "int32", "bytes", direction, f"frame bytes on the wire {scope}",
                           source=src))
    out.append(Feature(f"{prefix}duration_ms", "float32", "ms", "-", f"time from first to last packet {scope}"))
    for d, direction in DIRECTIONS:
        out += [
            Feature(f"{prefix}{d}_payload_packets", "int32", "packets", direction, f"packets with payload {scope}"),
            Feature(f"{prefix}{d}_payload_share", "float32", "ratio", direction,
                    f"share of packets that carry payload {scope}"),
            Feature(f"{prefix}{d}_payload_bytes", "float32", "bytes", direction, f"transport payload bytes {scope}"),
        ]
        out += [Feature(f"{prefix}{d}_payload_{s}", "float32", "bytes", direction,
                        f"{text} of payload sizes of packets with payload {scope}") for s, text in STATS]
        out += [Feature(f"{prefix}{d}_iat_{s}", "float32", "ms", direction,
                        f"{text} of inter-arrival times {scope}") for s, text in STATS]
        out += [Feature(f"{prefix}{d}_iat_{s}_rtt", "float32", "rtt", direction,
                        f"{s} inter-arrival time {scope} divided by the flow's round-trip estimate")
                for s in ("mean", "p50", "p90")]
    out += [
        Feature(f"{prefix}dst2src_packet_share", "float32", "ratio", "-", f"share of packets sent by the responder {scope}"),
        Feature(f"{prefix}dst2src_payload_byte_share", "float32", "ratio", "-",
                f"share of payload bytes sent by the responder {scope}"),
        Feature(f"{prefix}duration_rtt", "float32", "rtt", "-", f"duration {scope} in round-trip estimates"),
        Feature(f"{prefix}bursts", "int32", "count", "both",
                f"runs of consecutive payload packets in one direction {scope}"),
        Feature(f"{prefix}burst_packets_mean", "float32", "packets", "both", f"mean payload packets per burst {scope}"),
    ]
    for d, direction in DIRECTIONS[:2]:
        out += [Feature(f"{prefix}{d}_burst_packets_max", "int32", "packets", direction,
                        f"longest burst in payload packets {scope}"),
                Feature(f"{prefix}{d}_burst_bytes_max", "float32", "bytes", direction,
                        f"largest burst in payload bytes {scope}")]
        out += [Feature(f"{prefix}{d}_{flag}_count", "int32", "count", direction, f"TCP {flag.upper()} flags {scope}")
                for flag in TCP_FLAGS]
    return out


def _timing_reference() -> list[Feature]:
    return [
        Feature("rtt_ms", "float32", "ms", "-", "round-trip estimate: SYN to SYN-ACK to ACK, else first request "
                "to first response; NaN when neither was seen"),
        Feature("rtt_source", "int8", "code", "-", "0 none, 1 TCP handshake, 2 first request/response"),
    ]


def _sequence_block() -> list[Feature]:
    out = []
    for i in range(SEQUENCE_PACKETS):
        out += [
            Feature(f"seq{i:02d}_size", "int32", "bytes", "both",
                    f"payload size of payload packet {i}, positive from the initiator, negative from the responder, 0 if none"),
            Feature(f"seq{i:02d}_iat_ms", "float32", "ms", "both", f"time from payload packet {i - 1} to {i}" if i else
                    "time from the flow's first packet to its first payload packet"),
            Feature(f"seq{i:02d}_iat_rtt", "float32", "rtt", "both", f"seq{i:02d}_iat_ms in round-trip estimates"),
        ]
    out += [Feature(f"seq{i:02d}_entropy", "float32", "bits/byte", "both",
                    f"Shannon entropy of the first 64 payload bytes of payload packet {i}") for i in range(SEQUENCE_HEADS)]
    return out


def _bytes_block() -> list[Feature]:
    out = []
    for d, direction in DIRECTIONS[:2]:
        who = "initiator" if d == "src2dst" else "responder"
        out += [
            Feature(f"{d}_first_payload_entropy", "float32", "bits/byte", direction,
                    f"Shannon entropy of the {who}'s first payload (up to the prefix kept)"),
            Feature(f"{d}_first_payload_popcount", "float32", "bits/byte", direction,
                    f"set bits per byte of the {who}'s first payload"),
            Feature(f"{d}_first_payload_printable_share", "float32", "ratio", direction,
                    f"share of bytes 0x20-0x7e in the {who}'s first payload"),
            Feature(f"{d}_first_payload_ascii_share", "float32", "ratio", direction,
                    f"share of bytes below 0x80 in the {who}'s first payload"),
        ]
    out += [
        Feature("fe_ex1_popcount", "int8", "flag", "src2dst",
                "GFW exemption 1: first client payload has <= 3.4 or >= 4.6 set bits per byte"),
        Feature("fe_ex2_first6_printable", "int8", "flag", "src2dst", "GFW exemption 2: first 6 bytes printable"),
        Feature("fe_ex3_half_printable", "int8", "flag", "src2dst", "GFW exemption 3: more than 50% printable bytes"),
        Feature("fe_ex4_run20_printable", "int8", "flag", "src2dst",
                "GFW exemption 4: more than 20 contiguous printable bytes"),
        Feature("fe_ex5_tls_or_http", "int8", "flag", "src2dst",
                "GFW exemption 5: starts like a TLS record or an HTTP request"),
        Feature("fe_longest_printable_run", "int32", "bytes", "src2dst",
                "longest run of printable bytes in the first client payload"),
        Feature("fully_encrypted_first_payload", "int8", "flag", "src2dst",
                "first client payload exists and no GFW exemption applies (literature.md 3b)"),
    ]
    return out


def _tls_block() -> list[Feature]:
    return [
        Feature("tls_client_hello", "int8", "flag", "src2dst", "a TLS ClientHello opens the client stream"),
        Feature("tls_version", "int32", "code", "src2dst", "highest TLS version offered (0x0303 TLS 1.2, 0x0304 TLS 1.3)"),
        Feature("tls_cipher_count", "int32", "count", "src2dst", "cipher suites offered (GREASE removed)"),
        Feature("tls_extension_count", "int32", "count", "src2dst", "extensions sent (GREASE removed)"),
        Feature("tls_client_hello_bytes", "int32", "bytes", "src2dst", "length of the ClientHello handshake message"),
        Feature("tls_sni_present", "int8", "flag", "src2dst", "server_name extension present"),
        Feature("tls_sni_is_ip", "int8", "flag", "src2dst", "the SNI is an IP literal (stunnel-like clients)"),
        Feature("tls_alpn_present", "int8", "flag", "src2dst", "ALPN extension present"),
        Feature("tls_server_hello", "int8", "flag", "dst2src", "a TLS ServerHello opens the server stream"),
        Feature("tls_cert_self_signed", "int8", "flag", "dst2src",
                "1 if the visible certificate's subject CN equals its issuer CN, 0 if not, -1 if not visible"),
        Feature("tls_sni", "string", "text", "src2dst", "server name from the ClientHello", model=False),
        Feature("tls_alpn", "string", "text", "src2dst", "ALPN protocols, comma separated", model=False),
        Feature("ja3", "string", "text", "src2dst", "JA3 fingerprint (MD5) of the ClientHello", model=False),
        Feature("ja4", "string", "text", "src2dst", "JA4 fingerprint of the ClientHello", model=False),
        Feature("tls_cert_subject_cn", "string", "text", "dst2src", "subject CN of the server certificate, if visible",
                model=False),
        Feature("tls_cert_issuer_cn", "string", "text", "dst2src", "issuer CN of the server certificate, if visible",
                model=False),
    ]


def _signature_block() -> list[Feature]:
    from features.signatures import REGISTRY
    out = []
    for sig in REGISTRY:
        out.append(Feature(f"sig_{sig.name}", "float32", "score", "both",
                           f"{sig.title} signature confidence (fires at >= 0.5): {sig.summary}",
                           model=sig.model_input))
        out += [Feature(name, dtype, unit, "both", meaning) for name, dtype, unit, meaning in sig.features]
    out += [
        Feature("well_known_vpn_port", "int8", "flag", "dst2src",
                "the responder port is a well-known port of a VPN/proxy protocol (the only port-derived feature)"),
        Feature("signatures", "string", "text", "-", "VPN/proxy signatures that fired, comma separated", model=False),
        Feature("protocols", "string", "text", "-", "non-VPN protocols recognised (tls, quic, dtls, ssh, dns, ...)",
                model=False),
        Feature("evidence", "string", "text", "-", "human-readable evidence of every signature that fired", model=False),
    ]
    return out


def build_schema() -> list[Feature]:
    schema = (_traffic_block("", "over the whole flow") + _timing_reference()
              + _traffic_block("early_", "over the first packets") + _sequence_block() + _bytes_block()
              + _tls_block() + _signature_block())
    names = [f.name for f in schema]
    duplicates = {n for n in names if names.count(n) > 1}
    if duplicates:
        raise RuntimeError(f"duplicate feature names: {sorted(duplicates)}")
    return schema


FEATURE_SCHEMA: list[Feature] = build_schema()
FEATURES_BY_NAME = {f.name: f for f in FEATURE_SCHEMA}
MODEL_FEATURES: list[str] = [f.name for f in FEATURE_SCHEMA if f.model]
COMPUTED_COLUMNS: list[str] = [f.name for f in FEATURE_SCHEMA if f.source == "features"]


def schema_frame() -> pd.DataFrame:
    """The schema as a table (one row per feature, in order)."""
    return pd.DataFrame([f.__dict__ for f in FEATURE_SCHEMA])
