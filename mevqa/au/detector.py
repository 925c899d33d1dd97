"""Action units (FACS) between an onset and an apex frame, from optical flow and landmark geometry.

Method (calibrated rules: no training data needed)
--------------------------------------------------
1. Dense flow (:func:`mevqa.motion.flow.dense_flow`, DIS by default) from the aligned **onset** crop (taken
   as neutral) to the aligned **apex** crop, averaged over the pairs onset-1..onset x apex-1..apex+1
   to damp sensor noise, minus the rigid head motion fitted on the nose ridge and the inner eye
   corners (a similarity: translation, roll and scale; the MEGC2022 spotter subtracts the nose-ridge
   flow the same way).
2. The flow is averaged in small windows (radius in inter-ocular units, IOD) around the landmarks of
   each AU's region and projected on the direction in which FACS says that AU moves the skin
   (Ekman & Friesen 1978; Ekman, Friesen & Hager 2002): AU1 inner brow up, AU2 outer brow up, AU4
   brows down and together, AU5 upper lid up, AU6 cheek up, AU7 lower lid up, AU9 nose wings up,
   AU10 upper lip up, AU12 lip corners up and out, AU14 corners in, AU15 corners down, AU17 chin
   up, AU20 corners out sideways, AU25 lips apart, AU26 jaw down, AU43 upper lids down.
   Neighbouring AUs move each other's regions, so each rule subtracts what its neighbour explains
   (AU1/AU2, AU9/AU10, AU6/AU12, AU6/AU7, AU25/AU26), and where several AUs move the same landmarks
   in different directions (the lip corners: AU12, AU14, AU15, AU20) each AU only accepts motion
   inside a cone around its own direction: the projection minus ``1/tan(half-width)`` times the
   off-axis part.
3. Landmark geometry for the mouth and the lids (:data:`GEOMETRY_AUS`): lip-corner positions, the
   inner-lip gap (AU25), the nose-to-chin distance (AU26), the eye aperture (AU43), as changes
   divided by the IOD. FaceMesh jitters by about a pixel, as much as a micro-expression moves, so
   geometry has to clear ``geometry_margin`` times the threshold: it carries large motions (open-
   mouth laughter) where flow breaks down on lips that part and teeth that appear.
4. Per AU and side the evidence is ``max(flow / t_flow, geometry / (threshold * margin))`` with
   ``t_flow = max(threshold, noise_gain * noise)``, where ``noise`` is the flow the rigid model
   leaves at the rigid points (compression, lighting, out-of-plane head turns): thresholds
   calibrated on clean footage rise by themselves on noisy footage. ``score = 1 - 2**-evidence``
   (0.5 at the threshold), ``present = score >= 0.5``.

Open-mouth laughter drops the jaw, and the jaw drags the lip corners down relative to the eyes even
while AU12 pulls them up and out; crying raises the whole mouth with the chin. Lip corners are
therefore measured relative to the lip line beside them (inner lips), at a point ``jaw_coupling``
of the way from the upper to the lower lip: a corner that only follows an opening jaw or a rising
mouth does not move relative to it, so AU12 survives the jaw drop and AU15 is not invented by it
(see :func:`_mouth_reference`).

Sides
-----
``side`` is "left", "right" or "both" in the **subject's own** left and right (the convention of
:mod:`mevqa.face.landmarks` and of MEGC's "Is the action unit ... located on the left or right face?"): a
smile on the subject's left half is on the image's right in an unmirrored video. An AU is one-sided
when the weaker side's evidence is below ``asymmetry_ratio`` times the stronger side's. AU25 and
AU26 have no side ("both"); AU17 is measured on each half of the chin.

Intensity
---------
``intensity`` is a float in [0, 1]: the evidence divided by :attr:`AUConfig.full_scale` (8 by
default, i.e. 1.0 = eight times the threshold), 0 when absent. :func:`intensity_letter` maps it to
FACS letters in fifths: A trace (< 0.2), B slight, C marked, D severe, E maximum (>= 0.8).
Micro-expressions are mostly A-B.

Learned variant
---------------
:func:`au_features` exposes the per-AU, per-side flow and geometry measurements as a fixed-length
vector; :func:`fit_linear` fits one L2-regularised logistic regression per AU on labelled clips and
:meth:`LinearAUModel.save` writes it as JSON or ``.npz`` (read with ``allow_pickle=False``: loading
runs no code). With ``AUConfig(model_path=...)`` the model gives ``score`` and ``present``; side and
intensity still come from the measurements.
"""
from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Mapping, Sequence

import numpy as np

from mevqa.face.landmarks import LANDMARK_GROUPS
from mevqa.motion.flow import FLOW_METHODS, dense_flow, remove_head_motion, sample_points
from mevqa.io.video import Clip, ClipError

try:  # facs.py is the one place for AU names (MEGC spellings)
    from mevqa.facs.codes import au_name
