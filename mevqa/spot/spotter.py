"""Micro- and macro-expression spotting from ROI optical flow.

The design follows the classic ROI-flow spotters that won the MEGC2022 spotting task and the MEGC2024
cross-cultural spotting task (the field notes in ARCHITECTURE.md): optical flow from the first frame of a sliding
window to every later frame; small regions of interest (inner and outer brows, upper and lower lids,
nose wings, cheeks, mouth corners, lips, chin); per region the mean of the largest 20-30% flow
magnitudes once the head's own motion is taken off; a low-pass filter (2 Hz); a rise above the local
minimum within about +-1 s that must also clear a robust noise floor (median + k MAD); boundaries
walked down toward the neighbouring valleys; detections of several regions merged into one interval;
micro versus macro by duration (MEGC: micro <= 0.5 s, macro up to 4 s). The older whole-face
baseline of MEGC2020 (MDMD, F1 about 0.04 on CAS(ME)^2) shows why the regions matter.

Where this implementation differs, and why:

- Head motion is a similarity transform fitted robustly (Tukey IRLS) to the flow at rigid landmarks
  (nose ridge, eye corners, forehead, face sides), not only the translation of the nose ridge: the
  alignment's residual scale and roll jitter grows with the distance from the eyes and, left in,
  shows up as false motion at the chin and lips.
- One flow per analysed frame (DIS, about 3 ms at 224x224). Windows of ``window_seconds`` start
  every ``window_seconds * (1 - overlap)``; each frame is compared with the reference of the *oldest*
  window that still contains it, so the reference is always at least ``window_seconds * (1 -
  overlap)`` earlier (3.3 s by default): any expression shorter than that is measured against a frame
  before its onset, and slow drift cannot build up over more than one window. References after the
  first are moved to the quietest frame near their nominal place, so none falls inside an expression.
- Boundaries are found on a lightly smoothed copy (5 Hz) and moved out to where a smooth (raised-
  cosine) rise would have left the noise; the 2 Hz signal only detects.
- Eye blinks, the classic false positive of flow spotters, are found from the eyelid landmarks (the
  upper lid falling in both eyes; eye aspect ratio of Soukupova & Cech, CVWW 2016) and explain
  detections in the lid windows; in the brow and lower-lid windows the part of the upper lid's motion
  that leaks into them is taken off first, so a blink alone yields nothing while an expression during
  a blink (a brow raise included) survives.

Every time constant is in seconds, so 30 fps and 200 fps footage behave alike. Results are reported
in the original clip's 0-based, inclusive frame numbers.
"""
from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from mevqa.face.landmarks import group_centre, interocular
from mevqa.motion.flow import FLOW_METHODS, dense_flow
from mevqa.motion.frontend import FrontEnd, FrontEndConfig, run_frontend
from mevqa.io.video import Clip

#: Region of interest -> (landmark group of :data:`mevqa.face.landmarks.LANDMARK_GROUPS`, downward offset of the
#: window centre in inter-ocular units). The upper-lid windows cover the lid skin between brow and lid
#: margin (AU5 raises it, every blink drags it down); the brow windows sit a little above the brow's
#: centre line to keep clear of it, the lower-lid windows just below the lid margin, where the skin
#: moves with AU6/AU7.
ROIS: dict[str, tuple[str, float]] = {
    "right_inner_brow": ("right_inner_brow", -0.05),
    "left_inner_brow": ("left_inner_brow", -0.05),
    "right_outer_brow": ("right_outer_brow", -0.05),
    "left_outer_brow": ("left_outer_brow", -0.05),
    "right_upper_lid": ("right_upper_lid", -0.08),
    "left_upper_lid": ("left_upper_lid", -0.08),
    "right_lower_lid": ("right_lower_lid", 0.10),
    "left_lower_lid": ("left_lower_lid", 0.10),
    "right_nose_wing": ("right_nose_wing", 0.0),
    "left_nose_wing": ("left_nose_wing", 0.0),
    "right_cheek": ("right_cheek", 0.0),
    "left_cheek": ("left_cheek", 0.0),
    "right_mouth_corner": ("right_mouth_corner", 0.0),
    "left_mouth_corner": ("left_mouth_corner", 0.0),
    "upper_lip": ("upper_lip", 0.0),
    "lower_lip": ("lower_lip", 0.0),
    "chin": ("chin", 0.0),
}
#: Regions whose detections a blink explains (dropped while the eyes blink).
BLINK_ROIS = ("right_upper_lid", "left_upper_lid", "right_lower_lid", "left_lower_lid")
#: Regions next to the upper lid: a blink's lid motion leaks into their windows (about 0.1-0.17 of the
#: upper-lid window's rise in the brow windows, measured on synthetic blinks), so a detection there
#: must still clear the threshold after ``SpotConfig.lid_leak`` x the same-side upper-lid rise is
#: taken off. A brow raise during a blink survives; a blink alone does not.
LID_NEIGHBOURS = {"right_inner_brow": "right_upper_lid", "right_outer_brow": "right_upper_lid",
                  "right_lower_lid": "right_upper_lid", "left_inner_brow": "left_upper_lid",
                  "left_outer_brow": "left_upper_lid", "left_lower_lid": "left_upper_lid"}
