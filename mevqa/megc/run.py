"""Batch ME-VQA answering in the MEGC2025 format, and the ``mevqa eval`` command.

``mevqa eval QUESTIONS.jsonl --clips DIR --out PRED.jsonl [--gt GT.jsonl]`` answers every question of
an MEGC question file (training or test layout) and writes the predictions in exactly the submission
format: the same keys in the same order and the same separators as the question file, ``answer``
filled, one line per question, in the question file's order.

How a run behaves, and why:

- **Evidence once per clip.** Questions are grouped by clip (:func:`mevqa.io.megc.group_by_clip`);
  a clip is decoded and its Evidence computed once for all its questions.
- **Resumable.** Each answer is appended and flushed as soon as it exists. A rerun reads the output,
  repairs a torn last line (a kill mid-write), skips every question already answered and appends the
  rest; at the end the file is rewritten (atomically) in the question file's order. Nothing finished
  is recomputed or lost.
- **Failures do not stop the run.** A clip that cannot be found, decoded or tracked (no face) gets
  its questions answered with ``""`` (they count as wrong) and one line per question in the side file
  ``PRED.jsonl.failed.jsonl`` with the reason; the submission lines never carry extra keys. A model
  error, by contrast, stops the run (it would fail every question the same way): fix and rerun, the
  run resumes.
- **Scale-out.** Under ``accelerate launch --multi_gpu`` / ``torchrun --nproc_per_node N`` (or any
  launcher setting ``RANK``/``WORLD_SIZE``) clips are sharded round-robin over processes; process N
  appends to ``PRED.jsonl.partN`` and the main process, once every question has a line somewhere,
  merges everything into ``PRED.jsonl``. Processes never wait on a collective, so one slow shard
  cannot time out a barrier. On a CPU-only machine use ``torchrun``: ``accelerate launch --cpu``
  starts a single process unless MPI is configured.

- **Long-video questions** (MEGC2026 ME-LVQA: event counts, distinct AUs, the N-th event's type) are
  answered from all the events spotted in the video, read in chunks as STRS reads it (any length,
  memory bounded by a chunk; :func:`mevqa.megc.strs.spot_long_video`, :mod:`mevqa.answer.lvqa`); other
  questions by the agent.
- **Failed questions are retried.** A rerun asks again every question the failed side file lists with an
  empty answer (a clip restored since then is answered); a line without an answer is asked again.

The command line (``mevqa eval``, scoring, STRS) is :mod:`mevqa.megc.command`; the files a run reads and
writes are :mod:`mevqa.megc.records`, the clip layouts :mod:`mevqa.megc.clips`.
"""
from __future__ import annotations

import json
import os
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

from tqdm import tqdm

from mevqa.answer.agent import Agent
from mevqa.answer.lvqa import answer_lvqa, events_from, lvqa_question
from mevqa.evidence.builder import compute_evidence
from mevqa.io.megc import MegcRecord, group_by_clip
from mevqa.megc.clips import DEFAULT_PATTERNS, ClipResolver, folder_fps, load_clip_for, patterns_help
from mevqa.megc.records import (
    Appender, EvalError, answer_line, atomic_write, failed_path, one_line, part_paths, read_failed,
    read_prediction_lines, read_questions,
)
from mevqa.megc.shard import Shard
from mevqa.megc.strs import spot_long_video

__all__ = [
    "EvalError", "DEFAULT_PATTERNS", "ClipResolver", "Shard", "RunConfig", "RunResult", "run_eval", "finalise",
    "failed_path", "read_prediction_lines", "read_questions",
]


@dataclass(frozen=True)
class RunConfig:
    """One ``mevqa eval`` run; ``patterns`` None means :data:`DEFAULT_PATTERNS`."""

    questions: Path
    clips: Path
    out: Path
    patterns: tuple[str, ...] | None = None
    model: str | None = None
    adapter: str | None = None
    load_in_4bit: bool = False
    load_in_8bit: bool = False
    fps: float | None = None
    progress: bool = True
    poll_seconds: float = 1.0


@dataclass
class RunResult:
    """What one process did in one run."""

    n_questions: int          # in the question file
    n_answered: int = 0       # answered by this process in this run
    n_resumed: int = 0        # found already answered, of this process's share
    n_done_before: int = 0    # found already answered, by all processes
    n_failed: int = 0         # marked failed in this run
    clips_done: int = 0
    seconds: float = 0.0      # wall time of this process's answering loop (model loading excluded)
    backend: str = ""
    merged: bool = False      # the main process wrote the final file

    @property
    def questions_per_second(self) -> float:
        n = self.n_answered + self.n_failed
        return n / self.seconds if self.seconds > 0 else 0.0

    def to_dict(self) -> dict:
        d = {k: getattr(self, k) for k in self.__dataclass_fields__}
        d["questions_per_second"] = round(self.questions_per_second, 3)
        return d


