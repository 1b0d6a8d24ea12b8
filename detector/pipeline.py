"""From flows with features to verdicts: label, protocol, score and evidence for every flow.

How signatures and the model combine:
- Signatures are features of the model, so it weighs them with everything else.
- The model alone does not make an alarm. A flow is flagged with evidence: a VPN/proxy signature that fired,
  whatever the model's score (P(vpn) + P(proxy)), for signatures are what still sees a protocol the model
  never learned (left out of training, SSH forwarding scores 0.001 to 0.016 and its signature fires on 23 of
  24 flows); or else at least MIN_PACKETS packets with traffic both ways and a score of at least `threshold`
  (0.98 by default). A flagged flow takes the model's lean between vpn and proxy, unless its score is below
  SIGNATURE_SCORE: then the model knows nothing of it, and the signature's kind says. Real networks carry
  many protocols no training set has seen, and an alarm without evidence on one of them costs an analyst more
  than a missed tunnel costs in a flow that shows nothing: a tiny or one-way flow, or a doubtful score, stays
  normal. Nor does the model alone flag a flow whose handshake names another protocol than TLS
  (MODEL_ALONE_PROTOCOLS): DTLS, STUN, QUIC, SSH, DNS, HTTP, Facebook Zero.
- A signature decides alone in one case only: when it verifies the handshake of a VPN or proxy protocol in
  both directions (confidence >= DECISIVE), for example a WireGuard initiation and response linked by the
  receiver index, or a SOCKS5 greeting and its reply. The flow then gets that signature's label and protocol,
  and a score of at least DECISIVE, whatever the model said. Signatures of whole families (fully encrypted,
  TLS-in-TLS) never decide alone.
- A flow to a server that an earlier or concurrent flow of the same capture was flagged for needs less: the
  model's lean (see detector.companions).
"""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd

from detector.companions import COMPANION_SCORE, ServerMemory, server_keys
from detector.model import LABELS, VpnDetector, class_labels
from features.extract.api import feature_matrix
from features.schema import MODEL_FEATURES
from features.signatures import REGISTRY

DECISIVE = 0.9
THRESHOLD = 0.98
SIGNATURE_SCORE = 0.25
# Recognised protocols whose flows the model may flag without a signature: none but TLS, which Trojan, VLESS
# and VMess ride with nothing else to show. Tunnels over DTLS, QUIC, STUN, SSH, DNS or HTTP have signatures.
MODEL_ALONE_PROTOCOLS = ("", "tls")
MIN_PACKETS = 6
# Signatures that name their protocol by structure, and the (label, protocol) they decide.
DECIDING_SIGNATURES = {
    "openvpn": ("vpn", "openvpn"), "wireguard": ("vpn", "wireguard"), "ipsec": ("vpn", "ipsec"),
    "l2tp": ("vpn", "l2tp"), "pptp": ("vpn", "pptp"), "sstp": ("vpn", "sstp"), "anyconnect": ("vpn", "anyconnect"),
    "softether": ("vpn", "softether"), "socks": ("proxy", "socks"), "http_connect": ("proxy", "http_proxy"),
    "http_proxy": ("proxy", "http_proxy"),
}
VERDICT_COLUMNS = ["label", "protocol", "score", "evidence"]
TOP_FEATURES = 3


def _signature_labels(signatures) -> list[str]:
    """vpn where a VPN signature fired, else proxy: the label of a flow only its signatures explain."""
    vpn_names = {s.name for s in REGISTRY if s.kind == "vpn"}
    return ["vpn" if vpn_names & set(names.split(",")) else "proxy" for names in signatures]


def load_detector(model_dir=None, threshold=THRESHOLD) -> "Analyzer":
    return Analyzer(VpnDetector.load(model_dir) if model_dir else VpnDetector.load(), threshold)