except ImportError:  # pragma: no cover - only while facs.py is being written
    _NAMES = {"AU1": "inner brow raiser", "AU2": "outer brow raiser", "AU4": "brow lowerer",
              "AU5": "upper lid raiser", "AU6": "cheek raiser", "AU7": "lid tightener",
              "AU9": "nose wrinkler", "AU10": "upper lip raiser", "AU12": "lip corner puller",
              "AU14": "dimpler", "AU15": "lip corner depressor", "AU17": "chin raiser",
              "AU20": "lip stretcher", "AU25": "lips part", "AU26": "jaw drop", "AU43": "eye closure"}

    def au_name(code: str) -> str:
        return _NAMES[code]

__all__ = [
    "AU_CODES", "MIDLINE_AUS", "GEOMETRY_AUS", "DEFAULT_THRESHOLDS", "AUConfig", "AUActivation", "AUResult",
    "AUFeatures", "AUError", "NoIntervalError", "LinearAUModel", "au_features", "decide_aus", "detect_aus",
    "detect_aus_clip", "fit_linear", "intensity_letter",
]

#: The AUs this detector reports, in FACS order.
AU_CODES: tuple[str, ...] = ("AU1", "AU2", "AU4", "AU5", "AU6", "AU7", "AU9", "AU10", "AU12",
                             "AU14", "AU15", "AU17", "AU20", "AU25", "AU26", "AU43")
#: AUs on the face's midline: no side of their own.
MIDLINE_AUS = frozenset({"AU25", "AU26"})
#: AUs that also use landmark geometry: the mouth, whose lips part and whose teeth appear (flow
#: breaks down there in open-mouth laughter), and eye closure. Not the brows, cheeks and nose:
#: FaceMesh's shape prior moves its brow landmarks when the eyes open wider (AU5 reads as AU4).
GEOMETRY_AUS = frozenset({"AU12", "AU14", "AU15", "AU20", "AU25", "AU26", "AU43"})
SIDES = ("right", "left")  # order of the per-side arrays below; subject's own sides
_SIGN = {"right": -1.0, "left": 1.0}  # image x of "outward" on each side (subject's left = image right)

#: Flow thresholds in inter-ocular units (IOD = 76 px in the default 224 px crop, so 0.01 ~ 0.76 px).
#: Calibrated on synthetic micro-expressions (bench/bench_au.py, calibration seed), see there.
DEFAULT_THRESHOLDS: dict[str, float] = {
    "AU1": 0.0035, "AU2": 0.0024, "AU4": 0.0020, "AU5": 0.0023, "AU6": 0.0031, "AU7": 0.0036,
    "AU9": 0.0026, "AU10": 0.0026, "AU12": 0.0020, "AU14": 0.0029, "AU15": 0.0033, "AU17": 0.0024,
    "AU20": 0.0022, "AU25": 0.0031, "AU26": 0.0038, "AU43": 0.0300,
}


class AUError(ClipError):
    """AU detection cannot run on this input (one line for the user)."""


class NoIntervalError(AUError):
    """No onset/apex given and the spotter found no interval to analyse."""


@dataclass(frozen=True)
class AUConfig:
    """Options of the AU detector; the defaults need no training data.

    ``thresholds`` overrides :data:`DEFAULT_THRESHOLDS` per AU (inter-ocular units of flow).
    ``window`` is the radius of the flow windows around landmarks, in inter-ocular units.
    ``geometry_margin``: landmark geometry must exceed ``margin x threshold`` (FaceMesh jitter).
    ``full_scale``: evidence (in thresholds) that maps to intensity 1.0.
    ``asymmetry_ratio``: weaker side / stronger side below this -> a one-sided AU.
    ``jaw_coupling``: where on the mouth midline (0 = upper lip, 1 = lower lip) lip corners are
    measured from, so an opening jaw does not read as corners moving down.
    ``apex_radius``, ``onset_radius``: flow is averaged over the pairs of frames onset-r..onset and
    apex-r..apex+r (analysis frames) to damp sensor noise and flow error.
    ``head_model``: rigid motion removed as a "translation" or a "similarity" (adds roll and scale).
    ``noise_gain``: every threshold is at least this times the flow left at the rigid points after
    head-motion removal (compression, lighting and out-of-plane head turns raise it on real video;
    on clean footage it stays below the calibrated thresholds).
    ``model_path``: a :class:`LinearAUModel` (JSON or .npz) that replaces the rules' scores.
    """

    flow_method: str = "dis"
    window: float = 0.05
    thresholds: Mapping[str, float] = field(default_factory=dict)
    geometry_margin: float = 8.0
    asymmetry_ratio: float = 0.5
    jaw_coupling: float = 0.4
    apex_radius: int = 1
    onset_radius: int = 1
    head_model: str = "similarity"
    noise_gain: float = 3.0
    full_scale: float = 8.0
    model_path: str | None = None

    def threshold(self, code: str) -> float:
        return float(self.thresholds.get(code, DEFAULT_THRESHOLDS[code]))


