"""iodine: IP over DNS. Runs in raw-DNS-only mode (-r), as it would through a recursive resolver."""

from __future__ import annotations

from detector.lab.session import Access
from detector.lab.variant import Endpoint, Variant, register


def iodine(s):
    password = f"lab{s.seed % 100000}"
    domain = s.rng.choice(("t.lab.test", "x.lab.test", "dns.example.net"))
    sp = s.server(["iodined", "-f", "-c", "-P", password, "-l", s.server_ip, "-p", 53, "10.50.0.1/24", domain], "iodined",
                  private_run=True)
    s.wait_server(53, "udp", proc=sp)
    args = ["iodine", "-f", "-r", "-P", password]
    qtype = s.rng.choice((None, "TXT", "CNAME", "NULL"))
    if qtype:
        args += ["-T", qtype]
    # -M/-m fix the fragment sizes and skip the ~8 s autoprobe in some sessions, as tuned clients do.
    if s.rng.random() < 0.5:
        args += ["-m", "1000"]
    cp = s.client(args + [s.server_ip, domain], "iodine", private_run=True)
    cp.wait_output("Connection setup complete", 40)
    s.crun(["ip", "route", "add", f"{s.inner_ip}/32", "via", "10.50.0.1", "dev", "dns0"])
    return Access(tls=False)


register(Variant("iodine", "proxy", "dns_tunnel", "iodine", ("iodine",), 53, iodine, endpoints=(Endpoint("udp"),),
                 random_port=False, description="the client always queries port 53"))
