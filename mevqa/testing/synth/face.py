"""Synthetic clips: the neutral frame made from a face photo, its landmarks and the geometry fields
and lids are built on (cached per photo and frame size)."""
from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np

from mevqa.face.landmarks import detect_landmarks, eye_centres, interocular
from mevqa.testing.synth.specs import (DEFAULT_PHOTO, IOD_FRACTION, _EYE_LOWER, _EYE_UPPER, _LID_SKIN_DOWN, _LID_SKIN_UP,
                                      SynthError)


@dataclass
class _EyeGeom:
    centre: np.ndarray
    u: np.ndarray  # knots along the eye line (sorted), relative to centre
    v_upper: np.ndarray
    v_lower: np.ndarray
    gap_max: float
    box: tuple[int, int, int, int]  # x0, y0, x1, y1 in frame pixels


@dataclass
class FaceSetup:
    """The neutral frame made from a photo and everything fields are built on.

    ``image`` is the neutral RGB frame; ``landmarks`` (478, 2) are in its pixels; ``ex``/``ey`` the
    face axes (toward the subject's left along the eye line, and down); ``roi`` the box (x0, y0, x1,
    y1) where bump fields live.
    """

    image: np.ndarray
    landmarks: np.ndarray
    iod: float
    photo: str
    ex: np.ndarray
    ey: np.ndarray
    roi: tuple[int, int, int, int]
    protect: np.ndarray  # (roi h, roi w): 1 where bump fields act, 0 in the eye openings
    eyes: dict
    _units: dict = field(default_factory=dict, repr=False)

    @property
    def size(self) -> tuple[int, int]:
        return self.image.shape[1], self.image.shape[0]




# -- face setup ---------------------------------------------------------------------------------
_SETUPS: dict = {}


def _load_photo(photo) -> tuple[np.ndarray, str, str]:
    """RGB uint8 image, a display name and a cache key."""
    if isinstance(photo, np.ndarray):
        if photo.ndim != 3 or photo.shape[2] != 3 or photo.dtype != np.uint8:
            raise SynthError(f"a photo array must be RGB uint8 (H, W, 3), got {photo.dtype} {photo.shape}")
        key = hashlib.sha1(np.ascontiguousarray(photo).tobytes()).hexdigest()[:16]
        return photo, "<array>", key
    p = Path(photo if photo is not None else DEFAULT_PHOTO).expanduser()
    if not p.is_file():
        raise SynthError(f"{p}: no such photo")
    bgr = cv2.imread(str(p), cv2.IMREAD_COLOR)
    if bgr is None:
        raise SynthError(f"{p}: cannot read the photo (not an image)")
    st = p.stat()
    return cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB), str(p), f"{p.resolve()}:{st.st_mtime_ns}:{st.st_size}"


