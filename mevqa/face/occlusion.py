"""Frame quality of a tracked face: lost frames and occlusion of the mouth or the eyes (a hand, a cup).

The Face Landmarker gives no per-landmark visibility for faces (its ``visibility`` and ``presence`` fields
are 0), and it keeps predicting a plausible mouth under a hand. Two signals from the aligned crops and
their landmarks tell an occluder from an expression:

1. **Landmark jitter**: the model's landmarks of a hidden region lose their image anchor and wander
   from frame to frame. Jitter is the distance of each landmark from its 5-frame running median, averaged
   over the region, in inter-ocular distances (IOD).
2. **Structure orientation**: lips and eyelids are horizontal edges; fingers laid over them are vertical
   ones. The ratio of horizontal to vertical gradient energy (Sobel |dI/dx| / |dI/dy|) in the region's box
   rises well above its value on an uncovered face.

Both are median-filtered over ``smooth_seconds``. The mouth is occluded where the orientation says so,
and on from there while its landmarks jitter, up to ``extend_seconds`` either side (hysteresis: the
fingers' vertical edges are the evidence, the jitter shows how far before and after the hand was
arriving or leaving); jitter alone is not enough, since heavy compression (JPEG quality 10) doubles it on
an uncovered laughing mouth (0.0049 IOD median, 0.009 at most) and read the laugh as covered. The eyes
need both at once (squints and laughter shake eye landmarks). Then gaps under ``bridge_seconds`` are
closed and stretches under ``min_seconds`` dropped. Thresholds were set on the real test video (hand over
the mouth from about 2.4 to 9.6 s; uncovered crying and laughing elsewhere): mouth jitter there is
0.0055-0.014 IOD and the ratio 0.8-1.5 while covered, at most 0.0045 IOD and 0.75 uncovered. One clip is
little evidence: treat the eye thresholds as unvalidated.
"""
from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np
from scipy.ndimage import median_filter

from mevqa.face.groups import LANDMARK_GROUPS, interocular

#: Regions checked, with the landmarks whose box and jitter are measured.
OCCLUSION_REGIONS: dict[str, tuple[int, ...]] = {
    "mouth": (61, 146, 91, 181, 84, 17, 314, 405, 321, 375, 291, 409, 270, 269, 267, 0, 37, 39, 40, 185),
    "right eye": LANDMARK_GROUPS["right_eye"],
    "left eye": LANDMARK_GROUPS["left_eye"],
}


@dataclass(frozen=True)
class OcclusionConfig:
    jitter_mouth: float = 0.005      # IOD
    ratio_mouth: float = 0.8
    jitter_eyes: float = 0.007       # IOD; eyes need jitter AND ratio
    ratio_eyes: float = 0.9
    smooth_seconds: float = 0.5
    jitter_seconds: float = 0.17     # the running median jitter is measured against (5 frames at 24 and 30 fps)
    extend_seconds: float = 1.5      # mouth: jitter extends a stretch the orientation found by at most this
    bridge_seconds: float = 0.5
    min_seconds: float = 0.3
    box_margin: float = 0.08         # region box grows by this many IOD on each side


def gradient_ratio(gray: np.ndarray, points: np.ndarray, pad: float) -> float:
    """Horizontal over vertical gradient energy (Sobel |dI/dx| / |dI/dy|) in the box of ``points``
    (k, 2) grown by ``pad`` pixels, in one aligned crop ``gray`` (S, S) uint8: about 0.3-0.75 on an
    uncovered mouth, 0.8-1.5 under fingers (see the module docstring). One frame alone decides it, so a
    live stream measures each frame once (:meth:`mevqa.motion.stream.AlignedFrame.occlusion_ratios`)."""
    h, w = gray.shape[:2]
    x0, y0 = np.clip(np.floor(points.min(axis=0) - pad), 0, (w - 2, h - 2)).astype(int)
    x1, y1 = np.clip(np.ceil(points.max(axis=0) + pad), (x0 + 2, y0 + 2), (w, h)).astype(int)
    box = gray[y0:y1, x0:x1].astype(np.float32)
    gx = np.abs(cv2.Sobel(box, cv2.CV_32F, 1, 0)).mean()
    gy = np.abs(cv2.Sobel(box, cv2.CV_32F, 0, 1)).mean()
    return float(gx / max(gy, 1e-6))


def frame_ratios(gray: np.ndarray, landmarks: np.ndarray, *, margin: float = 0.08) -> dict[str, float]:
    """:func:`gradient_ratio` of every :data:`OCCLUSION_REGIONS` region in one crop (landmarks (478, 2),
    crop pixels; boxes grown by ``margin`` IOD)."""
    pad = margin * max(float(interocular(landmarks[None])[0]), 1e-6)
    return {region: gradient_ratio(gray, landmarks[list(idx)].astype(np.float64), pad)
            for region, idx in OCCLUSION_REGIONS.items()}


