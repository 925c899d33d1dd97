"""FACS action units as muscle pulls on face-mesh landmarks: the second, independent synthetic generator.

Written apart from :mod:`mevqa.testing.synth` (no fields, constants or tables shared with it) so that a
detector tuned on one generator can be scored on the other. Each action unit is described the way the
FACS manual describes its appearance change (Ekman, Friesen & Hager, *Facial Action Coding System*,
2002) and the way facial anatomy places its muscle (e.g. Standring, *Gray's Anatomy*): skin at the
muscle's **insertion** is drawn toward its **origin**. Zygomaticus major (AU12) draws the lip corner
toward the zygomatic bone; depressor anguli oris (AU15) toward the lower border of the mandible;
risorius (AU20) toward the ear; corrugator (AU4) the inner brow medially, toward the nose; frontalis (AU1, AU2)
the brows toward the hairline; levator labii superioris alaeque nasi (AU9) the nose wing toward the
nasion; levator labii superioris (AU10) the upper lip toward the infraorbital rim; mentalis (AU17) the
chin boss up toward the lower lip; orbicularis oculi draws the cheek toward the eye (pars orbitalis,
AU6) and the lower lid toward the upper (pars palpebralis, AU7); levator palpebrae lifts the upper lid
(AU5). Directions therefore come from the face's own geometry, not from fixed angles.

A :class:`Pull` moves the mesh landmarks near its insertion (a compact-support falloff over a reach
given in inter-ocular distances, IOD) toward its origin; :mod:`mevqa.testing.tps_generator` then
interpolates the moved landmarks with a thin-plate spline. Indices are MediaPipe Face Mesh (478
points), given as (subject's right, subject's left) pairs; the generator checks each side by geometry
(the subject's left is on the image's right of the facial midline for an unmirrored image).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

UP, DOWN, OUT, IN = "up", "down", "out", "in"


@dataclass(frozen=True)
class Pull:
    """Skin at ``insertion`` (landmark indices; right side, left side) drawn toward ``origin``.

    ``origin`` is a landmark pair (right, left) or a direction word on the face's axes (``up``, ``down``,
    ``out`` = away from the midline, ``in``); ``tilt`` adds (out, down) components (IOD units) to a
    direction word. ``reach`` (IOD): landmarks farther than this from the insertion do not move.
    ``share``: this pull's magnitude relative to the action unit's main pull.
    """

    insertion: tuple[tuple[int, ...], tuple[int, ...]]
    origin: tuple[int, int] | str
    reach: float
    share: float = 1.0
    tilt: tuple[float, float] = (0.0, 0.0)


@dataclass(frozen=True)
class Action:
    code: str
    name: str
    pulls: tuple[Pull, ...]
    midline: bool = False  # one muscle across the midline (mentalis, jaw): a "side" takes its half


def _p(right, left):
    return tuple(right), tuple(left)


# Mesh regions (subject's right, subject's left).
INNER_BROW = _p((107, 66, 55, 65), (336, 296, 285, 295))
OUTER_BROW = _p((70, 63, 46, 53), (300, 293, 276, 283))
WHOLE_BROW = _p((70, 63, 105, 66, 107, 46, 53, 52, 65, 55), (300, 293, 334, 296, 336, 276, 283, 282, 295, 285))
UPPER_LID = _p((160, 159, 158, 161, 157), (387, 386, 385, 388, 384))
LOWER_LID = _p((144, 145, 153, 163, 154), (373, 374, 380, 390, 381))
CHEEK = _p((117, 118, 119, 100, 101, 50, 123), (346, 347, 348, 329, 330, 280, 352))
EYE_TAIL = _p((130, 226, 247), (359, 446, 467))  # skin beside the outer eye corner: crow's feet
NOSE_WING = _p((129, 98, 64, 48, 49, 102), (358, 327, 294, 278, 279, 331))
UPPER_LIP_SIDE = _p((37, 39, 40, 185, 72, 73), (267, 269, 270, 409, 302, 303))
NASOLABIAL = _p((206, 203, 36, 205), (426, 423, 266, 425))
MOUTH_CORNER = _p((61, 78, 76, 62, 146, 185), (291, 308, 306, 292, 375, 409))
CORNER_SKIN = _p((57, 212, 43, 202), (287, 432, 273, 422))  # lateral to the lip corner: the dimple
CHIN = _p((152, 175, 199, 200, 171, 208, 148, 176), (152, 175, 199, 200, 396, 428, 377, 400))
LOWER_LIP = _p((17, 84, 181, 91, 14, 87, 178), (17, 314, 405, 321, 14, 317, 402))
UPPER_LIP_MID = _p((0, 37, 11, 12), (0, 267, 11, 12))

# Origins (subject's right, subject's left).
NASION = (168, 168)
ZYGOMATIC = (227, 447)  # lateral cheekbone
MANDIBLE_BORDER = (136, 365)  # lower jaw border below-lateral of the lip corner
EAR_SIDE = (132, 361)  # cheek toward the ear: risorius
INFRAORBITAL = (230, 450)  # below the eye: levator labii superioris
BROW_ABOVE_LID = (105, 334)
UPPER_LID_CENTRE = (159, 386)
LOWER_LID_CENTRE = (145, 374)
EYE_OUTER_CORNER = (33, 263)
LOWER_LIP_CENTRE = (17, 17)

ACTIONS: dict[str, Action] = {a.code: a for a in (
    Action("AU1", "inner brow raiser", (Pull(INNER_BROW, UP, 0.32),)),
    Action("AU2", "outer brow raiser", (Pull(OUTER_BROW, UP, 0.30, tilt=(0.15, 0.0)),)),
    # Corrugator draws the inner brow mostly medially (a little down); depressor supercilii and procerus
    # lower the brow. With AU1 the vertical parts cancel and the brows are raised and drawn together.
    Action("AU4", "brow lowerer", (Pull(INNER_BROW, IN, 0.26, tilt=(0.0, 0.45)), Pull(WHOLE_BROW, DOWN, 0.30, 0.5))),
    Action("AU5", "upper lid raiser", (Pull(UPPER_LID, BROW_ABOVE_LID, 0.10),)),
    Action("AU6", "cheek raiser", (Pull(CHEEK, UP, 0.30, tilt=(-0.2, 0.0)), Pull(LOWER_LID, UPPER_LID_CENTRE, 0.08, 0.4),
                                   Pull(EYE_TAIL, EYE_OUTER_CORNER, 0.10, 0.4))),
    Action("AU7", "lid tightener", (Pull(LOWER_LID, UPPER_LID_CENTRE, 0.09), Pull(UPPER_LID, LOWER_LID_CENTRE, 0.07, 0.3))),
    Action("AU9", "nose wrinkler", (Pull(NOSE_WING, NASION, 0.22), Pull(UPPER_LIP_MID, UP, 0.15, 0.35),
                                    Pull(INNER_BROW, NASION, 0.18, 0.35))),
    Action("AU10", "upper lip raiser", (Pull(UPPER_LIP_SIDE, INFRAORBITAL, 0.18), Pull(NASOLABIAL, INFRAORBITAL, 0.16, 0.5))),
    Action("AU12", "lip corner puller", (Pull(MOUTH_CORNER, ZYGOMATIC, 0.26), Pull(CHEEK, UP, 0.25, 0.3))),
    Action("AU14", "dimpler", (Pull(CORNER_SKIN, IN, 0.14, tilt=(0.0, -0.2)), Pull(MOUTH_CORNER, IN, 0.10, 0.5))),
    Action("AU15", "lip corner depressor", (Pull(MOUTH_CORNER, MANDIBLE_BORDER, 0.24),)),
    Action("AU17", "chin raiser", (Pull(CHIN, LOWER_LIP_CENTRE, 0.30), Pull(LOWER_LIP, UP, 0.14, 0.5)), midline=True),
    Action("AU20", "lip stretcher", (Pull(MOUTH_CORNER, EAR_SIDE, 0.24, tilt=(0.0, 0.1)),)),
    Action("AU25", "lips part", (Pull(LOWER_LIP, DOWN, 0.12),), midline=True),
    Action("AU26", "jaw drop", (Pull(CHIN, DOWN, 0.45), Pull(LOWER_LIP, DOWN, 0.2, 0.7)), midline=True),
)}

#: EMFACS-style prototypes drawn for random events (Friesen & Ekman 1983; Matsumoto & Ekman 2008);
#: contempt is one-sided by definition.
PROTOTYPES: dict[str, tuple[tuple[str, ...], ...]] = {
    "happiness": (("AU6", "AU12"), ("AU12",), ("AU6", "AU12", "AU25")),
    "surprise": (("AU1", "AU2", "AU5"), ("AU1", "AU2", "AU26")),
    "anger": (("AU4", "AU5", "AU7"), ("AU4", "AU7")),
    "disgust": (("AU9",), ("AU9", "AU10"), ("AU10", "AU17")),
    "sadness": (("AU1", "AU4", "AU15"), ("AU1", "AU4", "AU15", "AU17")),
    "fear": (("AU1", "AU2", "AU4", "AU5", "AU20"),),
    "contempt": (("AU12",), ("AU14",)),
}
ONE_SIDED = ("contempt",)
SOLO = ("AU1", "AU2", "AU4", "AU5", "AU6", "AU7", "AU9", "AU10", "AU12", "AU14", "AU15", "AU17", "AU20")


@dataclass
class FaceFrame:
    """A face's axes from its landmarks: ``ex`` toward the subject's left along the eye line, ``ey``
    down the face, ``mid`` a point on the facial midline, ``iod`` the distance between iris centres."""

    ex: np.ndarray
    ey: np.ndarray
    mid: np.ndarray
    iod: float


def face_frame(lm: np.ndarray) -> FaceFrame:
    """Axes from the iris centres (468 and 473). Which iris is the subject's left is decided by
    geometry: the one on the side of the left mouth corner (291) and the left eye's outer corner (263)."""
    a, b = lm[468].astype(np.float64), lm[473].astype(np.float64)
    ex = (b - a) / max(float(np.linalg.norm(b - a)), 1e-6)
    if float((lm[263] - lm[33]) @ ex) < 0:  # 468 is not on the subject's right: flip
        ex = -ex
    ey = np.array([-ex[1], ex[0]])
    if float((lm[152] - lm[10]) @ ey) < 0:  # chin must be "down"
        ey = -ey
    mid = (lm[[168, 6, 197, 195, 5, 4, 1, 0, 17]].astype(np.float64)).mean(0)
    return FaceFrame(ex, ey, mid, float(np.linalg.norm(b - a)))


