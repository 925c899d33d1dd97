"""Network inputs from an aligned onset/apex crop pair: the motion tensor and the onset frame.

- ``"diff"``: apex minus onset in RGB, divided by the ImageNet channel std (each frame normalised
  as MMNet normalises it, then subtracted: the means cancel).
- ``"flow"``: our DIS optical flow (:func:`mevqa.motion.flow.dense_flow`) from onset to apex, (dx, dy)
  in pixels divided by ``flow_scale``. The CAS(ME)^3 reproduction of MMNet found the difference and
  the flow about equal (79.1 vs 79.4 % accuracy); flow ignores lighting changes, the difference keeps
  fine texture.
- ``"both"``: the two stacked (5 channels).

The onset frame for the position-calibration branch is normalised RGB.
"""
from __future__ import annotations

import numpy as np

from mevqa.motion.flow import dense_flow

__all__ = ["MEAN", "STD", "normalise_rgb", "motion_input", "onset_input"]

MEAN = np.array([0.485, 0.456, 0.406], np.float32)  # ImageNet statistics, as MMNet uses
STD = np.array([0.229, 0.224, 0.225], np.float32)


def normalise_rgb(img: np.ndarray) -> np.ndarray:
    """(H, W, 3) uint8 RGB -> (3, H, W) float32, ImageNet-normalised."""
    return ((img.astype(np.float32) / 255.0 - MEAN) / STD).transpose(2, 0, 1)


def motion_input(onset: np.ndarray, apex: np.ndarray, *, kind: str = "diff", flow_scale: float = 2.0,
                 flow_method: str = "dis") -> np.ndarray:
    """The main branch's input (C, H, W) float32 for two aligned uint8 RGB crops of one size."""
    if onset.shape != apex.shape:
        raise ValueError(f"onset and apex crops differ in shape: {onset.shape} vs {apex.shape}")
    parts = []
    if kind in ("diff", "both"):
        parts.append(((apex.astype(np.float32) - onset.astype(np.float32)) / 255.0 / STD).transpose(2, 0, 1))
    if kind in ("flow", "both"):
        flow = dense_flow(onset, apex, method=flow_method)
        parts.append((flow / float(flow_scale)).transpose(2, 0, 1))
    if not parts:
        raise ValueError(f"input must be diff, flow or both, got {kind!r}")
    return np.ascontiguousarray(np.concatenate(parts, axis=0), dtype=np.float32)


def onset_input(onset: np.ndarray) -> np.ndarray:
    """The position-calibration branch's input (3, H, W); the network resizes it to its grid."""
    return np.ascontiguousarray(normalise_rgb(onset))
