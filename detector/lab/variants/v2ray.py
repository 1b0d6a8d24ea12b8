"""V2Ray 4.34: VMess over TCP, WebSocket and WebSocket+TLS, and VLESS over TLS."""

from __future__ import annotations

import json
import uuid
from functools import partial

from detector.lab.pki import SERVER_NAME
from detector.lab.session import Access
from detector.lab.variant import Variant, register

SOCKS_PORT = 1080


def _stream(kind: str, side: str, s) -> dict:
    net = "ws" if "ws" in kind else "tcp"
    st: dict = {"network": net}
    if net == "ws":
        st["wsSettings"] = {"path": s.rng.choice(("/ray", "/ws", "/api/v1/stream", "/chat"))}
    if kind.endswith("tls"):
        st["security"] = "tls"
        if side == "server":
            st["tlsSettings"] = {"certificates": [{"certificateFile": str(s.pki.server_crt), "keyFile": str(s.pki.server_key)}]}
        else:
            st["tlsSettings"] = {"serverName": SERVER_NAME,
                                 "certificates": [{"usage": "verify", "certificateFile": str(s.pki.ca)}]}
    return st


def v2ray(s, protocol: str, kind: str):
    uid = str(uuid.UUID(int=s.rng.getrandbits(128), version=4))
    if protocol == "vmess":
        sset = {"clients": [{"id": uid, "alterId": 0}]}
        user = {"id": uid, "alterId": 0, "security": s.rng.choice(("aes-128-gcm", "chacha20-poly1305", "auto"))}
    else:
        sset = {"clients": [{"id": uid}], "decryption": "none"}
        user = {"id": uid, "encryption": "none"}
    server = {"log": {"loglevel": "warning"},
              "inbounds": [{"listen": s.server_ip, "port": s.port, "protocol": protocol, "settings": sset,
                            "streamSettings": _stream(kind, "server", s)}],
              "outbounds": [{"protocol": "freedom"}]}
    # Path settings need the ws path to be identical on both sides: reseed for the client's copy.
    state = s.rng.getstate()
    client_stream = None
    s.rng.setstate(state)
    client = {"log": {"loglevel": "warning"},
              "inbounds": [{"listen": "127.0.0.1", "port": SOCKS_PORT, "protocol": "socks", "settings": {"udp": False}}],
              "outbounds": [{"protocol": protocol,
                             "settings": {"vnext": [{"address": s.server_ip, "port": s.port, "users": [user]}]},
                             "streamSettings": client_stream}]}
    client["outbounds"][0]["streamSettings"] = dict(server["inbounds"][0]["streamSettings"])
    if kind.endswith("tls"):
        client["outbounds"][0]["streamSettings"]["tlsSettings"] = _stream(kind, "client", s)["tlsSettings"]
    env = {"V2RAY_LOCATION_ASSET": str(s.dir)}  # no geoip/geosite lookups outside the work folder
    sp = s.server(["v2ray", "-config", s.write("v2ray/server.json", json.dumps(server, indent=1))], "v2ray-server", env=env)
    s.wait_server(proc=sp)
    cp = s.client(["v2ray", "-config", s.write("v2ray/client.json", json.dumps(client, indent=1))], "v2ray-client", env=env)
    s.wait_client(SOCKS_PORT, proc=cp)
    return Access(via={"kind": "socks5", "ip": "127.0.0.1", "port": SOCKS_PORT})


register(
    Variant("vmess_tcp", "proxy", "vmess", "v2ray VMess over TCP", ("v2ray",), 10086, partial(v2ray, protocol="vmess", kind="tcp")),
    Variant("vmess_ws", "proxy", "vmess", "v2ray VMess over WebSocket", ("v2ray",), 80, partial(v2ray, protocol="vmess", kind="ws")),
    Variant("vmess_ws_tls", "proxy", "vmess", "v2ray VMess over WebSocket+TLS", ("v2ray",), 443,
            partial(v2ray, protocol="vmess", kind="ws_tls")),
    Variant("vless_tls", "proxy", "vless", "v2ray VLESS over TLS", ("v2ray",), 443, partial(v2ray, protocol="vless", kind="tcp_tls")),
)
