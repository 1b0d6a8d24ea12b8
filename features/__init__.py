"""vpndetect's packet core and features: capture readers, vectorised decoding, flow table, flow features."""

from features.errors import CaptureError
from features.flows import FLOW_COLUMNS
from features.plugin import FlowPlugin
from features.reader import FlowReader


def read_flows(source, **options):
    """The flows of one or more captures as a pandas DataFrame (see FlowReader for the options)."""
    return FlowReader(source, **options).to_pandas()


__all__ = ["CaptureError", "FLOW_COLUMNS", "FlowPlugin", "FlowReader", "read_flows"]


def __getattr__(name):
    # The feature extractor loads on first use, so that `vpndetect flows` does not pay for it.
    if name in ("extract_features", "feature_matrix"):
        from features.extract import api
        return getattr(api, name)
    raise AttributeError(f"module 'features' has no attribute {name!r}")
