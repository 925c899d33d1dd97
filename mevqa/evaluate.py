"""Batch ME-VQA evaluation in the MEGC2025 format, with the challenge's metrics, and STRS.

``mevqa eval QUESTIONS.jsonl --clips DIR --out PRED.jsonl [--gt GT.jsonl]`` answers every question of
an MEGC question file (training or test layout) and writes the predictions in exactly the submission
format: the same keys in the same order and the same separators as the question file, ``answer``
filled, one line per question, in the question file's order.

How a run behaves, and why:

- **Evidence once per clip.** Questions are grouped by clip (:func:`mevqa.data.megc.group_by_clip`);
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

``mevqa eval --score PRED.jsonl --gt GT.jsonl [--report DIR]`` scores any prediction file; see
:func:`score_predictions` for what is reported. ``mevqa eval --strs OUT.csv --clips DIR [LIST.csv]
[--gt GT.csv]`` runs spot-then-recognise over long videos (:func:`run_strs`).
"""
from __future__ import annotations

import csv
import hashlib
import json
import math
import os
import re
import string
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Iterable, Sequence

from .data.megc import MegcFormatError, MegcRecord, group_by_clip, read_megc_jsonl
from .video import IMAGE_EXTENSIONS, VIDEO_EXTENSIONS, ClipError

if TYPE_CHECKING:
    from .metrics import ConfusionMatrix, VQAScores

__all__ = [
    "EvalError", "DEFAULT_PATTERNS", "ClipResolver", "Shard", "RunConfig", "RunResult", "run_eval",
    "GroupScores", "EvalReport", "score_predictions", "write_report", "StrsVideo", "run_strs", "main",
]


class EvalError(ValueError):
    """Bad input to the evaluator (file, layout, arguments); the message is one line."""


# =============================================================================================
# Where a record's clip lives
# =============================================================================================
# Tried in order; a layout whose fields a record lacks is skipped, and a layout without a file
# extension is also tried with each video extension (".mp4", ".avi", ...). The SAMM release numbers
# subject folders "006" while the MEGC files say subject "6", hence {subject:03d}.
DEFAULT_PATTERNS: tuple[str, ...] = (
    # test files: {"video": "SAMM-1"} / {"video": "CAS-1"}
    "{video}", "{dataset}/{video}", "{dataset}_test/{video}",
    # training files, a tree laid out like the JSONL (dataset/subject/clip)
    "{dataset}/{subject}/{filename}", "{subject}/{filename}", "{filename}", "{image_id}",
    # the datasets' own release layouts
    "CASME2_RAW_selected/{subject}/{filename}", "CASME2-RAW/{subject}/{filename}",
    "CASME2_RAW/{subject}/{filename}", "CASME2/{subject}/{filename}",
    "SAMM/{subject:03d}/{filename}", "{dataset}/{subject:03d}/{filename}", "{subject:03d}/{filename}",
    "SMIC/{subject}/{filename}",
)

# Frame rates of the datasets' frame folders, used when a folder's file names do not tell
# (SMIC-HS is 100 fps; CASME II and SAMM 200; CAS(ME)^3 30).
DATASET_FPS = {"casme2": 200.0, "samm": 200.0, "smic": 100.0, "casme3": 30.0}


class _NotApplicable(Exception):
    """A layout cannot be filled from this record (missing field, non-numeric subject for :03d)."""


class _PathFormatter(string.Formatter):
    def get_value(self, key, args, kwargs):
        value = kwargs.get(key)
        if value in (None, ""):
            raise _NotApplicable(key)
        return value

    def format_field(self, value, spec):
        if spec and spec[-1] in "dxob":  # numeric spec on a string field: "6" -> 006
            if not str(value).isdigit():
                raise _NotApplicable(spec)
            value = int(value)
        return super().format_field(value, spec)


_FMT = _PathFormatter()


def _test_dataset(video_id: str | None) -> str | None:
    # "samm_test_SAMM-1_1" -> "samm"; "casme3_test_CAS-1_1" -> "casme3"
    m = re.match(r"^(.+?)_test_", video_id or "")
    return m.group(1) if m else None


def record_fields(rec: MegcRecord) -> dict[str, str]:
    """The values a layout may use: the record's keys, plus ``dataset`` derived from a test
    record's ``video_id`` ("samm_test_SAMM-1_1" -> "samm")."""
    d = {k: v for k, v in rec.to_dict().items() if isinstance(v, str) and v and k not in ("question", "answer")}
    if "dataset" not in d and _test_dataset(rec.video_id):
        d["dataset"] = _test_dataset(rec.video_id)
    return d


def record_dataset(rec: MegcRecord) -> str:
    return rec.dataset or _test_dataset(rec.video_id) or "(none)"


def expand_pattern(pattern: str, fields: dict) -> str | None:
    """``pattern`` filled from ``fields``, or None where it does not apply to them."""
    try:
        return _FMT.format(pattern, **fields)
    except (_NotApplicable, ValueError, IndexError):
        return None


def _clip_at(p: Path) -> Path | None:
    """The clip a path names: a video file, a folder of frames, or a folder holding one video."""
    if p.is_file():
        return p if p.suffix.lower() in VIDEO_EXTENSIONS else None
    if not p.is_dir():
        return None
    videos = []
    for entry in os.scandir(p):
        ext = os.path.splitext(entry.name)[1].lower()
        if ext in IMAGE_EXTENSIONS:
            return p
        if ext in VIDEO_EXTENSIONS:
            videos.append(Path(entry.path))
    # an empty or odd folder is still "the clip": loading it says what is wrong with it
    return videos[0] if len(videos) == 1 else p


