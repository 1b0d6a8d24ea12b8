"""SOCKS4/4a and SOCKS5: the client greeting and the server's choice or grant, checked together; SOCKS5 also
reversed, the proxy connecting out to its client."""

from __future__ import annotations

from features import native
from features.signatures.base import Detection, Signature, SignatureView, evidence_texts

ATYP = {1: "IPv4", 3: "domain", 4: "IPv6"}


def detect(view: SignatureView) -> Detection:
    # The SOCKS5 greeting and choice (either way round: a reverse proxy connects out to its client, past firewalls
    # that only stop inbound connections, and greets it), SOCKS4 request and grant: socks.c, one pass.
    packets, at = view.packets()
    score, facts = native.socks_handshakes(packets, at, view.proto)
    kind, offered, chosen, *request = facts.T
    evidence = evidence_texts(kind == 1, lambda n, method, *seen: (
        f"socks5: greeting offering {n} method(s), server chose 0x{method:02x}" + _text(*seen)), offered, chosen,
        *request)
    evidence.update(evidence_texts(kind == 2, lambda n, method, *seen: (
        f"socks5, reverse (the proxy connected out to its client): responder's greeting offering "
        f"{n} method(s), initiator chose 0x{method:02x}" + _text(*seen)), offered, chosen, *request))
    evidence.update(evidence_texts(kind == 3, lambda command, size, reply: (
        f"socks4: command {command} request {size} B, reply 0x{reply:02x}"), offered, view.size(view.index(0)),
        chosen))
    return Detection(score, evidence)


def _text(seen, command, address_type) -> str:
    """The request that follows the greeting, as evidence."""
    return f", request command {command} to {ATYP.get(address_type, 'unknown')} address" if seen else ""


SIGNATURE = Signature(
    name="socks", title="SOCKS", kind="proxy", detect=detect, ports=(("tcp", 1080),),
    summary="SOCKS5 greeting and method choice (either way round), or SOCKS4 request and grant",
)
