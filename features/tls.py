"""TLS ClientHello: version, SNI, ALPN, JA3 and JA4; server certificate names where visible.

The compiled framing (native/tls.c) finds the hellos of all ended flows and gives each a key of the fields
the fingerprints read; `parse_client_hello` and the fingerprint functions here run once per distinct key
(one per client configuration), and per flow only the server name and ALPN text are looked up.
"""

from __future__ import annotations

import hashlib
import ipaddress
import struct
from dataclasses import dataclass, field

import numpy as np

from features import native

GREASE = {0x0A0A + 0x1010 * i for i in range(16)}
EXT_SNI, EXT_GROUPS, EXT_POINT_FORMATS, EXT_SIG_ALGS, EXT_ALPN, EXT_VERSIONS = 0, 10, 11, 13, 16, 43
JA4_VERSIONS = {0x0304: "13", 0x0303: "12", 0x0302: "11", 0x0301: "10", 0x0300: "s3",
                0xFEFF: "d1", 0xFEFD: "d2", 0xFEFC: "d3"}
CN_OID = b"\x06\x03\x55\x04\x03"


@dataclass
class ClientHello:
    legacy_version: int
    ciphers: list
    extensions: list                       # (type, data) in order, GREASE included
    length: int
    sni: str = ""
    alpn: list = field(default_factory=list)
    groups: list = field(default_factory=list)
    point_formats: list = field(default_factory=list)
    sig_algs: list = field(default_factory=list)
    versions: list = field(default_factory=list)

    @property
    def version(self) -> int:
        offered = [v for v in self.versions if v not in GREASE]
        return max(offered) if offered else self.legacy_version


