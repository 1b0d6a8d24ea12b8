"""SSH: both sides open with an "SSH-" banner. Used as a tunnel (port forwarding, SOCKS over -D, sshuttle)
rather than interactively when the client's packets are machine-paced and not keystroke-sized."""

from __future__ import annotations

import numpy as np

from features.signatures.base import TCP, Detection, Signature, SignatureView, line, startswith

MIN_CLIENT_PACKETS = 20
KEYSTROKE_BYTES = 100          # an encrypted keystroke with MAC is 36-100 bytes
HUMAN_GAP_MS = 30.0


def _ssh(view):
    client, clen = view.prefix(0)
    server, slen = view.prefix(1)
    return (view.proto == TCP) & startswith(client, clen, b"SSH-") & startswith(server, slen, b"SSH-")


def detect_ssh(view: SignatureView) -> Detection:
    ssh = _ssh(view)
    client, clen = view.prefix(0)
    server, slen = view.prefix(1)
    evidence = {r: f"ssh: client '{line(client, clen, r, 60)}', server '{line(server, slen, r, 60)}'"
                for r in np.flatnonzero(ssh)}
    return Detection(np.where(ssh, 1.0, 0.0), evidence)


def detect_tunnel(view: SignatureView) -> Detection:
    c = view.columns
    ssh = _ssh(view)
    packets = c["src2dst_payload_packets"]
    machine_paced = c["src2dst_iat_p50"] < HUMAN_GAP_MS
    bulky = (c["src2dst_payload_p75"] > KEYSTROKE_BYTES) | (c["dst2src_payload_p50"] > 2 * KEYSTROKE_BYTES)
    fires = ssh & (packets >= MIN_CLIENT_PACKETS) & machine_paced & bulky
    evidence = {r: (f"ssh tunnel: {packets[r]} client payload packets, median client gap "
                    f"{c['src2dst_iat_p50'][r]:.1f} ms, client p75 {c['src2dst_payload_p75'][r]:.0f} B")
                for r in np.flatnonzero(fires)}
    return Detection(np.where(fires, 0.7, np.where(ssh, 0.2, 0.0)), evidence)


SIGNATURES = (
    Signature(name="ssh", title="SSH", kind="protocol", detect=detect_ssh, ports=(("tcp", 22),),
              summary="SSH banners from both sides"),
    Signature(name="ssh_tunnel", title="SSH tunnel", kind="tunnel", detect=detect_tunnel,
              summary="SSH whose client side is machine-paced and not keystroke-sized"),
)
