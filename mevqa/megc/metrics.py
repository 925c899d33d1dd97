"""Scores for ME-VQA, spotting and spot-then-recognise (STRS), as the MEGC challenges define them.

Conventions (say which variant you report; the official MEGC2025 VQA script is not public):

- Answers are lower-cased and whitespace-collapsed before scoring. Empty or unknown predictions
  count as wrong; they are never dropped.
- ``uf1``: unweighted (macro) F1, the mean over classes of 2TP / (2TP + FP + FN). By default the
  classes are those present in the ground truth (MEGC's UF1: a class nobody has cannot be
  recalled, so it is not averaged in); a prediction outside that set is an error for the true
  class's recall and an FP for no class. Pass ``labels=`` to fix the class list.
- ``uar``: unweighted average recall, mean over the same classes of TP / (TP + FN).
- BLEU: :func:`bleu_sentence_smoothed` is the mean of NLTK sentence BLEU-4 (whitespace tokens,
  Chen & Cherry smoothing method 1), what most MEGC2025 reports call "BLEU";
  :func:`bleu_corpus4` is sacreBLEU corpus BLEU-4 (13a tokenizer). Both are on a 0-1 scale.
- ROUGE-1 (rouge-score, no stemming): mean recall and mean F1 over answers, reported separately.
- Spotting (MEGC 2020-2024): a prediction is a TP when its IoU with a ground-truth interval is
  >= 0.5, frames inclusive; each ground truth is hit at most once, other predictions are FPs;
  TP/FP/FN are pooled over all videos before precision/recall/F1.
- STRS (Liong, See & Chan 2023; MEGC2023-2025): spotting F1 x recognition F1, recognition scored
  on the spotted TPs only (here UF1 over emotions). The public reference implementation
  (``strs_metric.Evaluator``) has bugs this module does not copy: its "UAR" is the mean
  precision; its analysis FN count keys on the *predicted* emotion (so it is always 0); one
  prediction may hit several ground truths; and ground truth of subjects with no prediction rows
  is silently ignored. Tests in tests/test_metrics.py document each difference.
"""
from __future__ import annotations

import csv
import re
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Iterable, Mapping, Sequence

__all__ = [
    "MetricInputError", "PRF", "ConfusionMatrix", "confusion_matrix", "accuracy", "uf1", "uar",
    "per_class_scores", "AUSetScores", "au_set_scores",
    "bleu_sentence_smoothed", "bleu_corpus4", "Rouge1", "rouge1", "rouge1_recall", "rouge1_f1",
    "Interval", "iou", "MatchResult", "match_intervals", "SpottingScores", "spotting_scores",
    "StrsRow", "read_strs_csv", "StrsScores", "strs_scores", "VQAScores", "vqa_scores",
]


class MetricInputError(ValueError):
    """Inputs a metric cannot score (length mismatch, nothing to score, bad interval...)."""


def _clean(x) -> str:
    return "" if x is None else " ".join(str(x).lower().split())


def _pair(y_true, y_pred) -> tuple[list[str], list[str]]:
    t, p = [_clean(x) for x in y_true], [_clean(x) for x in y_pred]
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
    out = tuple(dict.fromkeys(_clean(x) for x in labels))
    if not out:
        raise MetricInputError("labels is empty")
    return out


def confusion_matrix(y_true, y_pred, labels=None) -> ConfusionMatrix:
    """Confusion matrix over ``labels`` (default: classes present in ``y_true``, sorted)."""
    t, p = _pair(y_true, y_pred)
    labs = _labels(t, labels)
    idx = {lab: i for i, lab in enumerate(labs)}
    counts = [[0] * len(labs) for _ in labs]
    other = [0] * len(labs)
    for a, b in zip(t, p):
        if a not in idx:
            continue  # a true class outside an explicit label list is not scored
        if b in idx:
            counts[idx[a]][idx[b]] += 1
        else:
            other[idx[a]] += 1
    return ConfusionMatrix(labs, tuple(tuple(r) for r in counts), tuple(other))


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
    """Unweighted F1: mean per-class F1 over the classes present in ``y_true`` (or ``labels``)."""
    scores = per_class_scores(y_true, y_pred, labels)
    return sum(s.f1 for s in scores.values()) / len(scores)


def uar(y_true, y_pred, labels=None) -> float:
    """Unweighted average recall: mean per-class recall over the same classes as :func:`uf1`."""
    scores = per_class_scores(y_true, y_pred, labels)
    return sum(s.recall for s in scores.values()) / len(scores)


