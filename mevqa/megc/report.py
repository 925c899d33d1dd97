"""Scoring an ME-VQA answer set against ground truth, and the reports: JSON, Markdown, confusion plots.

``mevqa eval --score PRED.jsonl --gt GT.jsonl [--report DIR]`` (and ``mevqa eval ... --gt``) use
:func:`score_predictions` and :func:`write_report`; see :func:`score_predictions` for what is reported.
"""
from __future__ import annotations

import json
import re
import textwrap
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable, Sequence

import numpy as np

from mevqa.answer.questions import parse_analysis_sentence, question_type
from mevqa.facs.codes import find_au
from mevqa.facs.labels import COARSE_CLASSES, FINE_CLASSES
from mevqa.megc.class_metrics import ConfusionMatrix, confusion_matrix
from mevqa.megc.records import (
    EvalError, failed_path, read_failed, read_prediction_lines, read_questions, record_dataset,
)
from mevqa.megc.vqa_metrics import VQAScores, vqa_scores

__all__ = [
    "CLOSED_ANSWERS", "METRIC_VARIANTS", "is_unparsable", "GroupScores", "group_scores", "EvalReport",
    "score_predictions", "read_scoring_inputs", "failures_by_clip", "report_markdown", "plot_confusion", "write_report",
    "write_run_report", "write_json_md", "md_table", "fmt",
]


CLOSED_ANSWERS = {"au_presence": ("yes", "no"), "au_side": ("left", "right")}


def _clean(x) -> str:
    return " ".join(str(x or "").lower().split())


def is_unparsable(kind: str, pred: str, labels: Iterable[str] = ()) -> bool:
    """True when a prediction is not an answer of its question's form (empty included); such
    answers are scored as they are, i.e. wrong."""
    p = _clean(pred)
    if not p:
        return True
    if kind == "coarse":
        return p not in set(COARSE_CLASSES) | set(labels)
    if kind == "fine":
        return p not in set(FINE_CLASSES) | set(labels)
    if kind in CLOSED_ANSWERS:
        return p not in CLOSED_ANSWERS[kind]
    if kind == "au_list":
        return any(find_au(t.strip(" .")) is None for t in re.split(r",|;|\band\b", p) if t.strip(" ."))
    if kind == "analysis":
        aus, fine, _ = parse_analysis_sentence(p)
        return not aus or fine is None
    return False


@dataclass
class GroupScores:
    """All metrics over one set of questions (all, one dataset, one subject)."""

    name: str
    n: int
    vqa: VQAScores
    unparsable: dict[str, int]         # per kind: answered, but not in the question's form
    missing: int = 0                   # no prediction line (scored as "")
    failed: int = 0                    # clip failed (answered "")
    coarse_confusion: ConfusionMatrix | None = None
    fine_confusion: ConfusionMatrix | None = None

    def to_dict(self) -> dict:
        d = {"name": self.name, "n": self.n, "missing": self.missing, "failed": self.failed,
             "unparsable": self.unparsable, **self.vqa.to_dict()}
        d["coarse_confusion"] = self.coarse_confusion.to_dict() if self.coarse_confusion else None
        d["fine_confusion"] = self.fine_confusion.to_dict() if self.fine_confusion else None
        return d


def _label_order(gt_labels: set, known: Sequence[str]) -> list[str]:
    return [x for x in known if x in gt_labels] + sorted(gt_labels - set(known))


