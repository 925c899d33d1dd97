"""Aligned onset and apex crops of a coded clip: what MMNet sees.

MMNet (Li et al., IJCAI 2022) draws the onset and the apex each from the four frames around the
labelled ones during training (:data:`ONSET_OFFSETS`, :data:`APEX_OFFSETS`), so this module crops
those eight frames once and training picks among them.

Alignment, in two steps. (1) All eight frames are warped with **one** eye-aligned similarity
(mevqa's alignment geometry, :func:`mevqa.face.landmarks.similarity_to_crop`) from the eye centres
found on the onset and apex frames, averaged: aligning each frame on its own landmarks would turn
landmark jitter (a fraction of a pixel) into a difference image as strong as the micro-expression.
(2) What head motion is left is removed by registering every crop onto the coded onset crop with the
similarity that best explains the optical flow (:func:`mevqa.motion.flow.dense_flow`) at the rigid
landmarks, which expressions do not move (nose ridge, inner eye corners: ``RIGID_GROUPS``), as the
MEGC2022 spotting winner removes the nose-ridge flow. Without it, a head drift of a pixel between onset
and apex outlines the whole face in the difference image and hides the muscle motion. Registration
runs at 224 px at least (flow needs the resolution) and the crops are then resized to ``size``.

Only the needed image files are read from a frame folder (a CASME II clip is up to a few hundred
frames), mapped through the folder's own numbering (a folder may start at ``img46``).
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from mevqa.face.landmarks import (RIGID_GROUPS, AlignConfig, FaceError, detect_landmarks, eye_centres, group_points,
                                  similarity_to_crop)
from mevqa.io.video import Clip, ClipError, frame_number, list_frames
from mevqa.motion.flow import dense_flow, sample_points

__all__ = ["ONSET_OFFSETS", "APEX_OFFSETS", "PairCrops", "window_indices", "crops_from_frames",
           "crops_from_clip", "crops_from_folder", "peak_apex"]

ONSET_OFFSETS = (0, 1, 2, 3)     # the onset and the three frames after it (never before the coded onset)
APEX_OFFSETS = (-1, 0, 1, 2)     # the apex, one before and two after


@dataclass
class PairCrops:
    """Aligned crops around the onset and the apex: (4, S, S, 3) uint8 each; index 0 of ``onset`` and
    index 1 of ``apex`` are the coded frames. ``transform`` maps frame pixels to crop pixels."""

    onset: np.ndarray
    apex: np.ndarray
    onset_index: int
    apex_index: int
    transform: np.ndarray

    @property
    def coded(self) -> tuple[np.ndarray, np.ndarray]:
        """The coded onset and apex crops (no jitter): what inference uses."""
        return self.onset[ONSET_OFFSETS.index(0)], self.apex[APEX_OFFSETS.index(0)]


def window_indices(onset: int, apex: int, n_frames: int) -> tuple[list[int], list[int]]:
    """Frame indices around the onset and the apex, clipped to the clip; an apex window never reaches
    back before the onset window's end, so a very short rise keeps the two apart where it can."""
    if not 0 <= onset < n_frames or not 0 <= apex < n_frames:
        raise ClipError(f"onset {onset} / apex {apex} outside a clip of {n_frames} frames")
    on = [min(max(onset + d, 0), n_frames - 1) for d in ONSET_OFFSETS]
    ap = [min(max(apex + d, 0), n_frames - 1) for d in APEX_OFFSETS]
    if apex > onset:
        on = [min(i, apex) for i in on]
        ap = [max(i, onset + 1) for i in ap]
    return on, ap


def _transform(onset_img: np.ndarray, apex_img: np.ndarray, size: int) -> tuple[np.ndarray, np.ndarray]:
    """The shared similarity (frame -> crop) and the rigid landmarks in crop coordinates."""
    found = [lm for lm in (detect_landmarks(img) for img in (onset_img, apex_img)) if lm is not None]
    if not found:
        raise FaceError("no face found on the onset or apex frame")
    r, left = np.mean([np.stack(eye_centres(lm)) for lm in found], axis=0)
    m = similarity_to_crop(r, left, AlignConfig(size=size))
    lm = found[0] @ m[:, :2].T + m[:, 2]
    return m, np.concatenate([group_points(lm, g) for g in RIGID_GROUPS]).astype(np.float32)


