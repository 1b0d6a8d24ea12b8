"""SOCKS4/4a and SOCKS5: the client greeting and the server's choice or grant, checked together."""

from __future__ import annotations

import numpy as np

from features.signatures.base import TCP, Detection, Signature, SignatureView, on_candidates, u8

ATYP = {1: "IPv4", 3: "domain", 4: "IPv6"}


def _detect(view: SignatureView) -> Detection:
    tcp = view.proto == TCP
    i0, r0 = view.index(0), view.index(1)
    hi, hr = view.head(i0), view.head(r0)
    c_size, s_size = view.size(i0), view.size(r0)
    first = tcp & (i0 == 0)
    # SOCKS5: 05 n methods[n] / 05 method, the method one of those offered (or 0xFF, none acceptable).
    n = u8(hi, 1)
    greeting = first & (u8(hi, 0) == 5) & (n >= 1) & (n <= 10) & (c_size >= 2 + n) & (view.held(i0) >= 2 + n)
    offered = np.zeros(view.m, bool)
    for j in range(10):
        offered |= (j < n) & (hi[:, 2 + j] == hr[:, 1])
    choice = (s_size == 2) & (u8(hr, 0) == 5) & (offered | (u8(hr, 1) == 0xFF))
    socks5 = greeting & choice
    # SOCKS4: 04 cmd port ip userid 00 / 00 5A-5D port ip (8 bytes).
    request4 = first & (u8(hi, 0) == 4) & np.isin(u8(hi, 1), (1, 2)) & (c_size >= 9)
    grant4 = (s_size == 8) & (u8(hr, 0) == 0) & (u8(hr, 1) >= 0x5A) & (u8(hr, 1) <= 0x5D)
    socks4 = request4 & grant4
    score = np.where(socks5 | socks4, 1.0, np.where(greeting | request4, 0.3, 0.0))
    evidence = {}
    i1 = view.index(0, 1)
    h1 = view.head(i1)
    for r in np.flatnonzero(socks5):
        detail = ""
        if h1[r, 0] == 5 and view.held(i1)[r] >= 4:
            detail = f", request command {h1[r, 1]} to {ATYP.get(int(h1[r, 3]), 'unknown')} address"
        evidence[r] = f"socks5: greeting offering {n[r]} method(s), server chose 0x{hr[r, 1]:02x}{detail}"
    for r in np.flatnonzero(socks4):
        evidence[r] = f"socks4: command {hi[r, 1]} request {c_size[r]} B, reply 0x{hr[r, 1]:02x}"
    return Detection(score, evidence)


def detect(view: SignatureView) -> Detection:
    h0 = view.head(view.index(0))
    return on_candidates(view, (view.proto == TCP) & np.isin(h0[:, 0], (4, 5)), _detect)


SIGNATURE = Signature(
    name="socks", title="SOCKS", kind="proxy", detect=detect, ports=(("tcp", 1080),),
    summary="SOCKS5 greeting and method choice, or SOCKS4 request and grant",
)
