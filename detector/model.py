"""The classifier: a LightGBM model over the feature schema, as a scikit-learn estimator, saved without pickle.

One multiclass model predicts `label:protocol` classes (`vpn:openvpn`, `proxy:shadowsocks`, `normal:tls`, ...).
The flow's `score` is the probability mass of every vpn and proxy class; its `label` is the label with the most
mass; its `protocol` the most likely class within that label.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import lightgbm as lgb
import numpy as np
from sklearn.base import BaseEstimator, ClassifierMixin
from sklearn.model_selection import GroupShuffleSplit
from sklearn.utils.validation import check_is_fitted

from features.schema import FEATURE_SCHEMA_VERSION, MODEL_FEATURES

LABELS = ("vpn", "proxy", "normal")
MODEL_FILE, METADATA_FILE = "model.txt", "metadata.json"
DEFAULT_MODEL_DIR = Path(__file__).resolve().parents[1] / "models"


class ModelError(Exception):
    """A model that cannot be used: missing, damaged, or made for another feature schema."""


class VpnDetector(ClassifierMixin, BaseEstimator):
    """LightGBM over the model features, with class weights and early stopping on a grouped validation split.

    Parameters
    ----------
    n_estimators, learning_rate, num_leaves, min_child_samples, colsample_bytree : LightGBM parameters
    early_stopping_rounds : int
        Rounds without improvement of the validation loss after which boosting stops.
    validation_fraction : float
        Share of the groups (capture sessions) held out for early stopping.
    random_state : int
    """

    def __init__(self, n_estimators=400, learning_rate=0.08, num_leaves=31, min_child_samples=10,
                 colsample_bytree=0.7, early_stopping_rounds=40, validation_fraction=0.2, random_state=0):
        self.n_estimators = n_estimators
        self.learning_rate = learning_rate
        self.num_leaves = num_leaves
        self.min_child_samples = min_child_samples
        self.colsample_bytree = colsample_bytree
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
        """Fit on X (n_samples, n_features) and class names y; `groups` (capture sessions) drive the split."""
        X = np.asarray(X, np.float32)
        y = np.asarray(y).astype(str)
        self.classes_ = np.array(sorted(set(y)))
        codes = np.searchsorted(self.classes_, y)
        counts = np.bincount(codes, minlength=len(self.classes_))
        # Balanced class weights: rare protocols weigh as much as common ones.
        weight = (len(y) / (len(self.classes_) * counts))[codes]
        if sample_weight is not None:
            weight = weight * np.asarray(sample_weight, float)
        groups = np.arange(len(y)) if groups is None else np.asarray(groups)
        params = self._params(len(self.classes_))
        if len(np.unique(groups)) < 2:
            # One capture session cannot be split honestly: no early stopping, a fixed number of rounds.
            train_set = lgb.Dataset(X, codes, weight=weight)
            self.booster_ = lgb.train(params, train_set, num_boost_round=self.n_estimators)
            self.best_iteration_ = self.n_estimators
            self.validation_logloss_ = None
        else:
            train, valid = next(GroupShuffleSplit(n_splits=1, test_size=self.validation_fraction,
                                                  random_state=self.random_state).split(X, codes, groups))
            train_set = lgb.Dataset(X[train], codes[train], weight=weight[train], free_raw_data=False)
            valid_set = lgb.Dataset(X[valid], codes[valid], weight=weight[valid], reference=train_set)
            self.booster_ = lgb.train(params, train_set, num_boost_round=self.n_estimators, valid_sets=[valid_set],
                                      callbacks=[lgb.early_stopping(self.early_stopping_rounds, verbose=False)])
            self.best_iteration_ = self.booster_.best_iteration or self.n_estimators
            self.validation_logloss_ = float(self.booster_.best_score["valid_0"]["multi_logloss"])
        self.n_features_in_ = X.shape[1]
        return self

    def predict_proba(self, X) -> np.ndarray:
        check_is_fitted(self, "booster_")
        proba = self.booster_.predict(np.asarray(X, np.float32), num_iteration=self.best_iteration_)
        return proba.reshape(len(proba), -1)

    def predict(self, X) -> np.ndarray:
        return self.classes_[np.argmax(self.predict_proba(X), axis=1)]

    def contributions(self, X) -> np.ndarray:
        """Per-feature contributions to each class's raw score: (n_samples, n_classes, n_features + 1)."""
        check_is_fitted(self, "booster_")
        raw = self.booster_.predict(np.asarray(X, np.float32), num_iteration=self.best_iteration_, pred_contrib=True)
        return raw.reshape(len(raw), len(self.classes_), -1)

    # -- persistence: LightGBM's own text format beside a JSON metadata file, never pickle -------------------

    def save(self, directory, **metadata):
        check_is_fitted(self, "booster_")
        directory = Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        model_text = self.booster_.model_to_string(num_iteration=self.best_iteration_)
        (directory / MODEL_FILE).write_text(model_text)
        meta = {
            "feature_schema_version": FEATURE_SCHEMA_VERSION,
            "features": list(MODEL_FEATURES),
            "classes": self.classes_.tolist(),
            "params": self.get_params(),
            "best_iteration": int(self.best_iteration_),
            "validation_logloss": self.validation_logloss_,
            "model_sha256": hashlib.sha256(model_text.encode()).hexdigest(),
            **metadata,
        }
        (directory / METADATA_FILE).write_text(json.dumps(meta, indent=2, sort_keys=True) + "\n")
        return meta

    @classmethod
    def load(cls, directory=DEFAULT_MODEL_DIR):
        directory = Path(directory)
        try:
            meta = json.loads((directory / METADATA_FILE).read_text())
            model_text = (directory / MODEL_FILE).read_text()
        except FileNotFoundError as exc:
            raise ModelError(f"{directory}: no model there ({exc.filename} is missing)") from None
        except json.JSONDecodeError as exc:
            raise ModelError(f"{directory / METADATA_FILE}: not valid JSON ({exc})") from None
        if meta.get("feature_schema_version") != FEATURE_SCHEMA_VERSION:
            raise ModelError(f"{directory}: model made for feature schema {meta.get('feature_schema_version')}, "
                             f"this vpndetect computes schema {FEATURE_SCHEMA_VERSION}; retrain it with `vpndetect train`")
        if meta.get("features") != list(MODEL_FEATURES):
            raise ModelError(f"{directory}: model's feature list differs from schema {FEATURE_SCHEMA_VERSION}")
        if hashlib.sha256(model_text.encode()).hexdigest() != meta.get("model_sha256"):
            raise ModelError(f"{directory / MODEL_FILE}: digest does not match the metadata (damaged or edited)")
        detector = cls(**{k: v for k, v in meta.get("params", {}).items() if k in cls().get_params()})
        detector.booster_ = lgb.Booster(model_str=model_text)
        detector.classes_ = np.array(meta["classes"])
        detector.best_iteration_ = meta["best_iteration"]
        detector.validation_logloss_ = meta.get("validation_logloss")
        detector.n_features_in_ = len(meta["features"])
        detector.metadata_ = meta
        return detector


def class_labels(classes) -> np.ndarray:
    """The label part of `label:protocol` class names."""
    return np.array([c.split(":", 1)[0] for c in classes])