def patterns_help(patterns: Sequence[str] = DEFAULT_PATTERNS) -> str:
    return (" | ".join(patterns) + f" (each also with {'/'.join(VIDEO_EXTENSIONS)} added; last resort: "
            "the one file or folder anywhere under --clips named like the clip)")


@dataclass
class ClipResolver:
    """Finds each record's clip under ``root``: ``patterns`` (``--pattern``, several separated by
    "|") or :data:`DEFAULT_PATTERNS`; with the defaults, a unique file or folder named like the clip
    anywhere under ``root`` is the last resort (a layout nobody foresaw still works)."""

    root: Path
    patterns: tuple[str, ...] | None = None
    _index: dict | None = field(default=None, init=False, repr=False)

    @property
    def layouts(self) -> tuple[str, ...]:
        return self.patterns or DEFAULT_PATTERNS

    def bases(self, rec: MegcRecord) -> list[Path]:
        """The layouts filled from this record, in order (those it lacks fields for left out)."""
        fields = record_fields(rec)
        rels = (expand_pattern(pat, fields) for pat in self.layouts)
        return list(dict.fromkeys(self.root / r for r in rels if r))

    def candidates(self, rec: MegcRecord) -> list[Path]:
        out = []
        for base in self.bases(rec):
            out.append(base)
            if base.suffix.lower() not in VIDEO_EXTENSIONS:
                out += [base.with_name(base.name + ext) for ext in VIDEO_EXTENSIONS]
        return out

    def resolve(self, rec: MegcRecord) -> tuple[Path | None, str]:
        """(path, "") or (None, why not)."""
        for p in self.candidates(rec):
            if (clip := _clip_at(p)) is not None:
                return clip, ""
        if self.patterns is None:
            names = [v for k, v in record_fields(rec).items() if k in ("filename", "image_id", "video")]
            found = list(dict.fromkeys(_clip_at(p) for n in names for p in self._by_name().get(n, [])))
            if len(found) == 1:
                return found[0], ""
            if len(found) > 1:
                return None, (f"{len(found)} clips named {names[0]!r} under {self.root} ({found[0]}, {found[1]}): "
                              "give --pattern")
        tried = ", ".join(str(p.relative_to(self.root)) for p in self.bases(rec))
        return None, (f"no clip found under {self.root} (tried {tried} and the same with video extensions)" if tried
                      else f"no layout fits this record ({', '.join(self.layouts)})")

    def _by_name(self) -> dict[str, list[Path]]:
        # Built once, only when a layout fails: one walk of the tree, every video file by name and
        # stem, every folder by name.
        if self._index is None:
            index: dict[str, list[Path]] = {}
            for dirpath, dirnames, filenames in os.walk(self.root):
                dirnames[:] = sorted(d for d in dirnames if not d.startswith("."))
                for d in dirnames:
                    index.setdefault(d, []).append(Path(dirpath) / d)
                for f in sorted(filenames):
                    p = Path(dirpath) / f
                    if p.suffix.lower() in VIDEO_EXTENSIONS:
                        index.setdefault(p.stem, []).append(p)
                        index.setdefault(p.name, []).append(p)
            self._index = index
        return self._index


def load_clip_for(path: Path, rec: MegcRecord | None, fps: float | None):
    """Load a clip; ``fps`` applies to frame folders only (a video file knows its rate). A folder whose
    file names do not reveal its dataset gets the rate of the record's dataset."""
    from .video import Clip, guess_dataset, list_frames

    if not path.is_dir():
        return Clip.load(path)
    if fps is None and rec is not None:
        ds = record_dataset(rec)
        if ds in DATASET_FPS and guess_dataset([f.stem for f in list_frames(path)]) is None:
            fps = DATASET_FPS[ds]
    return Clip.load(path, fps=fps)


# =============================================================================================
# Prediction files: reading back, repairing, writing
# =============================================================================================
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