@dataclass
class AUActivation:
    """One AU between onset and apex.

    ``left``/``right``: the evidence on each half of the face (subject's own sides) in units of the
    AU's threshold (1.0 = just present). ``score`` in [0, 1] (0.5 at the threshold); ``intensity``
    in [0, 1] (see the module docstring; :attr:`intensity_letter` gives FACS A-E).
    """

    code: str
    name: str
    side: str
    intensity: float
    score: float
    present: bool
    left: float = 0.0
    right: float = 0.0

    @property
    def intensity_letter(self) -> str | None:
        return intensity_letter(self.intensity) if self.present else None

    def to_dict(self) -> dict:
        return {"code": self.code, "name": self.name, "side": self.side,
                "intensity": round(float(self.intensity), 3), "score": round(float(self.score), 3),
                "present": bool(self.present)}


@dataclass
class AUResult:
    """AUs of one onset -> apex pair; onset/apex are the clip frames actually compared.

    ``flow`` (not exported) is the onset -> apex flow in aligned-crop pixels with head motion
    removed, for flow maps (:func:`mevqa.motion.flow.flow_to_rgb`).
    """

    clip: str
    onset: int
    apex: int
    aus: list[AUActivation]
    flow: np.ndarray | None = field(default=None, repr=False)
    features: "AUFeatures | None" = field(default=None, repr=False)

    def present_aus(self) -> list[AUActivation]:
        """Present AUs, strongest first."""
        return sorted((a for a in self.aus if a.present), key=lambda a: -a.score)

    def __getitem__(self, code: str) -> AUActivation:
        for a in self.aus:
            if a.code == code:
                return a
        raise KeyError(code)

    def to_dict(self) -> dict:
        """The ``mevqa au --json`` contract (ARCHITECTURE.md)."""
        return {"clip": self.clip, "onset": int(self.onset), "apex": int(self.apex),
                "aus": [a.to_dict() for a in self.aus]}

    def to_rows(self) -> list[dict]:
        return [{**a.to_dict(), "intensity_letter": a.intensity_letter,
                 "left": round(a.left, 2), "right": round(a.right, 2)} for a in self.aus]

    def to_markdown(self, *, only_present: bool = False) -> str:
        rows = [a for a in self.aus if a.present or not only_present]
        lines = [f"AUs of {self.clip}, onset {self.onset} -> apex {self.apex}",
                 "", "| AU | name | present | side | score | intensity | left | right |",
                 "|---|---|---|---|---|---|---|---|"]
        for a in rows:
            lines.append(f"| {a.code} | {a.name} | {'yes' if a.present else 'no'} | {a.side} | "
                         f"{a.score:.2f} | {a.intensity:.2f} {a.intensity_letter or ''} | "
                         f"{a.left:.2f} | {a.right:.2f} |")
        return "\n".join(lines)


def intensity_letter(intensity: float) -> str:
    """FACS intensity letter for an intensity in [0, 1]: A (trace) ... E (maximum), in fifths."""
    return "ABCDE"[min(4, max(0, int(float(intensity) * 5)))]


# -- regions ------------------------------------------------------------------------------------
# MediaPipe FaceMesh indices not in face.LANDMARK_GROUPS (lip halves; subject's own sides).
_EXTRA_GROUPS: dict[str, tuple[int, ...]] = {
    "right_upper_lip": (37, 39, 40, 81, 82),
    "left_upper_lip": (267, 269, 270, 311, 312),
    "upper_lip_mid": (0, 37, 267),
    "lower_lip_mid": (17, 84, 314),
    # the inner lip line next to each corner (its reference, see _mouth_reference): the outer
    # vermilion borders move toward each other when the lips press or thin, the lip line does not
    "right_upper_lip_mid": (13, 82),
    "left_upper_lip_mid": (13, 312),
    "right_lower_lip_mid": (14, 87),
    "left_lower_lip_mid": (14, 317),
    "nose_tip": (1, 4, 2),
    "right_upper_lid_mid": (159, 158, 160),
    "left_upper_lid_mid": (386, 385, 387),
    "right_lower_lid_mid": (145, 144, 153),
    "left_lower_lid_mid": (374, 373, 380),
    "upper_inner_lip": (13, 82, 312),
    "lower_inner_lip": (14, 87, 317),
    "chin_tip": (152, 175),
}


def _idx(name: str) -> list[int]:
    return list(LANDMARK_GROUPS.get(name) or _EXTRA_GROUPS[name])


