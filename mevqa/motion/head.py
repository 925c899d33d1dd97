"""The one head-motion model: a robust similarity (scale, rotation, translation) on rigid landmarks.

Spotter, AU detector and flow maps all remove rigid head motion the same way: a 4-parameter similarity
``dst ~ M @ [src, 1]`` fitted with OpenCV's robust estimator (:func:`cv2.estimateAffinePartial2D`), so
the few "rigid" points an expression does move (a brow lowerer pulls the glabella, a sneer the nose
sides) are voted out instead of tilting the fit. Least median of squares (Rousseeuw, "Least Median of
Squares Regression", JASA 1984) is the default: it needs no pixel threshold, which matters because
micro-expression flows are sub-pixel; RANSAC (Fischler & Bolles, CACM 1981) is there for large motion.
OpenCV refines the robust fit on its inliers with Levenberg-Marquardt.

Points are in any pixel frame (aligned crop or video frame). A flow field's head motion is the fit from
rigid points ``p`` to ``p + flow(p)``; the head's own displacement field is then ``M @ [x, y, 1] - [x, y]``.
"""
from __future__ import annotations

import math

import cv2
import numpy as np

#: Rigid landmarks (MediaPipe face-mesh indices, same in the Face Landmarker's 478-point topology): nose
#: ridge and tip, the four eye corners, forehead and the face outline at the temples and cheekbones.
#: Expressions move few of them and never most of them, as least median of squares needs.
RIGID_INDICES = (168, 6, 197, 195, 5, 4, 133, 362, 33, 263, 151, 108, 337, 69, 299, 127, 356, 234, 454)
HEAD_METHODS = ("lmeds", "ransac")
IDENTITY = np.array([[1.0, 0.0, 0.0], [0.0, 1.0, 0.0]])


def fit_head_motion(src: np.ndarray, dst: np.ndarray, *, method: str = "lmeds",
                    ransac_threshold: float = 1.0) -> np.ndarray:
    """Robust similarity (2, 3) float64 with ``dst ~ M @ [src, 1]`` from point pairs (k, 2), k >= 2.

    ``method`` is ``"lmeds"`` (no threshold; needs over half the points rigid) or ``"ransac"`` (inliers
    within ``ransac_threshold`` px). Too few points or a degenerate set give the median translation.
    """
    if method not in HEAD_METHODS:
        raise ValueError(f"unknown head-motion method {method!r} (choose from {', '.join(HEAD_METHODS)})")
    src = np.asarray(src, np.float64).reshape(-1, 2)
    dst = np.asarray(dst, np.float64).reshape(-1, 2)
    # Centre on the source points: float32 inside OpenCV keeps sub-millipixel precision near the origin.
    c = src.mean(axis=0) if len(src) else np.zeros(2)
    m = None
    if len(src) >= 3:
        flag = cv2.LMEDS if method == "lmeds" else cv2.RANSAC
        m, _ = cv2.estimateAffinePartial2D((src - c).astype(np.float32), (dst - c).astype(np.float32),
                                           method=flag, ransacReprojThreshold=ransac_threshold,
                                           maxIters=2000, confidence=0.995, refineIters=10)
    if m is None:  # too few or degenerate points: the median translation is still robust
        t = np.median(dst - src, axis=0) if len(src) else np.zeros(2)
        return np.array([[1.0, 0.0, t[0]], [0.0, 1.0, t[1]]])
    m = m.astype(np.float64)
    # Undo the centring: x' = A (x - c) + b + c = A x + (b + c - A c).
    m[:, 2] += c - m[:, :2] @ c
    return m


def head_displacement(matrix: np.ndarray, points: np.ndarray) -> np.ndarray:
    """The head's displacement (..., 2) at ``points`` (..., 2): ``M @ [p, 1] - p``."""
    p = np.asarray(points, np.float64)
    return p @ (matrix[:, :2] - np.eye(2)).T + matrix[:, 2]


def head_flow(matrix: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    """The head's displacement field (H, W, 2) float32 over an image of ``shape`` (H, W)."""
    h, w = shape[:2]
    gy, gx = np.mgrid[0:h, 0:w].astype(np.float64)
    d = matrix[:, :2] - np.eye(2)
    out = np.empty((h, w, 2), np.float32)
    out[..., 0] = d[0, 0] * gx + d[0, 1] * gy + matrix[0, 2]
    out[..., 1] = d[1, 0] * gx + d[1, 1] * gy + matrix[1, 2]
    return out


def remove_head_flow(flow: np.ndarray, matrix: np.ndarray) -> np.ndarray:
    """Flow (H, W, 2) minus the head's displacement field under ``matrix``."""
    return flow - head_flow(matrix, flow.shape[:2])


def similarity_params(matrix: np.ndarray) -> tuple[float, float, float, float]:
    """(scale, rotation in degrees, tx, ty) of a similarity matrix (rotation counter-clockwise on screen
    is negative because image y points down)."""
    a, b = float(matrix[0, 0]), float(matrix[1, 0])
    return math.hypot(a, b), math.degrees(math.atan2(b, a)), float(matrix[0, 2]), float(matrix[1, 2])
