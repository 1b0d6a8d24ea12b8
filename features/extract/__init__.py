"""Statistical flow features computed in the reader's pass: compiled state updates, vectorised read-outs.

The public entry points live in `features.extract.api` (also reachable as `features.extract_features` and
`features.feature_matrix`).
"""
