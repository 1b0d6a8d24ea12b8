"""Helpers shared by the variant modules: key material, curl fetches with digest checks."""

from __future__ import annotations

import hashlib
import shlex
import time

from detector.lab.netns import LabError, run
from detector.lab.pki import WEB_NAME


def wg_keypair() -> tuple[str, str]:
    private = run(["wg", "genkey"]).stdout.strip()
    public = run(["wg", "pubkey"], input=private + "\n").stdout.strip()
    return private, public


def curl_fetch(s, base_url: str, paths: list[str], extra: list[str] = (), ns: str = "client", timeout: float = 60) -> int:
    """Fetch `paths` with one curl (one connection, like a browser tab) and check every body's digest."""
    outdir = s.path(f"curl-{time.monotonic_ns()}")
    outdir.mkdir(exist_ok=True)
    args = ["curl", "-sS", "--fail", "--max-time", str(int(timeout)), *extra]
    for i, p in enumerate(paths):
        args += ["-o", str(outdir / f"{i}.bin"), base_url + p]
    runner = s.crun if ns == "client" else s.srun
    proc = runner(args, timeout=timeout + 10, check=False)
    if proc.returncode != 0:
        raise LabError(f"curl {base_url} failed ({proc.returncode}): {proc.stderr.strip()[-300:]}")
    total = 0
    for i, p in enumerate(paths):
        data = (outdir / f"{i}.bin").read_bytes()
        size, digest = s.manifest[p]
        if len(data) != size or hashlib.sha256(data).hexdigest() != digest:
            raise LabError(f"curl {base_url}{p}: body differs from the served file")
        total += len(data)
    return total


def fetch_rounds(s, fetch, rounds: tuple[int, int] = (2, 4)) -> None:
    """Browsing-like rounds of `fetch(paths)` calls, paced by the session's seed and pattern."""
    rng = s.rng
    objs = sorted(p for p in s.manifest if p.startswith("/obj/"))
    pages = sorted(p for p in s.manifest if p.startswith("/page/"))
    tiny = sorted(p for p in s.manifest if p.startswith("/tiny/"))
    big = sorted(p for p in s.manifest if p.startswith(("/big/", "/stream/")))
    if s.pattern == "bulk":
        fetch([rng.choice(big)])
        return
    for r in range(rng.randint(*rounds)):
        if s.pattern == "interactive":
            fetch(rng.sample(tiny, 2))
            time.sleep(rng.uniform(0.1, 0.4))
        elif s.pattern == "idle":
            fetch([rng.choice(tiny)])
            time.sleep(rng.uniform(1.5, 2.5))
        elif s.pattern == "streaming":
            fetch([rng.choice(big)])
            time.sleep(rng.uniform(0.3, 0.6))
        else:
            fetch([rng.choice(pages)] + rng.sample(objs, rng.randint(2, 5)))
            time.sleep(rng.uniform(0.3, 1.0))


def https_url(s, port: int) -> tuple[str, list[str]]:
    """URL and curl options for the server's web site by name, without any DNS lookup."""
    return (f"https://{WEB_NAME}:{port}",
            ["--resolve", f"{WEB_NAME}:{port}:{s.server_ip}", "--cacert", str(s.pki.ca)])


def q(x) -> str:
    return shlex.quote(str(x))
