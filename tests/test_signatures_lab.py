"""Signatures on the lab's real captures (pcaps/lab): each fires on its protocol and on no other.

Skipped until the lab's captures and labels.csv are in pcaps/lab. Flows take their labels as the model's
training data does (`detector.dataset.attach_labels`).
"""

from __future__ import annotations

import warnings
from pathlib import Path

import pandas as pd
import pytest

LAB = Path(__file__).resolve().parents[1] / "pcaps" / "lab"
LABELS = LAB / "labels.csv"

pytestmark = pytest.mark.skipif(not LABELS.exists(), reason="the lab's captures are not in pcaps/lab yet")

# Signatures a flow of each labelled protocol may fire; normal protocols may fire none.
ALLOWED = {
    "anyconnect": {"anyconnect"},
    "dns_tunnel": {"dns_tunnel"},
    "http_proxy": {"http_connect", "http_proxy"},
    "ipsec": {"ipsec"},
    "l2tp": {"l2tp"},
    "pptp": {"pptp"},
    "obfs4": {"fully_encrypted"},
    "openvpn": {"openvpn", "fully_encrypted"},          # static-key mode has no handshake: fully encrypted
    "shadowsocks": {"fully_encrypted", "tls_in_tls", "ws_tunnel", "fake_tls"},
    "socks": {"socks"},
    "softether": {"softether", "tls_tunnel", "tls_in_tls"},
    "ssh_tunnel": {"ssh_tunnel"},
    "tls_tunnel": {"tls_tunnel", "tls_in_tls"},
    "tor": {"tor"},
    "trojan": {"tls_in_tls"},
    "vless": {"tls_in_tls"},
    "vmess": {"fully_encrypted", "tls_in_tls", "ws_tunnel"},
    "wireguard": {"wireguard"},
}

# Variant -> signature that must fire on a labelled flow of every capture of the variant.
EVERY_CAPTURE = {
    "wireguard": "wireguard", "openvpn_tls_udp": "openvpn", "openvpn_tls_tcp": "openvpn",
    "openvpn_tlscrypt_udp": "openvpn", "openvpn_tlscrypt_tcp": "openvpn", "ipsec_ikev2_udp": "ipsec",
    "anyconnect_dtls": "anyconnect", "l2tp": "l2tp", "l2tp_ipsec": "ipsec", "pptp": "pptp", "ipsec_esp": "ipsec", "iodine": "dns_tunnel", "obfs4": "fully_encrypted",
    "shadowsocks": "fully_encrypted", "vmess_tcp": "fully_encrypted", "socks5_dante": "socks",
    "stunnel": "tls_tunnel", "tor_bridge": "tor",
    "tor_obfs4_bridge": "fully_encrypted", "shadowsocks_obfs_http": "ws_tunnel", "shadowsocks_v2ray_ws": "ws_tunnel",
    "vmess_ws": "ws_tunnel", "shadowsocks_obfs_tls": "fake_tls",
}
# Variant -> signature that must fire in most captures: SSH forwarding is told from a shell by the shape of
# its traffic, which an idle or typing-like session does not show.
MOST_CAPTURES = {"ssh_dynamic": "ssh_tunnel", "ssh_local": "ssh_tunnel"}
# Variant -> signature that must fire in at least one capture: the inner TLS handshake these tunnels are
# recognised by is there only when the session inside fetched over HTTPS.
SOME_CAPTURE = {"trojan": "tls_in_tls", "vless_tls": "tls_in_tls", "vmess_ws_tls": "tls_in_tls",
                "http_proxy_squid": "http_connect", "http_proxy_tinyproxy": "http_connect"}


@pytest.fixture(scope="module")
def flows():
    from detector.dataset import attach_labels, load_labels
    from features import extract_features
    labels = load_labels([LABELS])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        frames = [extract_features(str(LAB / capture)) for capture in sorted(labels["capture"].unique())]
    frame = attach_labels(pd.concat(frames, ignore_index=True).copy(), labels)
    frame["fired"] = frame["signatures"].map(lambda s: set(filter(None, s.split(","))))
    return frame


def test_no_signature_fires_on_normal_traffic(flows):
    normal = flows[flows["truth_label"] == "normal"]
    assert len(normal) > 0
    noisy = normal[normal["fired"].map(bool)]
    assert noisy.empty, noisy[["capture", "truth_protocol", "evidence"]].to_string()


def test_signatures_stay_silent_on_other_protocols(flows):
    for row in flows.itertuples():
        allowed = ALLOWED.get(row.truth_protocol, set()) if row.truth_label != "normal" else set()
        assert row.fired <= allowed, f"{row.capture} ({row.truth_protocol}): {row.evidence}"


@pytest.mark.parametrize("variant", sorted(EVERY_CAPTURE))
def test_signature_fires_on_every_capture_of_its_protocol(flows, variant):
    signature = EVERY_CAPTURE[variant]
    captures = flows[flows["variant"] == variant].groupby("capture")["fired"].agg(lambda s: set().union(*s))
    if captures.empty:
        pytest.skip(f"no {variant} captures in pcaps/lab")
    missed = [Path(c).name for c, fired in captures.items() if signature not in fired]
    assert not missed, f"{signature} silent on {missed}"


@pytest.mark.parametrize("variant", sorted(MOST_CAPTURES))
def test_signature_fires_on_most_captures_of_its_protocol(flows, variant):
    signature = MOST_CAPTURES[variant]
    captures = flows[flows["variant"] == variant].groupby("capture")["fired"].agg(lambda s: set().union(*s))
    assert len(captures) and sum(signature in fired for fired in captures) >= 0.7 * len(captures)


@pytest.mark.parametrize("variant", sorted(SOME_CAPTURE))
def test_signature_fires_on_some_capture_of_its_protocol(flows, variant):
    fired = set().union(*flows.loc[flows["variant"] == variant, "fired"]) if (flows["variant"] == variant).any() else None
    if fired is None:
        pytest.skip(f"no {variant} captures in pcaps/lab")
    assert SOME_CAPTURE[variant] in fired
