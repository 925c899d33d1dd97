"""MEGC question and prediction files as a batch run reads and writes them: the questions (validated),
the prediction lines (read back, repaired after a kill), the failed side file, atomic writes.

The base of :mod:`mevqa.megc`: the run (:mod:`mevqa.megc.run`), the reports (:mod:`mevqa.megc.report`) and
STRS (:mod:`mevqa.megc.strs`) all read and write files through here, and this module imports none of them.
"""
from __future__ import annotations

import json
import os
import re
from pathlib import Path
from typing import Iterable

from mevqa.io.megc import MegcFormatError, MegcRecord, read_megc_jsonl
from mevqa.io.video import ClipError

__all__ = [
    "EvalError", "record_fields", "record_dataset", "read_questions", "answer_line", "read_prediction_lines",
    "part_paths", "failed_path", "read_failed", "atomic_write", "Appender", "one_line",
]


class EvalError(ValueError):
    """Bad input to the evaluator (file, layout, arguments); the message is one line."""


def _test_dataset(video_id: str | None) -> str | None:
    # "samm_test_SAMM-1_1" -> "samm"; "casme3_test_CAS-1_1" -> "casme3"
    m = re.match(r"^(.+?)_test_", video_id or "")
    return m.group(1) if m else None


def record_fields(rec: MegcRecord) -> dict[str, str]:
    """The values a layout may use: the record's keys, plus ``dataset`` derived from a test
    record's ``video_id`` ("samm_test_SAMM-1_1" -> "samm")."""
    d = {k: v for k, v in rec.to_dict().items() if isinstance(v, str) and v and k not in ("question", "answer")}
    if "dataset" not in d and (ds := _test_dataset(rec.video_id)):
        d["dataset"] = ds
    return d


def record_dataset(rec: MegcRecord) -> str:
    return rec.dataset or _test_dataset(rec.video_id) or "(none)"


def _seps(rec: MegcRecord) -> tuple[str, str]:
    # the layout the question file used (test files are compact), as write_megc_jsonl writes it
    return (",", ":") if rec.compact else (", ", ": ")


def answer_line(rec: MegcRecord, answer: str) -> str:
    """One submission line: the record with ``answer`` filled, keys and separators as read."""
    return json.dumps(rec.with_answer(answer).to_dict(), separators=_seps(rec))


def _line_id(obj) -> str | None:
    if not isinstance(obj, dict):
        return None
    rid = obj.get("id", obj.get("video_id"))
    return str(rid) if rid is not None else None


def _answer_of(obj) -> str | None:
    """The line's answer, or None where it has none (``{"video_id": "x"}``: not an answer)."""
    answer = obj.get("answer") if isinstance(obj, dict) else None
    return answer if isinstance(answer, str) else None


def _keep(lines: dict, answers: dict, rid: str, raw: str, answer: str) -> None:
    # first line per id wins, except that an answer beats an earlier empty one: a failed question
    # retried after its clip was restored appends its new answer after the empty one
    if rid not in lines or (not answers[rid] and answer):
        lines[rid], answers[rid] = raw, answer