def read_prediction_lines(path: Path, *, repair: bool = False) -> dict[str, str]:
    """``{id: line}`` of a prediction (or part) file; first line per id wins.

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
    for lineno, raw in enumerate(body.decode("utf-8", errors="replace").splitlines(), start=1):
        if not raw.strip():
            continue
        try:
            rid = _line_id(json.loads(raw))
        except json.JSONDecodeError:
            rid = None
        if rid is None:
            raise EvalError(f"{path}:{lineno}: not a prediction line (damaged file?); move it away to start afresh")
        lines.setdefault(rid, raw)
    if tail.strip():
        try:
            rid = _line_id(json.loads(tail.decode("utf-8")))
        except (json.JSONDecodeError, UnicodeDecodeError):
            rid = None
        if rid is not None:
            lines.setdefault(rid, tail.decode("utf-8").strip())
        if repair:
            with path.open("r+b") as fh:
                if rid is None:
                    fh.truncate(cut)          # torn line: drop it, its question is answered again
                else:
                    fh.seek(0, os.SEEK_END)   # a complete record missing its newline: keep it
                    fh.write(b"\n")
    return lines


def _part_paths(out: Path) -> list[Path]:
    rx = re.compile(re.escape(out.name) + r"\.part(\d+)$")
    return sorted((p for p in out.parent.glob(out.name + ".part*") if rx.match(p.name)),
                  key=lambda p: int(rx.match(p.name).group(1)))


def failed_path(out: Path) -> Path:
    return out.with_name(out.name + ".failed.jsonl")


def _read_failed(paths: Iterable[Path]) -> dict[str, dict]:
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


def _atomic_write(path: Path, lines: Iterable[str]) -> None:
    tmp = path.with_name(path.name + ".tmp")
    with tmp.open("w", encoding="utf-8") as fh:
        for line in lines:
            fh.write(line + "\n")
        fh.flush()
        os.fsync(fh.fileno())
    tmp.replace(path)


class _Appender:
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


# =============================================================================================
# Processes
# =============================================================================================
@dataclass(frozen=True)
class Shard:
    """This process's share of the work: clips ``i`` with ``i % count == index``."""

    index: int = 0
    count: int = 1

    @property
    def is_main(self) -> bool:
        return self.index == 0

    @classmethod
    def from_env(cls) -> "Shard":
        """accelerate's PartialState under a launcher (``accelerate launch``, torchrun: they set
        ``MASTER_ADDR``), else plain ``RANK``/``WORLD_SIZE`` (any scheduler, or by hand: no process
        group is formed, so processes may start at different times). A plain run is one process and
        does not import accelerate, which costs seconds."""
        try:
            world = int(os.environ.get("WORLD_SIZE", "1") or 1)
            index = int(os.environ.get("RANK", "0") or 0)
        except ValueError:
            raise EvalError(f"RANK={os.environ.get('RANK')!r} / WORLD_SIZE={os.environ.get('WORLD_SIZE')!r} "
                            "are not numbers") from None
        if world <= 1:
            return cls()
        count = world
        if os.environ.get("MASTER_ADDR"):
            try:
                import torch
                from accelerate import PartialState

                # without cpu=True, PartialState on a machine with no GPU ignores the launcher's
                # processes and reports one (accelerate 1.x)
                st = PartialState(cpu=not torch.cuda.is_available())
                if int(st.num_processes) == world:  # else trust the launcher: never let all do all
                    index, count = int(st.process_index), int(st.num_processes)
            except ImportError:
                pass
        if not 0 <= index < count:
            raise EvalError(f"process index {index} is outside 0..{count - 1}")
        return cls(index, count)


# =============================================================================================
# Running
# =============================================================================================
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


def read_questions(path: Path) -> list[MegcRecord]:
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


def _failure(rec: MegcRecord, key: str, path: Path | None, reason: str) -> str:
    return json.dumps({"id": rec.record_id, "clip": key, "path": str(path) if path else None, "failed": reason})


def _one_line(e: BaseException) -> str:
    msg = str(e).strip().splitlines()[0] if str(e).strip() else ""
    return msg if isinstance(e, (ClipError, EvalError)) else f"{type(e).__name__}: {msg}".rstrip(": ")


def _clip_evidence(path: Path, rec: MegcRecord, fps: float | None):
    from .evidence import compute_evidence

    return compute_evidence(load_clip_for(path, rec, fps))


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
    done = _done_ids(cfg.out, own, shard, ids)
    result = RunResult(n_questions=len(records), n_done_before=len(done))

    groups = group_by_clip(records)
    mine = [(k, recs) for i, (k, recs) in enumerate(groups.items()) if i % shard.count == shard.index]
    todo = [(k, [r for r in recs if r.record_id not in done]) for k, recs in mine]
    todo = [(k, recs) for k, recs in todo if recs]
    result.n_resumed = sum(len(recs) for _, recs in mine) - sum(len(recs) for _, recs in todo)

    resolver = ClipResolver(cfg.clips, cfg.patterns)
    paths = {k: resolver.resolve(recs[0]) for k, recs in todo}
    if todo and all(p is None for p, _ in paths.values()):
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
    suffix = f".part{shard.index}"
    return out.with_name(out.name + suffix), failed_path(out).with_name(failed_path(out).name + suffix)


def _done_ids(out: Path, own: Path, shard: Shard, ids: set) -> set:
    """Questions answered already: in the merged file or any part file. Only a file's writer repairs
    it (the main process repairs the merged file, process N its part)."""
    single = own == out
    done: dict[str, str] = dict(read_prediction_lines(out, repair=single or shard.is_main))
    for p in _part_paths(out):  # parts of this run, or left by an interrupted sharded run
        done.update(read_prediction_lines(p, repair=single or p == own))
    stray = [i for i in done if i not in ids]
    if stray:
        raise EvalError(f"{out} holds {len(stray)} answer(s) to questions not in the question file "
                        f"(e.g. {stray[0]!r}): is --out the right file?")
    return set(done)


def _make_agent(cfg: RunConfig):
    from .agent import Agent

    return Agent.from_args(model=cfg.model, adapter=cfg.adapter, load_in_4bit=cfg.load_in_4bit,
                           load_in_8bit=cfg.load_in_8bit, fallback=False)


def _select_gpu(shard: Shard) -> None:
    # One GPU per process: "cuda" then means this process's GPU (PartialState does this too).
    if shard.count > 1 and os.environ.get("LOCAL_RANK"):
        try:
            import torch

            if torch.cuda.is_available():
                torch.cuda.set_device(int(os.environ["LOCAL_RANK"]) % torch.cuda.device_count())
        except ImportError:
            pass


