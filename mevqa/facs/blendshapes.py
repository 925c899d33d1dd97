"""Blendshapes -> action units: which MediaPipe Face Landmarker scores corroborate which FACS AUs.

The Face Landmarker's 52 blendshapes follow Apple ARKit's ``ARFaceAnchor.BlendShapeLocation`` set (MediaPipe
"Blendshape V2" model card). They are not FACS codes, but most are defined by the same muscle action; the
table pairs each AU with the blendshapes that move for it (after Ekman, Friesen & Hager, *FACS Manual*,
2002, and the ARKit descriptions). A blendshape can only *corroborate* an AU: on micro-expressions of about
2 px the scores move by 0.01-0.07 from onset to apex and miss the nose wrinkler (AU9) entirely, so optical
flow stays the micro-scale signal and these scores speak for macro-scale states.

Sides are the **subject's own**: ``mouthSmileLeft`` is the subject's left mouth corner (checked on the real
test video, see tests/test_landmarker.py). Bilateral AUs without a left/right blendshape pair
(AU1 ``browInnerUp``, AU17, AU26) have side ``"both"``.
"""
from __future__ import annotations

from dataclasses import dataclass

__all__ = ["BlendshapeAU", "BLENDSHAPE_AUS", "AU_BLENDSHAPES", "au_scores"]


@dataclass(frozen=True)
class BlendshapeAU:
    code: str                       # FACS code, "AU12"
    left: tuple[str, ...]           # blendshapes of the subject's left side (or of both sides when unpaired)
    right: tuple[str, ...] = ()     # blendshapes of the subject's right side; empty when not lateral
    note: str = ""


#: The mapping, one row per AU (the blendshape set's closest counterparts).
BLENDSHAPE_AUS: tuple[BlendshapeAU, ...] = (
    BlendshapeAU("AU1", ("browInnerUp",), note="inner brow raiser; one score for both brows"),
    BlendshapeAU("AU2", ("browOuterUpLeft",), ("browOuterUpRight",), "outer brow raiser"),
    BlendshapeAU("AU4", ("browDownLeft",), ("browDownRight",), "brow lowerer"),
    BlendshapeAU("AU6", ("cheekSquintLeft",), ("cheekSquintRight",), "cheek raiser"),
    BlendshapeAU("AU7", ("eyeSquintLeft",), ("eyeSquintRight",), "lid tightener"),
    BlendshapeAU("AU9", ("noseSneerLeft",), ("noseSneerRight",), "nose wrinkler"),
    BlendshapeAU("AU10", ("mouthUpperUpLeft",), ("mouthUpperUpRight",), "upper lip raiser"),
    BlendshapeAU("AU12", ("mouthSmileLeft",), ("mouthSmileRight",), "lip corner puller"),
    BlendshapeAU("AU14", ("mouthDimpleLeft",), ("mouthDimpleRight",), "dimpler"),
    BlendshapeAU("AU15", ("mouthFrownLeft",), ("mouthFrownRight",), "lip corner depressor"),
    BlendshapeAU("AU17", ("mouthShrugLower",), note="chin raiser"),
    BlendshapeAU("AU20", ("mouthStretchLeft",), ("mouthStretchRight",), "lip stretcher"),
    BlendshapeAU("AU24", ("mouthPressLeft",), ("mouthPressRight",), "lip pressor"),
    BlendshapeAU("AU26", ("jawOpen",), note="jaw drop"),
    BlendshapeAU("AU45", ("eyeBlinkLeft",), ("eyeBlinkRight",), "blink"),
)
AU_BLENDSHAPES: dict[str, BlendshapeAU] = {row.code: row for row in BLENDSHAPE_AUS}


def au_scores(scores: dict[str, float]) -> dict[str, dict]:
    """Per AU of the table: ``{"left", "right", "score", "side"}`` from blendshape scores by name.

    ``score`` is the larger side; ``side`` is "left" or "right" when one side scores at least twice the
    other and above 0.1, else "both". Unpaired AUs report the same score for both sides.
    """
    out = {}
    for row in BLENDSHAPE_AUS:
        left = max((float(scores.get(n, 0.0)) for n in row.left), default=0.0)
        right = max((float(scores.get(n, 0.0)) for n in row.right), default=left) if row.right else left
        side = "both"
        if row.right and max(left, right) > 0.1:
            if left >= 2 * right:
                side = "left"
            elif right >= 2 * left:
                side = "right"
        out[row.code] = {"left": left, "right": right, "score": max(left, right), "side": side}
    return out
