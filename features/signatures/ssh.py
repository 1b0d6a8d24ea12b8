"""SSH: both sides open with an "SSH-" banner. Used as a tunnel (port forwarding, SOCKS over -D, sshuttle)
when the client's packets are request-sized (not keystrokes or window adjusts) and the server's are
response-sized: request/response traffic both ways, unlike an interactive shell or a one-way copy (scp,
rsync: one side bulk, the other acknowledgements); or when both sides send bulk at once."""

from __future__ import annotations

import numpy as np

from features.signatures.base import Detection, Signature, SignatureView, evidence_texts, on_candidates

MIN_CLIENT_PACKETS = 10
REQUEST_BYTES = 150            # client packets of forwarded requests; keystrokes and window adjusts are 36-120
RESPONSE_BYTES = 500           # server packets of forwarded responses; acknowledgements of an upload are small
BULK_BYTES = 1000              # median payload of a direction that carries a transfer


def detect_ssh(view: SignatureView) -> Detection:
    return Detection(np.where(view.both_ssh(), 1.0, 0.0))


def detect_tunnel(view: SignatureView) -> Detection:
    return on_candidates(view, view.both_ssh(), _tunnel)


def _tunnel(view: SignatureView) -> Detection:
    """Over SSH flows alone (both banners seen)."""
    c = view.columns
    packets = c["src2dst_payload_packets"]
    requests = (c["src2dst_payload_p75"] >= REQUEST_BYTES) & (c["src2dst_payload_p75"] < 1000)
    responses = c["dst2src_payload_p50"] >= RESPONSE_BYTES
    request_response = (packets >= MIN_CLIENT_PACKETS) & requests & responses
    # Full-size packets both ways: an upload and a download in one connection, which scp and rsync never do.
    bulk_both = (packets >= MIN_CLIENT_PACKETS) & (c["dst2src_payload_packets"] >= MIN_CLIENT_PACKETS) \
        & (c["src2dst_payload_p50"] >= BULK_BYTES) & (c["dst2src_payload_p50"] >= BULK_BYTES)
    fires = request_response | bulk_both
    sizes = (c["src2dst_payload_p75"], c["src2dst_payload_p50"], c["dst2src_payload_p50"])
    evidence = evidence_texts(fires, _evidence, request_response, packets, *sizes)
    return Detection(np.where(fires, 0.7, 0.2), evidence)


def _evidence(requesting, n, client_p75, client_p50, server_p50) -> str:
    if requesting:
        return (f"ssh tunnel: {n} client payload packets, client p75 {client_p75:.0f} B (requests, not "
                f"keystrokes), server median {server_p50:.0f} B (responses)")
    return (f"ssh tunnel: bulk both ways, client median {client_p50:.0f} B and "
            f"server median {server_p50:.0f} B (an upload and a download at once)")


SIGNATURES = (
    Signature(name="ssh", title="SSH", kind="protocol", detect=detect_ssh, ports=(("tcp", 22),),
              summary="SSH banners from both sides"),
    Signature(name="ssh_tunnel", title="SSH tunnel", kind="tunnel", detect=detect_tunnel,
              summary="SSH carrying request-sized client packets and response-sized server packets"),
)