# -- measurements ------------------------------------------------------------------------------
@dataclass
class AUFeatures:
    """Per-AU measurements in inter-ocular units, before thresholds.

    ``flow`` and ``geometry`` are (n_aus, 2) arrays: columns (right, left), subject's own sides
    (midline AUs repeat their value). :meth:`vector` flattens them for :func:`fit_linear`.
    """

    codes: tuple[str, ...]
    flow: np.ndarray
    geometry: np.ndarray
    noise: float = 0.0  # RMS flow left at the rigid points after head-motion removal (IOD units)

    def vector(self, config: "AUConfig | None" = None) -> np.ndarray:
        """Flat feature vector: per AU the stronger and the weaker side's flow, then geometry, each
        divided by the AU's threshold (features of different AUs share a scale, and a one-sided
        AU looks the same on either side), then the noise level over the smallest threshold."""
        config = config or AUConfig()
        thr = np.array([config.threshold(c) for c in self.codes])[:, None]
        f, g = self.flow / thr, self.geometry / thr
        per_au = np.stack([f.max(1), f.min(1), g.max(1), g.min(1)], axis=1).ravel()
        return np.append(per_au, self.noise / thr.min())

    @staticmethod
    def names(codes: Sequence[str] = AU_CODES) -> list[str]:
        return [f"{c}_{kind}_{which}" for c in codes for kind in ("flow", "geometry")
                for which in ("max", "min")] + ["noise"]


def _cone(v: np.ndarray, direction: tuple[float, float], half_width_deg: float) -> float:
    """Motion along ``direction`` minus its off-axis part scaled so that motion outside the cone
    ``direction +- half_width`` counts as zero or less: it keeps one AU's motion from another's."""
    d = np.asarray(direction, float)
    d /= np.linalg.norm(d)
    along = float(v @ d)
    across = abs(float(v[0] * -d[1] + v[1] * d[0]))
    return along - across / math.tan(math.radians(half_width_deg))


def _side_dir(side: str, out: float, up: float) -> tuple[float, float]:
    """Image-space direction from (outward, upward) components on one side of the face."""
    return (_SIGN[side] * out, -up)


# Directions of the lip-corner AUs as (outward, upward) and cone half-widths (degrees). AU12 pulls
# obliquely up and out along the zygomatic major; AU20 stretches sideways (risorius); AU15 pulls
# down (depressor anguli oris); AU14 tightens the corner inward (buccinator). Only AU12's and
# AU20's cones touch (0-13 degrees above the horizontal, where both score little).
_CORNER_AUS = {"AU12": ((1.0, 1.0), 45.0), "AU20": ((1.0, -0.15), 22.0),
               "AU15": ((0.2, -1.0), 35.0), "AU14": ((-1.0, 0.1), 40.0)}
#: Where windows sit relative to their landmarks, (outward, downward) in IOD: lid windows on the
#: skin just outside the margin (the eyeball under a lid does not move), chin halves for AU17.
_OFFSETS = {"upper_lid": (0.0, -0.03), "lower_lid": (0.0, 0.04), "chin": (0.2, 0.0)}


def _mouth_reference(upper: np.ndarray, lower: np.ndarray, jaw_coupling: float) -> np.ndarray:
    """Motion of the point on the mouth's midline that the lip corners are measured from.

    Not the eyes: when the whole mouth rises (a chin raise with a raised upper lip, as in crying)
    the corners rise with it and that is no smile. Not the upper lip alone: a broad smile raises
    the upper lip more than the corners. A point ``jaw_coupling`` of the way from the upper to the
    lower lip follows an opening jaw as far as the corners do, so AU12 survives open-mouth laughter
    and a dropped jaw does not read as AU15. A lower lip pushed up past the upper lip (AU17) counts
    as following the upper lip: the corners do not rise with it.
    """
    low_y = max(float(lower[1]), float(upper[1]))
    return np.array([0.0, (1 - jaw_coupling) * float(upper[1]) + jaw_coupling * low_y])


