"""Scoring an ME-LVQA (MEGC2026 long-video) answer set against ground truth, and its report.

``mevqa eval --score PRED.jsonl --gt GT.jsonl`` chooses these scores when the ground truth holds
long-video questions (:func:`is_lvqa_file`); the metrics are :mod:`mevqa.megc.lvqa_metrics` (not the
official ones, which are not public).
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from mevqa.answer.lvqa import lvqa_question
from mevqa.megc.lvqa_metrics import LVQA_METRICS, LvqaScores, lvqa_scores
from mevqa.megc.records import read_questions, record_dataset
from mevqa.megc.report import failures_by_clip, fmt, md_table, read_scoring_inputs

__all__ = ["is_lvqa_file", "LvqaReport", "score_lvqa", "lvqa_markdown"]


def is_lvqa_file(path: str | Path) -> bool:
    """True when most questions of a MEGC JSONL file are long-video ones."""
    recs = read_questions(Path(path))
    return sum(lvqa_question(r.question) is not None for r in recs) * 2 > len(recs)


@dataclass
class LvqaReport:
    pred: str
    gt: str
    n_gt: int
    n_pred: int
    missing: int                      # ground-truth questions without a prediction (scored as "")
    overall: LvqaScores
    by_dataset: dict[str, LvqaScores]
    failures: list[dict]
    run: dict | None = None

    def to_dict(self) -> dict:
        return {"task": "me-lvqa", "pred": self.pred, "gt": self.gt, "n_gt": self.n_gt, "n_pred": self.n_pred,
                "missing": self.missing, "overall": self.overall.to_dict(),
                "by_dataset": {k: v.to_dict() for k, v in self.by_dataset.items()},
                "failures": self.failures, "run": self.run}

    def to_markdown(self) -> str:
        return lvqa_markdown(self)


def score_lvqa(pred: str | Path, gt: str | Path, *, failed: str | Path | None = None) -> LvqaReport:
    """ME-LVQA scores of a prediction file against a ground-truth file (both MEGC JSONL, matched by
    id), overall and per dataset; a question without a prediction is scored with an empty answer."""
    pred, gt = Path(pred), Path(gt)
    gt_recs, preds, failed_map = read_scoring_inputs(pred, gt, failed=failed)
    items: dict[str, list] = {}
    for r in gt_recs:
        item = (r.question, r.answer, preds.get(r.record_id, ""))
        items.setdefault("all", []).append(item)
        items.setdefault(record_dataset(r), []).append(item)
    scores = {k: lvqa_scores(*zip(*v)) for k, v in items.items()}
    overall = scores.pop("all")
    ids = {r.record_id for r in gt_recs}
    return LvqaReport(pred=str(pred), gt=str(gt), n_gt=len(gt_recs), n_pred=len(preds),
                      missing=sum(i not in preds for i in ids), overall=overall,
                      by_dataset=scores if len(scores) > 1 else {}, failures=failures_by_clip(failed_map, ids))


_ROWS = (
    ("questions", lambda s: str(s.n)),
    ("count MAE (all kinds)", lambda s: fmt(s.counts.mae if s.counts else None)),
    ("count RMSE (all kinds)", lambda s: fmt(s.counts.rmse if s.counts else None)),
    ("count exact", lambda s: fmt(s.counts.exact if s.counts else None)),
    *((f"count MAE, {k} events", (lambda k: lambda s: fmt(s.counts_by_kind[k].mae if k in s.counts_by_kind
                                                              else None))(k)) for k in ("all", "micro", "macro")),
    ("distinct AUs: F1 (micro)", lambda s: fmt(s.aus.micro.f1 if s.aus else None)),
    ("distinct AUs: F1 (mean per video)", lambda s: fmt(s.aus.mean_f1 if s.aus else None)),
    ("distinct AUs: Jaccard", lambda s: fmt(s.aus.jaccard if s.aus else None)),
    ("event type UF1", lambda s: fmt(s.types.uf1 if s.types else None)),
    ("event type UAR", lambda s: fmt(s.types.uar if s.types else None)),
    ("event type accuracy", lambda s: fmt(s.types.accuracy if s.types else None)),
)


def lvqa_markdown(rep: LvqaReport) -> str:
    groups = [("all", rep.overall), *rep.by_dataset.items()]
    lines = [f"# ME-LVQA evaluation: {Path(rep.pred).name} vs {Path(rep.gt).name}", "",
             f"{rep.n_gt} ground-truth questions, {rep.n_pred} predictions"
             + (f", {rep.missing} missing (scored as empty)" if rep.missing else "") + ".", ""]
    lines += md_table(["metric"] + [g for g, _ in groups], ([name] + [fn(s) for _, s in groups] for name, fn in _ROWS))
    if rep.failures:
        lines += ["", "## Failed videos (their answers are empty)", ""]
        lines += md_table(["video", "questions", "reason"], ([str(f["clip"]), str(f["questions"]),
                                                            str(f["reason"]).replace("|", "/")] for f in rep.failures))
    lines += ["", "The official ME-LVQA metrics are not public; these are this package's definitions:", ""]
    lines += [f"- {k}: {v}" for k, v in LVQA_METRICS.items()]
    return "\n".join(lines) + "\n"
