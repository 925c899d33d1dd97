"""STRS: spot, then recognise, on long videos (``mevqa eval --strs OUT.csv --clips DIR [LIST.csv] [--gt GT.csv]``).

Every long video (under ``--clips``, or those a CSV names) is read in overlapping chunks, its
micro-expression intervals spotted and each given the emotion of the FACS rules; the result is the
MEGC STRS CSV ``subject,video,onset,offset,emotion``, scored against an STRS ground truth with
:func:`score_strs`. Sharded over processes like the VQA run (:class:`mevqa.megc.shard.Shard`).
"""
from __future__ import annotations

import csv
import hashlib
import json
import math
import os
import re
import sys
import time
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Sequence

import cv2
import numpy as np
from tqdm import tqdm

from mevqa.evidence.builder import EvidenceConfig, IntervalEvidence, compute_evidence
from mevqa.face.landmarks import FaceError
from mevqa.io.megc import MegcRecord
from mevqa.io.video import (
    FOLDER_PATTERNS, IMAGE_EXTENSIONS, VIDEO_EXTENSIONS, Clip, ClipError, frame_number, guess_dataset, list_frames,
)
from mevqa.megc.class_metrics import MetricInputError
from mevqa.megc.clips import ClipResolver
from mevqa.megc.records import EvalError, atomic_write, one_line
from mevqa.megc.report import fmt, md_table, write_json_md
from mevqa.megc.shard import Shard
from mevqa.megc.spotting_metrics import iou, read_strs_csv, strs_scores

__all__ = [
    "StrsVideo", "STRS_PATTERNS", "STRS_EVIDENCE", "discover_videos", "listed_videos", "spot_long_video", "spot_video",
    "run_strs", "score_strs", "strs_markdown", "write_strs_report",
]


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
# every interval of a chunk, and none assumed where nothing stood out
STRS_EVIDENCE = EvidenceConfig(max_intervals=100_000, assume_expression=False)


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
    resolver = ClipResolver(root, STRS_PATTERNS)
    out = []
    for subject, video in pairs:
        path, why = resolver.resolve(MegcRecord(question="", subject=subject, video=video))
        if path is None:  # last resort: the one clip with this name anywhere under root
            found = resolver.by_name().get(video, [])
            path, why = (found[0], "") if len(found) == 1 else (None, why)
        out.append(StrsVideo(subject, video, path, why))
    return out


def _video_fps(path: Path, fps: float | None) -> float:
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


def spot_long_video(path: Path, *, fps: float | None = None) -> tuple[float, list[IntervalEvidence]]:
    """(the video's frame rate, every interval spotted in it) for a video of any length, read in chunks
    (memory bounded by a chunk, not by the video). Intervals carry the video's own frame numbers (a
    frame folder's numbering, else 0-based) and rate, their AUs and emotions; their images are dropped."""
    rate = _video_fps(path, fps)
    step = max(1, math.ceil(rate / STRS_MAX_FPS - 1e-6))
    sub_fps = rate / step
    per_chunk = max(8, int(round(STRS_CHUNK_SECONDS * sub_fps)))
    overlap = min(per_chunk // 2, int(round(STRS_OVERLAP_SECONDS * sub_fps)))
    out: list[IntervalEvidence] = []
    n_chunks, errors = 0, []
    for chunk, last in _chunks(_read_frames(path, step), per_chunk, overlap):
        n_chunks += 1
        numbers = np.array([n for n, _ in chunk])
        try:
            ev = compute_evidence(Clip(np.stack([f for _, f in chunk]), sub_fps, str(path), numbers),
                                  config=STRS_EVIDENCE)
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
            if any(iou((on, off), (k.onset, k.offset)) >= 0.5 for k in out[-4:]):
                continue
            out.append(replace(iv, index=len(out), onset=on, apex=int(numbers[iv.apex]), offset=off, fps=rate,
                               images={}))
    if n_chunks == 0:
        raise ClipError(f"{path}: no frames")
    if len(errors) == n_chunks:
        raise errors[-1]
    return rate, out


def spot_video(path: Path, *, fps: float | None = None) -> list[tuple[int, int, str]]:
    """(onset, offset, emotion) of every interval spotted in a long video (:func:`spot_long_video`).
    Emotion: the top FACS-rule emotion of the interval, "others" when no rule matched."""
    return [(iv.onset, iv.offset, iv.top_emotion["fine"] if iv.top_emotion else "others")
            for iv in spot_long_video(path, fps=fps)[1]]


def _strs_part(out: Path, index: int) -> Path:
    return out.with_name(f"{out.name}.part{index}.json")


def run_strs(out: Path, clips: Path, *, listing: Path | None = None, fps: float | None = None,
             progress: bool = True, poll_seconds: float = 1.0, shard: Shard | None = None
             ) -> tuple[list[dict], list[dict]]:
    """Spot and recognise every video (under ``clips``, or those a CSV names); write the MEGC STRS CSV
    ``subject,video,onset,offset,emotion``. Returns (rows, failures) of this process. Sharded like
    :func:`run_eval`: process N writes ``OUT.csv.partN.json``, the main process gathers them and
    writes the CSV (its return value is then everyone's)."""
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
                             "reason": one_line(e)})
    if shard.count > 1:
        part = _strs_part(out, shard.index)
        atomic_write(part, [json.dumps({"signature": signature, "rows": rows, "failures": failures})])
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
    try:
        return strs_scores(read_strs_csv(pred), read_strs_csv(gt))
    except MetricInputError as e:
        raise EvalError(str(e)) from None


def strs_markdown(s, pred: Path, gt: Path, failures: Sequence[dict] = ()) -> str:
    sp = s.spotting
    lines = [f"# STRS: {pred.name} vs {gt.name}", ""]
    lines += md_table(["metric", "value"], [
        ["spotting TP / FP / FN", f"{sp.tp} / {sp.fp} / {sp.fn}"],
        ["spotting precision", fmt(sp.precision)], ["spotting recall", fmt(sp.recall)], ["spotting F1", fmt(sp.f1)],
        ["recognition F1 (UF1 on spotted TPs)", fmt(s.recognition_uf1)],
        ["recognition UAR", fmt(s.recognition_uar)], ["recognition accuracy", fmt(s.recognition_accuracy)],
        ["STRS = spotting F1 x recognition F1", fmt(s.strs)],
    ])
    if failures:
        lines += ["", "## Failed videos", ""] + md_table(["subject", "video", "reason"],
                                                         ([f["subject"], f["video"], f["reason"]] for f in failures))
    lines += ["", "Spotting: IoU >= 0.5, frames inclusive, one prediction per ground truth, pooled over videos."]
    return "\n".join(lines) + "\n"


def write_strs_report(s, md: str, report_dir: str | Path, failures: Sequence[dict] = ()) -> list[Path]:
    """strs_report.json (the scores and the failed videos) and strs_report.md in ``report_dir``."""
    return write_json_md(report_dir, "strs_report", {**s.to_dict(), "failures": list(failures)}, md)