class Analyzer:
    """Applies a fitted VpnDetector to feature frames, with the evidence rule above."""

    def __init__(self, detector: VpnDetector, threshold: float = THRESHOLD):
        self.detector = detector
        self.threshold = threshold
        self.class_label = class_labels(detector.classes_)
        self.class_protocol = np.array([c.split(":", 1)[1] for c in detector.classes_])
        self.servers = ServerMemory()

    def classify(self, frame: pd.DataFrame, explain: bool = True) -> pd.DataFrame:
        """The frame with `label`, `protocol`, `score` and `evidence` set for every row.

        explain=False leaves out the model's per-feature notes (path contributions, TreeEnsemble.contributions);
        the signatures' evidence is kept. Live capture uses it for early verdicts."""
        out = frame.copy(deep=False)  # only verdict columns are added; the features are not written to
        n = len(frame)
        if n == 0:
            for column in VERDICT_COLUMNS:
                out[column] = pd.Series(dtype=float if column == "score" else object)
            return out
        X = feature_matrix(frame)
        label_p = dict(zip(self.detector.labels_, self.detector.label_proba(X).T))
        mass = np.stack([label_p.get(label, np.zeros(n)) for label in LABELS], axis=1)
        score = mass[:, 0] + mass[:, 1]
        # The label a flow gets if it is flagged at all.
        leaning = np.where(mass[:, 0] >= mass[:, 1], "vpn", "proxy").astype(object)

        fired = frame["signatures"].fillna("").to_numpy() != "" if "signatures" in frame else np.zeros(n, bool)
        recognised = frame["protocols"].fillna("").str.split(",").str[0].to_numpy() if "protocols" in frame else \
            np.full(n, "")
        shown = ((frame["packets"].to_numpy() >= MIN_PACKETS) & (frame["src2dst_packets"].to_numpy() > 0)
                 & (frame["dst2src_packets"].to_numpy() > 0) & (score >= self.threshold)
                 & np.isin(recognised, MODEL_ALONE_PROTOCOLS))
        label = np.where(fired | shown, leaning, "normal").astype(object)
        unknown = np.flatnonzero(fired & (score < SIGNATURE_SCORE))
        label[unknown] = _signature_labels(frame["signatures"].to_numpy()[unknown])
        decided = self._decisive_signatures(frame)
        for i, (sig_label, _) in decided.items():
            label[i] = sig_label
            score[i] = max(score[i], DECISIVE)

        # Protocol names: a recognised application protocol names a normal flow, else it is `other`; the protocol
        # booster names vpn and proxy flows (it runs only there).
        normal = label == "normal"
        protocol = np.where(normal & (recognised != ""), recognised, "other").astype(object)
        named = np.flatnonzero(~normal)
        if len(named):
            proba = self.detector.protocol_proba(X[named])
            within = np.where(self.class_label[None, :] == label[named][:, None], proba, -1.0)
            best = np.argmax(within, axis=1)
            # A label the model has no class of (a model trained without proxies, say) names nothing.
            protocol[named] = np.where(within.max(axis=1) >= 0, self.class_protocol[best], "other")
        for i, (_, sig_protocol) in decided.items():
            protocol[i] = sig_protocol  # a verified handshake names its protocol better than the model

        evidence = frame["evidence"].fillna("").to_numpy().astype(object) if "evidence" in frame else \
            np.full(n, "", object)
        self._companions(frame, score, label, protocol, evidence)
        normal = label == "normal"
        # The model's own reasons are added where no signature already explains the alarm.
        label_index = {name: j for j, name in enumerate(self.detector.labels_)}
        unexplained = np.flatnonzero(~normal & (evidence == "") & np.isin(label, list(label_index)))
        if len(unexplained) and explain:
            notes = self._model_evidence(X[unexplained], np.array([label_index[v] for v in label[unexplained]]))
            for i, note in zip(unexplained, notes):
                evidence[i] = note
        with warnings.catch_warnings():
            # Frames come with one block per column (see detector.commands.analyze); four more cost nothing.
            warnings.simplefilter("ignore", pd.errors.PerformanceWarning)
            out["label"] = label
            out["protocol"] = protocol
            out["score"] = np.round(score, 4)
            out["evidence"] = evidence
        return out

    def _companions(self, frame, score, label, protocol, evidence):
        """Flag the companions of flagged flows (detector.companions) with their anchor's label and protocol, in
        place, and remember this frame's flagged servers."""
        keys = server_keys(frame)
        if keys is None:
            return
        anchors = np.flatnonzero(label != "normal")
        ends = zip(*(frame[c].to_numpy()[anchors] for c in ("src_ip", "src_port", "dst_ip", "dst_port", "transport")))
        flagged_here = {}
        for i, (src, sport, dst, dport, transport) in zip(anchors, ends):
            if keys[i] not in flagged_here:
                flagged_here[keys[i]] = (label[i], protocol[i], f"same server as a flagged {protocol[i]} flow "
                                                                f"({src}:{sport} -> {dst}:{dport}/{transport})")
        known = self.servers.recall(keys)
        for i in np.flatnonzero((label == "normal") & (score >= COMPANION_SCORE)):
            anchor = flagged_here.get(keys[i]) or known[i]
            if anchor is not None:
                label[i], protocol[i], note = anchor
                evidence[i] = f"{evidence[i]}; {note}" if evidence[i] else note
        self.servers.remember(flagged_here.keys(), flagged_here.values())

    def _decisive_signatures(self, frame) -> dict:
        decided = {}
        for name, verdict in DECIDING_SIGNATURES.items():
            column = f"sig_{name}"
            if column in frame:
                for i in np.flatnonzero(frame[column].to_numpy(dtype=float, na_value=0) >= DECISIVE):
                    decided.setdefault(int(i), verdict)
        return decided

    def _model_evidence(self, X, labels) -> list[str]:
        """The features that pushed each flow most towards its label: their parts of the label's raw score."""
        contrib = self.detector.label_contributions(X, labels)
        top = np.argsort(-contrib, axis=1)[:, :TOP_FEATURES]
        notes = []
        for row, indices in enumerate(top):
            parts = [f"{MODEL_FEATURES[j]}={X[row, j]:.4g} ({contrib[row, j]:+.2f})" for j in indices if contrib[row, j] > 0]
            notes.append("model: " + ", ".join(parts) if parts else "model")
        return notes