def region_signals(gray: np.ndarray, landmarks: np.ndarray, indices, *, margin: float = 0.08,
                   window: int = 5, ratio: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Per frame (jitter in IOD, horizontal/vertical gradient ratio) of one region of aligned crops.

    ``gray`` (T, S, S) uint8 aligned crops, ``landmarks`` (T, 478, 2) in crop pixels; jitter is measured
    against a running median of ``window`` frames. ``ratio``: the ratios, if measured before (per frame,
    :func:`gradient_ratio`).
    """
    idx = list(indices)
    iod = np.maximum(interocular(landmarks), 1e-6)
    pts = landmarks[:, idx].astype(np.float64)
    med = median_filter(pts, size=(min(window, len(pts)), 1, 1), mode="nearest")
    jitter = np.linalg.norm(pts - med, axis=-1).mean(axis=1) / iod
    if ratio is None:
        ratio = np.array([gradient_ratio(gray[i], pts[i], margin * iod[i]) for i in range(len(gray))])
    return jitter, np.asarray(ratio, float)


def stretches(mask: np.ndarray, fps: float, *, bridge_seconds: float = 0.0, min_seconds: float = 0.0) -> list[tuple[int, int]]:
    """(first, last) frame index pairs of runs of True, gaps under ``bridge_seconds`` closed first."""
    m = np.asarray(mask, bool).copy()
    runs = _runs(m)
    gap = bridge_seconds * fps
    for (a0, a1), (b0, _) in zip(runs, runs[1:]):
        if b0 - a1 - 1 < gap:
            m[a1 + 1:b0] = True
    return [(a, b) for a, b in _runs(m) if (b - a + 1) >= min_seconds * fps]


def _runs(m: np.ndarray) -> list[tuple[int, int]]:
    d = np.diff(np.concatenate([[0], m.astype(np.int8), [0]]))
    return list(zip(np.flatnonzero(d == 1).tolist(), (np.flatnonzero(d == -1) - 1).tolist()))


def _extend(seed: np.ndarray, weak: np.ndarray, reach: int) -> np.ndarray:
    """``seed`` grown into the runs of ``weak`` that touch it, by at most ``reach`` frames either side."""
    out = seed.copy()
    for a, b in _runs(weak | seed):
        hit = np.flatnonzero(seed[a:b + 1])
        if hit.size:
            out[max(a, a + hit[0] - reach):min(b, a + hit[-1] + reach) + 1] = True
    return out


def detect_occlusions(gray: np.ndarray, landmarks: np.ndarray, fps: float, *,
                      config: OcclusionConfig = OcclusionConfig(),
                      ratios: dict[str, np.ndarray] | None = None) -> dict[str, np.ndarray]:
    """Per region (:data:`OCCLUSION_REGIONS`) a boolean (T,) mask of frames where it looks covered.

    ``ratios``: per region the (T,) gradient ratios if measured before (:func:`frame_ratios` of each
    frame, with ``config.box_margin``); a live stream's overlapping windows then pay for a frame once."""
    win = max(1, int(round(config.smooth_seconds * fps)) | 1)
    # The jitter's running median spans a fixed time, not 5 frames: at 12 fps 5 frames are 0.4 s, over
    # which a laughing mouth really moves, and the mouth read as covered in 4 stretches of laughter.
    jitter_window = max(3, int(round(config.jitter_seconds * fps)) | 1)
    out = {}
    for region, idx in OCCLUSION_REGIONS.items():
        jitter, ratio = region_signals(gray, landmarks, idx, margin=config.box_margin, window=jitter_window,
                                       ratio=None if ratios is None else ratios[region])
        if len(jitter) >= 3:
            jitter = median_filter(jitter, size=min(win, len(jitter)), mode="nearest")
            ratio = median_filter(ratio, size=min(win, len(ratio)), mode="nearest")
        if region == "mouth":
            flag = _extend(ratio > config.ratio_mouth, jitter > config.jitter_mouth,
                           int(round(config.extend_seconds * fps)))
        else:
            flag = (jitter > config.jitter_eyes) & (ratio > config.ratio_eyes)
        mask = np.zeros(len(flag), bool)
        for a, b in stretches(flag, fps, bridge_seconds=config.bridge_seconds, min_seconds=config.min_seconds):
            mask[a:b + 1] = True
        out[region] = mask
    return out
