"""MediaPipe's Face Landmarker (Tasks API): the model bundle, opening the task, head pose from its matrix.

The Face Landmarker (Kartynnik et al., "Real-time Facial Surface Geometry from Monocular Video on Mobile
GPUs", CVPR-W 2019; Grishchenko et al., "Attention Mesh", 2020) gives per face 478 landmarks, 52
ARKit-style blendshape scores (MediaPipe's "Blendshape V2" model) and a 4x4 facial transformation
matrix from a canonical face to the camera (centimetres). mevqa ships the bundle inside the package
(``mevqa/assets/face_landmarker.task``, see NOTICE for its licence) and checks its sha256 on load;
``MEVQA_FACE_MODEL`` or a ``model=`` option points to another bundle.

Left and right in the blendshape names are the **subject's own** (checked: lifting the image-left mouth
corner of the real test video, the subject's right, raises ``mouthSmileRight``; tests/test_landmarker.py).
"""
from __future__ import annotations

import hashlib
import os
import zipfile
from functools import lru_cache
from pathlib import Path

import numpy as np

from mevqa.io.native import quiet_native_stderr  # noqa: F401 (re-exported for face.landmarks)
from mevqa.io.video import ClipError

#: sha256 of the bundle shipped in mevqa/assets (MediaPipe's face_landmarker.task, 2023-05-03 models).
BUNDLE_SHA256 = "64184e229b263107bc2b804c6625db1341ff2bb731874b0bcc2fe6544e0bc9ff"
BUNDLE_PATH = Path(__file__).resolve().parents[1] / "assets" / "face_landmarker.task"
_BUNDLE_MEMBERS = ("face_detector.tflite", "face_landmarks_detector.tflite", "face_blendshapes.tflite")
ENV_MODEL = "MEVQA_FACE_MODEL"
#: The Face Landmarker's 52 blendshape categories, in its output order (index 0 is "_neutral").
BLENDSHAPE_NAMES = (
    "_neutral", "browDownLeft", "browDownRight", "browInnerUp", "browOuterUpLeft", "browOuterUpRight",
    "cheekPuff", "cheekSquintLeft", "cheekSquintRight", "eyeBlinkLeft", "eyeBlinkRight", "eyeLookDownLeft",
    "eyeLookDownRight", "eyeLookInLeft", "eyeLookInRight", "eyeLookOutLeft", "eyeLookOutRight", "eyeLookUpLeft",
    "eyeLookUpRight", "eyeSquintLeft", "eyeSquintRight", "eyeWideLeft", "eyeWideRight", "jawForward", "jawLeft",
    "jawOpen", "jawRight", "mouthClose", "mouthDimpleLeft", "mouthDimpleRight", "mouthFrownLeft",
    "mouthFrownRight", "mouthFunnel", "mouthLeft", "mouthLowerDownLeft", "mouthLowerDownRight", "mouthPressLeft",
    "mouthPressRight", "mouthPucker", "mouthRight", "mouthRollLower", "mouthRollUpper", "mouthShrugLower",
    "mouthShrugUpper", "mouthSmileLeft", "mouthSmileRight", "mouthStretchLeft", "mouthStretchRight",
    "mouthUpperUpLeft", "mouthUpperUpRight", "noseSneerLeft", "noseSneerRight")
N_LANDMARKS = 478


class FaceError(ClipError):
    """No usable face in a clip, or no usable face model (one line, for the user)."""


# -- the bundle ---------------------------------------------------------------------------------
def bundle_path(model: str | os.PathLike | None = None) -> Path:
    """The Face Landmarker bundle to load: ``model``, else ``$MEVQA_FACE_MODEL``, else the packaged one.

    The packaged bundle must match :data:`BUNDLE_SHA256`; another bundle must be a readable task file
    holding the three models. Anything else is a :class:`FaceError` of one line.
    """
    chosen = model or os.environ.get(ENV_MODEL) or None
    p = Path(os.fspath(chosen)).expanduser() if chosen else BUNDLE_PATH
    origin = "the packaged face model" if chosen is None else ("MEVQA_FACE_MODEL" if model is None else "the face model")
    if not p.is_file():
        raise FaceError(f"{origin} {p} is missing; reinstall mevqa or point MEVQA_FACE_MODEL to a face_landmarker.task")
    st = p.stat()
    _check_bundle(str(p), st.st_size, st.st_mtime_ns, chosen is None, origin)
    return p


@lru_cache(maxsize=8)
def _check_bundle(path: str, size: int, mtime_ns: int, packaged: bool, origin: str) -> None:
    """Checked once per file version (size and mtime in the cache key): hashing 3.7 MB costs ~10 ms."""
    if packaged:
        digest = hashlib.sha256(Path(path).read_bytes()).hexdigest()
        if digest != BUNDLE_SHA256:
            raise FaceError(f"{origin} {path} is corrupt (sha256 {digest[:12]}..., expected {BUNDLE_SHA256[:12]}...); "
                            "reinstall mevqa")
        return
    try:
        with zipfile.ZipFile(path) as z:
            names = set(z.namelist())
            bad = z.testzip()
    except (zipfile.BadZipFile, OSError) as e:
        raise FaceError(f"{origin} {path} is not a Face Landmarker task bundle ({e})") from None
    missing = [m for m in _BUNDLE_MEMBERS if m not in names]
    if missing or bad:
        raise FaceError(f"{origin} {path} is not a complete Face Landmarker bundle "
                        f"({'missing ' + ', '.join(missing) if missing else 'damaged member ' + str(bad)})")


