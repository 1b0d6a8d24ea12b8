"""A LightGBM multiclass booster read from its text format and evaluated in C (features/native/trees.c).

Verdicts need only the trees, and LightGBM's Python package was most of a verdict's start-up: it imports
scikit-learn and SciPy (about 1.1 s of a 4 s analyze run on a million packets). Its predictor also walks every
tree for every row; trees_quickscore visits only the nodes whose test a row fails (QuickScorer), which took the
label booster from 0.7 s to 0.15 s on the 17k flows of the bench capture. The decision rule (missing values, zero
as missing, default directions) and the order of summation are LightGBM's, so that raw scores are LightGBM's to
the last bit (tests/test_trees.py checks it against LightGBM).
"""

from __future__ import annotations

import ctypes

import numpy as np

from features.native import declare

_P, _I = ctypes.c_void_p, ctypes.c_int64
_predict = declare("trees_predict", _I, _I, _P, _I, _I, _P, _P, _P, _P, _P)
_leaf_order = declare("trees_leaf_order", _I, _P, _P, _P, _P, _P, _P)
_quickscore = declare("trees_quickscore", _I, _I, _P, _I, _I, *([_P] * 15))
_contributions = declare("trees_contributions", _I, _I, _P, _P, _I, _I, _P, _P, _P, _P, _P, _P)
QUICKSCORE_LEAVES = 64    # trees_quickscore keeps a tree's reachable leaves in one 64-bit word

# trees.c's node: the feature index with two flags in its top bits, the threshold as a float, the children.
NODE = np.dtype([("feature", "<u4"), ("threshold", "<f4"), ("left", "<i4"), ("right", "<i4")])
NAN_LEFT, ZERO_LEFT, FEATURE_MASK = 1 << 31, 1 << 30, 0xFFFFFF
_NODE_FIELDS = {"split_feature": np.uint32, "threshold": np.float64, "decision_type": np.uint8,
                "left_child": np.int32, "right_child": np.int32, "internal_value": np.float64}


class TreeFormatError(ValueError):
    """Text that is not a LightGBM model this evaluator can run."""


class TreeEnsemble:
    """The trees of one booster as flat arrays; tree t adds to the raw score of class t % n_classes."""

    @classmethod
    def from_text(cls, text: str) -> "TreeEnsemble":
        header, _, trees = text.partition("\nTree=")
        trees = trees.partition("\nend of trees")[0]
        fields = dict(line.split("=", 1) for line in header.splitlines() if "=" in line)
        try:
            n_classes = int(fields["num_tree_per_iteration"])
            n_features = int(fields["max_feature_idx"]) + 1
        except (KeyError, ValueError):
            raise TreeFormatError("not a LightGBM text model (no num_tree_per_iteration or max_feature_idx)") from None
        trees = _fields(trees)
        leaf_counts = _field(trees, "num_leaves", np.int64)
        if not len(leaf_counts):
            raise TreeFormatError("a LightGBM model without trees")
        if _field(trees, "num_cat", np.int64).any() or _field(trees, "is_linear", np.int64).any():
            raise TreeFormatError("categorical or linear trees are not supported")
        node_counts = leaf_counts - 1
        split = {name: _field(trees, name, dtype, node_counts.sum()) for name, dtype in _NODE_FIELDS.items()}
        self = cls()
        self.text, self.n_classes, self.n_features, self.n_trees = text, n_classes, n_features, len(leaf_counts)
        self.nodes = _pack(split)
        self.node_value = split["internal_value"]
        self.leaf_value = _field(trees, "leaf_value", np.float64, leaf_counts.sum())
        self.leaf_start = np.cumsum(leaf_counts) - leaf_counts
        node_start = np.cumsum(node_counts) - node_counts
        has_nodes = node_counts > 0
        self.node_start = np.where(has_nodes, node_start, -1)
        # A tree of one leaf has no node: its root value is its leaf.
        self.root_value = self.leaf_value[self.leaf_start]
        self.root_value[has_nodes] = self.node_value[node_start[has_nodes]]
        self.quickscore = _quickscore_tables(self, node_counts) if leaf_counts.max() <= QUICKSCORE_LEAVES else None
        return self

    def _rows(self, X) -> np.ndarray:
        X = np.ascontiguousarray(X, np.float32)
        if X.ndim != 2 or X.shape[1] != self.n_features:
            raise ValueError(f"expected rows of {self.n_features} features, got shape {X.shape}")
        return X

    def _trees(self):
        return (self.n_trees, self.n_classes, self.node_start.ctypes.data, self.leaf_start.ctypes.data,
                self.nodes.ctypes.data, self.leaf_value.ctypes.data)

    def raw_score(self, X) -> np.ndarray:
        """(n, n_classes) raw scores."""
        X = self._rows(X)
        raw = np.empty((len(X), self.n_classes))
        if self.quickscore is None:
            _predict(len(X), self.n_features, X.ctypes.data, *self._trees(), raw.ctypes.data)
        else:
            reachable = np.empty(self.n_trees, np.uint64)
            _quickscore(len(X), self.n_features, X.ctypes.data, self.n_trees, self.n_classes,
                        *(a.ctypes.data for a in self.quickscore), self.leaf_value.ctypes.data,
                        reachable.ctypes.data, raw.ctypes.data)
        return raw

    def predict_proba(self, X) -> np.ndarray:
        """The softmax of the raw scores."""
        raw = self.raw_score(X)
        exp = np.exp(raw - raw.max(axis=1, keepdims=True))
        return exp / exp.sum(axis=1, keepdims=True)

    def bias(self, cls: int) -> float:
        """The part of class `cls`'s raw score that no feature explains: its trees' root values."""
        return float(self.root_value[cls::self.n_classes].sum())

    def contributions(self, X, classes) -> np.ndarray:
        """(n, n_features): what each feature's splits added to row i's raw score of class classes[i] along its
        decision paths (Saabas' path attribution, as in treeinterpreter); with bias(classes[i]) they add up to
        the raw score. It costs what a prediction costs; LightGBM's TreeSHAP cost about ten times more."""
        X = self._rows(X)
        classes = np.ascontiguousarray(classes, np.int64)
        out = np.empty((len(X), self.n_features))
        _contributions(len(X), self.n_features, X.ctypes.data, classes.ctypes.data, *self._trees(),
                       self.node_value.ctypes.data, out.ctypes.data)
        return out