#: Landmarks that expressions barely move (FaceMesh indices): nose ridge, eye corners, mid-forehead and
#: the sides of the face at eye level. Head motion is the similarity transform fitted robustly to the
#: flow there; the nose ridge and inner eye corners alone fix the translation but not the rotation and
#: scale, and a 1% scale error of the alignment is already a pixel at the chin.
RIGID_INDICES = (168, 6, 197, 195, 5, 4, 133, 362, 33, 263, 151, 108, 337, 69, 299, 127, 356, 234, 454)
# Eyelid landmarks (FaceMesh): three (upper, lower) lid-margin pairs and the two corners per eye.
_LIDS = {"right": (((159, 145), (158, 153), (160, 144)), (33, 133)),
         "left": (((386, 374), (385, 380), (387, 373)), (263, 362))}
# A Gaussian of standard deviation sigma seconds halves the power at f = sqrt(ln 2) / (2 pi sigma).
_GAUSS_3DB = math.sqrt(math.log(2)) / (2 * math.pi)


@dataclass(frozen=True)
class SpotConfig:
    """Options of :func:`spot`. Times are in seconds, distances in inter-ocular units (IOD).

    The defaults follow the MEGC2022/2024 ROI-flow spotters (windows of 200 frames at 30 fps with 50%
    overlap, 2 Hz low-pass at 30 fps, top 20-30% of the flow vectors per region, about +-1 s for the
    local baseline) and the MEGC durations (micro <= 0.5 s, macro 0.5-4 s).
    """

    # windows and references
    window_seconds: float = 6.7      # 200 frames at 30 fps
    overlap: float = 0.5             # fraction of a window shared with the next one
    ref_search_seconds: float = 0.6  # a later reference may move this far forward to a quiet frame
    flow_method: str = "dis"         # see mevqa.motion.flow.FLOW_METHODS
    # regions
    rois: tuple[str, ...] = tuple(ROIS)
    roi_radius: float = 0.12         # half side of each square ROI window (IOD)
    rigid_radius: float = 0.05       # half side of the windows at the rigid landmarks (IOD)
    top_fraction: float = 0.25       # mean of the largest this-fraction flow magnitudes per ROI
    # detection
    lowpass_hz: float = 2.0          # cut-off of the Gaussian low-pass (same in Hz at any fps)
    baseline_seconds: float = 1.0    # the rise is measured above the minimum within +- this
    noise_k: float = 4.0             # rise must exceed median + noise_k x 1.4826 MAD of all rises ...
    min_rise: float = 0.003          # ... and this absolute floor (IOD; 0.23 px in the 224 crop)
    fall_fraction: float = 0.3       # after the apex the signal must fall by this part of the rise
    # boundaries
    boundary_hz: float = 5.0         # boundaries are found on a copy low-passed this lightly
    floor_percentile: float = 15.0   # each side's floor: this percentile of the signal within 2 s
    edge_level: float = 0.03         # a boundary is where the signal falls to floor + this x height ...
    edge_noise: float = 0.5          # ... or floor + this x threshold, whichever is higher ...
    valley_depth: float = 0.15       # ... or a valley this deep (x height) before another rise
    calibrate_edges: bool = True     # move level crossings out to where a smooth rise began
    # merging and kinds
    merge_gap_seconds: float = 0.1   # apexes this close to another detection's span count as inside
    member_fraction: float = 0.5     # regions this strong relative to the best one shape the bounds
    valley_merge: float = 0.5        # overlapping intervals without a dip below this x peak are one
    nested_score: float = 2.0        # a brief interval inside a longer one stays if it scores this much
    min_seconds: float = 0.1         # shorter intervals are dropped
    micro_max_seconds: float = 0.5   # MEGC: a micro-expression lasts at most 0.5 s
    macro_max_seconds: float = 4.0   # MEGC: a macro-expression lasts 0.5-4 s
    long_policy: str = "split"       # longer intervals: "split" at their deepest valleys, or "drop"
    # blinks
    suppress_blinks: bool = True
    blink_max_seconds: float = 0.5   # eyes closed longer than this is not a blink
    blink_drop: float = 0.3          # upper-lid opening below (1 - drop) x its local level = closed
    lid_leak: float = 0.2            # part of the upper lid's rise taken off brow and lower-lid rises

    def __post_init__(self) -> None:
        if not 0 <= self.overlap < 1:
            raise ValueError(f"overlap must be in [0, 1), got {self.overlap}")
        if self.long_policy not in ("split", "drop"):
            raise ValueError(f"long_policy must be 'split' or 'drop', got {self.long_policy!r}")
        unknown = [r for r in self.rois if r not in ROIS]
        if unknown:
            raise ValueError(f"unknown ROI(s) {unknown}; choose from {list(ROIS)}")
        if self.flow_method not in FLOW_METHODS:
            raise ValueError(f"unknown flow method {self.flow_method!r}; choose from {', '.join(FLOW_METHODS)}")
        if not 0 < self.top_fraction <= 1:
            raise ValueError(f"top_fraction must be in (0, 1], got {self.top_fraction}")
        for name in ("window_seconds", "lowpass_hz", "boundary_hz", "baseline_seconds", "roi_radius"):
            if not getattr(self, name) > 0:
                raise ValueError(f"{name} must be positive, got {getattr(self, name)}")


