"""Computing the Evidence of a clip: spot, read action units per interval, read the face around them.

:func:`compute_evidence` runs the shared front end (:mod:`mevqa.motion.frontend`), the spotter and the AU
detector, applies the FACS rules, reads the blendshape states and head pose of each interval and of the
stretches between them (:mod:`mevqa.evidence.face_state`), reports frame quality (face lost, mouth or eyes
occluded), runs the hidden-emotion check (:mod:`mevqa.evidence.hidden`) and caches the result
(:mod:`mevqa.evidence.cache`). The result object is :class:`mevqa.evidence.result.Evidence`; its names are
re-exported here for the callers of the older single module.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from mevqa.au.detector import detect_aus
from mevqa.evidence import cache as _cache
from mevqa.evidence.cache import _memory, cache_dir  # noqa: F401 (re-exported)
from mevqa.evidence.face_state import between_stretches, describe_pose, pose_notes, pose_summary, read_stretch
from mevqa.evidence.hidden import hidden_emotion_check
from mevqa.evidence.result import (EVIDENCE_VERSION, Evidence, HiddenEmotionFinding,  # noqa: F401 (re-exported)
                                   IntervalEvidence)
from mevqa.face.occlusion import stretches
from mevqa.facs.emotions import emotion_candidates
from mevqa.io.video import Clip
from mevqa.motion.flow import flow_to_rgb
from mevqa.motion.frontend import FrontEnd, FrontEndConfig, run_frontend
from mevqa.spot.config import SpotConfig
from mevqa.spot.spotter import spot

__all__ = ["EVIDENCE_VERSION", "Evidence", "EvidenceConfig", "HiddenEmotionFinding", "IntervalEvidence",
           "cache_dir", "compute_evidence", "evidence_from_frontend", "hidden_emotion_check"]


@dataclass(frozen=True)
class EvidenceConfig:
    """Settings that change the evidence (and so its cache key)."""

    frontend: FrontEndConfig = FrontEndConfig()
    spot: SpotConfig = SpotConfig()
    max_intervals: int = 8          # strongest intervals kept
    flow_map_scale: float = 3.0     # px in the aligned crop that saturates a flow map
    curve_points: int = 400         # motion curve samples kept for plots
    assume_expression: bool = True  # no interval spotted -> analyse the strongest motion of the clip
    text_budget_tokens: int = 400   # the prompt's evidence block stays within this (about 4 chars a token)
    context_seconds: float = 1.0    # the face "around" an interval: this long before and after it


def _downsample_curve(t: np.ndarray, ys: dict, n: int) -> dict:
    if len(t) <= n:
        idx = np.arange(len(t))
    else:
        idx = np.unique(np.round(np.linspace(0, len(t) - 1, n)).astype(int))
    return {k: [round(float(v), 4) for v in np.asarray(y)[idx]] for k, y in {"times": t, **ys}.items()}


# -- computing --------------------------------------------------------------------------------
def interval_evidence(front: FrontEnd, k: int, onset: int, apex: int, offset: int, kind: str, score: float,
                       rois: dict, config: EvidenceConfig, *, assumed: bool = False) -> IntervalEvidence:
    res = detect_aus(front, onset, apex)
    ranked = sorted(res.aus, key=lambda a: -a.score)
    rows = [{"code": a.code, "name": a.name, "side": a.side, "intensity": round(float(a.intensity), 3),
             "score": round(float(a.score), 3), "left": round(float(a.left), 3), "right": round(float(a.right), 3)}
            for a in ranked]
    aus = [r for r, a in zip(rows, ranked) if a.present]
    weak = [r for r, a in zip(rows, ranked) if not a.present][:2]
    cands = emotion_candidates([(a["code"], a["side"], a["score"]) for a in aus])
    emotions = [{"fine": c.fine, "coarse": c.coarse, "confidence": round(float(c.confidence), 3), "rule": c.rule}
                for c in cands[:3]]
    crops = front.faces.crops
    at = {"onset": front.to_analysis(onset), "apex": front.to_analysis(apex), "offset": front.to_analysis(offset)}
    # Copies, not views: a view would keep the clip's whole crop array alive in every cached Evidence.
    images = {name: crops[i].copy() for name, i in at.items()}
    # Enough to cut the same crops from the clip again (the disk cache stores no face images).
    keyframes = {name: {"frame": int(front.to_clip(i)), "transform": front.faces.transforms[i].tolist()}
                 for name, i in at.items()}
    # and the onset's rigid points (crop pixels), so a flow map made from re-read crops can have the head's
    # own motion taken off as the AU detector's is (mevqa.apps.long_events.event_images)
    keyframes["onset"]["head"] = np.round(front.head_points(at["onset"]), 2).tolist()
    if getattr(res, "flow", None) is not None:
        images["flow"] = flow_to_rgb(res.flow, max_magnitude=config.flow_map_scale)
    return IntervalEvidence(k, int(onset), int(apex), int(offset), kind, round(float(score), 4), front.clip.fps,
                            aus, emotions, {r: round(float(v), 4) for r, v in (rois or {}).items()}, weak, assumed,
                            images, keyframes=keyframes)


def _coded_interval(front: FrontEnd, sr, coded: tuple, config: EvidenceConfig) -> IntervalEvidence:
    """The interval a dataset's coding sheet gives (onset, apex or None, offset or None), measured.

    A missing apex is the frame of strongest motion in [onset, offset]; a missing offset is the clip's
    last frame. The motion score and ROI contributions come from the spotted interval that overlaps it
    most (0 when none does).
    """
    clip = front.clip
    last = clip.n_frames - 1
    onset, apex, offset = coded
    if not 0 <= int(onset) <= last:
        raise ValueError(f"{clip.source}: onset {onset} is outside the clip (0-{last})")
    offset = last if offset is None else min(int(offset), last)
    onset = min(int(onset), offset)
    if apex is None:
        lo, hi = front.to_analysis(onset), front.to_analysis(offset)
        apex = int(front.to_clip(lo + int(np.argmax(np.asarray(sr.combined)[lo:hi + 1]))))
    apex = int(min(max(int(apex), onset), offset))

    def overlap(iv):
        inter = min(iv.offset, offset) - max(iv.onset, onset) + 1
        return inter / (max(iv.offset, offset) - min(iv.onset, onset) + 1) if inter > 0 else 0.0

    best = max(sr.intervals, key=overlap, default=None)
    best = best if best is not None and overlap(best) > 0 else None
    kind = "micro" if (offset - onset + 1) / clip.fps <= 0.5 else "macro"
    return interval_evidence(front, 0, onset, apex, offset, kind, best.score if best else 0.0,
                              getattr(best, "rois", {}) if best else {}, config)


def evidence_from_frontend(front: FrontEnd, *, config: EvidenceConfig = EvidenceConfig(), coded: tuple | None = None,
                           progress=None) -> Evidence:
    """Spot, detect AUs per interval, apply the FACS rules and the hidden-emotion check.

    With ``coded = (onset, apex, offset)`` (a dataset's coding sheet; apex/offset may be None) the
    evidence holds that one interval instead of the spotted ones: training uses the labelled frames.
    """
    clip = front.clip
    # 1. Spot intervals; keep the strongest few, in time order (or measure the coded one).
    sr = spot(front, config=config.spot)
    intervals = []
    if coded is not None:
        intervals.append(_coded_interval(front, sr, coded, config))
        spotted, left_out = [], []
    else:
        ranked = sorted(sr.intervals, key=lambda iv: -iv.score)
        spotted = sorted(ranked[: config.max_intervals], key=lambda iv: iv.onset)
        # the weaker ones, unread (clip frames, score): an answer about a moment one of them covers can say it
        # was spotted but not kept, rather than that nothing was
        left_out = [[int(iv.onset), int(iv.offset), round(float(iv.score), 3)] for iv in ranked[config.max_intervals:]]
    # 2. AUs and emotions per interval.
    for k, iv in enumerate(spotted):
        intervals.append(interval_evidence(front, k, iv.onset, iv.apex, iv.offset, iv.kind, iv.score,
                                            getattr(iv, "rois", {}), config))
        if progress:
            progress(k + 1, len(spotted))
    # 3. Nothing spotted in a clip that is supposed to hold one expression (a dataset clip): analyse
    #    the strongest motion anyway, marked as assumed so answers can say how sure they are.
    if not intervals and config.assume_expression and len(sr.combined):
        a = int(np.argmax(sr.combined))
        apex = int(front.to_clip(a))
        if apex > 0:
            intervals.append(interval_evidence(front, 0, 0, apex, clip.n_frames - 1,
                                                "micro" if clip.duration <= 0.5 else "macro", 0.0, {}, config,
                                                assumed=True))
    # 4. The face around the intervals (blendshape states, head pose, occlusion), the hidden-emotion
    #    check (which compares a micro-expression with that surrounding state) and the curve for plots.
    expression, head_pose, quality = read_face(front, intervals, config)
    ys = {"motion": sr.combined}
    if getattr(sr, "threshold", None) is not None and len(sr.threshold) == len(sr.combined):
        ys["threshold"] = sr.threshold
    curve = _downsample_curve(np.asarray(sr.times), ys, config.curve_points)
    hidden = hidden_emotion_check(intervals, clip.fps, curve=curve)
    settings = {"max_fps": config.frontend.max_fps, "crop": config.frontend.align.size,
                "text_budget_tokens": config.text_budget_tokens, "step": front.step}
    if coded is not None:
        settings["interval"] = "coded (onset/apex/offset from the coding sheet)"
    if left_out:
        settings["left_out"] = left_out
    lost = [int(front.to_clip(i)) for i in front.track.lost_frames]
    return Evidence(clip.source, clip.content_hash(), clip.fps, clip.n_frames, clip.size[0], clip.size[1],
                    intervals, hidden, curve, lost, settings, EVIDENCE_VERSION, expression, head_pose, quality)


# -- the face around the intervals ---------------------------------------------------------------
def _read_frames(front: FrontEnd, idx: np.ndarray) -> dict:
    """Blendshape reading of the analysis frames ``idx`` (any set, e.g. before and after an interval)."""
    tr = front.track
    occ = {k: np.asarray(v)[idx] for k, v in front.occlusion.items()}
    return read_stretch(tr.blendshapes[idx], tr.blendshape_names, 0, len(idx) - 1, occluded=occ)


def _seconds(front: FrontEnd, i: int) -> float:
    return round(float(front.to_clip(int(i))) / front.clip.fps, 2)


def read_face(front: FrontEnd, intervals: list[IntervalEvidence], config: EvidenceConfig) -> tuple[list, dict, dict]:
    """Fill each interval's expression, context, head pose, confidence and notes; return the clip's
    expression stretches, head pose summary and frame quality."""
    tr = front.track
    n = front.n
    if tr.blendshapes is None or n == 0:
        return [], {}, {}
    angles = tr.angles
    occ = front.occlusion
    ctx = max(1, int(round(config.context_seconds * front.fps)))
    spans = []
    for iv in intervals:
        a0, a1 = front.to_analysis(iv.onset), front.to_analysis(iv.offset)
        spans.append((a0, a1))
        iv.expression = _read_frames(front, np.arange(a0, a1 + 1))
        around = np.concatenate([np.arange(max(0, a0 - ctx), a0), np.arange(a1 + 1, min(n, a1 + 1 + ctx))])
        iv.context = _read_frames(front, around) if len(around) else {}
        iv.head_pose = pose_summary(angles, a0, a1)
        notes = pose_notes(iv.head_pose)
        conf = 0.6 ** len(notes)
        for region, mask in occ.items():
            share = float(np.mean(mask[a0:a1 + 1])) if a1 >= a0 else 0.0
            if share >= 0.3:
                notes.append(f"{region} occluded in {share:.0%} of the interval: its action units are unreliable")
                conf *= 0.5
        lost = float(np.mean(~tr.found[a0:a1 + 1]))
        if lost > 0:
            notes.append(f"face lost in {lost:.0%} of the interval's frames (landmarks interpolated)")
            conf *= 1 - 0.5 * lost
        iv.notes = notes
        iv.confidence = round(conf, 2)
    stretches_out = []
    labelled = [(f"interval #{iv.index + 1}", a0, a1) for iv, (a0, a1) in zip(intervals, spans)]
    min_between = max(1, int(round(0.3 * front.fps)))
    labelled += [("between", a0, a1) for a0, a1 in between_stretches(spans, n, min_frames=min_between)]
    for label, a0, a1 in sorted(labelled, key=lambda x: x[1]):
        reading = _read_frames(front, np.arange(a0, a1 + 1))
        stretches_out.append({"label": label, "start": _seconds(front, a0), "end": _seconds(front, a1), **reading})
    quality = _quality(front)
    return stretches_out, describe_pose(angles), quality


def _quality(front: FrontEnd) -> dict:
    """Face lost, occluded regions and two faces, as time stretches and one-line notes."""
    tr, fps = front.track, front.fps
    lost = [[_seconds(front, a), _seconds(front, b)] for a, b in stretches(~tr.found, fps)]
    occl = [{"region": region, "start": _seconds(front, a), "end": _seconds(front, b)}
            for region, mask in front.occlusion.items() for a, b in stretches(mask, fps)]
    notes = [f"{o['region']} occluded {o['start']:.1f}-{o['end']:.1f} s" for o in sorted(occl, key=lambda o: o["start"])]
    notes += [f"face lost {a:.1f}-{b:.1f} s" for a, b in lost]
    notes += list(tr.warnings)
    return {"face_lost": lost, "occlusions": occl, "two_faces_frames": len(tr.multi_face_frames), "notes": notes}


def compute_evidence(clip: Clip, *, config: EvidenceConfig = EvidenceConfig(), coded: tuple | None = None,
                     cache: bool = True, persist: bool = True, progress=None) -> Evidence:
    """The Evidence of a clip, computed once and cached by clip content and settings.

    ``coded = (onset, apex, offset)`` measures a dataset's labelled interval instead of the spotted
    ones (see :func:`evidence_from_frontend`). The cache lives in memory and on disk (``$MEVQA_CACHE``
    or ``~/.cache/mevqa/evidence``; private, verified, bounded, no face images: :mod:`mevqa.evidence.cache`);
    set ``cache=False`` to recompute, ``persist=False`` to keep the result in memory only (the app's uploads). ``progress`` is an optional
    ``(stage: str, fraction: float)`` callable.
    """
    key = f"{_cache.clip_key(clip)}-{_cache.settings_key(config)}"
    if coded is not None:
        key += "-coded-" + "-".join("x" if v is None else str(int(v)) for v in coded)
    if cache:
        ev = _cache.load(key, clip)
        if ev is not None:
            return ev
    say = progress or (lambda stage, frac: None)
    say("tracking the face", 0.0)
    front = run_frontend(clip, config=config.frontend,
                         progress=lambda i, n: say("tracking the face", 0.6 * i / n))
    say("spotting and reading action units", 0.6)
    ev = evidence_from_frontend(front, config=config, coded=coded,
                                progress=lambda i, n: say("reading action units", 0.6 + 0.4 * i / n))
    say("done", 1.0)
    if cache:
        _cache.store(key, ev, disk=persist)
    return ev
