"""Protocols the host kernel cannot carry (no ESP, PPP, L2TP or GRE): plain ESP, L2TP, L2TP/IPsec and PPTP,
run inside User-Mode-Linux guests that have those modules.

Each guest is an ordinary process in its namespace, with the host's / as a read-only hostfs root, the session
folder mounted read-write at the same path, and its network card on the namespace's veth end through a raw
socket (the host stack keeps no address there). The host's tcpdump on the client veth sees every frame. The
client guest runs the same payload driver as the host variants and leaves its verdict in the session folder.
"""

from __future__ import annotations

import json
import time
from functools import partial
from pathlib import Path

from detector.lab.netns import CLIENT_IP, INNER_IP, SERVER_IP, LabError
from detector.lab.session import Access
from detector.lab.variant import Endpoint, Variant, register

UML_KERNEL = "/usr/bin/linux.uml"
UML_MODULES = Path("/usr/lib/uml/modules")

INIT = """#!/bin/sh
# PID 1 of the guest: the root is the host's / (read-only); everything writable is tmpfs or the session folder.
export PATH=/usr/sbin:/usr/bin:/sbin:/bin
mount -t proc proc /proc
mount -t sysfs sys /sys
mount -t devtmpfs dev /dev 2>/dev/null || mount -t tmpfs dev /dev
# Without devtmpfs the nodes that charon (urandom) and pppd (/dev/ppp) need are made by hand.
[ -e /dev/urandom ] || {{
  mknod -m 666 /dev/null c 1 3; mknod -m 666 /dev/zero c 1 5; mknod -m 666 /dev/random c 1 8
  mknod -m 666 /dev/urandom c 1 9; mknod -m 666 /dev/tty c 5 0; mknod -m 666 /dev/ptmx c 5 2
  mknod -m 600 /dev/ppp c 108 0; mkdir -p /dev/net; mknod -m 666 /dev/net/tun c 10 200
}}
mkdir -p /dev/pts && mount -t devpts -o ptmxmode=666 devpts /dev/pts
for d in /run /tmp /var/tmp /var/log /var/lib /etc/ppp; do mount -t tmpfs lab "$d"; done
# The run's folder (sessions and PKI) may sit under one of those tmpfs mounts (a work folder in /tmp):
# make its mount point there, then mount it read-write.
mkdir -p {rundir} && mount -t hostfs none -o {rundir} {rundir}
echo {modprobe} > /proc/sys/kernel/modprobe
exec sh {session}/uml/guest-{role}.sh > {session}/uml/guest-{role}.log 2>&1
"""

MODPROBE = """#!/bin/sh
# The kernel's request_module() calls this; modules come from the UML package, not from the host.
exec /sbin/modprobe -d {modroot} "$@"
"""

COMMON = """set -x
M="/sbin/modprobe -d {modroot}"
$M ipv6 2>/dev/null; sysctl -q -w net.ipv6.conf.all.disable_ipv6=1 net.ipv6.conf.default.disable_ipv6=1
ip link set lo up
ip link set vec0 up
ip addr add {addr}/24 dev vec0
sysctl -q -w net.ipv6.conf.vec0.disable_ipv6=1 2>/dev/null
"""

SERVER_TAIL = """
{nginx}
echo ready > {session}/uml/s.ready
while true; do sleep 3600; done
"""

CLIENT_TAIL = """
i=0; while [ ! -f {session}/uml/s.ready ] && [ $i -lt 300 ]; do sleep 0.1; i=$((i+1)); done
{setup}
{python} -m detector.lab.driver {spec} > {session}/uml/result.json
echo done > {session}/uml/c.done
poweroff -f
"""

SWAN_LOAD = ("random nonce aes sha1 sha2 hmac gmp curve25519 pem pkcs1 x509 kdf openssl gcm "
             "kernel-netlink socket-default updown vici attr")


def _modroot(s) -> Path:
    release = sorted(p.name for p in UML_MODULES.iterdir())[-1]
    root = s.path("uml/modroot/lib/modules")
    root.mkdir(parents=True, exist_ok=True)
    link = root / release
    if not link.exists():
        link.symlink_to(UML_MODULES / release)
    return s.dir / "uml" / "modroot"


