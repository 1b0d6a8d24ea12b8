"""nDPI's verdicts through NFStream, mapped to vpn / proxy / normal, as the baseline of `vpndetect bench`."""

from __future__ import annotations

import shutil
import tempfile
from contextlib import contextmanager

import pandas as pd

from features.readers import open_capture

# nDPI application names that are proxies (its "VPN" category covers the VPNs).
PROXY_APPS = {"Tor", "SOCKS", "HTTP_Proxy", "HTTP_Connect", "Psiphon", "UltraSurf", "Shadowsocks", "OpenGFW"}


def ndpi_label(application: str, category: str) -> str:
    names = set(str(application).split("."))
    if names & PROXY_APPS:
        return "proxy"
    if category == "VPN":
        return "vpn"
    return "normal"


def ndpi_verdicts(paths) -> pd.DataFrame:
    """One row per NFStream flow: capture, 5-tuple, nDPI application and category, and the mapped label."""
    from nfstream import NFStreamer

    rows = []
    for path in paths:
        with _uncompressed(path) as readable:
            flows = list(NFStreamer(source=readable, statistical_analysis=False, n_meters=1))
        for flow in flows:
            rows.append({"capture": str(path), "src_ip": flow.src_ip, "src_port": flow.src_port, "dst_ip": flow.dst_ip,
                         "dst_port": flow.dst_port, "protocol_number": flow.protocol,
                         "ndpi_application": flow.application_name, "ndpi_category": flow.application_category_name,
                         "ndpi_label": ndpi_label(flow.application_name, flow.application_category_name)})
    return pd.DataFrame(rows)


def join_ndpi(frame: pd.DataFrame, ndpi: pd.DataFrame) -> pd.Series:
    """nDPI's label for each flow of `frame` (matched by capture and endpoints either way), 'normal' if unseen."""
    if ndpi.empty:
        return pd.Series("normal", index=frame.index)
    forward = ndpi.set_index(["capture", "src_ip", "src_port", "dst_ip", "dst_port"])["ndpi_label"]
    backward = ndpi.set_index(["capture", "dst_ip", "dst_port", "src_ip", "src_port"])["ndpi_label"]
    # NFStream does not end flows on FIN, so one of its flows may cover several of ours: any flagged one counts.
    forward = forward.groupby(level=[0, 1, 2, 3, 4]).agg(_most_suspicious)
    backward = backward.groupby(level=[0, 1, 2, 3, 4]).agg(_most_suspicious)
    keys = list(zip(frame["capture"], frame["src_ip"], frame["src_port"], frame["dst_ip"], frame["dst_port"]))
    labels = [forward.get(k, backward.get(k, "normal")) for k in keys]
    return pd.Series(labels, index=frame.index)


def _most_suspicious(labels):
    values = set(labels)
    return "vpn" if "vpn" in values else "proxy" if "proxy" in values else "normal"


@contextmanager
def _uncompressed(path):
    """libpcap (and so NFStream) reads no compressed captures: give it a plain copy when needed."""
    stream, compression = open_capture(path)
    with stream:
        if compression is None:
            yield str(path)
            return
        with tempfile.NamedTemporaryFile(suffix=".pcap") as plain:
            shutil.copyfileobj(stream, plain)
            plain.flush()
            yield plain.name