# --------------------------------------------------------------------------------------------
# AU sets
# --------------------------------------------------------------------------------------------
def _au_set(item) -> set[str]:
    from mevqa.facs.codes import find_au

    if item is None:
        return set()
    if isinstance(item, str):
        tokens = re.split(r",|;|\band\b|\+", item)
    else:
        tokens = [str(x) for x in item]
    out = set()
    for tok in tokens:
        tok = _clean(tok).strip(" .")
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
        t, p = _au_set(t_item), _au_set(p_item)
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


# --------------------------------------------------------------------------------------------
# Text scores
# --------------------------------------------------------------------------------------------
def _texts(references, hypotheses) -> tuple[list[str], list[str]]:
    r, h = [_clean(x) for x in references], [_clean(x) for x in hypotheses]
    if len(r) != len(h):
        raise MetricInputError(f"{len(r)} references but {len(h)} hypotheses: lengths must match")
    if not r:
        raise MetricInputError("nothing to score: no answers")
    return r, h


def bleu_sentence_smoothed(references, hypotheses, *, max_n: int = 4) -> float:
    """Mean sentence BLEU (NLTK, uniform 1..max_n-gram weights, whitespace tokens, smoothing
    method 1 of Chen & Cherry 2014), 0-1. Note a one-word exact answer scores 0.1**0.75 ~ 0.18
    with max_n=4: that is how this variant behaves, not a bug."""
    from nltk.translate.bleu_score import SmoothingFunction, sentence_bleu

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
    import sacrebleu

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
    from rouge_score import rouge_scorer

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


# --------------------------------------------------------------------------------------------
# Spotting
# --------------------------------------------------------------------------------------------
KIND_VALUES = ("micro", "macro", None)


@dataclass(frozen=True)
class Interval:
    """Frames ``onset..offset`` inclusive (any integers, onset <= offset); ``kind`` "micro",
    "macro" or None (unknown)."""

    onset: int
    offset: int
    kind: str | None = None

    def __post_init__(self) -> None:
        for name in ("onset", "offset"):
            v = getattr(self, name)
            if isinstance(v, float) and v.is_integer():
                object.__setattr__(self, name, int(v))
            elif not isinstance(v, int) or isinstance(v, bool):
                raise MetricInputError(f"interval {name} must be an integer frame index, got {v!r}")
        if self.offset < self.onset:
            raise MetricInputError(f"interval offset {self.offset} is before onset {self.onset}")
        if self.kind not in KIND_VALUES:
            raise MetricInputError(f"interval kind must be 'micro', 'macro' or None, got {self.kind!r}")

    @property
    def length(self) -> int:
        return self.offset - self.onset + 1


def _interval(x) -> Interval:
    if isinstance(x, Interval):
        return x
    if isinstance(x, Mapping):
        return Interval(int(x["onset"]), int(x["offset"]), x.get("kind"))
    if isinstance(x, (tuple, list)) and len(x) in (2, 3):
        return Interval(*x)
    onset, offset = getattr(x, "onset", None), getattr(x, "offset", None)
    if onset is None or offset is None:
        raise MetricInputError(f"cannot read an interval from {x!r}: need onset and offset")
    return Interval(onset, offset, getattr(x, "kind", None))


def iou(a, b) -> float:
    """Intersection over union of two inclusive frame intervals."""
    a, b = _interval(a), _interval(b)
    inter = max(0, min(a.offset, b.offset) - max(a.onset, b.onset) + 1)
    return inter / (a.length + b.length - inter)


@dataclass(frozen=True)
class MatchResult:
    """``tp``: (pred index, gt index, IoU); ``fp``: unmatched prediction indices; ``fn``:
    unmatched ground-truth indices."""

    tp: tuple[tuple[int, int, float], ...]
    fp: tuple[int, ...]
    fn: tuple[int, ...]

    @property
    def counts(self) -> PRF:
        return PRF(len(self.tp), len(self.fp), len(self.fn))


def match_intervals(pred: Sequence, gt: Sequence, thr: float = 0.5) -> MatchResult:
    """One-to-one matching of predicted to ground-truth intervals at IoU >= ``thr``.

    Pairs are taken greedily by decreasing IoU (ties: earlier prediction, then earlier ground
    truth), so each ground truth is hit at most once and each prediction counts once; a second
    prediction on an already-hit ground truth is an FP (MEGC rule).
    """
    p = [_interval(x) for x in pred]
    g = [_interval(x) for x in gt]
    pairs = []
    for i, a in enumerate(p):
        for j, b in enumerate(g):
            v = iou(a, b)
            if v >= thr - 1e-12:  # IoU exactly at the threshold counts
                pairs.append((-v, i, j))
    pairs.sort()
    used_p, used_g, tp = set(), set(), []
    for neg, i, j in pairs:
        if i in used_p or j in used_g:
            continue
        used_p.add(i)
        used_g.add(j)
        tp.append((i, j, -neg))
    tp.sort()
    return MatchResult(tuple(tp), tuple(i for i in range(len(p)) if i not in used_p),
                       tuple(j for j in range(len(g)) if j not in used_g))


