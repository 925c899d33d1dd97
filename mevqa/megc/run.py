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

``mevqa eval --score PRED.jsonl --gt GT.jsonl [--report DIR]`` scores any prediction file with the
challenge's metrics (:mod:`mevqa.megc.report`, :func:`mevqa.megc.report.score_predictions`). ``mevqa eval --strs
OUT.csv --clips DIR [LIST.csv] [--gt GT.csv]`` runs spot-then-recognise over long videos (:mod:`mevqa.megc.strs`).
"""
from __future__ import annotations

import json
import os
import re
import string
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable, Sequence

from mevqa.io.megc import MegcFormatError, MegcRecord, group_by_clip, read_megc_jsonl
from mevqa.io.video import IMAGE_EXTENSIONS, VIDEO_EXTENSIONS, ClipError

__all__ = [
    "EvalError", "DEFAULT_PATTERNS", "ClipResolver", "Shard", "RunConfig", "RunResult", "run_eval", "main",
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
    if "dataset" not in d and (ds := _test_dataset(rec.video_id)):
        d["dataset"] = ds
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
            found = list(dict.fromkeys(_clip_at(p) for n in names for p in self.by_name().get(n, [])))
            if len(found) == 1:
                return found[0], ""
            if len(found) > 1:
                return None, (f"{len(found)} clips named {names[0]!r} under {self.root} ({found[0]}, {found[1]}): "
                              "give --pattern")
        tried = ", ".join(str(p.relative_to(self.root)) for p in self.bases(rec))
        return None, (f"no clip found under {self.root} (tried {tried} and the same with video extensions)" if tried
                      else f"no layout fits this record ({', '.join(self.layouts)})")

    def by_name(self) -> dict[str, list[Path]]:
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
    from mevqa.io.sheets import DATASET_FPS
    from mevqa.io.video import Clip, guess_dataset, list_frames

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


def one_line(e: BaseException) -> str:
    msg = str(e).strip().splitlines()[0] if str(e).strip() else ""
    return msg if isinstance(e, (ClipError, EvalError)) else f"{type(e).__name__}: {msg}".rstrip(": ")


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
    suffix, failed = f".part{shard.index}", failed_path(out)
    return out.with_name(out.name + suffix), failed.with_name(failed.name + suffix)


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
    from mevqa.answer.agent import Agent

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
    from mevqa.evidence.builder import compute_evidence

    ev = None
    if path is not None:
        try:
            ev = compute_evidence(load_clip_for(path, recs[0], fps))
        except Exception as e:  # noqa: BLE001 - any data-dependent failure of one clip: record it, go on
            why = one_line(e)
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
    atomic_write(out, (lines[i] for i in order if i in lines))
    fpath = failed_path(out)
    fparts = _part_paths(fpath)
    failed = read_failed([fpath, *fparts])
    # only questions whose final answer is empty: a kill between the side-file line and the answer
    # line re-asks the question, and it may have succeeded since
    failed = {i: f for i, f in failed.items() if i in lines and not json.loads(lines[i]).get("answer")}
    if failed:
        atomic_write(fpath, (json.dumps(failed[i]) for i in order if i in failed))
    elif fpath.exists():
        fpath.unlink()
    for p in [*_part_paths(out), *fparts]:
        p.unlink(missing_ok=True)


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


def _emit_report(rep, report_dir: str | None) -> None:
    from mevqa.megc.report import write_report

    print(rep.to_markdown(), end="")
    if report_dir:
        for p in write_report(rep, report_dir):
            print(f"wrote {p}", file=sys.stderr)


def _emit_strs(pred: Path, gt: Path, report_dir: str | None, failures: Sequence[dict] = ()) -> None:
    from mevqa.megc.strs import score_strs, strs_markdown, write_strs_report

    s = score_strs(pred, gt)
    md = strs_markdown(s, pred, gt, failures)
    print(md, end="")
    if report_dir:
        print(f"wrote {write_strs_report(s, md, report_dir, failures)[0]}", file=sys.stderr)


def _main_score(a) -> None:
    from mevqa.megc.report import score_predictions

    pred, gt = Path(a.score), Path(a.gt) if a.gt else None
    if gt is None:
        raise EvalError("--score needs --gt (the ground truth to score against)")
    if pred.suffix.lower() == ".csv" and gt.suffix.lower() == ".csv":
        _emit_strs(pred, gt, a.report)
    else:
        _emit_report(score_predictions(pred, gt), a.report)


def _main_strs(a) -> None:
    from mevqa.megc.strs import run_strs

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
    from mevqa.megc.report import failures_by_clip, score_predictions, write_run_report

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
