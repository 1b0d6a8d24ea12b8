"""Facebook's Zero protocol (recognised, not a VPN): QUIC's crypto handshake carried over TCP by Facebook's
mobile apps. The client opens with the preamble "1QTV", a version byte and a CHLO message whose nonce and keys
make the rest of the payload random; the server answers with a "1QTV" frame of its own.

Recognised, the flow is not flagged by the model alone (detector.pipeline), which took it for a fully
encrypted proxy. Its score is not a model input: no training capture carries the protocol."""

from __future__ import annotations

import numpy as np

from features.signatures.base import TCP, Detection, Signature, SignatureView, equal, on_candidates, startswith

PREAMBLE = b"1QTV"
CLIENT_HELLO = b"CHLO"
CLIENT_HELLO_AT = 9            # after the preamble, the version byte and a 4-byte field


def opens_with_preamble(view: SignatureView) -> np.ndarray:
    """TCP flows whose client stream starts with Zero's preamble."""
    return view.memo("zero", lambda: (view.proto == TCP) & startswith(*view.prefix(0), PREAMBLE))


def _detect(view: SignatureView) -> Detection:
    i0, r0 = view.index(0), view.index(1)
    hello = (i0 == 0) & equal(view.head(i0), CLIENT_HELLO_AT, CLIENT_HELLO) & \
        (view.held(i0) >= CLIENT_HELLO_AT + len(CLIENT_HELLO))
    answer = (r0 > 0) & startswith(*view.prefix_start(1), PREAMBLE)
    return Detection(np.where(hello & answer, 1.0, np.where(hello, 0.7, 0.0)))


def detect(view: SignatureView) -> Detection:
    return on_candidates(view, opens_with_preamble(view), _detect)


SIGNATURE = Signature(name="fbzero", title="Facebook Zero", kind="protocol", detect=detect, model_input=False,
                      summary="Zero's 1QTV preamble and CHLO from the client, a 1QTV frame from the server")
