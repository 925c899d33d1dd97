"""Dense optical flow between aligned face crops, head-motion removal, flow maps and optical strain.

Methods (OpenCV):
- ``"dis"`` (default): DIS, preset MEDIUM (Kroeger et al., "Fast Optical Flow using Dense Inverse
  Search", ECCV 2016). About 3 ms for a 224x224 pair on 2 cores and within ~10% of the truth on
  sub-pixel brow motion; the faster presets underestimate sub-pixel motion by a quarter or more.
- ``"farneback"``: Farneback, "Two-Frame Motion Estimation Based on Polynomial Expansion", SCIA 2003.
- ``"tvl1"``: Zach, Pock & Bischof, "A Duality Based Approach for Realtime TV-L1 Optical Flow", 2007
  (OpenCV contrib's ``optflow`` module; 3 scales, 3 warps keep it near 20 ms).

Flow maps (:func:`flow_to_rgb`) follow the Middlebury convention of Baker et al. (IJCV 2011):
direction as hue, magnitude as brightness, on a **fixed** scale so maps of different clips compare.
Optical strain follows Shreve et al., "Macro- and micro-expression spotting in long videos using
spatio-temporal strain", FG 2011.
"""
from __future__ import annotations

import threading

import cv2
import numpy as np

from mevqa.motion.head import fit_head_motion, remove_head_flow

FLOW_METHODS = ("dis", "farneback", "tvl1")
_local = threading.local()


class FlowError(ValueError):
    """A flow method that cannot run here (one line)."""


def _engine(method: str):
    """One OpenCV flow object per thread and method: creating them costs more than a small flow."""
    cache = _local.__dict__.setdefault("engines", {})
    if method not in cache:
        if method == "dis":
            cache[method] = cv2.DISOpticalFlow_create(cv2.DISOPTICAL_FLOW_PRESET_MEDIUM)
        elif method == "tvl1":
            if not hasattr(cv2, "optflow"):
                raise FlowError("TV-L1 needs OpenCV's contrib module (opencv-contrib-python)")
            cache[method] = cv2.optflow.DualTVL1OpticalFlow_create(nscales=3, warps=3)
        elif method == "farneback":
            cache[method] = None
        else:
            raise FlowError(f"unknown flow method {method!r} (choose from {', '.join(FLOW_METHODS)})")
    return cache[method]


def _gray(img: np.ndarray) -> np.ndarray:
    return img if img.ndim == 2 else cv2.cvtColor(img, cv2.COLOR_RGB2GRAY)


def dense_flow(ref: np.ndarray, img: np.ndarray, *, method: str = "dis") -> np.ndarray:
    """Flow (H, W, 2) float32 in pixels that carries ``ref`` onto ``img``: img(x + f(x)) ~ ref(x)."""
    a, b = _gray(ref), _gray(img)
    eng = _engine(method)
    if method == "farneback":
        return cv2.calcOpticalFlowFarneback(a, b, None, 0.5, 3, 15, 3, 5, 1.2, 0)
    return eng.calc(a, b, None)


def flow_sequence(crops: np.ndarray, *, reference: int | np.ndarray = 0, method: str = "dis",
                  progress=None) -> np.ndarray:
    """Flow from a reference crop to every crop: (T, H, W, 2).

    ``reference`` is a frame index into ``crops`` or an image. Flow against a fixed reference (rather
    than frame to frame) keeps sub-pixel micro-motion from being lost to rounding, as the ROI spotters
    of MEGC2022/2024 do.
    """
    ref = crops[reference] if isinstance(reference, (int, np.integer)) else reference
    ref = _gray(ref)
    out = np.empty((len(crops), *ref.shape, 2), np.float32)
    for i, c in enumerate(crops):
        out[i] = dense_flow(ref, c, method=method)
        if progress is not None and (i % 16 == 0 or i == len(crops) - 1):
            progress(i + 1, len(crops))
    return out


