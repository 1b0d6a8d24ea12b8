"""Shadowsocks (shadowsocks-libev AEAD), plain and behind simple-obfs and v2ray-plugin."""

from __future__ import annotations

from functools import partial

from detector.lab.pki import SERVER_NAME
from detector.lab.session import Access
from detector.lab.variant import Variant, register

CIPHERS = ("chacha20-ietf-poly1305", "aes-256-gcm", "aes-128-gcm")
SOCKS_PORT = 1080

PLUGINS = {
    # name: (server plugin, server opts, client plugin, client opts)
    "plain": None,
    "obfs_http": ("obfs-server", "obfs=http", "obfs-local", "obfs=http;obfs-host={host}"),
    "obfs_tls": ("obfs-server", "obfs=tls", "obfs-local", "obfs=tls;obfs-host={host}"),
    "v2ray_ws": ("ss-v2ray-plugin", "server;host={sni}", "ss-v2ray-plugin", "host={sni}"),
    "v2ray_wss": ("ss-v2ray-plugin", "server;tls;host={sni};cert={crt};key={key}",
                  "ss-v2ray-plugin", "tls;host={sni};cert={ca}"),
}


def shadowsocks(s, plugin: str):
    cipher = s.rng.choice(CIPHERS)
    password = f"lab-ss-{s.seed:x}"
    common = ["-k", password, "-m", cipher, "-t", "60"]
    srv = ["ss-server", "-s", s.server_ip, "-p", s.port, *common]
    cli = ["ss-local", "-s", s.server_ip, "-p", s.port, "-b", "127.0.0.1", "-l", SOCKS_PORT, *common]
    spec = PLUGINS[plugin]
    if spec:
        fmt = dict(host=s.rng.choice(("www.bing.com", "cdn.example.net", "img.lab.test")), sni=SERVER_NAME,
                   crt=s.pki.server_crt, key=s.pki.server_key, ca=s.pki.ca)
        srv += ["--plugin", spec[0], "--plugin-opts", spec[1].format(**fmt)]
        cli += ["--plugin", spec[2], "--plugin-opts", spec[3].format(**fmt)]
    sp = s.server(srv, "ss-server")
    s.wait_server(proc=sp)
    cp = s.client(cli, "ss-local")
    s.wait_client(SOCKS_PORT, proc=cp)
    return Access(via={"kind": "socks5", "ip": "127.0.0.1", "port": SOCKS_PORT})


_PORTS = {"plain": 8388, "obfs_http": 80, "obfs_tls": 443, "v2ray_ws": 80, "v2ray_wss": 443}
_PKGS = {"plain": ("shadowsocks-libev",), "obfs_http": ("shadowsocks-libev", "simple-obfs"),
         "obfs_tls": ("shadowsocks-libev", "simple-obfs"),
         "v2ray_ws": ("shadowsocks-libev", "shadowsocks-v2ray-plugin"),
         "v2ray_wss": ("shadowsocks-libev", "shadowsocks-v2ray-plugin")}
_IMPL = {"plain": "shadowsocks-libev", "obfs_http": "shadowsocks-libev + simple-obfs http",
         "obfs_tls": "shadowsocks-libev + simple-obfs tls", "v2ray_ws": "shadowsocks-libev + v2ray-plugin websocket",
         "v2ray_wss": "shadowsocks-libev + v2ray-plugin websocket+tls"}

register(*[
    Variant(f"shadowsocks_{name}" if name != "plain" else "shadowsocks", "proxy", "shadowsocks", _IMPL[name],
            _PKGS[name], _PORTS[name], partial(shadowsocks, plugin=name))
    for name in PLUGINS
])
