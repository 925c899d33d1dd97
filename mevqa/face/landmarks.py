"""Face tracking over a clip with MediaPipe's Face Landmarker: landmarks, blendshapes, head pose.

:func:`track_face` runs the Face Landmarker (:mod:`mevqa.face.landmarker`) in VIDEO mode, timestamps
from the clip's frame rate, so after the first detection it tracks and each frame costs a few
milliseconds. Per frame it keeps the 478 landmarks, the 52 blendshape scores, the 4x4 facial
transformation matrix (head pose) and whether (and how many) faces were found.

Dataset frames come as they ship: tight face crops (CASME II, the MEGC test sets) and grayscale (SAMM).
Grayscale frames work as they are; when a tight crop leaves the face detector nothing to find, the
frames are given a border and the landmarks mapped back.

Left and right are always the **subject's own** (see :mod:`mevqa.face.groups`). Named groups, eye
centres and the alignment live in :mod:`mevqa.face.groups` and :mod:`mevqa.face.align`; they are
re-exported here for callers of the older single module.
"""
from __future__ import annotations

import atexit
import contextlib
import os
import threading
from dataclasses import dataclass, field

import cv2
import numpy as np

from mevqa.face.align import AlignConfig, AlignedFaces, align_faces, region_mask, similarity_to_crop  # noqa: F401
from mevqa.face.groups import (FACE_OVAL, LANDMARK_GROUPS, RIGID_GROUPS, eye_centres, group_centre,  # noqa: F401
                               group_points, interocular)
from mevqa.face.landmarker import (BLENDSHAPE_NAMES, N_LANDMARKS, FaceError, bundle_path, head_turn,  # noqa: F401
                                   open_landmarker, pose_angles, quiet_native_stderr, result_faces, to_image)
from mevqa.io.video import Clip

# Old private name, kept for callers that silenced native logs with it.
_quiet_native_stderr = quiet_native_stderr


@dataclass
class FaceTrack:
    """One face followed through a clip; arrays are per frame (T = number of frames).

    ``landmarks`` (T, 478, 2) frame pixels, interpolated over frames where the face was lost;
    ``detected`` (T,) bool (alias :attr:`found`); ``blendshapes`` (T, 52) scores in [0, 1] named by
    ``blendshape_names``, NaN where lost; ``pose`` (T, 4, 4) facial transformation matrices (canonical
    face -> camera, centimetres), NaN where lost; ``n_faces`` (T,) faces the model saw; ``padding`` the
    border (pixels) the frames were given because the face filled them.
    """

    landmarks: np.ndarray
    detected: np.ndarray
    frame_size: tuple[int, int]  # (width, height)
    blendshapes: np.ndarray | None = None
    pose: np.ndarray | None = None
    n_faces: np.ndarray | None = None
    blendshape_names: tuple[str, ...] = BLENDSHAPE_NAMES
    padding: int = 0
    warnings: list[str] = field(default_factory=list)

    @property
    def found(self) -> np.ndarray:
        return self.detected

    @property
    def lost_frames(self) -> list[int]:
        return np.flatnonzero(~self.detected).tolist()

    @property
    def n_frames(self) -> int:
        return len(self.landmarks)

    def blendshape(self, name: str) -> np.ndarray:
        """Scores (T,) of one blendshape, e.g. ``"mouthSmileLeft"`` (the subject's left)."""
        if self.blendshapes is None:
            raise FaceError("this face track has no blendshapes")
        return self.blendshapes[:, self.blendshape_names.index(name)]

    @property
    def angles(self) -> np.ndarray:
        """(T, 3) yaw, pitch, roll in degrees (see :func:`mevqa.face.landmarker.pose_angles`); NaN where lost."""
        if self.pose is None:
            return np.full((self.n_frames, 3), np.nan)
        return pose_angles(self.pose)

    @property
    def yaw(self) -> np.ndarray:
        return self.angles[:, 0]

    @property
    def pitch(self) -> np.ndarray:
        return self.angles[:, 1]

    @property
    def roll(self) -> np.ndarray:
        return self.angles[:, 2]

    @property
    def translation(self) -> np.ndarray:
        """(T, 3) head position in centimetres in the camera frame (x right, y up, z towards the camera)."""
        if self.pose is None:
            return np.full((self.n_frames, 3), np.nan)
        return self.pose[:, :3, 3].astype(np.float64)

    @property
    def turn(self) -> np.ndarray:
        """(T,) degrees between the head's facing direction and the camera axis."""
        return head_turn(self.angles)

    @property
    def multi_face_frames(self) -> list[int]:
        """Frames in which the model saw more than one face."""
        return [] if self.n_faces is None else np.flatnonzero(self.n_faces > 1).tolist()