def _evidence(disp, side: str, code: str, jaw_coupling: float) -> float:
    """Displacement of an AU's region along its direction, one side (IOD units).

    ``disp(name)`` gives the mean displacement (2,) of a landmark group, head motion removed.
    Cross terms subtract what a neighbouring AU moves into this region, so each AU answers to the
    region it moves most (AU1 vs AU2, AU9 vs AU10, AU6 vs AU12, AU5 vs the brows).
    """
    up = lambda v: -float(v[1])  # noqa: E731 - image y grows downwards
    out = lambda v: _SIGN[side] * float(v[0])  # noqa: E731
    s = side + "_"
    if code in ("AU1", "AU2"):
        inner, outer = up(disp(s + "inner_brow")), up(disp(s + "outer_brow"))
        a, b = (inner, outer) if code == "AU1" else (outer, inner)
        own = a - max(0.0, b - a)  # raised, less what the other part's rise explains
        # AU1 also counts raised relative to the outer brow: AU4 pulls the whole brow down under
        # the AU1 of fear and sadness. Not AU2: AU4 lowers the inner brow most, which would read
        # as the outer brow rising.
        return max(own, a - b) if code == "AU1" else own
    if code == "AU4":
        # FACS: the brows are lowered and drawn together (corrugator, depressor supercilii)
        v = disp(s + "brow")
        w = disp(s + "inner_brow")
        return 0.8 * -up(v) + 0.6 * -out(w)
    if code == "AU5":
        return up(disp(s + "upper_lid")) - 0.5 * max(0.0, up(disp(s + "brow")))
    if code == "AU43":
        return -up(disp(s + "upper_lid")) - max(0.0, -up(disp(s + "brow")))
    if code == "AU6":
        # AU12 drags the cheek up too; a cheek that rises no more than the corner is AU12's
        # and AU7's lower-lid push reaches the cheek: count only a rise beyond the lid's
        cheek, lid = up(disp(s + "cheek")), up(disp(s + "lower_lid"))
        return cheek - 0.4 * max(0.0, up(disp(s + "mouth_corner"))) - 0.5 * max(0.0, lid - cheek)
    if code == "AU7":
        return up(disp(s + "lower_lid")) - 0.5 * max(0.0, up(disp(s + "cheek")))
    if code in ("AU9", "AU10"):
        nose, lip = up(disp(s + "nose_wing")), up(disp(s + "upper_lip"))
        a, b = (nose, lip) if code == "AU9" else (lip, nose)
        # AU12 lifts the upper lip beside the corner too, less than the corner itself
        corner = 0.5 * max(0.0, up(disp(s + "mouth_corner"))) if code == "AU10" else 0.0
        return a - max(0.0, b - a) - corner
    if code in _CORNER_AUS:
        c = disp(s + "mouth_corner") - _mouth_reference(disp(s + "upper_lip_mid"), disp(s + "lower_lip_mid"),
                                                          jaw_coupling)
        (o, u), width = _CORNER_AUS[code]
        return _cone(c, _side_dir(side, o, u), width)
    if code == "AU17":
        return up(disp(s + "chin"))
    if code == "AU25":
        # lips apart by more than the jaw opens them (AU26 alone drops the chin with the lip)
        # and not an upper lip raised on its own (AU10): its rise counts as far as the lower lip drops
        low, upper = -up(disp("lower_lip_mid")), up(disp("upper_lip_mid"))
        return low + min(upper, max(0.0, low)) - 0.8 * max(0.0, -up(disp("chin")))
    if code == "AU26":
        return -up(disp("chin"))
    raise KeyError(code)


def _geometry(p0: np.ndarray, p1: np.ndarray, side: str, code: str, jaw_coupling: float) -> float:
    """Change of landmark geometry from onset (p0) to apex (p1) for one of :data:`GEOMETRY_AUS` on
    one side, in IOD units (landmarks already in IOD units, rigid translation removed)."""
    def c(p, name):
        return p[_idx(name)].mean(axis=0)

    def d(name):
        return c(p1, name) - c(p0, name)

    s = side + "_"
    if code in _CORNER_AUS:  # as in _evidence: relative to the lip line beside the corner
        rel = d(s + "mouth_corner") - _mouth_reference(d(s + "upper_lip_mid"), d(s + "lower_lip_mid"), jaw_coupling)
        (o, u), width = _CORNER_AUS[code]
        return _cone(rel, _side_dir(side, o, u), width)
    if code == "AU43":  # the eye aperture shrinks
        return -(d(s + "lower_lid_mid")[1] - d(s + "upper_lid_mid")[1])
    if code == "AU25":  # the inner lips part
        return d("lower_inner_lip")[1] - d("upper_inner_lip")[1]
    if code == "AU26":  # the chin moves away from the nose tip
        return d("chin_tip")[1] - d("nose_tip")[1]
    raise KeyError(code)


def _frames(front, onset: int, apex: int) -> tuple[int, int]:
    if onset is None or apex is None:
        raise AUError("give both onset and apex frames")
    n = front.clip.n_frames
    for name, f in (("onset", onset), ("apex", apex)):
        if not 0 <= int(f) < n:
            raise AUError(f"{name} frame {f} is outside the clip (0..{n - 1})")
    if apex < onset:
        raise AUError(f"apex frame {apex} comes before onset frame {onset}")
    return front.to_analysis(int(onset)), front.to_analysis(int(apex))