def _falloff(r: np.ndarray) -> np.ndarray:
    """Wendland's compactly supported C2 function (1 - r)^4 (4 r + 1), zero for r >= 1."""
    r = np.clip(r, 0.0, 1.0)
    return (1 - r) ** 4 * (4 * r + 1)


def _side_points(idx: tuple[int, ...], lm: np.ndarray, fr: FaceFrame, side: str) -> list[int]:
    """The indices that really lie on ``side`` of the midline (a midline point counts for both)."""
    lat = (lm[list(idx)] - fr.mid) @ fr.ex
    keep = [i for i, s in zip(idx, lat) if (s > -0.05 * fr.iod if side == "left" else s < 0.05 * fr.iod)]
    return keep or list(idx)


def _direction(pull: Pull, lm: np.ndarray, fr: FaceFrame, side: str, centre: np.ndarray) -> np.ndarray:
    out = fr.ex if side == "left" else -fr.ex
    if isinstance(pull.origin, str):
        d = {UP: -fr.ey, DOWN: fr.ey, OUT: out, IN: -out}[pull.origin].copy()
    else:
        d = lm[pull.origin[1 if side == "left" else 0]].astype(np.float64) - centre
        d /= max(float(np.linalg.norm(d)), 1e-6)
    d = d + pull.tilt[0] * out + pull.tilt[1] * fr.ey
    return d / max(float(np.linalg.norm(d)), 1e-6)


