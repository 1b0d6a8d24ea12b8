"""SOCKS4/4a and SOCKS5: the client greeting and the server's choice or grant, checked together; SOCKS5 also
reversed, the proxy connecting out to its client."""

from __future__ import annotations

import numpy as np

from features.signatures.base import TCP, Detection, Signature, SignatureView, on_candidates, one_of, rows_with, u8

ATYP = {1: "IPv4", 3: "domain", 4: "IPv6"}


def _socks5(view, client, server):
    """SOCKS5 greeting (05 n methods[n]) at packet `client` and the method choice (05 method, one of those
    offered or 0xFF, none acceptable) at packet `server`: (greeting, greeting and choice, methods offered)."""
    hc, hs = view.head(client), view.head(server)
    n = u8(hc, 1)
    greeting = (client >= 0) & (u8(hc, 0) == 5) & (n >= 1) & (n <= 10) & (view.size(client) >= 2 + n) & \
        (view.held(client) >= 2 + n)
    offered = np.zeros(view.m, bool)
    for j in range(10):
        offered |= (j < n) & (hc[:, 2 + j] == hs[:, 1])
    choice = (server > client) & (view.size(server) == 2) & (u8(hs, 0) == 5) & (offered | (u8(hs, 1) == 0xFF))
    return greeting, greeting & choice, n


def _detect(view: SignatureView) -> Detection:
    tcp = view.proto == TCP
    i0, r0 = view.index(0), view.index(1)
    hi, hr = view.head(i0), view.head(r0)
    c_size, s_size = view.size(i0), view.size(r0)
    first = tcp & (i0 == 0)
    greeting, socks5, n = _socks5(view, np.where(first, i0, -1), r0)
    # Reverse SOCKS (a proxy that connects out to its client, past firewalls that only stop inbound
    # connections): the responder greets, and the initiator's first payload after the greeting chooses.
    i_after = np.where(i0 > r0, i0, view.index(0, 1))
    _, reverse, n_reverse = _socks5(view, np.where(tcp & (r0 >= 0), r0, -1), i_after)
    reverse &= ~socks5
    # SOCKS4: 04 cmd port ip userid 00 / 00 5A-5D port ip (8 bytes).
    request4 = first & (u8(hi, 0) == 4) & one_of(u8(hi, 1), (1, 2)) & (c_size >= 9)
    grant4 = (s_size == 8) & (u8(hr, 0) == 0) & (u8(hr, 1) >= 0x5A) & (u8(hr, 1) <= 0x5D)
    socks4 = request4 & grant4
    score = np.where(socks5 | reverse | socks4, 1.0, np.where(greeting | request4, 0.3, 0.0))
    evidence = {}
    for r, offered, chosen, *request in rows_with(socks5, n, hr[:, 1], *_request(view, view.index(0, 1))):
        evidence[r] = f"socks5: greeting offering {offered} method(s), server chose 0x{chosen:02x}" + _text(*request)
    for r, offered, chosen, *request in rows_with(reverse, n_reverse, view.head(i_after)[:, 1],
                                                  *_request(view, view.index(1, 1))):
        evidence[r] = f"socks5, reverse (the proxy connected out to its client): responder's greeting offering " \
                      f"{offered} method(s), initiator chose 0x{chosen:02x}" + _text(*request)
    for r, command, size, reply in rows_with(socks4, hi[:, 1], c_size, hr[:, 1]):
        evidence[r] = f"socks4: command {command} request {size} B, reply 0x{reply:02x}"
    return Detection(score, evidence)


def _request(view, index):
    """Whether the packet at `index` is the SOCKS5 request that follows a greeting, its command and its address
    type."""
    head = view.head(index)
    return (head[:, 0] == 5) & (view.held(index) >= 4), head[:, 1], head[:, 3]


def _text(seen, command, address_type) -> str:
    """The request, as evidence."""
    return f", request command {command} to {ATYP.get(address_type, 'unknown')} address" if seen else ""


def detect(view: SignatureView) -> Detection:
    h0, h1 = view.head(view.index(0)), view.head(view.index(1))
    return on_candidates(view, (view.proto == TCP) & (one_of(h0[:, 0], (4, 5)) | (h1[:, 0] == 5)), _detect)


SIGNATURE = Signature(
    name="socks", title="SOCKS", kind="proxy", detect=detect, ports=(("tcp", 1080),),
    summary="SOCKS5 greeting and method choice (either way round), or SOCKS4 request and grant",
)
