"""Face landmarks over a clip, stable alignment to a fixed-size crop, and named landmark groups.

Landmarks come from MediaPipe FaceMesh (468 points plus 10 iris points with ``refine``), run in its
tracking mode so each frame costs a few milliseconds. Alignment is a similarity transform that puts the
eye centres at fixed positions of a square crop. FaceMesh jitters by a pixel or so from frame to frame,
as much as a micro-expression moves, so the transform is computed from landmarks low-pass filtered in
time: the crop follows the head, not the jitter. What rigid motion remains is removed later from the
flow itself, on the nose ridge (see :mod:`mevqa.motion.flow`).

Left and right are always the **subject's own**: ``left_brow`` is the brow the person would call their
left, which is on the right of an unmirrored image. MEGC's "left or right face" questions use that
convention too.
"""
from __future__ import annotations

import contextlib
import os
import sys
from dataclasses import dataclass, field

import cv2
import numpy as np

from mevqa.io.video import Clip, ClipError


class FaceError(ClipError):
    """No usable face in a clip (one line, for the user)."""


# -- named landmark groups (MediaPipe FaceMesh indices; subject's own left/right) -------------
# MediaPipe numbers the subject's right eye 33..133 (image left) and the left eye 263..362.
LANDMARK_GROUPS: dict[str, tuple[int, ...]] = {
    "right_brow": (70, 63, 105, 66, 107, 46, 53, 52, 65, 55),
    "left_brow": (300, 293, 334, 296, 336, 276, 283, 282, 295, 285),
    "right_inner_brow": (107, 66, 55, 65),
    "left_inner_brow": (336, 296, 285, 295),
    "right_outer_brow": (70, 63, 46, 53),
    "left_outer_brow": (300, 293, 276, 283),
    "glabella": (9, 8, 151),
    "right_eye": (33, 7, 163, 144, 145, 153, 154, 155, 133, 173, 157, 158, 159, 160, 161, 246),
    "left_eye": (263, 249, 390, 373, 374, 380, 381, 382, 362, 398, 384, 385, 386, 387, 388, 466),
    "right_upper_lid": (246, 161, 160, 159, 158, 157, 173),
    "left_upper_lid": (466, 388, 387, 386, 385, 384, 398),
    "right_lower_lid": (7, 163, 144, 145, 153, 154, 155),
    "left_lower_lid": (249, 390, 373, 374, 380, 381, 382),
    "right_eye_corners": (33, 133),
    "left_eye_corners": (263, 362),
    "inner_eye_corners": (133, 362),
    "nose_ridge": (168, 6, 197, 195, 5),
    "right_nose_wing": (129, 98, 64, 48),
    "left_nose_wing": (358, 327, 294, 278),
    "right_cheek": (205, 50, 187, 123, 117),
    "left_cheek": (425, 280, 411, 352, 346),
    "right_mouth_corner": (61, 76, 62, 146),
    "left_mouth_corner": (291, 306, 292, 375),
    "upper_lip": (0, 37, 267, 13, 82, 312),
    "lower_lip": (17, 84, 314, 14, 87, 317),
    "chin": (152, 175, 199, 200, 18),
}
#: Regions that do not move with facial expressions: head motion is measured on them.
RIGID_GROUPS = ("nose_ridge", "inner_eye_corners")
#: Face oval, used for masks (from MediaPipe's FACEMESH_FACE_OVAL, in drawing order).
FACE_OVAL = (10, 338, 297, 332, 284, 251, 389, 356, 454, 323, 361, 288, 397, 365, 379, 378, 400, 377,
             152, 148, 176, 149, 150, 136, 172, 58, 132, 93, 234, 127, 162, 21, 54, 103, 67, 109)


def group_points(landmarks: np.ndarray, name: str) -> np.ndarray:
    """Landmarks of a named group: (..., k, 2) from (..., 478, 2)."""
    return landmarks[..., list(LANDMARK_GROUPS[name]), :]


def group_centre(landmarks: np.ndarray, name: str) -> np.ndarray:
    return group_points(landmarks, name).mean(axis=-2)


def eye_centres(landmarks: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(right, left) eye centres as the mean of each eye's two corners: stable through blinks."""
    return group_centre(landmarks, "right_eye_corners"), group_centre(landmarks, "left_eye_corners")


def interocular(landmarks: np.ndarray) -> np.ndarray:
    r, left = eye_centres(landmarks)
    return np.linalg.norm(left - r, axis=-1)


# -- tracking ---------------------------------------------------------------------------------
@dataclass
class FaceTrack:
    """Landmarks (T, 478, 2) in frame pixels; frames where tracking was lost are interpolated.

    ``detected[t]`` is False where FaceMesh found no face in frame t; :attr:`lost_frames` lists them.
    """

    landmarks: np.ndarray
    detected: np.ndarray
    frame_size: tuple[int, int]  # (width, height)

    @property
    def lost_frames(self) -> list[int]:
        return np.flatnonzero(~self.detected).tolist()

    @property
    def n_frames(self) -> int:
        return len(self.landmarks)


@contextlib.contextmanager
def _quiet_native_stderr():
    """Silence MediaPipe's native (C++) log lines while its graph starts; Python errors still raise.

    TensorFlow Lite and absl print INFO/WARNING lines straight to file descriptor 2 when a FaceMesh
    graph starts, which users of a command-line tool read as errors. Set MEVQA_VERBOSE=1 to see them.
    """
    if os.environ.get("MEVQA_VERBOSE"):
        yield
        return
    try:
        saved = os.dup(2)
    except OSError:
        yield
        return
    try:
        sys.stderr.flush()
        with open(os.devnull, "w") as null:
            os.dup2(null.fileno(), 2)
        yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)


