"""Text scores of ME-VQA answers: BLEU (NLTK smoothed sentence BLEU, sacreBLEU corpus BLEU-4) and ROUGE-1
(rouge-score).

- BLEU: :func:`bleu_sentence_smoothed` is the mean of NLTK sentence BLEU-4 (whitespace tokens,
  Chen & Cherry 2014 smoothing method 1), what most MEGC2025 reports call "BLEU";
  :func:`bleu_corpus4` is sacreBLEU corpus BLEU-4 (13a tokenizer; Post 2018). Both are on a 0-1 scale.
- ROUGE-1 (Lin 2004; rouge-score, no stemming): mean recall and mean F1 over answers, reported separately.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass

import sacrebleu
from nltk.translate.bleu_score import SmoothingFunction, sentence_bleu
from rouge_score import rouge_scorer

from mevqa.megc.class_metrics import MetricInputError, clean_label

__all__ = ["bleu_sentence_smoothed", "bleu_corpus4", "Rouge1", "rouge1", "rouge1_recall", "rouge1_f1"]


def _texts(references, hypotheses) -> tuple[list[str], list[str]]:
    r, h = [clean_label(x) for x in references], [clean_label(x) for x in hypotheses]
    if len(r) != len(h):
        raise MetricInputError(f"{len(r)} references but {len(h)} hypotheses: lengths must match")
    if not r:
        raise MetricInputError("nothing to score: no answers")
    return r, h


def bleu_sentence_smoothed(references, hypotheses, *, max_n: int = 4) -> float:
    """Mean sentence BLEU (NLTK, uniform 1..max_n-gram weights, whitespace tokens, smoothing
    method 1 of Chen & Cherry 2014), 0-1. Note a one-word exact answer scores 0.1**0.75 ~ 0.18
    with max_n=4: that is how this variant behaves, not a bug."""
    r, h = _texts(references, hypotheses)
    smooth = SmoothingFunction().method1
    weights = tuple([1.0 / max_n] * max_n)
    total = 0.0
    for ref, hyp in zip(r, h):
        if not hyp.split() or not ref.split():
            continue  # empty answer: BLEU 0
        total += sentence_bleu([ref.split()], hyp.split(), weights=weights, smoothing_function=smooth)
    return total / len(r)


def bleu_corpus4(references, hypotheses) -> float:
    """sacreBLEU corpus BLEU-4 (13a tokenizer, no smoothing beyond sacreBLEU's default), 0-1."""
    r, h = _texts(references, hypotheses)
    return sacrebleu.corpus_bleu(h, [r]).score / 100.0


@dataclass(frozen=True)
class Rouge1:
    """Mean ROUGE-1 precision, recall and F1 over answers (rouge-score, no stemming)."""

    precision: float
    recall: float
    f1: float

    def to_dict(self) -> dict:
        return asdict(self)


def rouge1(references, hypotheses) -> Rouge1:
    """Mean ROUGE-1 over answer pairs."""
    r, h = _texts(references, hypotheses)
    scorer = rouge_scorer.RougeScorer(["rouge1"], use_stemmer=False)
    p = rc = f = 0.0
    for ref, hyp in zip(r, h):
        s = scorer.score(ref, hyp)["rouge1"]
        p, rc, f = p + s.precision, rc + s.recall, f + s.fmeasure
    n = len(r)
    return Rouge1(precision=p / n, recall=rc / n, f1=f / n)


def rouge1_recall(references, hypotheses) -> float:
    """Mean ROUGE-1 recall."""
    return rouge1(references, hypotheses).recall


def rouge1_f1(references, hypotheses) -> float:
    """Mean ROUGE-1 F1."""
    return rouge1(references, hypotheses).f1