def _u16_list(data: bytes, prefix_len: int = 0) -> list:
    body = data[prefix_len:]
    return list(struct.unpack(f"!{len(body) // 2}H", body[:len(body) // 2 * 2]))


def _client_hello_body(body: bytes, length: int) -> ClientHello | None:
    """Version, cipher suites and extensions of a ClientHello body. Read here rather than with dpkt's
    TLSClientHello, which builds an object per cipher suite (a third of the parsing time)."""
    version = struct.unpack("!H", body[:2])[0]
    pos = 34
    pos += 1 + body[pos]                                                   # session id
    n = struct.unpack("!H", body[pos:pos + 2])[0]
    ciphers = _u16_list(body[pos + 2:pos + 2 + n])
    pos += 2 + n
    pos += 1 + body[pos]                                                   # compression methods
    extensions = _extensions(body[pos:]) if len(body) >= pos + 2 else []
    if len(body) < pos:
        return None
    return ClientHello(version, ciphers, extensions, length)


def _extensions(buf: bytes) -> list:
    """(type, data) of each extension after the 2-byte extensions length, as dpkt.ssl.parse_extensions reads
    them (the same loop bound, the same struct.error on a cut type or length, data cut short silently), without
    its per-extension function calls."""
    total = struct.unpack("!H", buf[:2])[0]
    out, pos = [], 2
    while pos < total:
        if pos + 4 > len(buf):
            raise struct.error("extension header cut short")
        size = (buf[pos + 2] << 8) | buf[pos + 3]
        out.append(((buf[pos] << 8) | buf[pos + 1], buf[pos + 4:pos + 4 + size]))
        pos += 4 + size
    return out


def _record(stream: bytes):
    """(content type, body) of the TLS record opening a stream, or None if the record is cut short (what
    dpkt.ssl.TLSRecord refuses)."""
    if len(stream) < 5:
        return None
    length = (stream[3] << 8) | stream[4]
    body = stream[5:5 + length]
    return (stream[0], body) if len(body) == length else None


def parse_client_hello(stream: bytes) -> ClientHello | None:
    """The ClientHello at the start of a client stream, or None (not TLS, truncated, malformed).
    The handshake header and hello body are read by `_client_hello_body`."""
    try:
        record = _record(stream)
        if record is None:
            return None
        kind, data = record
        if kind != 22 or len(data) < 4 or data[0] != 1:
            return None
        length = int.from_bytes(data[1:4], "big")
        if len(data) < 4 + length:
            return None
        ch = _client_hello_body(data[4:4 + length], length)
    except (struct.error, ValueError, IndexError):
        return None
    if ch is None:
        return None
    for ext_type, data in ch.extensions:
        try:
            if ext_type == EXT_SNI and len(data) >= 5:
                ch.sni = data[5:5 + struct.unpack("!H", data[3:5])[0]].decode("ascii", "replace")
            elif ext_type == EXT_ALPN and len(data) >= 2:
                pos, names = 2, []
                while pos < len(data):
                    n = data[pos]
                    names.append(data[pos + 1:pos + 1 + n].decode("ascii", "replace"))
                    pos += 1 + n
                ch.alpn = names
            elif ext_type == EXT_GROUPS:
                ch.groups = _u16_list(data, 2)
            elif ext_type == EXT_POINT_FORMATS and data:
                ch.point_formats = list(data[1:1 + data[0]])
            elif ext_type == EXT_SIG_ALGS:
                ch.sig_algs = _u16_list(data, 2)
            elif ext_type == EXT_VERSIONS and data:
                ch.versions = _u16_list(data, 1)[:data[0] // 2]
        except (struct.error, IndexError):
            continue
    return ch


def ja3(ch: ClientHello) -> str:
    def dash(values):
        return "-".join(str(v) for v in values if v not in GREASE)
    text = ",".join([str(ch.legacy_version), dash(ch.ciphers), dash(t for t, _ in ch.extensions), dash(ch.groups),
                     dash(ch.point_formats)])
    return hashlib.md5(text.encode()).hexdigest()


def _hash12(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()[:12] if text else "000000000000"


def ja4(ch: ClientHello, transport: str = "t") -> str:
    """JA4 (FoxIO spec): {t|q|d}{version}{d|i}{ciphers:02}{extensions:02}{alpn}_{ciphers hash}_{extensions hash}."""
    ciphers = [c for c in ch.ciphers if c not in GREASE]
    exts = [t for t, _ in ch.extensions if t not in GREASE]
    alpn = ch.alpn[0] if ch.alpn else ""
    if not alpn:
        alpn_code = "00"
    elif alpn[0].isalnum() and alpn[-1].isalnum() and alpn.isascii():
        alpn_code = alpn[0] + alpn[-1]
    else:
        raw = alpn.encode("ascii", "replace").hex()
        alpn_code = raw[0] + raw[-1]
    head = (f"{transport}{JA4_VERSIONS.get(ch.version, '00')}{'d' if ch.sni else 'i'}"
            f"{min(len(ciphers), 99):02d}{min(len(exts), 99):02d}{alpn_code}")
    cipher_text = ",".join(f"{c:04x}" for c in sorted(ciphers))
    ext_text = ",".join(f"{e:04x}" for e in sorted(e for e in exts if e not in (EXT_SNI, EXT_ALPN)))
    sig_text = ",".join(f"{s:04x}" for s in ch.sig_algs if s not in GREASE)
    ext_hash = _hash12(ext_text + ("_" + sig_text if sig_text else "")) if ext_text else "000000000000"
    return f"{head}_{_hash12(cipher_text)}_{ext_hash}"


def fingerprints(ch: ClientHello) -> tuple:
    """(version, JA3, JA4, cipher count, extension count) of a hello."""
    return (ch.version, ja3(ch), ja4(ch), sum(c not in GREASE for c in ch.ciphers),
            sum(t not in GREASE for t, _ in ch.extensions))


class _Memo(dict):
    """key -> make(key), computed once per key; cleared past `limit` keys so that memory stays bounded."""

    def __init__(self, make=None, limit=4096):
        super().__init__()
        self.make, self.limit = make, limit

    def put(self, key, value):
        if len(self) >= self.limit:
            self.clear()
        self[key] = value
        return value

    def __missing__(self, key):
        return self.put(key, self.make(key))


def _server_name(name) -> tuple:
    """(server name, whether it is an IP address literal) from its text or raw bytes."""
    if isinstance(name, bytes):
        name = name.decode("ascii", "replace")
    return name, bool(name) and is_ip_literal(name)


def _alpn_text(ext: bytes) -> str:
    """The ALPN names of an extension's data (the list length skipped, as parse_client_hello reads it), joined."""
    pos, names = 2, []
    while pos < len(ext):
        n = ext[pos]
        names.append(ext[pos + 1:pos + 1 + n].decode("ascii", "replace"))
        pos += 1 + n
    return ",".join(names)


_FINGERPRINTS = _Memo()              # hello key (native/tls.c) -> fingerprints() of a hello with that key
_SERVER_NAMES = _Memo(_server_name)
_ALPN = _Memo(_alpn_text)


def is_ip_literal(name: str) -> bool:
    try:
        ipaddress.ip_address(name.strip("[]"))
        return True
    except ValueError:
        return False


def _handshake_bytes(stream: bytes) -> bytes:
    """The handshake-protocol bytes of a TLS stream: bodies of its leading handshake records, joined."""
    out, pos = [], 0
    while pos + 5 <= len(stream) and stream[pos] == 22:
        length = struct.unpack("!H", stream[pos + 3:pos + 5])[0]
        out.append(stream[pos + 5:pos + 5 + length])
        pos += 5 + length
    return b"".join(out)


def certificate_names(stream: bytes) -> tuple[str, str]:
    """(subject CN, issuer CN) of the first certificate in a server stream, '' where not visible.

    Scans the certificate for the commonName OID instead of parsing X.509, since the prefix often cuts it;
    issuer comes before subject in a TBSCertificate, so the first two CNs are issuer and subject.
    """
    messages = _handshake_bytes(stream)
    pos = 0
    while pos + 4 <= len(messages) and messages[pos] != 11:
        pos += 4 + int.from_bytes(messages[pos + 1:pos + 4], "big")
    if pos + 4 > len(messages):
        return "", ""
    names = []
    pos += 4
    while len(names) < 2:
        at = messages.find(CN_OID, pos)
        if at < 0 or at + 7 > len(messages):
            break
        n = messages[at + 6]
        value = messages[at + 7:at + 7 + n]
        if len(value) < n:
            break
        names.append(value.decode("utf-8", "replace"))
        pos = at + 7 + n
    if len(names) < 2:
        return "", ""
    return names[1], names[0]


def columns(client, client_len, server, server_len) -> dict:
    """TLS columns for m flows from their client and server stream prefixes."""
    m = len(client_len)
    out = {name: np.zeros(m, np.int64) for name in (
        "tls_client_hello", "tls_version", "tls_cipher_count", "tls_extension_count", "tls_client_hello_bytes",
        "tls_sni_present", "tls_sni_is_ip", "tls_alpn_present", "tls_server_hello")}
    out["tls_cert_self_signed"] = np.full(m, -1, np.int64)
    strings = {name: np.full(m, "", object) for name in (
        "tls_sni", "tls_alpn", "ja3", "ja4", "tls_cert_subject_cn", "tls_cert_issuer_cn")}
    candidates = np.flatnonzero((client_len >= 6) & (client[:, 0] == 22) & (client[:, 1] == 3) & (client[:, 5] == 1))
    found = native.client_hellos(client, client_len, candidates)
    hellos = []                          # (row, fingerprints, handshake length, (server name, is IP), ALPN, ALPN present)
    for i in candidates[found["status"] == native.KEY_TOO_LONG]:     # only with prefixes far past the default
        ch = parse_client_hello(client[i, :client_len[i]].tobytes())
        if ch is not None:
            hellos.append((i, fingerprints(ch), ch.length, _server_name(ch.sni), ",".join(ch.alpn), bool(ch.alpn)))
    hello = found["status"] == native.HELLO
    keys = found["keys"]
    # Per flow only bytes are sliced and looked up: plain ints and bytes objects, as numpy scalars and
    # array slices cost several times more per flow.
    for j, i, key_len, length, sni_off, sni_len, alpn_off, alpn_len in zip(
            *(a.tolist() for a in (np.flatnonzero(hello), candidates[hello], found["key_len"][hello],
                                   found["length"][hello], found["sni_off"][hello], found["sni_len"][hello],
                                   found["alpn_off"][hello], found["alpn_len"][hello]))):
        key = keys[j, :key_len].tobytes()
        prints = _FINGERPRINTS.get(key)
        row = client[i]
        if prints is None:
            prints = _FINGERPRINTS.put(key, fingerprints(parse_client_hello(row[:client_len[i]].tobytes())))
        name = _SERVER_NAMES[row[sni_off:sni_off + sni_len].tobytes()]
        alpn = _ALPN[row[alpn_off:alpn_off + alpn_len].tobytes()] if alpn_off >= 0 else ""
        hellos.append((i, prints, length, name, alpn, alpn_len > 2))
    if hellos:
        rows, prints, length, names, alpn, alpn_present = zip(*hellos)
        rows = np.array(rows, np.int64)
        version, ja3_hash, ja4_text, n_ciphers, n_extensions = zip(*prints)
        out["tls_client_hello"][rows] = 1
        out["tls_version"][rows] = version
        out["tls_cipher_count"][rows] = n_ciphers
        out["tls_extension_count"][rows] = n_extensions
        out["tls_client_hello_bytes"][rows] = length
        out["tls_sni_present"][rows] = [bool(name) for name, _ in names]
        out["tls_sni_is_ip"][rows] = [is_ip for _, is_ip in names]
        out["tls_alpn_present"][rows] = alpn_present
        strings["tls_sni"][rows] = [name for name, _ in names]
        strings["tls_alpn"][rows] = alpn
        strings["ja3"][rows] = ja3_hash
        strings["ja4"][rows] = ja4_text
    server_hello = (server_len >= 6) & (server[:, 0] == 22) & (server[:, 1] == 3) & (server[:, 5] == 2)
    out["tls_server_hello"] = server_hello.astype(np.int64)
    answered = np.flatnonzero(server_hello & (out["tls_client_hello"] == 1))
    for i, n in zip(answered.tolist(), server_len[answered].tolist()):
        subject, issuer = certificate_names(server[i, :n].tobytes())
        if subject and issuer:
            strings["tls_cert_subject_cn"][i] = subject
            strings["tls_cert_issuer_cn"][i] = issuer
            out["tls_cert_self_signed"][i] = int(subject == issuer)
    out.update(strings)
    return out