def _answer_clip(agent, key: str, recs, path: Path | None, why: str, fps: float | None):
    """(record, answer, failure reason) for each question of one clip; evidence computed once."""
    ev = None
    if path is not None:
        try:
            ev = _clip_evidence(path, recs[0], fps)
        except Exception as e:  # noqa: BLE001 - any data-dependent failure of one clip: record it, go on
            why = _one_line(e)
    for rec in recs:
        if ev is None:
            yield rec, "", why
        elif not rec.question.strip():
            yield rec, "", "empty question"
        else:
            yield rec, agent.ask(ev, rec.question).text, ""


def _answer_all(cfg, todo, paths, own: Path, own_failed: Path, shard: Shard, result: RunResult, *, n_mine: int):
    from tqdm import tqdm

    _select_gpu(shard)
    agent = _make_agent(cfg)
    result.backend = agent.backend_name
    sink, fail_sink = _Appender(own), _Appender(own_failed)
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


def finalise(out: Path, records: Sequence[MegcRecord], *, wait: bool = False, poll_seconds: float = 1.0) -> None:
    """Merge ``out`` and its part files into ``out`` in question order (atomically), then remove the
    parts; the same for the failed side file. With ``wait`` (the main process of a sharded run),
    first wait until every question has a line somewhere."""
    order = [r.record_id for r in records]
    warned = 0.0
    while True:
        lines = dict(read_prediction_lines(out))
        for p in _part_paths(out):
            for k, v in read_prediction_lines(p).items():
                lines.setdefault(k, v)
        missing = sum(1 for i in order if i not in lines)
        if not missing or not wait:
            break
        if time.monotonic() - warned > 60:
            print(f"mevqa eval: waiting for the other processes ({missing} question(s) left)", file=sys.stderr)
            warned = time.monotonic()
        time.sleep(poll_seconds)
    _atomic_write(out, (lines[i] for i in order if i in lines))
    fpath = failed_path(out)
    fparts = sorted(out.parent.glob(fpath.name + ".part*"))
    failed = _read_failed([fpath, *fparts])
    # only questions whose final answer is empty: a kill between the side-file line and the answer
    # line re-asks the question, and it may have succeeded since
    failed = {i: f for i, f in failed.items() if i in lines and not json.loads(lines[i]).get("answer")}
    if failed:
        _atomic_write(fpath, (json.dumps(failed[i]) for i in order if i in failed))
    elif fpath.exists():
        fpath.unlink()
    for p in [*_part_paths(out), *fparts]:
        p.unlink(missing_ok=True)


# =============================================================================================
# Scoring
# =============================================================================================
CLOSED_ANSWERS = {"au_presence": ("yes", "no"), "au_side": ("left", "right")}


def _clean(x) -> str:
    return " ".join(str(x or "").lower().split())


def is_unparsable(kind: str, pred: str, labels: Iterable[str] = ()) -> bool:
    """True when a prediction is not an answer of its question's form (empty included); such
    answers are scored as they are, i.e. wrong."""
    from .facs import COARSE_CLASSES, FINE_CLASSES, find_au
    from .questions import parse_analysis_sentence

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
    vqa: "VQAScores"
    unparsable: dict[str, int]         # per kind: answered, but not in the question's form
    missing: int = 0                   # no prediction line (scored as "")
    failed: int = 0                    # clip failed (answered "")
    coarse_confusion: "ConfusionMatrix | None" = None
    fine_confusion: "ConfusionMatrix | None" = None

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
    from .facs import COARSE_CLASSES, FINE_CLASSES
    from .metrics import confusion_matrix, vqa_scores

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


def _failures_by_clip(failed: dict[str, dict], ids: set | None = None) -> list[dict]:
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
    gt_recs = read_questions(gt)
    if all(not r.answer.strip() for r in gt_recs):
        raise EvalError(f"{gt}: every answer is empty: that is a question file, not ground truth")
    pred_lines = read_prediction_lines(pred)
    if not pred_lines and not pred.exists():
        raise EvalError(f"prediction file not found: {pred}")
    preds = {}
    for rid, line in pred_lines.items():
        answer = json.loads(line).get("answer") or ""  # anyone's file: id and answer are all we need
        if not isinstance(answer, str):
            raise EvalError(f"{pred}: answer of {rid!r} is not a string")
        preds[rid] = answer
    gt_ids = {r.record_id for r in gt_recs}
    if preds and not gt_ids & set(preds):
        raise EvalError(f"no prediction id of {pred} is in {gt}: are they the same question set?")
    fpath = Path(failed) if failed else failed_path(pred)
    failed_map = _read_failed([fpath])
    return _build_report(str(pred), str(gt), gt_recs, preds, failed_map)


def _build_report(pred_name, gt_name, gt_recs, preds: dict, failed_map: dict) -> EvalReport:
    from .questions import question_type

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
        n_extra=len(set(preds) - {r.record_id for r in gt_recs}),
        overall=group_scores("all", items, confusion=True),
        by_dataset={k: group_scores(k, v, confusion=True) for k, v in datasets.items()},
        by_subject={k: group_scores(k, v) for k, v in sorted(subjects.items(), key=lambda kv: _natural(kv[0]))},
        failures=_failures_by_clip(failed_map, {r.record_id for r in gt_recs}),
    )


def _natural(s: str):
    return [int(t) if t.isdigit() else t for t in re.split(r"(\d+)", s)]


# -- Markdown ------------------------------------------------------------------------------------
def _f(x, digits: int = 3) -> str:
    return "–" if x is None else f"{x:.{digits}f}"