def _remove_head(flow: np.ndarray, rigid: np.ndarray, *, radius: int, model: str) -> np.ndarray:
    """Flow minus rigid head motion measured at ``rigid`` points: a translation (their median flow,
    :func:`mevqa.motion.flow.remove_head_motion`) or a least-squares similarity (translation, rotation and
    scale: an eye-alignment that breathes by half a percent moves the chin by half a pixel)."""
    if model == "translation":
        return remove_head_motion(flow, rigid, radius=radius)
    if model != "similarity":
        raise AUError(f"head_model must be 'translation' or 'similarity', got {model!r}")
    v = sample_points(flow, rigid, radius=radius)
    c = rigid.mean(axis=0)
    p = rigid - c
    # flow = t + [[a, -b], [b, a]] p  (a: scale - 1, b: rotation); linear least squares
    a_mat = np.zeros((2 * len(p), 4))
    a_mat[0::2] = np.column_stack([np.ones(len(p)), np.zeros(len(p)), p[:, 0], -p[:, 1]])
    a_mat[1::2] = np.column_stack([np.zeros(len(p)), np.ones(len(p)), p[:, 1], p[:, 0]])
    tx, ty, a, b = np.linalg.lstsq(a_mat, v.reshape(-1), rcond=None)[0]
    h, w = flow.shape[:2]
    gy, gx = np.mgrid[0:h, 0:w].astype(np.float32)
    gx -= c[0]
    gy -= c[1]
    out = flow.copy()
    out[..., 0] -= tx + a * gx - b * gy
    out[..., 1] -= ty + b * gx + a * gy
    return out


def _measure(front, i0: int, i1: int, config: AUConfig) -> tuple[AUFeatures, np.ndarray]:
    """Flow and geometry measurements between analysis frames i0 (onset) and i1 (apex)."""
    if config.flow_method not in FLOW_METHODS:
        raise AUError(f"unknown flow method {config.flow_method!r} (choose from {', '.join(FLOW_METHODS)})")
    faces = front.faces
    iod = float(front.interocular_px)
    gray = faces.gray
    n = len(faces)
    # Every (reference, target) pair from onset-r..onset to apex-r..apex+r: sensor noise and flow
    # error average out over the pairs, while a micro-expression's apex plateau loses little.
    lo, hi = max(i0 + 1, i1 - config.apex_radius), min(n - 1, i1 + config.apex_radius)
    targets = range(lo, hi + 1) if i1 > i0 else [i1]
    refs = range(max(0, i0 - config.onset_radius), i0 + 1)
    rigid = front.rigid_points(i0)
    radius = max(1, int(round(config.window * iod)))
    flows = [_remove_head(dense_flow(gray[r], gray[j], method=config.flow_method), rigid,
                          radius=radius, model=config.head_model) for r in refs for j in targets]
    flow = np.mean(flows, axis=0).astype(np.float32)

    lm0 = faces.landmarks[i0]
    cache: dict[str, np.ndarray] = {}

    def disp(name: str) -> np.ndarray:
        if name not in cache:
            side, _, region = name.partition("_")
            off = _OFFSETS.get(region, (0.0, 0.0)) if side in _SIGN else (0.0, 0.0)
            group = region if region == "chin" else name
            pts = lm0[_idx(group)] + iod * np.array([_SIGN.get(side, 0.0) * off[0], off[1]])
            cache[name] = sample_points(flow, pts, radius=radius).mean(axis=0) / iod
        return cache[name]

    # Landmarks: mean over +-1 frame (FaceMesh jitter), rigid translation (median over the rigid
    # points, as for the flow) removed, in IOD units.
    def pts(i):
        return faces.landmarks[max(0, i - 1):min(n, i + 2)].mean(axis=0)
    p0, p1 = pts(i0), pts(i1)
    rig = _idx("nose_ridge") + _idx("inner_eye_corners")
    p1 = p1 - np.median(p1[rig] - p0[rig], axis=0)
    p0, p1 = p0 / iod, p1 / iod

    fl = np.zeros((len(AU_CODES), 2))
    geo = np.zeros((len(AU_CODES), 2))
    for k, code in enumerate(AU_CODES):
        for j, side in enumerate(SIDES):
            if code in MIDLINE_AUS and j == 1:
                fl[k, 1], geo[k, 1] = fl[k, 0], geo[k, 0]
                continue
            fl[k, j] = _evidence(disp, side, code, config.jaw_coupling)
            if code in GEOMETRY_AUS:
                geo[k, j] = _geometry(p0, p1, side, code, config.jaw_coupling)
    # What the rigid model leaves at the rigid points is flow error plus out-of-plane head motion:
    # the noise floor every AU has to clear (see AUConfig.noise_gain).
    noise = float(np.sqrt((sample_points(flow, rigid, radius=radius) ** 2).sum(-1).mean()) / iod)
    return AUFeatures(AU_CODES, fl, geo, noise), flow


def au_features(front, onset: int, apex: int, *, config: AUConfig = AUConfig()) -> AUFeatures:
    """Measurements between clip frames ``onset`` and ``apex`` (for :func:`fit_linear`)."""
    i0, i1 = _frames(front, onset, apex)
    return _measure(front, i0, i1, config)[0]


