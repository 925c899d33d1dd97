"""The face between and around the spotted intervals: expression states from blendshapes, head pose, quality.

Optical flow sees sub-pixel micro-motion; the Face Landmarker's blendshapes (:mod:`mevqa.face.landmarker`)
see the macro-scale state of the face (a held smile, lowered brows). Each frame gets a set of **states**
(:data:`STATES`: a blendshape pair above a threshold), and each stretch of the clip (an interval, or the
time between intervals) a **macro-expression reading**: the states held in at least ``hold_fraction`` of its
frames, and the emotion the FACS rules give for the mean blendshape-derived AUs
(:mod:`mevqa.facs.blendshapes`, :func:`mevqa.facs.emotions.emotion_candidates`). Mouth states are not
read in frames where the mouth is occluded (the model then guesses a mouth), eye states likewise.

Thresholds are on the model's 0-1 scores and were chosen from their spread on the real test video
(the model's brow-raise and squint scores rest near 0.35-0.4 on a neutral-looking face there, so those
need 0.5-0.55); they are not validated on labelled data. Sides are the subject's own.
"""
from __future__ import annotations

import numpy as np

from mevqa.facs.blendshapes import au_scores
from mevqa.facs.emotions import emotion_candidates

#: state -> (blendshape of the subject's left or both, of the right or None, threshold, region, AU)
STATES: dict[str, tuple[str, str | None, float, str, str]] = {
    "smiling": ("mouthSmileLeft", "mouthSmileRight", 0.4, "mouth", "AU12"),
    "cheeks raised": ("cheekSquintLeft", "cheekSquintRight", 0.3, "eyes", "AU6"),
    "inner brows raised": ("browInnerUp", None, 0.45, "brows", "AU1"),
    "outer brows raised": ("browOuterUpLeft", "browOuterUpRight", 0.5, "brows", "AU2"),
    "brows lowered": ("browDownLeft", "browDownRight", 0.3, "brows", "AU4"),
    "eyes squinting": ("eyeSquintLeft", "eyeSquintRight", 0.55, "eyes", "AU7"),
    "eyes closed": ("eyeBlinkLeft", "eyeBlinkRight", 0.55, "eyes", "AU43"),
    "eyes wide open": ("eyeWideLeft", "eyeWideRight", 0.3, "eyes", "AU5"),
    "nose wrinkled": ("noseSneerLeft", "noseSneerRight", 0.3, "brows", "AU9"),
    "upper lip raised": ("mouthUpperUpLeft", "mouthUpperUpRight", 0.5, "mouth", "AU10"),
    "mouth corners down": ("mouthFrownLeft", "mouthFrownRight", 0.3, "mouth", "AU15"),
    "lips pressed": ("mouthPressLeft", "mouthPressRight", 0.3, "mouth", "AU24"),
    "lips stretched": ("mouthStretchLeft", "mouthStretchRight", 0.3, "mouth", "AU20"),
    "jaw open": ("jawOpen", None, 0.3, "mouth", "AU26"),
    "lips puckered": ("mouthPucker", None, 0.4, "mouth", "AU18"),
}
LARGE_TURN_DEGREES = 20.0     # head turned this far from the camera: flow AUs are less reliable
LARGE_MOTION_DEGREES = 8.0    # or rotating this much within an interval


def state_scores(blendshapes: np.ndarray, names) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """Per state (left (T,), right (T,)) scores; unpaired states give the same array twice."""
    col = {n: i for i, n in enumerate(names)}
    out = {}
    for state, (left, right, _, _, _) in STATES.items():
        lv = blendshapes[:, col[left]]
        out[state] = (lv, blendshapes[:, col[right]] if right else lv)
    return out


def frame_states(blendshapes: np.ndarray, names, *, occluded: dict[str, np.ndarray] | None = None) -> dict[str, np.ndarray]:
    """Per state a (T,) float array: 1 held, 0 not, NaN unreadable (face lost or the region occluded)."""
    hidden = _hidden_regions(len(blendshapes), occluded)
    out = {}
    for state, (lv, rv) in state_scores(blendshapes, names).items():
        thr, region = STATES[state][2], STATES[state][3]
        on = (np.maximum(lv, rv) >= thr).astype(float)
        on[~np.isfinite(lv) | hidden.get(region, np.zeros(len(on), bool))] = np.nan
        out[state] = on
    return out


def _hidden_regions(n: int, occluded: dict[str, np.ndarray] | None) -> dict[str, np.ndarray]:
    occ = occluded or {}
    eyes = np.zeros(n, bool)
    for k in ("right eye", "left eye"):
        if k in occ:
            eyes |= np.asarray(occ[k], bool)
    return {"mouth": np.asarray(occ.get("mouth", np.zeros(n, bool)), bool), "eyes": eyes}


