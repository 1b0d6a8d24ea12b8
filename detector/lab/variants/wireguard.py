"""WireGuard in userspace (wireguard-go): the host kernel has no WireGuard module."""

from __future__ import annotations

from detector.lab.session import Access
from detector.lab.variant import Endpoint, Variant, register
from detector.lab.variants.common import q, wg_keypair

# The UAPI socket lives in /run/wireguard; each side runs in its own private /run, and `wg` must run in that
# same mount namespace, hence one script per side that starts wireguard-go, configures it and waits.
SCRIPT = """set -e
WG_PROCESS_FOREGROUND=1 wireguard-go {dev} &
while [ ! -S /run/wireguard/{dev}.sock ]; do sleep 0.05; done
wg set {dev} {settings}
ip addr add {addr}/24 dev {dev}
ip link set {dev} mtu {mtu} up
{route}
echo TUNNEL-READY
wait
"""


def wireguard(s):
    spriv, spub = wg_keypair()
    cpriv, cpub = wg_keypair()
    psk = wg_keypair()[0]  # any 32-byte key is a valid preshared key
    for name, val in (("s.key", spriv), ("c.key", cpriv), ("psk", psk)):
        s.write(f"wg/{name}", val + "\n", 0o600)
    d = s.dir / "wg"
    mtu = s.rng.choice((1420, 1380, 1280))
    keepalive = s.rng.choice((0, 2, 5)) if s.pattern == "idle" else 0
    server = SCRIPT.format(dev="wgs", addr="10.9.0.1", mtu=mtu, route="",
                           settings=f"listen-port {s.port} private-key {q(d / 's.key')} peer {cpub} "
                                    f"preshared-key {q(d / 'psk')} allowed-ips 10.9.0.2/32")
    client = SCRIPT.format(dev="wgc", addr="10.9.0.2", mtu=mtu, route=f"ip route add {s.inner_ip}/32 dev wgc",
                           settings=f"private-key {q(d / 'c.key')} peer {spub} preshared-key {q(d / 'psk')} "
                                    f"endpoint {s.server_ip}:{s.port} allowed-ips 10.9.0.0/24,{s.inner_ip}/32"
                                    + (f" persistent-keepalive {keepalive}" if keepalive else ""))
    sp = s.server(["sh", s.write("wg/server.sh", server)], "wg-server", private_run=True)
    sp.wait_output("TUNNEL-READY", 10)
    cp = s.client(["sh", s.write("wg/client.sh", client)], "wg-client", private_run=True)
    cp.wait_output("TUNNEL-READY", 10)
    return Access()


register(Variant("wireguard", "vpn", "wireguard", "wireguard-go", ("wireguard-go", "wireguard-tools"), 51820,
                 wireguard, endpoints=(Endpoint("udp"),)))