def _pick_face(faces: np.ndarray, previous: np.ndarray | None) -> int:
    """Index of the largest face at first; afterwards of the face nearest the one followed so far."""
    if previous is None or len(faces) == 1:
        areas = [np.ptp(f[:, 0]) * np.ptp(f[:, 1]) for f in faces]
        return int(np.argmax(areas)) if previous is None else 0
    centre = previous.mean(axis=0)
    return int(np.argmin([np.linalg.norm(f.mean(axis=0) - centre) for f in faces]))


def _pad(frame: np.ndarray, pad: int) -> np.ndarray:
    # A replicated border continues hair and skin outward, so the detector sees a whole head.
    return cv2.copyMakeBorder(frame, pad, pad, pad, pad, cv2.BORDER_REPLICATE) if pad else frame


_image_tasks = threading.local()  # one IMAGE-mode landmarker per thread, model and face count
_open_tasks: list = []


@atexit.register
def _close_image_tasks() -> None:
    """Close the cached IMAGE-mode landmarkers explicitly (MediaPipe's graphs hold native threads)."""
    while _open_tasks:
        with contextlib.suppress(Exception):
            _open_tasks.pop().close()


def _image_landmarker(max_faces: int, model):
    # Opening a landmarker costs 50-130 ms (graph start-up), detecting one image ~10 ms: keep it open.
    cache = _image_tasks.__dict__.setdefault("tasks", {})
    key = (str(bundle_path(model)), int(max_faces))
    if key not in cache:
        cache[key] = open_landmarker(video=False, num_faces=max_faces, model=model)
        _open_tasks.append(cache[key])
    return cache[key]


def detect_landmarks(image: np.ndarray, *, refine: bool = True, max_faces: int = 4,
                     model: str | os.PathLike | None = None) -> np.ndarray | None:
    """Landmarks (478, 2) of the largest face in one RGB (or grayscale) image, or None.

    ``refine`` is accepted for compatibility: the Face Landmarker always gives the 10 iris points.
    """
    h, w = image.shape[:2]
    lm = _image_landmarker(max_faces, model)
    for pad in (0, _auto_pad(w, h)):
        with quiet_native_stderr():
            res = lm.detect(to_image(_pad(image, pad)))
        if res.face_landmarks:
            faces, _, _ = result_faces(res, w + 2 * pad, h + 2 * pad, offset=(pad, pad))
            return faces[_pick_face(faces, None)]
    return None


def _auto_pad(w: int, h: int) -> int:
    """Border for frames the face fills: a quarter of the longer side, so the face is about half the frame."""
    return int(round(0.25 * max(w, h)))


def _fills_frame(landmarks: np.ndarray, w: int, h: int) -> bool:
    """Whether the face spans most of the frame (median landmark box over 60% of a side)."""
    if not len(landmarks):
        return False
    span = np.median(landmarks.max(axis=1) - landmarks.min(axis=1), axis=0)
    return bool(span[0] > 0.6 * w or span[1] > 0.6 * h)


def _run(frames: np.ndarray, fps: float, *, pad: int, max_faces: int, min_confidence: float, model,
         progress, stop_after: int | None = None):
    """One VIDEO-mode pass; ``stop_after`` gives up early when no face is found in that many first frames."""
    t, h, w = frames.shape[:3]
    lm_out = np.zeros((t, N_LANDMARKS, 2), np.float32)
    bs_out = np.full((t, len(BLENDSHAPE_NAMES)), np.nan, np.float32)
    pose_out = np.full((t, 4, 4), np.nan, np.float32)
    n_faces = np.zeros(t, np.int16)
    prev = None
    last_ms = -1
    with open_landmarker(video=True, num_faces=max_faces, min_confidence=min_confidence, model=model) as lm:
        for i in range(t):
            # Timestamps must increase strictly; at over 1000 fps rounding would repeat one.
            ms = max(last_ms + 1, int(round(i * 1000.0 / fps)))
            last_ms = ms
            img = to_image(_pad(frames[i], pad))
            if i == 0:  # the graph starts (and logs) on the first frame
                with quiet_native_stderr():
                    res = lm.detect_for_video(img, ms)
            else:
                res = lm.detect_for_video(img, ms)
            if res.face_landmarks:
                faces, bs, mats = result_faces(res, w + 2 * pad, h + 2 * pad, offset=(pad, pad))
                j = _pick_face(faces, prev)
                prev = faces[j]
                lm_out[i], bs_out[i], pose_out[i], n_faces[i] = faces[j], bs[j], mats[j], len(faces)
            if stop_after is not None and i + 1 >= stop_after and not n_faces[:i + 1].any():
                return None
            if progress is not None and (i % 16 == 0 or i == t - 1):
                progress(i + 1, t)
    return lm_out, bs_out, pose_out, n_faces