# -- head motion --------------------------------------------------------------------------------
def sample_points(flow: np.ndarray, points: np.ndarray, *, radius: int = 4) -> np.ndarray:
    """Mean flow in a (2r+1)^2 window around each point: (..., k, 2) for flow (..., H, W, 2)."""
    h, w = flow.shape[-3:-1]
    out = []
    # plain min/max, not np.clip: a scalar np.clip costs microseconds, and an AU reading samples
    # thousands of windows (it was a third of one)
    for x, y in np.asarray(points, float).reshape(-1, 2).tolist():
        x0, x1 = min(max(round(x) - radius, 0), w - 1), min(max(round(x) + radius + 1, 1), w)
        y0, y1 = min(max(round(y) - radius, 0), h - 1), min(max(round(y) + radius + 1, 1), h)
        out.append(flow[..., y0:y1, x0:x1, :].mean(axis=(-3, -2)))
    return np.stack(out, axis=-2)


def head_motion(flow: np.ndarray, rigid_points: np.ndarray, *, radius: int = 4, method: str = "lmeds") -> np.ndarray:
    """Rigid head motion in ``flow`` (H, W, 2) as a similarity (2, 3): the robust fit
    (:func:`mevqa.motion.head.fit_head_motion`) from the rigid points to where the flow carries them."""
    pts = np.asarray(rigid_points, np.float64).reshape(-1, 2)
    return fit_head_motion(pts, pts + sample_points(flow, pts, radius=radius), method=method)


def remove_head_motion(flow: np.ndarray, rigid_points: np.ndarray, *, radius: int = 4, method: str = "lmeds") -> np.ndarray:
    """Flow minus the rigid head motion measured on ``rigid_points`` (nose ridge, eye corners, ...).

    Alignment already follows the head; this removes what is left, translation, roll and scale alike (the
    MEGC2022 winner subtracts the nose-ridge flow; a similarity also removes the half-pixel "breathing" of
    an eye alignment at the chin).
    """
    return remove_head_flow(flow, head_motion(flow, rigid_points, radius=radius, method=method))


# -- rendering ------------------------------------------------------------------------------------
def flow_to_rgb(flow: np.ndarray, *, max_magnitude: float = 3.0) -> np.ndarray:
    """RGB uint8 flow map: hue = direction, brightness = magnitude / ``max_magnitude`` (clipped).

    The fixed ``max_magnitude`` (pixels in the aligned crop) is what makes maps of different clips
    comparable; 3 px covers micro-expressions, larger motion saturates.
    """
    fx, fy = flow[..., 0], flow[..., 1]
    mag = np.hypot(fx, fy)
    ang = (np.degrees(np.arctan2(-fy, fx)) % 360) / 2  # OpenCV hue is 0..180
    hsv = np.empty((*flow.shape[:-1], 3), np.uint8)
    hsv[..., 0] = ang.astype(np.uint8)
    hsv[..., 1] = 255
    hsv[..., 2] = np.clip(mag / max_magnitude * 255, 0, 255).astype(np.uint8)
    return cv2.cvtColor(hsv, cv2.COLOR_HSV2RGB)


def optical_strain(flow: np.ndarray) -> np.ndarray:
    """Optical strain magnitude (H, W): sqrt(exx^2 + eyy^2 + 2 exy^2) of the flow's deformation."""
    ux_y, ux_x = np.gradient(flow[..., 0])
    uy_y, uy_x = np.gradient(flow[..., 1])
    exy = 0.5 * (ux_y + uy_x)
    return np.sqrt(ux_x ** 2 + uy_y ** 2 + 2 * exy ** 2).astype(np.float32)


def strain_to_rgb(strain: np.ndarray, *, max_strain: float = 0.3) -> np.ndarray:
    """Strain as an RGB heat map on a fixed scale."""
    v = np.clip(strain / max_strain * 255, 0, 255).astype(np.uint8)
    return cv2.cvtColor(cv2.applyColorMap(v, cv2.COLORMAP_INFERNO), cv2.COLOR_BGR2RGB)