def group_scores(name: str, items: list[tuple], *, confusion: bool = False) -> GroupScores:
    """``items``: (kind, question, reference, prediction, status) with status "", "missing" or "failed"."""
    qs, refs, preds = [i[1] for i in items], [i[2] for i in items], [i[3] for i in items]
    vqa = vqa_scores(qs, refs, preds)
    labels: dict[str, set] = {}
    for kind, _, ref, _, _ in items:
        labels.setdefault(kind, set()).add(_clean(ref))
    unparsable: dict[str, int] = {}
    for kind, _, _, pred, status in items:
        if not status and is_unparsable(kind, pred, labels[kind] if kind in ("coarse", "fine") else ()):
            unparsable[kind] = unparsable.get(kind, 0) + 1
    cms = {}
    if confusion:
        for kind, known in (("coarse", COARSE_CLASSES), ("fine", FINE_CLASSES)):
            sel = [(r, p) for k, _, r, p, _ in items if k == kind]
            if sel:
                # rows: the true classes; columns also any known class that was predicted
                seen = {_clean(r) for r, _ in sel} | ({_clean(p) for _, p in sel} & set(known))
                labs = _label_order(seen, known)
                cms[kind] = confusion_matrix([r for r, _ in sel], [p for _, p in sel], labels=labs)
    return GroupScores(name, len(items), vqa, unparsable,
                       missing=sum(i[4] == "missing" for i in items), failed=sum(i[4] == "failed" for i in items),
                       coarse_confusion=cms.get("coarse"), fine_confusion=cms.get("fine"))


@dataclass
class EvalReport:
    """Scores of one prediction file against one ground truth (see :func:`score_predictions`)."""

    pred: str
    gt: str
    n_gt: int
    n_pred: int
    n_extra: int                       # prediction ids not in the ground truth (ignored)
    overall: GroupScores
    by_dataset: dict[str, GroupScores]
    by_subject: dict[str, GroupScores]
    failures: list[dict]               # per failed clip: clip, path, reason, questions
    run: dict | None = None

    def to_dict(self) -> dict:
        return {"pred": self.pred, "gt": self.gt, "n_gt": self.n_gt, "n_pred": self.n_pred, "n_extra": self.n_extra,
                "variants": METRIC_VARIANTS, "overall": self.overall.to_dict(),
                "by_dataset": {k: v.to_dict() for k, v in self.by_dataset.items()},
                "by_subject": {k: v.to_dict() for k, v in self.by_subject.items()},
                "failures": self.failures, "run": self.run}

    def to_markdown(self) -> str:
        return report_markdown(self)


METRIC_VARIANTS = {
    "answers": "lower-cased and whitespace-collapsed, scored as written (no re-normalisation); empty, "
               "missing, failed or unparsable answers count as wrong",
    "uf1": "macro F1 over the classes present in the ground truth of the questions scored",
    "uar": "mean per-class recall over the same classes",
    "au_set_f1_micro": "AU-list questions: TP/FP/FN pooled over AU names",
    "au_set_f1_macro": "AU-list questions: mean per-AU F1 over AUs present in the ground truth",
    "bleu_sentence_smoothed": "mean NLTK sentence BLEU-4, whitespace tokens, Chen & Cherry smoothing 1, 0-1",
    "bleu_corpus4": "sacreBLEU corpus BLEU-4 (13a tokenizer), 0-1; 0 when no answer has 4 tokens (SMIC's "
                    "coarse-only questions), however right the answers",
    "rouge1_recall": "mean ROUGE-1 recall (rouge-score, no stemming)",
    "rouge1_f1": "mean ROUGE-1 F1 (rouge-score, no stemming)",
}


def failures_by_clip(failed: dict[str, dict], ids: set | None = None) -> list[dict]:
    """Failed questions (``{id: side-file line}``, those in ``ids`` if given) grouped per clip:
    clip, path, reason, questions."""
    by: dict[str, dict] = {}
    for rid, f in failed.items():
        if ids is not None and rid not in ids:
            continue
        c = by.setdefault(str(f.get("clip")), {"clip": f.get("clip"), "path": f.get("path"),
                                                "reason": f.get("failed", ""), "questions": 0})
        c["questions"] += 1
    return list(by.values())