# -- decisions ---------------------------------------------------------------------------------
def decide_aus(feats: AUFeatures, *, config: AUConfig = AUConfig(),
               model: "LinearAUModel | None" = None) -> list[AUActivation]:
    """Per-AU decisions (present, score, side, intensity) from measurements: the rules, or ``model``'s
    probabilities for present/score when given (side and intensity always come from the rules)."""
    probs = None
    if model is not None:
        x = feats.vector(config)
        if len(x) != len(model.feature_names):
            raise AUError(f"the AU model expects {len(model.feature_names)} features, these measurements have {len(x)}")
        probs = dict(zip(model.codes, model.predict_proba(x[None])[0]))
    out = []
    for k, code in enumerate(feats.codes):
        base = config.threshold(code)
        # Evidence per side in threshold units. Flow must clear the clip's flow noise floor too;
        # geometry a wider margin (FaceMesh jitter, which flow noise does not measure).
        thr = max(base, config.noise_gain * feats.noise)
        ev = np.maximum(feats.flow[k] / thr, feats.geometry[k] / (base * config.geometry_margin))
        right, left = float(ev[0]), float(ev[1])
        e = max(right, left)
        score = 1.0 - 2.0 ** -max(e, 0.0)
        if probs is not None and code in probs:
            score = float(probs[code])
        present = score >= 0.5
        side = "both"
        if code not in MIDLINE_AUS:
            lo, hi = sorted((max(right, 0.0), max(left, 0.0)))
            if hi > 0 and lo < config.asymmetry_ratio * hi:
                side = "left" if left > right else "right"
        intensity = min(1.0, max(e, 0.0) / config.full_scale) if present else 0.0
        out.append(AUActivation(code, au_name(code), side, round(intensity, 4), round(score, 4),
                                bool(present), round(left, 4), round(right, 4)))
    return out


def detect_aus(front, onset: int, apex: int, *, config: AUConfig = AUConfig()) -> AUResult:
    """Action units between clip frames ``onset`` (neutral) and ``apex`` of a front end.

    ``front`` is a :class:`mevqa.motion.frontend.FrontEnd`; frames are the clip's own 0-based indices
    (mapped to the analysed, possibly subsampled, frames and back). See the module docstring.
    """
    i0, i1 = _frames(front, onset, apex)
    feats, flow = _measure(front, i0, i1, config)
    model = LinearAUModel.load(config.model_path) if config.model_path else None
    return AUResult(front.clip.source, int(front.to_clip(i0)), int(front.to_clip(i1)),
                    decide_aus(feats, config=config, model=model), flow=flow, features=feats)


def detect_aus_clip(clip: Clip, *, onset: int | None = None, apex: int | None = None,
                    config: AUConfig = AUConfig(), front=None) -> AUResult:
    """AUs of a clip between ``onset`` and ``apex``; without them, of the strongest spotted interval.

    Raises :class:`NoIntervalError` when the spotter finds nothing to analyse.
    """
    if front is None:
        from mevqa.motion.frontend import run_frontend  # noqa: PLC0415 - MediaPipe is heavy
        front = run_frontend(clip)
    if onset is None or apex is None:
        if (onset is None) != (apex is None):
            raise AUError("give both onset and apex, or neither (then the strongest spotted interval is used)")
        from mevqa.spot.spotter import spot  # noqa: PLC0415 - spotting imports this module's siblings
        intervals = list(getattr(spot(front), "intervals", []) or [])
        if not intervals:
            raise NoIntervalError(f"{clip.name}: no expression interval was spotted; give --onset and --apex")
        best = max(intervals, key=lambda iv: float(getattr(iv, "score", 0.0) or 0.0))
        onset, apex = int(best.onset), int(best.apex)
    return detect_aus(front, onset, apex, config=config)


