"""The hidden-emotion check: micro-expressions that conflict with their surroundings.

The check follows the idea behind Ekman's "leakage" (Ekman & Friesen, "Nonverbal leakage and clues to
deception", Psychiatry 1969; Ekman, "Telling Lies", 1985): a micro-expression whose valence conflicts with
the surrounding macro-expression (a fleeting brow lowering inside a smile), or a micro-expression on an
otherwise neutral face, is worth a second look. The surrounding expression is a spotted macro interval,
or the blendshape reading of the face around the micro-expression (:mod:`mevqa.evidence.face_state`), which
also sees a smile held still (no motion, so no interval). It is a flag, not a verdict: nothing here
detects lies.
"""
from __future__ import annotations

import numpy as np

from mevqa.evidence.result import HiddenEmotionFinding, IntervalEvidence

# Valence of the coarse classes: a conflict is positive against negative (surprise and "others" conflict
# with nothing).
_VALENCE = {"positive": 1, "negative": -1}


def _calm_around(iv: IntervalEvidence, curve: dict | None, seconds: float) -> bool:
    """Whether the motion curve is quiet in the ``seconds`` before and after an interval.

    Quiet means the median motion there stays under the spotter's threshold (or, without one, under a
    third of the interval's own peak): a held or ongoing expression is not a neutral face.
    """
    if not curve or not curve.get("times"):
        return True
    t = np.asarray(curve["times"], float)
    m = np.asarray(curve["motion"], float)
    ctx = ((t >= iv.t_onset - seconds) & (t < iv.t_onset)) | ((t > iv.t_offset) & (t <= iv.t_offset + seconds))
    if not ctx.any():
        return True
    inside = (t >= iv.t_onset) & (t <= iv.t_offset)
    peak = m[inside].max() if inside.any() else m.max()
    limit = np.median(np.asarray(curve["threshold"], float)[ctx]) if curve.get("threshold") else peak / 3
    return float(np.median(m[ctx])) <= max(limit, 1e-6)


def _conflicts(a: str | None, b: str | None) -> bool:
    return bool(a and b and _VALENCE.get(a, 0) * _VALENCE.get(b, 0) < 0)


def hidden_emotion_check(intervals: list[IntervalEvidence], fps: float, *, curve: dict | None = None,
                         context_seconds: float = 0.4) -> list[HiddenEmotionFinding]:
    """Flag micro-expressions that conflict with their context or appear on an otherwise neutral face.

    A micro-expression *inside or next to* (within ``context_seconds``) a macro-expression of another
    valence is a "valence conflict" (a fleeting brow lowering inside a smile); so is one whose surrounding
    blendshape reading (``IntervalEvidence.context``) has the other valence. A micro-expression with no
    other expression within ``context_seconds``, whose surroundings read neutral, is a "micro-expression on
    a neutral face"; a burst of movements (laughter broken into pieces, talking), or one over a face that
    keeps moving (``curve``, the motion curve, stays above the threshold around it), is neither. Both are
    flags to look at, not proof of concealment.
    """
    found = []
    real = [iv for iv in intervals if not iv.assumed]
    pad = context_seconds * fps
    for iv in real:
        if iv.kind != "micro" or not iv.top_emotion:
            continue
        mine = iv.top_emotion
        near = [o for o in real if o is not iv and o.onset - pad <= iv.offset and iv.onset <= o.offset + pad]
        macros = [m for m in near if m.kind == "macro"]
        when = f"{iv.t_onset:.2f}-{iv.t_offset:.2f} s (frames {iv.onset}-{iv.offset})"
        aus = ", ".join(a["name"] for a in iv.aus[:3]) or "facial motion"
        ctx_face = iv.context or {}
        if macros:
            ctx = max(macros, key=lambda m: m.score)
            theirs = ctx.top_emotion
            if theirs and theirs["coarse"] != mine["coarse"]:
                found.append(HiddenEmotionFinding(
                    iv.index, "valence conflict",
                    f"a fleeting {mine['fine']} micro-expression ({aus}) at {when} conflicts with the surrounding "
                    f"{theirs['fine']} expression ({ctx.t_onset:.2f}-{ctx.t_offset:.2f} s)",
                    iv.onset, iv.apex, iv.offset, mine["fine"], theirs["fine"]))
        elif _conflicts(mine["coarse"], ctx_face.get("coarse")):
            found.append(HiddenEmotionFinding(
                iv.index, "valence conflict",
                f"a fleeting {mine['fine']} micro-expression ({aus}) at {when} conflicts with the face around it "
                f"({ctx_face.get('reading', '')}: {ctx_face['emotion']}, read from blendshapes)",
                iv.onset, iv.apex, iv.offset, mine["fine"], ctx_face.get("emotion")))
        elif not near and _calm_around(iv, curve, 2 * context_seconds) and ctx_face.get("reading", "neutral") == "neutral":
            found.append(HiddenEmotionFinding(
                iv.index, "micro-expression on a neutral face",
                f"a brief {mine['fine']} micro-expression ({aus}) at {when} on an otherwise neutral face",
                iv.onset, iv.apex, iv.offset, mine["fine"], None))
    return found
