"""TLS ClientHello: version, SNI, ALPN, JA3 and JA4; server certificate names where visible.

The compiled framing (native/tls.c) finds the hellos of all ended flows and gives each a key of the fields
the fingerprints read, and finds the certificate names of the servers' answers; `parse_client_hello` and the
fingerprint functions here run once per distinct key (one per client configuration), and server names, ALPN
lists and certificate names are decoded once per distinct value: no Python runs per flow, save for hellos
too long for the compiled key.
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
    """key -> value, cleared past `limit` keys so that memory stays bounded."""

    def __init__(self, limit=4096):
        super().__init__()
        self.limit = limit

    def put(self, key, value):
        if len(self) >= self.limit:
            self.clear()
        self[key] = value
        return value


def _server_name(name: str) -> tuple:
    """(server name, whether it is an IP address literal)."""
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


def is_ip_literal(name: str) -> bool:
    try:
        ipaddress.ip_address(name.strip("[]"))
        return True
    except ValueError:
        return False


def _per_distinct(data, rows, off, length, make) -> tuple:
    """make(bytes) of the spans data[rows[i], off[i]:off[i] + length[i]], called once per distinct span:
    (the values, which of them each span takes)."""
    first, group = native.distinct_spans(data, rows, off, length)
    return [make(data[r, o:o + n].tobytes()) for r, o, n in zip(rows[first].tolist(), off[first].tolist(),
                                                                  length[first].tolist())], group


def _hello_fingerprints(key: bytes, stream) -> tuple:
    prints = _FINGERPRINTS.get(key)
    if prints is None:
        prints = _FINGERPRINTS.put(key, fingerprints(parse_client_hello(stream.tobytes())))
    return prints


def _put_hellos(out, strings, rows, prints, length, names, alpn, alpn_present):
    """Writes the columns of the hellos of `rows`, one item per row in each argument: fingerprints() and
    (server name, is IP) as rows of 2-D object arrays, handshake length, ALPN text and presence."""
    version, ja3_hash, ja4_text, n_ciphers, n_extensions = prints.T
    sni, sni_is_ip = names.T
    out["tls_client_hello"][rows] = 1
    out["tls_version"][rows] = version
    out["tls_cipher_count"][rows] = n_ciphers
    out["tls_extension_count"][rows] = n_extensions
    out["tls_client_hello_bytes"][rows] = length
    out["tls_sni_present"][rows] = sni != ""
    out["tls_sni_is_ip"][rows] = sni_is_ip
    out["tls_alpn_present"][rows] = alpn_present
    strings["tls_sni"][rows] = sni
    strings["tls_alpn"][rows] = alpn
    strings["ja3"][rows] = ja3_hash
    strings["ja4"][rows] = ja4_text


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
    for i in candidates[found["status"] == native.KEY_TOO_LONG]:     # only with prefixes far past the default
        ch = parse_client_hello(client[i, :client_len[i]].tobytes())
        if ch is not None:
            _put_hellos(out, strings, [i], np.array([fingerprints(ch)], object), [ch.length],
                        np.array([_server_name(ch.sni)], object), [",".join(ch.alpn)], [bool(ch.alpn)])
    # Equal keys, server names and ALPN lists are worked out once: flows repeat a few client configurations.
    hello = np.flatnonzero(found["status"] == native.HELLO)
    if len(hello):
        rows, key_len = candidates[hello], found["key_len"][hello]
        first, group = native.distinct_spans(found["keys"], hello, np.zeros_like(hello), key_len)
        prints = [_hello_fingerprints(found["keys"][j, :n].tobytes(), client[i, :client_len[i]])
                  for j, i, n in zip(hello[first].tolist(), rows[first].tolist(), key_len[first].tolist())]
        names, name_group = _per_distinct(client, rows, np.maximum(found["sni_off"][hello], 0), found["sni_len"][hello],
                                          lambda name: _server_name(name.decode("ascii", "replace")))
        alpn_len = found["alpn_len"][hello]
        alpn, alpn_group = _per_distinct(client, rows, np.maximum(found["alpn_off"][hello], 0), alpn_len, _alpn_text)
        _put_hellos(out, strings, rows, np.array(prints, object)[group], found["length"][hello],
                    np.array(names, object)[name_group], np.array(alpn, object)[alpn_group], alpn_len > 2)
    server_hello = (server_len >= 6) & (server[:, 0] == 22) & (server[:, 1] == 3) & (server[:, 5] == 2)
    out["tls_server_hello"] = server_hello.astype(np.int64)
    answered = np.flatnonzero(server_hello & (out["tls_client_hello"] == 1))
    certs = native.certificate_names(server, server_len, answered)
    named = np.flatnonzero((certs["subject_len"] > 0) & (certs["issuer_len"] > 0))
    subject, issuer = (np.array(values, object)[group] for values, group in (
        _per_distinct(certs["messages"], named, certs[f"{who}_off"][named], certs[f"{who}_len"][named],
                      lambda name: name.decode("utf-8", "replace")) for who in ("subject", "issuer")))
    strings["tls_cert_subject_cn"][answered[named]] = subject
    strings["tls_cert_issuer_cn"][answered[named]] = issuer
    out["tls_cert_self_signed"][answered[named]] = subject == issuer
    out.update(strings)
    return out
