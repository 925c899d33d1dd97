"""Scores for ME-VQA, spotting and spot-then-recognise (STRS), as the MEGC challenges define them: one
place to import them from.

Each family lives in the module named after it (say which variant you report; the official MEGC2025
VQA script is not public):

- :mod:`mevqa.megc.class_metrics`: accuracy, UF1, UAR, confusion matrices (scikit-learn), AU-set F1;
- :mod:`mevqa.megc.text_metrics`: BLEU (NLTK smoothed sentence BLEU, sacreBLEU corpus BLEU-4), ROUGE-1;
- :mod:`mevqa.megc.spotting_metrics`: interval IoU and matching, spotting P/R/F1, STRS;
- :mod:`mevqa.megc.vqa_metrics`: all ME-VQA scores of an answer set by question kind;
- :mod:`mevqa.megc.lvqa_metrics`: ME-LVQA (long-video) scores: count MAE/RMSE, AU-set F1/Jaccard,
  event-type UF1/UAR.
"""
from __future__ import annotations

from mevqa.megc.class_metrics import (
    PRF, AUSetScores, ConfusionMatrix, MetricInputError, accuracy, au_set_scores, confusion_matrix,
    per_class_scores, uar, uf1,
)
from mevqa.megc.spotting_metrics import (
    Interval, MatchResult, SpottingScores, StrsRow, StrsScores, iou, match_intervals, read_strs_csv,
    spotting_scores, strs_scores,
)
from mevqa.megc.text_metrics import Rouge1, bleu_corpus4, bleu_sentence_smoothed, rouge1, rouge1_f1, rouge1_recall
from mevqa.megc.vqa_metrics import VQAScores, vqa_scores

__all__ = [
    "MetricInputError", "PRF", "ConfusionMatrix", "confusion_matrix", "accuracy", "uf1", "uar",
    "per_class_scores", "AUSetScores", "au_set_scores",
    "bleu_sentence_smoothed", "bleu_corpus4", "Rouge1", "rouge1", "rouge1_recall", "rouge1_f1",
    "Interval", "iou", "MatchResult", "match_intervals", "SpottingScores", "spotting_scores",
    "StrsRow", "read_strs_csv", "StrsScores", "strs_scores", "VQAScores", "vqa_scores",
]
