"""DTLS (recognised, not a VPN by itself): a ClientHello record with a DTLS version answered by DTLS records.
AnyConnect's DTLS channel has its own signature."""

from __future__ import annotations

import numpy as np

from features.signatures.base import UDP, Detection, Signature, SignatureView, on_candidates, one_of, u16, u8

VERSIONS = (0xFEFF, 0xFEFD, 0xFEFC)


def _detect(view: SignatureView) -> Detection:
    i0, r0 = view.index(0), view.index(1)
    hi, hr = view.head(i0), view.head(r0)
    hello = (view.proto == UDP) & (i0 == 0) & (u8(hi, 0) == 22) & one_of(u16(hi, 1), VERSIONS) & (u8(hi, 13) == 1) \
        & (view.held(i0) >= 14)
    answer = one_of(u8(hr, 0), (20, 21, 22)) & one_of(u16(hr, 1), VERSIONS) & (view.held(r0) >= 13)
    fires = hello & answer
    return Detection(np.where(fires, 1.0, np.where(hello, 0.4, 0.0)))


def detect(view: SignatureView) -> Detection:
    h0 = view.head(view.index(0))
    return on_candidates(view, (view.proto == UDP) & (h0[:, 0] == 22), _detect)


SIGNATURE = Signature(name="dtls", title="DTLS", kind="protocol", detect=detect, ports=(),
                      summary="DTLS ClientHello answered by DTLS records")
