"""SoftEther VPN 5: vpnserver with SecureNAT, vpnclient with a virtual NIC, over SoftEther's TLS-based protocol."""

from __future__ import annotations

import time

from detector.lab.netns import LabError
from detector.lab.session import Access
from detector.lab.variant import Variant, register

# The Debian build hard-codes /var/lib/softether, /var/log/softether and /run/softether; in this private
# mount namespace those become folders of the session, so two instances (and the host) never share state.
WRAP = ('mount -t tmpfs lab /run && mount -t tmpfs lab /var && mkdir -p /var/lib/softether /var/log/softether '
        '/run/softether && mount --bind "$SE_DIR/lib" /var/lib/softether && mount --bind "$SE_DIR/log" /var/log/softether '
        '&& exec "$@"')


def _wrapped(s, role: str, cmd: list) -> list:
    d = s.path(f"softether/{role}")
    (d / "lib").mkdir(parents=True, exist_ok=True)
    (d / "log").mkdir(parents=True, exist_ok=True)
    return ["env", f"SE_DIR={d}", "sh", "-c", WRAP, "sh", *cmd]


def _vpncmd(s, ns_run, target: str, mode: str, *cmd, timeout: float = 30, retries: int = 40, hub: bool = True):
    # Hub commands run in hub-admin mode; server-wide ones (listeners) need server-admin mode, without /HUB.
    hub_arg = ["/HUB:DEFAULT"] if mode == "/SERVER" and hub else []
    args = _wrapped(s, "cmd", ["vpncmd", target, mode, *hub_arg, "/CMD", *cmd])
    last = None
    for _ in range(retries):
        proc = ns_run([str(a) for a in args], timeout=timeout, check=False)
        if proc.returncode == 0:
            return proc.stdout
        last = proc.stdout[-300:]
        time.sleep(0.5)  # the daemons take seconds before their management port answers
    raise LabError(f"vpncmd {' '.join(map(str, cmd[:2]))} failed: {last}")


def start_server(s, password: str):
    s.server(_wrapped(s, "server", ["vpnserver", "execsvc"]), "vpnserver")
    srv = lambda *c, **k: _vpncmd(s, s.srun, "localhost:5555", "/SERVER", *c, **k)
    srv("UserCreate", "labuser", "/GROUP:none", "/REALNAME:none", "/NOTE:none")
    srv("UserPasswordSet", "labuser", f"/PASSWORD:{password}")
    srv("SecureNatEnable")
    if s.port not in (443, 992, 1194, 5555):
        srv("ListenerCreate", str(s.port), hub=False)
    s.wait_server(proc=None, ip=None)


def softether(s):
    password = f"lab{s.seed:x}"
    start_server(s, password)
    s.client(_wrapped(s, "client", ["vpnclient", "execsvc"]), "vpnclient")
    cli = lambda *c, **k: _vpncmd(s, s.crun, "localhost", "/CLIENT", *c, **k)
    cli("NicCreate", "vpn0")
    cli("AccountCreate", "lab", f"/SERVER:{s.server_ip}:{s.port}", "/HUB:DEFAULT", "/USERNAME:labuser", "/NICNAME:vpn0")
    cli("AccountPasswordSet", "lab", f"/PASSWORD:{password}", "/TYPE:standard")
    cli("AccountConnect", "lab")
    deadline = time.monotonic() + 30
    while "Connection Completed" not in cli("AccountStatusGet", "lab", retries=3):
        if time.monotonic() > deadline:
            raise LabError("SoftEther client did not connect within 30 s")
        time.sleep(0.5)
    s.crun(["ip", "addr", "add", "192.168.30.50/24", "dev", "vpn_vpn0"])
    s.crun(["ip", "link", "set", "vpn_vpn0", "up"])
    s.crun(["ip", "route", "add", f"{s.inner_ip}/32", "via", "192.168.30.1"])
    s.endpoint("tcp")
    # What the client and server send next to the TLS session. SoftEther's own probes (its VPN-over-DNS and
    # UDP-acceleration attempts) are SoftEther traffic; NetBIOS name queries and DHCP are what they are.
    s.side("vpn", "softether", "SoftEther VPN-over-DNS probe", 53, "udp", version=s.variant.version)
    s.side("vpn", "softether", "SoftEther UDP acceleration probe", 40000, "udp", version=s.variant.version)
    s.side("vpn", "softether", "SoftEther VPN-over-ICMP probe", "*", "icmp", version=s.variant.version)
    s.side("normal", "nbns", "SoftEther NetBIOS name query", 137, "udp")
    s.side("normal", "nbns", "SoftEther NetBIOS name query", 137, "udp", ip=s.client_ip)
    s.side("normal", "dhcp", "DHCP discover", 67, "udp", ip="255.255.255.255")
    return Access(tls=False)


register(Variant("softether", "vpn", "softether", "SoftEther VPN vpnserver + vpnclient (SecureNAT)",
                 ("softether-vpnserver", "softether-vpnclient", "softether-vpncmd"), 5555, softether))
