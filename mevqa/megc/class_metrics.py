"""Classification and AU-set scores for ME-VQA: accuracy, UF1, UAR, confusion matrices (scikit-learn),
per-class and per-AU counts.

Conventions (the official MEGC2025 VQA script is not public; say which variant you report):

- Answers are lower-cased and whitespace-collapsed before scoring. Empty or unknown predictions
  count as wrong; they are never dropped.
- ``uf1``: unweighted (macro) F1, the mean over classes of 2TP / (2TP + FP + FN)
  (``sklearn.metrics.f1_score(average="macro")``). By default the classes are those present in the
  ground truth (MEGC's UF1: a class nobody has cannot be recalled, so it is not averaged in); a
  prediction outside that set is an error for the true class's recall and an FP for no class. Pass
  ``labels=`` to fix the class list.
- ``uar``: unweighted average recall, mean over the same classes of TP / (TP + FN)
  (``sklearn.metrics.recall_score(average="macro")``; with the default classes this is the balanced
  accuracy).
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Sequence

from sklearn import metrics as skm

from mevqa.facs.codes import find_au

__all__ = [
    "MetricInputError", "clean_label", "PRF", "ConfusionMatrix", "confusion_matrix", "accuracy", "uf1", "uar",
    "per_class_scores", "AUSetScores", "au_set", "au_set_scores",
]


class MetricInputError(ValueError):
    """Inputs a metric cannot score (length mismatch, nothing to score, bad interval...)."""


def clean_label(x) -> str:
    """Lower-cased, whitespace-collapsed; None is ""."""
    return "" if x is None else " ".join(str(x).lower().split())


def _pair(y_true, y_pred) -> tuple[list[str], list[str]]:
    t, p = [clean_label(x) for x in y_true], [clean_label(x) for x in y_pred]
    if len(t) != len(p):
        raise MetricInputError(f"{len(t)} true labels but {len(p)} predictions: lengths must match")
    if not t:
        raise MetricInputError("nothing to score: empty label lists")
    return t, p


# --------------------------------------------------------------------------------------------
# Classification
# --------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class PRF:
    """Counts and precision/recall/F1 (0 where a denominator is 0)."""

    tp: int
    fp: int
    fn: int

    @property
    def precision(self) -> float:
        return self.tp / (self.tp + self.fp) if self.tp + self.fp else 0.0

    @property
    def recall(self) -> float:
        return self.tp / (self.tp + self.fn) if self.tp + self.fn else 0.0

    @property
    def f1(self) -> float:
        d = 2 * self.tp + self.fp + self.fn
        return 2 * self.tp / d if d else 0.0

    def __add__(self, other: "PRF") -> "PRF":
        return PRF(self.tp + other.tp, self.fp + other.fp, self.fn + other.fn)

    def to_dict(self) -> dict:
        return {"tp": self.tp, "fp": self.fp, "fn": self.fn, "precision": self.precision,
                "recall": self.recall, "f1": self.f1}


@dataclass(frozen=True)
class ConfusionMatrix:
    """``counts[i][j]``: items of true class ``labels[i]`` predicted as ``labels[j]``;
    ``other[i]``: items of class ``labels[i]`` predicted as something outside ``labels``
    (including empty answers)."""

    labels: tuple[str, ...]
    counts: tuple[tuple[int, ...], ...]
    other: tuple[int, ...]

    def to_dict(self) -> dict:
        return {"labels": list(self.labels), "counts": [list(r) for r in self.counts],
                "other": list(self.other)}


def _labels(t: list[str], labels) -> tuple[str, ...]:
    if labels is None:
        return tuple(sorted(set(t)))
    out = tuple(dict.fromkeys(clean_label(x) for x in labels))
    if not out:
        raise MetricInputError("labels is empty")
    return out


# A prediction outside the class list (empty answers included) is this one label for scikit-learn:
# an error for the true class's recall, a false positive for no class.
_OTHER = "\x00(other)"


def _scored(y_true, y_pred, labels) -> tuple[tuple[str, ...], list[str], list[str]]:
    """(classes, true labels, predictions) with predictions outside the classes mapped to ``_OTHER``
    and items whose true class is outside an explicit class list left out (they are not scored)."""
    t, p = _pair(y_true, y_pred)
    labs = _labels(t, labels)
    known = set(labs)
    pairs = [(a, b if b in known else _OTHER) for a, b in zip(t, p) if a in known]
    return labs, [a for a, _ in pairs], [b for _, b in pairs]


def confusion_matrix(y_true, y_pred, labels=None) -> ConfusionMatrix:
    """Confusion matrix over ``labels`` (default: classes present in ``y_true``, sorted), from
    ``sklearn.metrics.confusion_matrix``; the column of answers outside ``labels`` is ``other``."""
    labs, t, p = _scored(y_true, y_pred, labels)
    n = len(labs)
    if not t:
        return ConfusionMatrix(labs, tuple((0,) * n for _ in labs), (0,) * n)
    m = skm.confusion_matrix(t, p, labels=[*labs, _OTHER])
    return ConfusionMatrix(labs, tuple(tuple(int(x) for x in row[:n]) for row in m[:n]),
                           tuple(int(x) for x in m[:n, n]))


def per_class_scores(y_true, y_pred, labels=None) -> dict[str, PRF]:
    """TP/FP/FN per class (see module docstring for the class list)."""
    cm = confusion_matrix(y_true, y_pred, labels)
    out = {}
    for i, lab in enumerate(cm.labels):
        tp = cm.counts[i][i]
        fn = sum(cm.counts[i]) - tp + cm.other[i]
        fp = sum(cm.counts[r][i] for r in range(len(cm.labels))) - tp
        out[lab] = PRF(tp, fp, fn)
    return out


def accuracy(y_true, y_pred) -> float:
    """Fraction of exact (lower-cased) matches; empty predictions are wrong."""
    t, p = _pair(y_true, y_pred)
    return sum(a == b and a != "" for a, b in zip(t, p)) / len(t)


def uf1(y_true, y_pred, labels=None) -> float:
    """Unweighted F1: mean per-class F1 over the classes present in ``y_true`` (or ``labels``);
    ``sklearn.metrics.f1_score(average="macro")``, a class without TP, FP or FN scoring 0."""
    labs, t, p = _scored(y_true, y_pred, labels)
    if not t:
        return 0.0
    return float(skm.f1_score(t, p, labels=list(labs), average="macro", zero_division=0.0))


def uar(y_true, y_pred, labels=None) -> float:
    """Unweighted average recall: mean per-class recall over the same classes as :func:`uf1`;
    ``sklearn.metrics.recall_score(average="macro")`` (the balanced accuracy when the classes are
    those of the truth)."""
    labs, t, p = _scored(y_true, y_pred, labels)
    if not t:
        return 0.0
    return float(skm.recall_score(t, p, labels=list(labs), average="macro", zero_division=0.0))


# --------------------------------------------------------------------------------------------
# AU sets
# --------------------------------------------------------------------------------------------
def au_set(item) -> set[str]:
    """AU names in canonical MEGC spelling from an answer string ("brow lowerer, AU7") or a list;
    unknown names are kept as they are (they then count as false positives)."""
    if item is None:
        return set()
    if isinstance(item, str):
        tokens = re.split(r",|;|\band\b|\+", item)
    else:
        tokens = [str(x) for x in item]
    out = set()
    for tok in tokens:
        tok = clean_label(tok).strip(" .")
        if not tok:
            continue
        au = find_au(tok)
        out.add(au.name if au else tok)  # unknown names stay, and so count as false positives
    return out


@dataclass(frozen=True)
class AUSetScores:
    """AU-list scores. ``micro``: pooled over AU names; ``macro_f1``: mean F1 over AUs present in
    the ground truth; ``per_au``: per AU name (truth or predicted); ``exact``: fraction of items
    whose predicted set equals the true set."""

    micro: PRF
    macro_f1: float
    exact: float
    per_au: dict[str, PRF] = field(default_factory=dict)

    def to_dict(self) -> dict:
        return {"micro": self.micro.to_dict(), "macro_f1": self.macro_f1, "exact": self.exact,
                "per_au": {k: v.to_dict() for k, v in self.per_au.items()}}


def au_set_scores(true_sets: Sequence, pred_sets: Sequence) -> AUSetScores:
    """Score predicted AU lists against true ones.

    Items are MEGC answer strings ("brow lowerer, lid tightener") or lists of names or codes;
    names are matched in canonical MEGC spelling (codes like "AU12" and aliases accepted).
    """
    if len(true_sets) != len(pred_sets):
        raise MetricInputError(f"{len(true_sets)} true AU lists but {len(pred_sets)} predictions")
    if not true_sets:
        raise MetricInputError("nothing to score: empty AU lists")
    counts: dict[str, list[int]] = {}
    exact = 0
    for t_item, p_item in zip(true_sets, pred_sets):
        t, p = au_set(t_item), au_set(p_item)
        exact += t == p
        for name in t | p:
            c = counts.setdefault(name, [0, 0, 0])
            c[0] += name in t and name in p
            c[1] += name in p and name not in t
            c[2] += name in t and name not in p
    per_au = {k: PRF(*v) for k, v in sorted(counts.items())}
    micro = sum(per_au.values(), PRF(0, 0, 0))
    in_truth = [s for s in per_au.values() if s.tp + s.fn > 0]
    macro = sum(s.f1 for s in in_truth) / len(in_truth) if in_truth else 0.0
    return AUSetScores(micro=micro, macro_f1=macro, exact=exact / len(true_sets), per_au=per_au)


