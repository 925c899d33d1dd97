"""Per-region motion signals of a tracked face, and eye blinks (see :mod:`mevqa.spot.spotter`)."""
from __future__ import annotations

import math

import numpy as np

from mevqa.face.landmarks import group_centre, interocular
from mevqa.motion.filters import running_median, runs
from mevqa.motion.flow import dense_flow
from mevqa.motion.head import RIGID_INDICES, fit_head_motion, head_displacement
from mevqa.spot.config import _LIDS, ROIS, SpotConfig


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


def _roi_motion_pair(ref_img, img, lm_ref, rois, *, iod: float, r_roi: int, r_rig: int, top: int,
                     method: str) -> np.ndarray:
    """Motion (k,) of each ROI from ``ref_img`` to ``img``: the mean of its ``top`` largest flow
    magnitudes once the head's similarity motion (:func:`mevqa.motion.head.fit_head_motion` on the flow
    at the rigid landmarks of ``lm_ref``) is taken off."""
    h, w = ref_img.shape
    idx = _window_index(roi_centres(lm_ref, rois, iod=iod), r_roi, (h, w))
    rig_pts = lm_ref[list(RIGID_INDICES)].astype(float)
    rig = _window_index(rig_pts, r_rig, (h, w))
    flat = dense_flow(ref_img, img, method=method).reshape(-1, 2)
    m = fit_head_motion(rig_pts, rig_pts + flat[rig].mean(axis=1))
    xy = np.stack([idx % w, idx // w], axis=-1).astype(float)
    v = flat[idx] - head_displacement(m, xy)
    mag = np.hypot(v[..., 0], v[..., 1])
    n_pix = mag.shape[1]
    return np.partition(mag, n_pix - top, axis=1)[:, n_pix - top:].mean(axis=1)


def roi_motion(gray: np.ndarray, landmarks: np.ndarray, fps: float, *, config: SpotConfig = SpotConfig(),
               rois=None, iod: float | None = None, progress=None, cache=None) -> tuple[np.ndarray, np.ndarray]:
    """Per-ROI motion against the frame ``lag_seconds`` earlier and against the frame as far later.

    Returns (back, ahead), each (R, T) in crop pixels: ``back[:, t]`` is the motion from frame
    ``t - lag`` to ``t`` (from frame 0 near the start), ``ahead[:, t]`` from ``t`` to ``t + lag`` (to
    the last frame near the end), both measured in windows around the landmarks of the earlier frame.
    A reference a fixed time back depends only on the frames near ``t``, never on where the clip
    starts or how long it is: a 6 s excerpt measures what the 20 s clip measures. ``ahead`` reuses the
    ``back`` flows (``ahead[t] = back[t + lag]``); only the last ``lag`` frames need flows of their own,
    and of those, with ``config.tail_step_seconds``, only one that often (the rest interpolated): a live
    stream's every window measures them anew against its new last frame, and they were most of its work.
    ``rois`` defaults to ``config.rois``; ``iod`` is the inter-ocular distance in crop pixels.

    ``cache`` (a :class:`mevqa.motion.stream.PairCache` bound to the window's stream frame numbers, see
    :meth:`~mevqa.motion.stream.PairCache.bind`): each frame pair's motion is looked up by the
    pair's stream frame numbers, and only pairs not measured before are computed. A pair's motion
    depends only on its two crops and the reference's landmarks, so overlapping windows of one stream
    get exactly the values they would compute (the live cut then pays only for its new frames).
    """
    n, h, w = gray.shape
    if iod is None:
        iod = float(np.median(interocular(landmarks)))
    rois = tuple(config.rois if rois is None else rois)
    r_roi = max(2, round(config.roi_radius * iod))
    top = max(1, math.ceil(config.top_fraction * (2 * r_roi + 1) ** 2))
    opts = dict(iod=iod, r_roi=r_roi, r_rig=max(2, round(config.rigid_radius * iod)), top=top,
                method=config.flow_method)
    lag = max(1, round(config.lag_seconds * fps))
    back = np.zeros((len(rois), n), np.float32)
    ahead = np.zeros((len(rois), n), np.float32)
    # the frames of the last lag whose flow to the last frame is measured: every stride-th one back
    # from the last but one (live, 0.08 s: every second frame at 24-30 fps, which the 2 Hz low-pass
    # smooths over anyway)
    stride = max(1, round(config.tail_step_seconds * fps))
    tail = sorted(range(n - 2, max(0, n - lag) - 1, -stride)) if n > 1 else []
    if tail and tail[0] > max(0, n - lag) and n - 1 - lag < 0:
        tail.insert(0, 0)  # a clip shorter than the lag: frame 0 has no value from the back flows
    total = n + len(tail) - 1

    def pair(r: int, t: int) -> np.ndarray:
        return _roi_motion_pair(gray[r], gray[t], landmarks[r], rois, **opts)

    if cache is not None:  # every pair this clip needs, the new ones computed (possibly in parallel)
        need = [(max(0, t - lag), t) for t in range(1, n)] + [(t, n - 1) for t in tail]
        known = dict(zip(need, cache.columns(need, n=n, key=(rois, float(iod), lag, tuple(sorted(opts.items()))),
                                              compute=pair)))
        pair = lambda r, t: known[(r, t)]  # noqa: E731
    for t in range(1, n):
        r = max(0, t - lag)
        back[:, t] = pair(r, t)
        if t - lag >= 0:
            ahead[:, t - lag] = back[:, t]
        if progress is not None and (t % 16 == 0):
            progress(round(t * n / total), n)
    # The last lag frames: ahead to the last frame, measured at ``tail`` and interpolated between (the
    # frame lag before the last has its value from the back flows).
    if tail:
        for t in tail:
            ahead[:, t] = pair(t, n - 1)
        known_t = ([n - 1 - lag] if n - 1 - lag >= 0 else []) + tail
        between = sorted(set(range(max(0, n - lag), n - 1)) - set(tail))
        for r in range(len(rois)):
            ahead[r, between] = np.interp(between, known_t, ahead[r, known_t])
    if progress is not None:
        progress(n, n)
    if n > 1:
        # A frame against itself has no flow: give the ends their neighbour's noise level rather than
        # an exact zero that every other frame would "rise" above.
        back[:, 0] = back[:, 1]
        ahead[:, n - 1] = ahead[:, n - 2]
    return back, ahead


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