def read_stretch(blendshapes: np.ndarray, names, lo: int, hi: int, *, occluded: dict | None = None,
                 hold_fraction: float = 0.4) -> dict:
    """Macro-expression reading of frames ``lo..hi`` (inclusive, indices into ``blendshapes``).

    Returns ``{"states": [{"state", "held", "score", "side", "au"}], "reading": str, "emotion": fine or None,
    "coarse": str or None, "occluded": [regions]}``; ``held`` is the fraction of readable frames.
    """
    lo, hi = max(0, int(lo)), min(len(blendshapes) - 1, int(hi))
    seg = blendshapes[lo:hi + 1]
    occ = {k: np.asarray(v, bool)[lo:hi + 1] for k, v in (occluded or {}).items()}
    held = frame_states(seg, names, occluded=occ)
    scores = state_scores(seg, names)
    states = []
    for state, on in held.items():
        ok = np.isfinite(on)
        if ok.sum() == 0 or on[ok].mean() < hold_fraction:
            continue
        lv, rv = (float(np.nanmean(a[ok])) for a in scores[state])
        side = "both"
        if STATES[state][1] is not None and max(lv, rv) > 0.1:
            side = "left" if lv >= 1.5 * rv else "right" if rv >= 1.5 * lv else "both"
        states.append({"state": state, "held": round(float(on[ok].mean()), 2), "score": round(max(lv, rv), 3),
                       "side": side, "au": STATES[state][4]})
    states.sort(key=lambda s: -s["held"] * s["score"])
    covered = [r for r, m in occ.items() if m.size and m.mean() >= 0.5]
    readable = np.isfinite(seg[:, 0]) & ~(_hidden_regions(len(seg), occ)["mouth"])
    mean = np.nanmean(seg[readable], axis=0) if readable.any() else np.full(seg.shape[1], np.nan)
    cands = []
    if np.isfinite(mean).all():
        aus = au_scores(dict(zip(names, mean.tolist())))
        cands = emotion_candidates([(c, a["side"], a["score"]) for c, a in aus.items()], min_score=0.3)
    top = cands[0] if cands else None
    words = ", ".join(s["state"] + (f" ({s['side']})" if s["side"] != "both" else "") for s in states[:4])
    reading = words or "neutral"
    if covered:
        reading += f"; {' and '.join(covered)} occluded"
    return {"states": states, "reading": reading, "emotion": top.fine if top else None,
            "coarse": top.coarse if top else None, "occluded": covered}


def between_stretches(intervals: list[tuple[int, int]], n: int, *, min_frames: int = 1) -> list[tuple[int, int]]:
    """The stretches of 0..n-1 not covered by ``intervals`` (inclusive (lo, hi) pairs)."""
    out, cur = [], 0
    for lo, hi in sorted(intervals):
        if lo - cur >= min_frames:
            out.append((cur, lo - 1))
        cur = max(cur, hi + 1)
    if n - cur >= min_frames:
        out.append((cur, n - 1))
    return out


def pose_summary(angles: np.ndarray, lo: int, hi: int) -> dict:
    """Head pose over frames lo..hi from (T, 3) yaw/pitch/roll degrees; NaN frames (face lost) ignored.

    ``turn`` is the largest angle between the facing direction and the camera axis, ``motion`` the
    largest change of any angle within the stretch (a head turning during an interval).
    """
    seg = np.asarray(angles, float)[max(0, lo):hi + 1]
    seg = seg[np.isfinite(seg).all(axis=1)]
    if not len(seg):
        return {}
    turn = np.degrees(np.arccos(np.clip(np.cos(np.radians(seg[:, 0])) * np.cos(np.radians(seg[:, 1])), -1, 1)))
    med = np.median(seg, axis=0)
    return {"yaw": round(float(med[0]), 1), "pitch": round(float(med[1]), 1), "roll": round(float(med[2]), 1),
            "turn": round(float(turn.max()), 1), "motion": round(float(np.ptp(seg, axis=0).max()), 1)}


def pose_notes(pose: dict) -> list[str]:
    """Why an interval's flow-based reading deserves less trust, from its :func:`pose_summary`."""
    notes = []
    if pose.get("turn", 0) >= LARGE_TURN_DEGREES:
        notes.append(f"head turned {pose['turn']:.0f} degrees from the camera (yaw {pose['yaw']:+.0f}, "
                     f"pitch {pose['pitch']:+.0f}): action units read from flow are less reliable")
    if pose.get("motion", 0) >= LARGE_MOTION_DEGREES:
        notes.append(f"head rotated {pose['motion']:.0f} degrees during the interval: part of the motion is the head's")
    return notes


def describe_pose(angles: np.ndarray) -> dict:
    """Clip-level head pose: median and range of yaw, pitch and roll, and the largest turn."""
    a = np.asarray(angles, float)
    a = a[np.isfinite(a).all(axis=1)]
    if not len(a):
        return {}
    s = pose_summary(a, 0, len(a) - 1)
    rng = {k: [round(float(a[:, i].min()), 1), round(float(a[:, i].max()), 1)] for i, k in enumerate(("yaw", "pitch", "roll"))}
    return {**s, "range": rng, "convention": "degrees; yaw > 0 towards the subject's left, pitch > 0 chin up, "
                                             "roll > 0 towards the subject's left shoulder"}
