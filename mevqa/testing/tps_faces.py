"""Neutral faces for the second synthetic generator: the bundled portrait at other sizes and crops, and
calm frames of the real video in ``tests/data``.

A :class:`NeutralFace` is an RGB frame with its 478 Face Mesh landmarks. Landmarks are found once on
the source (the photo, or the video frame) and carried through the placement (a scale and a shift),
so a face at another size or crop costs no second detection.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from mevqa.face.landmarks import detect_landmarks

PORTRAIT = Path(__file__).resolve().parents[1] / "assets" / "astronaut.png"
REAL_VIDEO = Path(__file__).resolve().parents[2] / "tests" / "data" / "pexels_woman_emotions.mp4"
#: Calm frames of the real video (seconds), picked by eye: between the crying half (hand over the mouth
#: until ~9.4 s) and the laughter (from ~10.2 s) the face is unoccluded, lips closed or barely apart,
#: with a slight smile, looking a little up. There is no fully neutral frame in the video.
CALM_TIMES = (9.7, 9.8, 9.9)

_SOURCES: dict = {}


@dataclass
class NeutralFace:
    """``image`` RGB uint8 (H, W, 3); ``landmarks`` (478, 2) in its pixels; ``source`` a display name."""

    image: np.ndarray
    landmarks: np.ndarray
    source: str

    @property
    def size(self) -> tuple[int, int]:
        return self.image.shape[1], self.image.shape[0]


def _detect(image: np.ndarray, source: str) -> np.ndarray:
    lm = detect_landmarks(image)
    if lm is None:
        raise ValueError(f"{source}: no face found")
    return lm.astype(np.float64)


def portrait_source() -> NeutralFace:
    """The bundled portrait as it is (512x512); cached."""
    if "portrait" not in _SOURCES:
        bgr = cv2.imread(str(PORTRAIT), cv2.IMREAD_COLOR)
        if bgr is None:
            raise ValueError(f"{PORTRAIT}: cannot read the portrait")
        rgb = cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)
        _SOURCES["portrait"] = NeutralFace(rgb, _detect(rgb, PORTRAIT.name), PORTRAIT.name)
    return _SOURCES["portrait"]


def video_source(t: float = CALM_TIMES[0], *, path: str | Path = REAL_VIDEO) -> NeutralFace:
    """The frame of ``path`` nearest to ``t`` seconds (decoded with OpenCV); cached per (path, t)."""
    key = (str(path), round(float(t), 3))
    if key not in _SOURCES:
        cap = cv2.VideoCapture(str(path))
        if not cap.isOpened():
            raise ValueError(f"{path}: cannot open the video")
        fps = cap.get(cv2.CAP_PROP_FPS) or 30.0
        cap.set(cv2.CAP_PROP_POS_FRAMES, int(round(t * fps)))
        ok, bgr = cap.read()
        cap.release()
        if not ok:
            raise ValueError(f"{path}: no frame at {t:g} s")
        rgb = cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)
        name = f"{Path(path).name}@{t:g}s"
        _SOURCES[key] = NeutralFace(rgb, _detect(rgb, name), name)
    return _SOURCES[key]


def iod_of(lm: np.ndarray) -> float:
    """Inter-ocular distance between the iris centres (Face Mesh 468 and 473)."""
    return float(np.linalg.norm(lm[473] - lm[468]))


def place(face: NeutralFace, *, width: int, height: int, iod: float | None = None,
          centre: tuple[float, float] = (0.5, 0.5)) -> NeutralFace:
    """``face`` scaled to an inter-ocular distance of ``iod`` px (None: as it is) with the centre of its
    landmarks at ``centre`` (fractions of the frame), in a ``width`` x ``height`` frame. Outside the
    source the border is reflected; a face that does not fit the frame is refused."""
    lm = face.landmarks
    s = 1.0 if iod is None else float(iod) / iod_of(lm)
    c = (lm.min(0) + lm.max(0)) / 2
    tx, ty = centre[0] * width - s * c[0], centre[1] * height - s * c[1]
    m = np.float64([[s, 0, tx], [0, s, ty]])
    interp = cv2.INTER_AREA if s < 1 else cv2.INTER_CUBIC
    if s < 1:  # area-average down first, then shift: no aliasing in the skin texture
        small = cv2.resize(face.image, None, fx=s, fy=s, interpolation=interp)
        img = cv2.warpAffine(small, np.float64([[1, 0, tx], [0, 1, ty]]), (width, height), flags=cv2.INTER_LINEAR,
                             borderMode=cv2.BORDER_REFLECT101)
    else:
        img = cv2.warpAffine(face.image, m, (width, height), flags=interp, borderMode=cv2.BORDER_REFLECT101)
    placed = lm * s + m[:, 2]
    margin = 0.1 * iod_of(placed)
    if placed.min() < margin or placed[:, 0].max() > width - margin or placed[:, 1].max() > height - margin:
        raise ValueError(f"{face.source}: the face does not fit a {width}x{height} frame at this size and position")
    return NeutralFace(img, placed, face.source)