def _fields(trees: str) -> dict:
    """{field: its text in every tree, end to end}."""
    by_name = {}
    for line in trees.split("\n"):
        name, _, values = line.partition("=")
        if values:
            by_name.setdefault(name, []).append(values)
    return {name: " ".join(values) for name, values in by_name.items()}


def _field(trees: dict, name: str, dtype, count=None) -> np.ndarray:
    """The values of one field of every tree, end to end."""
    # Integers parsed as integers: ten times faster than as floats.
    values = np.fromstring(trees.get(name, ""), np.float64 if np.dtype(dtype).kind == "f" else np.int64, sep=" ")
    if count is not None and len(values) != count:
        raise TreeFormatError(f"{name}: {len(values)} values where the trees' sizes make {count}")
    return values.astype(dtype)


def _quickscore_tables(trees: TreeEnsemble, node_counts: np.ndarray) -> tuple:
    """trees_quickscore's arrays: per feature, its nodes in ascending threshold order, and the nodes a missing
    value and a zero fail, each with its tree and the leaves it strikes out (its left subtree's)."""
    n = len(trees.nodes)
    left_first, left_end = np.zeros(n, np.int32), np.zeros(n, np.int32)
    leaf_at = np.zeros(len(trees.leaf_value), np.int32)
    _leaf_order(trees.n_trees, trees.node_start.ctypes.data, trees.leaf_start.ctypes.data, trees.nodes.ctypes.data,
                left_first.ctypes.data, left_end.ctypes.data, leaf_at.ctypes.data)
    # A left subtree has fewer leaves than its tree: at most 63.
    width, first = (left_end - left_first).astype(np.uint64), left_first.astype(np.uint64)
    strike = ~(((np.uint64(1) << width) - np.uint64(1)) << first)
    tree = np.repeat(np.arange(trees.n_trees, dtype=np.int32), node_counts)
    feature = (trees.nodes["feature"] & FEATURE_MASK).astype(np.int64)

    def by_feature(order):
        """Where each feature's nodes start in `order`, and the nodes' trees and strikes in that order."""
        start = np.searchsorted(feature[order], np.arange(trees.n_features + 1)).astype(np.int64)
        return [start, np.ascontiguousarray(tree[order]), np.ascontiguousarray(strike[order])]

    split = np.lexsort((trees.nodes["threshold"], feature))
    split_start, split_tree, split_strike = by_feature(split)
    tables = [split_start, np.ascontiguousarray(trees.nodes["threshold"][split]), split_tree, split_strike]
    for goes_left in (NAN_LEFT, ZERO_LEFT):      # the nodes a missing value, then a zero, fails
        fails = np.flatnonzero(trees.nodes["feature"] & goes_left == 0)
        tables += by_feature(fails[np.argsort(feature[fails], kind="stable")])
    return (*tables, trees.leaf_start, leaf_at)


def _pack(split: dict) -> np.ndarray:
    """trees.c's nodes, with LightGBM's decision rule folded in. For a float value v, `double(v) <= threshold`
    is `v <= t` with t the threshold rounded down to a float. LightGBM's predictor reads values within 1e-35 of
    zero as zero; a missing value (NaN) counts as zero unless the node says missing is NaN; a zero goes the
    default way where the node says zero is missing, and else is compared."""
    threshold = split["threshold"]
    with np.errstate(over="ignore"):
        rounded = threshold.astype(np.float32)
    rounded = np.where(rounded.astype(np.float64) > threshold, np.nextafter(rounded, np.float32(-np.inf)), rounded)
    decision = split["decision_type"]
    missing = (decision >> 2) & 3          # LightGBM's MissingType: 0 none, 1 zero, 2 NaN
    default_left = (decision & 2) > 0
    zero_left = np.where(missing == 1, default_left, threshold >= 0)
    nan_left = np.where(missing == 2, default_left, zero_left)
    nodes = np.empty(len(threshold), NODE)
    nodes["feature"] = split["split_feature"] | np.where(nan_left, NAN_LEFT, 0) | np.where(zero_left, ZERO_LEFT, 0)
    nodes["threshold"] = rounded
    nodes["left"], nodes["right"] = split["left_child"], split["right_child"]
    return nodes
