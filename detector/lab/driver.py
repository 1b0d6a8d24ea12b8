"""The client side of a session's payload: HTTP(S) to the inner web server in a seeded traffic pattern.

Runs inside the client namespace (`python -m detector.lab.driver SPEC.json`). It reaches the inner server
directly (routed into a tunnel), through a SOCKS5 or HTTP proxy, or through a local forwarder, and checks
each body's SHA-256 against the manifest: a verified body is the proof that the tunnel or proxy carried it.
Exits non-zero unless at least one body was verified and none was wrong.
"""

from __future__ import annotations

import hashlib
import http.client
import ipaddress
import json
import random
import socket
import ssl
import struct
import sys
import time

PATTERNS = ("browsing", "bulk", "interactive", "idle", "streaming")


class Fail(Exception):
    pass


def socks5_connect(proxy: tuple[str, int], host: str, port: int, timeout: float) -> socket.socket:
    s = socket.create_connection(proxy, timeout=timeout)
    s.sendall(b"\x05\x01\x00")
    if s.recv(2) != b"\x05\x00":
        raise Fail("SOCKS5 proxy refused the no-auth method")
    try:
        addr = b"\x01" + ipaddress.IPv4Address(host).packed
    except ValueError:
        addr = b"\x03" + bytes([len(host)]) + host.encode()
    s.sendall(b"\x05\x01\x00" + addr + struct.pack("!H", port))
    head = _recv_exact(s, 4)
    if head[1] != 0:
        raise Fail(f"SOCKS5 CONNECT failed with code {head[1]}")
    skip = {1: 4, 4: 16}.get(head[3])
    if skip is None:
        skip = _recv_exact(s, 1)[0]
    _recv_exact(s, skip + 2)
    return s


def http_connect(proxy: tuple[str, int], host: str, port: int, timeout: float) -> socket.socket:
    s = socket.create_connection(proxy, timeout=timeout)
    s.sendall(f"CONNECT {host}:{port} HTTP/1.1\r\nHost: {host}:{port}\r\n\r\n".encode())
    head = b""
    while b"\r\n\r\n" not in head:
        chunk = s.recv(1)
        if not chunk:
            raise Fail("proxy closed the CONNECT")
        head += chunk
    status_line = head.split(b"\r\n", 1)[0]
    if b" 200" not in status_line:
        raise Fail(f"CONNECT refused: {status_line!r}")
    return s


def _recv_exact(s: socket.socket, n: int) -> bytes:
    buf = b""
    while len(buf) < n:
        chunk = s.recv(n - len(buf))
        if not chunk:
            raise Fail("connection closed during proxy handshake")
        buf += chunk
    return buf


class Client:
    """One keep-alive HTTP connection to the inner server, made however the spec says."""

    def __init__(self, spec: dict):
        self.spec = spec
        self.timeout = spec.get("timeout", 30)
        self.conn: http.client.HTTPConnection | None = None

    def _connect(self) -> http.client.HTTPConnection:
        sp = self.spec
        host, port, tls = sp["target_ip"], sp["target_port"], sp.get("tls", False)
        via = sp.get("via")
        if via and via["kind"] == "http":
            if not tls:  # plain HTTP goes to the proxy itself, with absolute URIs
                return http.client.HTTPConnection(via["ip"], via["port"], timeout=self.timeout)
            sock = http_connect((via["ip"], via["port"]), host, port, self.timeout)
        elif via and via["kind"] == "socks5":
            sock = socks5_connect((via["ip"], via["port"]), host, port, self.timeout)
        else:
            sock = socket.create_connection((host, port), timeout=self.timeout)
        if tls:
            ctx = ssl.create_default_context(cafile=sp["ca"])
            sock = ctx.wrap_socket(sock, server_hostname=sp["host"])
        conn = http.client.HTTPConnection(sp["host"], port, timeout=self.timeout)
        conn.sock = sock
        return conn

    def request(self, method: str, path: str, body: bytes | None = None, headers: dict | None = None) -> tuple[int, bytes]:
        reused = self.conn is not None
        try:
            return self._request(method, path, body, headers)
        except (http.client.RemoteDisconnected, ConnectionResetError, BrokenPipeError):
            if not reused:
                raise
            # Some proxies (tinyproxy) close an idle keep-alive connection silently: reconnect once, as browsers do.
            self.close()
            return self._request(method, path, body, headers)

    def _request(self, method, path, body, headers) -> tuple[int, bytes]:
        if self.conn is None:
            self.conn = self._connect()
        sp = self.spec
        url = path
        if sp.get("via", {}) and sp["via"]["kind"] == "http" and not sp.get("tls"):
            url = f"http://{sp['target_ip']}:{sp['target_port']}{path}"  # absolute URI, as browsers send to proxies
        hdrs = {"Host": sp["host"], "User-Agent": "Mozilla/5.0 (X11; Linux x86_64) vpndetect-lab", "Accept": "*/*"}
        hdrs.update(headers or {})
        self.conn.request(method, url, body=body, headers=hdrs)
        resp = self.conn.getresponse()
        data = resp.read()
        if resp.getheader("Connection", "").lower() == "close":
            self.close()
        return resp.status, data

    def close(self) -> None:
        if self.conn is not None:
            self.conn.close()
            self.conn = None


