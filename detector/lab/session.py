"""One session: a variant run once, with its seed, traffic pattern, port and network condition, captured and labelled."""

from __future__ import annotations

import hashlib
import json
import platform
import random
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

from detector.lab import flows as flowlib
from detector.lab.capture import Capture, store
from detector.lab.impair import CONDITIONS
from detector.lab.netns import CLIENT_IP, INNER_IP, SERVER_IP, LabError, LabNet
from detector.lab.pki import WEB_NAME, Pki
from detector.lab.variant import Variant

LABEL_COLUMNS = ["capture", "label", "protocol", "implementation", "version", "variant", "session",
                 "server_ip", "server_port", "transport", "condition", "seed", "pattern", "role"]


@dataclass
class Access:
    """How the client reaches the inner web server once the tunnel or proxy is up."""

    target_ip: str = INNER_IP
    target_port: int | None = None  # None: 80, or 443 when the session chose HTTPS inside the tunnel
    via: dict | None = None  # {"kind": "socks5"|"http", "ip": ..., "port": ...}
    host: str = WEB_NAME
    tls: bool | None = None  # None: the session's seed decides (only when the target is the inner server)


@dataclass
class SessionPlan:
    variant: Variant
    index: int
    seed: int
    pattern: str
    condition: str
    random_port: bool

    @property
    def capture_name(self) -> str:
        return f"{self.variant.name}_{self.index:02d}.pcap.gz"


