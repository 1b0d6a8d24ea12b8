"""A throw-away test CA and the certificates every TLS-based variant uses (P-256, made with the openssl CLI)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from detector.lab.netns import INNER_IP, SERVER_IP, run

SERVER_NAME = "vpn.lab.test"
WEB_NAME = "www.lab.test"


@dataclass(frozen=True)
class Pki:
    dir: Path

    @property
    def ca(self) -> Path: return self.dir / "ca.crt"
    @property
    def server_crt(self) -> Path: return self.dir / "server.crt"
    @property
    def server_key(self) -> Path: return self.dir / "server.key"
    @property
    def web_crt(self) -> Path: return self.dir / "web.crt"
    @property
    def web_key(self) -> Path: return self.dir / "web.key"
    @property
    def client_crt(self) -> Path: return self.dir / "client.crt"
    @property
    def client_key(self) -> Path: return self.dir / "client.key"


def make_pki(directory: Path) -> Pki:
    pki = Pki(Path(directory))
    if pki.client_key.exists():
        return pki
    d = pki.dir
    d.mkdir(parents=True, exist_ok=True)
    ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes"]
    run(["openssl", "req", "-x509", *ec, "-keyout", str(d / "ca.key"), "-out", str(pki.ca),
         "-days", "3650", "-subj", "/CN=vpndetect lab CA", "-addext", "basicConstraints=critical,CA:TRUE",
         "-addext", "keyUsage=critical,keyCertSign,cRLSign"])
    leaves = {
        "server": (SERVER_NAME, f"subjectAltName=DNS:{SERVER_NAME},IP:{SERVER_IP}\nextendedKeyUsage=serverAuth"),
        "web": (WEB_NAME, f"subjectAltName=DNS:{WEB_NAME},DNS:*.lab.test,IP:{INNER_IP},IP:{SERVER_IP}\nextendedKeyUsage=serverAuth"),
        "client": ("labuser", "extendedKeyUsage=clientAuth"),
    }
    for name, (cn, ext) in leaves.items():
        (d / f"{name}.ext").write_text("basicConstraints=CA:FALSE\nkeyUsage=critical,digitalSignature,keyAgreement\n" + ext + "\n")
        run(["openssl", "req", *ec, "-keyout", str(d / f"{name}.key"), "-out", str(d / f"{name}.csr"), "-subj", f"/CN={cn}"])
        run(["openssl", "x509", "-req", "-in", str(d / f"{name}.csr"), "-CA", str(pki.ca), "-CAkey", str(d / "ca.key"),
             "-CAcreateserial", "-days", "3650", "-out", str(d / f"{name}.crt"), "-extfile", str(d / f"{name}.ext")])
    for key in d.glob("*.key"):
        key.chmod(0o600)
    return pki
