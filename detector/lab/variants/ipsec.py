"""IPsec IKEv2 (strongSwan) on the host kernel: ESP in UDP through kernel-libipsec.

The host kernel has no ESP, so charon's kernel-libipsec plugin does ESP in userspace behind a TUN device;
in 5.9.8 it always UDP-encapsulates, which makes this the ESP-in-UDP variant (plain ESP runs in UML guests).
"""

from __future__ import annotations

from detector.lab.session import Access
from detector.lab.variant import Endpoint, Variant, register

LOAD = ("random nonce aes sha1 sha2 hmac gmp curve25519 pem pkcs1 x509 kdf openssl gcm "
        "kernel-libipsec kernel-netlink socket-default updown vici attr")


def _strongswan_conf(vici: str, port: int, port_nat_t: int) -> str:
    return f"""charon {{
  load_modular = no
  load = {LOAD}
  port = {port}
  port_nat_t = {port_nat_t}
  install_routes = yes
  plugins {{
    vici {{
      socket = unix://{vici}
    }}
    kernel-libipsec {{
      allow_peer_ts = yes
    }}
  }}
}}
"""


def ipsec_libipsec(s):
    psk = f"lab-ipsec-{s.seed:x}-0123456789"
    ike = s.rng.choice(("aes256-sha256-x25519", "aes128-sha256-ecp256", "aes256gcm16-prfsha384-ecp384"))
    esp = s.rng.choice(("aes256-sha256", "aes128gcm16", "aes256gcm16"))
    random_port = s.port != 500
    # On a custom port, IKE starts on the server's NAT-T socket (with the non-ESP marker) and stays there.
    server_ike, server_natt = (s.port + 1, s.port) if random_port else (500, 4500)
    remote_port = s.port if random_port else 500
    dpd = s.rng.choice(("0s", "2s", "30s"))
    confs = {}
    # charon floats the peer to port 4500 whenever it sent from its own port 500; a client that starts on its
    # NAT-T port (local_port 4500) never floats, so IKE and ESP-in-UDP stay on the server's custom port.
    for side, ike_port, natt in (("s", server_ike, server_natt), ("c", 500, 4500)):
        d = s.path(f"ipsec/{side}")
        d.mkdir(exist_ok=True)
        confs[side] = s.write(f"ipsec/{side}/strongswan.conf", _strongswan_conf(str(d / "charon.vici"), ike_port, natt))
    s.write("ipsec/s/swanctl.conf", f"""connections {{
  lab {{
    version = 2
    local_addrs = {s.server_ip}
    proposals = {ike}
    pools = vpool
    encap = yes
    dpd_delay = {dpd}
    local {{
      auth = psk
      id = server.lab
    }}
    remote {{
      auth = psk
      id = client.lab
    }}
    children {{
      net {{
        local_ts = {s.inner_ip}/32
        esp_proposals = {esp}
      }}
    }}
  }}
}}
pools {{
  vpool {{
    addrs = 10.10.0.0/24
  }}
}}
secrets {{
  ike-lab {{
    id-1 = server.lab
    id-2 = client.lab
    secret = "{psk}"
  }}
}}
""")
    s.write("ipsec/c/swanctl.conf", f"""connections {{
  lab {{
    version = 2
    remote_addrs = {s.server_ip}
    remote_port = {remote_port}
{"    local_port = 4500" if random_port else ""}
    vips = 0.0.0.0
    proposals = {ike}
    encap = yes
    dpd_delay = {dpd}
    local {{
      auth = psk
      id = client.lab
    }}
    remote {{
      auth = psk
      id = server.lab
    }}
    children {{
      net {{
        remote_ts = {s.inner_ip}/32
        esp_proposals = {esp}
        start_action = none
      }}
    }}
  }}
}}
secrets {{
  ike-lab {{
    id-1 = server.lab
    id-2 = client.lab
    secret = "{psk}"
  }}
}}
""")
    procs = {}
    for side in ("s", "c"):
        env = {"STRONGSWAN_CONF": confs[side]}
        start = s.server if side == "s" else s.client
        procs[side] = start(["/usr/lib/ipsec/charon"], f"charon-{side}", private_run=True, env=env)
    for side in ("s", "c"):
        vici = s.dir / "ipsec" / side / "charon.vici"
        _wait_file(vici, procs[side])
        runner = s.srun if side == "s" else s.crun
        runner(["swanctl", "--load-all", "--noprompt", "--uri", f"unix://{vici}", "--file", s.dir / "ipsec" / side / "swanctl.conf"])
    s.crun(["swanctl", "--initiate", "--child", "net", "--uri", f"unix://{s.dir / 'ipsec/c/charon.vici'}", "--timeout", "20"],
           timeout=30)
    s.wait_route(proc=procs["c"])
    if random_port:
        s.endpoint("udp", s.port)
    else:
        s.endpoint("udp", 500)
        s.endpoint("udp", 4500)
    return Access()


def _wait_file(path, proc, timeout: float = 10) -> None:
    import time

    from detector.lab.netns import LabError

    deadline = time.monotonic() + timeout
    while not path.exists():
        if not proc.alive() or time.monotonic() > deadline:
            raise LabError(f"{proc.name} did not open {path.name}: {proc.output()[-500:]}")
        time.sleep(0.05)


register(Variant("ipsec_ikev2_udp", "vpn", "ipsec", "strongswan IKEv2 PSK ESP in UDP (kernel-libipsec)",
                 ("strongswan-charon", "strongswan-swanctl", "libcharon-extra-plugins", "libstrongswan-standard-plugins"),
                 500, ipsec_libipsec, endpoints=(Endpoint("udp"),)))
