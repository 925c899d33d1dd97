"""Per-region motion signals of a tracked face, and eye blinks (see :mod:`mevqa.spot.spotter`)."""
from __future__ import annotations

import math

import numpy as np

from mevqa.face.landmarks import group_centre, interocular
from mevqa.motion.filters import running_median, runs
from mevqa.motion.flow import dense_flow
from mevqa.spot.config import _LIDS, RIGID_INDICES, ROIS, SpotConfig


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
    lvl_up, lvl_low = running_median(up, half), running_median(low, half)
    rel = up / np.maximum(lvl_up, 1e-6)
    upper_led = (lvl_up - up) > (lvl_low - low)
    closed = ((rel < 1 - drop) & upper_led).all(axis=0)
    moving = (rel < 1 - drop / 3).any(axis=0)
    out = []
    reach = max(1, round(max_seconds / 2 * fps))  # lids take a fraction of a second to close or open
    for a, b in runs(closed):
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