def _swan(s, side: str, conf: str, ike_port: int = 500) -> str:
    """Shell lines that start charon in the guest and load `conf`; `ike_port` moves a server off port 500."""
    d = s.path(f"uml/swan-{side}")
    d.mkdir(exist_ok=True)
    ports = f"  port = {ike_port}\n  port_nat_t = {ike_port + 1}\n" if side == "s" and ike_port != 500 else ""
    (d / "strongswan.conf").write_text(f"""charon {{
  load_modular = no
  load = {SWAN_LOAD}
{ports}  plugins {{
    vici {{
      socket = unix://{d}/charon.vici
    }}
  }}
}}
""")
    (d / "swanctl.conf").write_text(conf)
    return f"""$M xfrm_user; $M esp4; $M af_key; $M xfrm4_tunnel 2>/dev/null; $M tunnel4 2>/dev/null
STRONGSWAN_CONF={d}/strongswan.conf /usr/lib/ipsec/charon > {d}/charon.log 2>&1 &
i=0; while [ ! -S {d}/charon.vici ] && [ $i -lt 100 ]; do sleep 0.1; i=$((i+1)); done
swanctl --load-all --noprompt --uri unix://{d}/charon.vici --file {d}/swanctl.conf
"""


def _boot(s, setup_server: str | None, setup_client: str, access: Access, budget: float = 90) -> None:
    """Boot the guests (no server guest when `setup_server` is None: the server runs on the host) and wait
    for the client guest's payload verdict."""
    modroot = _modroot(s)
    u = s.path("uml")
    s.write("uml/modprobe.sh", MODPROBE.format(modroot=modroot), 0o755)
    spec = s.payload_spec(access)
    common = dict(session=s.dir, modroot=modroot)
    nginx = f"nginx -c {s.dir}/inner-web/nginx.conf -p {s.dir}/inner-web &"
    if setup_server is not None:
        s.write("uml/guest-s.sh", COMMON.format(addr=SERVER_IP, **common)
                + f"ip addr add {INNER_IP}/32 dev lo\n" + setup_server + SERVER_TAIL.format(nginx=nginx, **common))
    else:
        s.write("uml/s.ready", "host\n")
    s.write("uml/guest-c.sh", COMMON.format(addr=CLIENT_IP, **common)
            + CLIENT_TAIL.format(setup=setup_client, python=s.py, spec=spec, **common))
    for role, ns, ifname, mac in (("s", s.net.server_ns, s.net.server_if, "02:00:00:00:00:02"),
                                  ("c", s.net.client_ns, s.net.client_if, "02:00:00:00:00:01")):
        if role == "s" and setup_server is None:
            continue
        s.write(f"uml/init-{role}.sh", INIT.format(modprobe=u / "modprobe.sh", role=role, rundir=s.dir.parent, **common),
                0o755)
        (u / f"tmp-{role}").mkdir(exist_ok=True)
        (u / f"run-{role}").mkdir(exist_ok=True)
        cmd = ["env", f"TMPDIR={u / f'tmp-{role}'}", UML_KERNEL, "mem=192M", f"uml_dir={u / f'run-{role}'}",
               f"umid=lab{role}", "root=/dev/root", "rootfstype=hostfs", "rootflags=/", "ro",
               f"init={u / f'init-{role}.sh'}", "con=null", "con0=null",
               f"vec0:transport=raw,ifname={ifname},mac={mac}"]
        s.net.start(ns, [str(c) for c in cmd], f"uml-{role}")
        if role == "s":
            _wait(u / "s.ready", budget / 3, s, "server guest")
    _wait(u / "c.done", budget, s, "client guest")
    try:
        result = json.loads((u / "result.json").read_text().strip().splitlines()[-1])
    except (ValueError, IndexError, FileNotFoundError):
        result = {"ok": False, "error": "no driver result"}
    if not result.get("ok"):
        log = (u / "guest-c.log").read_text(errors="replace")[-600:] if (u / "guest-c.log").exists() else ""
        raise LabError(f"payload did not get through the guest tunnel: {result.get('error')} {log}")


