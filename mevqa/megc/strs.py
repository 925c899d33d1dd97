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
import os
import re
import sys
import time
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Sequence

from tqdm import tqdm

from mevqa.evidence.builder import EvidenceConfig, IntervalEvidence
from mevqa.evidence.stream import spot_stream
from mevqa.io.megc import MegcRecord
from mevqa.io.video import IMAGE_EXTENSIONS, VIDEO_EXTENSIONS, ClipError
from mevqa.megc.class_metrics import MetricInputError
from mevqa.megc.clips import ClipResolver
from mevqa.megc.records import EvalError, atomic_write, one_line
from mevqa.megc.report import fmt, md_table, write_json_md
from mevqa.megc.shard import Shard
from mevqa.megc.spotting_metrics import read_strs_csv, strs_scores

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

# Long videos are streamed in chunks so memory stays bounded (a 10-minute 30 fps video would be ~10 GB
# of frames at once); chunks overlap by twice the spotter's 2 s reference lag plus the longest
# macro-expression (4 s) and each keeps only the intervals whose middle lies in its own half of the
# overlaps (:mod:`mevqa.evidence.stream`).
STRS_CHUNK_SECONDS, STRS_OVERLAP_SECONDS, STRS_MAX_FPS, STRS_MAX_SIDE = 30.0, 10.0, 50.0, 640
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


def spot_long_video(path: Path, *, fps: float | None = None) -> tuple[float, list[IntervalEvidence]]:
    """(the video's frame rate, every interval spotted in it) for a video of any length, streamed
    (:func:`mevqa.evidence.stream.spot_stream`: each frame tracked once, memory bounded by a chunk of
    aligned crops, not by the video). Intervals carry the video's own frame numbers (a frame folder's
    numbering, else 0-based) and rate, their AUs and emotions; their images are dropped."""
    res = spot_stream(path, fps=fps, window_seconds=STRS_CHUNK_SECONDS, overlap_seconds=STRS_OVERLAP_SECONDS,
                      max_seconds=None, max_side=STRS_MAX_SIDE, config=STRS_EVIDENCE)
    return res.fps, res.intervals


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