_ROWS = (
    ("questions", lambda g: str(g.n)),
    ("coarse UF1", lambda g: _f(g.vqa.coarse_uf1)),
    ("coarse UAR", lambda g: _f(g.vqa.coarse_uar)),
    ("fine UF1", lambda g: _f(g.vqa.fine_uf1)),
    ("fine UAR", lambda g: _f(g.vqa.fine_uar)),
    ("AU-set F1, micro", lambda g: _f(g.vqa.au_list.micro.f1 if g.vqa.au_list else None)),
    ("AU-set F1, macro over AUs", lambda g: _f(g.vqa.au_list.macro_f1 if g.vqa.au_list else None)),
    ("AU-set exact match", lambda g: _f(g.vqa.au_list.exact if g.vqa.au_list else None)),
    ("yes/no accuracy", lambda g: _f(g.vqa.presence_accuracy)),
    ("left/right accuracy", lambda g: _f(g.vqa.side_accuracy)),
    ("analysis exact match", lambda g: _f(g.vqa.analysis_exact)),
    ("BLEU (sentence, smoothed, mean)", lambda g: _f(g.vqa.bleu_sentence_smoothed)),
    ("BLEU-4 (corpus, sacreBLEU)", lambda g: _f(g.vqa.bleu_corpus4)),
    ("ROUGE-1 recall", lambda g: _f(g.vqa.rouge1_recall)),
    ("ROUGE-1 F1", lambda g: _f(g.vqa.rouge1_f1)),
    ("unparsable answers (wrong)", lambda g: str(sum(g.unparsable.values()))),
    ("missing answers (wrong)", lambda g: str(g.missing)),
    ("failed-clip answers (wrong)", lambda g: str(g.failed)),
)

_SUBJECT_COLS = (
    ("n", lambda g: str(g.n)),
    ("coarse UF1", lambda g: _f(g.vqa.coarse_uf1)), ("coarse UAR", lambda g: _f(g.vqa.coarse_uar)),
    ("fine UF1", lambda g: _f(g.vqa.fine_uf1)), ("fine UAR", lambda g: _f(g.vqa.fine_uar)),
    ("AU-set F1", lambda g: _f(g.vqa.au_list.micro.f1 if g.vqa.au_list else None)),
    ("yes/no", lambda g: _f(g.vqa.presence_accuracy)), ("left/right", lambda g: _f(g.vqa.side_accuracy)),
    ("BLEU sent.", lambda g: _f(g.vqa.bleu_sentence_smoothed)), ("ROUGE-1 F1", lambda g: _f(g.vqa.rouge1_f1)),
)


def _table(header: Sequence[str], rows: Iterable[Sequence[str]]) -> list[str]:
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
    lines += _table(["metric"] + [g.name for g in groups], ([name] + [fn(g) for g in groups] for name, fn in _ROWS))
    au = rep.overall.vqa.au_list
    if au is not None and au.per_au:
        lines += ["", "## Per action unit (AU-list questions)", ""]
        per = sorted(au.per_au.items(), key=lambda kv: (-(kv[1].tp + kv[1].fn), kv[0]))
        lines += _table(["action unit", "F1", "precision", "recall", "in truth", "predicted"],
                        ([k, _f(v.f1), _f(v.precision), _f(v.recall), str(v.tp + v.fn), str(v.tp + v.fp)]
                         for k, v in per))
    if rep.by_subject:
        lines += ["", "## Per subject", ""]
        lines += _table(["subject"] + [c for c, _ in _SUBJECT_COLS],
                        ([k] + [fn(g) for _, fn in _SUBJECT_COLS] for k, g in rep.by_subject.items()))
    if rep.failures:
        lines += ["", "## Failed clips (their answers are empty and count as wrong)", ""]
        lines += _table(["clip", "questions", "reason"],
                        ([str(f["clip"]), str(f["questions"]), str(f["reason"]).replace("|", "/")]
                         for f in rep.failures))
    lines += ["", "Metric variants:", ""] + [f"- {k}: {v}" for k, v in METRIC_VARIANTS.items()]
    return "\n".join(lines) + "\n"


def plot_confusion(cm, title: str, path: Path) -> Path:
    """A confusion matrix as PNG: rows the true class, columns the prediction (the last column, when
    present, counts answers outside the class list, empty ones included)."""
    import matplotlib

    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt
    import numpy as np

    counts = np.array(cm.counts, dtype=float)
    cols = list(cm.labels)
    if any(cm.other):
        counts = np.column_stack([counts, cm.other])
        cols.append("(other)")
    fig, ax = plt.subplots(figsize=(1.0 + 0.75 * len(cols), 1.0 + 0.7 * len(cm.labels)))
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
    ax.set_title(title, fontsize=9)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path