def read_prediction_lines(path: Path, *, repair: bool = False, answered_only: bool = True) -> dict[str, str]:
    """``{id: line}`` of a prediction (or part) file: per id the first line with a non-empty answer,
    else the first line. A line without an ``answer`` string is no answer: it is left out (and its
    question asked again), unless ``answered_only`` is False (scoring someone's file: it then says
    what is wrong with the answer).

    A last line without its newline was cut by a kill mid-write: with ``repair`` (only the file's
    writer may) it is truncated away, unless it is a complete record, which gets its newline;
    without ``repair`` it is ignored. A damaged line elsewhere raises :class:`EvalError`.
    """
    if not path.exists():
        return {}
    data = path.read_bytes()
    cut = data.rfind(b"\n") + 1
    body, tail = data[:cut], data[cut:]
    lines: dict[str, str] = {}
    answers: dict[str, str] = {}
    for lineno, raw in enumerate(body.decode("utf-8", errors="replace").splitlines(), start=1):
        if not raw.strip():
            continue
        try:
            obj = json.loads(raw)
        except json.JSONDecodeError:
            obj = None
        rid = _line_id(obj)
        if rid is None:
            raise EvalError(f"{path}:{lineno}: not a prediction line (damaged file?); move it away to start afresh")
        if (answer := _answer_of(obj)) is not None or not answered_only:
            _keep(lines, answers, rid, raw, answer or "")
    if tail.strip():
        try:
            obj = json.loads(tail.decode("utf-8"))
        except (json.JSONDecodeError, UnicodeDecodeError):
            obj = None
        rid = _line_id(obj)
        if rid is not None and ((answer := _answer_of(obj)) is not None or not answered_only):
            _keep(lines, answers, rid, tail.decode("utf-8").strip(), answer or "")
        if repair:
            with path.open("r+b") as fh:
                if rid is None:
                    fh.truncate(cut)          # torn line: drop it, its question is answered again
                else:
                    fh.seek(0, os.SEEK_END)   # a complete record missing its newline: keep it
                    fh.write(b"\n")
    return lines


def part_paths(out: Path) -> list[Path]:
    rx = re.compile(re.escape(out.name) + r"\.part(\d+)$")
    return sorted((p for p in out.parent.glob(out.name + ".part*") if rx.match(p.name)),
                  key=lambda p: int(rx.match(p.name).group(1)))


def failed_path(out: Path) -> Path:
    return out.with_name(out.name + ".failed.jsonl")


def read_failed(paths: Iterable[Path]) -> dict[str, dict]:
    out: dict[str, dict] = {}
    for p in paths:
        if not p.exists():
            continue
        for raw in p.read_text(encoding="utf-8", errors="replace").splitlines():
            try:
                obj = json.loads(raw)
            except json.JSONDecodeError:
                continue  # a torn side-file line: the question is failed anyway
            if isinstance(obj, dict) and obj.get("id") is not None:
                out[str(obj["id"])] = obj
    return out


def atomic_write(path: Path, lines: Iterable[str]) -> None:
    tmp = path.with_name(path.name + ".tmp")
    with tmp.open("w", encoding="utf-8") as fh:
        for line in lines:
            fh.write(line + "\n")
        fh.flush()
        os.fsync(fh.fileno())
    tmp.replace(path)


class Appender:
    """Appends lines, each in one write and flushed at once, so a kill loses at most the line being
    written (and that one is repaired on resume)."""

    def __init__(self, path: Path):
        self.path = path
        self.fh = None

    def write(self, line: str) -> None:
        if self.fh is None:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self.fh = self.path.open("a", encoding="utf-8")
        self.fh.write(line + "\n")
        self.fh.flush()

    def sync(self) -> None:
        if self.fh is not None:
            os.fsync(self.fh.fileno())

    def close(self) -> None:
        if self.fh is not None:
            self.fh.close()
            self.fh = None


def read_questions(path: Path) -> list[MegcRecord]:
    """The records of a question (or ground-truth) file, checked: string ids, unique, clip fields that
    are names and not paths (:func:`mevqa.io.megc.read_megc_jsonl`); one-line :class:`EvalError` if not."""
    try:
        records = read_megc_jsonl(path)
    except MegcFormatError as e:
        raise EvalError(str(e)) from None
    if not records:
        raise EvalError(f"{path}: no questions")
    seen = set()
    for i, r in enumerate(records, start=1):
        rid = r.record_id
        if rid is None:
            raise EvalError(f"{path}: question {i} has no 'id' or 'video_id': answers could not be matched back")
        if rid in seen:
            raise EvalError(f"{path}: id {rid!r} appears twice: ids must be unique to resume and to score")
        seen.add(rid)
    return records


def one_line(e: BaseException) -> str:
    """An exception as one line: our own errors as they are, others with their type name."""
    msg = str(e).strip().splitlines()[0] if str(e).strip() else ""
    return msg if isinstance(e, (ClipError, EvalError)) else f"{type(e).__name__}: {msg}".rstrip(": ")