def track_face(clip: Clip | np.ndarray, *, fps: float | None = None, max_faces: int = 2,
               min_confidence: float = 0.5, max_lost_fraction: float = 0.5, pad: int | str = "auto",
               model: str | os.PathLike | None = None, progress=None, refine: bool = True) -> FaceTrack:
    """Track the largest face through a clip with MediaPipe's Face Landmarker (VIDEO running mode).

    ``max_faces`` = 2 lets the model report a second face (a warning in :attr:`FaceTrack.warnings`) while
    following the larger one, then the one nearest it. ``pad`` is a border in pixels, or ``"auto"``: none,
    unless no face is found in the first frames, in which case the clip is tracked again with a border
    (tight dataset crops). ``model`` (or ``$MEVQA_FACE_MODEL``) replaces the packaged bundle.

    Raises :class:`FaceError` when no face is found, or when more than ``max_lost_fraction`` of the
    frames lose it. ``progress`` is an optional callable ``(done, total)``; ``refine`` is ignored (the
    model always gives the iris points).
    """
    frames = clip.frames if isinstance(clip, Clip) else np.asarray(clip)
    source = clip.source if isinstance(clip, Clip) else "<frames>"
    fps = float(fps or (clip.fps if isinstance(clip, Clip) else 30.0))
    t, h, w = frames.shape[:3]
    opts = dict(max_faces=max_faces, min_confidence=min_confidence, model=model, progress=progress)
    if pad == "auto":
        used = 0
        # Give up on the plain pass after a second of frames without a face, then try with a border.
        out = _run(frames, fps, pad=0, stop_after=max(1, min(t, int(round(fps)))), **opts)
        if out is None or ((out[3] == 0).any() and _fills_frame(out[0][out[3] > 0], w, h)):
            # A face that fills the frame (a tight dataset crop) and is lost in some frames: the detector
            # wants context around the face. Measured on tight grayscale crops of the real video: 206 of
            # 240 frames found plain, 230 with the border.
            used = _auto_pad(w, h)
            padded = _run(frames, fps, pad=used, **opts)
            if out is None or (padded[3] > 0).sum() > (out[3] > 0).sum():
                out = padded
            else:
                used = 0
    else:
        used = int(pad)
        out = _run(frames, fps, pad=used, **opts)
    landmarks, blendshapes, pose, n_faces = out
    found = n_faces > 0
    if not found.any():
        raise FaceError(f"{source}: no face found in any of the {t} frames")
    if (~found).mean() > max_lost_fraction:
        raise FaceError(f"{source}: the face is lost in {(~found).sum()} of {t} frames; is it turned away or cut off?")
    warnings = []
    multi = int((n_faces > 1).sum())
    if multi:
        warnings.append(f"two faces seen in {multi} of {t} frames; following the larger one")
    return FaceTrack(_fill_gaps(landmarks, found), found, (w, h), blendshapes, pose, n_faces, BLENDSHAPE_NAMES,
                     used, warnings)


def _fill_gaps(points: np.ndarray, found: np.ndarray) -> np.ndarray:
    """Linear interpolation of landmarks over frames where the face was lost (nearest at the ends)."""
    if found.all():
        return points
    idx = np.flatnonzero(found)
    t = np.arange(len(points))
    flat = points.reshape(len(points), -1)
    filled = np.stack([np.interp(t, idx, flat[idx, j]) for j in range(flat.shape[1])], axis=1)
    return filled.reshape(points.shape).astype(np.float32)
