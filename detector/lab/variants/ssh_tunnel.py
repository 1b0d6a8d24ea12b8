"""OpenSSH as a tunnel: dynamic SOCKS forwarding (-D) and a local port forward (-L)."""

from __future__ import annotations

from functools import partial

from detector.lab.netns import run
from detector.lab.session import Access
from detector.lab.variant import Variant, register

LOCAL_PORT = 1080


def start_sshd(s, port: int | None = None):
    d = s.path("ssh")
    d.mkdir(exist_ok=True)
    host_key, client_key = d / "hostkey", d / "client"
    ktype = s.rng.choice(("ed25519", "ecdsa"))
    run(["ssh-keygen", "-q", "-t", ktype, "-N", "", "-f", str(host_key)])
    run(["ssh-keygen", "-q", "-t", s.rng.choice(("ed25519", "ecdsa", "rsa")), "-N", "", "-f", str(client_key)])
    (d / "authorized_keys").write_text((d / "client.pub").read_text())
    conf = s.write("ssh/sshd_config", f"""ListenAddress {s.server_ip}:{port or s.port}
HostKey {host_key}
PidFile none
AuthorizedKeysFile {d / 'authorized_keys'}
StrictModes no
UsePAM no
PasswordAuthentication no
KbdInteractiveAuthentication no
PermitRootLogin prohibit-password
AllowTcpForwarding yes
PrintMotd no
PrintLastLog no
Subsystem sftp internal-sftp
ClientAliveInterval {s.rng.choice((0, 2, 15))}
""")
    # sshd needs /run/sshd (privilege separation) and writes wtmp/lastlog: private tmpfs for both.
    sp = s.server(["sh", "-c", 'mkdir -p /run/sshd && mount -t tmpfs lab /var/log && exec "$@"', "sh",
                   "/usr/sbin/sshd", "-D", "-e", "-f", conf], "sshd", private_run=True)
    s.wait_server(port or s.port, proc=sp)
    return client_key


def ssh_base(s, key, port: int | None = None) -> list:
    return ["ssh", "-i", key, "-p", port or s.port, "-o", "StrictHostKeyChecking=no", "-o", "UserKnownHostsFile=/dev/null",
            "-o", "LogLevel=ERROR", "-o", "BatchMode=yes", "-o", f"ServerAliveInterval={s.rng.choice((0, 3, 30))}"]


def ssh_tunnel(s, mode: str):
    key = start_sshd(s)
    base = ssh_base(s, key)
    if mode == "dynamic":
        cp = s.client([*base, "-N", "-D", f"127.0.0.1:{LOCAL_PORT}", f"root@{s.server_ip}"], "ssh-D")
        s.wait_client(LOCAL_PORT, proc=cp)
        return Access(via={"kind": "socks5", "ip": "127.0.0.1", "port": LOCAL_PORT})
    target = 443 if s.rng.random() < 0.3 else 80
    cp = s.client([*base, "-N", "-L", f"127.0.0.1:{LOCAL_PORT}:{s.inner_ip}:{target}", f"root@{s.server_ip}"], "ssh-L")
    s.wait_client(LOCAL_PORT, proc=cp)
    return Access(target_ip="127.0.0.1", target_port=LOCAL_PORT, tls=(target == 443))


register(
    Variant("ssh_dynamic", "proxy", "ssh_tunnel", "openssh -D (SOCKS)", ("openssh-server", "openssh-client"), 22,
            partial(ssh_tunnel, mode="dynamic")),
    Variant("ssh_local", "proxy", "ssh_tunnel", "openssh -L (port forward)", ("openssh-server", "openssh-client"), 22,
            partial(ssh_tunnel, mode="local")),
)