@dataclass
class SpottedInterval:
    """One spotted expression in the original clip's 0-based inclusive frame numbers.

    ``score`` is the rise of the strongest region divided by its threshold (>= 1 when reported);
    ``rois`` gives each contributing region's rise in pixels of the aligned face crop.
    """

    onset: int
    apex: int
    offset: int
    kind: str
    score: float
    rois: dict[str, float] = field(default_factory=dict)

    def to_dict(self) -> dict:
        return {"onset": int(self.onset), "apex": int(self.apex), "offset": int(self.offset), "kind": self.kind,
                "score": round(float(self.score), 3), "rois": {k: round(float(v), 3) for k, v in self.rois.items()}}


@dataclass
class SpotResult:
    """Spotted intervals plus the curves they came from (analysis frames, possibly subsampled).

    ``signals`` maps each region to its low-passed motion (pixels of the aligned crop) against the
    window reference; ``combined`` is, per frame, the rise above the local baseline of the region that
    is strongest relative to its threshold, and ``threshold`` that region's threshold (both pixels), so
    ``combined > threshold`` wherever some region triggers. ``fps`` and ``n_frames`` are the clip's.
    """

    intervals: list[SpottedInterval]
    times: np.ndarray
    signals: dict[str, np.ndarray]
    combined: np.ndarray
    threshold: np.ndarray
    fps: float
    n_frames: int
    clip: str
    analysis_fps: float = 0.0
    blinks: list[tuple[int, int]] = field(default_factory=list)  # clip frames (start, end) inclusive

    def to_dict(self) -> dict:
        """The stable JSON contract of ``mevqa spot --json`` (plus ``rois`` inside each interval)."""
        return {"clip": self.clip, "fps": float(self.fps), "n_frames": int(self.n_frames),
                "intervals": [iv.to_dict() for iv in self.intervals]}

    def to_json(self, **kw) -> str:
        return json.dumps(self.to_dict(), **kw)

    def plot(self, ax=None, *, rois: bool = False):
        """Motion curve over time (s), threshold, intervals shaded and labelled; returns the figure."""
        import matplotlib

        matplotlib.use("Agg", force=False)
        import matplotlib.pyplot as plt

        if ax is None:
            fig, ax = plt.subplots(figsize=(10, 3))
        else:
            fig = ax.figure
        if rois:
            for name, s in self.signals.items():
                ax.plot(self.times, s, lw=0.6, alpha=0.5, label=name)
        ax.plot(self.times, self.combined, color="#1f4e79", lw=1.4, label="rise of strongest region")
        ax.plot(self.times, self.threshold, color="#777777", lw=1, ls="--", label="threshold")
        colours = {"micro": "#d62728", "macro": "#ff9f1c"}
        for iv in self.intervals:
            c = colours.get(iv.kind, "#888888")
            ax.axvspan(iv.onset / self.fps, iv.offset / self.fps, color=c, alpha=0.25)
            ax.axvline(iv.apex / self.fps, color=c, lw=0.8)
            ax.annotate(f"{iv.kind}\n{iv.score:.1f}", (iv.apex / self.fps, 1.0), xycoords=("data", "axes fraction"),
                        ha="center", va="top", fontsize=8, color=c)
        for b0, b1 in self.blinks:
            ax.axvspan(b0 / self.fps, b1 / self.fps, ymax=0.05, color="#6a0dad", alpha=0.7)
        ax.set_xlim(0, max(self.n_frames - 1, 1) / self.fps)
        ax.set_ylim(bottom=0)
        ax.set_xlabel("time (s)")
        ax.set_ylabel("motion (px)")
        ax.legend(loc="upper left", fontsize=7, frameon=False, ncol=3 if rois else 1)
        ax.set_title(f"{Path(self.clip).name}: {len(self.intervals)} interval(s)", fontsize=10)
        fig.tight_layout()
        return fig


