"""Tor through a private bridge, vanilla and over obfs4, inside a private Tor network.

The server namespace runs a whole test network (TestingTorNetwork): one directory authority and one more
relay, both exits towards the inner web server, on loopback addresses of the server, plus the bridge on the
server's veth address. The client knows only the bridge, bootstraps through it and builds real three-hop
circuits (bridge, relay, exit); the inner web site is fetched through Tor's SOCKS port. Only the client-bridge
link crosses the captured veth.
"""

from __future__ import annotations

import re
import subprocess
import time
from functools import partial

from detector.lab.netns import LabError
from detector.lab.session import Access
from detector.lab.variant import Variant, register

AUTH_IP, RELAY_IP = "10.99.2.1", "10.99.2.2"
SOCKS_PORT = 9050

COMMON = """TestingTorNetwork 1
{dirauth}
Log notice stdout
AssumeReachable 1
TestingV3AuthInitialVotingInterval 10
TestingV3AuthInitialVoteDelay 2
TestingV3AuthInitialDistDelay 2
V3AuthVotingInterval 10
V3AuthVoteDelay 2
V3AuthDistDelay 2
TestingDirAuthVoteExit *
TestingDirAuthVoteGuard *
TestingMinExitFlagThreshold 0
PathsNeededToBuildCircuits 0.25
GeoIPFile /dev/null
GeoIPv6File /dev/null
"""
# Exit policies name ports only: the consensus summarises policies by port, and a policy for one address
# would read as "no exit". The server namespace has no route anywhere but the lab, so this reaches nothing else.
EXIT = "ExitRelay 1\nExitPolicy accept *:80\nExitPolicy accept *:443\nExitPolicy reject *:*\n"


def _run(cmd, **kw):
    return subprocess.run([str(c) for c in cmd], capture_output=True, text=True, timeout=60, **kw)


def _fingerprint(s, datadir, port: int) -> str:
    datadir.mkdir(parents=True, exist_ok=True)
    datadir.chmod(0o700)
    empty = s.write("tor/empty", "")
    out = _run(["tor", "--list-fingerprint", "--DataDirectory", datadir, "--ORPort", port,
                "--defaults-torrc", empty, "-f", empty]).stdout.strip().splitlines()
    if not out:
        raise LabError("tor --list-fingerprint printed nothing")
    return "".join(out[-1].split()[1:])


def _wait_for_exits(path, proc, timeout: float = 90) -> None:
    """Wait until the bridge holds a consensus listing two exits, so the client bootstraps at once."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if path.exists() and len(re.findall(r"^s .*\bExit\b", path.read_text(errors="replace"), re.M)) >= 2:
            return
        if not proc.alive():
            raise LabError(f"tor bridge exited: {proc.output()[-400:]}")
        time.sleep(0.5)
    raise LabError(f"the private Tor network gave the bridge no consensus with exits in {timeout:.0f} s")


def tor(s, transport: str):
    base = s.path("tor")
    base.mkdir(exist_ok=True)
    empty = s.write("tor/empty", "")
    auth = base / "auth"
    (auth / "keys").mkdir(parents=True, exist_ok=True)
    auth.chmod(0o700)
    _run(["tor-gencert", "--create-identity-key", "-m", "12", "-a", f"{AUTH_IP}:7000",
          "-i", auth / "keys/authority_identity_key", "-s", auth / "keys/authority_signing_key",
          "-c", auth / "keys/authority_certificate", "--passphrase-fd", "0"], input="\n")
    cert = (auth / "keys/authority_certificate").read_text()
    v3ident = re.search(r"^fingerprint (\S+)", cert, re.M).group(1)
    dirauth = (f"DirAuthority auth orport=5000 no-v2 v3ident={v3ident} {AUTH_IP}:7000 "
               f"{_fingerprint(s, auth, 5000)}")
    common = COMMON.format(dirauth=dirauth)
    bridge_dir = base / "bridge"
    bridge_fp = _fingerprint(s, bridge_dir, 9001)
    orport = s.port if transport == "vanilla" else 9001
    torrcs = {
        "auth": common + f"""DataDirectory {auth}
