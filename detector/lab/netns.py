"""Client, server (and router) network namespaces joined by veth pairs, and everything started inside them.

Nothing here can reach the outside: the namespaces have no default route and only the addresses below.
Teardown kills only PIDs this harness started or that live in its own namespaces, then deletes the namespaces.
"""

from __future__ import annotations

import os
import secrets
import shlex
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

CLIENT_IP = "10.99.0.1"
SERVER_IP = "10.99.0.2"
INNER_IP = "10.99.1.1"  # on the server's loopback: reachable from the client only through the tunnel or proxy
SUBNET_PREFIX = 24

_ACTIVE: set["LabNet"] = set()
# Set once an interrupt arrives: no new namespace or process may start while the lab is being torn down.
STOPPING = threading.Event()
_EVER_CREATED: set[str] = set()  # every namespace name this process made, for the last sweep
EVER_INODES: set[int] = set()  # their nsfs inodes: a process still inside one after teardown is a leak


class LabError(RuntimeError):
    """A session could not be built or its payload did not get through."""


def new_token() -> str:
    # pid + random: two labs started at once by different processes (or the same one) never share a name.
    return f"{os.getpid() % 100000:x}{secrets.token_hex(2)}"


def run(cmd: list[str], *, check: bool = True, timeout: float = 60, **kw) -> subprocess.CompletedProcess:
    kw.setdefault("text", True)
    proc = subprocess.run(cmd, capture_output=True, timeout=timeout, **kw)
    if check and proc.returncode != 0:
        err = proc.stderr or proc.stdout
        if isinstance(err, bytes):
            err = err.decode(errors="replace")
        raise LabError(f"{shlex.join(cmd)} failed ({proc.returncode}): {err.strip()[-400:]}")
    return proc


