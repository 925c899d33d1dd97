"""Decoding video files within limits: the caps, header probing, decode sizes and the two decoders.

Everything here happens before or while frames are decoded, so that no clip costs more memory than its
limits allow (:class:`ClipLimits`): the container's header (OpenCV) gives size, frame count and rate
before decoding; decord decodes straight to the kept size; a file that decodes to fewer frames than
its index lists is refused as truncated. :mod:`mevqa.io.video` builds clips on top.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
from PIL import Image, UnidentifiedImageError

MIN_FPS, MAX_FPS = 1.0, 1000.0


class ClipError(ValueError):
    """A clip that cannot be used; the message is one line a user can act on."""


@dataclass(frozen=True)
class ClipLimits:
    """Caps applied while loading; a clip over ``max_frames`` or ``max_seconds`` is refused.

    ``max_pixels`` bounds the decoded frames together (x3 bytes in memory: 5e8 is 1.5 GB): a clip over
    it is decoded smaller, down to a long side of ``min_budget_side``, below which it is refused.
    ``max_source_side``: frames larger than this in the file are refused before decoding.
    """

    max_frames: int = 6000
    max_seconds: float = 120.0
    max_side: int = 1280  # longer image side; larger frames are downscaled, not refused
    min_side: int = 64
    max_pixels: float = 5e8
    min_budget_side: int = 320
    max_source_side: int = 8192


DEFAULT_LIMITS = ClipLimits()


# ---------------------------------------------------------------------------------------------
def _check_fps(fps, source: str) -> None:
    if fps is None or not np.isfinite(fps) or fps <= 0:
        raise ClipError(f"{source}: missing frame rate; pass --fps")
    if not (MIN_FPS <= fps <= MAX_FPS):
        raise ClipError(f"{source}: frame rate {fps:g} is absurd (expected {MIN_FPS:g}-{MAX_FPS:g} fps)")


def _fit(frame: np.ndarray, max_side: int) -> np.ndarray:
    h, w = frame.shape[:2]
    s = max(h, w)
    if s <= max_side:
        return frame
    scale = max_side / s
    return cv2.resize(frame, (round(w * scale), round(h * scale)), interpolation=cv2.INTER_AREA)


def _check_counts(n: int, fps: float, source: str, limits: ClipLimits) -> None:
    if n == 0:
        raise ClipError(f"{source}: the clip has no frames")
    if n == 1:
        raise ClipError(f"{source}: the clip has a single frame; expressions need motion, give at least 2 frames")
    if n > limits.max_frames:
        raise ClipError(f"{source}: {n} frames is over the limit of {limits.max_frames}; trim the clip")
    if n / fps > limits.max_seconds:
        raise ClipError(f"{source}: {n / fps:.1f} s is over the limit of {limits.max_seconds:g} s; trim the clip")


def _check_size(w: int, h: int, source: str, limits: ClipLimits) -> None:
    if min(w, h) < limits.min_side:
        raise ClipError(f"{source}: frames of {w}x{h} are too small for face analysis (min side {limits.min_side})")


def _probe(p: Path) -> tuple[int, int, int, float]:
    """(width, height, frame count, fps) from the container's header (OpenCV), 0 where unknown."""
    cap = cv2.VideoCapture(str(p))
    try:
        if not cap.isOpened():
            return 0, 0, 0, 0.0
        vals = [cap.get(k) for k in (cv2.CAP_PROP_FRAME_WIDTH, cv2.CAP_PROP_FRAME_HEIGHT, cv2.CAP_PROP_FRAME_COUNT,
                                     cv2.CAP_PROP_FPS)]
    finally:
        cap.release()
    w, h, n, rate = (v if math.isfinite(v) and v > 0 else 0.0 for v in vals)
    return int(w), int(h), int(round(n)), float(rate)