def _wait(path: Path, timeout: float, s, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not path.exists():
        if time.monotonic() > deadline:
            logs = "".join((s.dir / "uml" / n).read_text(errors="replace")[-500:]
                           for n in ("guest-s.log", "guest-c.log") if (s.dir / "uml" / n).exists())
            raise LabError(f"{what} not ready after {timeout:.0f} s: {logs}")
        time.sleep(0.1)


# --- plain ESP ------------------------------------------------------------------------------------------
def esp(s):
    psk = f"lab-esp-{s.seed:x}-0123456789"
    ike = s.rng.choice(("aes256-sha256-x25519", "aes128-sha256-ecp256", "aes256-sha384-modp3072"))
    espp = s.rng.choice(("aes256-sha256", "aes128gcm16", "aes256gcm16", "aes128-sha1"))
    secrets = f"""secrets {{
  ike-lab {{
    id-1 = server.lab
    id-2 = client.lab
    secret = "{psk}"
  }}
}}
"""
    server = f"""connections {{
  lab {{
    version = 2
    local_addrs = {SERVER_IP}
    proposals = {ike}
    mobike = no
    encap = no
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
        local_ts = {INNER_IP}/32
        remote_ts = {CLIENT_IP}/32
        esp_proposals = {espp}
      }}
    }}
  }}
}}
{secrets}"""
    client = server.replace(f"local_addrs = {SERVER_IP}", f"remote_addrs = {SERVER_IP}\n    remote_port = {s.port}").replace(
        "id = server.lab", "id = @@S").replace("id = client.lab", "id = server.lab").replace("id = @@S", "id = client.lab")
    client = client.replace(f"local_ts = {INNER_IP}/32\n        remote_ts = {CLIENT_IP}/32",
                            f"local_ts = {CLIENT_IP}/32\n        remote_ts = {INNER_IP}/32")
    up = _swan(s, "c", client) + f"swanctl --initiate --child net --uri unix://{s.dir}/uml/swan-c/charon.vici --timeout 20\n"
    _boot(s, _swan(s, "s", server, s.port), up, Access())
    # mobike=no keeps IKE on its port; without NAT nothing moves to 4500.
    s.endpoint("udp", s.port)
    s.endpoint("esp", "*")


# --- PPP-based: L2TP, L2TP/IPsec, PPTP --------------------------------------------------------------------
PPP_SECRETS = "labuser * {password} *\n"


def _ppp_route_wait(dev: str) -> str:
    return f"""i=0; while ! ip -o addr show dev {dev} 2>/dev/null | grep -q inet && [ $i -lt 300 ]; do sleep 0.1; i=$((i+1)); done
ip route add {INNER_IP}/32 dev {dev}
"""


def l2tp(s, ipsec: bool):
    password = f"lab{s.seed % 100000}"
    d = s.path("uml/l2tp")
    d.mkdir(exist_ok=True)
    l2tp_port = 1701 if ipsec else s.port  # under IPsec the policy is written for udp/1701
    (d / "lns.conf").write_text(f"""[global]
listen-addr = {SERVER_IP}
port = {l2tp_port}
[lns default]
ip range = 10.12.0.10-10.12.0.20
local ip = 10.12.0.1
require chap = yes
refuse pap = yes
require authentication = yes
name = l2tpd
pppoptfile = {d}/options.l2tpd
length bit = yes
""")
    (d / "options.l2tpd").write_text("require-mschap-v2\nrefuse-pap\nrefuse-chap\nmtu 1400\nmru 1400\nnodefaultroute\n"
                                     f"lcp-echo-interval {s.rng.choice((5, 30))}\nlcp-echo-failure 4\n")
    # xl2tpd's LAC talks to the same port number it binds, so both ends share the session's port.
    (d / "lac.conf").write_text(f"""[global]
port = {l2tp_port}
[lac lab]
lns = {SERVER_IP}:{l2tp_port}
autodial = yes
redial = no
require authentication = no
name = labuser
pppoptfile = {d}/options.l2tpc
length bit = yes
""")
    (d / "options.l2tpc").write_text(f"name labuser\npassword {password}\nnoauth\nrefuse-eap\nrefuse-pap\nmtu 1400\nmru 1400\n"
                                     "nodefaultroute\n")
    ppp = f"""$M ppp_generic; $M ppp_async; $M l2tp_core; $M l2tp_ppp; $M ppp_mppe
printf '{PPP_SECRETS.format(password=password)}' > /etc/ppp/chap-secrets
mkdir -p /run/xl2tpd /var/run/xl2tpd
"""
    server = ppp + f"xl2tpd -D -c {d}/lns.conf -p /run/xl2tpd.pid -C /run/xl2tpd/l2tp-control > {d}/xl2tpd-s.log 2>&1 &\n"
    client = ppp + f"xl2tpd -D -c {d}/lac.conf -p /run/xl2tpd.pid -C /run/xl2tpd/l2tp-control > {d}/xl2tpd-c.log 2>&1 &\n" \
        + _ppp_route_wait("ppp0")
    if ipsec:
        psk = f"lab-l2tp-ipsec-{s.seed:x}"
        conf = f"""connections {{
  l2tp {{
    version = 1
    {{addrs}}
    proposals = aes256-sha256-modp2048,aes128-sha1-modp2048
    local {{
      auth = psk
    }}
    remote {{
      auth = psk
    }}
    children {{
      l2tp {{
        mode = transport
        local_ts = dynamic[udp/1701]
        remote_ts = dynamic[udp/1701]
        esp_proposals = aes256-sha256,aes128-sha1
      }}
    }}
  }}
}}
secrets {{
  ike-l2tp {{
    secret = "{psk}"
  }}
}}
"""
        sconf = conf.replace("{addrs}", f"local_addrs = {SERVER_IP}")
        cconf = conf.replace("{addrs}", f"remote_addrs = {SERVER_IP}\n    remote_port = {s.port}")
        server = _swan(s, "s", sconf, s.port) + server
        client = (ppp + _swan(s, "c", cconf)
                  + f"swanctl --initiate --child l2tp --uri unix://{s.dir}/uml/swan-c/charon.vici --timeout 20\n"
                  + client[len(ppp):])
        _boot(s, server, client, Access())
        s.endpoint("udp", s.port)
        s.endpoint("esp", "*")
        s.endpoint("udp", 1701)  # only if some L2TP escaped the SA (it should not)
    else:
        _boot(s, server, client, Access())
        s.endpoint("udp", s.port)


def pptp(s):
    password = f"lab{s.seed % 100000}"
    d = s.path("uml/pptp")
    d.mkdir(exist_ok=True)
    (d / "pptpd.conf").write_text(f"option {d}/options.pptpd\nlocalip 10.13.0.1\nremoteip 10.13.0.10-20\nlisten {SERVER_IP}\n")
    (d / "options.pptpd").write_text("name pptpd\nrefuse-pap\nrefuse-chap\nrefuse-mschap\nrequire-mschap-v2\n"
                                     "require-mppe-128\nmtu 1400\nmru 1400\nnodefaultroute\n"
                                     f"lcp-echo-interval {s.rng.choice((5, 30))}\nlcp-echo-failure 4\n")
    ppp = f"""$M ppp_generic; $M ppp_async; $M ppp_mppe; $M ppp_deflate 2>/dev/null; $M bsd_comp 2>/dev/null
printf '{PPP_SECRETS.format(password=password)}' > /etc/ppp/chap-secrets
mkdir -p /run/pptp /var/run/pptp
"""
    server = ppp + f"pptpd -f -c {d}/pptpd.conf -p /run/pptpd.pid > {d}/pptpd.log 2>&1 &\n"
    client = ppp + (f'pppd pty "pptp {SERVER_IP} --nolaunchpppd" name labuser password {password} remotename pptpd '
                    "require-mppe-128 refuse-eap refuse-pap refuse-chap refuse-mschap noauth nodefaultroute "
                    f"mtu 1400 mru 1400 logfile {d}/pppd-c.log\n") + _ppp_route_wait("ppp0")
    _boot(s, server, client, Access())
    s.endpoint("tcp", 1723)
    s.endpoint("gre", "*")


_UML = ("user-mode-linux", "kmod")
register(
    Variant("ipsec_esp", "vpn", "ipsec", "strongswan IKEv2 PSK plain ESP (UML guests)",
            ("strongswan-charon", "strongswan-swanctl", "libstrongswan-standard-plugins", *_UML), 500, esp,
            endpoints=(Endpoint("udp", 500), Endpoint("esp", "*")), needs_uml=True),
    Variant("l2tp", "vpn", "l2tp", "xl2tpd + pppd MS-CHAPv2 (UML guests)", ("xl2tpd", "ppp", *_UML), 1701,
            partial(l2tp, ipsec=False), endpoints=(Endpoint("udp", 1701),), needs_uml=True),
    # Labelled by what the wire shows: IKE and ESP; the L2TP session rides inside the ESP.
    Variant("l2tp_ipsec", "vpn", "ipsec", "xl2tpd over strongswan IKEv1 transport-mode ESP (UML guests)",
            ("xl2tpd", "ppp", "strongswan-charon", "strongswan-swanctl", "libstrongswan-standard-plugins", *_UML), 500,
            partial(l2tp, ipsec=True), endpoints=(Endpoint("udp", 500),), needs_uml=True),
    Variant("pptp", "vpn", "pptp", "pptpd + pptp-linux MS-CHAPv2 + MPPE (UML guests)", ("pptpd", "pptp-linux", "ppp", *_UML),
            1723, pptp, endpoints=(Endpoint("tcp", 1723),), random_port=False, needs_uml=True,
            description="pptp-linux has no option for the server port"),
)
