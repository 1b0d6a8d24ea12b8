"""Normal traffic besides the web: DNS (UDP, TCP, TLS), SSH, scp, rsync, SMTP, IMAP, FTP, NTP, MQTT, Redis,
SIP with RTP, WebSocket chat and iperf3, each a real server and client talking to each other."""

from __future__ import annotations

import hashlib
import subprocess
import time
from pathlib import Path

from detector.lab.netns import LabError
from detector.lab.variant import Endpoint, Variant, register
from detector.lab.variants.ssh_tunnel import ssh_base, start_sshd

DEB_PYTHON = "/usr/bin/python3"  # Debian's interpreter, for the python3-* packages (websockets, pyftpdlib)
APPS = Path(__file__).resolve().parent.parent / "apps"


def _pace(s) -> float:
    return {"interactive": 0.3, "idle": 1.2, "browsing": 0.5, "streaming": 0.25, "bulk": 0.05}[s.pattern]


def _count(s, low: int, high: int) -> int:
    return s.rng.randint(low, high) * (2 if s.pattern in ("interactive", "streaming") else 1)


# --- DNS ------------------------------------------------------------------------------------------------
NAMES = ["www", "mail", "api", "cdn", "login", "static", "img", "news", "chat", "files", "git", "wiki"]


def _dnsmasq(s, listen_ip: str, port: int):
    sp = s.server(["dnsmasq", "-k", "-C", "/dev/null", "--pid-file=", "--no-resolv", "--no-hosts", "--log-facility=-",
                   f"--listen-address={listen_ip}", "--bind-interfaces", f"--port={port}",
                   f"--address=/lab.test/{s.inner_ip}", "--mx-host=lab.test,mail.lab.test,10",
                   "--txt-record=lab.test,v=spf1 -all", "--host-record=printer.corp.test,10.99.1.20"], "dnsmasq")
    s.wait_server(port, "udp", proc=sp, ip=listen_ip)