def face_setup(photo=None, *, width: int = 640, height: int = 480, iod: float | None = None) -> FaceSetup:
    """Neutral frame, landmarks and field geometry for ``photo`` at ``width`` x ``height`` (cached).

    The face is scaled to an inter-ocular distance of ``iod`` pixels (default 0.21 x height, CASME
    II-like) and centred, as far as the photo reaches: the window slides to stay inside the photo, and
    a tightly cropped photo is enlarged (at most 1.5x) to fill the frame before edges are replicated.
    """
    _check_size(width, height)
    image, name, key = _load_photo(photo)
    target = float(iod) if iod is not None else IOD_FRACTION * min(height, 0.75 * width)
    ck = (key, width, height, round(target, 3))
    if ck in _SETUPS:
        return _SETUPS[ck]
    lm0 = detect_landmarks(image)
    if lm0 is None:
        raise SynthError(f"{name}: no face found in the photo")
    iod0 = float(interocular(lm0))
    if iod0 < 15:
        raise SynthError(f"{name}: the face is too small in the photo (inter-ocular {iod0:.0f} px, need >= 15)")
    if not 20 <= target <= 0.5 * min(width, height):
        raise SynthError(f"inter-ocular distance {target:g} px does not fit a {width}x{height} frame")
    s = target / iod0
    cover = max(width / image.shape[1], height / image.shape[0])
    if s < cover:  # a tightly cropped photo: enlarge the face (up to 1.5x) rather than pad the frame
        s = min(cover, 1.5 * s)
    centre = (lm0.min(0) + lm0.max(0)) / 2
    # Centre the face, then slide the window back inside the photo where the photo is big enough: a
    # mirrored border would show a second chin. A photo smaller than the frame is centred instead.
    t = []
    for size, c, extent in ((width, centre[0], image.shape[1] * s), (height, centre[1], image.shape[0] * s)):
        shift = size / 2 - s * c
        t.append(float(np.clip(shift, size - extent, 0)) if extent >= size else (size - extent) / 2)
    m = np.float32([[s, 0, t[0]], [0, s, t[1]]])
    if s < 1:  # downscale with area averaging first, then place
        small = cv2.resize(image, None, fx=s, fy=s, interpolation=cv2.INTER_AREA)
        m2 = np.float32([[1, 0, m[0, 2]], [0, 1, m[1, 2]]])
        frame = cv2.warpAffine(small, m2, (width, height), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
    else:
        frame = cv2.warpAffine(image, m, (width, height), flags=cv2.INTER_CUBIC, borderMode=cv2.BORDER_REPLICATE)
    placed = lm0 * s + m[:, 2]
    if placed.min() < 0 or placed[:, 0].max() > width or placed[:, 1].max() > height:
        raise SynthError(f"{name}: the face does not fit a {width}x{height} frame at {target:.0f} px between the eyes")
    frame = _add_texture(frame, upscale=s)
    lm = detect_landmarks(frame)
    if lm is None:  # FaceMesh normally finds the face again; if not, carry the photo's landmarks over
        lm = placed.astype(np.float32)
    setup = _build_setup(frame, lm.astype(np.float32), name)
    if len(_SETUPS) >= 8:
        _SETUPS.pop(next(iter(_SETUPS)))
    _SETUPS[ck] = setup
    return setup


def _add_texture(frame: np.ndarray, *, upscale: float) -> np.ndarray:
    """Undo some upscaling blur and add faint static grain (fixed seed): texture for optical flow.

    A camera at this face size resolves pores and fine hair; an upscaled photo does not, and flow on a
    textureless cheek is ill-posed. The grain is part of the neutral frame, so it moves with the skin.
    """
    f = frame.astype(np.float32)
    if upscale > 1.3:
        f += 0.6 * (f - cv2.GaussianBlur(f, (0, 0), 0.5 * upscale))  # mild unsharp mask
    grain = np.random.default_rng(20250).standard_normal(frame.shape[:2]).astype(np.float32)
    grain = cv2.GaussianBlur(grain, (0, 0), 0.7)
    f += (3.0 / max(grain.std(), 1e-6)) * grain[..., None]
    return np.clip(f + 0.5, 0, 255).astype(np.uint8)


def _build_setup(frame: np.ndarray, lm: np.ndarray, name: str) -> FaceSetup:
    h, w = frame.shape[:2]
    L = float(interocular(lm))
    r_eye, l_eye = eye_centres(lm)
    ex = (l_eye - r_eye) / max(np.linalg.norm(l_eye - r_eye), 1e-6)
    ey = np.array([-ex[1], ex[0]], np.float32)
    lo, hi = lm.min(0) - 0.4 * L, lm.max(0) + np.array([0.4, 0.6]) * L
    x0, y0 = int(max(0, np.floor(lo[0]))), int(max(0, np.floor(lo[1])))
    x1, y1 = int(min(w, np.ceil(hi[0]))), int(min(h, np.ceil(hi[1])))
    # Eye-opening protection: 0 inside the eye contour, rising smoothly (smoothstep of the distance) to 1
    # at 0.15 L. Bump fields are multiplied by it so that they never warp the eyeball (lids slide over
    # it, see _lid_backward); a sharper rise would crush the skin against the lid when a brow comes
    # down (strain = displacement x slope) and make the warp fold.
    inside = np.zeros((y1 - y0, x1 - x0), np.uint8)
    for side in ("right", "left"):
        contour = np.concatenate([lm[list(_EYE_UPPER[side])], lm[list(_EYE_LOWER[side])[::-1]]])
        cv2.fillPoly(inside, [np.round((contour - [x0, y0]) * 16).astype(np.int32)], 1, shift=4)
    dist = cv2.distanceTransform(1 - inside, cv2.DIST_L2, 5)
    t = np.clip(dist / (0.15 * L), 0, 1)
    protect = (t * t * (3 - 2 * t)).astype(np.float32)
    eyes = {side: _eye_geometry(lm, side, ex, ey, L, (w, h)) for side in ("right", "left")}
    return FaceSetup(frame, lm, L, name, ex.astype(np.float32), ey, (x0, y0, x1, y1), protect, eyes)


def _eye_geometry(lm, side, ex, ey, L, size) -> _EyeGeom:
    up, low = lm[list(_EYE_UPPER[side])], lm[list(_EYE_LOWER[side])]
    c = (lm[_EYE_UPPER[side][0]] + lm[_EYE_UPPER[side][-1]]) / 2
    uu, vu = (up - c) @ ex, (up - c) @ ey
    ul, vl = (low - c) @ ex, (low - c) @ ey
    u = np.linspace(min(uu.min(), ul.min()), max(uu.max(), ul.max()), 64)
    vu_i = np.interp(u, *_sorted(uu, vu))
    vl_i = np.maximum(np.interp(u, *_sorted(ul, vl)), vu_i)
    gap = vl_i - vu_i
    # Box in frame pixels that holds the lid skin above and below the opening.
    corners = [(a, b) for a in (u[0] - 0.04 * L - 2, u[-1] + 0.04 * L + 2)  # blinks reach past the corners
               for b in (vu_i.min() - _LID_SKIN_UP * L - 3, vl_i.max() + _LID_SKIN_DOWN * L + 3)]
    pts = np.array([c + a * ex + b * ey for a, b in corners])
    w, h = size
    box = (int(max(0, np.floor(pts[:, 0].min()))), int(max(0, np.floor(pts[:, 1].min()))),
           int(min(w, np.ceil(pts[:, 0].max()) + 1)), int(min(h, np.ceil(pts[:, 1].max()) + 1)))
    return _EyeGeom(c.astype(np.float32), u, vu_i, vl_i, float(max(gap.max(), 1e-3)), box)


def _sorted(a, b):
    o = np.argsort(a)
    return a[o], b[o]


def _check_size(width, height) -> None:
    if not (isinstance(width, (int, np.integer)) and isinstance(height, (int, np.integer))):
        raise SynthError(f"frame size must be integers, got {width!r}x{height!r}")
    if not (128 <= width <= 1920 and 128 <= height <= 1920):
        raise SynthError(f"frame size {width}x{height} is out of range (128-1920 px a side)")

