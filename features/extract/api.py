"""Flow features: the public API over FlowReader and FeaturePlugin.

`extract_features(paths)` gives one row per flow: the columns of `vpndetect flows` followed by every column
of `features.schema.FEATURE_SCHEMA`. `feature_matrix(frame)` gives the model's inputs from it, in schema
order, as float32.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from features.extract.plugin import DEFAULT_EARLY_PACKETS, FeaturePlugin, compute_columns
from features.extract.state import StateLayout
from features.reader import FlowReader
from features.flows import FLOW_COLUMNS
from features.schema import COMPUTED_COLUMNS, FEATURE_SCHEMA_VERSION, MODEL_FEATURES


def feature_reader(paths, early_packets: int = DEFAULT_EARLY_PACKETS, layout: StateLayout | None = None,
                   **options) -> FlowReader:
    """A FlowReader whose record batches carry every feature (options as for FlowReader)."""
    plugins = list(options.pop("plugins", ())) + [FeaturePlugin(early_packets, layout)]
    return FlowReader(paths, plugins=plugins, **options)


def extract_features(paths, early_packets: int = DEFAULT_EARLY_PACKETS, **options) -> pd.DataFrame:
    """Flows of captures with their features, one row per flow (options as for FlowReader)."""
    table = feature_reader(paths, early_packets, **options).to_arrow()
    if table.num_rows == 0:
        return pd.DataFrame(columns=[name for name, _, _ in FLOW_COLUMNS] + COMPUTED_COLUMNS)
    return table.to_pandas()


def feature_matrix(frame: pd.DataFrame) -> np.ndarray:
    """The model's inputs: the schema's model features in schema order, float32 (missing values NaN)."""
    missing = [name for name in MODEL_FEATURES if name not in frame.columns]
    if missing:
        raise KeyError(f"frame lacks feature columns (schema {FEATURE_SCHEMA_VERSION}): {missing[:5]}")
    return frame[MODEL_FEATURES].to_numpy(dtype=np.float32, na_value=np.nan)


__all__ = ["FEATURE_SCHEMA_VERSION", "MODEL_FEATURES", "FeaturePlugin", "StateLayout", "compute_columns",
           "extract_features", "feature_matrix", "feature_reader"]