# -- the task -------------------------------------------------------------------------------------
def open_landmarker(*, video: bool = True, num_faces: int = 2, min_confidence: float = 0.5,
                    model: str | os.PathLike | None = None):
    """A MediaPipe ``FaceLandmarker`` (VIDEO or IMAGE running mode) with blendshapes and matrices on.

    The caller closes it (it is a context manager). A bundle MediaPipe cannot load is a FaceError.
    """
    path = bundle_path(model)
    with quiet_native_stderr():
        os.environ.setdefault("GLOG_minloglevel", "2")
        # Deferred: mediapipe takes ~1 s to import and only face tracking needs it.
        from mediapipe.tasks.python.core.base_options import BaseOptions  # noqa: PLC0415
        from mediapipe.tasks.python.vision import FaceLandmarker, FaceLandmarkerOptions, RunningMode  # noqa: PLC0415

        opts = FaceLandmarkerOptions(
            base_options=BaseOptions(model_asset_path=str(path)),
            running_mode=RunningMode.VIDEO if video else RunningMode.IMAGE, num_faces=num_faces,
            min_face_detection_confidence=min_confidence, min_face_presence_confidence=min_confidence,
            min_tracking_confidence=min_confidence, output_face_blendshapes=True,
            output_facial_transformation_matrixes=True)
        try:
            return FaceLandmarker.create_from_options(opts)
        except (RuntimeError, ValueError) as e:
            first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
            raise FaceError(f"MediaPipe cannot load the face model {path}: {first}") from None


def to_image(frame: np.ndarray):
    """An RGB uint8 frame (H, W, 3) as a MediaPipe image (grayscale (H, W) frames are expanded)."""
    import mediapipe as mp  # noqa: PLC0415 - already imported by open_landmarker; cheap here

    if frame.ndim == 2:
        frame = np.repeat(frame[..., None], 3, axis=-1)
    return mp.Image(image_format=mp.ImageFormat.SRGB, data=np.ascontiguousarray(frame))


def result_faces(result, width: int, height: int, *, offset=(0.0, 0.0)):
    """(landmarks (k, 478, 2) in pixels, blendshapes (k, 52), matrices (k, 4, 4)) of a landmarker result.

    ``offset`` is subtracted from the landmarks (the border a padded frame was given).
    """
    k = len(result.face_landmarks)
    lm = np.zeros((k, N_LANDMARKS, 2), np.float32)
    bs = np.full((k, len(BLENDSHAPE_NAMES)), np.nan, np.float32)
    mats = np.full((k, 4, 4), np.nan, np.float32)
    for j, face in enumerate(result.face_landmarks):
        pts = np.array([(p.x, p.y) for p in face], np.float32)[:N_LANDMARKS]
        lm[j] = pts * (width, height) - np.asarray(offset, np.float32)
        if result.face_blendshapes:
            bs[j] = [c.score for c in result.face_blendshapes[j]]
        if result.facial_transformation_matrixes:
            mats[j] = np.asarray(result.facial_transformation_matrixes[j], np.float32)
    return lm, bs, mats


# -- head pose ----------------------------------------------------------------------------------
def pose_angles(matrix: np.ndarray) -> np.ndarray:
    """(yaw, pitch, roll) in degrees from facial transformation matrices (..., 4, 4).

    The rotation is decomposed as R = Ry(yaw) Rx(pitch) Rz(roll) in MediaPipe's canonical face frame.
    Signs are the subject's: yaw > 0 the head turns to the subject's own left, pitch > 0 the chin goes up,
    roll > 0 the head tilts toward the subject's left shoulder (checked on the real and a mirrored and a
    rotated copy of the test video, tests/test_landmarker.py).
    """
    r = np.asarray(matrix, np.float64)[..., :3, :3]
    yaw = np.degrees(np.arctan2(r[..., 0, 2], r[..., 2, 2]))
    pitch = np.degrees(np.arcsin(np.clip(-r[..., 1, 2], -1, 1)))
    roll = np.degrees(np.arctan2(r[..., 1, 0], r[..., 1, 1]))
    return np.stack([_YAW_SIGN * yaw, _PITCH_SIGN * pitch, _ROLL_SIGN * roll], axis=-1)


# Raw angles: yaw > 0 turns the face to the image right (the subject's left), pitch > 0 brings the top
# of the head towards the camera (chin down), roll > 0 lifts the image-right side (head to the right shoulder).
_YAW_SIGN, _PITCH_SIGN, _ROLL_SIGN = 1.0, -1.0, -1.0


def head_turn(angles: np.ndarray) -> np.ndarray:
    """Angle (degrees) between the head's facing direction and the camera axis from (yaw, pitch, roll)."""
    y, p = np.radians(angles[..., 0]), np.radians(angles[..., 1])
    return np.degrees(np.arccos(np.clip(np.cos(y) * np.cos(p), -1, 1)))