@dataclass(frozen=True)
class SpottingScores:
    """Spotting results pooled over videos. ``micro``/``macro`` are the micro- and
    macro-*expression* results (None when kinds are unknown); ``overall_mode`` says how
    ``overall`` was formed: "sum_of_kinds" (MEGC: micro + macro counts, matching within a kind)
    or "kind_agnostic" (matching ignores kinds; used when some interval has no kind)."""

    overall: PRF
    micro: PRF | None
    macro: PRF | None
    overall_mode: str
    n_videos: int

    def to_dict(self) -> dict:
        return {"overall": self.overall.to_dict(),
                "micro": self.micro.to_dict() if self.micro else None,
                "macro": self.macro.to_dict() if self.macro else None,
                "overall_mode": self.overall_mode, "n_videos": self.n_videos}


def _kind(iv: Interval, fps: float | None, micro_max_s: float) -> str | None:
    if iv.kind is not None:
        return iv.kind
    if fps is None:
        return None
    # MEGC: a micro-expression lasts at most 0.5 s from onset to offset.
    return "micro" if iv.length / fps <= micro_max_s else "macro"


def spotting_scores(pred_by_video: Mapping, gt_by_video: Mapping, *, thr: float = 0.5,
                    fps: float | None = None, micro_max_s: float = 0.5) -> SpottingScores:
    """Spotting precision/recall/F1 pooled over videos, overall and per kind.

    ``*_by_video`` map a video id to intervals (:class:`Interval`, (onset, offset[, kind]) or
    dicts). A video missing on one side counts all its intervals as FP (or FN).

    How an interval's kind is decided: its own ``kind`` when set; otherwise, if ``fps`` is
    given, by duration ((offset - onset + 1) / fps <= ``micro_max_s`` -> micro, else macro);
    otherwise unknown. When every interval has a kind, micro and macro are matched separately
    and ``overall`` is their sum (a well-placed prediction of the wrong kind is one FP and one
    FN, as in MEGC); otherwise ``overall`` matches kind-agnostically and micro/macro use only the
    intervals whose kind is known.
    """
    videos = list(dict.fromkeys(list(gt_by_video) + list(pred_by_video)))
    preds = {v: [_interval(x) for x in pred_by_video.get(v, ()) or ()] for v in videos}
    gts = {v: [_interval(x) for x in gt_by_video.get(v, ()) or ()] for v in videos}
    all_known = all(_kind(iv, fps, micro_max_s) is not None
                    for v in videos for iv in preds[v] + gts[v])
    per_kind = {"micro": PRF(0, 0, 0), "macro": PRF(0, 0, 0)}
    agnostic = PRF(0, 0, 0)
    any_kind = False
    for v in videos:
        for kind in per_kind:
            p = [iv for iv in preds[v] if _kind(iv, fps, micro_max_s) == kind]
            g = [iv for iv in gts[v] if _kind(iv, fps, micro_max_s) == kind]
            any_kind = any_kind or bool(p or g)
            per_kind[kind] = per_kind[kind] + match_intervals(p, g, thr).counts
        if not all_known:
            agnostic = agnostic + match_intervals(preds[v], gts[v], thr).counts
    if all_known:
        overall, mode = per_kind["micro"] + per_kind["macro"], "sum_of_kinds"
    else:
        overall, mode = agnostic, "kind_agnostic"
    has_kinds = all_known or any_kind
    return SpottingScores(overall=overall,
                          micro=per_kind["micro"] if has_kinds else None,
                          macro=per_kind["macro"] if has_kinds else None,
                          overall_mode=mode, n_videos=len(videos))


# --------------------------------------------------------------------------------------------
# STRS
# --------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class StrsRow:
    """One row of an STRS CSV (``subject,video,onset,offset,emotion``)."""

    subject: str
    video: str
    onset: int
    offset: int
    emotion: str

    @property
    def key(self) -> tuple[str, str]:
        return (_subject_key(self.subject), str(self.video).strip())


def _subject_key(s) -> str:
    # "1", "01" and 1 are the same subject in these CSVs.
    s = str(s).strip()
    return str(int(s)) if s.isdigit() else s


_STRS_COLUMNS = ("subject", "video", "onset", "offset", "emotion")