def score_predictions(pred: str | Path, gt: str | Path, *, failed: str | Path | None = None) -> EvalReport:
    """Score a prediction file against a ground-truth file (both MEGC JSONL, matched by id).

    Reports, overall, per dataset and per subject: UF1/UAR on the coarse and on the fine questions,
    AU-set F1 (micro and macro) and per-AU F1 on the AU-list questions, yes/no and left/right
    accuracy, exact match of the analysis sentences, and over all answers smoothed sentence BLEU,
    corpus BLEU-4, ROUGE-1 recall and F1. A ground-truth question without a prediction is scored
    with an empty answer. ``failed`` (default ``PRED.failed.jsonl`` when it exists) lists failed clips.
    """
    pred, gt = Path(pred), Path(gt)
    gt_recs, preds, failed_map = read_scoring_inputs(pred, gt, failed=failed)
    return _build_report(str(pred), str(gt), gt_recs, preds, failed_map)


def read_scoring_inputs(pred: Path, gt: Path, *, failed: str | Path | None = None):
    """(ground-truth records, ``{id: predicted answer}``, ``{id: failed side-file line}``), checked:
    the ground truth has answers, the prediction file exists and shares ids with it."""
    gt_recs = read_questions(gt)
    if all(not r.answer.strip() for r in gt_recs):
        raise EvalError(f"{gt}: every answer is empty: that is a question file, not ground truth")
    pred_lines = read_prediction_lines(pred, answered_only=False)
    if not pred_lines and not pred.exists():
        raise EvalError(f"prediction file not found: {pred}")
    preds = {}
    for rid, line in pred_lines.items():
        answer = json.loads(line).get("answer") or ""  # anyone's file: id and answer are all we need
        if isinstance(answer, int) and not isinstance(answer, bool):
            answer = str(answer)  # a count written as a JSON number (long-video questions)
        if not isinstance(answer, str):
            raise EvalError(f"{pred}: answer of {rid!r} is not a string")
        preds[rid] = answer
    gt_ids = {r.record_id for r in gt_recs}
    if preds and not gt_ids & set(preds):
        raise EvalError(f"no prediction id of {pred} is in {gt}: are they the same question set?")
    failed_map = read_failed([Path(failed) if failed else failed_path(pred)])
    return gt_recs, preds, failed_map


def _build_report(pred_name, gt_name, gt_recs, preds: dict, failed_map: dict) -> EvalReport:
    ids = {r.record_id for r in gt_recs}
    items, datasets, subjects = [], {}, {}
    for r in gt_recs:
        rid = r.record_id
        status = "missing" if rid not in preds else ("failed" if rid in failed_map and not preds[rid] else "")
        item = (question_type(r.question).kind, r.question, r.answer, preds.get(rid, ""), status)
        items.append(item)
        ds = record_dataset(r)
        datasets.setdefault(ds, []).append(item)
        if r.subject:
            subjects.setdefault(f"{ds}/{r.subject}", []).append(item)
    return EvalReport(
        pred=pred_name, gt=gt_name, n_gt=len(gt_recs), n_pred=len(preds),
        n_extra=len(set(preds) - ids),
        overall=group_scores("all", items, confusion=True),
        by_dataset={k: group_scores(k, v, confusion=True) for k, v in datasets.items()},
        by_subject={k: group_scores(k, v) for k, v in sorted(subjects.items(), key=lambda kv: _natural(kv[0]))},
        failures=failures_by_clip(failed_map, ids),
    )


def _natural(s: str):
    return [int(t) if t.isdigit() else t for t in re.split(r"(\d+)", s)]


# -- Markdown ------------------------------------------------------------------------------------
def fmt(x, digits: int = 3) -> str:
    return "–" if x is None else f"{x:.{digits}f}"


def _vqa(attr: str):
    return lambda g: fmt(getattr(g.vqa, attr))


def _au(get):
    """An AU-list score; "–" where the group has no AU-list question."""
    return lambda g: fmt(get(g.vqa.au_list) if g.vqa.au_list else None)


