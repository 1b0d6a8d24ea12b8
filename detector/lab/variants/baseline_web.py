"""Normal web traffic: HTTP/1.1, HTTPS from several TLS stacks, HTTP/2, served by nginx on the server's address."""

from __future__ import annotations

from detector.lab.netns import LabError
from detector.lab.pki import WEB_NAME
from detector.lab.session import Access
from detector.lab.variant import Variant, register
from detector.lab.variants.common import curl_fetch, fetch_rounds, https_url


def _nginx(s, tls: bool):
    s.start_nginx("web", [f"{s.server_ip}:{s.port}" + (" ssl http2" if tls else "")])


def http_python(s):
    _nginx(s, tls=False)
    return Access(target_ip=s.server_ip, target_port=s.port, tls=False)


def https_python(s):
    _nginx(s, tls=True)
    return Access(target_ip=s.server_ip, target_port=s.port, tls=True)


def http_curl(s):
    _nginx(s, tls=False)
    fetch_rounds(s, lambda paths: curl_fetch(s, f"http://{s.server_ip}:{s.port}", paths, ["-H", f"Host: {WEB_NAME}"]))


def https_curl(s):
    _nginx(s, tls=True)
    url, opts = https_url(s, s.port)
    fetch_rounds(s, lambda paths: curl_fetch(s, url, paths, ["--http1.1", *opts]))


def http2_curl(s):
    _nginx(s, tls=True)
    url, opts = https_url(s, s.port)
    fetch_rounds(s, lambda paths: curl_fetch(s, url, paths, ["--http2", *opts]))


def https_gnutls(s):
    _nginx(s, tls=True)

    def fetch(paths):
        reqs = "".join(f"GET {p} HTTP/1.1\r\nHost: {WEB_NAME}\r\n" + ("Connection: close\r\n" if i == len(paths) - 1 else "")
                       + "\r\n" for i, p in enumerate(paths))
        proc = s.net.ns_run(s.net.client_ns, ["gnutls-cli", "--x509cafile", str(s.pki.ca), "--verify-hostname", WEB_NAME,
                                              "--sni-hostname", WEB_NAME, "--port", str(s.port), "--logfile", "/dev/null",
                                              s.server_ip], input=reqs.encode(), text=False, check=False, timeout=60)
        body = proc.stdout
        for p in paths:
            want = (s.dir / "www" / p.lstrip("/")).read_bytes()
            if want not in body:
                raise LabError(f"gnutls-cli did not receive {p} intact ({proc.returncode}): {proc.stderr[-300:]!r}")

    fetch_rounds(s, fetch)


register(
    Variant("http_python", "normal", "http", "python http.client + nginx", ("nginx-light",), 80, http_python,
            description="HTTP/1.1 keep-alive in the session's pattern"),
    Variant("http_curl", "normal", "http", "curl + nginx", ("curl", "nginx-light"), 80, http_curl),
    Variant("https_python", "normal", "tls", "python ssl (OpenSSL) + nginx", ("nginx-light",), 443, https_python),
    Variant("https_curl", "normal", "tls", "curl (OpenSSL) + nginx", ("curl", "nginx-light"), 443, https_curl),
    Variant("https_gnutls", "normal", "tls", "gnutls-cli + nginx", ("gnutls-bin", "nginx-light"), 443, https_gnutls),
    Variant("http2_curl", "normal", "http2", "curl --http2 + nginx", ("curl", "nginx-light"), 443, http2_curl),
)
