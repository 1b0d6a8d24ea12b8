"""scikit-learn's classifier contract without importing scikit-learn.

Inheriting from sklearn.base would import scikit-learn and SciPy with every verdict: about 0.9 s of start-up
that `analyze` does not otherwise need. This base gives what scikit-learn's tools use (get_params, set_params,
tags, score), so `clone`, grid searches and cross-validation take the estimator as they would their own.
"""

from __future__ import annotations

import inspect

import numpy as np


class NotFittedError(ValueError, AttributeError):
    """An estimator used before `fit` (scikit-learn's NotFittedError has the same bases)."""


class ClassifierBase:
    _estimator_type = "classifier"

    @classmethod
    def _get_param_names(cls) -> list[str]:
        signature = inspect.signature(cls.__init__)
        return sorted(name for name, p in signature.parameters.items() if name != "self" and p.kind != p.VAR_KEYWORD)

    def get_params(self, deep=True) -> dict:
        return {name: getattr(self, name) for name in self._get_param_names()}

    def set_params(self, **params):
        valid = self._get_param_names()
        for name, value in params.items():
            if name not in valid:
                raise ValueError(f"invalid parameter {name!r} for {type(self).__name__}; valid: {valid}")
            setattr(self, name, value)
        return self

    def __sklearn_tags__(self):
        from sklearn.utils import ClassifierTags, Tags, TargetTags  # asked only by scikit-learn, already imported
        return Tags(estimator_type="classifier", target_tags=TargetTags(required=True),
                    classifier_tags=ClassifierTags())

    def score(self, X, y, sample_weight=None) -> float:
        """Mean accuracy of `predict(X)` against y."""
        return float(np.average(self.predict(X) == np.asarray(y), weights=sample_weight))

    def __repr__(self):
        defaults = type(self)().get_params()
        changed = {k: v for k, v in self.get_params().items() if v != defaults[k]}
        return f"{type(self).__name__}({', '.join(f'{k}={v!r}' for k, v in changed.items())})"

    def _check_fitted(self, attribute: str):
        if not hasattr(self, attribute):
            raise NotFittedError(f"this {type(self).__name__} is not fitted yet: call `fit` first")
