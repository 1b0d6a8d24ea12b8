"""obfs4 (obfs4proxy) as a standalone transport: bridge side forwards to the inner web server."""

from __future__ import annotations

import re

from detector.lab.session import Access
from detector.lab.variant import Variant, register

LOCAL_PORT = 8081


def start_obfs4_server(s, port: int, orport: str, state: str) -> tuple[str, str]:
    iat = s.rng.choice((0, 0, 1, 2))  # iat-mode 1/2 split and delay packets, a different timing shape
    env = {"TOR_PT_MANAGED_TRANSPORT_VER": "1", "TOR_PT_STATE_LOCATION": s.path(state), "TOR_PT_SERVER_TRANSPORTS": "obfs4",
           "TOR_PT_SERVER_BINDADDR": f"obfs4-{s.server_ip}:{port}", "TOR_PT_ORPORT": orport,
           "TOR_PT_SERVER_TRANSPORT_OPTIONS": f"obfs4:iat-mode={iat}"}
    sp = s.server(["obfs4proxy", "-enableLogging"], "obfs4-server", env=env)
    out = sp.wait_output("SMETHODS DONE", 15)
    m = re.search(r"SMETHOD obfs4 \S+ ARGS:cert=([^,\s]+),iat-mode=(\d)", out)
    s.check(m is not None, f"obfs4proxy gave no bridge line: {out[-300:]}")
    return m.group(1), m.group(2)


def obfs4(s):
    cert, iat = start_obfs4_server(s, s.port, f"{s.inner_ip}:80", "obfs4/server")
    env = {"TOR_PT_MANAGED_TRANSPORT_VER": "1", "TOR_PT_STATE_LOCATION": s.path("obfs4/client"),
           "TOR_PT_CLIENT_TRANSPORTS": "obfs4"}
    cp = s.client(["obfs4proxy", "-enableLogging"], "obfs4-client", env=env)
    out = cp.wait_output("CMETHODS DONE", 15)
    m = re.search(r"CMETHOD obfs4 socks5 127\.0\.0\.1:(\d+)", out)
    s.check(m is not None, f"obfs4proxy client gave no SOCKS port: {out[-300:]}")
    fwd = s.client([s.py, "-m", "detector.lab.ptfwd", LOCAL_PORT, m.group(1), f"cert={cert};iat-mode={iat}",
                    s.server_ip, s.port], "ptfwd")
    fwd.wait_output("forwarding", 10)
    return Access(target_ip="127.0.0.1", target_port=LOCAL_PORT, tls=False)


register(Variant("obfs4", "proxy", "obfs4", "obfs4proxy", ("obfs4proxy",), 9443, obfs4))
