"""Companion flows: a tunnel's other flows to the same server.

A VPN or proxy client rarely opens one flow only. SoftEther probes its server over UDP and ICMP beside the
TCP session, proxies open a connection per page, OpenVPN falls back from UDP to TCP. Each of these side flows
may be too short or too one-sided to be flagged on its own, yet an analyst who sees a confirmed tunnel to a
server wants every flow to that server. So once a flow to a server is flagged with evidence, later flows of
the same capture to that server address are flagged when the model leans to vpn or proxy (score at least
COMPANION_SCORE), with that flow's label and protocol, and that flow as their evidence. The address is used as
a key only, never as a feature: a flow to a flagged server with a normal-looking score stays normal.
"""

from __future__ import annotations

from collections import OrderedDict

COMPANION_SCORE = 0.5
MAX_SERVERS = 65_536


class ServerMemory:
    """Servers of flagged flows per capture, each with the (label, protocol, note) of the flow that flagged it;
    the least recently flagged are forgotten past `max_servers`, so memory stays bounded on any input."""

    def __init__(self, max_servers: int = MAX_SERVERS):
        self.max_servers = max_servers
        self._notes: OrderedDict[tuple[str, str], tuple[str, str, str]] = OrderedDict()

    def remember(self, keys, notes) -> None:
        for key, note in zip(keys, notes):
            self._notes.pop(key, None)
            self._notes[key] = note
        while len(self._notes) > self.max_servers:
            self._notes.popitem(last=False)

    def recall(self, keys) -> list:
        """The (label, protocol, note) of each key's flagged flow, or None."""
        return [self._notes.get(key) for key in keys]

    def clear(self) -> None:
        self._notes.clear()


def server_keys(frame) -> list[tuple[str, str]] | None:
    """(capture, responder address) of every flow; None for a frame of features without flow columns."""
    if "dst_ip" not in frame:
        return None
    capture = frame["capture"].to_numpy(dtype=object) if "capture" in frame else [""] * len(frame)
    return list(zip(capture, frame["dst_ip"].to_numpy(dtype=object)))