class Session:
    def __init__(self, spec: dict):
        self.spec = spec
        self.manifest = spec["manifest"]
        self.rng = random.Random(spec["seed"])
        self.verified = 0
        self.bytes_down = 0
        self.bytes_up = 0

    def get(self, client: Client, path: str, byte_range: tuple[int, int] | None = None) -> None:
        headers = {"Range": f"bytes={byte_range[0]}-{byte_range[1]}"} if byte_range else None
        status, data = client.request("GET", path, headers=headers)
        size, digest = self.manifest[path]
        if byte_range:
            if status != 206 or len(data) != byte_range[1] - byte_range[0] + 1:
                raise Fail(f"GET {path} range {byte_range}: status {status}, {len(data)} bytes")
        elif status != 200 or len(data) != size or hashlib.sha256(data).hexdigest() != digest:
            raise Fail(f"GET {path}: status {status}, {len(data)} bytes, digest mismatch or wrong size (want {size})")
        else:
            self.verified += 1
        self.bytes_down += len(data)

    def post(self, client: Client, nbytes: int) -> None:
        body = self.rng.randbytes(nbytes)
        status, _ = client.request("POST", "/upload", body=body, headers={"Content-Type": "application/octet-stream"})
        if status not in (200, 201, 204):
            raise Fail(f"POST /upload: status {status}")
        self.bytes_up += nbytes

    def paths(self, kind: str) -> list[str]:
        return sorted(p for p in self.manifest if p.startswith(f"/{kind}/"))

    # --- patterns --------------------------------------------------------------------------------------
    def browsing(self) -> None:
        pages, objs = self.paths("page"), self.paths("obj")
        for _ in range(self.rng.randint(3, 5)):
            client = Client(self.spec)
            self.get(client, self.rng.choice(pages))
            for path in self.rng.sample(objs, self.rng.randint(2, min(6, len(objs)))):
                self.get(client, path)
            client.close()
            time.sleep(self.rng.uniform(0.3, 1.2))  # reading time between page views

    def bulk(self) -> None:
        client = Client(self.spec)
        self.get(client, self.rng.choice(self.paths("big")))
        self.post(client, self.rng.randint(60_000, 160_000))
        client.close()

    def interactive(self) -> None:
        client = Client(self.spec)
        tiny = self.paths("tiny")
        for _ in range(self.rng.randint(15, 30)):
            self.get(client, self.rng.choice(tiny))
            time.sleep(self.rng.uniform(0.05, 0.35))  # keystroke-paced requests, as in a chat or terminal over HTTP
        client.close()

    def idle(self) -> None:
        self.get(Client(self.spec), self.rng.choice(self.paths("page")))
        time.sleep(self.rng.uniform(4.0, 6.0))  # only the tunnel's own keep-alives run meanwhile
        client = Client(self.spec)
        self.get(client, self.rng.choice(self.paths("tiny")))
        client.close()

    def streaming(self) -> None:
        client = Client(self.spec)
        path = self.rng.choice(self.paths("stream"))
        size = self.manifest[path][0]
        chunk = self.rng.choice((16_384, 24_576, 32_768))
        self.get(client, path) if self.rng.random() < 0.2 else None
        offset = 0
        while offset < size:
            end = min(size, offset + chunk) - 1
            self.get(client, path, (offset, end))
            offset = end + 1
            time.sleep(self.rng.uniform(0.25, 0.5))  # player buffer refill interval
        self.get(client, self.rng.choice(self.paths("tiny")))
        client.close()


def main() -> int:
    spec = json.load(open(sys.argv[1]))
    session = Session(spec)
    try:
        getattr(session, spec["pattern"])()
    except Exception as exc:  # every failure becomes one line for the lab's error message
        print(json.dumps({"ok": False, "error": f"{type(exc).__name__}: {exc}", "verified": session.verified}))
        return 1
    ok = session.verified > 0
    print(json.dumps({"ok": ok, "verified": session.verified, "down": session.bytes_down, "up": session.bytes_up}))
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
