"""Stable alignment of a tracked face to a fixed-size, eye-aligned crop.

Alignment is a similarity transform that puts the eye centres at fixed positions of a square crop. The
landmarks jitter by a pixel or so from frame to frame, as much as a micro-expression moves, so the
transform is computed from landmarks low-pass filtered in time: the crop follows the head, not the
jitter. What rigid motion remains is removed later from the flow itself (:mod:`mevqa.motion.head`).
"""
from __future__ import annotations

from dataclasses import dataclass, field

import cv2
import numpy as np

from mevqa.face.groups import FACE_OVAL, eye_centres
from mevqa.io.video import Clip


# -- alignment --------------------------------------------------------------------------------
@dataclass(frozen=True)
class AlignConfig:
    """Geometry of the aligned crop: eye centres at ``eye_y`` of the height, ``eye_distance`` apart."""

    size: int = 224
    eye_y: float = 0.33
    eye_distance: float = 0.34  # fraction of the crop width; leaves room for brows and chin
    smooth_seconds: float = 0.15  # Gaussian sigma of the temporal low-pass on the alignment landmarks


@dataclass
class AlignedFaces:
    """Aligned face crops (T, S, S, 3) RGB, landmarks in crop coordinates, per-frame transforms."""

    crops: np.ndarray
    landmarks: np.ndarray
    transforms: np.ndarray  # (T, 2, 3): frame pixels -> crop pixels
    config: AlignConfig = field(default_factory=AlignConfig)
    # (T, S, S) uint8 grayscale crops where already converted (a live stream's frames are, once each)
    grays: np.ndarray | None = field(default=None, repr=False)

    @property
    def gray(self) -> np.ndarray:
        """Grayscale crops (T, S, S) uint8, computed once."""
        if self.grays is None:
            self.grays = np.stack([cv2.cvtColor(c, cv2.COLOR_RGB2GRAY) for c in self.crops])
        return self.grays

    @property
    def mean_landmarks(self) -> np.ndarray:
        """Median landmark positions over the clip: where ROIs sit in the crop."""
        return np.median(self.landmarks, axis=0)

    def __len__(self) -> int:
        return len(self.crops)


def _temporal_smooth(x: np.ndarray, sigma_frames: float) -> np.ndarray:
    """Gaussian low-pass along axis 0 with edge padding (so the ends do not sag)."""
    if sigma_frames < 0.5 or len(x) < 3:
        return x
    r = int(3 * sigma_frames)
    k = np.exp(-0.5 * (np.arange(-r, r + 1) / sigma_frames) ** 2)
    k /= k.sum()
    pad = np.concatenate([np.repeat(x[:1], r, 0), x, np.repeat(x[-1:], r, 0)])
    flat = pad.reshape(len(pad), -1)
    out = np.stack([np.convolve(flat[:, j], k, mode="valid") for j in range(flat.shape[1])], axis=1)
    return out.reshape(x.shape)


def similarity_to_crop(right_eye: np.ndarray, left_eye: np.ndarray, config: AlignConfig) -> np.ndarray:
    """The 2x3 similarity that maps the two eye centres to their places in the crop.

    The subject's right eye lands on the image left (an unmirrored, upright face).
    """
    s = config.size
    src_mid = (right_eye + left_eye) / 2
    d = left_eye - right_eye
    angle = np.arctan2(d[1], d[0])
    scale = config.eye_distance * s / max(np.hypot(*d), 1e-6)
    c, si = np.cos(-angle) * scale, np.sin(-angle) * scale
    rot = np.array([[c, -si], [si, c]])
    dst_mid = np.array([s / 2, config.eye_y * s])
    return np.hstack([rot, (dst_mid - rot @ src_mid)[:, None]]).astype(np.float32)


def align_faces(frames: np.ndarray | Clip, track, *, fps: float | None = None,
                config: AlignConfig = AlignConfig()) -> AlignedFaces:
    """Warp every frame to an eye-aligned square crop, with transforms smoothed over time.

    ``track`` is a :class:`mevqa.face.landmarks.FaceTrack` (anything with ``landmarks`` (T, 478, 2)).
    """
    if isinstance(frames, Clip):
        fps = fps or frames.fps
        frames = frames.frames
    fps = fps or 30.0
    # 1. Eye centres per frame, low-passed so landmark jitter does not move the crop.
    r, left = eye_centres(track.landmarks)
    r, left = _temporal_smooth(np.stack([r, left], 1), config.smooth_seconds * fps).transpose(1, 0, 2)
    # 2. One similarity per frame, then warp the frame and its landmarks.
    mats = np.stack([similarity_to_crop(r[i], left[i], config) for i in range(len(frames))])
    s = config.size
    crops = np.stack([cv2.warpAffine(frames[i], mats[i], (s, s), flags=cv2.INTER_LINEAR,
                                     borderMode=cv2.BORDER_REPLICATE) for i in range(len(frames))])
    pts = np.einsum("tij,tkj->tki", mats[:, :, :2], track.landmarks) + mats[:, None, :, 2]
    return AlignedFaces(crops, pts.astype(np.float32), mats, config)


def region_mask(landmarks: np.ndarray, size: int, indices=FACE_OVAL) -> np.ndarray:
    """Boolean mask (size, size) of the polygon through the given landmarks (the face oval by default)."""
    mask = np.zeros((size, size), np.uint8)
    cv2.fillPoly(mask, [np.round(landmarks[list(indices)]).astype(np.int32)], 1)
    return mask.astype(bool)
