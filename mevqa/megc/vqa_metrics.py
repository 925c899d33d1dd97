"""ME-VQA scores in one call: answers split by question kind (:func:`mevqa.answer.questions.question_type`),
each kind with its metric, and the text scores over all answers."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

from mevqa.answer.questions import normalise_answer, question_type
from mevqa.megc.class_metrics import AUSetScores, MetricInputError, accuracy, au_set_scores, uar, uf1
from mevqa.megc.text_metrics import bleu_corpus4, bleu_sentence_smoothed, rouge1

__all__ = ["VQAScores", "vqa_scores"]


@dataclass(frozen=True)
class VQAScores:
    """ME-VQA scores by question kind; a kind with no questions is None.

    ``bleu_sentence_smoothed``, ``bleu_corpus4``, ``rouge1_recall``, ``rouge1_f1`` are computed
    over all answers (MEGC2025 practice)."""

    n: int
    coarse_uf1: float | None
    coarse_uar: float | None
    fine_uf1: float | None
    fine_uar: float | None
    au_list: AUSetScores | None
    presence_accuracy: float | None
    side_accuracy: float | None
    analysis_exact: float | None
    bleu_sentence_smoothed: float
    bleu_corpus4: float
    rouge1_recall: float
    rouge1_f1: float
    counts: dict[str, int]

    def to_dict(self) -> dict:
        d = {k: getattr(self, k) for k in self.__dataclass_fields__}
        d["au_list"] = self.au_list.to_dict() if self.au_list else None
        return d


def vqa_scores(questions: Sequence[str], references: Sequence[str], predictions: Sequence[str],
               *, normalise: bool = False) -> VQAScores:
    """Score ME-VQA answers, splitting by :func:`mevqa.answer.questions.question_type`.

    With ``normalise=True`` predictions first go through
    :func:`mevqa.answer.questions.normalise_answer` for their question.
    """
    if not (len(questions) == len(references) == len(predictions)):
        raise MetricInputError(f"{len(questions)} questions, {len(references)} references, "
                               f"{len(predictions)} predictions: lengths must match")
    if not questions:
        raise MetricInputError("nothing to score: no questions")
    kinds = [question_type(q).kind for q in questions]
    preds = [normalise_answer(q, p) if normalise else ("" if p is None else str(p))
             for q, p in zip(questions, predictions)]
    by: dict[str, tuple[list, list]] = {}
    for k, r, p in zip(kinds, references, preds):
        by.setdefault(k, ([], []))
        by[k][0].append(r)
        by[k][1].append(p)

    def get(kind, fn):
        return fn(*by[kind]) if kind in by else None

    r1 = rouge1(references, preds)

    return VQAScores(
        n=len(questions),
        coarse_uf1=get("coarse", uf1), coarse_uar=get("coarse", uar),
        fine_uf1=get("fine", uf1), fine_uar=get("fine", uar),
        au_list=get("au_list", au_set_scores),
        presence_accuracy=get("au_presence", accuracy),
        side_accuracy=get("au_side", accuracy),
        analysis_exact=get("analysis", accuracy),
        bleu_sentence_smoothed=bleu_sentence_smoothed(references, preds),
        bleu_corpus4=bleu_corpus4(references, preds),
        rouge1_recall=r1.recall,
        rouge1_f1=r1.f1,
        counts={k: len(v[0]) for k, v in by.items()},
    )
