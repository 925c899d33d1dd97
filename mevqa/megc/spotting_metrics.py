"""Spotting and spot-then-recognise (STRS) scores, as the MEGC challenges define them.

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
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable, Mapping, Sequence

from mevqa.megc.class_metrics import PRF, MetricInputError, accuracy, clean_label, per_class_scores, uar, uf1

__all__ = [
    "Interval", "iou", "MatchResult", "match_intervals", "SpottingScores", "spotting_scores",
    "StrsRow", "read_strs_csv", "StrsScores", "strs_scores",
]


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
                       clean_label(x.get("emotion", "")))
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
        r_uf1, r_uar = uf1(y_true, y_pred, labels), uar(y_true, y_pred, labels)
        r_acc = accuracy(y_true, y_pred)
        labs = tuple(rec)
    else:
        rec, r_uf1, r_uar, r_acc = {}, 0.0, 0.0, 0.0
        labs = tuple(clean_label(x) for x in labels) if labels else ()
    return StrsScores(strs=spot.f1 * r_uf1, spotting=spot, recognition_uf1=r_uf1,
                      recognition_uar=r_uar, recognition_accuracy=r_acc, recognition=rec,
                      labels=labs)
