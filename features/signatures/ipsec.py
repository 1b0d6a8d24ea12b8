"""IPsec: IKEv1/IKEv2 headers over UDP (with the NAT-T non-ESP marker on 4500) answered with the same
initiator SPI and a responder SPI; ESP and AH as IP protocols 50/51 or ESP in UDP, recognised by a fixed
SPI per direction with sequence numbers that count up by one."""

from __future__ import annotations

import numpy as np

from features import native
from features.signatures.base import Detection, Signature, SignatureView, evidence_texts

IP_PROTOCOLS = {50: "ESP", 51: "AH"}
IKE_VERSIONS = {0x10: "ikev1", 0x20: "ikev2"}


def detect(view: SignatureView) -> Detection:
    # The tests (IKE headers with a length field that equals the datagram, exchange types of the version, SPI
    # linkage; ESP's SPI and sequence numbers) are in ipsec.c, one pass over the flows.
    packets, at = view.packets()
    score, facts = native.ipsec_handshakes(packets, at, view.proto, view.payload_packets)
    fact = dict(zip(native.IPSEC_FACTS, facts.T))
    sizes = view.size(view.index(0)), view.size(view.index(1))
    evidence = evidence_texts(fact["evidence"] == 1, _ike, fact["version"], fact["exchange"], sizes[0],
                              fact["answered"], fact["linked"], sizes[1], fact["marker"])
    for r in np.flatnonzero(fact["evidence"] == 2).tolist():
        evidence[r] = "ipsec: ESP in UDP, one SPI per direction, sequence numbers counting up by one both ways"
    evidence.update(evidence_texts(fact["evidence"] == 3, _ip_protocol, view.proto, fact["spi"]))
    return Detection(score, evidence, {"ike_exchange": fact["ike"].astype(np.int8)})


def _ike(version, exchange, size, answered, spi_linked, reply_size, marker) -> str:
    if answered:
        link = "initiator SPI linked" if spi_linked else "both peers initiating"
        reply = f" / response {reply_size} B, {link}"
    else:
        reply = ", no response seen"
    return (f"ipsec: {IKE_VERSIONS[version]} exchange {exchange} request {size} B{reply}"
            f"{', NAT-T non-ESP marker' if marker else ''}")


def _ip_protocol(proto, spi) -> str:
    detail = f", SPI 0x{spi:08x} with sequence counting" if spi >= 0 else ""
    return f"ipsec: IP protocol {proto} ({IP_PROTOCOLS[proto]}){detail}"


SIGNATURE = Signature(
    name="ipsec", title="IPsec", kind="vpn", detect=detect,
    ports=(("udp", 500), ("udp", 4500)),
    summary="IKE header with length and SPI linkage, NAT-T marker, ESP/AH SPI and sequence pattern",
    features=(("ike_exchange", "int8", "flag", "IKE headers from both sides (an exchange)"),),
)