def _failure(rec: MegcRecord, key: str, path: Path | None, reason: str) -> str:
    return json.dumps({"id": rec.record_id, "clip": key, "path": str(path) if path else None, "failed": reason})



def run_eval(cfg: RunConfig) -> RunResult:
    """Answer the question file into ``cfg.out`` (see the module docstring)."""
    if cfg.out.resolve() == cfg.questions.resolve():
        raise EvalError("--out is the question file: the run would overwrite it")
    records = read_questions(cfg.questions)
    if not cfg.clips.is_dir():
        raise EvalError(f"--clips {cfg.clips}: no such folder")
    shard = Shard.from_env()
    own, own_failed = _own_paths(cfg.out, shard)
    ids = {r.record_id for r in records}
    answered = _done_ids(cfg.out, own, shard, ids)
    # a failed question (empty answer, listed in the side file) is asked again: its clip may be back
    retry = {i for i in _failed_ids(cfg.out) if not answered.get(i)}
    done = set(answered) - retry
    result = RunResult(n_questions=len(records), n_done_before=len(done))

    groups = group_by_clip(records)
    mine = [(k, recs) for i, (k, recs) in enumerate(groups.items()) if i % shard.count == shard.index]
    todo = [(k, [r for r in recs if r.record_id not in done]) for k, recs in mine]
    todo = [(k, recs) for k, recs in todo if recs]
    result.n_resumed = sum(len(recs) for _, recs in mine) - sum(len(recs) for _, recs in todo)

    resolver = ClipResolver(cfg.clips, cfg.patterns)
    paths = {k: resolver.resolve(recs[0]) for k, recs in todo}
    if todo and not done and all(p is None for p, _ in paths.values()):
        k0 = todo[0][0]
        raise EvalError(f"no clip of {cfg.questions.name} found under {cfg.clips} (e.g. {k0}: {paths[k0][1]}); "
                        f"layouts tried in order: {patterns_help(resolver.layouts)}; set yours with "
                        f"--pattern, e.g. '{{dataset}}/{{subject}}/{{filename}}' or '{{video}}.mp4'")
    if todo:
        _answer_all(cfg, todo, paths, own, own_failed, shard, result, n_mine=sum(len(r) for _, r in mine))
    if shard.is_main:
        finalise(cfg.out, records, wait=shard.count > 1, poll_seconds=cfg.poll_seconds)
        result.merged = True
    return result


def _own_paths(out: Path, shard: Shard) -> tuple[Path, Path]:
    """Where this process appends answers and failures: the files themselves in a single run, their
    part N when sharded (each file has one writer)."""
    if shard.count == 1:
        return out, failed_path(out)
    suffix, failed = f".part{shard.index}", failed_path(out)
    return out.with_name(out.name + suffix), failed.with_name(failed.name + suffix)


def _done_ids(out: Path, own: Path, shard: Shard, ids: set) -> dict[str, str]:
    """``{id: answer}`` of the questions answered already: in the merged file or any part file (a
    non-empty answer wins). Only a file's writer repairs it (the main process the merged file,
    process N its part)."""
    single = own == out
    done: dict[str, str] = {}
    for p, repair in [(out, single or shard.is_main)] + [(p, single or p == own) for p in part_paths(out)]:
        # part files: of this run, or left by an interrupted sharded run
        for rid, line in read_prediction_lines(p, repair=repair).items():
            if not done.get(rid):
                done[rid] = json.loads(line)["answer"]
    stray = [i for i in done if i not in ids]
    if stray:
        raise EvalError(f"{out} holds {len(stray)} answer(s) to questions not in the question file "
                        f"(e.g. {stray[0]!r}): is --out the right file?")
    return done


def _failed_ids(out: Path) -> set[str]:
    fpath = failed_path(out)
    return set(read_failed([fpath, *part_paths(fpath)]))


def _make_agent(cfg: RunConfig):
    return Agent.from_args(model=cfg.model, adapter=cfg.adapter, load_in_4bit=cfg.load_in_4bit,
                           load_in_8bit=cfg.load_in_8bit, fallback=False)