#: A pull of amplitude ``a`` (IOD) drags skin over at least STRAIN x ``a``: Wendland's steepest slope is
#: 2.1 / reach, so skin is compressed or stretched by at most ~60% and the warp never folds.
STRAIN = 3.5


def action_displacements(code: str, side: str, lm: np.ndarray, fr: FaceFrame | None = None, *,
                         amplitude: float = 0.0) -> np.ndarray:
    """Forward displacement (478, 2) of every landmark for ``code`` on ``side`` ("left", "right" or
    "both", the subject's own), scaled so the largest landmark move is 1 px. ``amplitude`` (px, the
    move the caller will scale to) widens each pull's reach where needed (see :data:`STRAIN`)."""
    if code not in ACTIONS:
        raise ValueError(f"unknown action unit {code!r} (known: {', '.join(ACTIONS)})")
    if side not in ("left", "right", "both"):
        raise ValueError(f"side must be left, right or both, got {side!r}")
    fr = fr or face_frame(lm)
    act = ACTIONS[code]
    pts = lm.astype(np.float64)
    disp = np.zeros_like(pts)
    for s in (("right", "left") if side == "both" else (side,)):
        for pull in act.pulls:
            idx = pull.insertion[1 if s == "left" else 0]
            if act.midline and side != "both":
                idx = _side_points(idx, pts, fr, s)
            centre = pts[list(idx)].mean(0)
            d = _direction(pull, pts, fr, s, centre)
            # Distance to the nearest insertion landmark: the whole insertion moves fully.
            dist = np.min(np.linalg.norm(pts[:, None, :] - pts[list(idx)][None], axis=-1), axis=1)
            reach = max(pull.reach * fr.iod, STRAIN * pull.share * float(amplitude))
            w = _falloff(dist / reach)
            if act.midline and side != "both":  # half a midline muscle: fade across the midline
                lat = (pts - fr.mid) @ (fr.ex if s == "left" else -fr.ex)
                w = w * np.clip(0.5 + lat / (0.3 * fr.iod), 0.0, 1.0)
            disp += pull.share * w[:, None] * d[None]
    peak = float(np.linalg.norm(disp, axis=1).max())
    return disp / max(peak, 1e-9)
