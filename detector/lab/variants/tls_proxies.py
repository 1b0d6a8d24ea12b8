"""TLS-wrapped proxies: Trojan and stunnel."""

from __future__ import annotations

import json

from detector.lab.pki import SERVER_NAME
from detector.lab.session import Access
from detector.lab.variant import Variant, register

LOCAL_PORT = 1080


def trojan(s):
    password = f"lab-trojan-{s.seed:x}"
    server = {"run_type": "server", "local_addr": s.server_ip, "local_port": s.port,
              # A probe that is not Trojan gets the inner web site, as a real deployment's fallback does.
              "remote_addr": s.inner_ip, "remote_port": 80, "password": [password], "log_level": 2,
              "ssl": {"cert": str(s.pki.server_crt), "key": str(s.pki.server_key), "alpn": ["http/1.1"]}}
    client = {"run_type": "client", "local_addr": "127.0.0.1", "local_port": LOCAL_PORT,
              "remote_addr": s.server_ip, "remote_port": s.port, "password": [password], "log_level": 2,
              "ssl": {"verify": True, "verify_hostname": True, "cert": str(s.pki.ca), "sni": SERVER_NAME,
                      "alpn": ["h2", "http/1.1"]}}
    sp = s.server(["trojan", "-c", s.write("trojan/server.json", json.dumps(server))], "trojan-server")
    s.wait_server(proc=sp)
    cp = s.client(["trojan", "-c", s.write("trojan/client.json", json.dumps(client))], "trojan-client")
    s.wait_client(LOCAL_PORT, proc=cp)
    return Access(via={"kind": "socks5", "ip": "127.0.0.1", "port": LOCAL_PORT})


def stunnel(s):
    target_port = 443 if s.rng.random() < 0.3 else 80
    server = f"""foreground = yes
pid =
[web]
accept = {s.server_ip}:{s.port}
connect = {s.inner_ip}:{target_port}
cert = {s.pki.server_crt}
key = {s.pki.server_key}
"""
    client = f"""foreground = yes
pid =
[web]
client = yes
accept = 127.0.0.1:{LOCAL_PORT}
connect = {s.server_ip}:{s.port}
CAfile = {s.pki.ca}
verifyChain = yes
checkHost = {SERVER_NAME}
"""
    sp = s.server(["stunnel4", s.write("stunnel/server.conf", server)], "stunnel-server")
    s.wait_server(proc=sp)
    cp = s.client(["stunnel4", s.write("stunnel/client.conf", client)], "stunnel-client")
    s.wait_client(LOCAL_PORT, proc=cp)
    return Access(target_ip="127.0.0.1", target_port=LOCAL_PORT, tls=(target_port == 443))


register(
    Variant("trojan", "proxy", "trojan", "trojan-gfw", ("trojan",), 443, trojan),
    Variant("stunnel", "proxy", "tls_tunnel", "stunnel", ("stunnel4",), 8443, stunnel),
)