def _dig_rounds(s, dig_opts: list, port: int, server: str):
    for _ in range(_count(s, 4, 8)):
        queries = []
        for _ in range(s.rng.randint(1, 3)):
            if s.rng.random() < 0.75:
                queries += [f"{s.rng.choice(NAMES)}.lab.test", "A"]
            else:
                queries += ["lab.test", s.rng.choice(("MX", "TXT"))]
        args = ["dig", f"@{server}", "-p", port, "+time=5", "+tries=2", *dig_opts, *queries]
        out = s.crun(args, timeout=30).stdout
        s.check(out.count("status: NOERROR") == len(queries) // 2, f"dig got no answer: {out[-300:]}")
        time.sleep(s.rng.uniform(0, _pace(s)))


def dns_udp(s):
    _dnsmasq(s, s.server_ip, s.port)
    _dig_rounds(s, ["+notcp"], s.port, s.server_ip)


def dns_tcp(s):
    _dnsmasq(s, s.server_ip, s.port)
    _dig_rounds(s, ["+tcp"], s.port, s.server_ip)


def dns_tls(s):
    # DNS over TLS as many resolvers deploy it: a TLS terminator in front of a plain DNS server.
    _dnsmasq(s, "127.0.0.1", 53)
    conf = s.write("dot/stunnel.conf", f"""foreground = yes
pid =
[dot]
accept = {s.server_ip}:{s.port}
connect = 127.0.0.1:53
cert = {s.pki.server_crt}
key = {s.pki.server_key}
""")
    sp = s.server(["stunnel4", conf], "stunnel-dot")
    s.wait_server(proc=sp)
    _dig_rounds(s, ["+tls"], s.port, s.server_ip)


# --- SSH, scp, rsync ------------------------------------------------------------------------------------
def ssh_interactive(s):
    key = start_sshd(s)
    marker = f"LAB-MARK-{s.seed:x}"
    cmds = [f"echo {marker}", "uname -a", "date", "seq 1 20", "echo $((6*7))", "ls -la /usr | head -5",
            "pwd", "id", "echo done"]
    s.rng.shuffle(cmds)
    cmds = cmds[: s.rng.randint(2, 4)]
    if f"echo {marker}" not in cmds:
        cmds.insert(0, f"echo {marker}")
    cp = s.client([*ssh_base(s, key), "-tt", f"root@{s.server_ip}", "env HISTFILE=/dev/null PS1='$ ' bash --norc -i"],
                  "ssh-interactive", stdin=subprocess.PIPE)
    time.sleep(0.8)
    for cmd in cmds + ["exit"]:
        for ch in cmd + "\n":
            cp.popen.stdin.write(ch.encode())
            cp.popen.stdin.flush()
            time.sleep(s.rng.uniform(0.04, 0.2))  # one keystroke per packet, at typing speed
        time.sleep(s.rng.uniform(0.2, 0.8))
    try:
        cp.popen.wait(timeout=10)
    except subprocess.TimeoutExpired:
        pass
    s.check(cp.output().count(marker) >= 2, f"the SSH session did not echo the marker: {cp.output()[-300:]}")


def _file(s, name: str, low: int, high: int) -> tuple[Path, str]:
    data = s.rng.randbytes(s.rng.randint(low, high))
    p = s.path(name)
    p.write_bytes(data)
    return p, hashlib.sha256(data).hexdigest()


def _digest(p: Path) -> str:
    return hashlib.sha256(p.read_bytes()).hexdigest()


def scp(s):
    key = start_sshd(s)
    src, digest = _file(s, "scp/local.bin", 60_000, 180_000)
    remote, back = s.path("scp/remote.bin"), s.path("scp/back.bin")
    opts = [str(a) for a in ssh_base(s, key)[1:]]
    opts[opts.index("-p")] = "-P"
    s.crun(["scp", "-q", *opts, src, f"root@{s.server_ip}:{remote}"], timeout=60)
    time.sleep(s.rng.uniform(0.2, 1.5))
    s.crun(["scp", "-q", *opts, f"root@{s.server_ip}:{remote}", back], timeout=60)
    s.check(_digest(back) == digest, "scp round trip changed the file")


def rsync(s):
    key = start_sshd(s)
    src, digest = _file(s, "rsync/local.bin", 60_000, 180_000)
    remote, back = s.path("rsync/remote.bin"), s.path("rsync/back.bin")
    rsh = " ".join(str(a) for a in ssh_base(s, key))
    s.crun(["rsync", "-a", "-e", rsh, src, f"root@{s.server_ip}:{remote}"], timeout=60)
    time.sleep(s.rng.uniform(0.2, 1.5))
    s.crun(["rsync", "-a", "-e", rsh, f"root@{s.server_ip}:{remote}", back], timeout=60)
    s.check(_digest(back) == digest, "rsync round trip changed the file")


# --- mail, files, time ------------------------------------------------------------------------------------
def smtp(s):
    sp = s.server([s.py, "-W", "ignore", "-m", "smtpd", "-n", "-c", "DebuggingServer", f"{s.server_ip}:{s.port}"], "smtpd",
                  env={"PYTHONUNBUFFERED": "1"})
    s.wait_server(proc=sp)
    n = _count(s, 1, 3)
    for i in range(n):
        body = s.rng.randbytes(s.rng.randint(500, 20_000)).hex()
        msg = s.write(f"smtp/msg{i}.eml", f"From: alice@lab.test\r\nTo: bob@lab.test\r\nSubject: lab-{s.seed:x}-{i}\r\n\r\n{body}\r\n")
        s.crun(["curl", "-sS", f"smtp://{s.server_ip}:{s.port}", "--mail-from", "alice@lab.test",
                "--mail-rcpt", "bob@lab.test", "-T", msg], timeout=30)
        time.sleep(s.rng.uniform(0, _pace(s)))
    deadline = time.monotonic() + 5
    while sp.output().count(f"lab-{s.seed:x}-") < n and time.monotonic() < deadline:
        time.sleep(0.1)
    s.check(sp.output().count(f"lab-{s.seed:x}-") >= n, "the SMTP server did not receive every message")


def imap(s):
    maildir = s.path("imap/INBOX")
    maildir.mkdir(exist_ok=True)
    msgs = []
    for i in range(5):
        text = (f"From: bob@lab.test\r\nTo: alice@lab.test\r\nSubject: note {i}\r\n\r\n"
                + s.rng.randbytes(s.rng.randint(300, 15_000)).hex() + "\r\n")
        (maildir / f"{i + 1:03d}.eml").write_text(text)
        msgs.append(text)
    sp = s.server([s.py, "-m", "detector.lab.apps.imap_server", s.server_ip, s.port, maildir], "imapd")
    sp.wait_output("listening", 10)
    for _ in range(_count(s, 1, 3)):
        uid = s.rng.randint(1, 5)
        out = s.crun(["curl", "-sS", "-u", "alice:labpass", f"imap://{s.server_ip}:{s.port}/INBOX;UID={uid}"],
                     timeout=30).stdout
        s.check(out.replace("\r\n", "\n").strip() == msgs[uid - 1].replace("\r\n", "\n").strip(),
                f"IMAP fetch of message {uid} differs")
        time.sleep(s.rng.uniform(0, _pace(s)))


def ftp(s):
    root = s.path("ftp/root")
    root.mkdir(exist_ok=True)
    src, digest = _file(s, "ftp/root/report.bin", 40_000, 150_000)
    sp = s.server([DEB_PYTHON, "-m", "pyftpdlib", "-i", s.server_ip, "-p", s.port, "-d", root, "-w"], "pyftpdlib")
    s.wait_server(proc=sp)
    back = s.path("ftp/back.bin")
    s.crun(["curl", "-sS", "-o", back, f"ftp://{s.server_ip}:{s.port}/report.bin"], timeout=60)
    s.check(_digest(back) == digest, "FTP download differs")
    up, _ = _file(s, "ftp/upload.bin", 20_000, 80_000)
    time.sleep(s.rng.uniform(0.2, 1.0))
    s.crun(["curl", "-sS", "-T", up, f"ftp://{s.server_ip}:{s.port}/upload.bin"], timeout=60)
    s.check((root / "upload.bin").exists(), "FTP upload did not arrive")
    s.endpoint("tcp")
    s.side("normal", "ftp", "pyftpdlib passive data connection", "*", "tcp", version=s.variant.version)


def ntp(s):
    d = s.path("ntp")
    d.mkdir(exist_ok=True)
    conf = s.write("ntp/server.conf", f"""port {s.port}
bindaddress {s.server_ip}
local stratum 8
allow 10.99.0.0/24
cmdport 0
pidfile {d}/server.pid
""")
    # -x: the server never touches the host clock.
    sp = s.server(["chronyd", "-d", "-x", "-u", "root", "-f", conf], "chronyd-server", private_run=True)
    s.wait_server(transport="udp", proc=sp)
    cconf = s.write("ntp/client.conf", f"""server {s.server_ip} port {s.port} iburst minpoll 0 maxpoll 1 maxsamples {s.rng.randint(4, 8)}
cmdport 0
pidfile {d}/client.pid
""")
    # -Q: measure the offset and print it, never set the clock.
    out = s.crun(["chronyd", "-Q", "-u", "root", "-f", cconf, "-t", "30"], timeout=40, check=False)
    text = out.stdout + out.stderr
    s.check("System clock wrong by" in text, f"chronyd -Q got no time: {text[-300:]}")


def mqtt(s):
    conf = s.write("mqtt/mosquitto.conf", f"""listener {s.port} {s.server_ip}
allow_anonymous true
persistence false
log_dest stdout
""")
    sp = s.server(["mosquitto", "-c", conf], "mosquitto")
    s.wait_server(proc=sp)
    n = _count(s, 5, 15)
    keepalive = s.rng.choice((5, 30, 60))
    sub = s.client(["mosquitto_sub", "-h", s.server_ip, "-p", s.port, "-t", "lab/#", "-C", n, "-W", 60, "-k", keepalive,
                    "-q", s.rng.choice((0, 1))], "mosquitto_sub")
    time.sleep(0.5)
    for i in range(n):
        topic = f"lab/{s.rng.choice(('temp', 'door', 'light', 'power'))}/{s.rng.randint(1, 9)}"
        s.crun(["mosquitto_pub", "-h", s.server_ip, "-p", s.port, "-t", topic, "-q", s.rng.choice((0, 1)),
                "-m", f"msg-{i}-{s.rng.random():.4f}"], timeout=20)
        time.sleep(s.rng.uniform(0.05, _pace(s)))
    try:
        sub.popen.wait(timeout=15)
    except subprocess.TimeoutExpired:
        raise LabError("mosquitto_sub did not receive every message")
    s.check(sub.output().count("msg-") == n, "mosquitto_sub did not receive every message")


def redis(s):
    sp = s.server(["redis-server", "--bind", s.server_ip, "--port", s.port, "--save", "", "--appendonly", "no",
                   "--dir", s.path("redis"), "--protected-mode", "no", "--daemonize", "no"], "redis-server")
    (s.dir / "redis").mkdir(exist_ok=True)
    s.wait_server(proc=sp)
    cp = s.client(["redis-cli", "-h", s.server_ip, "-p", s.port], "redis-cli", stdin=subprocess.PIPE)
    expected = []
    for i in range(_count(s, 8, 20)):
        key = f"session:{s.rng.randint(1, 50)}"
        value = s.rng.randbytes(s.rng.randint(8, 2000)).hex()
        cmd = s.rng.choice(("set", "get", "lpush", "incr"))
        if cmd == "set" or not expected:
            line = f"SET {key} {value}\nGET {key}\n"
            expected.append(value)
        elif cmd == "lpush":
            line = f"LPUSH queue {value}\nLRANGE queue 0 2\n"
        elif cmd == "incr":
            line = f"INCR counter:{i % 3}\n"
        else:
            line = "DBSIZE\n"
        cp.popen.stdin.write(line.encode())
        cp.popen.stdin.flush()
        time.sleep(s.rng.uniform(0.02, _pace(s)))
    cp.popen.stdin.close()
    cp.popen.wait(timeout=15)
    s.check(all(v in cp.output() for v in expected), "redis-cli did not read back what it wrote")


# --- real-time and bulk -----------------------------------------------------------------------------------
def sip_rtp(s):
    rtp_port = s.rng.randrange(10000, 20000, 2)
    sp = s.server([s.py, "-m", "detector.lab.apps.sip_call", "uas", s.server_ip, s.port, rtp_port], "sip-uas")
    sp.wait_output("listening", 10)
    seconds = {"idle": 6, "interactive": 5, "streaming": 6}.get(s.pattern, 3) + s.rng.uniform(0, 2)
    out = s.crun([s.py, "-m", "detector.lab.apps.sip_call", "uac", s.server_ip, s.port, s.client_ip, f"{seconds:.1f}",
                  s.seed], timeout=40, check=False)
    s.check(out.returncode == 0, f"SIP call failed: {out.stdout[-200:]} {out.stderr[-200:]}")
    s.endpoint("udp")
    s.side("normal", "rtp", "RTP G.711 echo (lab softphone)", rtp_port, "udp")


def websocket(s):
    sp = s.server([DEB_PYTHON, APPS / "wschat.py", "server", s.server_ip, s.port], "ws-server")
    sp.wait_output("listening", 10)
    out = s.crun([DEB_PYTHON, APPS / "wschat.py", "client", f"ws://{s.server_ip}:{s.port}/chat", _count(s, 6, 14), s.seed],
                 timeout=60, check=False)
    s.check(out.returncode == 0, f"WebSocket chat failed: {out.stdout[-200:]} {out.stderr[-300:]}")


def iperf3(s, udp: bool):
    sp = s.server(["iperf3", "-s", "-B", s.server_ip, "-p", s.port, "-1"], "iperf3-server")
    s.wait_server(proc=sp)
    rate = s.rng.choice(("500K", "1M", "2M"))
    args = ["iperf3", "-c", s.server_ip, "-p", s.port, "-t", s.rng.choice((1, 2)), "-b", rate]
    if udp:
        args += ["-u", "-l", s.rng.choice((1200, 1400, 512))]
    else:
        args += ["-R"] if s.rng.random() < 0.5 else []
    s.crun(args, timeout=30)
    s.endpoint("tcp")
    if udp:
        s.endpoint("udp")


def _py_http(s):
    from detector.lab.variants.baseline_web import http_python
    return http_python(s)


register(
    Variant("dns_udp", "normal", "dns", "dig + dnsmasq", ("bind9-dnsutils", "dnsmasq-base"), 53, dns_udp,
            endpoints=(Endpoint("udp"),)),
    Variant("dns_tcp", "normal", "dns", "dig +tcp + dnsmasq", ("bind9-dnsutils", "dnsmasq-base"), 53, dns_tcp),
    Variant("dns_tls", "normal", "dns", "dig +tls + stunnel + dnsmasq (DNS over TLS)",
            ("bind9-dnsutils", "dnsmasq-base", "stunnel4"), 853, dns_tls),
    Variant("ssh_interactive", "normal", "ssh", "openssh interactive shell", ("openssh-server", "openssh-client"), 22,
            ssh_interactive),
    Variant("scp", "normal", "ssh", "openssh scp", ("openssh-server", "openssh-client"), 22, scp),
    Variant("rsync_ssh", "normal", "ssh", "rsync over openssh", ("rsync", "openssh-server", "openssh-client"), 22, rsync),
    Variant("smtp", "normal", "smtp", "curl + python smtpd", ("curl",), 25, smtp),
    Variant("imap", "normal", "imap", "curl + lab IMAP server", ("curl",), 143, imap),
    Variant("ftp", "normal", "ftp", "curl + pyftpdlib (passive)", ("python3-pyftpdlib", "curl"), 21, ftp),
    Variant("ntp", "normal", "ntp", "chrony server + chronyd -Q client", ("chrony",), 123, ntp, endpoints=(Endpoint("udp"),)),
    Variant("mqtt", "normal", "mqtt", "mosquitto + mosquitto_pub/sub", ("mosquitto", "mosquitto-clients"), 1883, mqtt),
    Variant("redis", "normal", "redis", "redis-server + redis-cli", ("redis-server", "redis-tools"), 6379, redis),
    Variant("sip_rtp", "normal", "sip", "lab softphone (SIP/UDP + RTP echo)", (), 5060, sip_rtp,
            endpoints=(Endpoint("udp"),)),
    Variant("websocket_chat", "normal", "websocket", "python3-websockets chat", ("python3-websockets",), 8080, websocket),
    Variant("iperf3_tcp", "normal", "iperf3", "iperf3 TCP", ("iperf3",), 5201, lambda s: iperf3(s, udp=False)),
    Variant("iperf3_udp", "normal", "iperf3", "iperf3 UDP", ("iperf3",), 5201, lambda s: iperf3(s, udp=True)),
    Variant("http_streaming", "normal", "http", "python http.client + nginx (chunked range requests)", ("nginx-light",), 80,
            _py_http, extra={"patterns": ("streaming",)}),
    Variant("http_bulk", "normal", "http", "python http.client + nginx (large download and upload)", ("nginx-light",), 80,
            _py_http, extra={"patterns": ("bulk",)}),
)