# -- learned variant -----------------------------------------------------------------------------
@dataclass
class LinearAUModel:
    """One logistic regression per AU over :meth:`AUFeatures.vector` (standardised inputs).

    Saved as plain numbers and strings (JSON, or ``.npz`` read with ``allow_pickle=False``), so
    loading a model file can never execute code.
    """

    codes: tuple[str, ...]
    feature_names: tuple[str, ...]
    mean: np.ndarray
    scale: np.ndarray
    weights: np.ndarray  # (n_codes, n_features)
    bias: np.ndarray  # (n_codes,)

    def decision(self, x: np.ndarray) -> np.ndarray:
        z = (np.atleast_2d(np.asarray(x, float)) - self.mean) / self.scale
        return z @ self.weights.T + self.bias

    def predict_proba(self, x: np.ndarray) -> np.ndarray:
        """(n, n_codes) probabilities that each AU is present."""
        return 1.0 / (1.0 + np.exp(-np.clip(self.decision(x), -50, 50)))

    def to_dict(self) -> dict:
        return {"format": "mevqa.au.LinearAUModel/1", "codes": list(self.codes),
                "feature_names": list(self.feature_names), "mean": self.mean.tolist(),
                "scale": self.scale.tolist(), "weights": self.weights.tolist(), "bias": self.bias.tolist()}

    def save(self, path) -> Path:
        """Write JSON (``.json``) or NumPy ``.npz`` (anything else); no pickle either way."""
        p = Path(path)
        if p.suffix.lower() == ".json":
            p.write_text(json.dumps(self.to_dict()))
        else:
            if p.suffix.lower() != ".npz":
                p = p.with_suffix(".npz")
            np.savez(p, codes=np.array(self.codes, dtype=str), feature_names=np.array(self.feature_names, dtype=str),
                     mean=self.mean, scale=self.scale, weights=self.weights, bias=self.bias)
        return p

    @classmethod
    def load(cls, path) -> "LinearAUModel":
        p = Path(path)
        if not p.exists():
            raise AUError(f"AU model file not found: {p}")
        try:
            if p.suffix.lower() == ".json":
                d = json.loads(p.read_text())
            else:
                with np.load(p, allow_pickle=False) as z:
                    d = {k: z[k] for k in z.files}
            model = cls(tuple(str(c) for c in d["codes"]), tuple(str(n) for n in d["feature_names"]),
                        np.asarray(d["mean"], float), np.asarray(d["scale"], float),
                        np.asarray(d["weights"], float), np.asarray(d["bias"], float))
        except (KeyError, ValueError, TypeError) as e:
            raise AUError(f"{p} is not an AU model file ({e})") from None
        if model.weights.shape != (len(model.codes), len(model.feature_names)):
            raise AUError(f"{p}: weights shape {model.weights.shape} does not match its codes/features")
        return model


def _labels_matrix(labels, codes: Sequence[str]) -> np.ndarray:
    if isinstance(labels, np.ndarray):
        return labels.astype(float)
    rows = []
    for item in labels:
        present = {getattr(a, "code", a) for a in item}
        rows.append([c in present for c in codes])
    return np.asarray(rows, float)


def fit_linear(features, labels, *, codes: Sequence[str] = AU_CODES, l2: float = 1.0, own_features: bool = True,
               iterations: int = 50, config: AUConfig = AUConfig()) -> LinearAUModel:
    """Fit one L2-regularised logistic regression per AU (Newton / IRLS) on labelled clips.

    ``features``: (n, F) array or a list of :class:`AUFeatures`; ``labels``: (n, len(codes)) 0/1
    array, or per clip an iterable of AU codes (or objects with ``.code``) present.
    ``own_features`` (with :meth:`AUFeatures.vector` input): each AU sees only its own four
    measurements and the noise level, five weights instead of 65, which a few dozen labelled clips
    per AU can support; False uses every feature for every AU. An AU that is never (or always)
    present gets a constant model at its base rate.
    """
    x = np.asarray([f.vector(config) if isinstance(f, AUFeatures) else np.asarray(f, float) for f in features])
    y = _labels_matrix(labels, codes)
    if x.ndim != 2 or len(x) != len(y):
        raise AUError(f"{len(x)} feature rows but {len(y)} label rows")
    standard = x.shape[1] == len(AUFeatures.names()) and tuple(codes) == AU_CODES
    mean, scale = x.mean(axis=0), x.std(axis=0)
    scale[scale < 1e-9] = 1.0
    z = np.hstack([(x - mean) / scale, np.ones((len(x), 1))])
    w_all = np.zeros((len(codes), z.shape[1]))
    for k in range(len(codes)):
        cols = np.arange(z.shape[1])
        if own_features and standard:  # this AU's block of four, the noise level and the bias
            cols = np.r_[4 * k:4 * k + 4, z.shape[1] - 2, z.shape[1] - 1]
        zk, yk = z[:, cols], y[:, k]
        reg = np.full(len(cols), float(l2))
        reg[-1] = 1e-6  # no penalty on the bias
        p = float(np.clip(yk.mean(), 1e-3, 1 - 1e-3))
        w = np.zeros(len(cols))
        w[-1] = math.log(p / (1 - p))
        if 0 < yk.sum() < len(yk):
            for _ in range(iterations):
                q = 1.0 / (1.0 + np.exp(-np.clip(zk @ w, -50, 50)))
                grad = zk.T @ (q - yk) + reg * w
                hess = (zk * (q * (1 - q))[:, None]).T @ zk + np.diag(reg)
                step = np.linalg.solve(hess, grad)
                w -= step
                if np.abs(step).max() < 1e-8:
                    break
        w_all[k, cols] = w
    names = AUFeatures.names(codes) if standard else [f"f{i}" for i in range(x.shape[1])]
    return LinearAUModel(tuple(codes), tuple(names), mean, scale, w_all[:, :-1], w_all[:, -1])