def write_report(rep: EvalReport, out_dir: str | Path) -> list[Path]:
    """report.json, report.md and confusion_{coarse,fine}[_DATASET].png in ``out_dir``."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    written = [out / "report.json", out / "report.md"]
    written[0].write_text(json.dumps(rep.to_dict(), indent=1, ensure_ascii=False) + "\n", encoding="utf-8")
    written[1].write_text(rep.to_markdown(), encoding="utf-8")
    groups = [("", rep.overall)]
    if len(rep.by_dataset) > 1:
        groups += [("_" + re.sub(r"[^A-Za-z0-9_.-]", "_", k), g) for k, g in rep.by_dataset.items()]
    for suffix, g in groups:
        for kind, cm in (("coarse", g.coarse_confusion), ("fine", g.fine_confusion)):
            if cm is not None:
                n = sum(map(sum, cm.counts)) + sum(cm.other)
                written.append(plot_confusion(cm, f"{kind} classes: {g.name} ({n} questions)",
                                              out / f"confusion_{kind}{suffix}.png"))
    return written


def write_run_report(result: RunResult, failures: list[dict], out_dir: str | Path) -> list[Path]:
    """Without ground truth: what was run and what failed."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    (out / "report.json").write_text(json.dumps({"run": result.to_dict(), "failures": failures}, indent=1) + "\n")
    md = ["# ME-VQA run", "", f"{result.n_questions} questions; answered now {result.n_answered}, "
          f"resumed {result.n_resumed}, failed now {result.n_failed}; backend: {result.backend or '-'}."]
    if failures:
        rows = ([str(f["clip"]), str(f["questions"]), str(f["reason"])] for f in failures)
        md += ["", "## Failed clips", ""] + _table(["clip", "questions", "reason"], rows)
    (out / "report.md").write_text("\n".join(md) + "\n")
    return [out / "report.json", out / "report.md"]


# =============================================================================================
# STRS: spot, then recognise, on long videos
# =============================================================================================
@dataclass
class StrsVideo:
    subject: str
    video: str
    path: Path | None
    reason: str = ""

    @property
    def key(self) -> str:
        return f"{self.subject}/{self.video}"


# CSV-named videos: where (subject, video) lives under --clips. CAS(ME)^2 uses "s15/15_0101...",
# SAMM long videos "006_1", CASME II-like trees "sub01/EP02_01f".
STRS_PATTERNS = ("{subject}/{video}", "s{subject}/{video}", "sub{subject:02d}/{video}", "{subject:03d}/{video}",
                 "{video}")

# Long videos are read in chunks so memory stays bounded (a 10-minute 30 fps video would be ~10 GB
# of frames at once); chunks overlap by more than the longest macro-expression (4 s) and each keeps
# only the intervals whose middle lies in its own half of the overlaps.
STRS_CHUNK_SECONDS, STRS_OVERLAP_SECONDS, STRS_MAX_FPS, STRS_MAX_SIDE = 30.0, 5.0, 50.0, 640


def _subject_of(rel: Path) -> str:
    """A subject id from a clip's place: its parent folder ("sub01", "s15", "006" -> "1", "15", "6"),
    else the leading digits of its name ("006_1" -> "6"); "" when neither says. Numbers are written
    without leading zeros, as the MEGC STRS ground truth writes subjects."""
    m = re.fullmatch(r"(?:sub|s)?0*(\d+)", rel.parent.name, re.I) or re.match(r"0*(\d+)_", rel.name)
    return m.group(1) if m else rel.parent.name


def discover_videos(root: Path) -> list[StrsVideo]:
    """Every clip under ``root``: video files, and folders that directly hold image frames."""
    found = []
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames[:] = sorted(d for d in dirnames if not d.startswith("."))
        d = Path(dirpath)
        if d != root and any(Path(f).suffix.lower() in IMAGE_EXTENSIONS for f in filenames):
            rel = d.relative_to(root)
            found.append(StrsVideo(_subject_of(rel), d.name, d))
            dirnames[:] = []
            continue
        for f in sorted(filenames):
            if Path(f).suffix.lower() in VIDEO_EXTENSIONS:
                rel = (d / f).relative_to(root)
                found.append(StrsVideo(_subject_of(rel), Path(f).stem, d / f))
    return found


def listed_videos(root: Path, listing: Path) -> list[StrsVideo]:
    """The (subject, video) pairs of a CSV (an STRS ground truth works), resolved under ``root``."""
    try:
        with listing.open(newline="", encoding="utf-8-sig") as fh:
            rows = list(csv.DictReader(fh))
    except OSError as e:
        raise EvalError(f"cannot read {listing}: {e.strerror or e}") from None
    if not rows or not {"subject", "video"} <= {(k or "").strip().lower() for k in rows[0]}:
        raise EvalError(f"{listing}: need a header with 'subject' and 'video' columns")
    pairs = dict.fromkeys((str(r[k1]).strip(), str(r[k2]).strip()) for r in rows
                          for k1 in r if k1.strip().lower() == "subject" for k2 in r if k2.strip().lower() == "video")
    resolver, by_name = ClipResolver(root, STRS_PATTERNS), ClipResolver(root)
    out = []
    for subject, video in pairs:
        path, why = resolver.resolve(MegcRecord(question="", subject=subject, video=video))
        if path is None:  # last resort: the one clip with this name anywhere under root
            found = by_name._by_name().get(video, [])
            path, why = (found[0], "") if len(found) == 1 else (None, why)
        out.append(StrsVideo(subject, video, path, why))
    return out


def _video_fps(path: Path, fps: float | None) -> float:
    import cv2

    from .video import FOLDER_PATTERNS, guess_dataset, list_frames

    if path.is_dir():
        if fps:
            return float(fps)
        ds = guess_dataset([f.stem for f in list_frames(path)])
        if ds is None:
            raise ClipError(f"{path}: a frame folder carries no frame rate; pass --fps")
        return FOLDER_PATTERNS[ds][1]
    cap = cv2.VideoCapture(str(path))
    try:
        if not cap.isOpened():
            raise ClipError(f"{path}: cannot open the video")
        rate = fps or cap.get(cv2.CAP_PROP_FPS)
    finally:
        cap.release()
    if not rate or rate <= 0:
        raise ClipError(f"{path}: the video has no frame rate; pass --fps")
    return float(rate)


