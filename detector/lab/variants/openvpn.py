"""OpenVPN 2.6: static key, TLS, and TLS with tls-crypt, each over UDP and TCP."""

from __future__ import annotations

from functools import partial

from detector.lab.netns import run
from detector.lab.session import Access
from detector.lab.variant import Endpoint, Variant, register


def openvpn(s, mode: str, proto: str):
    d = s.path("openvpn")
    d.mkdir(exist_ok=True)
    pki = s.pki
    inner = s.inner_ip
    cipher = s.rng.choice(("AES-256-GCM", "AES-128-GCM", "CHACHA20-POLY1305"))
    common = ["--dev", "tun0", "--dev-type", "tun", "--verb", "3", "--persist-tun"]
    if proto == "udp":
        sproto, cproto = ["--proto", "udp"], ["--proto", "udp"]
    else:
        sproto, cproto = ["--proto", "tcp-server"], ["--proto", "tcp-client"]
    if mode == "static":
        key = d / "static.key"
        run(["openvpn", "--genkey", "secret", str(key)])
        # Static-key mode has no negotiation: CBC+HMAC is its only cipher family, BF-CBC is gone from OpenSSL 3.
        # Static-key peers stay silent until one pings; without --ping the first data waits ~10 s.
        sc = ["--cipher", "AES-256-CBC", "--auth", "SHA256", "--ping", str(s.rng.choice((1, 2)))]
        srv = ["openvpn", *common, *sproto, "--port", s.port, "--local", s.server_ip,
               "--ifconfig", "10.8.0.1", "10.8.0.2", "--secret", key, "0", *sc]
        cli = ["openvpn", *common, *cproto, "--remote", s.server_ip, str(s.port), "--nobind",
               "--ifconfig", "10.8.0.2", "10.8.0.1", "--secret", key, "1", *sc,
               "--route", inner, "255.255.255.255"]
    else:
        extra = []
        if mode == "tlscrypt":
            tc = d / "tc.key"
            run(["openvpn", "--genkey", "secret", str(tc)])
            extra = ["--tls-crypt", tc]
        keepalive = ["--keepalive", "2", "20"] if s.pattern == "idle" else ["--keepalive", "10", "60"]
        srv = ["openvpn", *common, *sproto, "--port", s.port, "--local", s.server_ip, "--mode", "server",
               "--tls-server", "--topology", "subnet", "--server", "10.8.0.0", "255.255.255.0",
               "--ca", pki.ca, "--cert", pki.server_crt, "--key", pki.server_key, "--dh", "none",
               "--data-ciphers", cipher, "--push", f"route {inner} 255.255.255.255", *keepalive, *extra]
        cli = ["openvpn", *common, *cproto, "--remote", s.server_ip, str(s.port), "--client", "--nobind",
               "--ca", pki.ca, "--cert", pki.client_crt, "--key", pki.client_key, "--remote-cert-tls", "server",
               "--data-ciphers", cipher, *extra]
    sp = s.server(srv, "openvpn-server")
    if proto == "tcp":
        s.wait_server(proc=sp)
    else:
        s.wait_server(transport="udp", proc=sp)
    cp = s.client(cli, "openvpn-client")
    cp.wait_output("Initialization Sequence Completed", 30)
    s.wait_route(proc=cp)
    return Access()


for _mode, _impl in (("static", "static key"), ("tls", "TLS"), ("tlscrypt", "TLS + tls-crypt")):
    for _proto in ("udp", "tcp"):
        register(Variant(f"openvpn_{_mode}_{_proto}", "vpn", "openvpn", f"openvpn {_impl} over {_proto.upper()}",
                         ("openvpn",), 1194, partial(openvpn, mode=_mode, proto=_proto),
                         endpoints=(Endpoint(_proto),)))