Nickname auth
Address {AUTH_IP}
ORPort {AUTH_IP}:5000
DirPort {AUTH_IP}:7000
SocksPort 0
AuthoritativeDirectory 1
V3AuthoritativeDirectory 1
ContactInfo auth@lab.test
{EXIT}""",
        "relay": common + f"""DataDirectory {base / 'relay'}
Nickname relay
Address {RELAY_IP}
ORPort {RELAY_IP}:5001
SocksPort 0
ContactInfo relay@lab.test
{EXIT}""",
        "bridge": common + f"""DataDirectory {bridge_dir}
Nickname bridge
Address {s.server_ip}
ORPort {s.server_ip}:{orport}
SocksPort 0
BridgeRelay 1
PublishServerDescriptor 0
ExitRelay 0
ContactInfo bridge@lab.test
""",
    }
    if transport == "obfs4":
        iat = s.rng.choice((0, 0, 1))
        torrcs["bridge"] += (f"ServerTransportPlugin obfs4 exec /usr/bin/obfs4proxy\n"
                             f"ServerTransportListenAddr obfs4 {s.server_ip}:{s.port}\n"
                             f"ServerTransportOptions obfs4 iat-mode={iat}\nExtORPort auto\n")
    (base / "relay").mkdir(exist_ok=True)
    (base / "relay").chmod(0o700)
    for ip in (AUTH_IP, RELAY_IP):
        s.srun(["ip", "addr", "add", f"{ip}/32", "dev", "lo"])
    procs = {name: s.server(["tor", "--defaults-torrc", empty, "-f", s.write(f"tor/{name}.torrc", rc)], f"tor-{name}")
             for name, rc in torrcs.items()}
    if transport == "obfs4":
        line_file = bridge_dir / "pt_state" / "obfs4_bridgeline.txt"
        deadline = time.monotonic() + 20
        while not (line_file.exists() and "cert=" in line_file.read_text()):
            if time.monotonic() > deadline:
                raise LabError("the obfs4 bridge wrote no bridge line")
            time.sleep(0.1)
        m = re.search(r"cert=(\S+) iat-mode=(\d)", line_file.read_text())
        bridge = f"Bridge obfs4 {s.server_ip}:{s.port} {bridge_fp} cert={m.group(1)} iat-mode={m.group(2)}"
        bridge += "\nClientTransportPlugin obfs4 exec /usr/bin/obfs4proxy"
    else:
        bridge = f"Bridge {s.server_ip}:{s.port} {bridge_fp}"
    s.wait_server(proc=procs["bridge"], timeout=20)
    _wait_for_exits(bridge_dir / "cached-microdesc-consensus", procs["bridge"])
    client_rc = common + f"""DataDirectory {base / 'client'}
UseBridges 1
{bridge}
SocksPort 127.0.0.1:{SOCKS_PORT}
"""
    (base / "client").mkdir(exist_ok=True)
    (base / "client").chmod(0o700)
    cp = s.client(["tor", "--defaults-torrc", empty, "-f", s.write("tor/client.torrc", client_rc)], "tor-client")
    cp.wait_output("Bootstrapped 100%", 90)
    s.endpoint("tcp")
    return Access(via={"kind": "socks5", "ip": "127.0.0.1", "port": SOCKS_PORT})


register(
    Variant("tor_bridge", "proxy", "tor", "tor private network via a private bridge", ("tor",), 9001,
            partial(tor, transport="vanilla"), setup_budget=120),
    # Labelled by what the wire shows: obfs4; Tor's TLS and cells ride inside it.
    Variant("tor_obfs4_bridge", "proxy", "obfs4", "tor private network via a private obfs4 bridge", ("tor", "obfs4proxy"),
            9443, partial(tor, transport="obfs4"), setup_budget=120),
)
