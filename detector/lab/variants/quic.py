"""QUIC with HTTP/3: ngtcp2's example server and client (GnuTLS + nghttp3), the one packaged HTTP/3 stack in Debian 12."""

from __future__ import annotations

import hashlib
import time

from detector.lab.netns import LabError
from detector.lab.pki import WEB_NAME
from detector.lab.variant import Endpoint, Variant, register
from detector.lab.variants.common import fetch_rounds


def quic_h3(s):
    sp = s.server(["gtlsserver", "-q", "--no-quic-dump", "--no-http-dump", "-d", s.dir / "www", s.server_ip, s.port,
                   s.pki.web_key, s.pki.web_crt], "gtlsserver")
    s.wait_server(transport="udp", proc=sp)

    def fetch(paths):
        # --download names files by their last path segment: one connection per batch of distinct names.
        batches: list[list[str]] = []
        for p in paths:
            for b in batches:
                if all(q.rsplit("/", 1)[1] != p.rsplit("/", 1)[1] for q in b):
                    b.append(p)
                    break
            else:
                batches.append([p])
        for b in batches:
            fetch_batch(b)

    def fetch_batch(paths):
        out = s.path(f"h3-{time.monotonic_ns()}")
        out.mkdir()
        urls = [f"https://{WEB_NAME}:{s.port}{p}" for p in paths]
        proc = s.crun(["gtlsclient", "-q", "--no-quic-dump", "--no-http-dump", "--exit-on-all-streams-close",
                       "--timeout=15s", "--sni", WEB_NAME, "--download", out, s.server_ip, s.port, *urls],
                      timeout=40, check=False)
        for p in paths:
            got = out / p.rsplit("/", 1)[1]
            size, digest = s.manifest[p]
            if not got.exists() or hashlib.sha256(got.read_bytes()).hexdigest() != digest:
                raise LabError(f"HTTP/3 fetch of {p} failed ({proc.returncode}): {proc.stderr[-300:]}")

    fetch_rounds(s, fetch)


register(Variant("quic_h3", "normal", "quic", "ngtcp2 gtlsclient + gtlsserver (HTTP/3)", ("ngtcp2-client", "ngtcp2-server"),
                 443, quic_h3, endpoints=(Endpoint("udp"),)))