@dataclass
class Session:
    plan: SessionPlan
    net: LabNet
    pki: Pki
    dir: Path
    rng: random.Random = field(init=False)
    port: int = field(init=False)
    rows: list[dict] = field(default_factory=list)
    manifest: dict = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)

    def __post_init__(self):
        self.rng = random.Random(self.plan.seed)
        v = self.plan.variant
        if self.plan.random_port and v.random_port:
            # Never a well-known port: a port must not be able to stand for a protocol.
            self.port = self.rng.randint(20000, 60999)
        else:
            self.port = v.default_port or 0

    # --- shorthands for variant modules ----------------------------------------------------------------
    @property
    def variant(self) -> Variant: return self.plan.variant
    @property
    def seed(self) -> int: return self.plan.seed
    @property
    def pattern(self) -> str: return self.plan.pattern
    @property
    def py(self) -> str: return sys.executable
    client_ip = CLIENT_IP
    server_ip = SERVER_IP
    inner_ip = INNER_IP

    def path(self, name: str) -> Path:
        p = self.dir / name
        p.parent.mkdir(parents=True, exist_ok=True)
        return p

    def write(self, name: str, text: str, mode: int = 0o644) -> Path:
        p = self.path(name)
        p.write_text(text)
        p.chmod(mode)
        return p

    def server(self, cmd, name, **kw):
        return self.net.server([str(c) for c in cmd], name, **kw)

    def client(self, cmd, name, **kw):
        return self.net.client([str(c) for c in cmd], name, **kw)

    def crun(self, cmd, timeout: float = 60, check: bool = True, **kw) -> subprocess.CompletedProcess:
        return self.net.ns_run(self.net.client_ns, [str(c) for c in cmd], timeout=timeout, check=check, **kw)

    def srun(self, cmd, timeout: float = 60, check: bool = True, **kw) -> subprocess.CompletedProcess:
        return self.net.ns_run(self.net.server_ns, [str(c) for c in cmd], timeout=timeout, check=check, **kw)

    def wait_server(self, port: int | None = None, transport: str = "tcp", proc=None, timeout: float = 15,
                    ip: str | None = SERVER_IP):
        self.net.wait_listen(self.net.server_ns, port or self.port, transport, timeout=timeout, proc=proc, ip=ip)

    def wait_client(self, port: int, transport: str = "tcp", proc=None, timeout: float = 15):
        self.net.wait_listen(self.net.client_ns, port, transport, timeout=timeout, proc=proc)

    def wait_route(self, dest: str = INNER_IP, timeout: float = 20, proc=None) -> None:
        """Wait until the client routes `dest` into some tunnel device (not the veth)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            out = self.crun(["ip", "-o", "route", "get", dest], check=False).stdout
            if out and self.net.client_if not in out and "unreachable" not in out:
                return
            if proc is not None and not proc.alive():
                raise LabError(f"{proc.name} exited before the tunnel came up: {proc.output()[-800:]}")
            time.sleep(0.1)
        raise LabError(f"no tunnel route to {dest} after {timeout:.0f} s" +
                       (f": {proc.output()[-800:]}" if proc else ""))

    def check(self, ok: bool, message: str) -> None:
        if not ok:
            raise LabError(message)

    # --- labels ----------------------------------------------------------------------------------------
    def endpoint(self, transport: str = "tcp", port: int | str | None = None, ip: str = SERVER_IP) -> None:
        """A server endpoint of the tunnel or proxy itself (label, protocol and implementation of the variant)."""
        v = self.variant
        self._row(v.label, v.protocol, v.implementation, v_version(v), ip, self.port if port is None else port,
                  transport, role="main")

    def side(self, label: str, protocol: str, implementation: str, port: int | str, transport: str,
             ip: str = SERVER_IP, version: str = "") -> None:
        """Traffic next to the tunnel that is not the tunnel (a client's DNS lookups, probes), labelled as what it is."""
        self._row(label, protocol, implementation, version, ip, port, transport, role="side")

    def _row(self, label, protocol, implementation, version, ip, port, transport, role) -> None:
        p = self.plan
        row = {
            "capture": p.capture_name, "label": label, "protocol": protocol, "implementation": implementation,
            "version": version, "variant": p.variant.name, "session": p.index, "server_ip": ip,
            "server_port": port, "transport": transport, "condition": p.condition, "seed": p.seed,
            "pattern": p.pattern, "role": role,
        }
        key = (ip, str(port), transport)
        self.rows = [r for r in self.rows if (r["server_ip"], str(r["server_port"]), r["transport"]) != key]
        self.rows.append(row)

    # --- web content and payload -----------------------------------------------------------------------
    def make_site(self) -> Path:
        """Seeded files for the inner web server; their digests are what the driver verifies."""
        www = self.path("www")
        sizes = {
            "page": [self.rng.randint(5_000, 25_000) for _ in range(4)],
            "obj": [self.rng.randint(500, 16_000) for _ in range(10)],
            "tiny": [self.rng.randint(80, 700) for _ in range(5)],
            "big": [self.rng.randint(90_000, 180_000) for _ in range(2)],
            "stream": [self.rng.randint(80_000, 150_000)],
        }
        content_rng = random.Random(self.seed ^ 0x5EED)
        for kind, lst in sizes.items():
            (www / kind).mkdir(parents=True, exist_ok=True)
            for i, size in enumerate(lst):
                data = content_rng.randbytes(size)
                name = f"/{kind}/{i:02d}.bin"
                (www / kind / f"{i:02d}.bin").write_bytes(data)
                self.manifest[name] = [size, hashlib.sha256(data).hexdigest()]
        return www

    def start_nginx(self, name: str, listens: list[str], ns: str | None = None):
        """nginx serving the session's site; `listens` are nginx `listen` arguments, e.g. '10.99.1.1:443 ssl http2'."""
        base = self.write_nginx_conf(name, listens)
        ns = ns or self.net.server_ns
        proc = self.net.start(ns, ["nginx", "-c", str(base / "nginx.conf"), "-p", str(base)], name)
        ip, port = listens[0].split()[0].rsplit(":", 1)
        self.net.wait_listen(ns, int(port), "tcp", timeout=10, proc=proc, ip=ip)
        return proc

    def write_nginx_conf(self, name: str, listens: list[str]) -> Path:
        base = self.path(name)
        base.mkdir(exist_ok=True)
        for sub in ("tmp", "logs"):
            (base / sub).mkdir(exist_ok=True)
        listen_lines = "\n".join(f"    listen {l};" for l in listens)
        conf = f"""daemon off;
master_process off;
worker_processes 1;
pid {base}/nginx.pid;
error_log {base}/logs/error.log warn;
events {{ worker_connections 256; }}
http {{
  access_log off;
  default_type application/octet-stream;
  client_body_temp_path {base}/tmp/body;
  proxy_temp_path {base}/tmp/proxy;
  fastcgi_temp_path {base}/tmp/fastcgi;
  uwsgi_temp_path {base}/tmp/uwsgi;
  scgi_temp_path {base}/tmp/scgi;
  keepalive_requests 1000;
  server {{
{listen_lines}
    server_name {WEB_NAME};
    ssl_certificate {self.pki.web_crt};
    ssl_certificate_key {self.pki.web_key};
    root {self.dir / 'www'};
    location = /upload {{ client_max_body_size 50m; return 204; }}
  }}
}}
"""
        (base / "nginx.conf").write_text(conf)
        return base

    def payload_spec(self, access: Access, pattern: str | None = None) -> Path:
        """The driver's instructions for this session (also read by drivers running inside UML guests)."""
        tls = access.tls
        if tls is None:
            # Most web traffic is HTTPS, and so is most of what people send through tunnels: a tunnel that
            # carries TLS shows the inner handshake, one that carries plain HTTP does not.
            tls = access.target_ip == INNER_IP and self.rng.random() < 0.75
        port = access.target_port or (443 if tls else 80)
        spec = {
            "target_ip": access.target_ip, "target_port": port, "tls": tls, "host": access.host,
            "via": access.via, "ca": str(self.pki.ca), "seed": self.seed, "pattern": pattern or self.pattern,
            "manifest": self.manifest, "timeout": 90,
        }
        spec_path = self.path(f"driver-{time.monotonic_ns()}.json")
        spec_path.write_text(json.dumps(spec))
        return spec_path

    def payload(self, access: Access, pattern: str | None = None) -> dict:
        """Run the seeded traffic pattern from the client namespace through `access`; fail unless bodies verified."""
        spec_path = self.payload_spec(access, pattern)
        spec = json.loads(spec_path.read_text())
        tls, port = spec["tls"], spec["target_port"]
        # A DNS tunnel at 150 ms RTT with 1 % loss moves a few kB/s: a bulk session may take minutes.
        proc = self.crun([self.py, "-m", "detector.lab.driver", spec_path], timeout=360, check=False)
        try:
            result = json.loads(proc.stdout.strip().splitlines()[-1])
        except (ValueError, IndexError):
            result = {"ok": False, "error": (proc.stderr or proc.stdout).strip()[-400:]}
        if proc.returncode != 0 or not result.get("ok"):
            raise LabError(f"payload did not get through ({'https' if tls else 'http'} to {access.target_ip}:{port}"
                           f"{' via ' + access.via['kind'] if access.via else ''}): {result.get('error')}")
        return result


def v_version(v: Variant) -> str:
    if v.extra.get("version"):
        return v.extra["version"]
    if v.packages:
        return v.version
    return f"python {platform.python_version()}"


def run_session(plan: SessionPlan, workdir: Path, out_dir: Path, pki: Pki) -> tuple[list[dict], dict]:
    """Build, run, capture, tear down, check. Returns (label rows, capture stats); raises LabError."""
    cond = CONDITIONS[plan.condition]
    sdir = workdir / plan.capture_name.replace(".pcap.gz", "")
    sdir.mkdir(parents=True, exist_ok=True)
    raw = sdir / "capture.pcap"
    t0 = time.monotonic()
    uml = plan.variant.needs_uml  # True: both ends are guests; "client": only the client is
    with LabNet(sdir, router=cond.needs_router, host_addresses=uml is not True, client_addresses=not uml) as net:
        s = Session(plan, net, pki, sdir)
        if cond.needs_router:
            bridge = net.start(net.router_ns, [sys.executable, "-m", "detector.lab.impair", net.router_client_if,
                                               net.router_server_if, cond.name, "--seed", str(plan.seed)], "bridge")
            bridge.wait_output("bridging", timeout=10)
        s.make_site()
        # A server that wants every address's port 443 (SoftEther's SSTP) gets an inner server on 80 only.
        inner = [f"{INNER_IP}:80"] + ([f"{INNER_IP}:443 ssl http2"] if plan.variant.extra.get("inner_https", True) else [])
        if uml is True:  # the server guest runs this same configuration itself
            s.write_nginx_conf("inner-web", inner)
        else:
            s.start_nginx("inner-web", inner)
        cap = Capture(net, raw)
        cap.start()
        client_lookup(s)
        access = plan.variant.run(s)
        if access is not None:
            s.payload(access)
        cap.stop()
        if not any(r["role"] == "main" for r in s.rows):
            s.endpoint(plan.variant.endpoints[0].transport if plan.variant.endpoints else "tcp")
        # Tearing down now, not at the end of `with`, keeps the shutdown chatter out of the timing below.
    elapsed = time.monotonic() - t0
    flows, non_ip = flowlib.read_flows(raw)
    rows = label_check(s, flows)
    dst = out_dir / plan.capture_name
    store(raw, dst)
    stats = {"capture": plan.capture_name, "variant": plan.variant.name, "label": plan.variant.label,
             "protocol": plan.variant.protocol, "condition": plan.condition, "pattern": plan.pattern,
             "seed": plan.seed, "server_port": s.port, "flows": len(flows),
             "packets": sum(f.packets for f in flows) + non_ip, "bytes": sum(f.bytes for f in flows),
             "seconds": round(elapsed, 1)}
    return rows, stats


def client_lookup(s: Session) -> None:
    """In about half the sessions the client first resolves the server's name, as a client configured with a
    host name does: that lookup is side traffic, labelled normal/dns. Skipped where port 53 belongs to the
    variant itself (DNS baselines, iodine, SoftEther's DNS probes) or the server is a UML guest."""
    v = s.variant
    if (v.needs_uml is True or s.port == 53 or v.protocol in ("dns", "dns_tunnel", "softether")
            or random.Random(s.seed ^ 0xD15).random() < 0.5):
        return
    proc = s.server(["dnsmasq", "-k", "-C", "/dev/null", "--pid-file=", "--no-resolv", "--no-hosts",
                     f"--listen-address={SERVER_IP}", "--bind-interfaces", "--port=53",
                     f"--host-record=vpn.lab.test,{SERVER_IP}", f"--host-record=www.lab.test,{INNER_IP}"], "resolver")
    s.wait_server(53, "udp", proc=proc)
    out = s.crun(["dig", f"@{SERVER_IP}", "+time=3", "+tries=2", "vpn.lab.test", "A", "vpn.lab.test", "AAAA"],
                 timeout=20).stdout
    s.check(SERVER_IP in out, f"the client's lookup of vpn.lab.test failed: {out[-200:]}")
    s.side("normal", "dns", "client resolver lookup (dig + dnsmasq)", 53, "udp")


def label_check(s: Session, flows: list[flowlib.Flow]) -> list[dict]:
    """Every flow must match exactly one row; rows that matched nothing are dropped (side traffic that did not happen)."""
    rows = list(s.rows)
    if any(f.transport == "icmp" for f in flows) and not any(r["transport"] == "icmp" for r in rows):
        # ICMP between the two lab hosts can only be errors (port unreachable after a daemon closed) or pings.
        s.side("normal", "icmp", "kernel", "*", "icmp")
        rows = list(s.rows)
    matched, unmatched, ambiguous = flowlib.match_flows(rows, flows)
    problems = [f"unlabelled flow {f.describe()}" for f in unmatched]
    problems += [f"flow with several label rows {f.describe()}" for f in ambiguous]
    if problems:
        raise LabError(f"{s.plan.capture_name}: " + "; ".join(problems[:12]))
    used = {id(r) for _, r in matched}
    main = [r for r in rows if r["role"] == "main"]
    if not any(id(r) in used for r in main):
        raise LabError(f"{s.plan.capture_name}: no flow of the tunnel/proxy itself was captured")
    return [r for r in rows if id(r) in used]
