"""A learned variant of the AU decisions: one L2-regularised logistic regression per AU.

:func:`fit_linear` fits scikit-learn's :class:`~sklearn.linear_model.LogisticRegression` per AU on the
fixed-length vectors of :meth:`mevqa.au.features.AUFeatures.vector` from labelled clips;
:meth:`LinearAUModel.save` writes the weights as JSON or ``.npz`` (read with ``allow_pickle=False``:
loading a model file runs no code). With ``AUConfig(model_path=...)`` the model gives ``score`` and
``present``; side and intensity still come from the measurements.
"""
from __future__ import annotations

import json
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import numpy as np
from sklearn.linear_model import LogisticRegression

from mevqa.au.results import AU_CODES, AUError

#: Measurements per AU in :meth:`mevqa.au.features.AUFeatures.vector` (flow, geometry, blendshape change;
#: stronger and weaker side each), followed by one noise feature.
PER_AU = 6


@dataclass
class LinearAUModel:
    """One logistic regression per AU over :meth:`AUFeatures.vector` (standardised inputs).

    Saved as plain numbers and strings (JSON, or ``.npz`` read with ``allow_pickle=False``), so
    loading a model file can never execute code.
    """

    codes: tuple[str, ...]
    feature_names: tuple[str, ...]
    mean: np.ndarray
    scale: np.ndarray
    weights: np.ndarray  # (n_codes, n_features)
    bias: np.ndarray  # (n_codes,)

    def decision(self, x: np.ndarray) -> np.ndarray:
        z = (np.atleast_2d(np.asarray(x, float)) - self.mean) / self.scale
        return z @ self.weights.T + self.bias

    def predict_proba(self, x: np.ndarray) -> np.ndarray:
        """(n, n_codes) probabilities that each AU is present."""
        return 1.0 / (1.0 + np.exp(-np.clip(self.decision(x), -50, 50)))

    def to_dict(self) -> dict:
        return {"format": "mevqa.au.LinearAUModel/1", "codes": list(self.codes),
                "feature_names": list(self.feature_names), "mean": self.mean.tolist(),
                "scale": self.scale.tolist(), "weights": self.weights.tolist(), "bias": self.bias.tolist()}

    def save(self, path) -> Path:
        """Write JSON (``.json``) or NumPy ``.npz`` (anything else); no pickle either way."""
        p = Path(path)
        if p.suffix.lower() == ".json":
            p.write_text(json.dumps(self.to_dict()))
        else:
            if p.suffix.lower() != ".npz":
                p = p.with_suffix(".npz")
            np.savez(p, codes=np.array(self.codes, dtype=str), feature_names=np.array(self.feature_names, dtype=str),
                     mean=self.mean, scale=self.scale, weights=self.weights, bias=self.bias)
        return p

    @classmethod
    def load(cls, path) -> "LinearAUModel":
        p = Path(path)
        if not p.exists():
            raise AUError(f"AU model file not found: {p}")
        try:
            if p.suffix.lower() == ".json":
                d = json.loads(p.read_text())
            else:
                with np.load(p, allow_pickle=False) as z:
                    d = {k: z[k] for k in z.files}
            model = cls(tuple(str(c) for c in d["codes"]), tuple(str(n) for n in d["feature_names"]),
                        np.asarray(d["mean"], float), np.asarray(d["scale"], float),
                        np.asarray(d["weights"], float), np.asarray(d["bias"], float))
        except (KeyError, ValueError, TypeError) as e:
            raise AUError(f"{p} is not an AU model file ({e})") from None
        if model.weights.shape != (len(model.codes), len(model.feature_names)):
            raise AUError(f"{p}: weights shape {model.weights.shape} does not match its codes/features")
        return model


def _labels_matrix(labels, codes: Sequence[str]) -> np.ndarray:
    if isinstance(labels, np.ndarray):
        return labels.astype(float)
    rows = []
    for item in labels:
        present = {getattr(a, "code", a) for a in item}
        rows.append([c in present for c in codes])
    return np.asarray(rows, float)


def fit_linear(features, labels, *, codes: Sequence[str] = AU_CODES, l2: float = 1.0, own_features: bool = True,
               config=None) -> LinearAUModel:
    """Fit one L2-regularised logistic regression per AU (scikit-learn, lbfgs) on labelled clips.

    ``features``: (n, F) array or a list of :class:`mevqa.au.features.AUFeatures`; ``labels``: (n,
    len(codes)) 0/1 array, or per clip an iterable of AU codes (or objects with ``.code``) present.
    ``l2`` is the penalty on the standardised weights (scikit-learn's ``C = 1 / l2``).
    ``own_features`` (with :meth:`~mevqa.au.features.AUFeatures.vector` input): each AU sees only its
    own measurements and the noise level, which a few dozen labelled clips per AU can support; False
    uses every feature for every AU. An AU that is never (or always) present gets a constant model at
    its base rate.
    """
    x = np.asarray([f.vector(config) if hasattr(f, "vector") else np.asarray(f, float) for f in features])
    y = _labels_matrix(labels, codes)
    if x.ndim != 2 or len(x) != len(y):
        raise AUError(f"{len(x)} feature rows but {len(y)} label rows")
    standard = x.shape[1] == PER_AU * len(AU_CODES) + 1 and tuple(codes) == AU_CODES
    mean, scale = x.mean(axis=0), x.std(axis=0)
    scale[scale < 1e-9] = 1.0
    z = (x - mean) / scale
    weights = np.zeros((len(codes), x.shape[1]))
    bias = np.zeros(len(codes))
    for k in range(len(codes)):
        cols = np.arange(x.shape[1])
        if own_features and standard:  # this AU's block and the noise level
            cols = np.r_[PER_AU * k:PER_AU * k + PER_AU, x.shape[1] - 1]
        yk = y[:, k]
        p = float(np.clip(yk.mean(), 1e-3, 1 - 1e-3))
        if 0 < yk.sum() < len(yk):
            clf = LogisticRegression(C=1.0 / max(float(l2), 1e-9), max_iter=1000).fit(z[:, cols], yk)
            weights[k, cols] = clf.coef_[0]
            bias[k] = float(clf.intercept_[0])
        else:
            bias[k] = math.log(p / (1 - p))
    names = [f"f{i}" for i in range(x.shape[1])]
    if standard:
        names = [f"{c}_{kind}_{which}" for c in AU_CODES for kind in ("flow", "geometry", "blend")
                 for which in ("max", "min")] + ["noise"]
    return LinearAUModel(tuple(codes), tuple(names), mean, scale, weights, bias)