def _read_frames(path: Path, step: int):
    """(source frame number, RGB frame) for every ``step``-th frame, streamed, resized to at most
    ``STRS_MAX_SIDE`` on the longer side."""
    import cv2

    from .video import frame_number, list_frames

    def fit(bgr):
        h, w = bgr.shape[:2]
        s = STRS_MAX_SIDE / max(h, w)
        if s < 1:
            bgr = cv2.resize(bgr, (round(w * s), round(h * s)), interpolation=cv2.INTER_AREA)
        return cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)

    if path.is_dir():
        for f in list_frames(path)[::step]:
            bgr = cv2.imread(str(f), cv2.IMREAD_COLOR)
            if bgr is None:
                raise ClipError(f"{f}: cannot read the image")
            yield frame_number(f.name), fit(bgr)
        return
    cap = cv2.VideoCapture(str(path))
    i = 0
    try:
        while True:
            ok = cap.grab()
            if not ok:
                break
            if i % step == 0:
                ok, bgr = cap.retrieve()
                if not ok:
                    break
                yield i, fit(bgr)
            i += 1
    finally:
        cap.release()


def _chunks(items, per_chunk: int, overlap: int):
    """(chunk, is_last): lists of ``per_chunk`` consecutive items (the last may be shorter), each
    starting ``per_chunk - overlap`` after the previous; a chunk is never only the previous one's
    overlap."""
    it = iter(items)
    buf = []
    for item in it:
        buf.append(item)
        if len(buf) == per_chunk:
            nxt = next(it, None)
            yield buf, nxt is None
            if nxt is None:
                return
            buf = buf[per_chunk - overlap:] + [nxt]
    if buf:
        yield buf, True


