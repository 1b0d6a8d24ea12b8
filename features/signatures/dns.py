"""DNS, and DNS tunnels: a query answered by a response with the same id (over UDP, or TCP with its length
prefix); a tunnel puts long, high-entropy names in its queries and asks for NULL/TXT-like records, or asks
for such records many times on one socket with some long queries. Query rates across flows are the model's business (flows are scored alone)."""

from __future__ import annotations

import numpy as np

from features import native
from features.signatures.base import TCP, UDP, Detection, Signature, SignatureView, evidence_texts, one_of

TUNNEL_QTYPES = {10: "NULL", 16: "TXT", 5: "CNAME", 15: "MX", 65399: "PRIVATE"}
MIN_NAME = 52
MIN_LABEL = 30
MIN_ENTROPY = 3.5
MANY_QUERIES = 10
LONG_QUERY = 100               # bytes: a query that carries data upstream in its name


def _dns(view):
    return view.memo("dns", lambda: _questions(view))      # both signatures read it


def _questions(view):
    on = one_of(view.proto, (TCP, UDP))
    tcp = view.proto == TCP
    client, clen = view.prefix(0)
    server, slen = view.prefix(1)
    qid, name_len, longest, qtype, entropy = native.dns_questions(client, np.where(on, clen, 0), tcp, False)
    rid = native.dns_questions(server, np.where(on, slen, 0), tcp, True, entropy=False)[0]
    dns = (qid >= 0) & (rid == qid)
    return dns, name_len, longest, qtype, entropy


def detect_dns(view: SignatureView) -> Detection:
    dns, name_len, longest, qtype, entropy = _dns(view)
    features = {"dns_qname_length": np.where(dns, name_len, 0), "dns_longest_label": np.where(dns, longest, 0),
                "dns_qname_entropy": np.where(dns, entropy, np.nan), "dns_qtype": np.where(dns, qtype, -1)}
    return Detection(np.where(dns, 1.0, 0.0), {}, features)


def detect_tunnel(view: SignatureView) -> Detection:
    dns, name_len, longest, qtype, entropy = _dns(view)
    queries = view.payload_packets[:, 0]
    encoded = dns & (name_len >= MIN_NAME) & (longest >= MIN_LABEL) & (entropy >= MIN_ENTROPY)
    odd_type = one_of(qtype, TUNNEL_QTYPES)
    many = queries >= MANY_QUERIES
    # Encoded names, or a socket kept for many queries of tunnel-friendly types (iodine opens with short ones).
    long_query = view.columns["src2dst_payload_max"] >= LONG_QUERY
    fires = (encoded & (odd_type | many)) | (dns & many & odd_type & long_query)
    evidence = evidence_texts(fires, lambda length, label, bits, kind, n: (
        f"dns tunnel: first query name {length} chars, longest label {label}, {bits:.2f} bits/char, "
        f"type {TUNNEL_QTYPES.get(kind, kind)}, {n} queries in the flow"), name_len, longest, entropy, qtype, queries)
    return Detection(np.where(fires, 0.9, np.where(encoded | (dns & many), 0.4, 0.0)), evidence)


SIGNATURES = (
    Signature(name="dns", title="DNS", kind="protocol", detect=detect_dns, ports=(("udp", 53), ("tcp", 53)),
              summary="query and response with the same id",
              features=(("dns_qname_length", "int32", "chars", "length of the first query name"),
                        ("dns_longest_label", "int32", "chars", "longest label of the first query name"),
                        ("dns_qname_entropy", "float32", "bits/char", "entropy of the query name's characters"),
                        ("dns_qtype", "int32", "code", "type of the first question, -1 if not DNS"))),
    Signature(name="dns_tunnel", title="DNS tunnel", kind="tunnel", detect=detect_tunnel,
              summary="long high-entropy query names with NULL/TXT-like types or many queries per flow"),
)
