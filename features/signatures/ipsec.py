"""IPsec: IKEv1/IKEv2 headers over UDP (with the NAT-T non-ESP marker on 4500) answered with the same
initiator SPI and a responder SPI; ESP and AH as IP protocols 50/51 or ESP in UDP, recognised by a fixed
SPI per direction with sequence numbers that count up by one."""

from __future__ import annotations

import numpy as np

from features.signatures.base import (UDP, Detection, Signature, SignatureView, on_candidates, one_of, rows_with,
                                      same_bytes, u32, u8)

ESP, AH = 50, 51
IKE_VERSIONS = {0x10: "ikev1", 0x20: "ikev2"}
IKEV1_EXCHANGES = (2, 4, 5, 32)          # identity protection, aggressive, informational, quick
IKEV2_EXCHANGES = (34, 35, 36, 37)       # IKE_SA_INIT, IKE_AUTH, CREATE_CHILD_SA, INFORMATIONAL


def _ike_header(head, size, held, marker):
    """Is this an ISAKMP header at offset 0 or, after a 4-byte zero non-ESP marker, at 4?"""
    o = 4 if marker else 0
    version = u8(head, o + 17)
    exchange = u8(head, o + 18)
    ok = (held >= o + 28) & (u32(head, o + 24) == size - o) & one_of(version, IKE_VERSIONS)
    ok &= np.where(version == 0x20, one_of(exchange, IKEV2_EXCHANGES), one_of(exchange, IKEV1_EXCHANGES))
    ok &= (u32(head, o) | u32(head, o + 4)) != 0            # initiator SPI is never zero
    if marker:
        ok &= u32(head, 0) == 0
    return ok


def _esp_run(view, direction, offset, packets=3):
    """First `packets` packets of a direction carry one SPI and sequence numbers n, n+1, n+2..."""
    ok = np.ones(view.m, bool)
    first = prev = None
    for j in range(packets):
        idx = view.index(direction, j)
        h = view.head(idx)
        ok &= (idx >= 0) & (view.held(idx) >= offset + 8) & (view.size(idx) >= offset + 16)
        spi, seq = u32(h, offset), u32(h, offset + 4)
        ok &= spi >= 256                     # SPIs 1-255 are reserved
        if first is None:
            first = spi
            ok &= (seq >= 1) & (seq < 1 << 31)
        else:
            ok &= (spi == first) & (seq == prev + 1)
        prev = seq
    return ok, first


def _detect(view: SignatureView) -> Detection:
    i0, r0 = view.index(0), view.index(1)
    hi, hr = view.head(i0), view.head(r0)
    udp = view.proto == UDP
    score = np.zeros(view.m)
    evidence = {}
    ike = np.zeros(view.m, bool)
    for marker in (False, True):
        o = 4 if marker else 0
        request = udp & (i0 == 0) & _ike_header(hi, view.size(i0), view.held(i0), marker)
        answer = request & _ike_header(hr, view.size(r0), view.held(r0), marker)
        linked = answer & same_bytes(hr, o, hi, o, 8)
        ike |= answer
        # Unlinked answers happen when both peers initiate at once; valid headers both ways still suffice. A
        # request alone still fires, for less: a version, an exchange type and a length field that equals the
        # datagram are no accident, and an unanswered IKE request is a VPN being attempted.
        score = np.maximum(score, np.where(linked, 1.0, np.where(answer, 0.8, np.where(request, 0.6, 0.0))))
        for r, version, exchange, size, answered, spi_linked, reply_size in rows_with(
                request, hi[:, o + 17], hi[:, o + 18], view.size(i0), answer, linked, view.size(r0)):
            if answered:
                link = "initiator SPI linked" if spi_linked else "both peers initiating"
                reply = f" / response {reply_size} B, {link}"
            else:
                reply = ", no response seen"
            evidence[r] = (f"ipsec: {IKE_VERSIONS[version]} exchange {exchange} request {size} B{reply}"
                           f"{', NAT-T non-ESP marker' if marker else ''}")
    # ESP in UDP (NAT-T) needs both directions; ESP/AH as IP protocols are what their number says.
    esp_up, _ = _esp_run(view, 0, 0)
    esp_down, _ = _esp_run(view, 1, 0)
    esp_udp = udp & esp_up & esp_down & ~ike
    score = np.where(esp_udp, np.maximum(score, 0.9), score)
    for r in np.flatnonzero(esp_udp):
        evidence[r] = "ipsec: ESP in UDP, one SPI per direction, sequence numbers counting up by one both ways"
    for proto, name, offset in ((ESP, "ESP", 0), (AH, "AH", 4)):
        on = view.proto == proto
        if not on.any():
            continue
        run, spi = _esp_run(view, 0, offset, packets=2)
        score = np.where(on, np.maximum(score, 1.0), score)
        for r in np.flatnonzero(on):
            detail = f", SPI 0x{spi[r]:08x} with sequence counting" if run[r] else ""
            evidence[r] = f"ipsec: IP protocol {proto} ({name}){detail}"
    return Detection(score, evidence, {"ike_exchange": ike.astype(np.int8)})


def detect(view: SignatureView) -> Detection:
    i0 = view.index(0)
    h0, size = view.head(i0), view.size(i0)
    udp = view.proto == UDP
    # An IKE version where the header puts it and a length field that equals the datagram (with or without the
    # non-ESP marker); ESP's first packet carries an SPI that is not reserved and a sequence number in range.
    ike = ((one_of(h0[:, 17], IKE_VERSIONS) & (u32(h0, 24) == size))
           | (one_of(h0[:, 21], IKE_VERSIONS) & (u32(h0, 28) == size - 4)))
    seq = u32(h0, 4)
    esp = (view.payload_packets >= 3).all(1) & (size >= 16) & (u32(h0, 0) >= 256) & (seq >= 1) & (seq < 1 << 31)
    candidates = (udp & (ike | esp)) | one_of(view.proto, (ESP, AH))
    return on_candidates(view, candidates, _detect, ike_exchange=0)


SIGNATURE = Signature(
    name="ipsec", title="IPsec", kind="vpn", detect=detect,
    ports=(("udp", 500), ("udp", 4500)),
    summary="IKE header with length and SPI linkage, NAT-T marker, ESP/AH SPI and sequence pattern",
    features=(("ike_exchange", "int8", "flag", "IKE headers from both sides (an exchange)"),),
)