def _decode_size(w: int, h: int, n: int, source: str, limits: ClipLimits) -> tuple[int, int]:
    """The size ``n`` frames of ``w`` x ``h`` are decoded at: within ``max_side`` and ``max_pixels``."""
    if max(w, h) > limits.max_source_side:
        raise ClipError(f"{source}: frames of {w}x{h} are larger than {limits.max_source_side} px a side; "
                        "downscale the clip first")
    _check_size(w, h, source, limits)
    scale = min(1.0, limits.max_side / max(w, h), math.sqrt(limits.max_pixels / max(1, n * w * h)))
    if scale >= 1.0:
        return w, h
    if max(w, h) * scale < limits.min_budget_side:
        raise ClipError(f"{source}: {n} frames of {w}x{h} are over the memory budget "
                        f"({limits.max_pixels / 1e6:.0f} M pixels in all); trim the clip")
    return max(1, round(w * scale)), max(1, round(h * scale))



# mp4/mov list every frame in their index; other containers' counts may be estimates from the duration.
_INDEXED = (".mp4", ".mov", ".m4v")


def _check_complete(decoded: int, listed: int, p: Path) -> None:
    """Refuse a file that decodes to fewer frames than its header lists: it is truncated or damaged."""
    if not listed:
        return
    short = decoded < listed - 2 if p.suffix.lower() in _INDEXED else decoded < 0.9 * listed
    if short:
        raise ClipError(f"{p}: the file is truncated or damaged: only {decoded} of its {listed} frames decode; "
                        "re-export or re-download it")


def _decode_decord(p: Path, limits: ClipLimits, size=None):
    import decord  # noqa: PLC0415 - optional at import time

    # Decoding straight to the kept size bounds memory by it, not by the file's resolution.
    kw = {"width": size[0], "height": size[1]} if size is not None else {}
    vr = decord.VideoReader(str(p), ctx=decord.cpu(0), num_threads=2, **kw)
    n = len(vr)
    fps = float(vr.get_avg_fps() or 0)
    if n == 0:
        return None, fps
    if n > limits.max_frames:
        raise ClipError(f"{p}: {n} frames is over the limit of {limits.max_frames}; trim the clip")
    # Sequential next() is 1.2-3x faster than get_batch here (no seeking between frames).
    frames = [_fit(vr.next().asnumpy(), limits.max_side) for _ in range(n)]
    _check_size(frames[0].shape[1], frames[0].shape[0], str(p), limits)
    return np.stack(frames), fps


def _decode_opencv(p: Path, limits: ClipLimits, size=None):
    cap = cv2.VideoCapture(str(p))
    if not cap.isOpened():
        raise RuntimeError("OpenCV cannot open it")
    fps = float(cap.get(cv2.CAP_PROP_FPS) or 0)
    frames, pixels = [], 0
    while True:
        ok, bgr = cap.read()
        if not ok:
            break
        rgb = cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)
        if size is not None and (rgb.shape[1], rgb.shape[0]) != tuple(size):
            rgb = cv2.resize(rgb, tuple(size), interpolation=cv2.INTER_AREA)
        frames.append(_fit(rgb, limits.max_side))
        pixels += frames[-1].shape[0] * frames[-1].shape[1]
        if len(frames) > limits.max_frames or pixels > limits.max_pixels:  # a header that under-counted
            cap.release()
            raise ClipError(f"{p}: more than {len(frames) - 1} frames ({pixels / 1e6:.0f} M pixels) is over the "
                            "limits; trim the clip")
    cap.release()
    if not frames:
        return None, fps
    _check_size(frames[0].shape[1], frames[0].shape[0], str(p), limits)
    return np.stack(frames), fps




def _image_size(f: Path) -> tuple[int, int] | None:
    """(width, height) from an image file's header (Pillow reads no pixels), None if Pillow cannot tell."""
    try:
        with Image.open(f) as im:
            return im.size
    except Image.DecompressionBombError:
        raise ClipError(f"{f}: the image is too large to decode safely") from None
    except (OSError, UnidentifiedImageError, ValueError):
        return None  # OpenCV decides when it reads it