def _mesh(static: bool, max_faces: int, refine: bool, min_confidence: float):
    with _quiet_native_stderr():
        import mediapipe as mp  # noqa: PLC0415 - heavy import, only when tracking

        return mp.solutions.face_mesh.FaceMesh(
            static_image_mode=static, max_num_faces=max_faces, refine_landmarks=refine,
            min_detection_confidence=min_confidence, min_tracking_confidence=min_confidence)


def _pick_face(faces: list[np.ndarray], previous: np.ndarray | None) -> np.ndarray:
    """The largest face at first; afterwards the face nearest the one followed so far."""
    if previous is None or len(faces) == 1:
        areas = [np.ptp(f[:, 0]) * np.ptp(f[:, 1]) for f in faces]
        return faces[int(np.argmax(areas))] if previous is None else faces[0]
    centre = previous.mean(axis=0)
    return faces[int(np.argmin([np.linalg.norm(f.mean(axis=0) - centre) for f in faces]))]


def detect_landmarks(image: np.ndarray, *, refine: bool = True, max_faces: int = 4) -> np.ndarray | None:
    """Landmarks (478, 2) of the largest face in one RGB image, or None."""
    with _mesh(True, max_faces, refine, 0.5) as mesh, _quiet_native_stderr():
        res = mesh.process(np.ascontiguousarray(image))
    if not res.multi_face_landmarks:
        return None
    h, w = image.shape[:2]
    faces = [np.array([(p.x * w, p.y * h) for p in f.landmark], np.float32) for f in res.multi_face_landmarks]
    return _pick_face(faces, None)


def track_face(clip: Clip | np.ndarray, *, refine: bool = True, max_faces: int = 2,
               min_confidence: float = 0.5, max_lost_fraction: float = 0.5, progress=None) -> FaceTrack:
    """Track the largest face through a clip with MediaPipe FaceMesh.

    In tracking mode FaceMesh re-runs its face detector on every frame that holds fewer faces than
    ``max_faces``, so 2 (not more) keeps it near 3 ms a frame while still choosing the larger of two.

    Raises :class:`FaceError` when no face is found, or when more than ``max_lost_fraction`` of the
    frames lose it. ``progress`` is an optional callable ``(done, total)``.
    """
    frames = clip.frames if isinstance(clip, Clip) else clip
    source = clip.source if isinstance(clip, Clip) else "<frames>"
    t, h, w = frames.shape[:3]
    out = np.zeros((t, 478 if refine else 468, 2), np.float32)
    found = np.zeros(t, bool)
    prev = None
    with _mesh(False, max_faces, refine, min_confidence) as mesh:
        for i in range(t):
            if i == 0:  # the graph starts (and logs) on the first frame
                with _quiet_native_stderr():
                    res = mesh.process(np.ascontiguousarray(frames[i]))
            else:
                res = mesh.process(np.ascontiguousarray(frames[i]))
            if res.multi_face_landmarks:
                faces = [np.array([(p.x * w, p.y * h) for p in f.landmark], np.float32)
                         for f in res.multi_face_landmarks]
                prev = _pick_face(faces, prev)
                out[i], found[i] = prev, True
            if progress is not None and (i % 16 == 0 or i == t - 1):
                progress(i + 1, t)
    if not found.any():
        raise FaceError(f"{source}: no face found in any of the {t} frames")
    if (~found).mean() > max_lost_fraction:
        raise FaceError(f"{source}: the face is lost in {(~found).sum()} of {t} frames; is it turned away or cut off?")
    return FaceTrack(_fill_gaps(out, found), found, (w, h))


def _fill_gaps(points: np.ndarray, found: np.ndarray) -> np.ndarray:
    """Linear interpolation of landmarks over frames where the face was lost (nearest at the ends)."""
    if found.all():
        return points
    idx = np.flatnonzero(found)
    t = np.arange(len(points))
    flat = points.reshape(len(points), -1)
    filled = np.stack([np.interp(t, idx, flat[idx, j]) for j in range(flat.shape[1])], axis=1)
    return filled.reshape(points.shape).astype(np.float32)


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

    @property
    def gray(self) -> np.ndarray:
        """Grayscale crops (T, S, S) uint8, computed once."""
        if not hasattr(self, "_gray"):
            self._gray = np.stack([cv2.cvtColor(c, cv2.COLOR_RGB2GRAY) for c in self.crops])
        return self._gray

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


def align_faces(frames: np.ndarray | Clip, track: FaceTrack, *, fps: float | None = None,
                config: AlignConfig = AlignConfig()) -> AlignedFaces:
    """Warp every frame to an eye-aligned square crop, with transforms smoothed over time."""
    if isinstance(frames, Clip):
        fps = fps or frames.fps
        frames = frames.frames
    fps = fps or 30.0
    # 1. Eye centres and a nose point per frame, low-passed so FaceMesh jitter does not move the crop.
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
