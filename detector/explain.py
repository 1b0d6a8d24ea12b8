"""Why the model leans as it does: each feature's part of a flow's raw score, along the trees' decision paths.

In every tree, the change of node value at each split on the way from the root to the flow's leaf is credited
to the feature that split (Saabas' path attribution, as in treeinterpreter). With the roots' values the parts
add up to the booster's raw score exactly. It needs only the leaf each flow reaches in each tree (LightGBM's
`pred_leaf`), which costs what a prediction costs; LightGBM's TreeSHAP (`pred_contrib`) cost about ten times
more, and was most of `analyze`'s time on traffic with many model-flagged flows.
"""

from __future__ import annotations

import numpy as np

CHUNK_ROWS = 256   # rows gathered at once: chunk x trees x depth entries (~16 MB at 400 trees, depth 14)


class PathContributions:
    """The decision paths of a LightGBM multiclass booster as arrays: per tree and leaf, the features split on
    and the value each split added."""

    def __init__(self, booster, num_iteration=None):
        model = booster.dump_model(num_iteration=num_iteration)
        self.n_classes = model["num_class"]
        self.n_features = model["max_feature_idx"] + 1
        trees = [_leaf_paths(info["tree_structure"]) for info in model["tree_info"]]
        leaves = max(len(paths) for _, paths in trees)
        depth = max((len(steps) for _, paths in trees for steps in paths.values()), default=0) or 1
        self.root = np.array([root for root, _ in trees])
        self.feature = np.full((len(trees), leaves, depth), -1, np.int64)
        self.delta = np.zeros((len(trees), leaves, depth))
        for t, (_, paths) in enumerate(trees):
            for leaf, steps in paths.items():
                for d, (feature, delta) in enumerate(steps):
                    self.feature[t, leaf, d] = feature
                    self.delta[t, leaf, d] = delta

    def bias(self, cls: int) -> float:
        """The part of class `cls`'s raw score that no feature explains: the sum of its trees' root values."""
        return float(self.root[cls::self.n_classes].sum())

    def __call__(self, leaves: np.ndarray, classes: np.ndarray) -> np.ndarray:
        """(n, n_features) parts of each row's raw score for its class; `leaves` as pred_leaf gives them."""
        out = np.zeros((len(leaves), self.n_features))
        for cls in np.unique(classes):
            trees = np.arange(cls, len(self.root), self.n_classes)
            rows = np.flatnonzero(classes == cls)
            for chunk in np.array_split(rows, -(-len(rows) // CHUNK_ROWS)):
                leaf = leaves[np.ix_(chunk, trees)]
                feature = self.feature[trees[None, :], leaf]
                delta = self.delta[trees[None, :], leaf]
                on = feature >= 0
                row = np.broadcast_to(np.arange(len(chunk))[:, None, None], feature.shape)
                parts = np.bincount((row * self.n_features + feature)[on], delta[on],
                                    minlength=len(chunk) * self.n_features)
                out[chunk] = parts.reshape(len(chunk), self.n_features)
        return out


def _leaf_paths(root: dict):
    """(root value, {leaf index: [(feature, value added), ...]}) of one dumped tree."""
    if "split_index" not in root:
        return root["leaf_value"], {root.get("leaf_index", 0): []}
    paths = {}
    stack = [(root, [])]
    while stack:
        node, steps = stack.pop()
        if "split_index" not in node:
            paths[node["leaf_index"]] = steps
            continue
        for child in (node["left_child"], node["right_child"]):
            value = child["internal_value"] if "split_index" in child else child["leaf_value"]
            stack.append((child, steps + [(node["split_feature"], value - node["internal_value"])]))
    return root["internal_value"], paths
