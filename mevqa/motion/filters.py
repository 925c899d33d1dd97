"""Signal filters for motion curves, on :mod:`scipy.ndimage`: the one smoothing implementation.

Every time constant is in seconds (or Hz), converted to samples with the sequence's frame rate, so
30 fps and 200 fps footage behave alike. Filters run along the last axis and, where ``segments`` is
given (one label per sample), never across a change of label: the spotter's flow restarts from a new
reference frame at every segment change, and a filter that reached across would mix two baselines.
"""
from __future__ import annotations

import math

import numpy as np
from scipy import ndimage

__all__ = ["GAUSS_3DB", "lowpass", "local_baseline", "running_median", "rolling_noise", "runs"]

#: A Gaussian of standard deviation sigma seconds halves the power at f = GAUSS_3DB / sigma.
GAUSS_3DB = math.sqrt(math.log(2)) / (2 * math.pi)


def _pieces(n: int, segments: np.ndarray | None):
    """(start, stop) of each run of equal segment labels."""
    if segments is None:
        return [(0, n)]
    bounds = np.flatnonzero(np.diff(np.asarray(segments))) + 1
    return list(zip(np.r_[0, bounds].tolist(), np.r_[bounds, n].tolist()))


def lowpass(x: np.ndarray, fps: float, cutoff_hz: float, *, segments: np.ndarray | None = None) -> np.ndarray:
    """Zero-phase Gaussian low-pass (``scipy.ndimage.gaussian_filter1d``, edges held) along the last axis.

    ``cutoff_hz`` is the -3 dB frequency; the kernel spans the same time at any frame rate.
    """
    x = np.asarray(x, float)
    sigma = GAUSS_3DB / cutoff_hz * fps
    if sigma < 0.3 or x.shape[-1] < 2:
        return x.copy()
    out = np.empty_like(x)
    for a, b in _pieces(x.shape[-1], segments):
        out[..., a:b] = ndimage.gaussian_filter1d(x[..., a:b], sigma, axis=-1, mode="nearest", truncate=3.0)
    return out


def local_baseline(x: np.ndarray, half: int, *, segments: np.ndarray | None = None) -> np.ndarray:
    """Running minimum over +-``half`` samples (``scipy.ndimage.minimum_filter1d``), within a segment."""
    x = np.asarray(x, float)
    out = np.empty_like(x)
    for a, b in _pieces(x.shape[-1], segments):
        # "nearest" repeats the edge sample, which never lowers a minimum: the window simply shrinks.
        out[..., a:b] = ndimage.minimum_filter1d(x[..., a:b], 2 * half + 1, axis=-1, mode="nearest")
    return out


def running_median(x: np.ndarray, half: int) -> np.ndarray:
    """Median over +-``half`` samples along the last axis (``scipy.ndimage.median_filter``, edges
    mirrored, so the ends see real samples rather than copies of one)."""
    x = np.asarray(x, float)
    size = [1] * x.ndim
    size[-1] = 2 * half + 1
    return ndimage.median_filter(x, size=size, mode="mirror")


def rolling_noise(x: np.ndarray, fps: float, *, seconds: float, quantile: float = 0.5,
                  segments: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Local robust level and spread of a signal: running median and 1.4826 x running MAD over a
    window of ``seconds`` (last axis), within a segment.

    A local estimate means a threshold built from it reads the same in a 6 s excerpt as in a 20 s
    clip: it depends on the few seconds around a sample, not on how much else the clip holds.
    ``quantile`` other than 0.5 uses that running percentile as the level (the MAD stays a MAD).
    """
    x = np.asarray(x, float)
    n = x.shape[-1]
    level = np.empty_like(x)
    spread = np.empty_like(x)
    for a, b in _pieces(n, segments):
        part = x[..., a:b]
        size = [1] * part.ndim
        size[-1] = max(1, min(2 * round(seconds * fps / 2) + 1, 2 * (b - a) - 1))
        mode = "mirror" if b - a > 1 else "nearest"
        if quantile == 0.5:
            lv = ndimage.median_filter(part, size=size, mode=mode)
        else:
            lv = ndimage.percentile_filter(part, 100 * quantile, size=size, mode=mode)
        level[..., a:b] = lv
        spread[..., a:b] = 1.4826 * ndimage.median_filter(np.abs(part - lv), size=size, mode=mode)
    return level, spread


def runs(mask: np.ndarray) -> list[tuple[int, int]]:
    """(start, end) inclusive of each run of True."""
    m = np.r_[False, np.asarray(mask, bool), False].astype(int)
    d = np.diff(m)
    return list(zip(np.flatnonzero(d == 1).tolist(), (np.flatnonzero(d == -1) - 1).tolist()))
