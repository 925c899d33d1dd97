"""Scores for MEGC2026 long-video questions (ME-LVQA).

The official ME-LVQA metrics are not public (only the test questions are). These are this package's
definitions, named so a report says which one it gives:

- **counts** ("How many (micro-/macro-)expression events ..."): ``count_mae`` and ``count_rmse``, the mean
  absolute and the root-mean-square error of the integer answers; an answer that holds no integer is
  scored as 0 events (and counted as unparsable). Also per count kind (all, micro, macro) and the exact
  rate.
- **AU sets** ("What distinct action units ..."): ``au_f1_micro`` (TP/FP/FN pooled over AU names, as the
  ME-VQA AU-list score), ``au_f1_mean`` (mean per-question F1 of the two sets) and ``au_jaccard`` (mean
  per-question |P ∩ T| / |P ∪ T|); two empty sets agree (1.0). Names match in MEGC spelling, codes
  ("AU12") and aliases accepted; an answer "none" is the empty set.
- **event types** ("What is the expression type of the N-th expression event ..."): ``type_uf1`` and
  ``type_uar`` over the classes micro-expression and macro-expression present in the truth
  (scikit-learn, :func:`mevqa.megc.class_metrics.uf1`), and the accuracy.
"""
from __future__ import annotations

import math
import re
from dataclasses import dataclass, field
from typing import Sequence

from mevqa.answer.lvqa import lvqa_question
from mevqa.megc.class_metrics import PRF, MetricInputError, accuracy, au_set, clean_label, uar, uf1

__all__ = ["LVQA_METRICS", "parse_count", "parse_event_type", "CountScores", "count_scores", "au_set_agreement",
           "TypeScores", "type_scores", "LvqaScores", "lvqa_scores"]

LVQA_METRICS = {
    "count_mae": "mean absolute error of the integer answers to the counting questions (no integer: 0)",
    "count_rmse": "root-mean-square error of the same",
    "count_exact": "fraction of counting answers equal to the truth",
    "au_f1_micro": "distinct-AU questions: TP/FP/FN pooled over AU names",
    "au_f1_mean": "distinct-AU questions: mean per-question F1 of the two AU sets (both empty: 1)",
    "au_jaccard": "distinct-AU questions: mean per-question |P & T| / |P | T| (both empty: 1)",
    "type_uf1": "N-th event type questions: macro F1 over micro-/macro-expression present in the truth",
    "type_uar": "N-th event type questions: mean per-class recall over the same classes",
    "type_accuracy": "N-th event type questions: fraction right",
}

_INT_RE = re.compile(r"-?\d{1,9}")
_NUMBER_WORDS = {w: i for i, w in enumerate("zero one two three four five six seven eight nine ten".split())}


def parse_count(answer: str | None) -> int | None:
    """The event count an answer gives: its first integer ("3", "3 events"), or a number word up to
    ten ("three"); None when it gives none."""
    text = clean_label(answer)[:200]
    if m := _INT_RE.search(text):
        return int(m.group())
    return next((_NUMBER_WORDS[w] for w in re.findall(r"[a-z]+", text) if w in _NUMBER_WORDS), None)


def parse_event_type(answer: str | None) -> str:
    """"micro-expression", "macro-expression", or the cleaned answer when it names neither."""
    text = clean_label(answer)
    has_micro, has_macro = "micro" in text, "macro" in text
    if has_micro != has_macro:
        return "micro-expression" if has_micro else "macro-expression"
    return text


@dataclass(frozen=True)
class CountScores:
    n: int
    mae: float
    rmse: float
    exact: float
    unparsable: int

    def to_dict(self) -> dict:
        return {"n": self.n, "mae": self.mae, "rmse": self.rmse, "exact": self.exact, "unparsable": self.unparsable}


def count_scores(true_counts: Sequence, pred_answers: Sequence) -> CountScores:
    """MAE, RMSE and exact rate of predicted counts (answers parsed by :func:`parse_count`)."""
    if len(true_counts) != len(pred_answers):
        raise MetricInputError(f"{len(true_counts)} true counts but {len(pred_answers)} predictions")
    if not true_counts:
        raise MetricInputError("nothing to score: no counting questions")
    truth = []
    for t in true_counts:
        v = parse_count(str(t))
        if v is None:
            raise MetricInputError(f"ground-truth count {t!r} is not an integer")
        truth.append(v)
    parsed = [parse_count(p) for p in pred_answers]
    errs = [abs((p if p is not None else 0) - t) for p, t in zip(parsed, truth)]
    n = len(errs)
    return CountScores(n=n, mae=sum(errs) / n, rmse=math.sqrt(sum(e * e for e in errs) / n),
                       exact=sum(e == 0 and p is not None for e, p in zip(errs, parsed)) / n,
                       unparsable=sum(p is None for p in parsed))


