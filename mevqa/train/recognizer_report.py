"""Scores and the report of a subject-independent recogniser run (JSON + Markdown).

Per fold: accuracy, UF1 and UAR over the classes present in that held-out subject's clips. Pooled:
the same over every fold's predictions together, over all classes of the run, as MEGC scores
composite recognition (Yap et al., "MEGC 2019 - the second facial micro-expressions grand
challenge", FG 2019: UF1 and UAR on the pooled leave-one-subject-out predictions). Per class:
precision, recall, F1 and support on the pooled predictions, and the confusion matrix.
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Sequence

from mevqa.megc.metrics import accuracy, confusion_matrix, per_class_scores, uar, uf1

__all__ = ["scores", "build_report", "report_markdown", "write_report"]


def scores(y_true: Sequence[str], y_pred: Sequence[str], labels: Sequence[str] | None = None) -> dict:
    """Accuracy, UF1, UAR and per-class figures (``labels`` None: the classes in ``y_true``)."""
    per = per_class_scores(y_true, y_pred, labels)
    return {"n": len(y_true), "accuracy": accuracy(y_true, y_pred), "uf1": uf1(y_true, y_pred, labels),
            "uar": uar(y_true, y_pred, labels),
            "per_class": {c: {"precision": s.precision, "recall": s.recall, "f1": s.f1, "support": s.tp + s.fn}
                          for c, s in per.items()}}


def build_report(folds: list[dict], *, classes: Sequence[str], protocol: str, config: dict,
                 skipped: Sequence[str] = ()) -> dict:
    """``folds``: dicts with ``held_out`` (list of subjects), ``items`` (truth, prediction, probabilities)."""
    y_true = [it["label"] for f in folds for it in f["items"]]
    y_pred = [it["prediction"] for f in folds for it in f["items"]]
    out_folds = []
    for f in folds:
        t = [it["label"] for it in f["items"]]
        p = [it["prediction"] for it in f["items"]]
        out_folds.append({"fold": f["fold"], "held_out": f["held_out"], "n_train": f["n_train"],
                          "epochs": f["epochs"], "train_seconds": f.get("train_seconds"),
                          **{k: v for k, v in scores(t, p).items() if k != "per_class"}, "items": f["items"]})
    pooled = scores(y_true, y_pred, list(classes)) if y_true else {}
    if y_true:
        pooled["confusion"] = confusion_matrix(y_true, y_pred, list(classes)).to_dict()
    return {"protocol": protocol, "classes": list(classes), "n_clips": len(y_true), "n_folds": len(folds),
            "pooled": pooled, "chance_uar": 1.0 / len(classes), "folds": out_folds,
            "skipped": list(skipped), "config": config}


def _f(x) -> str:
    return "-" if x is None else f"{x:.4f}"


def report_markdown(report: dict) -> str:
    """The report as Markdown: pooled figures, per class, confusion matrix, per fold."""
    p = report["pooled"]
    lines = [f"# Recogniser report ({report['protocol']}, {report['n_folds']} fold(s), {report['n_clips']} clips)", "",
             f"Classes: {', '.join(report['classes'])}. Chance UAR {report['chance_uar']:.4f}.", "",
             "| pooled | accuracy | UF1 | UAR |", "|---|---|---|---|",
             f"| all folds | {_f(p.get('accuracy'))} | {_f(p.get('uf1'))} | {_f(p.get('uar'))} |", "",
             "| class | support | precision | recall | F1 |", "|---|---|---|---|---|"]
    for c, s in p.get("per_class", {}).items():
        lines.append(f"| {c} | {s['support']} | {_f(s['precision'])} | {_f(s['recall'])} | {_f(s['f1'])} |")
    if "confusion" in p:
        cm = p["confusion"]
        lines += ["", "Confusion (rows true, columns predicted):", "",
                  "| | " + " | ".join(cm["labels"]) + " |", "|---" * (len(cm["labels"]) + 1) + "|"]
        lines += [f"| {lab} | " + " | ".join(str(v) for v in row) + " |" for lab, row in zip(cm["labels"], cm["counts"])]
    lines += ["", "| fold | held out | train clips | test clips | accuracy | UF1 | UAR |", "|---|---|---|---|---|---|---|"]
    for f in report["folds"]:
        lines.append(f"| {f['fold']} | {', '.join(f['held_out'])} | {f['n_train']} | {f['n']} | {_f(f['accuracy'])} "
                     f"| {_f(f['uf1'])} | {_f(f['uar'])} |")
    if report["skipped"]:
        lines += ["", f"Skipped clips ({len(report['skipped'])}):", ""] + [f"- {s}" for s in report["skipped"][:50]]
    return "\n".join(lines) + "\n"


def write_report(report: dict, run_dir: Path) -> tuple[Path, Path]:
    j, m = Path(run_dir) / "report.json", Path(run_dir) / "report.md"
    j.write_text(json.dumps(report, indent=1) + "\n", encoding="utf-8")
    m.write_text(report_markdown(report), encoding="utf-8")
    return j, m
