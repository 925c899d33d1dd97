"""Per-AU measurements between an onset and an apex frame: flow (micro scale), landmark geometry and
blendshapes (macro scale), each with a noise level measured at the same place in the same clip.

Flow
----
Dense flow (:func:`mevqa.motion.flow.dense_flow`, DIS by default) from the aligned **onset** crop to the
aligned **apex** crop, averaged over the pairs onset-r..onset x apex-r..apex+r, minus the rigid head
motion of the one head-motion model (:func:`mevqa.motion.flow.remove_head_motion`: a robust similarity
on the rigid landmarks). The flow is averaged in small windows (radius in inter-ocular units, IOD)
around the landmarks of each AU's region and projected on the direction in which FACS says that AU
moves the skin (Ekman, Friesen & Hager 2002). An AU answers to its **own** region moving **relative to
its neighbourhood**: where a neighbouring action moves the same skin, the rule counts only motion
beyond the neighbour's (AU1/AU2, AU9/AU10, AU5/AU43 vs the brow, AU7 vs the cheek, AU10 vs the lip
corner, AU25 vs the jaw), and the lip-corner AUs (AU12 up and out, AU20 out, AU15 down, AU14 in) each
accept only motion inside their own cone of directions, measured relative to the lip line beside the
corner (so an opening jaw or a rising mouth is not a corner action, and laughter keeps its AU12).

Noise
-----
The same measurements on **null pairs**: the onset frame against the frame 0.1 s before it, and that one
against the frame 0.1 s before it (``null_pairs`` in all). The median over the pairs of the robust spread
of the null measurements over all AUs and sides (1.4826 MAD) is
the local noise of this clip at this time (compression, lighting, ongoing motion); thresholds are a
multiple of it, so nothing calibrated on one kind of footage decides on another.

Macro scale
-----------
Landmark geometry (lip corners relative to the lip line, the inner-lip gap for AU25, nose-to-chin for
AU26, the eye aperture for AU43), and the Face Landmarker's blendshape scores where the front end has
them (:data:`BLENDSHAPE_AUS`): their change from onset to apex, and their highest level from onset to apex
above the clip's resting level (an action held through the interval, as in laughter, changes little between
onset and apex); and the inner lips' gap held from onset to apex above the clip's resting gap (AU25).
"""
from __future__ import annotations

import math
import warnings
from dataclasses import dataclass
from typing import Sequence

import numpy as np

from mevqa.au.config import AUConfig
from mevqa.au.results import AU_CODES, MIDLINE_AUS, SIDES, AUError
from mevqa.face.landmarks import LANDMARK_GROUPS
from mevqa.facs.blendshapes import AU_BLENDSHAPES
from mevqa.motion.flow import FLOW_METHODS, dense_flow, remove_head_motion, sample_points
from mevqa.motion.head import RIGID_INDICES, fit_head_motion

_SIGN = {"right": -1.0, "left": 1.0}  # image x of "outward" on each side (subject's left = image right)
#: AUs that also use landmark geometry: the mouth, whose lips part and whose teeth appear (flow breaks
#: down there in open-mouth laughter), and eye closure.
GEOMETRY_AUS = frozenset({"AU12", "AU14", "AU15", "AU20", "AU25", "AU26", "AU43"})
#: AU -> Face Landmarker blendshapes (right names, left names; subject's own sides), from the one table of
#: :data:`mevqa.facs.blendshapes.AU_BLENDSHAPES`; eye closure (AU43) reads the blink row (eyeBlink), the
#: same lids held shut. AU25 has none (lips part is read from the landmarks), AU5 none in that table.
BLENDSHAPE_AUS: dict[str, tuple[tuple[str, ...], tuple[str, ...]]] = {
    code: (row.right or row.left, row.left)
    for code, row in ((c, AU_BLENDSHAPES.get("AU45" if c == "AU43" else c)) for c in AU_CODES) if row is not None
}

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



