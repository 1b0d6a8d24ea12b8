"""Cisco AnyConnect protocol: ocserv and openconnect, with and without the DTLS channel."""

from __future__ import annotations

from functools import partial

from detector.lab.session import Access
from detector.lab.variant import Variant, register

# The stock vpnc-script rewrites resolv.conf and host routes; this one only touches the client namespace.
SCRIPT = """#!/bin/sh
case "$reason" in
  connect)
    ip link set "$TUNDEV" up mtu "${INTERNAL_IP4_MTU:-1400}"
    ip addr add "$INTERNAL_IP4_ADDRESS/32" dev "$TUNDEV"
    ip route add {inner}/32 dev "$TUNDEV"
    ;;
esac
exit 0
"""


def anyconnect(s, dtls: bool):
    d = s.path("ocserv")
    d.mkdir(exist_ok=True)
    password = f"lab-{s.seed:x}"
    s.net.ns_run(s.net.server_ns, ["ocpasswd", "-c", str(d / "passwd"), "labuser"], input=f"{password}\n{password}\n")
    conf = s.write("ocserv/ocserv.conf", f"""auth = "plain[passwd={d}/passwd]"
listen-host = {s.server_ip}
tcp-port = {s.port}
udp-port = {s.port}
run-as-user = nobody
run-as-group = nogroup
socket-file = {d}/ocserv.sock
pid-file = {d}/ocserv.pid
use-occtl = false
server-cert = {s.pki.server_crt}
server-key = {s.pki.server_key}
isolate-workers = false
max-clients = 16
max-same-clients = 2
keepalive = {s.rng.choice((5, 30, 32400))}
dpd = {s.rng.choice((5, 30, 90))}
mobile-dpd = 1800
try-mtu-discovery = false
tls-priorities = "NORMAL:%SERVER_PRECEDENCE"
auth-timeout = 240
cookie-timeout = 300
deny-roaming = false
rekey-time = 172800
rekey-method = ssl
device = vpns
predictable-ips = true
ipv4-network = 10.11.0.0
ipv4-netmask = 255.255.255.0
route = {s.inner_ip}/255.255.255.255
cisco-client-compat = true
dtls-legacy = true
use-utmp = false
""")
    sp = s.server(["ocserv", "-f", "-d", "1", "-c", conf], "ocserv", private_run=True)
    s.wait_server(proc=sp)
    script = s.write("ocserv/vpnc-script-lab", SCRIPT.replace("{inner}", s.inner_ip), 0o755)
    cli = ["openconnect", "--protocol=anyconnect", "--user=labuser", "--passwd-on-stdin", "--cafile", s.pki.ca,
           "--script", script, "--non-inter", "--servercert", "pin-sha256:" + _pin(s)] + ([] if dtls else ["--no-dtls"])
    import subprocess
    cp = s.client(cli + [f"https://{s.server_ip}:{s.port}/"], "openconnect", private_run=True, stdin=subprocess.PIPE)
    cp.popen.stdin.write(f"{password}\n".encode())
    cp.popen.stdin.close()
    s.wait_route(proc=cp, timeout=20)
    if dtls:
        cp.wait_output("Established DTLS connection", 15)
        s.endpoint("udp")
    s.endpoint("tcp")
    return Access()


def _pin(s) -> str:
    import base64
    import hashlib
    import subprocess
    der = subprocess.run(["openssl", "x509", "-in", str(s.pki.server_crt), "-pubkey", "-noout"], capture_output=True, check=True).stdout
    spki = subprocess.run(["openssl", "pkey", "-pubin", "-outform", "der"], input=der, capture_output=True, check=True).stdout
    return base64.b64encode(hashlib.sha256(spki).digest()).decode()


register(
    Variant("anyconnect_dtls", "vpn", "anyconnect", "ocserv + openconnect (TLS + DTLS)", ("ocserv", "openconnect"), 443,
            partial(anyconnect, dtls=True)),
    Variant("anyconnect_tls", "vpn", "anyconnect", "ocserv + openconnect (TLS only)", ("ocserv", "openconnect"), 443,
            partial(anyconnect, dtls=False)),
)