_ROWS = (
    ("questions", lambda g: str(g.n)),
    ("coarse UF1", _vqa("coarse_uf1")),
    ("coarse UAR", _vqa("coarse_uar")),
    ("fine UF1", _vqa("fine_uf1")),
    ("fine UAR", _vqa("fine_uar")),
    ("AU-set F1, micro", _au(lambda a: a.micro.f1)),
    ("AU-set F1, macro over AUs", _au(lambda a: a.macro_f1)),
    ("AU-set exact match", _au(lambda a: a.exact)),
    ("yes/no accuracy", _vqa("presence_accuracy")),
    ("left/right accuracy", _vqa("side_accuracy")),
    ("analysis exact match", _vqa("analysis_exact")),
    ("BLEU (sentence, smoothed, mean)", _vqa("bleu_sentence_smoothed")),
    ("BLEU-4 (corpus, sacreBLEU)", _vqa("bleu_corpus4")),
    ("ROUGE-1 recall", _vqa("rouge1_recall")),
    ("ROUGE-1 F1", _vqa("rouge1_f1")),
    ("unparsable answers (wrong)", lambda g: str(sum(g.unparsable.values()))),
    ("missing answers (wrong)", lambda g: str(g.missing)),
    ("failed-clip answers (wrong)", lambda g: str(g.failed)),
)

_SUBJECT_COLS = (
    ("n", lambda g: str(g.n)),
    ("coarse UF1", _vqa("coarse_uf1")), ("coarse UAR", _vqa("coarse_uar")),
    ("fine UF1", _vqa("fine_uf1")), ("fine UAR", _vqa("fine_uar")),
    ("AU-set F1", _au(lambda a: a.micro.f1)),
    ("yes/no", _vqa("presence_accuracy")), ("left/right", _vqa("side_accuracy")),
    ("BLEU sent.", _vqa("bleu_sentence_smoothed")), ("ROUGE-1 F1", _vqa("rouge1_f1")),
)


def md_table(header: Sequence[str], rows: Iterable[Sequence[str]]) -> list[str]:
    out = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    out += ["| " + " | ".join(r) + " |" for r in rows]
    return out


def report_markdown(rep: EvalReport) -> str:
    groups = [rep.overall] + (list(rep.by_dataset.values()) if len(rep.by_dataset) > 1 else [])
    lines = [f"# ME-VQA evaluation: {Path(rep.pred).name} vs {Path(rep.gt).name}", "",
             f"{rep.n_gt} ground-truth questions, {rep.n_pred} predictions"
             + (f" ({rep.n_extra} not in the ground truth, ignored)" if rep.n_extra else "") + "."]
    if rep.run:
        lines.append(f"Backend: {rep.run.get('backend') or '(resumed: no new answers)'}.")
    lines += ["", "## Overall" + (" and per dataset" if len(groups) > 1 else ""), ""]
    lines += md_table(["metric"] + [g.name for g in groups], ([name] + [fn(g) for g in groups] for name, fn in _ROWS))
    au = rep.overall.vqa.au_list
    if au is not None and au.per_au:
        lines += ["", "## Per action unit (AU-list questions)", ""]
        per = sorted(au.per_au.items(), key=lambda kv: (-(kv[1].tp + kv[1].fn), kv[0]))
        lines += md_table(["action unit", "F1", "precision", "recall", "in truth", "predicted"],
                           ([k, fmt(v.f1), fmt(v.precision), fmt(v.recall), str(v.tp + v.fn), str(v.tp + v.fp)]
                            for k, v in per))
    if rep.by_subject:
        lines += ["", "## Per subject", ""]
        lines += md_table(["subject"] + [c for c, _ in _SUBJECT_COLS],
                           ([k] + [fn(g) for _, fn in _SUBJECT_COLS] for k, g in rep.by_subject.items()))
    if rep.failures:
        lines += ["", "## Failed clips (their answers are empty and count as wrong)", ""]
        lines += md_table(["clip", "questions", "reason"],
                           ([str(f["clip"]), str(f["questions"]), str(f["reason"]).replace("|", "/")]
                            for f in rep.failures))
    lines += ["", "Metric variants:", ""] + [f"- {k}: {v}" for k, v in METRIC_VARIANTS.items()]
    return "\n".join(lines) + "\n"