@dataclass
class AUFeatures:
    """Per-AU measurements before thresholds: (n_aus, 2) arrays, columns (right, left), subject's own
    sides (midline AUs repeat their value).

    ``flow``, ``geometry``: displacement in IOD along the AU's direction; ``blend``: blendshape score
    change onset -> apex; ``state``: the highest blendshape score from onset to apex, ``grown``: how far
    above its onset level, ``held``: the lowest score from onset to apex above the clip's resting level (its 5th percentile; NaN where the front end has no
    blendshapes), ``raised``: the highest score from onset to apex above that resting level (what the rules read).
    ``lips_apart``: the smallest gap between the inner lips from onset to apex (IOD; lips held apart). ``noise``, ``geometry_noise``, ``blend_noise``: robust spread of the same measurement
    on the null pair (see the module notes); ``rigid``: RMS flow left at the rigid points (IOD).
    """

    codes: tuple[str, ...]
    flow: np.ndarray
    geometry: np.ndarray
    blend: np.ndarray | None = None
    state: np.ndarray | None = None
    grown: np.ndarray | None = None
    noise: float = 0.0
    geometry_noise: float = 0.0
    blend_noise: float = 0.0
    rigid: float = 0.0
    held: np.ndarray | None = None
    raised: np.ndarray | None = None
    lips_apart: float = 0.0

    def vector(self, config: AUConfig | None = None) -> np.ndarray:
        """Flat feature vector for :func:`mevqa.au.linear.fit_linear`: per AU the stronger and the weaker
        side's flow, geometry and blendshape change, the first two divided by their thresholds (features
        of different AUs share a scale, and a one-sided AU looks the same on either side); then the noise."""
        config = config or AUConfig()
        t_flow = max(config.flow_floor, config.noise_k * self.noise)
        t_geo = max(config.geometry_floor, config.noise_k * self.geometry_noise)
        f, g = self.flow / t_flow, self.geometry / t_geo
        b = np.nan_to_num(self.blend if self.blend is not None else np.zeros_like(f)) / config.blend_change
        per_au = np.stack([f.max(1), f.min(1), g.max(1), g.min(1), b.max(1), b.min(1)], axis=1).ravel()
        return np.append(per_au, self.noise / config.flow_floor)

    @staticmethod
    def names(codes: Sequence[str] = AU_CODES) -> list[str]:
        return [f"{c}_{kind}_{which}" for c in codes for kind in ("flow", "geometry", "blend")
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


# Lip-corner AUs as (outward, upward) directions and cone half-widths (degrees), from FACS's
# descriptions of the muscles: AU12 obliquely up and out along the zygomatic major (45 degrees), AU20
# out and a little down (risorius with platysma: the lips are elongated, the lower lip stretched down),
# AU15 straight down (depressor anguli oris), AU14 straight in (buccinator). The cones leave no gap
# around the corner and overlap only between AU12 and AU20 near the horizontal, where both score little.
_CORNER_AUS = {"AU12": ((1.0, 1.0), 45.0), "AU20": ((1.0, -0.25), 30.0),
               "AU15": ((0.0, -1.0), 45.0), "AU14": ((-1.0, 0.0), 45.0)}
#: Where windows sit relative to their landmarks, (outward, downward) in IOD: lid windows on the
#: skin just outside the margin (the eyeball under a lid does not move), chin halves for AU17.
_OFFSETS = {"upper_lid": (0.0, -0.03), "lower_lid": (0.0, 0.04), "chin": (0.2, 0.0)}


def _mouth_reference(upper: np.ndarray, lower: np.ndarray, jaw_coupling: float) -> np.ndarray:
    """Motion of the point on the mouth's midline that the lip corners are measured from.

    Not the eyes: when the whole mouth rises (a chin raise with a raised upper lip, as in crying)
    the corners rise with it and that is no smile. A point ``jaw_coupling`` of the way from the upper to
    the lower lip follows an opening jaw as far as the corners do (they sit between the lips), so AU12
    survives open-mouth laughter and a dropped jaw does not read as AU15. A lower lip pushed up past the
    upper lip (AU17) counts as following the upper lip.
    """
    low_y = max(float(lower[1]), float(upper[1]))
    return np.array([0.0, (1 - jaw_coupling) * float(upper[1]) + jaw_coupling * low_y])


def _evidence(disp, side: str, code: str, jaw_coupling: float) -> float:
    """Displacement of an AU's region along its direction, relative to its neighbourhood (IOD units).

    ``disp(name)`` gives the mean displacement (2,) of a landmark group, head motion removed. Where a
    neighbouring action moves the same skin, only motion beyond the neighbour's counts (coefficient 1:
    the region must move more than the neighbour that could have dragged it).
    """
    up = lambda v: -float(v[1])  # noqa: E731 - image y grows downwards
    out = lambda v: _SIGN[side] * float(v[0])  # noqa: E731
    s = side + "_"
    if code in ("AU1", "AU2"):
        inner, outer = up(disp(s + "inner_brow")), up(disp(s + "outer_brow"))
        a, b = (inner, outer) if code == "AU1" else (outer, inner)
        own = a - max(0.0, b - a)  # raised, less what the other part's larger rise explains
        # AU1 also counts raised relative to the outer brow: AU4 pulls the whole brow down under the
        # AU1 of fear and sadness.
        return max(own, a - b) if code == "AU1" else own
    if code == "AU4":
        # FACS: the brows are lowered and drawn together; either part of the pull counts
        return max(-up(disp(s + "brow")), -out(disp(s + "inner_brow")))
    if code == "AU5":
        return up(disp(s + "upper_lid")) - max(0.0, up(disp(s + "brow")))
    if code == "AU43":
        return -up(disp(s + "upper_lid")) - max(0.0, -up(disp(s + "brow")))
    if code == "AU6":
        # The cheek rises beyond what the lower lid's own rise (AU7) and half the lip corner's rise
        # (AU12 drags the cheek skin, less than the corner it pulls) explain.
        cheek, lid = up(disp(s + "cheek")), up(disp(s + "lower_lid"))
        return cheek - 0.5 * max(0.0, up(disp(s + "mouth_corner"))) - max(0.0, lid - cheek)
    if code == "AU7":
        lid, cheek = up(disp(s + "lower_lid")), up(disp(s + "cheek"))
        return lid - max(0.0, cheek)
    if code in ("AU9", "AU10"):
        nose, lip = up(disp(s + "nose_wing")), up(disp(s + "upper_lip"))
        a, b = (nose, lip) if code == "AU9" else (lip, nose)
        own = a - max(0.0, b - a)
        if code == "AU10":  # a lip corner rising more than the lip beside it is AU12 dragging the lip
            own -= max(0.0, up(disp(s + "mouth_corner")) - lip)
        return own
    if code in _CORNER_AUS:
        c = disp(s + "mouth_corner") - _mouth_reference(disp(s + "upper_lip_mid"), disp(s + "lower_lip_mid"),
                                                          jaw_coupling)
        (o, u), width = _CORNER_AUS[code]
        return _cone(c, _side_dir(side, o, u), width)
    if code == "AU17":
        return up(disp(s + "chin"))
    if code == "AU25":
        # lips apart by more than the jaw opens them (AU26 drops the chin with the lip); an upper lip
        # raised on its own (AU10) counts only as far as the lower lip drops too
        low, upper = -up(disp("lower_lip_mid")), up(disp("upper_lip_mid"))
        return low + min(upper, max(0.0, low)) - max(0.0, -up(disp("chin")))
    if code == "AU26":
        return -up(disp("chin"))
    raise KeyError(code)


def _geometry(p0: np.ndarray, p1: np.ndarray, side: str, code: str, jaw_coupling: float) -> float:
    """Change of landmark geometry from onset (p0) to apex (p1) for one of :data:`GEOMETRY_AUS` on
    one side, in IOD units (landmarks already in IOD units, head motion removed)."""
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


# -- measuring ----------------------------------------------------------------------------------------
def _flow_pairs(front, refs, targets, method: str, radius: int) -> np.ndarray:
    """Mean flow over every (reference, target) pair, each with the head's motion (fitted at the rigid
    points of its reference frame) removed."""
    gray = front.faces.gray
    flows = [remove_head_motion(dense_flow(gray[r], gray[j], method=method), front.head_points(r), radius=radius)
             for r in refs for j in targets]
    return np.mean(flows, axis=0).astype(np.float32)


def _flow_spread(front, i0: int, refs, targets, method: str, radius: int) -> np.ndarray:
    """The mean flow from the frames ``refs`` around the onset ``i0`` to the frames ``targets`` around the
    apex, as the mean flow from the onset to the targets plus the mean flow from the references to the
    onset: len(refs) + len(targets) flows instead of their product. Flows compose by adding where the
    first is small (r -> onset, a neutral face's sub-pixel drift), to within that drift's effect on where
    the second is sampled."""
    out = _flow_pairs(front, [i0], targets, method, radius)
    others = [r for r in refs if r != i0]
    if others:
        out = out + _flow_pairs(front, others, [i0], method, radius) * (len(others) / len(refs))
    return out


def _flow_measure(flow: np.ndarray, lm0: np.ndarray, iod: float, radius: int, jaw_coupling: float) -> np.ndarray:
    """(n_aus, 2) flow evidence of every AU and side, windows placed on the landmarks ``lm0``."""
    cache: dict[str, np.ndarray] = {}

    def disp(name: str) -> np.ndarray:
        if name not in cache:
            side, _, region = name.partition("_")
            off = _OFFSETS.get(region, (0.0, 0.0)) if side in _SIGN else (0.0, 0.0)
            group = region if region == "chin" else name
            pts = lm0[_idx(group)] + iod * np.array([_SIGN.get(side, 0.0) * off[0], off[1]])
            cache[name] = sample_points(flow, pts, radius=radius).mean(axis=0) / iod
        return cache[name]

    out = np.zeros((len(AU_CODES), 2))
    for k, code in enumerate(AU_CODES):
        for j, side in enumerate(SIDES):
            out[k, j] = out[k, 0] if (code in MIDLINE_AUS and j == 1) else _evidence(disp, side, code, jaw_coupling)
    return out


def _geometry_measure(p0: np.ndarray, p1: np.ndarray, rigid: Sequence[int], iod: float,
                      jaw_coupling: float) -> np.ndarray:
    """(n_aus, 2) geometry evidence from landmarks ``p0`` to ``p1`` (crop pixels), head motion removed."""
    m = fit_head_motion(p1[list(rigid)], p0[list(rigid)])
    p1 = p1 @ m[:, :2].T + m[:, 2]
    q0, q1 = p0 / iod, p1 / iod
    out = np.zeros((len(AU_CODES), 2))
    for k, code in enumerate(AU_CODES):
        if code not in GEOMETRY_AUS:
            continue
        for j, side in enumerate(SIDES):
            out[k, j] = out[k, 0] if (code in MIDLINE_AUS and j == 1) else _geometry(q0, q1, side, code, jaw_coupling)
    return out


def _blendshape_rows(track, frames, *, blendshapes: np.ndarray | None = None) -> np.ndarray | None:
    """(len(frames), n_aus, 2) AU blendshape scores at ``frames`` (means of i-1..i+1; a side's highest, NaN
    never replacing a number, as Python's ``max``) or None; ``blendshapes``: (N, 52) to read instead."""
    if (bs := getattr(track, "blendshapes", None) if blendshapes is None else blendshapes) is None:
        return None
    i, col = np.asarray(frames, int), {n: j for j, n in enumerate(track.blendshape_names)}
    pad = np.pad(np.asarray(bs), ((1, 1), (0, 0)), constant_values=np.nan)  # nanmean averages what exists
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # a frame and both neighbours lost: NaN
        rows = np.nanmean(np.stack([pad[i], pad[i + 1], pad[i + 2]], axis=1), axis=1)
    out = np.full((len(i), len(AU_CODES), 2), np.nan)
    for k, code in enumerate(AU_CODES):
        for side, names in enumerate(BLENDSHAPE_AUS.get(code, ())):
            for j, n in enumerate(names):
                out[:, k, side] = np.where((rows[:, col[n]] > out[:, k, side]) | (j == 0), rows[:, col[n]], out[:, k, side])
    return out


def _baseline(track, rest: np.ndarray | None = None) -> np.ndarray:
    """(n_aus, 2) resting level of each AU's blendshapes: their 5th percentile over the track (or ``rest``)."""
    bs = np.asarray(track.blendshapes if rest is None else rest, float)
    rows = _blendshape_rows(track, np.linspace(0, len(bs) - 1, min(len(bs), 200)).astype(int), blendshapes=rest)
    out = np.full(rows.shape[1:], np.nan)
    seen = np.isfinite(rows).any(axis=0)  # AUs without a blendshape stay NaN
    out[seen] = np.nanpercentile(rows[:, seen], 5, axis=0)
    return out


def _lips_apart(lm: np.ndarray, i0: int, i1: int, iod: float) -> float:
    """Smallest vertical gap between the inner lips (upper: 13, 82, 312; lower: 14, 87, 317) from frame i0 to
    i1 above the clip's resting gap, in IOD: lips held apart through the interval (a laugh already under way at the onset) are AU25 even
    where they part no further between onset and apex."""
    up, low = _idx("upper_inner_lip"), _idx("lower_inner_lip")
    gap = (lm[:, low, 1].mean(axis=1) - lm[:, up, 1].mean(axis=1)) / iod
    part = gap[i0:i1 + 1]
    # above the person's own resting gap (the clip's 5th percentile), as for the blendshapes: FACS codes against
    # the neutral face, and some faces rest with the lips slightly apart
    return float(part.min() - np.percentile(gap, 5)) if part.size else 0.0


def _spread(x: np.ndarray) -> float:
    """Robust sigma (1.4826 MAD about zero) of measurements that should be zero."""
    v = np.abs(np.asarray(x, float)[np.isfinite(x)])
    return float(1.4826 * np.median(v)) if v.size else 0.0


def measure(front, i0: int, i1: int, config: AUConfig) -> tuple[AUFeatures, np.ndarray]:
    """Measurements between analysis frames i0 (onset) and i1 (apex), and the mean flow."""
    if config.flow_method not in FLOW_METHODS:
        raise AUError(f"unknown flow method {config.flow_method!r} (choose from {', '.join(FLOW_METHODS)})")
    faces = front.faces
    iod = float(front.interocular_px)
    n = len(faces)
    radius = max(1, int(round(config.window * iod)))
    # The mean flow from onset-r0..onset to apex-r1..apex+r1 (:func:`_flow_spread`): sensor noise and flow
    # error average out, while a micro-expression's apex plateau loses little. Radii in seconds (the same
    # stretch of the face's motion at any frame rate), frames about 30 a second.
    step = max(1, round(front.fps / 30))
    r1 = max(1, round(config.apex_seconds * front.fps))
    r0 = max(1, round(config.onset_seconds * front.fps))
    lo, hi = max(i0 + 1, i1 - r1), min(n - 1, i1 + r1)
    targets = sorted({*range(i1, lo - 1, -step), *range(i1, hi + 1, step)}) if i1 > i0 else [i1]
    refs = sorted(range(i0, max(0, i0 - r0) - 1, -step))
    flow = _flow_spread(front, i0, refs, targets, config.flow_method, radius)
    lm = faces.landmarks
    fl = _flow_measure(flow, lm[i0], iod, radius, config.jaw_coupling)
    # The null pair: the onset against the frame 0.1 s before it (the first frames when the onset is the
    # clip's first). Short, so that it measures the flow's error here, not an expression under way.
    # ``null_pairs`` such pairs back to back (0.1 s each, before the onset) give the median spread: one pair
    # can catch a blink or a jolt of the laugh and raise the bar four-fold for one reading and not for
    # another reading of the same moment (a mirrored or recompressed copy).
    gap = max(1, round(0.1 * front.fps))
    pairs = [(i0 - (m + 1) * gap, i0 - m * gap) for m in range(max(1, config.null_pairs))]
    pairs = [(a, b) for a, b in pairs if a >= 0] or [(0, min(gap, n - 1))]
    j0 = pairs[0][0]

    def pts(i):  # landmarks averaged over +-1 frame (tracker jitter)
        return lm[max(0, i - 1):min(n, i + 2)].mean(axis=0)
    geo = _geometry_measure(pts(i0), pts(i1), RIGID_INDICES, iod, config.jaw_coupling)
    rows = [k for k, c in enumerate(AU_CODES) if c in GEOMETRY_AUS]
    noise, geometry_noise = [], []
    for a, b in pairs:
        null_fl = _flow_measure(_flow_pairs(front, [a], [b], config.flow_method, radius), lm[a], iod, radius,
                                config.jaw_coupling)
        noise.append(_spread(null_fl))
        geometry_noise.append(_spread(_geometry_measure(pts(a), pts(b), RIGID_INDICES, iod, config.jaw_coupling)[rows]))

    b0, b1, bn = [None] * 3 if (b := _blendshape_rows(front.track, [i0, i1, j0])) is None else b
    blend = state = grown = held = raised = None
    blend_noise = 0.0
    if b0 is not None and b1 is not None:
        # The state is the highest level between onset and apex: the apex (the frame of most motion)
        # can catch a laughing mouth opened past its smile, which is still in the interval.
        rise = _blendshape_rows(front.track, range(i0, i1 + 1))
        state = np.where(np.isnan(rise).all(axis=0), np.nan, np.nanmax(np.nan_to_num(rise, nan=-np.inf), axis=0))
        held = np.where(np.isnan(rise).all(axis=0), np.nan, np.nanmin(np.nan_to_num(rise, nan=np.inf), axis=0))
        # held above the person's resting level (FACS codes against neutral; a stream's: its last minute)
        rest = _baseline(front.track, getattr(front, "rest_blendshapes", None))
        held = held - rest
        raised = state - rest
        blend = b1 - b0
        grown = state - b0
        blend_noise = _spread(b0 - bn) if bn is not None else 0.0
    head = front.head_points(i0)
    rigid = float(np.sqrt((sample_points(flow, head, radius=radius) ** 2).sum(-1).mean()) / iod)
    feats = AUFeatures(AU_CODES, fl, geo, blend, state, grown, noise=float(np.median(noise)),
                       geometry_noise=float(np.median(geometry_noise)), blend_noise=blend_noise, rigid=rigid, held=held,
                       raised=raised, lips_apart=_lips_apart(lm, i0, i1, iod))
    return feats, flow
