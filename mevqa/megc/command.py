"""The ``mevqa eval`` command: answer a question file (:mod:`mevqa.megc.run`), score a prediction file
(ME-VQA: :mod:`mevqa.megc.report`; ME-LVQA: :mod:`mevqa.megc.lvqa_report`), or spot-then-recognise long
videos (``--strs``, :mod:`mevqa.megc.strs`).

``mevqa eval --score PRED.jsonl --gt GT.jsonl [--report DIR]`` scores any prediction file: a ground truth
of long-video questions gets the ME-LVQA scores, any other the ME-VQA ones. ``mevqa eval --strs OUT.csv
--clips DIR [LIST.csv] [--gt GT.csv]`` runs STRS.
"""
from __future__ import annotations

import string
import sys
from pathlib import Path

from mevqa.megc.lvqa_report import is_lvqa_file, score_lvqa
from mevqa.megc.records import EvalError, failed_path, read_failed
from mevqa.megc.report import (
    EvalReport, failures_by_clip, score_predictions, write_json_md, write_report, write_run_report,
)
from mevqa.megc.run import RunConfig, RunResult, run_eval
from mevqa.megc.shard import Shard
from mevqa.megc.strs import run_strs, score_strs, strs_markdown, write_strs_report

__all__ = ["main"]


def _patterns(arg: str | None) -> tuple[str, ...] | None:
    if not arg:
        return None
    pats = tuple(p.strip() for p in arg.split("|") if p.strip())
    for p in pats:
        try:
            list(string.Formatter().parse(p))
        except ValueError as e:
            raise EvalError(f"--pattern {p!r}: {e}") from None
    return pats or None


def _score(pred, gt):
    """ME-LVQA scores for a ground truth of long-video questions, ME-VQA scores otherwise."""
    return score_lvqa(pred, gt) if is_lvqa_file(gt) else score_predictions(pred, gt)


def _emit_report(rep, report_dir: str | None) -> None:
    print(rep.to_markdown(), end="")
    if report_dir:
        paths = (write_report(rep, report_dir) if isinstance(rep, EvalReport)
                 else write_json_md(report_dir, "report", rep.to_dict(), rep.to_markdown()))
        for p in paths:
            print(f"wrote {p}", file=sys.stderr)


def _emit_strs(pred: Path, gt: Path, report_dir: str | None, failures: Sequence[dict] = ()) -> None:
    s = score_strs(pred, gt)
    md = strs_markdown(s, pred, gt, failures)
    print(md, end="")
    if report_dir:
        print(f"wrote {write_strs_report(s, md, report_dir, failures)[0]}", file=sys.stderr)


def _main_score(a) -> None:
    pred, gt = Path(a.score), Path(a.gt) if a.gt else None
    if gt is None:
        raise EvalError("--score needs --gt (the ground truth to score against)")
    if pred.suffix.lower() == ".csv" and gt.suffix.lower() == ".csv":
        _emit_strs(pred, gt, a.report)
    else:
        _emit_report(_score(pred, gt), a.report)


def _main_strs(a) -> None:
    if not a.clips:
        raise EvalError("--strs needs --clips (the folder of long videos)")
    listing = Path(a.questions) if a.questions else None
    if listing is not None and listing.suffix.lower() != ".csv":
        raise EvalError(f"--strs takes an optional CSV of subject,video to spot, got {listing}")
    out, shard = Path(a.strs), Shard.from_env()
    rows, failures = run_strs(out, Path(a.clips), listing=listing, fps=a.fps, shard=shard)
    if not shard.is_main:
        return
    for f in failures:
        print(f"mevqa eval: failed {f['subject']}/{f['video']}: {f['reason']}", file=sys.stderr)
    print(f"mevqa eval: wrote {out} ({len(rows)} intervals)", file=sys.stderr)
    if a.gt:
        _emit_strs(out, Path(a.gt), a.report, failures)


def _summary(res: RunResult, out: Path, n_failed: int) -> str:
    text = (f"mevqa eval: {out}: {res.n_questions} answers ({res.n_questions - res.n_done_before} new, "
            f"{res.n_done_before} resumed")
    if n_failed:
        text += f", {n_failed} failed: see {failed_path(out)}"
    text += ")"
    if res.n_answered:
        text += f"; {res.questions_per_second:.2f} questions/s"
        text += " in the main process" if res.n_answered + res.n_failed + res.n_resumed < res.n_questions else ""
    return text


def _main_run(a) -> None:
    missing = [n for n, v in (("QUESTIONS", a.questions), ("--clips", a.clips), ("--out", a.out)) if not v]
    if missing:
        raise EvalError(f"mevqa eval needs {', '.join(missing)}: mevqa eval QUESTIONS.jsonl --clips DIR "
                        "--out PRED.jsonl (or --score PRED.jsonl --gt GT.jsonl, or --strs OUT.csv --clips DIR)")
    out = Path(a.out)
    for name, other in (("QUESTIONS", a.questions), ("--gt", a.gt)):
        if other and Path(other).resolve() == out.resolve():
            raise EvalError(f"--out and {name} are the same file: the run would overwrite it")
    cfg = RunConfig(questions=Path(a.questions), clips=Path(a.clips), out=out, patterns=_patterns(a.pattern),
                    model=a.model, adapter=a.adapter, load_in_4bit=bool(a.load_in_4bit),
                    load_in_8bit=bool(a.load_in_8bit), fps=a.fps)
    res = run_eval(cfg)
    if not res.merged:
        return  # another process merges and reports
    failures = failures_by_clip(read_failed([failed_path(out)]))
    n_failed = sum(f["questions"] for f in failures)
    print(_summary(res, out, n_failed), file=sys.stderr)
    if a.gt:
        rep = _score(out, a.gt)
        rep.run = res.to_dict()
        _emit_report(rep, a.report)
    elif a.report:
        write_run_report(res, failures, a.report)


def main(args) -> int:
    """``mevqa eval``: run (and optionally score), ``--score`` only, or ``--strs``."""
    if args.score:
        _main_score(args)
    elif args.strs:
        _main_strs(args)
    else:
        _main_run(args)
    return 0