def spot_video(path: Path, *, fps: float | None = None) -> list[tuple[int, int, str]]:
    """(onset, offset, emotion) of every interval spotted in a long video, in its own frame numbers
    (a frame folder's numbering, else 0-based). Emotion: the top FACS-rule emotion of the interval,
    "others" when no rule matched."""
    import numpy as np

    from .evidence import EvidenceConfig, compute_evidence
    from .face import FaceError
    from .metrics import iou
    from .video import Clip

    rate = _video_fps(path, fps)
    step = max(1, math.ceil(rate / STRS_MAX_FPS - 1e-6))
    sub_fps = rate / step
    per_chunk = max(8, int(round(STRS_CHUNK_SECONDS * sub_fps)))
    overlap = min(per_chunk // 2, int(round(STRS_OVERLAP_SECONDS * sub_fps)))
    config = EvidenceConfig(max_intervals=100_000, assume_expression=False)
    rows, n_chunks, errors = [], 0, []
    for chunk, last in _chunks(_read_frames(path, step), per_chunk, overlap):
        n_chunks += 1
        numbers = np.array([n for n, _ in chunk])
        try:
            ev = compute_evidence(Clip(np.stack([f for _, f in chunk]), sub_fps, str(path), numbers), config=config)
        except FaceError as e:  # the face is lost for a while (turned away, out of frame): skip that stretch
            errors.append(e)
            continue
        lo = 0 if n_chunks == 1 else overlap / 2
        hi = len(chunk) if last else len(chunk) - overlap / 2
        for iv in ev.intervals:
            if not lo <= (iv.onset + iv.offset) / 2 < hi:
                continue  # the neighbouring chunk sees this one whole: it reports it
            on, off = int(numbers[iv.onset]), int(numbers[iv.offset])
            # the two chunks may place one expression a little differently around the midpoint rule
            if any(iou((on, off), (a, b)) >= 0.5 for a, b, _ in rows[-4:]):
                continue
            rows.append((on, off, iv.top_emotion["fine"] if iv.top_emotion else "others"))
    if n_chunks == 0:
        raise ClipError(f"{path}: no frames")
    if len(errors) == n_chunks:
        raise errors[-1]
    return rows


def _strs_part(out: Path, index: int) -> Path:
    return out.with_name(f"{out.name}.part{index}.json")


def run_strs(out: Path, clips: Path, *, listing: Path | None = None, fps: float | None = None,
             progress: bool = True, poll_seconds: float = 1.0, shard: Shard | None = None
             ) -> tuple[list[dict], list[dict]]:
    """Spot and recognise every video (under ``clips``, or those a CSV names); write the MEGC STRS CSV
    ``subject,video,onset,offset,emotion``. Returns (rows, failures) of this process. Sharded like
    :func:`run_eval`: process N writes ``OUT.csv.partN.json``, the main process gathers them and
    writes the CSV (its return value is then everyone's)."""
    from tqdm import tqdm

    if not clips.is_dir():
        raise EvalError(f"--clips {clips}: no such folder")
    videos = listed_videos(clips, listing) if listing else discover_videos(clips)
    if not videos:
        raise EvalError(f"no video or frame folder under {clips}")
    if all(v.path is None for v in videos):
        raise EvalError(f"none of the {len(videos)} videos of {listing} found under {clips} "
                        f"(e.g. {videos[0].key}: {videos[0].reason}); layouts tried: {' | '.join(STRS_PATTERNS)}")
    shard = shard or Shard.from_env()
    signature = hashlib.sha1(json.dumps([v.key for v in videos] + [shard.count]).encode()).hexdigest()[:12]
    mine = [v for i, v in enumerate(videos) if i % shard.count == shard.index]
    rows, failures = [], []
    for v in tqdm(mine, unit="video", file=sys.stderr, disable=not progress, position=shard.index, desc="strs"):
        try:
            if v.path is None:
                raise ClipError(v.reason)
            rows += [{"subject": v.subject, "video": v.video, "onset": a, "offset": b, "emotion": e}
                     for a, b, e in spot_video(v.path, fps=fps)]
        except Exception as e:  # noqa: BLE001 - one unreadable video must not stop the others
            failures.append({"subject": v.subject, "video": v.video, "path": str(v.path) if v.path else None,
                             "reason": _one_line(e)})
    if shard.count > 1:
        part = _strs_part(out, shard.index)
        _atomic_write(part, [json.dumps({"signature": signature, "rows": rows, "failures": failures})])
        if not shard.is_main:
            return rows, failures
        rows, failures = _gather_strs(out, shard.count, signature, poll_seconds)
    order = {v.key: i for i, v in enumerate(videos)}
    rows.sort(key=lambda r: (order.get(f"{r['subject']}/{r['video']}", 0), r["onset"], r["offset"]))
    _write_strs_csv(out, rows)
    return rows, failures


def _gather_strs(out: Path, count: int, signature: str, poll_seconds: float):
    parts: dict[int, dict] = {}
    while len(parts) < count:
        for i in range(count):
            p = _strs_part(out, i)
            if i not in parts and p.exists():
                try:
                    obj = json.loads(p.read_text())
                except (json.JSONDecodeError, OSError):
                    continue
                if obj.get("signature") == signature:
                    parts[i] = obj
        if len(parts) < count:
            time.sleep(poll_seconds)
    for i in range(count):
        _strs_part(out, i).unlink(missing_ok=True)
    return ([r for i in range(count) for r in parts[i]["rows"]],
            [f for i in range(count) for f in parts[i]["failures"]])


def _write_strs_csv(out: Path, rows: list[dict]) -> None:
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(out.name + ".tmp")
    with tmp.open("w", newline="", encoding="utf-8") as fh:
        w = csv.writer(fh)
        w.writerow(["subject", "video", "onset", "offset", "emotion"])
        for r in rows:
            w.writerow([r["subject"], r["video"], r["onset"], r["offset"], r["emotion"]])
    tmp.replace(out)


def score_strs(pred: Path, gt: Path):
    """STRS scores of two STRS CSVs (spotting at IoU >= 0.5, recognition UF1 on the spotted TPs)."""
    from .metrics import MetricInputError, read_strs_csv, strs_scores

    try:
        return strs_scores(read_strs_csv(pred), read_strs_csv(gt))
    except MetricInputError as e:
        raise EvalError(str(e)) from None


def strs_markdown(s, pred: Path, gt: Path, failures: Sequence[dict] = ()) -> str:
    sp = s.spotting
    lines = [f"# STRS: {pred.name} vs {gt.name}", ""]
    lines += _table(["metric", "value"], [
        ["spotting TP / FP / FN", f"{sp.tp} / {sp.fp} / {sp.fn}"],
        ["spotting precision", _f(sp.precision)], ["spotting recall", _f(sp.recall)], ["spotting F1", _f(sp.f1)],
        ["recognition F1 (UF1 on spotted TPs)", _f(s.recognition_uf1)],
        ["recognition UAR", _f(s.recognition_uar)], ["recognition accuracy", _f(s.recognition_accuracy)],
        ["STRS = spotting F1 x recognition F1", _f(s.strs)],
    ])
    if failures:
        lines += ["", "## Failed videos", ""] + _table(["subject", "video", "reason"],
                                                       ([f["subject"], f["video"], f["reason"]] for f in failures))
    lines += ["", "Spotting: IoU >= 0.5, frames inclusive, one prediction per ground truth, pooled over videos."]
    return "\n".join(lines) + "\n"


# =============================================================================================
# Command line (mevqa eval)
# =============================================================================================
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


def _emit_report(rep: EvalReport, report_dir: str | None) -> None:
    print(rep.to_markdown(), end="")
    if report_dir:
        for p in write_report(rep, report_dir):
            print(f"wrote {p}", file=sys.stderr)


def _main_score(a) -> None:
    pred, gt = Path(a.score), Path(a.gt) if a.gt else None
    if gt is None:
        raise EvalError("--score needs --gt (the ground truth to score against)")
    if pred.suffix.lower() == ".csv" and gt.suffix.lower() == ".csv":
        s = score_strs(pred, gt)
        md = strs_markdown(s, pred, gt)
        print(md, end="")
        if a.report:
            _write_strs_report(s, md, a.report)
        return
    _emit_report(score_predictions(pred, gt), a.report)


def _write_strs_report(s, md: str, report_dir: str, failures: Sequence[dict] = ()) -> None:
    out = Path(report_dir)
    out.mkdir(parents=True, exist_ok=True)
    (out / "strs_report.json").write_text(json.dumps({**s.to_dict(), "failures": list(failures)}, indent=1) + "\n")
    (out / "strs_report.md").write_text(md)
    print(f"wrote {out / 'strs_report.json'}", file=sys.stderr)


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
        s = score_strs(out, Path(a.gt))
        md = strs_markdown(s, out, Path(a.gt), failures)
        print(md, end="")
        if a.report:
            _write_strs_report(s, md, a.report, failures)


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
    failures = _failures_by_clip(_read_failed([failed_path(out)]))
    n_failed = sum(f["questions"] for f in failures)
    print(_summary(res, out, n_failed), file=sys.stderr)
    if a.gt:
        rep = score_predictions(out, a.gt)
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
