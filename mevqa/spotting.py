"""Micro- and macro-expression spotting from ROI optical flow.

The design follows the classic ROI-flow spotters that won the MEGC2022 spotting task and the MEGC2024
cross-cultural spotting task (see NOTES.md, section 2; the MEGC2022 entry is usually cited as He et
al.): flow from the first frame of a sliding window to every later frame, a handful of small regions
of interest (brows, lower lids, nose wings, mouth corners, lips, chin, cheeks), per region the mean of
the largest 20-30% flow magnitudes after the head motion measured on the nose ridge is removed, a
low-pass filter, thresholds relative to a local baseline (rise above the local minimum within about
+-1 s) and above a robust noise floor, boundaries calibrated toward the neighbouring valleys, the union
of overlapping detections across regions, and micro versus macro by duration. The older whole-face
baseline of MEGC2020 (MDMD, F1 about 0.04 on CAS(ME)^2) shows why the regions matter. Eye blinks, the
classic false positive of flow spotters, are found from the eyelid landmarks (eye aspect ratio of
Soukupova & Cech, "Real-Time Eye Blink Detection using Facial Landmarks", CVWW 2016) and may not
explain an interval on their own.

One flow per analysed frame. Windows of ``window_seconds`` start every ``window_seconds * (1 -
overlap)``; each frame is compared with the reference of the *oldest* window that still contains it,
so the reference is always at least ``window_seconds * (1 - overlap)`` earlier (3.3 s by default) and
any expression shorter than that is measured against a frame before its onset, while slow drift
cannot build up over more than one window. Reference frames after the first are picked at the quietest
moment near their nominal place, so a reference does not fall inside an expression. Every time
constant is in seconds, so 30 fps and 200 fps footage behave alike. Results are reported in the
original clip's 0-based, inclusive frame numbers.
"""
from __future__ import annotations

import json
import math
from dataclasses import dataclass, field

import numpy as np

from .face import group_centre
from .flow import dense_flow
from .frontend import FrontEnd, FrontEndConfig, run_frontend
from .video import Clip

#: Region of interest -> (landmark group of :data:`mevqa.face.LANDMARK_GROUPS`, downward offset of the
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
#: Regions next to the upper lid: a detection there while the same-side upper-lid skin moved clearly
#: more (``SpotConfig.lid_ratio``) is lid motion (a blink, a squint) leaking into the window.
LID_NEIGHBOURS = {"right_inner_brow": "right_upper_lid", "right_outer_brow": "right_upper_lid",
                  "right_lower_lid": "right_upper_lid", "left_inner_brow": "left_upper_lid",
                  "left_outer_brow": "left_upper_lid", "left_lower_lid": "left_upper_lid"}
