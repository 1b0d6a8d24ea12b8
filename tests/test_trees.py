"""The C tree evaluator against LightGBM itself: the same raw scores to the last bit, whatever the values."""

import lightgbm as lgb
import numpy as np
import pytest

from detector.model import DEFAULT_MODEL_DIR
from detector.trees import FEATURE_MASK, TreeEnsemble, TreeFormatError


def _awkward_rows(n, n_features, seed=0):
    """Values on and beside thresholds' scales, zeros, values within 1e-35 of zero, NaN and infinities."""
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, n_features)) * rng.choice([1e-36, 1, 100, 1e4, 1e6], size=(n, n_features))
    special = rng.random(X.shape)
    X[special < 0.1] = 0.0
    X[(special >= 0.1) & (special < 0.2)] = np.nan
    X[(special >= 0.2) & (special < 0.21)] = np.inf
    X[(special >= 0.21) & (special < 0.22)] = -np.inf
    return X.astype(np.float32)


@pytest.mark.parametrize("booster", ["label", "protocol"])
def test_shipped_boosters_score_as_lightgbm(booster):
    text = (DEFAULT_MODEL_DIR / f"model-{booster}.txt").read_text()
    trees, reference = TreeEnsemble.from_text(text), lgb.Booster(model_str=text)
    X = _awkward_rows(3000, trees.n_features)
    # Thresholds themselves and their float neighbours, in the features they split.
    nodes = trees.nodes[np.isfinite(trees.nodes["threshold"])][:3000]
    on = X.copy()
    on[np.arange(len(nodes)), nodes["feature"] & FEATURE_MASK] = nodes["threshold"]
    up = on.copy()
    up[np.arange(len(nodes)), nodes["feature"] & FEATURE_MASK] = np.nextafter(nodes["threshold"], np.float32(np.inf))
    X = np.concatenate([X, on[:len(nodes)], up[:len(nodes)]])
    np.testing.assert_array_equal(trees.raw_score(X), reference.predict(X, raw_score=True))
    np.testing.assert_allclose(trees.predict_proba(X), reference.predict(X), rtol=0, atol=1e-15)
    trees.quickscore = None   # the tree walk, for trees of more than 64 leaves
    np.testing.assert_array_equal(trees.raw_score(X), reference.predict(X, raw_score=True))


@pytest.mark.parametrize("options,shows", [({"zero_as_missing": True}, "decision_type=6"),
                                           ({"use_missing": False}, "decision_type=2"),
                                           ({"min_data_in_leaf": 300}, "num_leaves=1\n")])
def test_missing_value_rules_and_one_leaf_trees(options, shows):
    rng = np.random.default_rng(1)
    X = rng.normal(size=(400, 6)).astype(np.float32)
    X[rng.random(X.shape) < 0.3] = 0.0
    X[rng.random(X.shape) < 0.1] = np.nan
    y = (np.nan_to_num(X[:, 0]) > 0).astype(int) + (np.nan_to_num(X[:, 1]) == 0)
    params = {"objective": "multiclass", "num_class": 3, "min_data_in_leaf": 5, "verbosity": -1, "num_threads": 1}
    reference = lgb.train({**params, **options}, lgb.Dataset(X, y), num_boost_round=30)
    text = reference.model_to_string()
    assert shows in text
    trees = TreeEnsemble.from_text(text)
    test = _awkward_rows(2000, 6, seed=2)
    np.testing.assert_array_equal(trees.raw_score(test), reference.predict(test, raw_score=True))


def test_trees_of_more_than_64_leaves_are_walked():
    rng = np.random.default_rng(4)
    X, y = rng.normal(size=(400, 6)).astype(np.float32), rng.integers(0, 3, 400)
    params = {"objective": "multiclass", "num_class": 3, "num_leaves": 100, "min_data_in_leaf": 1, "verbosity": -1}
    reference = lgb.train(params, lgb.Dataset(X, y), num_boost_round=5)
    trees = TreeEnsemble.from_text(reference.model_to_string())
    assert trees.quickscore is None
    test = _awkward_rows(2000, 6, seed=5)
    np.testing.assert_array_equal(trees.raw_score(test), reference.predict(test, raw_score=True))


def test_contributions_add_up_to_the_raw_score():
    text = (DEFAULT_MODEL_DIR / "model-label.txt").read_text()
    trees = TreeEnsemble.from_text(text)
    X = _awkward_rows(200, trees.n_features, seed=3)
    classes = np.arange(200) % trees.n_classes
    parts = trees.contributions(X, classes)
    bias = np.array([trees.bias(c) for c in classes])
    raw = trees.raw_score(X)[np.arange(200), classes]
    np.testing.assert_allclose(parts.sum(axis=1) + bias, raw, rtol=0, atol=1e-9)


def test_other_text_is_refused():
    with pytest.raises(TreeFormatError, match="not a LightGBM text model"):
        TreeEnsemble.from_text("hello\nworld\n")
