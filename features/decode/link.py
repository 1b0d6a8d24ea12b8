"""Link layer: where the network header starts, its EtherType, and the VLAN, for every link type read."""

from __future__ import annotations

import numpy as np

from features.decode import linktypes
from features.decode.fields import read_u16, read_u32, read_u8

ETH_IPV4, ETH_IPV6 = 0x0800, 0x86DD
_VLAN_TAGS = (0x8100, 0x88A8, 0x9100)
_PPPOE_SESSION = 0x8864
_PPP_TO_ETHERTYPE = {0x0021: ETH_IPV4, 0x0057: ETH_IPV6}
_AF_INET6 = (10, 24, 28, 30)  # Linux, then the BSDs and macOS
_MAX_TAGS = 3


def _ethertype_from_version(data, net):
    version = read_u8(data, net) >> 4
    return np.where(version == 4, ETH_IPV4, np.where(version == 6, ETH_IPV6, 0))


def _family_to_ethertype(family):
    return np.where(family == 2, ETH_IPV4, np.where(np.isin(family, _AF_INET6), ETH_IPV6, 0))


def _ppp_ethertype(ppp_protocol):
    return np.select([ppp_protocol == k for k in _PPP_TO_ETHERTYPE], list(_PPP_TO_ETHERTYPE.values()), 0)


def decode_link(data: np.ndarray, offset: np.ndarray, caplen: np.ndarray, linktype: np.ndarray):
    """Return (net_offset, ethertype, vlan) arrays; ethertype is 0 where the frame carries no IP."""
    n = len(offset)
    net = np.zeros(n, np.int64)
    ethertype = np.zeros(n, np.int64)
    header_len = np.zeros(n, np.int64)

    def set_where(mask, net_value, ethertype_value, hdr):
        net[mask] = net_value[mask]
        ethertype[mask] = ethertype_value[mask]
        header_len[mask] = hdr

    eth = linktype == linktypes.ETHERNET
    if eth.any():
        set_where(eth, offset + 14, read_u16(data, offset + 12), 14)
    sll = linktype == linktypes.LINUX_SLL
    if sll.any():
        set_where(sll, offset + 16, read_u16(data, offset + 14), 16)
    sll2 = linktype == linktypes.LINUX_SLL2
    if sll2.any():
        set_where(sll2, offset + 20, read_u16(data, offset), 20)
    raw = np.isin(linktype, (linktypes.RAW, *linktypes.RAW_ALT, linktypes.IPV4, linktypes.IPV6))
    if raw.any():
        set_where(raw, offset, _ethertype_from_version(data, offset), 1)
    null = linktype == linktypes.NULL
    if null.any():
        # Host byte order of the writer: the family sits in the first byte (little-endian) or the last.
        first, last = read_u8(data, offset), read_u8(data, offset + 3)
        set_where(null, offset + 4, _family_to_ethertype(np.where(first != 0, first, last)), 4)
    loop = linktype == linktypes.LOOP
    if loop.any():
        set_where(loop, offset + 4, _family_to_ethertype(read_u32(data, offset)), 4)

    ppp = np.isin(linktype, (linktypes.PPP, linktypes.PPP_HDLC))
    if ppp.any():
        # Address and control bytes (0xff 0x03) are often compressed away.
        framed = read_u16(data, offset) == 0xFF03
        start = np.where(framed, offset + 2, offset)
        set_where(ppp, start + 2, _ppp_ethertype(read_u16(data, start)), np.where(framed, 4, 2)[ppp])

    vlan = np.zeros(n, np.int64)
    for _ in range(_MAX_TAGS):
        tagged = np.isin(ethertype, _VLAN_TAGS)
        if not tagged.any():
            break
        outer = tagged & (vlan == 0)
        vlan[outer] = read_u16(data, net[outer]) & 0x0FFF
        ethertype[tagged] = read_u16(data, net[tagged] + 2)
        net[tagged] += 4
        header_len[tagged] += 4
    pppoe = ethertype == _PPPOE_SESSION
    if pppoe.any():
        ethertype[pppoe] = _ppp_ethertype(read_u16(data, net[pppoe] + 6))
        net[pppoe] += 8
        header_len[pppoe] += 8

    # Frames cut before the network header carry nothing we can read.
    ethertype[caplen < header_len] = 0
    return net, ethertype, vlan