#: Landmarks that expressions barely move (FaceMesh indices): nose ridge, eye corners, mid-forehead and
#: the sides of the face at eye level. Head motion is the similarity transform fitted robustly to the
#: flow there; the nose ridge and inner eye corners alone fix the translation but not the rotation and
#: scale, and a 1% scale error of the alignment is already a pixel at the chin.
RIGID_INDICES = (168, 6, 197, 195, 5, 4, 133, 362, 33, 263, 151, 108, 337, 69, 299, 127, 356, 234, 454)
# Eye aspect ratio landmarks (FaceMesh): three vertical lid pairs and the two corners per eye.
_EAR = {"right": (((159, 145), (158, 153), (160, 144)), (33, 133)),
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

    window_seconds: float = 6.7      # 200 frames at 30 fps
    overlap: float = 0.5             # fraction of a window shared with the next one
    ref_search_seconds: float = 0.6  # a reference may move this far forward to a quiet frame
    lowpass_hz: float = 2.0          # cut-off of the Gaussian low-pass (same in Hz at any fps)
    roi_radius: float = 0.12         # half side of each square ROI window (IOD)
    rigid_radius: float = 0.05       # half side of the windows at the rigid points (IOD)
    top_fraction: float = 0.25       # mean of the largest this-fraction flow magnitudes per ROI
    baseline_seconds: float = 1.0    # local minimum searched within +- this (the "rise" threshold)
    noise_k: float = 4.0             # rise must exceed median + noise_k x MAD of all regions' rises ...
    min_rise: float = 0.003          # ... and this absolute floor (IOD; 0.23 px in a 224 crop)
    fall_fraction: float = 0.3       # after the apex the signal must fall by this part of the rise
    edge_level: float = 0.1          # boundaries where the rise falls to this part of the peak ...
    edge_noise: float = 0.0          # ... or to this part of the threshold, whichever is higher ...
    boundary_hz: float = 5.0         # ... on a signal low-passed this lightly (a 2 Hz blur smears micro onsets)
    floor_percentile: float = 20.0   # ... above the floor: this percentile of the signal within +-2 s
    valley_depth: float = 0.15       # ... or at a valley this deep (part of the peak) before another rise
    min_seconds: float = 0.1         # shorter detections are noise
    micro_max_seconds: float = 0.5   # MEGC: micro-expression lasts at most 0.5 s
    macro_max_seconds: float = 4.0   # MEGC: macro-expression lasts 0.5-4 s
    long_policy: str = "split"       # longer intervals: "split" at their deepest valleys or "drop"
    merge_gap_seconds: float = 0.1   # detections closer than this (in time) are one interval
    member_fraction: float = 0.5     # regions this strong relative to the best one shape the bounds
    suppress_blinks: bool = True
    blink_max_seconds: float = 0.5   # eyes closed longer than this is not a blink
    blink_drop: float = 0.3          # eye aspect ratio below (1 - drop) x its local level = closed
    lid_ratio: float = 0.5           # brow/lower-lid detections need a rise > this x the upper lid's
    flow_method: str = "dis"
    rois: tuple[str, ...] = tuple(ROIS)

    def __post_init__(self) -> None:
        if not 0 <= self.overlap < 1:
            raise ValueError(f"overlap must be in [0, 1), got {self.overlap}")
        if self.long_policy not in ("split", "drop"):
            raise ValueError(f"long_policy must be 'split' or 'drop', got {self.long_policy!r}")
        unknown = [r for r in self.rois if r not in ROIS]
        if unknown:
            raise ValueError(f"unknown ROI(s) {unknown}; choose from {list(ROIS)}")
        if not 0 < self.top_fraction <= 1:
            raise ValueError(f"top_fraction must be in (0, 1], got {self.top_fraction}")


@dataclass
class SpottedInterval:
    """One spotted expression in the original clip's 0-based inclusive frame numbers.

    ``score`` is the rise of the strongest region divided by its threshold (>= 1 when reported);
    ``rois`` gives each contributing region's rise in pixels of the aligned 224 crop.
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
        ax.set_title(f"{self.clip}: {len(self.intervals)} interval(s)", fontsize=10)
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

    ``rois`` defaults to ``config.rois``.

    One flow per frame, from the frame's window reference, with the rigid head displacement (median
    flow around the nose ridge and inner eye corners) subtracted before the magnitudes are taken.
    """
    n, h, w = gray.shape
    if iod is None:
        iod = float(np.median(np.linalg.norm(landmarks[:, 263] - landmarks[:, 33], axis=-1)) * 0.9)
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
        if t == ref:
            continue  # flow of a frame against itself is zero; filled in below
        flat = dense_flow(ref_img, gray[t], method=config.flow_method).reshape(-1, 2)
        a, b, tx, ty = fit_similarity(rig_xy, flat[rig].mean(axis=1))
        # Flow minus the head's similarity motion at every ROI pixel.
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
        for t in range(a, b):
            out[..., t] = x[..., max(a, t - half):min(b, t + half + 1)].min(axis=-1)
    return out


# -- blinks ---------------------------------------------------------------------------------------
def lid_openings(landmarks: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """How far the upper and the lower lid margins stand from the line through the eye corners.

    Returns (upper, lower), each (2, T) for the subject's (right, left) eye, in eye widths. Their sum
    is the eye aspect ratio of Soukupova & Cech (CVWW 2016); kept apart, a blink (the upper lid falls)
    can be told from a lid tightener or cheek raiser (the lower lid rises).
    """
    ups, lows = [], []
    for side in ("right", "left"):
        pairs, (a, b) = _EAR[side]
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
    lvl_up = np.stack([[np.median(e[max(0, t - half):t + half + 1]) for t in range(n)] for e in up])
    lvl_low = np.stack([[np.median(e[max(0, t - half):t + half + 1]) for t in range(n)] for e in low])
    rel = up / np.maximum(lvl_up, 1e-6)
    upper_led = (lvl_up - up) > (lvl_low - low)
    closed = ((rel < 1 - drop) & upper_led).all(axis=0)
    moving = (rel < 1 - drop / 3).any(axis=0)
    out = []
    for a, b in _runs(closed):
        if (b - a + 1) / fps > max_seconds:
            continue
        while a > 0 and moving[a - 1]:
            a -= 1
        while b < n - 1 and moving[b + 1]:
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


def _walk(x: np.ndarray, p: int, level: float, tol: float, stop: int, step: int) -> float:
    """From the apex ``p`` walk outward (``step`` -1 or +1) to where ``x`` falls to ``level``.

    The walk ends early at a valley only when the signal beyond it climbs back by more than ``tol``
    (the foot of a neighbouring event); shallower wiggles are noise on a plateau and are walked over.
    Returns a fractional frame position (linear interpolation at the level crossing).
    """
    best, t = p, p
    while t != stop:
        nxt = t + step
        if x[nxt] <= level:
            # Cross the level between t and nxt.
            frac = (x[t] - level) / max(x[t] - x[nxt], 1e-12)
            return t + step * float(np.clip(frac, 0, 1))
        if x[nxt] > x[best] + tol:
            return float(best)  # climbing into another event: the valley is the boundary
        t = nxt
        if x[t] < x[best]:
            best = t
    return float(best if x[best] < x[stop] else stop)


def _bounds(x: np.ndarray, p: int, level: float, lo: int, hi: int, tol: float) -> tuple[float, float]:
    """Onset and offset (fractional frames) around the apex ``p`` of ``x``: see :func:`_walk`."""
    return _walk(x, p, level, tol, lo, -1), _walk(x, p, level, tol, hi, +1)


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
        # The floor is a low percentile near the event, not the minimum: the noise around a small
        # event sits above its deepest dip, and a level under the noise would never be crossed.
        base = float(np.percentile(xb[lo:hi + 1], cfg.floor_percentile))
        level = base + max(cfg.edge_level * (xb[pb] - base), cfg.edge_noise * thr)
        on, off = _bounds(xb, pb, level, lo, hi, cfg.valley_depth * (xb[pb] - base))
        out.append(_Cand(on, p, off, roi, float(d[p] / thr), float(rise)))
    return out


def _merge(cands: list[_Cand], gap: float) -> list[list[_Cand]]:
    """Groups of candidates whose intervals overlap or nearly touch (union across regions)."""
    groups: list[list[_Cand]] = []
    end = -np.inf
    for c in sorted(cands, key=lambda c: c.onset):
        if groups and c.onset <= end + gap:
            groups[-1].append(c)
            end = max(end, c.offset)
        else:
            groups.append([c])
            end = c.offset
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

    ``progress`` is an optional callable ``(done, total)`` called while the flow runs.
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
    thr_value = max(noise_floor(d, k=cfg.noise_k), cfg.min_rise * iod)
    thr = np.full(k, thr_value)

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
                skin = LID_NEIGHBOURS.get(name)
                if skin is not None:
                    lo, hi = int(math.floor(c.onset)), int(math.ceil(c.offset)) + 1
                    if lid_rise[skin][lo:hi].max() * cfg.lid_ratio >= d[r, lo:hi].max():
                        continue  # the upper lid moved more: lid motion leaking into this window
            cands.append(c)

    ratio = d / thr[:, None]
    lead = np.argmax(ratio, axis=0)
    combined = d[lead, np.arange(n)]
    threshold = thr[lead]

    intervals = []
    min_len = cfg.min_seconds * fps
    for group in _merge(cands, cfg.merge_gap_seconds * fps):
        best = max(group, key=lambda c: c.score)
        strong = [c for c in group if c.score >= cfg.member_fraction * best.score]
        on, off = min(c.onset for c in strong), max(c.offset for c in strong)
        contrib: dict[str, float] = {}
        for c in group:
            contrib[names[c.roi]] = max(contrib.get(names[c.roi], 0.0), c.rise)
        pieces = [(on, off)]
        if (off - on) / fps > cfg.macro_max_seconds:
            if cfg.long_policy == "drop":
                continue
            pieces = _split_long(on, off, combined, cfg.macro_max_seconds * fps, max(1, round(0.25 * fps)))
        for a, b in pieces:
            if b - a < min_len:
                continue
            lo, hi = int(round(a)), int(round(b))
            apex = best.apex if lo <= best.apex <= hi else lo + int(np.argmax(combined[lo:hi + 1]))
            score = float(ratio[:, lo:hi + 1].max()) if len(pieces) > 1 else best.score
            intervals.append(_to_clip(front, a, apex, b, score, contrib, cfg))
    intervals.sort(key=lambda iv: iv.onset)

    to_px = {name: x[r].astype(np.float32) for r, name in enumerate(names)}
    clip = front.clip
    return SpotResult(intervals, np.arange(n) * front.step / clip.fps, to_px, combined.astype(np.float32),
                      threshold.astype(np.float32), float(clip.fps), int(clip.n_frames), clip.source,
                      analysis_fps=float(fps),
                      blinks=[(int(front.to_clip(a)), int(front.to_clip(b))) for a, b in blinks])


def _to_clip(front: FrontEnd, on: float, apex: int, off: float, score: float, rois: dict, cfg: SpotConfig) -> SpottedInterval:
    """Analysis positions (fractional) -> clip frames; kind by duration (MEGC: (offset-onset+1)/fps)."""
    last = front.clip.n_frames - 1
    onset = int(np.clip(round(on * front.step), 0, last))
    offset = int(np.clip(round(off * front.step), onset, last))
    apex_c = int(np.clip(apex * front.step, onset, offset))
    kind = "micro" if (offset - onset + 1) / front.clip.fps <= cfg.micro_max_seconds else "macro"
    return SpottedInterval(onset, apex_c, offset, kind, float(score), dict(sorted(rois.items(), key=lambda kv: -kv[1])))


def spot_clip(clip: Clip, *, config: SpotConfig = SpotConfig(), frontend: FrontEndConfig = FrontEndConfig(),
              progress=None) -> SpotResult:
    """Track, align and spot one clip (see :func:`spot`)."""
    return spot(run_frontend(clip, config=frontend), config=config, progress=progress)