def _register(ref: np.ndarray, img: np.ndarray, points: np.ndarray) -> np.ndarray:
    """``img`` warped onto ``ref`` by the similarity fitted to the flow at the rigid ``points``."""
    flow = dense_flow(ref, img)  # img(x + f(x)) ~ ref(x)
    moved = points + sample_points(flow, points, radius=4)
    m, _ = cv2.estimateAffinePartial2D(points, moved, method=cv2.LMEDS)
    if m is None:
        return img
    s = img.shape[0]
    return cv2.warpAffine(img, m, (s, s), flags=cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP, borderMode=cv2.BORDER_REPLICATE)


def crops_from_frames(onset_frames: np.ndarray, apex_frames: np.ndarray, *, size: int = 224,
                      onset_index: int = 0, apex_index: int = 0, register: bool = True) -> PairCrops:
    """Align and crop four frames around the onset and four around the apex (RGB uint8, frame size)."""
    work = max(size, 224)
    m, rigid = _transform(onset_frames[ONSET_OFFSETS.index(0)], apex_frames[APEX_OFFSETS.index(0)], work)
    warp = [cv2.warpAffine(f, m, (work, work), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
            for f in (*onset_frames, *apex_frames)]
    ref = warp[ONSET_OFFSETS.index(0)]
    if register:
        warp = [w if w is ref else _register(ref, w, rigid) for w in warp]
    if work != size:
        warp = [cv2.resize(w, (size, size), interpolation=cv2.INTER_AREA) for w in warp]
        m = m * (size / work)
    crops = np.stack(warp)
    return PairCrops(crops[:len(onset_frames)], crops[len(onset_frames):], int(onset_index), int(apex_index), m)


def crops_from_clip(clip: Clip, onset: int, apex: int, *, size: int = 224) -> PairCrops:
    """Crops of a loaded clip around 0-based ``onset`` and ``apex``."""
    on, ap = window_indices(onset, apex, clip.n_frames)
    return crops_from_frames(clip.frames[on], clip.frames[ap], size=size, onset_index=onset, apex_index=apex)


def _read(path: Path) -> np.ndarray:
    bgr = cv2.imread(str(path), cv2.IMREAD_COLOR)
    if bgr is None:
        raise ClipError(f"{path}: cannot read the image")
    return cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)


def _folder_index(files: list[Path], number: int, what: str, folder: Path) -> int:
    numbers = [frame_number(f.name) for f in files]
    if number not in numbers:
        raise ClipError(f"{folder}: {what} frame {number} is not in the folder (frames {numbers[0]}-{numbers[-1]})")
    return numbers.index(number)


def peak_apex(folder: str | Path, onset: int, offset: int, *, stride: int = 1) -> int:
    """For a sheet with no apex: the frame number between onset and offset that differs most from the
    onset (mean absolute grey difference at quarter size), the apex's usual stand-in."""
    folder = Path(folder)
    files = list_frames(folder)
    i0, i1 = _folder_index(files, onset, "onset", folder), _folder_index(files, offset, "offset", folder)

    def small(i):
        g = cv2.cvtColor(_read(files[i]), cv2.COLOR_RGB2GRAY)
        return cv2.resize(g, None, fx=0.25, fy=0.25, interpolation=cv2.INTER_AREA).astype(np.float32)

    ref = small(i0)
    best, best_i = -1.0, i0
    for i in range(i0 + 1, i1 + 1, max(1, stride)):
        d = float(np.abs(small(i) - ref).mean())
        if d > best:
            best, best_i = d, i
    return frame_number(files[best_i].name)


def crops_from_folder(folder: str | Path, onset: int, apex: int, *, size: int = 224) -> PairCrops:
    """Crops from a frame folder, ``onset``/``apex`` given as the sheet's frame *numbers*; only the
    eight needed files are read. The returned indices are 0-based positions in the folder."""
    folder = Path(folder)
    files = list_frames(folder)
    if not files:
        raise ClipError(f"{folder}: the folder holds no image frames")
    o = _folder_index(files, int(onset), "onset", folder)
    a = _folder_index(files, int(apex), "apex", folder)
    on, ap = window_indices(o, a, len(files))
    return crops_from_frames(np.stack([_read(files[i]) for i in on]), np.stack([_read(files[i]) for i in ap]),
                             size=size, onset_index=o, apex_index=a)
