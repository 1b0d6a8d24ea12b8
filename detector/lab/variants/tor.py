"""Tor to a private bridge, vanilla and over obfs4.

A private bridge without directory authorities gives the link layer only: the client completes the TLS link
handshake with the bridge and fetches the bridge's descriptor through it (a BEGIN_DIR stream inside the link),
then stays at bootstrap 30 % because no consensus exists. That descriptor fetch is the payload check here.
"""

from __future__ import annotations

import re
import time
from functools import partial

from detector.lab.netns import LabError
from detector.lab.variant import Variant, register


def _wait_file(path, proc, timeout: float = 20):
    deadline = time.monotonic() + timeout
    while not path.exists() or not path.read_text().strip():
        if not proc.alive() or time.monotonic() > deadline:
            raise LabError(f"tor bridge wrote no {path.name}: {proc.output()[-400:]}")
        time.sleep(0.1)
    return path.read_text()


def tor(s, transport: str):
    sd, cd = s.path("tor/server"), s.path("tor/client")
    sd.mkdir(exist_ok=True)
    cd.mkdir(exist_ok=True)
    sd.chmod(0o700)
    cd.chmod(0o700)
    orport = s.port if transport == "vanilla" else 9001
    server_rc = f"""DataDirectory {sd}
ORPort {s.server_ip}:{orport}
Address {s.server_ip}
BridgeRelay 1
PublishServerDescriptor 0
AssumeReachable 1
ExitRelay 0
SocksPort 0
Log notice stdout
"""
    if transport == "obfs4":
        server_rc += f"""ServerTransportPlugin obfs4 exec /usr/bin/obfs4proxy
ServerTransportListenAddr obfs4 {s.server_ip}:{s.port}
ExtORPort auto
"""
    sp = s.server(["tor", "--defaults-torrc", "/dev/null", "-f", s.write("tor/server.torrc", server_rc)], "tor-bridge")
    fingerprint = _wait_file(sd / "fingerprint", sp).split()[1]
    if transport == "obfs4":
        line = _wait_file(sd / "pt_state" / "obfs4_bridgeline.txt", sp)
        m = re.search(r"cert=(\S+) iat-mode=(\d)", line)
        s.check(m is not None, "no obfs4 cert in the bridge line")
        bridge = f"Bridge obfs4 {s.server_ip}:{s.port} {fingerprint} cert={m.group(1)} iat-mode={m.group(2)}"
        extra = "ClientTransportPlugin obfs4 exec /usr/bin/obfs4proxy\n"
    else:
        bridge = f"Bridge {s.server_ip}:{s.port} {fingerprint}"
        extra = ""
    s.wait_server(proc=sp, timeout=20)
    client_rc = f"""DataDirectory {cd}
UseBridges 1
{bridge}
{extra}SocksPort 127.0.0.1:9050
Log notice stdout
"""
    cp = s.client(["tor", "--defaults-torrc", "/dev/null", "-f", s.write("tor/client.torrc", client_rc)], "tor-client")
    cp.wait_output("new bridge descriptor", 30)
    # Keep the link up for a while, as an idle client waiting for a consensus would.
    time.sleep({"idle": 6, "interactive": 4}.get(s.pattern, 2) + s.rng.uniform(0, 2))
    s.endpoint("tcp")
    return None


register(
    Variant("tor_bridge", "proxy", "tor", "tor private bridge (link layer only)", ("tor",), 9001,
            partial(tor, transport="vanilla")),
    Variant("tor_obfs4_bridge", "proxy", "tor", "tor private bridge over obfs4 (link layer only)", ("tor", "obfs4proxy"),
            9443, partial(tor, transport="obfs4")),
)