class Process:
    """A daemon or client started by the lab, with its output in a log file under the session folder."""

    def __init__(self, popen: subprocess.Popen, name: str, log: Path):
        self.popen = popen
        self.name = name
        self.log = log

    @property
    def pid(self) -> int:
        return self.popen.pid

    def alive(self) -> bool:
        return self.popen.poll() is None

    def output(self) -> str:
        try:
            return self.log.read_text(errors="replace")
        except FileNotFoundError:
            return ""

    def wait_output(self, needle: str, timeout: float) -> str:
        """Wait until `needle` appears in the log; fail early if the process dies."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            text = self.output()
            if needle in text:
                return text
            if not self.alive():
                raise LabError(f"{self.name} exited ({self.popen.returncode}) before '{needle}': {text.strip()[-600:]}")
            time.sleep(0.05)
        raise LabError(f"{self.name}: no '{needle}' within {timeout:.0f} s: {self.output().strip()[-600:]}")


class LabNet:
    """Context manager: the namespaces of one session and the processes running in them.

    With `router=True` a third namespace sits between client and server with two veth pairs; the
    impairment bridge (impair.py) forwards frames between them, so the client and server still
    share one subnet and every frame crosses a delay/jitter/loss schedule.
    """

    def __init__(self, workdir: Path, router: bool = False, token: str | None = None, host_addresses: bool = True,
                 client_addresses: bool | None = None):
        self.token = token or new_token()
        # False for User-Mode-Linux guests: they own the veth ends through raw sockets, so the host stack
        # must hold no address there (it would answer ARP for the guest's address).
        self.host_addresses = host_addresses
        self.client_addresses = host_addresses if client_addresses is None else client_addresses
        self.workdir = Path(workdir)
        self.router = router
        prefix = f"vpnlab-{self.token}"
        self.client_ns = f"{prefix}-c"
        self.server_ns = f"{prefix}-s"
        self.router_ns = f"{prefix}-r" if router else None
        # Interface names are at most 15 characters and carry the token too, for readability in `ip link`.
        self.client_if = f"vc{self.token}"[:15]
        self.server_if = f"vs{self.token}"[:15]
        self.router_client_if = f"rc{self.token}"[:15]
        self.router_server_if = f"rs{self.token}"[:15]
        self.processes: list[Process] = []
        self._created: list[str] = []
        # Teardown may run from a worker thread and from the interrupt path at once.
        self._teardown_lock = threading.Lock()

    # --- lifecycle -------------------------------------------------------------------------------------
    def __enter__(self) -> "LabNet":
        if STOPPING.is_set():
            raise LabError("the lab is stopping")
        _ACTIVE.add(self)
        install_signal_handlers()
        try:
            self._build()
        except BaseException:
            self.teardown()
            raise
        return self

    def __exit__(self, *exc) -> None:
        self.teardown()

    def namespaces(self) -> list[str]:
        return [ns for ns in (self.client_ns, self.server_ns, self.router_ns) if ns]

    def _build(self) -> None:
        self.workdir.mkdir(parents=True, exist_ok=True)
        for ns in self.namespaces():
            # Recorded before it exists: an interrupt between the two steps must not orphan it.
            self._created.append(ns)
            _EVER_CREATED.add(ns)
            if STOPPING.is_set():
                raise LabError("the lab is stopping")
            run(["ip", "netns", "add", ns])
            EVER_INODES.add(os.stat(f"/run/netns/{ns}").st_ino)
        if self.router:
            run(["ip", "link", "add", self.client_if, "netns", self.client_ns, "type", "veth",
                 "peer", "name", self.router_client_if, "netns", self.router_ns])
            run(["ip", "link", "add", self.server_if, "netns", self.server_ns, "type", "veth",
                 "peer", "name", self.router_server_if, "netns", self.router_ns])
        else:
            run(["ip", "link", "add", self.client_if, "netns", self.client_ns, "type", "veth",
                 "peer", "name", self.server_if, "netns", self.server_ns])
        for ns in self.namespaces():
            # IPv6 off everywhere, so no router solicitations, MLD or DAD frames pollute the captures.
            self.ns_run(ns, ["sysctl", "-q", "-w", "net.ipv6.conf.all.disable_ipv6=1",
                             "net.ipv6.conf.default.disable_ipv6=1"])
            self.ns_run(ns, ["ip", "link", "set", "lo", "up"])
        ends = [(self.client_ns, self.client_if), (self.server_ns, self.server_if)]
        if self.router:
            ends += [(self.router_ns, self.router_client_if), (self.router_ns, self.router_server_if)]
        for ns, ifname in ends:
            self.ns_run(ns, ["sysctl", "-q", "-w", f"net.ipv6.conf.{ifname}.disable_ipv6=1"])
            # Offloads off: the capture then shows the frames as they would be on a wire, with real sizes.
            self.ns_run(ns, ["ethtool", "-K", ifname, "tso", "off", "gso", "off", "gro", "off", "tx", "off", "rx", "off"],
                        check=False)
            self.ns_run(ns, ["ip", "link", "set", ifname, "up"])
        if self.router:
            for ifname in (self.router_client_if, self.router_server_if):
                # The router only bridges frames in userspace; its own stack must never answer anything.
                self.ns_run(self.router_ns, ["sysctl", "-q", "-w", f"net.ipv4.conf.{ifname}.arp_ignore=8"], check=False)
                self.ns_run(self.router_ns, ["ip", "link", "set", ifname, "promisc", "on"])
        if not self.client_addresses:
            self.ns_run(self.client_ns, ["sysctl", "-q", "-w", f"net.ipv4.conf.{self.client_if}.arp_ignore=8"], check=False)
        else:
            self.ns_run(self.client_ns, ["ip", "addr", "add", f"{CLIENT_IP}/{SUBNET_PREFIX}", "dev", self.client_if])
        if not self.host_addresses:
            self.ns_run(self.server_ns, ["sysctl", "-q", "-w", f"net.ipv4.conf.{self.server_if}.arp_ignore=8"], check=False)
            return
        self.ns_run(self.server_ns, ["ip", "addr", "add", f"{SERVER_IP}/{SUBNET_PREFIX}", "dev", self.server_if])
        self.ns_run(self.server_ns, ["ip", "addr", "add", f"{INNER_IP}/32", "dev", "lo"])

    def teardown(self) -> None:
        """Kill our processes (by PID), then delete our namespaces. Safe to call more than once, from any thread."""
        with self._teardown_lock:
            self._teardown()

    def _teardown(self) -> None:
        pids = {p.pid for p in self.processes if p.alive()}
        for ns in list(self._created):
            pids |= set(ns_pids(ns))
        pids.discard(os.getpid())
        _kill_pids(pids)
        for p in self.processes:
            try:
                p.popen.wait(timeout=2)
            except subprocess.TimeoutExpired:
                pass
        for ns in list(self._created):
            run(["ip", "netns", "del", ns], check=False)
            self._created.remove(ns)
        _ACTIVE.discard(self)

    # --- running things --------------------------------------------------------------------------------
    @staticmethod
    def wrap(ns: str, cmd: list[str], private_run: bool = False, env: dict | None = None) -> list[str]:
        prefix = ["ip", "netns", "exec", ns]
        if env:
            prefix += ["env"] + [f"{k}={v}" for k, v in env.items()]
        if private_run:
            # `ip netns exec` already gives the command a private mount namespace, so this tmpfs is seen
            # by nothing else: pid files and control sockets that daemons hard-code under /run stay here.
            return prefix + ["sh", "-c", 'mount -t tmpfs lab /run && exec "$@"', "sh"] + cmd
        return prefix + cmd

    def ns_run(self, ns: str, cmd: list[str], check: bool = True, timeout: float = 60, **kw):
        return run(self.wrap(ns, cmd, env=kw.pop("env", None)), check=check, timeout=timeout, **kw)

    def start(self, ns: str, cmd: list[str], name: str, private_run: bool = False, env: dict | None = None,
              stdin=subprocess.DEVNULL) -> Process:
        if STOPPING.is_set():
            raise LabError("the lab is stopping")
        log = self.workdir / f"{name}.log"
        logf = open(log, "wb")
        full = self.wrap(ns, cmd, private_run=private_run, env=env)
        popen = subprocess.Popen(full, stdout=logf, stderr=subprocess.STDOUT, stdin=stdin,
                                 cwd=self.workdir, start_new_session=True)
        logf.close()
        proc = Process(popen, name, log)
        self.processes.append(proc)
        return proc

    def client(self, cmd, name, **kw) -> Process:
        return self.start(self.client_ns, cmd, name, **kw)

    def server(self, cmd, name, **kw) -> Process:
        return self.start(self.server_ns, cmd, name, **kw)

    def stop(self, proc: Process, timeout: float = 2.0) -> None:
        if proc.alive():
            try:
                os.killpg(proc.pid, signal.SIGTERM)
            except ProcessLookupError:
                pass
            try:
                proc.popen.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.popen.wait(timeout=2)

    def wait_listen(self, ns: str, port: int, transport: str = "tcp", timeout: float = 15.0,
                    proc: Process | None = None, ip: str | None = None) -> None:
        """Wait for a listening socket on `port` (and on `ip`, when given: another daemon may hold the same port
        on another address, such as the inner web server on 10.99.1.1:443)."""
        flag = "-lnt" if transport == "tcp" else "-lnu"
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            out = self.ns_run(ns, ["ss", "-H", flag, f"sport = :{port}"], check=False).stdout
            locals_ = [line.split()[3] for line in out.splitlines() if len(line.split()) > 3]
            if any(ip is None or addr in (f"{ip}:{port}", f"0.0.0.0:{port}", f"*:{port}") for addr in locals_):
                return
            if proc is not None and not proc.alive():
                raise LabError(f"{proc.name} exited before listening on {port}/{transport}: {proc.output()[-600:]}")
            time.sleep(0.05)
        raise LabError(f"nothing listens on {ip or '*'}:{port}/{transport} in {ns} after {timeout:.0f} s")


def ns_pids(ns: str) -> list[int]:
    out = run(["ip", "netns", "pids", ns], check=False).stdout
    return [int(x) for x in out.split() if x.isdigit()]


def _kill_pids(pids: set[int]) -> None:
    for sig in (signal.SIGTERM, signal.SIGKILL):
        for pid in pids:
            try:
                os.kill(pid, sig)
            except ProcessLookupError:
                pass
        deadline = time.monotonic() + 1.0
        while time.monotonic() < deadline and any(_exists(p) for p in pids):
            time.sleep(0.05)
        pids = {p for p in pids if _exists(p)}
        if not pids:
            return


def _exists(pid: int) -> bool:
    try:
        # Reap if it is our child; a zombie would otherwise look alive.
        os.waitpid(pid, os.WNOHANG)
    except ChildProcessError:
        pass
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


def teardown_all() -> None:
    for lab in list(_ACTIVE):
        lab.teardown()
    # Last sweep: a namespace whose LabNet was still being built when the interrupt came.
    existing = set(lab_namespaces())
    for ns in sorted(_EVER_CREATED & existing):
        _kill_pids(set(ns_pids(ns)) - {os.getpid()})
        run(["ip", "netns", "del", ns], check=False)


_handlers_installed = False


def install_signal_handlers() -> None:
    """SIGINT/SIGTERM become exceptions, so every `with LabNet` unwinds through its teardown.
    Call it from the main thread before starting worker threads (only the main thread can set handlers)."""
    global _handlers_installed
    if _handlers_installed:
        return
    if threading.current_thread() is not threading.main_thread():
        return

    def handler(signum, frame):
        STOPPING.set()
        raise KeyboardInterrupt(f"signal {signum}")

    signal.signal(signal.SIGINT, handler)
    signal.signal(signal.SIGTERM, handler)
    import atexit

    atexit.register(teardown_all)
    _handlers_installed = True


def leaked_processes() -> list[int]:
    """PIDs still inside a network namespace this process created (they keep it alive after `ip netns del`).

    nsfs inode numbers are recycled, so an inode of ours may now belong to a namespace another lab (or test)
    created and named since: processes in a named namespace that is not ours are not leaks of ours."""
    others = set()
    for name in os.listdir("/run/netns") if os.path.isdir("/run/netns") else ():
        if name not in _EVER_CREATED:
            try:
                others.add(os.stat(f"/run/netns/{name}").st_ino)
            except OSError:
                pass
    suspects = EVER_INODES - others
    leaked = []
    for pid in os.listdir("/proc"):
        if pid.isdigit():
            try:
                if os.stat(f"/proc/{pid}/ns/net").st_ino in suspects:
                    leaked.append(int(pid))
            except OSError:
                pass
    return leaked


def lab_namespaces(token: str | None = None) -> list[str]:
    out = run(["ip", "netns", "list"], check=False).stdout
    names = [line.split()[0] for line in out.splitlines() if line.strip()]
    prefix = f"vpnlab-{token}-" if token else "vpnlab-"
    return [n for n in names if n.startswith(prefix)]


def is_root() -> bool:
    return os.geteuid() == 0 and sys.platform.startswith("linux")
