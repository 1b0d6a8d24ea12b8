"""Unencrypted proxies: SOCKS5 (dante) and HTTP proxies (squid, tinyproxy)."""

from __future__ import annotations

import os
import pwd

from detector.lab.session import Access
from detector.lab.variant import Variant, register


def dante(s):
    conf = s.write("dante/danted.conf", f"""logoutput: stderr
internal: {s.server_ip} port = {s.port}
external: {s.server_ip}
clientmethod: none
socksmethod: none
user.privileged: root
user.unprivileged: nobody
client pass {{ from: 10.99.0.0/24 to: 0.0.0.0/0 }}
socks pass {{ from: 10.99.0.0/24 to: 0.0.0.0/0 command: connect udpassociate bind }}
""")
    sp = s.server(["danted", "-f", conf, "-p", s.path("dante/danted.pid"), "-N", "1"], "danted")
    s.wait_server(proc=sp)
    return Access(via={"kind": "socks5", "ip": s.server_ip, "port": s.port})


def squid(s):
    d = s.path("squid")
    d.mkdir(exist_ok=True)
    proxy = pwd.getpwnam("proxy")
    conf = s.write("squid/squid.conf", f"""http_port {s.server_ip}:{s.port}
acl lab src 10.99.0.0/24
acl SSL_ports port 443
acl CONNECT method CONNECT
http_access deny CONNECT !SSL_ports
http_access allow lab
http_access deny all
cache deny all
cache_mem 8 MB
pid_filename {d}/squid.pid
access_log {d}/access.log
cache_log {d}/cache.log
coredump_dir {d}
cache_effective_user proxy
shutdown_lifetime 1 second
dns_nameservers 127.0.0.1
""")
    # squid drops to the proxy user; its own files stay in the session folder, owned by that user.
    for path in (d, *d.iterdir()):
        os.chown(path, proxy.pw_uid, proxy.pw_gid)
    os.chmod(s.dir, 0o755)
    sp = s.server(["squid", "-N", "-f", conf], "squid", private_run=True)
    s.wait_server(proc=sp, timeout=20)
    return Access(via={"kind": "http", "ip": s.server_ip, "port": s.port})


def tinyproxy(s):
    d = s.path("tinyproxy")
    d.mkdir(exist_ok=True)
    os.chmod(d, 0o777)
    conf = s.write("tinyproxy/tinyproxy.conf", f"""User nobody
Group nogroup
Port {s.port}
Listen {s.server_ip}
Timeout 60
Allow 10.99.0.0/24
ConnectPort 443
LogFile "{d}/tinyproxy.log"
MaxClients 20
""")
    sp = s.server(["tinyproxy", "-d", "-c", conf], "tinyproxy", private_run=True)
    s.wait_server(proc=sp)
    return Access(via={"kind": "http", "ip": s.server_ip, "port": s.port})


register(
    Variant("socks5_dante", "proxy", "socks", "dante-server SOCKS5", ("dante-server",), 1080, dante),
    Variant("http_proxy_squid", "proxy", "http_proxy", "squid", ("squid",), 3128, squid),
    Variant("http_proxy_tinyproxy", "proxy", "http_proxy", "tinyproxy", ("tinyproxy",), 8888, tinyproxy),
)