def _select_gpu(shard: Shard) -> None:
    # One GPU per process: "cuda" then means this process's GPU (PartialState does this too).
    if shard.count > 1 and os.environ.get("LOCAL_RANK"):
        try:
            import torch  # deferred: seconds to import, and only sharded GPU runs need it

            if torch.cuda.is_available():
                torch.cuda.set_device(int(os.environ["LOCAL_RANK"]) % torch.cuda.device_count())
        except ImportError:
            pass


def _answer_clip(agent, key: str, recs, path: Path | None, why: str, fps: float | None):
    """(record, answer, failure reason) for each question of one clip. Short-clip questions: evidence
    computed once for all of them. Long-video questions: the video is spotted in chunks (any length in
    bounded memory, :func:`mevqa.megc.strs.spot_long_video`) and answered from its events."""
    lvqa = {rec.record_id: lvqa_question(rec.question) for rec in recs}
    ev = events = None
    if path is not None:
        try:
            if any(lvqa.values()):
                rate, intervals = spot_long_video(path, fps=folder_fps(path, recs[0], fps))
                events = events_from(intervals, rate)
            if not all(lvqa.values()):
                ev = compute_evidence(load_clip_for(path, recs[0], fps))
        except Exception as e:  # noqa: BLE001 - any data-dependent failure of one clip: record it, go on
            why, ev, events = one_line(e), None, None
    for rec in recs:
        kind = lvqa[rec.record_id]
        if (ev if kind is None else events) is None:
            yield rec, "", why
        elif not rec.question.strip():
            yield rec, "", "empty question"
        elif kind is not None:
            yield rec, answer_lvqa(events, kind), ""
        else:
            yield rec, agent.ask(ev, rec.question).text, ""


def _answer_all(cfg, todo, paths, own: Path, own_failed: Path, shard: Shard, result: RunResult, *, n_mine: int):
    _select_gpu(shard)
    agent = _make_agent(cfg)
    result.backend = agent.backend_name
    sink, fail_sink = Appender(own), Appender(own_failed)
    bar = tqdm(total=n_mine, initial=result.n_resumed, unit="q", file=sys.stderr, disable=not cfg.progress,
               dynamic_ncols=True, position=shard.index, smoothing=0.1,
               desc="eval" if shard.count == 1 else f"eval {shard.index + 1}/{shard.count}")
    t0 = time.perf_counter()
    try:
        for key, recs in todo:
            bar.set_postfix_str(key, refresh=False)
            for rec, answer, reason in _answer_clip(agent, key, recs, *paths[key], cfg.fps):
                if reason:
                    # side file first: a kill between the two writes re-asks the question, never
                    # leaves an unexplained empty answer
                    fail_sink.write(_failure(rec, key, paths[key][0], reason))
                    result.n_failed += 1
                else:
                    result.n_answered += 1
                sink.write(answer_line(rec, answer))
                bar.update(1)
            sink.sync()
            result.clips_done += 1
    finally:
        result.seconds = time.perf_counter() - t0
        bar.close()
        sink.close()
        fail_sink.close()


def _answer(line: str) -> str:
    return json.loads(line)["answer"]


def finalise(out: Path, records: Sequence[MegcRecord], *, wait: bool = False, poll_seconds: float = 1.0) -> None:
    """Merge ``out`` and its part files into ``out`` in question order (atomically), then remove the
    parts; the same for the failed side file. With ``wait`` (the main process of a sharded run),
    first wait until every question has a line somewhere."""
    order = [r.record_id for r in records]
    warned = 0.0
    while True:
        lines = dict(read_prediction_lines(out))
        for p in part_paths(out):
            for k, v in read_prediction_lines(p).items():
                if k not in lines or (_answer(v) and not _answer(lines[k])):  # a retried failure's answer wins
                    lines[k] = v
        missing = sum(1 for i in order if i not in lines)
        if not missing or not wait:
            break
        if time.monotonic() - warned > 60:
            print(f"mevqa eval: waiting for the other processes ({missing} question(s) left)", file=sys.stderr)
            warned = time.monotonic()
        time.sleep(poll_seconds)
    atomic_write(out, (lines[i] for i in order if i in lines))
    fpath = failed_path(out)
    fparts = part_paths(fpath)
    failed = read_failed([fpath, *fparts])
    # only questions whose final answer is empty: a kill between the side-file line and the answer
    # line re-asks the question, and it may have succeeded since
    failed = {i: f for i, f in failed.items() if i in lines and not _answer(lines[i])}
    if failed:
        atomic_write(fpath, (json.dumps(failed[i]) for i in order if i in failed))
    elif fpath.exists():
        fpath.unlink()
    for p in [*part_paths(out), *fparts]:
        p.unlink(missing_ok=True)