# -- signal extraction ---------------------------------------------------------------------------
def window_layout(n: int, fps: float, *, window_seconds: float, overlap: float) -> tuple[int, int, np.ndarray]:
    """(window, step, segment of each frame). Frame t belongs to the oldest window containing it."""
    w = max(2, round(window_seconds * fps))
    s = max(1, round(w * (1 - overlap)))
    t = np.arange(n)
    seg = np.where(t < w, 0, (t - w) // s + 1)
    return w, s, seg


def _window_index(centres: np.ndarray, radius: int, size: tuple[int, int]) -> np.ndarray:
    """Flat pixel indices (k, (2r+1)^2) of square windows clipped to the image."""
    h, w = size
    d = np.arange(-radius, radius + 1)
    cx = np.clip(np.round(centres[:, 0]).astype(int), radius, w - 1 - radius)
    cy = np.clip(np.round(centres[:, 1]).astype(int), radius, h - 1 - radius)
    ys = cy[:, None, None] + d[None, :, None]
    xs = cx[:, None, None] + d[None, None, :]
    return (ys * w + xs).reshape(len(centres), -1)


def roi_centres(landmarks: np.ndarray, rois=tuple(ROIS), *, iod: float) -> np.ndarray:
    """Window centres (k, 2) of the named :data:`ROIS` for one frame's landmarks (crop coordinates)."""
    out = []
    for name in rois:
        group, down = ROIS[name]
        c = group_centre(landmarks, group).astype(float)
        out.append(c + (0.0, down * iod))
    return np.array(out)


def roi_motion(gray: np.ndarray, landmarks: np.ndarray, fps: float, *, config: SpotConfig = SpotConfig(),
               rois=None, iod: float | None = None, progress=None) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Raw per-ROI motion (R, T) in pixels, the reference of each frame (T,) and its segment (T,).

    One flow per frame, from the frame's window reference (see the module notes); the head's
    similarity motion, fitted to the flow at :data:`RIGID_INDICES`, is subtracted at every ROI pixel
    before the magnitudes are taken. ``rois`` defaults to ``config.rois``; ``iod`` is the
    inter-ocular distance in crop pixels (measured from the landmarks when not given).
    """
    n, h, w = gray.shape
    if iod is None:
        iod = float(np.median(interocular(landmarks)))
    rois = tuple(config.rois if rois is None else rois)
    k = len(rois)
    r_roi = max(2, round(config.roi_radius * iod))
    r_rig = max(2, round(config.rigid_radius * iod))
    n_pix = (2 * r_roi + 1) ** 2
    top = max(1, math.ceil(config.top_fraction * n_pix))
    _, step, seg = window_layout(n, fps, window_seconds=config.window_seconds, overlap=config.overlap)
    search = min(step - 1, round(config.ref_search_seconds * fps))
    raw = np.zeros((k, n), np.float32)
    refs = np.zeros(n, int)
    ref_of_seg: dict[int, int] = {0: 0}
    cur = -1
    for t in range(n):
        m = int(seg[t])
        if m != cur:
            if m not in ref_of_seg:
                # Quietest frame near the nominal reference m*step: least motion against the older
                # reference, so the new reference is not in the middle of an expression.
                lo, hi = m * step, min(m * step + search, t - 1)
                cand = raw[:, lo:hi + 1].mean(axis=0) if hi >= lo else np.zeros(1)
                ref_of_seg[m] = lo + int(np.argmin(cand))
            cur, ref = m, ref_of_seg[m]
            ref_img = gray[ref]
            lm = landmarks[ref]
            idx = _window_index(roi_centres(lm, rois, iod=iod), r_roi, (h, w))
            rig = _window_index(lm[list(RIGID_INDICES)].astype(float), r_rig, (h, w))
            centre = lm[list(RIGID_INDICES)].mean(axis=0)
            rig_xy = lm[list(RIGID_INDICES)] - centre
            roi_xy = np.stack([idx % w, idx // w], axis=-1) - centre
        refs[t] = ref
        if t != ref:  # a frame against itself has no flow; frame 0 is filled in below
            flat = dense_flow(ref_img, gray[t], method=config.flow_method).reshape(-1, 2)
            a, b, tx, ty = fit_similarity(rig_xy, flat[rig].mean(axis=1))
            hx = a * roi_xy[..., 0] - b * roi_xy[..., 1] + tx
            hy = b * roi_xy[..., 0] + a * roi_xy[..., 1] + ty
            v = flat[idx]
            mag = np.hypot(v[..., 0] - hx, v[..., 1] - hy)
            raw[:, t] = np.partition(mag, n_pix - top, axis=1)[:, n_pix - top:].mean(axis=1)
        if progress is not None and (t % 16 == 0 or t == n - 1):
            progress(t + 1, n)
    if n > 1:
        # The first frame is its own reference: give it the flow noise level of its neighbour rather
        # than an exact zero that every later frame would "rise" above.
        raw[:, 0] = raw[:, 1]
    return raw, refs, seg


def fit_similarity(xy: np.ndarray, uv: np.ndarray, *, iterations: int = 4) -> tuple[float, float, float, float]:
    """Robust small similarity motion u = [a x - b y + tx, b x + a y + ty] fitted to flows ``uv`` at ``xy``.

    Iteratively reweighted least squares with Tukey's biweight (cut-off 4.685 robust sigmas), started
    from the median translation, so the few rigid points an expression does move are voted out.
    """
    x, y = xy[:, 0].astype(float), xy[:, 1].astype(float)
    k = len(x)
    m = np.zeros((2 * k, 4))
    m[:k, 0], m[:k, 1], m[:k, 2] = x, -y, 1
    m[k:, 0], m[k:, 1], m[k:, 3] = y, x, 1
    rhs = np.concatenate([uv[:, 0], uv[:, 1]]).astype(float)
    p = np.array([0.0, 0.0, *np.median(uv, axis=0)])
    for _ in range(iterations):
        r = (m @ p - rhs).reshape(2, k)
        dist = np.hypot(r[0], r[1])
        s = max(1.4826 * np.median(dist), 0.02)  # 0.02 px: below that, everything is an inlier
        w = np.clip(1 - (dist / (4.685 * s)) ** 2, 0, None) ** 2
        ww = np.concatenate([w, w])
        a = m.T @ (m * ww[:, None])
        if np.linalg.cond(a) > 1e8:
            break
        p = np.linalg.solve(a, m.T @ (rhs * ww))
    return float(p[0]), float(p[1]), float(p[2]), float(p[3])


def lowpass(x: np.ndarray, fps: float, cutoff_hz: float, *, segments: np.ndarray | None = None) -> np.ndarray:
    """Zero-phase Gaussian low-pass along the last axis, edge-padded, never across segment changes.

    The cut-off is in Hz, so the kernel spans the same time at any frame rate.
    """
    x = np.asarray(x, float)
    sigma = _GAUSS_3DB / cutoff_hz * fps
    if sigma < 0.3 or x.shape[-1] < 2:
        return x.copy()
    seg = np.zeros(x.shape[-1], int) if segments is None else np.asarray(segments)
    out = np.empty_like(x)
    bounds = np.flatnonzero(np.diff(seg)) + 1
    r = max(1, int(math.ceil(3 * sigma)))
    kern = np.exp(-0.5 * (np.arange(-r, r + 1) / sigma) ** 2)
    kern /= kern.sum()
    for a, b in zip(np.r_[0, bounds], np.r_[bounds, x.shape[-1]]):
        part = x[..., a:b]
        pad = np.concatenate([np.repeat(part[..., :1], r, -1), part, np.repeat(part[..., -1:], r, -1)], -1)
        flat = pad.reshape(-1, pad.shape[-1])
        out[..., a:b] = np.stack([np.convolve(row, kern, mode="valid") for row in flat]).reshape(part.shape)
    return out


def local_baseline(x: np.ndarray, half: int, *, segments: np.ndarray | None = None) -> np.ndarray:
    """Running minimum over +-``half`` frames (last axis), not reaching into another segment."""
    x = np.asarray(x, float)
    n = x.shape[-1]
    seg = np.zeros(n, int) if segments is None else np.asarray(segments)
    out = np.empty_like(x)
    bounds = np.flatnonzero(np.diff(seg)) + 1
    for a, b in zip(np.r_[0, bounds], np.r_[bounds, n]):
        part = x[..., a:b]
        pad = np.full((*part.shape[:-1], part.shape[-1] + 2 * half), np.inf)
        pad[..., half:half + part.shape[-1]] = part
        out[..., a:b] = np.lib.stride_tricks.sliding_window_view(pad, 2 * half + 1, axis=-1).min(axis=-1)
    return out


def _running_median(x: np.ndarray, half: int) -> np.ndarray:
    """Median over +-``half`` samples along the last axis (windows shrink at the ends)."""
    n = x.shape[-1]
    if n <= 2 * half + 1:
        return np.stack([np.median(x[..., max(0, t - half):t + half + 1], axis=-1) for t in range(n)], axis=-1)
    mid = np.median(np.lib.stride_tricks.sliding_window_view(x, 2 * half + 1, axis=-1), axis=-1)
    head = [np.median(x[..., :t + half + 1], axis=-1) for t in range(half)]
    tail = [np.median(x[..., t - half:], axis=-1) for t in range(n - half, n)]
    return np.concatenate([np.stack(head, -1), mid, np.stack(tail, -1)], axis=-1)


# -- blinks ---------------------------------------------------------------------------------------
def lid_openings(landmarks: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """How far the upper and the lower lid margins stand from the line through the eye corners.

    Returns (upper, lower), each (2, T) for the subject's (right, left) eye, in eye widths. Their sum
    is the eye aspect ratio of Soukupova & Cech (CVWW 2016); kept apart, a blink (the upper lid falls)
    can be told from a lid tightener or cheek raiser (the lower lid rises).
    """
    ups, lows = [], []
    for side in ("right", "left"):
        pairs, (a, b) = _LIDS[side]
        pa, pb = landmarks[:, a], landmarks[:, b]
        d = pb - pa
        width = np.maximum(np.linalg.norm(d, axis=-1), 1e-6)
        normal = np.stack([-d[:, 1], d[:, 0]], axis=-1) / width[:, None]
        normal *= np.sign(normal[:, 1:2] + 1e-12)  # pointing down the image
        up = np.mean([-((landmarks[:, i] - pa) * normal).sum(-1) for i, _ in pairs], axis=0)
        low = np.mean([((landmarks[:, j] - pa) * normal).sum(-1) for _, j in pairs], axis=0)
        ups.append(up / width)
        lows.append(low / width)
    return np.stack(ups), np.stack(lows)


def detect_blinks(landmarks: np.ndarray, fps: float, *, max_seconds: float = 0.5, drop: float = 0.3,
                  context_seconds: float = 1.5) -> list[tuple[int, int]]:
    """Blinks as (start, end) frame pairs (inclusive), from the eyelid landmarks.

    A blink is both upper lids falling together (their opening below ``1 - drop`` of its running
    median over +-``context_seconds``, and falling more than the lower lid rises) for at most
    ``max_seconds``; the span is widened to where the lids start and finish moving (opening back above
    ``1 - drop / 3`` of its level). One eye alone is a wink (AU46), a rising lower lid is a lid
    tightener or cheek raiser (AU7, AU6), and eyes closed for longer are not a blink: all expressions.
    """
    n = len(landmarks)
    if n < 3:
        return []
    up, low = lid_openings(landmarks)
    half = max(1, round(context_seconds * fps))
    lvl_up, lvl_low = _running_median(up, half), _running_median(low, half)
    rel = up / np.maximum(lvl_up, 1e-6)
    upper_led = (lvl_up - up) > (lvl_low - low)
    closed = ((rel < 1 - drop) & upper_led).all(axis=0)
    moving = (rel < 1 - drop / 3).any(axis=0)
    out = []
    reach = max(1, round(max_seconds / 2 * fps))  # lids take a fraction of a second to close or open
    for a, b in _runs(closed):
        if (b - a + 1) / fps > max_seconds:
            continue
        a0, b0 = a, b
        while a > max(0, a0 - reach) and moving[a - 1]:
            a -= 1
        while b < min(n - 1, b0 + reach) and moving[b + 1]:
            b += 1
        if out and a <= out[-1][1] + 1:
            out[-1] = (out[-1][0], b)
        else:
            out.append((a, b))
    return out


def _runs(mask: np.ndarray) -> list[tuple[int, int]]:
    """(start, end) inclusive of each run of True."""
    m = np.r_[False, np.asarray(mask, bool), False].astype(int)
    d = np.diff(m)
    return list(zip(np.flatnonzero(d == 1), np.flatnonzero(d == -1) - 1))


# -- detection ------------------------------------------------------------------------------------
@dataclass
class _Cand:
    onset: float
    apex: int
    offset: float
    roi: int
    score: float
    rise: float


def _walk(x: np.ndarray, p: int, level: float, tol: float, stop: int, step: int) -> tuple[float, bool]:
    """From the apex ``p`` walk outward (``step`` -1 or +1) to where ``x`` falls to ``level``.

    The walk ends early at a valley only when the signal beyond it climbs back by more than ``tol``
    (the foot of a neighbouring event); shallower wiggles are noise on a plateau and are walked over.
    Returns a fractional frame position (linear interpolation at the level crossing) and whether the
    level was crossed (rather than a valley or the search limit reached).
    """
    best, t = p, p
    while t != stop:
        nxt = t + step
        if x[nxt] <= level:
            frac = (x[t] - level) / max(x[t] - x[nxt], 1e-12)
            return t + step * float(np.clip(frac, 0, 1)), True
        if x[nxt] > x[best] + tol:
            return float(best), False  # climbing into another event: the valley is the boundary
        t = nxt
        if x[t] < x[best]:
            best = t
    return float(best if x[best] < x[stop] else stop), False


def _foot(pos: float, apex: int, q: float) -> float:
    """Where a smooth rise that crosses ``q`` of its height at ``pos`` started (or a fall ended).

    Motion below the noise cannot be seen, so a level crossing is late by the part of the rise spent
    under the level. For a raised-cosine rise (the usual model of an expression's onset and offset) the
    level q is reached after a fraction u = arccos(1 - 2q) / pi of the rise time.
    """
    q = float(np.clip(q, 1e-3, 0.5))
    u = math.acos(1 - 2 * q) / math.pi
    return pos + (pos - apex) * u / (1 - u)


def _candidates(x: np.ndarray, xb: np.ndarray, d: np.ndarray, thr: float, fps: float, cfg: SpotConfig,
                roi: int) -> list[_Cand]:
    """Detections in one region: runs where the rise ``d`` of ``x`` exceeds ``thr``, checked, then
    bounded on the lightly smoothed ``xb``."""
    n = len(x)
    half = max(1, round(cfg.baseline_seconds * fps))
    reach = max(half, round(cfg.macro_max_seconds / 2 * fps))
    out = []
    for a, b in _runs(d > thr):
        p = a + int(np.argmax(x[a:b + 1]))
        left = x[max(0, p - half):p + 1].min()
        right = x[p:min(n, p + half + 1)].min()
        rise = x[p] - min(left, right)
        # A step (onset with no return) is no expression unless the clip ends before it can return.
        ends = p + half >= n - 1
        if not ends and x[p] - right < cfg.fall_fraction * rise:
            continue
        lo, hi = max(0, p - reach), min(n - 1, p + reach)
        near = max(1, round(0.1 * fps))
        pb = max(lo, p - near) + int(np.argmax(xb[max(lo, p - near):min(hi, p + near) + 1]))
        # Each side's floor is a low percentile of that side, not its minimum: the noise around a
        # small event sits above its deepest dip, and a level under the noise is never crossed. Per
        # side, so a clip that is one expression (nothing but the rise on one side) still ends at
        # its neutral frames.
        pad = cfg.edge_noise * thr
        levels, bases = [], []
        for part in (xb[lo:pb + 1], xb[pb:hi + 1]):
            base = float(np.percentile(part, cfg.floor_percentile))
            bases.append(base)
            levels.append(base + max(cfg.edge_level * (xb[pb] - base), pad))
        tol = cfg.valley_depth * (xb[pb] - min(levels))
        bounds = []
        for level, base, stop, step in ((levels[0], bases[0], lo, -1), (levels[1], bases[1], hi, +1)):
            pos, crossed = _walk(xb, pb, level, tol, stop, step)
            if crossed and cfg.calibrate_edges:
                pos = float(np.clip(_foot(pos, pb, (level - base) / max(xb[pb] - base, 1e-9)), lo, hi))
            bounds.append(pos)
        on, off = bounds
        out.append(_Cand(on, p, off, roi, float(d[p] / thr), float(rise)))
    return out


@dataclass
class _Group:
    on: float
    apex: int
    off: float
    score: float
    members: list


def _group(cands: list[_Cand], gap: float, member_fraction: float) -> list[_Group]:
    """Merge detections across regions into expressions.

    Strongest first, a detection joins an expression when each one's apex lies inside the other's
    span (give or take ``gap`` frames): the same movement seen by several regions. The expression's
    bounds are the union of its members at least ``member_fraction`` as strong as its best.
    Expressions that still overlap are then merged or cut apart by :func:`_resolve`, so a busy
    stretch of video does not chain into one long interval.
    """
    groups: list[list[_Cand]] = []
    for c in sorted(cands, key=lambda c: -c.score):
        for g in groups:
            s = g[0]
            if s.onset - gap <= c.apex <= s.offset + gap and c.onset - gap <= s.apex <= c.offset + gap:
                g.append(c)
                break
        else:
            groups.append([c])
    out = []
    for g in groups:
        strong = [c for c in g if c.score >= member_fraction * g[0].score]
        out.append(_Group(min(c.onset for c in strong), g[0].apex, max(c.offset for c in strong), g[0].score, list(g)))
    return out


def _resolve(groups: list[_Group], curve: np.ndarray, *, valley: float = 0.5,
             nested_score: float = 2.0) -> list[_Group]:
    """Merge or cut apart overlapping expressions (see :func:`_group`).

    An expression inside one more than twice as long, seen in other regions and scoring at least
    ``nested_score``, is left alone: a brief expression during a longer one (MEGC ground truth
    has such pairs; so has the demo clip). Weaker ones are usually the longer one's spill-over.
    Otherwise two expressions that overlap are one when they share half of the shorter, or when
    ``curve`` does not dip below ``valley`` x the lower of their two peaks between their apexes; else
    they are cut apart at that dip.
    """
    groups = sorted(groups, key=lambda g: g.on)
    kept: set[tuple[int, int]] = set()  # pairs left to overlap: a brief expression inside a longer one
    changed = True
    while changed:
        changed = False
        for a, b in ((a, b) for i, a in enumerate(groups) for b in groups[i + 1:]):
            overlap = min(a.off, b.off) - max(a.on, b.on)
            if overlap <= 0 or (id(a), id(b)) in kept:
                continue
            lo, hi = sorted((a.apex, b.apex))
            cut = lo + int(np.argmin(curve[lo:hi + 1])) if hi > lo else lo
            short, long_ = sorted((a, b), key=lambda g: g.off - g.on)
            inside = long_.on <= short.on and short.off <= long_.off
            if (inside and hi > lo and short.off - short.on < 0.5 * (long_.off - long_.on)
                    and short.score >= nested_score
                    and not {c.roi for c in short.members} & {c.roi for c in long_.members}):
                # Other regions, much briefer: an expression of its own during the longer one (a
                # masked micro-expression during a smile, say). Both stay.
                kept.add((id(a), id(b)))
                continue
            if overlap >= 0.5 * min(a.off - a.on, b.off - b.on) or hi == lo:
                keep, drop = (a, b) if a.score >= b.score else (b, a)
                keep.members += drop.members
                groups.pop(groups.index(drop))
            elif curve[cut] >= valley * min(curve[a.apex], curve[b.apex]):
                # No real valley between them: one movement seen as two peaks.
                keep, drop = (a, b) if a.score >= b.score else (b, a)
                keep.on, keep.off = min(a.on, b.on), max(a.off, b.off)
                keep.members += drop.members
                groups.pop(groups.index(drop))
            else:
                first, second = (a, b) if a.apex < b.apex else (b, a)
                first.off, second.on = min(first.off, float(cut)), max(second.on, float(cut))
            groups.sort(key=lambda g: g.on)
            changed = True
            break
    return groups


def _split_long(on: float, off: float, curve: np.ndarray, max_len: float, min_gap: int) -> list[tuple[float, float]]:
    """Split [on, off] at the deepest valleys of ``curve`` until no piece is longer than ``max_len``."""
    if off - on <= max_len:
        return [(on, off)]
    a, b = int(math.ceil(on)) + min_gap, int(math.floor(off)) - min_gap
    if b <= a:
        return [(on, off)]
    cut = a + int(np.argmin(curve[a:b + 1]))
    return _split_long(on, float(cut), curve, max_len, min_gap) + _split_long(float(cut), off, curve, max_len, min_gap)


def noise_floor(d: np.ndarray, *, k: float) -> float:
    """Global rise threshold: median + k x 1.4826 MAD of the rises of all regions and frames.

    Pooled over regions, the estimate stays robust when the whole clip is one expression (a dataset
    clip): an expression moves a few of the regions, the others still show the noise.
    """
    v = np.asarray(d, float).ravel()
    med = float(np.median(v))
    return med + k * 1.4826 * float(np.median(np.abs(v - med)))


def spot(front: FrontEnd, *, config: SpotConfig = SpotConfig(), progress=None) -> SpotResult:
    """Spot micro- and macro-expressions in a tracked, aligned clip.

    Steps: per-region motion against the window references (:func:`roi_motion`); low-pass; the rise
    above the local minimum within +-``baseline_seconds``; one threshold, the larger of a robust noise
    floor over all regions and frames (:func:`noise_floor`) and ``min_rise``; detections per region
    (a rise over the threshold that falls again), bounded toward the neighbouring valleys; blink and
    lid-leak checks; detections merged across regions (:func:`_group`, :func:`_resolve`); longer than
    ``macro_max_seconds`` split or dropped; micro or macro by duration. ``progress`` is an optional
    callable ``(done, total)`` called while the flow runs.
    """
    cfg = config
    faces = front.faces
    fps = front.fps
    n = len(faces)
    iod = front.interocular_px
    names = list(cfg.rois)
    # The lid rule needs the upper-lid windows even when they are not detection regions.
    aux = sorted({LID_NEIGHBOURS[r] for r in names if r in LID_NEIGHBOURS} - set(names))
    raw_all, refs, seg = roi_motion(faces.gray, faces.landmarks, fps, config=cfg, rois=names + aux, iod=iod,
                                    progress=progress)
    x_all = lowpass(raw_all, fps, cfg.lowpass_hz, segments=seg)
    xb_all = lowpass(raw_all, fps, cfg.boundary_hz, segments=seg)
    half = max(1, round(cfg.baseline_seconds * fps))
    d_all = x_all - local_baseline(x_all, half, segments=seg)
    k = len(names)
    x, xb, d = x_all[:k], xb_all[:k], d_all[:k]
    lid_rise = dict(zip(names + aux, d_all))
    # One threshold for all regions (kept per region so that per-region floors could come back).
    thr = np.full(k, max(noise_floor(d, k=cfg.noise_k), cfg.min_rise * iod))

    blinks = detect_blinks(faces.landmarks, fps, max_seconds=cfg.blink_max_seconds,
                           drop=cfg.blink_drop) if cfg.suppress_blinks else []
    in_blink = np.zeros(n, bool)
    margin = max(1, round(_GAUSS_3DB / cfg.lowpass_hz * fps * 2))  # the low-pass spreads a blink
    for a, b in blinks:
        in_blink[max(0, a - margin):b + margin + 1] = True

    cands: list[_Cand] = []
    for r, name in enumerate(names):
        for c in _candidates(x[r], xb[r], d[r], thr[r], fps, cfg, r):
            if cfg.suppress_blinks:
                if name in BLINK_ROIS and in_blink[c.apex]:
                    continue  # a blink explains it
                lid = LID_NEIGHBOURS.get(name)
                if lid is not None:
                    lo, hi = int(math.floor(c.onset)), int(math.ceil(c.offset)) + 1
                    if (d[r, lo:hi] - cfg.lid_leak * lid_rise[lid][lo:hi]).max() < thr[r]:
                        continue  # no more than the upper lid's motion leaking into this window
            cands.append(c)

    ratio = d / thr[:, None]
    lead = np.argmax(ratio, axis=0)
    combined = d[lead, np.arange(n)]
    threshold = thr[lead]

    intervals = []
    min_len = cfg.min_seconds * fps
    strength = ratio.max(axis=0)
    groups = _resolve(_group(cands, cfg.merge_gap_seconds * fps, cfg.member_fraction), strength,
                      valley=cfg.valley_merge, nested_score=cfg.nested_score)
    for g in groups:
        pieces = [(g.on, g.off)]
        if (g.off - g.on) / fps > cfg.macro_max_seconds:
            if cfg.long_policy == "drop":
                continue
            pieces = _split_long(g.on, g.off, strength, cfg.macro_max_seconds * fps, max(1, round(0.25 * fps)))
        for a, b in pieces:
            if b - a < min_len:
                continue
            lo, hi = int(math.floor(a)), int(math.ceil(b))
            whole = len(pieces) == 1
            members = g.members if whole else [c for c in g.members if lo <= c.apex <= hi]
            apex = g.apex if lo <= g.apex <= hi else lo + int(np.argmax(strength[lo:hi + 1]))
            score = g.score if whole else float(strength[lo:hi + 1].max())
            contrib: dict[str, float] = {}
            for c in members:
                contrib[names[c.roi]] = max(contrib.get(names[c.roi], 0.0), c.rise)
            if not contrib:  # a piece of a split interval: each region's rise within it
                contrib = {names[r]: float(d[r, lo:hi + 1].max()) for r in range(k)
                           if d[r, lo:hi + 1].max() >= cfg.member_fraction * thr[r]}
            intervals.append(_to_clip(front, a, apex, b, score, contrib, cfg))
    intervals.sort(key=lambda iv: iv.onset)

    to_px = {name: x[r].astype(np.float32) for r, name in enumerate(names)}
    clip = front.clip
    return SpotResult(intervals, np.arange(n) * front.step / clip.fps, to_px, combined.astype(np.float32),
                      threshold.astype(np.float32), float(clip.fps), int(clip.n_frames), clip.source,
                      analysis_fps=float(fps),
                      blinks=[(int(front.to_clip(a)), int(front.to_clip(b))) for a, b in blinks])


def _to_clip(front: FrontEnd, on: float, apex: int, off: float, score: float, rois: dict,
             cfg: SpotConfig) -> SpottedInterval:
    """Analysis positions (fractional) -> clip frames; kind by duration, (offset - onset + 1) / fps as
    in :func:`mevqa.megc.metrics.spotting_scores`."""
    last = front.clip.n_frames - 1
    onset = int(np.clip(round(on * front.step), 0, last))
    # An interval still open at the last analysed frame runs to the clip's last frame (a subsampled
    # clip has up to step - 1 frames after it).
    offset = last if off >= front.n - 1 else int(np.clip(round(off * front.step), onset, last))
    apex_c = int(np.clip(apex * front.step, onset, offset))
    kind = "micro" if (offset - onset + 1) / front.clip.fps <= cfg.micro_max_seconds else "macro"
    return SpottedInterval(onset, apex_c, offset, kind, float(score), dict(sorted(rois.items(), key=lambda kv: -kv[1])))


def spot_clip(clip: Clip, *, config: SpotConfig = SpotConfig(), frontend: FrontEndConfig = FrontEndConfig(),
              progress=None) -> SpotResult:
    """Track, align and spot one clip (see :func:`spot`)."""
    return spot(run_frontend(clip, config=frontend), config=config, progress=progress)
