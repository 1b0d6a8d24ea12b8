"""Training the shipped model (or a user's own) from labelled captures, deterministically."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from detector.dataset import EARLY_STEPS, class_names, data_digest, find_label_files, load_labels, training_table
from detector.model import VpnDetector
from features.extract.api import feature_matrix
from features.readers import expand_paths


def train(paths, out_dir, label_files=None, steps=EARLY_STEPS, random_state=0, **params) -> dict:
    """Fit a VpnDetector on the captures under `paths` and save it in `out_dir`; returns its metadata."""
    label_files = list(label_files) if label_files else find_label_files(paths)
    labels = load_labels(label_files)
    table = training_table(paths, labels, steps)
    y = class_names(table)
    groups = table["capture"].map(lambda p: Path(p).name).to_numpy()
    detector = VpnDetector(random_state=random_state, **params).fit(feature_matrix(table), y, groups=groups)
    whole = table["packets_limit"].to_numpy() == 0
    captures = sorted({p.name for p in expand_paths(paths)})
    classes, counts = np.unique(y[whole], return_counts=True)
    return detector.save(
        out_dir,
        training_data={
            "captures": len(captures),
            "flows": int(whole.sum()),
            "rows": len(table),
            "early_steps": list(steps),
            "flows_per_class": dict(zip(classes.tolist(), counts.tolist())),
            "label_files": [Path(f).name for f in label_files],
            "sha256": data_digest(paths, label_files),
        },
    )
