"""The classifier: LightGBM over the feature schema, as a scikit-learn estimator, saved without pickle.

Two boosters share the features. The label booster tells vpn, proxy and normal apart: every flow of a label
teaches it, whatever the protocol, which is what recall and false positives depend on. The protocol booster
names the protocol of vpn and proxy flows: it learns from those alone, so that none of its capacity goes to
telling normal applications apart (signatures recognise them, see detector.pipeline). `predict_proba`
combines them over `label:protocol` classes (`vpn:openvpn`, `proxy:shadowsocks`, `normal:tls`, ...):
P(label) x P(protocol | label), where P(protocol | normal) is each normal class's share of the training data.

LightGBM and scikit-learn are imported for training only: verdicts evaluate the saved trees in C
(detector.trees), which keeps both out of `analyze`'s start-up.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import numpy as np

from detector.estimator import ClassifierBase
from detector.trees import TreeEnsemble, TreeFormatError
from features.schema import FEATURE_SCHEMA_VERSION, MODEL_FEATURES

LABELS = ("vpn", "proxy", "normal")
BOOSTERS = ("label", "protocol")
METADATA_FILE = "metadata.json"
DEFAULT_MODEL_DIR = Path(__file__).resolve().parents[1] / "models"


class ModelError(Exception):
    """A model that cannot be used: missing, damaged, or made for another feature schema."""


def class_labels(classes) -> np.ndarray:
    """The label part of `label:protocol` class names."""
    return np.array([c.split(":", 1)[0] for c in classes])


def _model_file(booster: str) -> str:
    return f"model-{booster}.txt"


class VpnDetector(ClassifierBase):
    """LightGBM boosters with balanced class weights and early stopping on a grouped validation split.

    Parameters
    ----------
    n_estimators, learning_rate, num_leaves, min_child_samples, colsample_bytree : LightGBM parameters
    normal_weight : float
        Extra weight of normal flows in the label booster: false alarms cost more than misses on a busy link.
    early_stopping_rounds : int
        Rounds without improvement of the validation loss after which boosting stops.
    validation_fraction : float
        Share of the groups (capture sessions) held out for early stopping.
    random_state : int
    """

    def __init__(self, n_estimators=400, learning_rate=0.03, num_leaves=15, min_child_samples=20,
                 colsample_bytree=0.5, normal_weight=2.0, early_stopping_rounds=40, validation_fraction=0.2,
                 random_state=0):
        self.n_estimators = n_estimators
        self.learning_rate = learning_rate
        self.num_leaves = num_leaves
        self.min_child_samples = min_child_samples
        self.colsample_bytree = colsample_bytree
        self.normal_weight = normal_weight
        self.early_stopping_rounds = early_stopping_rounds
        self.validation_fraction = validation_fraction
        self.random_state = random_state

    def _params(self, n_classes):
        return {"objective": "multiclass", "num_class": n_classes, "learning_rate": self.learning_rate,
                "num_leaves": self.num_leaves, "min_child_samples": self.min_child_samples,
                "feature_fraction": self.colsample_bytree, "feature_fraction_seed": self.random_state,
                "seed": self.random_state, "deterministic": True, "force_row_wise": True, "num_threads": 1,
                "verbosity": -1}

    def fit(self, X, y, groups=None, sample_weight=None):
        """Fit on X (n_samples, n_features) and `label:protocol` class names y; `groups` are capture sessions."""
        X = np.asarray(X, np.float32)
        y = np.asarray(y).astype(str)
        self.classes_ = np.array(sorted(set(y)))
        self.labels_ = np.array([label for label in LABELS if label in set(class_labels(self.classes_))])
        label_index = {label: i for i, label in enumerate(self.labels_)}
        label_codes = np.array([label_index[label] for label in class_labels(y)])
        base = np.ones(len(y)) if sample_weight is None else np.asarray(sample_weight, float)
        label_weight = base * _balanced(label_codes) * np.where(self.labels_[label_codes] == "normal",
                                                                self.normal_weight, 1.0)
        groups = np.arange(len(y)) if groups is None else np.asarray(groups)
        tunnel = class_labels(y) != "normal"
        self.protocol_classes_ = self.classes_[class_labels(self.classes_) != "normal"]
        if len(self.protocol_classes_) < 2:
            raise ValueError("training needs flows of at least two vpn/proxy protocols")
        normal_classes, counts = np.unique(y[~tunnel], return_counts=True)
        self.normal_shares_ = dict(zip(normal_classes.tolist(), (counts / counts.sum()).tolist()))
        protocol_codes = np.searchsorted(self.protocol_classes_, y[tunnel])
        self.boosters_, self.best_iterations_, self.validation_logloss_ = {}, {}, {}
        for name, rows, codes, weight, n in (
                ("label", np.arange(len(y)), label_codes, label_weight, len(self.labels_)),
                ("protocol", np.flatnonzero(tunnel), protocol_codes, base[tunnel] * _balanced(protocol_codes),
                 len(self.protocol_classes_))):
            booster, best, loss = self._boost(X[rows], codes, weight, n, *self._split(y[rows], groups[rows]))
            # Verdicts use the trees as saved, so that a fitted and a loaded model predict alike.
            self.boosters_[name] = TreeEnsemble.from_text(booster.model_to_string(num_iteration=best))
            self.best_iterations_[name], self.validation_logloss_[name] = best, loss
        self.n_features_in_ = X.shape[1]
        return self

    def _split(self, y, groups):
        """(train, valid) row indices, whole groups on either side; no validation rows from a single group."""
        from sklearn.model_selection import GroupShuffleSplit

        if len(np.unique(groups)) < 2:
            return np.arange(len(y)), None  # one session cannot be split honestly: no early stopping
        return next(GroupShuffleSplit(n_splits=1, test_size=self.validation_fraction,
                                      random_state=self.random_state).split(y, y, groups))

    def _boost(self, X, codes, weight, n_classes, train, valid):
        import lightgbm as lgb

        params = self._params(n_classes)
        train_set = lgb.Dataset(X[train], codes[train], weight=weight[train], free_raw_data=False)
        if valid is None:
            return lgb.train(params, train_set, num_boost_round=self.n_estimators), self.n_estimators, None
        valid_set = lgb.Dataset(X[valid], codes[valid], weight=weight[valid], reference=train_set)
        booster = lgb.train(params, train_set, num_boost_round=self.n_estimators, valid_sets=[valid_set],
                            callbacks=[lgb.early_stopping(self.early_stopping_rounds, verbose=False)])
        return booster, booster.best_iteration or self.n_estimators, float(booster.best_score["valid_0"]["multi_logloss"])

    def label_proba(self, X) -> np.ndarray:
        """P(label) for the labels in `labels_`: (n_samples, n_labels)."""
        self._check_fitted("boosters_")
        return self.boosters_["label"].predict_proba(X)

    def protocol_proba(self, X) -> np.ndarray:
        """P(protocol | label) over `classes_`: each label's classes sum to one."""
        self._check_fitted("boosters_")
        tunnel_p = self.boosters_["protocol"].predict_proba(X)
        protocol_p = np.zeros((len(tunnel_p), len(self.classes_)))
        protocol_p[:, np.searchsorted(self.classes_, self.protocol_classes_)] = tunnel_p
        for name, share in self.normal_shares_.items():
            protocol_p[:, np.searchsorted(self.classes_, name)] = share
        class_label = class_labels(self.classes_)
        for label in self.labels_:
            members = class_label == label
            protocol_p[:, members] /= np.maximum(protocol_p[:, members].sum(axis=1, keepdims=True), 1e-12)
        return protocol_p

    def predict_proba(self, X) -> np.ndarray:
        """P(class) = P(label) x P(protocol | label), over `classes_`."""
        label_p = self.label_proba(X)
        index = {label: j for j, label in enumerate(self.labels_)}
        label_of_class = np.array([index[label] for label in class_labels(self.classes_)])
        return label_p[:, label_of_class] * self.protocol_proba(X)

    def predict(self, X) -> np.ndarray:
        return self.classes_[np.argmax(self.predict_proba(X), axis=1)]

    def label_contributions(self, X, labels) -> np.ndarray:
        """Each feature's part of the raw score of label index `labels[i]` for row i, along the label booster's
        decision paths (TreeEnsemble.contributions): (n_samples, n_features)."""
        self._check_fitted("boosters_")
        return self.boosters_["label"].contributions(X, labels)

    # -- persistence: LightGBM's own text format beside a JSON metadata file, never pickle -------------------

    def save(self, directory, **metadata):
        self._check_fitted("boosters_")
        directory = Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        digests = {}
        for name in BOOSTERS:
            text = self.boosters_[name].text
            (directory / _model_file(name)).write_text(text)
            digests[name] = hashlib.sha256(text.encode()).hexdigest()
        meta = {
            "feature_schema_version": FEATURE_SCHEMA_VERSION,
            "features": list(MODEL_FEATURES),
            "classes": self.classes_.tolist(),
            "labels": self.labels_.tolist(),
            "protocol_classes": self.protocol_classes_.tolist(),
            "normal_shares": self.normal_shares_,
            "params": self.get_params(),
            "best_iterations": {k: int(v) for k, v in self.best_iterations_.items()},
            "validation_logloss": self.validation_logloss_,
            "model_sha256": digests,
            **metadata,
        }
        (directory / METADATA_FILE).write_text(json.dumps(meta, indent=2, sort_keys=True) + "\n")
        return meta

    @classmethod
    def load(cls, directory=DEFAULT_MODEL_DIR):
        directory = Path(directory)
        try:
            meta = json.loads((directory / METADATA_FILE).read_text())
            texts = {name: (directory / _model_file(name)).read_text() for name in BOOSTERS}
        except FileNotFoundError as exc:
            raise ModelError(f"{directory}: no model there ({Path(exc.filename).name} is missing)") from None
        except json.JSONDecodeError as exc:
            raise ModelError(f"{directory / METADATA_FILE}: not valid JSON ({exc})") from None
        if meta.get("feature_schema_version") != FEATURE_SCHEMA_VERSION:
            raise ModelError(f"{directory}: model made for feature schema {meta.get('feature_schema_version')}, "
                             f"this vpndetect computes schema {FEATURE_SCHEMA_VERSION}; retrain it with `vpndetect train`")
        if meta.get("features") != list(MODEL_FEATURES):
            raise ModelError(f"{directory}: model's feature list differs from schema {FEATURE_SCHEMA_VERSION}")
        for name, text in texts.items():
            if hashlib.sha256(text.encode()).hexdigest() != meta.get("model_sha256", {}).get(name):
                raise ModelError(f"{directory / _model_file(name)}: digest does not match the metadata "
                                 "(damaged or edited)")
        detector = cls(**{k: v for k, v in meta.get("params", {}).items() if k in cls().get_params()})
        try:
            detector.boosters_ = {name: TreeEnsemble.from_text(text) for name, text in texts.items()}
        except TreeFormatError as exc:
            raise ModelError(f"{directory}: {exc}") from None
        detector.best_iterations_ = meta["best_iterations"]
        detector.classes_ = np.array(meta["classes"])
        detector.labels_ = np.array(meta["labels"])
        detector.protocol_classes_ = np.array(meta["protocol_classes"])
        detector.normal_shares_ = meta["normal_shares"]
        detector.validation_logloss_ = meta.get("validation_logloss")
        detector.n_features_in_ = len(meta["features"])
        detector.metadata_ = meta
        return detector


def _balanced(codes: np.ndarray) -> np.ndarray:
    """Weights that make every class count as much in total, whatever its size."""
    counts = np.bincount(codes)
    present = (counts > 0).sum()
    return (len(codes) / (present * counts))[codes]