def read_strs_csv(path: str | Path) -> list[StrsRow]:
    """Read an STRS CSV with header ``subject,video,onset,offset,emotion`` (any order, case or
    spacing; a UTF-8 BOM is fine). Raises :class:`MetricInputError` with the line number."""
    path = Path(path)
    if not path.is_file():
        raise MetricInputError(f"STRS CSV not found: {path}")
    rows: list[StrsRow] = []
    with path.open(newline="", encoding="utf-8-sig") as fh:
        reader = csv.reader(fh)
        header = next(reader, None)
        if header is None:
            raise MetricInputError(f"{path}: empty file, expected header {','.join(_STRS_COLUMNS)}")
        cols = [h.strip().lower() for h in header]
        missing = [c for c in _STRS_COLUMNS if c not in cols]
        if missing:
            raise MetricInputError(f"{path}:1: missing column(s) {', '.join(missing)}; "
                                   f"expected {','.join(_STRS_COLUMNS)}")
        idx = {c: cols.index(c) for c in _STRS_COLUMNS}
        for lineno, rec in enumerate(reader, start=2):
            if not any(x.strip() for x in rec):
                continue
            try:
                vals = {c: rec[i].strip() for c, i in idx.items()}
                onset, offset = int(float(vals["onset"])), int(float(vals["offset"]))
            except (IndexError, ValueError):
                raise MetricInputError(f"{path}:{lineno}: cannot read row {rec!r} "
                                       f"(need integer onset and offset)") from None
            if offset < onset:
                raise MetricInputError(f"{path}:{lineno}: offset {offset} is before onset {onset}")
            rows.append(StrsRow(vals["subject"], vals["video"], onset, offset, vals["emotion"].lower()))
    return rows


@dataclass(frozen=True)
class StrsScores:
    """STRS = ``spotting.f1 * recognition_uf1``. Recognition is scored on spotted TPs only;
    ``recognition`` holds per-emotion TP/FP/FN there (FN keyed on the true emotion)."""

    strs: float
    spotting: PRF
    recognition_uf1: float
    recognition_uar: float
    recognition_accuracy: float
    recognition: dict[str, PRF]
    labels: tuple[str, ...]

    def to_dict(self) -> dict:
        return {"strs": self.strs, "spotting": self.spotting.to_dict(),
                "recognition_uf1": self.recognition_uf1, "recognition_uar": self.recognition_uar,
                "recognition_accuracy": self.recognition_accuracy,
                "recognition": {k: v.to_dict() for k, v in self.recognition.items()},
                "labels": list(self.labels)}


def _strs_row(x) -> StrsRow:
    if isinstance(x, StrsRow):
        return x
    if isinstance(x, Mapping):
        return StrsRow(str(x["subject"]), str(x["video"]), int(x["onset"]), int(x["offset"]),
                       _clean(x.get("emotion", "")))
    raise MetricInputError(f"cannot read an STRS row from {x!r}")


def strs_scores(pred_rows: Iterable, gt_rows: Iterable, *, thr: float = 0.5,
                labels: Sequence[str] | None = None) -> StrsScores:
    """Spot-then-recognise score.

    Rows are :class:`StrsRow` or dicts. Videos are keyed by (subject, video) with numeric
    subjects compared as numbers. Spotting: one-to-one IoU matching per video
    (:func:`match_intervals`), pooled. Recognition: UF1 over emotions of the TP pairs (true
    emotion vs predicted emotion); ``labels`` default to the emotions present among the spotted
    ground truths. No TP -> recognition 0 and STRS 0.
    """
    preds, gts = [_strs_row(r) for r in pred_rows], [_strs_row(r) for r in gt_rows]
    videos = list(dict.fromkeys([r.key for r in gts] + [r.key for r in preds]))
    spot = PRF(0, 0, 0)
    y_true, y_pred = [], []
    for key in videos:
        p = [r for r in preds if r.key == key]
        g = [r for r in gts if r.key == key]
        m = match_intervals([(r.onset, r.offset) for r in p], [(r.onset, r.offset) for r in g], thr)
        spot = spot + m.counts
        for i, j, _ in m.tp:
            y_true.append(g[j].emotion)
            y_pred.append(p[i].emotion)
    if y_true:
        rec = per_class_scores(y_true, y_pred, labels)
        r_uf1 = sum(s.f1 for s in rec.values()) / len(rec)
        r_uar = sum(s.recall for s in rec.values()) / len(rec)
        r_acc = accuracy(y_true, y_pred)
        labs = tuple(rec)
    else:
        rec, r_uf1, r_uar, r_acc = {}, 0.0, 0.0, 0.0
        labs = tuple(_clean(x) for x in labels) if labels else ()
    return StrsScores(strs=spot.f1 * r_uf1, spotting=spot, recognition_uf1=r_uf1,
                      recognition_uar=r_uar, recognition_accuracy=r_acc, recognition=rec,
                      labels=labs)


# --------------------------------------------------------------------------------------------
# ME-VQA in one call
# --------------------------------------------------------------------------------------------
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
    from mevqa.answer.questions import normalise_answer, question_type

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