def _aus(answer) -> set[str]:
    return set() if clean_label(answer) in ("none", "no action unit", "") else au_set(answer)


@dataclass(frozen=True)
class AUAgreement:
    n: int
    micro: PRF
    mean_f1: float
    jaccard: float

    def to_dict(self) -> dict:
        return {"n": self.n, "micro": self.micro.to_dict(), "mean_f1": self.mean_f1, "jaccard": self.jaccard}


def au_set_agreement(true_sets: Sequence, pred_sets: Sequence) -> AUAgreement:
    """Micro F1 over AU names, mean per-question F1 and mean Jaccard of AU-set answers."""
    if len(true_sets) != len(pred_sets):
        raise MetricInputError(f"{len(true_sets)} true AU sets but {len(pred_sets)} predictions")
    if not true_sets:
        raise MetricInputError("nothing to score: no AU-set questions")
    micro, f1s, jac = PRF(0, 0, 0), [], []
    for t_item, p_item in zip(true_sets, pred_sets):
        t, p = _aus(t_item), _aus(p_item)
        c = PRF(len(t & p), len(p - t), len(t - p))
        micro = micro + c
        f1s.append(c.f1 if t or p else 1.0)
        jac.append(len(t & p) / len(t | p) if t or p else 1.0)
    n = len(f1s)
    return AUAgreement(n=n, micro=micro, mean_f1=sum(f1s) / n, jaccard=sum(jac) / n)


@dataclass(frozen=True)
class TypeScores:
    n: int
    uf1: float
    uar: float
    accuracy: float

    def to_dict(self) -> dict:
        return {"n": self.n, "uf1": self.uf1, "uar": self.uar, "accuracy": self.accuracy}


def type_scores(true_types: Sequence, pred_answers: Sequence) -> TypeScores:
    """UF1, UAR and accuracy of event-type answers (parsed by :func:`parse_event_type`)."""
    t = [parse_event_type(x) for x in true_types]
    p = [parse_event_type(x) for x in pred_answers]
    return TypeScores(n=len(t), uf1=uf1(t, p), uar=uar(t, p), accuracy=accuracy(t, p))


@dataclass(frozen=True)
class LvqaScores:
    """ME-LVQA scores by question kind; a kind with no questions is None."""

    n: int
    counts: CountScores | None
    counts_by_kind: dict[str, CountScores] = field(default_factory=dict)  # "all", "micro", "macro"
    aus: AUAgreement | None = None
    types: TypeScores | None = None
    other: int = 0                                                         # not ME-LVQA questions (unscored)

    def to_dict(self) -> dict:
        return {"n": self.n, "counts": self.counts.to_dict() if self.counts else None,
                "counts_by_kind": {k: v.to_dict() for k, v in self.counts_by_kind.items()},
                "aus": self.aus.to_dict() if self.aus else None,
                "types": self.types.to_dict() if self.types else None, "other": self.other,
                "metrics": LVQA_METRICS}


def lvqa_scores(questions: Sequence[str], references: Sequence[str], predictions: Sequence[str]) -> LvqaScores:
    """Score ME-LVQA answers, split by question kind (:func:`mevqa.answer.lvqa.lvqa_question`)."""
    if not (len(questions) == len(references) == len(predictions)):
        raise MetricInputError(f"{len(questions)} questions, {len(references)} references, "
                               f"{len(predictions)} predictions: lengths must match")
    if not questions:
        raise MetricInputError("nothing to score: no questions")
    by: dict[str, tuple[list, list]] = {}
    other = 0
    for q, r, p in zip(questions, references, predictions):
        kind = lvqa_question(q)
        if kind is None:
            other += 1
            continue
        key = f"count_{kind.which}" if kind.kind == "count" else kind.kind
        by.setdefault(key, ([], []))
        by[key][0].append(r)
        by[key][1].append("" if p is None else str(p))
    counts_by_kind = {k[6:]: count_scores(*v) for k, v in by.items() if k.startswith("count_")}
    all_counts = [x for k, v in by.items() if k.startswith("count_") for x in zip(*v)]
    counts = count_scores([t for t, _ in all_counts], [p for _, p in all_counts]) if all_counts else None
    return LvqaScores(n=len(questions), counts=counts, counts_by_kind=counts_by_kind,
                      aus=au_set_agreement(*by["aus"]) if "aus" in by else None,
                      types=type_scores(*by["type"]) if "type" in by else None, other=other)