def plot_confusion(cm, title: str, path: Path) -> Path:
    """A confusion matrix as PNG: rows the true class, columns the prediction (the last column, when
    present, counts answers outside the class list, empty ones included)."""
    import matplotlib  # deferred: a second to import, and only --report with ground truth draws

    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt

    counts = np.array(cm.counts, dtype=float)
    cols = list(cm.labels)
    if any(cm.other):
        counts = np.column_stack([counts, cm.other])
        cols.append("(other)")
    # At least 4 inches wide, and the title wrapped to the figure: a 3-class matrix is narrower than its title.
    width = max(4.0, 1.0 + 0.75 * len(cols))
    fig, ax = plt.subplots(figsize=(width, 1.4 + 0.7 * len(cm.labels)))
    rowsum = counts.sum(1, keepdims=True)
    ax.imshow(np.divide(counts, rowsum, out=np.zeros_like(counts), where=rowsum > 0), cmap="Blues", vmin=0, vmax=1)
    for i in range(counts.shape[0]):
        for j in range(counts.shape[1]):
            ax.text(j, i, f"{int(counts[i, j])}", ha="center", va="center", fontsize=8,
                    color="white" if rowsum[i, 0] and counts[i, j] / rowsum[i, 0] > 0.6 else "black")
    ax.set_xticks(range(len(cols)), cols, rotation=45, ha="right", fontsize=8)
    ax.set_yticks(range(len(cm.labels)), cm.labels, fontsize=8)
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    ax.set_title("\n".join(textwrap.wrap(title, max(24, int(width * 11)))), fontsize=9)
    fig.tight_layout()
    fig.savefig(path, dpi=120, bbox_inches="tight")  # nothing cut at the edges
    plt.close(fig)
    return path


def write_json_md(out_dir: str | Path, stem: str, obj, md: str) -> list[Path]:
    """``STEM.json`` (``obj``) and ``STEM.md`` in ``out_dir``, created if need be."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    paths = [out / f"{stem}.json", out / f"{stem}.md"]
    paths[0].write_text(json.dumps(obj, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")
    paths[1].write_text(md, encoding="utf-8")
    return paths


def write_report(rep: EvalReport, out_dir: str | Path) -> list[Path]:
    """report.json, report.md and confusion_{coarse,fine}[_DATASET].png in ``out_dir``."""
    written = write_json_md(out_dir, "report", rep.to_dict(), rep.to_markdown())
    groups = [("", rep.overall)]
    if len(rep.by_dataset) > 1:
        groups += [("_" + re.sub(r"[^A-Za-z0-9_.-]", "_", k), g) for k, g in rep.by_dataset.items()]
    for suffix, g in groups:
        for kind, cm in (("coarse", g.coarse_confusion), ("fine", g.fine_confusion)):
            if cm is not None:
                n = sum(map(sum, cm.counts)) + sum(cm.other)
                written.append(plot_confusion(cm, f"{kind} classes: {g.name} ({n} questions)",
                                              Path(out_dir) / f"confusion_{kind}{suffix}.png"))
    return written


def write_run_report(result, failures: list[dict], out_dir: str | Path) -> list[Path]:
    """Without ground truth: what was run (a :class:`mevqa.megc.run.RunResult`) and what failed."""
    md = ["# ME-VQA run", "", f"{result.n_questions} questions; answered now {result.n_answered}, "
          f"resumed {result.n_resumed}, failed now {result.n_failed}; backend: {result.backend or '-'}."]
    if failures:
        rows = ([str(f["clip"]), str(f["questions"]), str(f["reason"])] for f in failures)
        md += ["", "## Failed clips", ""] + md_table(["clip", "questions", "reason"], rows)
    return write_json_md(out_dir, "report", {"run": result.to_dict(), "failures": failures}, "\n".join(md) + "\n")
