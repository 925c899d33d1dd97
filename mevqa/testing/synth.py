"""Synthetic micro-expression clips with exact ground truth, made by warping one real face photo.

These clips are the project's own test, demo and benchmark data: the spotter and the AU detector are
scored on them, so what the ground truth says is exactly what the pixels do.

How a clip is made
------------------
1. **Face setup** (:func:`face_setup`, cached per photo and frame size). FaceMesh landmarks are found on
   the photo once; the photo is scaled so that the inter-ocular distance is about 0.21 of the frame
   height (100 px at 640x480, the face size of CASME II, Yan et al., PLoS ONE 2014) and the face is
   centred. An upscaled photo is smooth where a camera would show skin texture, and optical flow needs
   texture, so a faint static grain (fixed seed) is added to the neutral frame; it moves with the skin.
2. **AU displacement fields** (:data:`AU_SPECS`). Each action unit is a sum of anisotropic Gaussian
   bumps anchored on FaceMesh landmark groups, oriented on the face's own axes and sized by the
   inter-ocular distance ``L``; directions follow the FACS manual's appearance changes (Ekman, Friesen
   & Hager, *Facial Action Coding System*, 2002): AU1 raises the inner brow, AU4 lowers the brows and
   draws them together, AU12 pulls the lip corners up and out, ... Bump fields never move the eye
   opening (a soft mask protects it): eyelids slide *over* the eye, which a smooth warp cannot do, so
   the lids (AU5, AU6's lower-lid bulge, AU7, blinks) are a separate occlusion model, see 3.
   Every side is the subject's own: ``"left"`` is the image right.
3. **Eyelids.** In the face frame (u along the eye line, v downward) each lid margin is a curve through
   FaceMesh's lid landmarks. Closing the upper lid by ``s`` moves its margin to ``v_u + s``: the lid skin
   between ``v_u - h`` and the margin is stretched down over the eyeball, which stays put and is
   covered (the iris is not squashed); the lower lid works the same way from below; the lash band
   moves rigidly so lashes stay thin. The map is piecewise linear in v with a 1.5 px band at the
   occluding margin (a cheap coverage blend), so a margin moves smoothly at sub-pixel steps. Blinks
   close the upper lid of both eyes onto the lower lid and back in 0.1-0.3 s, closing faster than
   reopening (Caffier, Erdmann & Ullsperger, "Experimental evaluation of eye-blink parameters as a
   drowsiness measure", Eur J Appl Physiol 2003).
4. **Warping.** Bump fields are *forward* displacements ``d`` (where skin goes). ``cv2.remap`` needs the
   backward map ``B`` with ``B(x) = -d(x + B(x))``, solved per frame by Newton's method from ``B = -d``
   (the fixed-point form of Chen et al., "A simple fixed-point approach to invert a deformation
   field", Med. Phys. 2008, crawls where skin stretches a lot); max residual <= 0.15 px for every AU at
   10 px except AU4 (~0.5 px in a few pixels of the crushed lid fold). A field that would crush
   skin past 65% is widened (blurred, peak restored) first, so the warp does not fold (lowest area
   ratio at 10 px: 0.21, AU4's lid fold). The lid model is already backward. Head drift, a whole-frame similarity ``A_t``, is folded into the same map,
   ``map(x) = y + B(y)`` with ``y = A_t^-1 x``, so each frame costs one image remap.
5. **Time.** Each event follows a raised-cosine rise from onset to apex and fall to offset, exactly zero
   outside ``[onset, offset]`` (and at onset and offset themselves). Micro events last at most 0.5 s
   (``(offset - onset + 1) / fps``, so MEGC's onset-to-offset rule holds however it is counted) with
   1-4 px apex amplitude; macro events 0.6-4 s with 4-10 px (ranges for the default 100 px
   inter-ocular distance, scaled with the face size: :func:`amplitude_range`). Sensor noise
   (Gaussian luminance noise per pixel) and brightness flicker (a per-frame gain) come last.

Amplitude means the largest forward displacement on the face at the apex, in pixels of the output
frame, lids included: with several AUs in one event the composite field is scaled so its peak is the
amplitude, and each AU's own peak is reported too. Frame indices are 0-based and inclusive.
"""
from __future__ import annotations

import hashlib
import json
import math
import os
import tempfile
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Sequence

import cv2
import numpy as np

from mevqa.face.landmarks import LANDMARK_GROUPS, detect_landmarks, eye_centres, interocular
from mevqa.io.video import Clip, ClipError, write_clip

__all__ = [
    "AU_SPECS", "EMOTION_AUS", "DEFAULT_PHOTO", "SynthError", "SynthEvent", "SynthConfig", "FaceSetup",
    "EventField", "face_setup", "au_unit_field", "event_field", "temporal_profile", "make_clip",
    "write_synth_set", "demo_clip", "demo_events", "main_synth", "cache_dir", "amplitude_range",
]

DEFAULT_PHOTO = Path(__file__).parent.parent / "assets" / "astronaut.png"
SIDES = ("left", "right", "both")
KINDS = ("micro", "macro")
MICRO_MAX_S = 0.5  # MEGC: micro-expression onset-to-offset <= 0.5 s
MACRO_MIN_S, MACRO_MAX_S = 0.6, 4.0
MICRO_AMPLITUDE, MACRO_AMPLITUDE = (1.0, 4.0), (4.0, 10.0)
NEUTRAL_GAP_S = 0.3  # neutral time kept between drawn events and at the clip ends
IOD_FRACTION = 0.21  # inter-ocular distance / frame height: 100 px at 480 (CASME II-like)


class SynthError(ClipError):
    """Bad input to the synthesiser (one line). A ClipError, so the CLI reports it like any clip error."""


# -- action units as Gaussian bumps on landmark anchors ----------------------------------------
_G = LANDMARK_GROUPS
_UPPER_LIP_SIDE = ((37, 39, 40), (267, 269, 270))
_OUTER_EYE_CORNER = ((33,), (263,))


@dataclass(frozen=True)
class _Bump:
    """A Gaussian bump of displacement: centre = mean of anchor landmarks + offset.

    ``anchor`` is (indices on the subject's right, indices on the left). ``offset``, ``direction``:
    (outward, downward) on the face's axes, outward meaning away from the midline on the AU's side;
    ``offset`` and ``sigma`` (along the eye line, across it) are in inter-ocular distances.
    """

    anchor: tuple[tuple[int, ...], tuple[int, ...]]
    offset: tuple[float, float]
    sigma: tuple[float, float]
    direction: tuple[float, float]
    weight: float = 1.0


@dataclass(frozen=True)
class _Lid:
    """A lid move on the AU's side: ``lid`` "upper"|"lower"; weight > 0 closes the eye, < 0 opens it."""

    lid: str
    weight: float


@dataclass(frozen=True)
class AUSpec:
    code: str
    name: str
    parts: tuple
    midline: bool = False  # a midline AU's one-sided variant is its half on that side


def _sided(name: str) -> tuple[tuple[int, ...], tuple[int, ...]]:
    return _G[f"right_{name}"], _G[f"left_{name}"]


def _mid(name: str) -> tuple[tuple[int, ...], tuple[int, ...]]:
    return _G[name], _G[name]


AU_SPECS: dict[str, AUSpec] = {s.code: s for s in (
    AUSpec("AU1", "inner brow raiser", (
        _Bump(_sided("inner_brow"), (0.0, -0.03), (0.16, 0.09), (0.0, -1.0)),
        _Bump(_sided("inner_brow"), (0.0, -0.22), (0.18, 0.14), (0.0, -1.0), 0.45))),  # forehead follows
    AUSpec("AU2", "outer brow raiser", (
        _Bump(_sided("outer_brow"), (0.02, -0.03), (0.16, 0.09), (0.1, -1.0)),
        _Bump(_sided("outer_brow"), (0.0, -0.22), (0.18, 0.14), (0.0, -1.0), 0.4))),
    AUSpec("AU4", "brow lowerer", (
        _Bump(_sided("brow"), (-0.05, -0.02), (0.20, 0.09), (-0.45, 0.9)),
        _Bump(_sided("inner_brow"), (0.0, 0.0), (0.09, 0.09), (-0.8, 0.6), 0.6),  # drawn together
        _Lid("upper", 0.3))),  # the lowered brow pushes the lid fold down: the eye narrows
    AUSpec("AU5", "upper lid raiser", (_Lid("upper", -1.0),)),
    AUSpec("AU6", "cheek raiser", (
        _Bump(_sided("cheek"), (0.0, -0.05), (0.20, 0.16), (0.1, -1.0)),
        _Bump(_OUTER_EYE_CORNER, (0.12, 0.02), (0.07, 0.09), (-1.0, -0.2), 0.35),  # crow's feet bunching
        _Lid("lower", 0.35))),  # lower-lid bulge
    AUSpec("AU7", "lid tightener", (
        _Lid("lower", 1.0), _Lid("upper", 0.25),
        _Bump(_sided("lower_lid"), (0.0, 0.10), (0.16, 0.07), (0.0, -1.0), 0.35))),
    AUSpec("AU9", "nose wrinkler", (
        _Bump(_sided("nose_wing"), (0.0, -0.02), (0.08, 0.10), (-0.15, -1.0)),
        _Bump(_sided("nose_wing"), (-0.02, -0.35), (0.07, 0.12), (0.0, -1.0), 0.6),  # nose-side wrinkle
        _Bump(_UPPER_LIP_SIDE, (0.0, 0.0), (0.12, 0.07), (0.0, -1.0), 0.45),
        _Bump(_sided("inner_brow"), (0.0, 0.0), (0.08, 0.08), (-0.3, 1.0), 0.3))),
    AUSpec("AU10", "upper lip raiser", (
        _Bump(_UPPER_LIP_SIDE, (0.0, 0.0), (0.14, 0.08), (0.0, -1.0)),
        _Bump(_sided("nose_wing"), (0.0, 0.0), (0.08, 0.08), (0.0, -1.0), 0.3),
        _Bump(_sided("nose_wing"), (0.12, 0.10), (0.08, 0.10), (0.0, -1.0), 0.3))),  # nasolabial furrow
    AUSpec("AU12", "lip corner puller", (
        _Bump(_sided("mouth_corner"), (0.01, 0.0), (0.12, 0.11), (0.55, -0.85)),
        _Bump(_sided("cheek"), (0.0, 0.08), (0.20, 0.18), (0.2, -1.0), 0.35))),
    AUSpec("AU14", "dimpler", (
        _Bump(_sided("mouth_corner"), (0.02, 0.0), (0.09, 0.08), (-1.0, -0.1)),
        _Bump(_sided("mouth_corner"), (0.10, 0.0), (0.07, 0.09), (-1.0, 0.0), 0.5))),  # the dimple
    AUSpec("AU15", "lip corner depressor", (
        _Bump(_sided("mouth_corner"), (0.01, 0.02), (0.12, 0.11), (0.2, 1.0)),
        _Bump(_sided("mouth_corner"), (0.03, 0.15), (0.10, 0.10), (0.0, 1.0), 0.4))),
    AUSpec("AU17", "chin raiser", (
        _Bump(_mid("chin"), (0.12, -0.08), (0.20, 0.14), (0.0, -1.0)),
        _Bump(_mid("lower_lip"), (0.10, 0.02), (0.16, 0.07), (0.0, -1.0), 0.5)), midline=True),
    AUSpec("AU20", "lip stretcher", (
        _Bump(_sided("mouth_corner"), (0.02, 0.0), (0.12, 0.10), (1.0, 0.15)),)),
    AUSpec("AU25", "lips part", (  # a warp cannot open a mouth: the lower lip is pulled down, teeth stretch
        _Bump(_mid("lower_lip"), (0.10, 0.06), (0.20, 0.12), (0.0, 1.0)),
        _Bump(_mid("upper_lip"), (0.10, -0.04), (0.20, 0.10), (0.0, -1.0), 0.25)), midline=True),
    AUSpec("AU26", "jaw drop", (
        _Bump(_mid("chin"), (0.12, -0.15), (0.30, 0.25), (0.0, 1.0)),
        _Bump(_mid("lower_lip"), (0.10, 0.0), (0.20, 0.10), (0.0, 1.0), 0.6)), midline=True),
)}

#: Emotion -> AU combinations drawn for random events (MEGC/CASME II-style emotion rules).
EMOTION_AUS: dict[str, tuple[tuple[str, ...], ...]] = {
    "happiness": (("AU6", "AU12"), ("AU12",)),
    "surprise": (("AU1", "AU2"), ("AU1", "AU2", "AU5")),
    "anger": (("AU4", "AU7"), ("AU4",)),
    "disgust": (("AU9",), ("AU10",)),
    "sadness": (("AU1", "AU4", "AU15"),),
    "fear": (("AU1", "AU2", "AU4", "AU5", "AU20"), ("AU1", "AU4", "AU20")),
    "contempt": (("AU14",), ("AU12",)),  # always one-sided
    "repression": (("AU14",), ("AU17",), ("AU14", "AU17")),
}
_ONE_SIDED_EMOTIONS = ("contempt",)
#: AUs drawn alone (emotion None); AU25/AU26 are available to explicit events only.
SINGLE_AUS = ("AU1", "AU2", "AU4", "AU5", "AU6", "AU7", "AU9", "AU10", "AU12", "AU14", "AU15", "AU17", "AU20")

# Eye contours (MediaPipe indices), from the outer corner along the upper lid to the inner corner.
_EYE_UPPER = {"right": (33, 246, 161, 160, 159, 158, 157, 173, 133),
              "left": (263, 466, 388, 387, 386, 385, 384, 398, 362)}
_EYE_LOWER = {"right": (33, 7, 163, 144, 145, 153, 154, 155, 133),
              "left": (263, 249, 390, 373, 374, 380, 381, 382, 362)}
_LID_SKIN_UP, _LID_SKIN_DOWN = 0.14, 0.12  # lid skin heights (in L) that stretch over the eye
_LID_CLOSE_CAP, _LID_OPEN_CAP = 0.6, 0.45  # AU lid moves, as fractions of the eye opening
_BAND = 0.75  # half-width (px) of the coverage band at an occluding lid margin


# -- data classes -------------------------------------------------------------------------------
@dataclass
class SynthEvent:
    """One expression event. Frames are 0-based, inclusive; ``side`` is the subject's own.

    ``amplitude`` is the peak forward displacement at the apex, in output pixels.
    """

    onset: int
    apex: int
    offset: int
    kind: str = "micro"
    aus: tuple[str, ...] = ("AU12",)
    side: str = "both"
    amplitude: float = 2.0
    emotion: str | None = None

    @property
    def n_frames(self) -> int:
        return self.offset - self.onset + 1


@dataclass
class SynthConfig:
    """What :func:`make_clip` makes. ``noise`` is the sensor noise sigma in grey levels; ``flicker`` the
    std of the per-frame brightness gain; ``photo`` a face photo path (None: the bundled astronaut);
    ``iod`` the inter-ocular distance in output pixels (None: 0.21 x the frame height)."""

    width: int = 640
    height: int = 480
    fps: float = 30.0
    seconds: float = 3.0
    n_events: int = 1
    micro_fraction: float = 0.5
    blinks: bool = True
    drift: bool = True
    noise: float = 2.0
    flicker: float = 0.01
    seed: int = 0
    photo: str | os.PathLike | None = None
    iod: float | None = None

    @property
    def n_frames(self) -> int:
        return max(1, int(round(self.seconds * self.fps)))


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


@dataclass
class EventField:
    """An event's displacement at its apex: ``smooth`` (roi h, roi w, 2) forward bump field in pixels,
    ``lids`` {(side, "upper"|"lower"): closing px at the lid centre}, the composite ``peak`` and each
    AU's own ``au_peaks``."""

    smooth: np.ndarray
    lids: dict
    peak: float
    au_peaks: dict
    box: tuple[int, int, int, int] | None = None  # support of ``smooth`` in ROI pixels (x0, y0, x1, y1)

    def full(self, setup: FaceSetup) -> np.ndarray:
        """The smooth forward field on the whole frame (H, W, 2)."""
        w, h = setup.size
        out = np.zeros((h, w, 2), np.float32)
        x0, y0, x1, y1 = setup.roi
        out[y0:y1, x0:x1] = self.smooth
        return out


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


# -- fields -------------------------------------------------------------------------------------
def _roi_grid(setup: FaceSetup):
    if "_grid" not in setup._units:
        x0, y0, x1, y1 = setup.roi
        gy, gx = np.mgrid[y0:y1, x0:x1].astype(np.float32)
        setup._units["_grid"] = (gx, gy)
    return setup._units["_grid"]


def _bump_field(setup: FaceSetup, b: _Bump, side: str) -> np.ndarray:
    gx, gy = _roi_grid(setup)
    L, ex, ey = setup.iod, setup.ex, setup.ey
    out_axis = ex if side == "left" else -ex  # outward = away from the midline on that side
    idx = b.anchor[1 if side == "left" else 0]
    c = setup.landmarks[list(idx)].mean(0) + L * (b.offset[0] * out_axis + b.offset[1] * ey)
    dx, dy = gx - c[0], gy - c[1]
    a = (dx * ex[0] + dy * ex[1]) / (b.sigma[0] * L)
    v = (dx * ey[0] + dy * ey[1]) / (b.sigma[1] * L)
    g = np.exp(-0.5 * (a * a + v * v))
    d = np.asarray(b.direction, np.float32)
    vec = (d[0] * out_axis + d[1] * ey) / max(np.linalg.norm(d), 1e-6)
    return (b.weight * g)[..., None] * vec.astype(np.float32)


def au_unit_field(setup: FaceSetup, code: str, side: str) -> tuple[np.ndarray, dict]:
    """One AU on one side (``"left"``/``"right"``), scaled so its largest displacement is 1 px.

    Returns the forward bump field on ``setup.roi`` (h, w, 2) and its lid closings
    {(side, "upper"|"lower"): px}. Cached in ``setup``.
    """
    if code not in AU_SPECS:
        raise SynthError(f"unknown action unit {code!r} (known: {', '.join(AU_SPECS)})")
    if side not in ("left", "right"):
        raise SynthError(f"side must be 'left' or 'right' here, got {side!r}")
    key = (code, side)
    if key not in setup._units:
        spec = AU_SPECS[code]
        x0, y0, x1, y1 = setup.roi
        smooth = np.zeros((y1 - y0, x1 - x0, 2), np.float32)
        lids: dict = {}
        for part in spec.parts:
            if isinstance(part, _Bump):
                smooth += _bump_field(setup, part, side)
            else:
                lids[(side, part.lid)] = lids.get((side, part.lid), 0.0) + part.weight
        smooth *= setup.protect[..., None]
        peak = max(float(np.sqrt((smooth ** 2).sum(-1)).max()), *[abs(v) for v in lids.values()], 1e-9)
        setup._units[key] = (smooth / peak, {k: v / peak for k, v in lids.items()})
    return setup._units[key]


def _sides(side: str) -> tuple[str, ...]:
    return ("right", "left") if side == "both" else (side,)


def _cap_lids(setup: FaceSetup, lids: dict) -> dict:
    """Keep AU lid moves physiological: never shut the eye, never open it past about half again."""
    out = {}
    for (side, lid), v in lids.items():
        gap = setup.eyes[side].gap_max
        out[(side, lid)] = float(np.clip(v, -_LID_OPEN_CAP * gap, _LID_CLOSE_CAP * gap))
    return out


def event_field(setup: FaceSetup, aus: Sequence[str], side: str, amplitude: float) -> EventField:
    """The apex displacement of AUs ``aus`` on ``side``, scaled so the composite peak is ``amplitude``.

    Lid moves are capped to a fraction of the eye opening (so an AU7 never shuts the eye); when a cap
    bites, ``peak`` reports the smaller displacement that is really shown.
    """
    if side not in SIDES:
        raise SynthError(f"side must be one of {', '.join(SIDES)}, got {side!r}")
    parts = []
    for code in aus:
        sm = None
        lids: dict = {}
        for s in _sides(side):
            f, lf = au_unit_field(setup, code, s)
            sm = f.copy() if sm is None else sm + f
            for k, v in lf.items():
                lids[k] = lids.get(k, 0.0) + v
        parts.append((code, sm, lids))
    smooth = sum(p[1] for p in parts)
    lids_all: dict = {}
    for _, _, lf in parts:
        for k, v in lf.items():
            lids_all[k] = lids_all.get(k, 0.0) + v
    peak = max(float(np.sqrt((smooth ** 2).sum(-1)).max()), *[abs(v) for v in lids_all.values()], 1e-9)
    scale = float(amplitude) / peak
    smooth = (smooth * scale).astype(np.float32)
    # A large amplitude on a narrow bump would crush the skin (and make the warp fold): widen the field
    # until the compression is physiological, keeping the peak. Each AU's share is widened the same way.
    smooth, widen = _limit_strain(setup, smooth)
    if widen:
        parts = [(c, widen(sm), lf) for c, sm, lf in parts]
    lids_all = _cap_lids(setup, {k: v * scale for k, v in lids_all.items()})
    au_peaks = {}
    for code, sm, lf in parts:
        capped = _cap_lids(setup, {k: v * scale for k, v in lf.items()})
        au_peaks[code] = max(float(np.sqrt((sm ** 2).sum(-1)).max()) * scale,
                             *[abs(v) for v in capped.values()], 0.0)
    mag = np.sqrt((smooth ** 2).sum(-1))
    real_peak = max(float(mag.max()), *[abs(v) for v in lids_all.values()], 0.0)
    # Where the field is worth computing (> 0.005 px), padded by the displacement so that the
    # fixed-point inversion never looks outside the box.
    ys, xs = np.nonzero(mag > 0.005)
    box = None
    if len(xs):
        pad = int(np.ceil(mag.max())) + 3
        h, w = mag.shape
        box = (max(0, xs.min() - pad), max(0, ys.min() - pad), min(w, xs.max() + pad + 1), min(h, ys.max() + pad + 1))
    return EventField(smooth, lids_all, real_peak, au_peaks, box)


_GRIDS: dict = {}


def _grid(h: int, w: int):
    if (h, w) not in _GRIDS:
        if len(_GRIDS) > 16:
            _GRIDS.clear()
        gy, gx = np.mgrid[0:h, 0:w].astype(np.float32)
        _GRIDS[(h, w)] = (gx, gy)
    return _GRIDS[(h, w)]


MIN_AREA = 0.35  # smallest local area ratio det(I + grad d) a field may have: skin compressed <= 65%


def _min_area(d: np.ndarray) -> float:
    gy0, gx0 = np.gradient(d[..., 0])
    gy1, gx1 = np.gradient(d[..., 1])
    return float(((1 + gx0) * (1 + gy1) - gy0 * gx1).min())


def _limit_strain(setup: FaceSetup, d: np.ndarray):
    """Blur ``d`` (re-masking the eyes, restoring its peak) until no skin is compressed past MIN_AREA.

    A big amplitude on a narrow bump would crush skin and, past det = 0, fold the warp over itself.
    Returns the field and the widening as a function to apply to parts of it (None if untouched).
    """
    peak = float(np.sqrt((d ** 2).sum(-1)).max())
    if peak == 0 or _min_area(d) >= MIN_AREA:
        return d, None
    best, best_area, best_sigma = d, _min_area(d), 0.0
    sigma = 0.0
    for _ in range(10):
        sigma += 0.02 * setup.iod
        out = _widen(d, sigma, setup.protect, peak)
        area = _min_area(out)
        if area > best_area:
            best, best_area, best_sigma = out, area, sigma
        if area >= MIN_AREA:
            break
    if best_sigma == 0:
        return d, None
    gain = peak / max(float(np.sqrt((_widen(d, best_sigma, setup.protect, None) ** 2).sum(-1)).max()), 1e-9)
    return best, lambda part: _widen(part, best_sigma, setup.protect, None) * gain


def _widen(d: np.ndarray, sigma: float, protect: np.ndarray, peak: float | None) -> np.ndarray:
    out = cv2.GaussianBlur(d, (0, 0), sigma) * protect[..., None]
    if peak is not None:
        out *= peak / max(float(np.sqrt((out ** 2).sum(-1)).max()), 1e-9)
    return out.astype(np.float32)


def _invert(d: np.ndarray, iterations: int = 6) -> np.ndarray:
    """Backward map B with B(x) = -d(x + B(x)): Newton's method on F(B) = B + d(x + B) = 0.

    Plain fixed-point iteration (Chen et al., "A simple fixed-point approach to invert a deformation
    field", Med. Phys. 2008) crawls where skin stretches by ~80% (a strong brow raise over the
    lid); Newton, with the Jacobian I + grad d sampled at x + B, converges in 2-3 steps. It stops
    once a step moves less than 0.005 px.
    """
    gx, gy = _grid(*d.shape[:2])
    gy0, gx0 = np.gradient(d[..., 0])
    gy1, gx1 = np.gradient(d[..., 1])
    jac = np.dstack([gx0, gy0, gx1, gy1]).astype(np.float32)
    b0, b1 = -d[..., 0], -d[..., 1]
    for _ in range(iterations):
        px, py = gx + b0, gy + b1
        dd = cv2.remap(d, px, py, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
        jj = cv2.remap(jac, px, py, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
        r0, r1 = b0 + dd[..., 0], b1 + dd[..., 1]
        a, bq, c, e = 1 + jj[..., 0], jj[..., 1], jj[..., 2], 1 + jj[..., 3]
        det = np.maximum(a * e - bq * c, 0.05)
        s0, s1 = (e * r0 - bq * r1) / det, (a * r1 - c * r0) / det
        b0, b1 = b0 - s0, b1 - s1
        if max(float(np.abs(s0).max()), float(np.abs(s1).max())) < 0.005:
            break
    return np.dstack([b0, b1]).astype(np.float32)


def _piecewise(v, knots_v, knots_s):
    """Evaluate per-pixel piecewise-linear maps (identity outside the first/last knot)."""
    out = v.copy()
    for i in range(len(knots_v) - 1):
        a, b = knots_v[i], knots_v[i + 1]
        sel = (v >= a) & (v < b)
        if not sel.any():
            continue
        span = np.maximum(b - a, 1e-6)
        t = (v - a) / span
        val = knots_s[i] + t * (knots_s[i + 1] - knots_s[i])
        out[sel] = val[sel]
    return out


def _lid_backward(setup: FaceSetup, side: str, close_up: float, close_low: float, blink: float = 0.0):
    """Backward map (box, (h, w, 2)) that moves one eye's lids.

    ``close_up``/``close_low``: AU lid moves in px at the lid centre, positive closing; ``blink``: the
    fraction (0-1) of a blink's closure. A closing lid slides over the eyeball, which stays put and is
    covered; its lash band (the last ~3 px) translates rigidly and only the skin above it stretches,
    so lashes stay thin. An opening lid (AU5) compresses its skin and stretches the eyeball into the
    new opening, a fine approximation for the few pixels an AU5 moves here.
    """
    g = setup.eyes[side]
    L, ex, ey = setup.iod, setup.ex, setup.ey
    x0, y0, x1, y1 = g.box
    gx, gy = _grid(y1 - y0, x1 - x0)
    dx, dy = gx + (x0 - g.centre[0]), gy + (y0 - g.centre[1])
    u = dx * ex[0] + dy * ex[1]
    v = dx * ey[0] + dy * ey[1]
    vu = np.interp(u, g.u, g.v_upper).astype(np.float32)
    vl = np.interp(u, g.u, g.v_lower).astype(np.float32)
    gap = np.maximum(vl - vu, 0)
    prof = np.where((u > g.u[0]) & (u < g.u[-1]), gap / np.float32(g.gap_max), np.float32(0))
    su, sl = close_up * prof, close_low * prof
    if blink > 0:
        # A blink closes onto the lower lid and ~2 px past it, over a span a little wider than
        # FaceMesh's eye corners (which sit inside the visible ones), so no sclera peeks through.
        uc, half = (g.u[0] + g.u[-1]) / 2, (g.u[-1] - g.u[0]) / 2 + 0.03 * L
        shape = np.sqrt(np.clip(1 - ((u - uc) / half) ** 2, 0, 1))
        su = su + blink * (gap + 0.02 * L * shape)
    m, n = vu + su, vl - sl  # new margins
    crossed = m > n
    if crossed.any():  # lids that would cross meet where their moves balance (a blink pushes the lower lid)
        w = np.maximum(su, 0) + np.maximum(sl, 0) + 1e-6
        q = (np.maximum(su, 0) * m + np.maximum(sl, 0) * n) / w
        m, n = np.where(crossed, q, m), np.where(crossed, q, n)
    top, bot = vu - _LID_SKIN_UP * L, vl + _LID_SKIN_DOWN * L
    lash_u, lash_l = 0.06 * L, 0.025 * L
    a, b = np.maximum(m, vu), np.minimum(n, vl)  # the part of the eyeball still shown

    def f_eye(x):
        return a + (x - m) * (b - a) / np.maximum(n - m, 1e-6)

    m2, n1 = m + _BAND, n - _BAND
    squeezed = m2 > n1
    mid = (m + n) / 2
    m2, n1 = np.where(squeezed, mid, m2), np.where(squeezed, mid, n1)
    kv = [top, m - lash_u, m - _BAND, m2, n1, n + _BAND, n + lash_l, bot]
    ks = [top, vu - lash_u, vu - _BAND, f_eye(m2), f_eye(n1), vl + _BAND, vl + lash_l, bot]
    for i in range(1, len(kv)):  # keep the knots ordered in extreme cases
        kv[i] = np.maximum(kv[i], kv[i - 1])
    vs = _piecewise(v, kv, ks)
    shift = (vs - v).astype(np.float32)
    return g.box, shift[..., None] * ey.astype(np.float32)


# -- time ---------------------------------------------------------------------------------------
def temporal_profile(n_frames: int, onset: int, apex: int, offset: int) -> np.ndarray:
    """Raised-cosine rise onset->apex and fall apex->offset; 1 at the apex, 0 at and outside onset/offset."""
    t = np.arange(n_frames, dtype=np.float64)
    p = np.zeros(n_frames)
    if apex > onset:
        r = (t >= onset) & (t <= apex)
        p[r] = 0.5 - 0.5 * np.cos(np.pi * (t[r] - onset) / (apex - onset))
    if offset > apex:
        f = (t >= apex) & (t <= offset)
        p[f] = 0.5 + 0.5 * np.cos(np.pi * (t[f] - apex) / (offset - apex))
    if 0 <= apex < n_frames:
        p[apex] = 1.0
    return p


# -- drawing events, blinks and drift ---------------------------------------------------------
def _draw_aus(rng: np.random.Generator) -> tuple[tuple[str, ...], str | None, str]:
    if rng.random() < 0.25:
        code = str(rng.choice(SINGLE_AUS))
        side = str(rng.choice(["left", "right"])) if rng.random() < 0.4 else "both"
        return (code,), None, side
    emotion = str(rng.choice(list(EMOTION_AUS)))
    options = EMOTION_AUS[emotion]
    aus = options[int(rng.integers(len(options)))]
    if emotion in _ONE_SIDED_EMOTIONS or rng.random() < 0.1:
        side = str(rng.choice(["left", "right"]))
    else:
        side = "both"
    return tuple(aus), emotion, side


def amplitude_range(kind: str, iod: float = 100.0) -> tuple[float, float]:
    """Apex amplitude range in pixels for ``kind``: 1-4 px (micro) and 4-10 px (macro) at an
    inter-ocular distance of 100 px (640x480), scaled with the face so a smaller face moves less."""
    lo, hi = MICRO_AMPLITUDE if kind == "micro" else MACRO_AMPLITUDE
    k = iod / 100.0
    return lo * k, hi * k


def _micro_frames(fps: float) -> int:
    return int(math.floor(MICRO_MAX_S * fps + 1e-9))


def _draw_events(cfg: SynthConfig, rng: np.random.Generator, setup: FaceSetup) -> list[SynthEvent]:
    n, fps, total = cfg.n_events, cfg.fps, cfg.n_frames
    if n == 0:
        return []
    gap = int(math.ceil(NEUTRAL_GAP_S * fps))
    kinds = ["micro" if rng.random() < cfg.micro_fraction else "macro" for _ in range(n)]
    micro_max = _micro_frames(fps)
    micro_min = max(3, min(micro_max, int(round(0.2 * fps))))
    macro_min = max(micro_max + 2, int(math.ceil(MACRO_MIN_S * fps)))
    macro_max = int(math.floor(MACRO_MAX_S * fps))
    free = total - gap * (n + 1)
    lengths = []
    for k in kinds:
        if k == "micro":
            lo, hi = micro_min, max(micro_min, int(math.floor(0.48 * fps)))
            lengths.append(int(rng.integers(lo, min(hi, micro_max) + 1)))
        else:
            length = int(round(rng.uniform(MACRO_MIN_S, min(3.0, MACRO_MAX_S)) * fps))
            lengths.append(min(max(length, macro_min), macro_max))
    if sum(lengths) > free:  # shrink macro events toward their minimum before giving up
        over = sum(lengths) - free
        for i, k in enumerate(kinds):
            if k == "macro" and over > 0:
                cut = min(over, lengths[i] - macro_min)
                lengths[i] -= cut
                over -= cut
        if over > 0:
            raise SynthError(f"{n} events do not fit in {cfg.seconds:g} s with {NEUTRAL_GAP_S:g} s of neutral "
                             "between them; use fewer events or a longer clip")
    slack = free - sum(lengths)
    shares = rng.dirichlet(np.ones(n + 1)) * slack
    extra = np.floor(shares).astype(int)
    extra[: slack - extra.sum()] += 1
    events, t = [], 0
    for i, (k, length) in enumerate(zip(kinds, lengths)):
        t += gap + int(extra[i])
        onset, offset = t, t + length - 1
        span = offset - onset
        apex = onset + int(np.clip(round(rng.uniform(0.35, 0.6) * span), 1, span - 1))
        aus, emotion, side = _draw_aus(rng)
        lo, hi = amplitude_range(k, setup.iod)
        # Lid-only AUs (AU5) are capped by the eye opening: draw within what the face can show.
        hi = min(hi, event_field(setup, aus, side, hi).peak)
        amp = float(rng.uniform(lo, max(lo, hi)))
        events.append(SynthEvent(onset, apex, offset, k, aus, side, round(amp, 2), emotion))
        t = offset + 1
    return events


def _draw_blinks(n_frames: int, fps: float, events: list[SynthEvent], rng: np.random.Generator) -> list[tuple]:
    """Blinks in the neutral stretches, clear of events by >= 0.1 s; about one every 4 s, at least one."""
    margin = max(1, int(round(0.1 * fps)))
    busy = np.zeros(n_frames, bool)
    for e in events:
        busy[max(0, e.onset - margin): e.offset + margin + 1] = True
    want = max(1, int(rng.poisson(0.25 * n_frames / fps)))
    blinks = []
    shortest = max(4, int(math.ceil(0.12 * fps)))
    for _ in range(want):
        length = max(shortest, int(round(rng.uniform(0.12, 0.3) * fps)))
        starts: list[int] = []
        while length >= shortest:  # no room for this one: try a quicker blink
            starts = [s for s in range(1, n_frames - length + 1) if not busy[s: s + length].any()]
            if starts:
                break
            length -= 1
        if not starts:
            break
        s = int(rng.choice(starts))
        closure = float(rng.uniform(0.9, 1.0))
        blinks.append((s, s + length - 1, closure))
        busy[max(0, s - margin): s + length + margin] = True
    return sorted(blinks)


def _drift(n_frames: int, fps: float, rng: np.random.Generator, centre, enabled: bool) -> dict:
    """Slow head drift: steady translation of 1-4 px/s and rotation below 0.8 deg/s, plus a slow sway."""
    t = np.arange(n_frames) / fps
    if not enabled:
        z = np.zeros(n_frames)
        return {"enabled": False, "centre": [float(c) for c in centre], "tx": z, "ty": z, "rotation_deg": z}
    speed, ang = rng.uniform(1.0, 4.0), rng.uniform(0, 2 * np.pi)
    sway, f, ph = rng.uniform(0.3, 1.5, 2), rng.uniform(0.15, 0.5), rng.uniform(0, 2 * np.pi, 3)
    w, rsway = rng.uniform(-0.8, 0.8), rng.uniform(0.05, 0.3)
    tx = speed * np.cos(ang) * t + sway[0] * (np.sin(2 * np.pi * f * t + ph[0]) - np.sin(ph[0]))
    ty = speed * np.sin(ang) * t + sway[1] * (np.sin(2 * np.pi * f * t + ph[1]) - np.sin(ph[1]))
    rot = w * t + rsway * (np.sin(2 * np.pi * f * 0.7 * t + ph[2]) - np.sin(ph[2]))
    return {"enabled": True, "centre": [float(c) for c in centre], "velocity_px_s": [float(speed * np.cos(ang)),
            float(speed * np.sin(ang))], "rotation_deg_s": float(w), "tx": tx, "ty": ty, "rotation_deg": rot}


def _check_config(cfg: SynthConfig) -> None:
    _check_size(cfg.width, cfg.height)
    if not (isinstance(cfg.fps, (int, float)) and 1.0 <= cfg.fps <= 1000.0):
        raise SynthError(f"fps {cfg.fps!r} is out of range (1-1000)")
    if not (0 < cfg.seconds <= 60):
        raise SynthError(f"seconds {cfg.seconds!r} is out of range (0-60)")
    if cfg.n_frames < 4:
        raise SynthError(f"{cfg.seconds:g} s at {cfg.fps:g} fps is fewer than 4 frames")
    if not (isinstance(cfg.n_events, (int, np.integer)) and 0 <= cfg.n_events <= 50):
        raise SynthError(f"n_events {cfg.n_events!r} must be an integer 0-50")
    if not 0 <= cfg.micro_fraction <= 1:
        raise SynthError(f"micro_fraction {cfg.micro_fraction!r} must be within 0-1")
    if not 0 <= cfg.noise <= 50:
        raise SynthError(f"noise {cfg.noise!r} must be within 0-50 grey levels")
    if not 0 <= cfg.flicker <= 0.2:
        raise SynthError(f"flicker {cfg.flicker!r} must be within 0-0.2")


def _check_event(e: SynthEvent, n_frames: int, fps: float, iod: float) -> None:
    where = f"event {e.onset}-{e.offset}"
    for name in ("onset", "apex", "offset"):
        if not isinstance(getattr(e, name), (int, np.integer)):
            raise SynthError(f"{where}: {name} must be an integer frame index")
    if not 0 <= e.onset < e.apex < e.offset <= n_frames - 1:
        raise SynthError(f"{where}: need 0 <= onset < apex < offset <= {n_frames - 1}, got {e.onset}, {e.apex}, {e.offset}")
    if e.kind not in KINDS:
        raise SynthError(f"{where}: kind must be 'micro' or 'macro', got {e.kind!r}")
    dur = e.n_frames / fps
    if e.kind == "micro" and dur > MICRO_MAX_S + 1e-9:
        raise SynthError(f"{where}: a micro event lasts at most {MICRO_MAX_S} s, this one {dur:.3f} s")
    if e.kind == "macro" and not (e.offset - e.onset) / fps > MICRO_MAX_S:
        raise SynthError(f"{where}: a macro event lasts more than {MICRO_MAX_S} s, this one {dur:.3f} s")
    if not e.aus:
        raise SynthError(f"{where}: no action units")
    for code in e.aus:
        if code not in AU_SPECS:
            raise SynthError(f"{where}: unknown action unit {code!r} (known: {', '.join(AU_SPECS)})")
    if e.side not in SIDES:
        raise SynthError(f"{where}: side must be one of {', '.join(SIDES)}, got {e.side!r}")
    if not 0 < e.amplitude <= 0.25 * iod:
        raise SynthError(f"{where}: amplitude {e.amplitude!r} px must be > 0 and <= {0.25 * iod:.0f} (a quarter of the eye distance)")


# -- rendering ------------------------------------------------------------------------------------
def _similarity(centre, tx, ty, rot_deg) -> np.ndarray:
    m = cv2.getRotationMatrix2D((float(centre[0]), float(centre[1])), float(rot_deg), 1.0)
    m[:, 2] += (tx, ty)
    return m.astype(np.float64)


class _Renderer:
    """Per-frame composition: weighted event fields -> backward map -> remap -> gain and noise.

    Only the face box is resampled bicubically (bilinear blurs by an amount that varies with the
    sub-pixel phase, which flow would see as texture change); the background, where only drift acts,
    is warped bilinearly. Bicubic at integer positions returns the exact pixel, so a face box where
    nothing moves is identical to the neutral frame.
    """

    def __init__(self, setup: FaceSetup):
        self.setup = setup
        x0, y0, x1, y1 = setup.roi
        self.roi_shape = (y1 - y0, x1 - x0)
        w, h = setup.size
        self.size = (w, h)
        self.corners = np.float64([[x0, y0], [x1, y0], [x0, y1], [x1, y1]])

    def backward(self, smooth: np.ndarray | None, box, lids: dict):
        """Backward field on the ROI and the ROI sub-box where it is non-zero, or (None, None)."""
        s = self.setup
        x0, y0, x1, y1 = s.roi
        b, boxes = None, []
        if smooth is not None and box is not None:
            b = np.zeros((*self.roi_shape, 2), np.float32)
            bx0, by0, bx1, by1 = box
            b[by0:by1, bx0:bx1] = _invert(smooth[by0:by1, bx0:bx1])
            boxes.append(box)
        for side in ("right", "left"):
            cu, cl = lids.get((side, "upper"), 0.0), lids.get((side, "lower"), 0.0)
            bl = lids.get((side, "blink"), 0.0)
            if abs(cu) < 1e-4 and abs(cl) < 1e-4 and bl < 1e-4:
                continue
            (lx0, ly0, lx1, ly1), f = _lid_backward(s, side, cu, cl, bl)
            if b is None:
                b = np.zeros((*self.roi_shape, 2), np.float32)
            ax0, ay0, ax1, ay1 = max(lx0, x0), max(ly0, y0), min(lx1, x1), min(ly1, y1)
            b[ay0 - y0:ay1 - y0, ax0 - x0:ax1 - x0] += f[ay0 - ly0:ay1 - ly0, ax0 - lx0:ax1 - lx0]
            boxes.append((ax0 - x0, ay0 - y0, ax1 - x0, ay1 - y0))
        if b is None:
            return None, None
        bb = np.array(boxes)
        return b, (int(bb[:, 0].min()), int(bb[:, 1].min()), int(bb[:, 2].max()), int(bb[:, 3].max()))

    def frame(self, b_roi: np.ndarray | None, box, affine: np.ndarray | None) -> np.ndarray:
        """The warped neutral frame (uint8): map(x) = y + B(y), y = A^-1 x."""
        s = self.setup
        base = s.image
        x0, y0, x1, y1 = s.roi
        w, h = self.size
        if affine is None:
            out = base.copy()
            if b_roi is None:
                return out
            bx0, by0, bx1, by1 = box
            gx, gy = _grid(by1 - by0, bx1 - bx0)
            sub = b_roi[by0:by1, bx0:bx1]
            mx = gx + (sub[..., 0] + (x0 + bx0))
            my = gy + (sub[..., 1] + (y0 + by0))
            out[y0 + by0:y0 + by1, x0 + bx0:x0 + bx1] = cv2.remap(base, mx, my, cv2.INTER_CUBIC,
                                                                   borderMode=cv2.BORDER_REFLECT101)
            return out
        out = cv2.warpAffine(base, affine, (w, h), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT101)
        # The face box in the output: the ROI's corners moved by the drift, padded.
        pts = self.corners @ affine[:, :2].T + affine[:, 2]
        ox0, oy0 = (int(max(0, np.floor(pts[:, 0].min()) - 2)), int(max(0, np.floor(pts[:, 1].min()) - 2)))
        ox1, oy1 = (int(min(w, np.ceil(pts[:, 0].max()) + 3)), int(min(h, np.ceil(pts[:, 1].max()) + 3)))
        gx, gy = _grid(oy1 - oy0, ox1 - ox0)
        inv = cv2.invertAffineTransform(affine)
        px, py = gx + ox0, gy + oy0
        mx = (inv[0, 0] * px + inv[0, 1] * py + inv[0, 2]).astype(np.float32)
        my = (inv[1, 0] * px + inv[1, 1] * py + inv[1, 2]).astype(np.float32)
        if b_roi is not None:
            bb = cv2.remap(b_roi, mx - x0, my - y0, cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT, borderValue=0)
            mx += bb[..., 0]
            my += bb[..., 1]
        out[oy0:oy1, ox0:ox1] = cv2.remap(base, mx, my, cv2.INTER_CUBIC, borderMode=cv2.BORDER_REFLECT101)
        return out


def make_clip(config: SynthConfig = SynthConfig(), *, events: Sequence[SynthEvent] | None = None,
              blinks: Sequence[tuple[int, int]] | None = None, name: str | None = None) -> tuple[Clip, dict]:
    """A synthetic clip and its ground truth (a JSON-serialisable dict).

    ``events`` None draws ``config.n_events`` non-overlapping events from :data:`EMOTION_AUS` and
    :data:`SINGLE_AUS`, with >= 0.3 s of neutral between them and at both ends. Given events may
    overlap (a micro-expression inside a macro one). ``blinks`` (onset, offset) pairs replace the
    random blinks of ``config.blinks``. All randomness comes from ``config.seed`` through independent
    streams (events, blinks, drift, noise), so switching drift off leaves the events where they were.
    """
    _check_config(config)
    setup = face_setup(config.photo, width=config.width, height=config.height, iod=config.iod)
    n, fps = config.n_frames, float(config.fps)
    r_ev, r_blink, r_drift, r_noise = (np.random.default_rng(s) for s in np.random.SeedSequence(config.seed).spawn(4))
    if events is None:
        events = _draw_events(config, r_ev, setup)
    else:
        events = [SynthEvent(**asdict(e)) if isinstance(e, SynthEvent) else SynthEvent(**e) for e in events]
        for e in events:
            e.aus = tuple(e.aus)
            _check_event(e, n, fps, setup.iod)
    events = sorted(events, key=lambda e: (e.onset, e.offset))
    if blinks is not None:
        blink_list = []
        for b in blinks:
            on, off = int(b[0]), int(b[1])
            if not 0 <= on < off - 1 < n - 1:
                raise SynthError(f"blink {on}-{off}: need 0 <= onset < offset - 1 < {n - 1}")
            blink_list.append((on, off, 1.0))
    else:
        blink_list = _draw_blinks(n, fps, events, r_blink) if config.blinks else []
    centre = setup.landmarks[list(LANDMARK_GROUPS["nose_ridge"])].mean(0)
    drift = _drift(n, fps, r_drift, centre, config.drift)

    fields = [event_field(setup, e.aus, e.side, e.amplitude) for e in events]
    profiles = [temporal_profile(n, e.onset, e.apex, e.offset) for e in events]
    blink_profiles = []
    for on, off, closure in blink_list:
        apex = on + max(1, int(round(0.35 * (off - on))))  # closing is faster than reopening
        blink_profiles.append((temporal_profile(n, on, min(apex, off - 1), off), closure))

    t = np.arange(n) / fps
    flick = np.zeros(n)
    if config.flicker > 0:  # a slow light wobble plus per-frame jitter, unit variance overall
        f0, ph = r_noise.uniform(0.5, 3.0), r_noise.uniform(0, 2 * np.pi)
        flick = config.flicker * (0.7 * np.sqrt(2) * np.sin(2 * np.pi * f0 * t + ph) + 0.71 * r_noise.standard_normal(n))
    noise_seeds = r_noise.integers(0, 2 ** 31 - 1, n)

    rend = _Renderer(setup)
    w, h = setup.size
    frames = np.empty((n, h, w, 3), np.uint8)
    noise = np.empty((h, w), np.float32)
    for i in range(n):
        smooth, boxes, lids = None, [], {}
        for fld, prof in zip(fields, profiles):
            a = prof[i]
            if a <= 0:
                continue
            if fld.box is not None:
                smooth = fld.smooth * a if smooth is None else smooth + fld.smooth * a
                boxes.append(fld.box)
            for k, v in fld.lids.items():
                lids[k] = lids.get(k, 0.0) + v * a
        for prof, closure in blink_profiles:
            a = prof[i]
            if a > 0:
                for side in ("right", "left"):
                    k = (side, "blink")
                    lids[k] = min(1.0, lids.get(k, 0.0) + a * closure)
        box = None
        if boxes:
            bb = np.array(boxes)
            box = (bb[:, 0].min(), bb[:, 1].min(), bb[:, 2].max(), bb[:, 3].max())
        b, bbox = rend.backward(smooth, box, lids)
        aff = _similarity(centre, drift["tx"][i], drift["ty"][i], drift["rotation_deg"][i]) if config.drift else None
        img = rend.frame(b, bbox, aff)
        gain = 1.0 + float(flick[i])
        if config.noise > 0:
            # Luminance noise (one field for R, G and B): after demosaicing and chroma denoising, camera
            # noise is mostly luminance; one channel also costs a third of three.
            cv2.setRNGSeed(int(noise_seeds[i]))  # OpenCV's generator: ~3x faster than numpy's here
            cv2.randn(noise, 0.0, float(config.noise))
            frames[i] = cv2.addWeighted(img, gain, cv2.cvtColor(noise, cv2.COLOR_GRAY2RGB), 1.0, 0.0, dtype=cv2.CV_8U)
        elif gain != 1.0:
            frames[i] = cv2.convertScaleAbs(img, alpha=gain)  # uint8 input: abs is a no-op
        else:
            frames[i] = img

    clip_name = name or f"synth_seed{config.seed}"
    gt = {
        "clip": clip_name,
        "fps": fps,
        "n_frames": n,
        "width": w,
        "height": h,
        "photo": setup.photo if setup.photo == "<array>" else _display_path(setup.photo),
        "seed": int(config.seed),
        "iod": round(setup.iod, 2),
        "events": [{
            "onset": int(e.onset), "apex": int(e.apex), "offset": int(e.offset), "kind": e.kind,
            "aus": [{"code": c, "side": e.side, "peak": round(fld.au_peaks[c], 3)} for c in e.aus],
            "emotion": e.emotion, "amplitude": round(fld.peak, 3),
        } for e, fld in zip(events, fields)],
        "blinks": [{"onset": int(on), "offset": int(off)} for on, off, _ in blink_list],
        "drift": {k: ([round(float(x), 4) for x in v] if isinstance(v, np.ndarray) else v) for k, v in drift.items()},
        "noise": float(config.noise),
        "flicker": float(config.flicker),
        # Everything make_clip needs to render this clip again: with events=None the same events and
        # blinks are drawn; given events and blinks are the ones listed above.
        "config": {**asdict(config), "photo": None if config.photo is None else
                   (str(config.photo) if not isinstance(config.photo, np.ndarray) else "<array>")},
    }
    clip = Clip(frames, fps, clip_name, meta={"synthetic": True, "ground_truth": gt})
    return clip, gt


def _display_path(p: str) -> str:
    """The bundled photo by its package-relative name, so ground truth does not leak install paths."""
    try:
        return str(Path(p).resolve().relative_to(Path(__file__).resolve().parent.parent.parent))
    except ValueError:
        return p


# -- sets, demo, CLI ----------------------------------------------------------------------------
def write_synth_set(out_dir, n: int = 20, *, seed: int = 0, fmt: str = "mp4", fps: float | Sequence[float] = (30.0, 200.0),
                    width: int = 640, height: int = 480, photo=None, progress=None) -> list[Path]:
    """Write ``n`` clips (mp4 files or CASME II-style frame folders) with ``<name>.json`` ground truth
    and an ``index.json``; returns the clip paths.

    The set is a seeded mix: frame rates alternate through ``fps``; 30-fps-like clips last 3-6 s with
    1-3 events, high-speed clips 1.5-2.5 s with 1-2; about 60% micro events, some one-sided, drift
    and blinks in most clips. Frame folders are named so that :meth:`Clip.load` infers their rate:
    ``img1.jpg...`` (CASME II, 200 fps) at 200 fps, ``1.jpg...`` (CAS(ME)^3, 30 fps) at 30 fps;
    other rates need ``--fps`` from the JSON. ``progress(path, gt)`` is called after each clip.
    """
    if fmt not in ("mp4", "folder"):
        raise SynthError(f"format must be 'mp4' or 'folder', got {fmt!r}")
    if not isinstance(n, (int, np.integer)) or n < 1:
        raise SynthError(f"n must be a positive integer, got {n!r}")
    rates = [float(fps)] if isinstance(fps, (int, float)) else [float(f) for f in fps]
    if not rates:
        raise SynthError("give at least one frame rate")
    out = Path(out_dir).expanduser()
    out.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(np.random.SeedSequence([int(seed), 7919]))
    order = rng.permutation(np.resize(np.arange(len(rates)), n))
    paths, index = [], []
    for i in range(n):
        rate = rates[int(order[i])]
        fast = rate > 60
        seconds = float(np.round(rng.uniform(1.5, 2.5) if fast else rng.uniform(3.0, 6.0), 2))
        n_events = int(rng.integers(1, 3 if fast else 4))
        cfg = SynthConfig(width=width, height=height, fps=rate, seconds=seconds, n_events=n_events,
                          micro_fraction=0.6, blinks=bool(rng.random() < 0.8), drift=bool(rng.random() < 0.8),
                          noise=float(np.round(rng.uniform(1.0, 3.0), 2)), flicker=float(np.round(rng.uniform(0, 0.02), 4)),
                          seed=int(seed) * 1000 + i, photo=photo)
        name = f"synth_{i:03d}"
        for _ in range(5):  # an unlucky draw of long events in a short clip: shorten, then retry
            try:
                clip, gt = make_clip(cfg, name=name)
                break
            except SynthError:
                cfg.n_events = max(1, cfg.n_events - 1)
        else:  # pragma: no cover - one event always fits the clip lengths above
            raise SynthError(f"{name}: cannot place events")
        if fmt == "mp4":
            path = write_clip(clip.frames, out / f"{name}.mp4", fps=rate)
        else:
            path = write_clip(clip.frames, out / name, fps=rate, pattern="img{n}.jpg" if rate >= 100 else "{n}.jpg")
        gt["clip"] = path.name
        (out / f"{name}.json").write_text(json.dumps(gt, indent=1))
        paths.append(path)
        index.append({"name": name, "clip": path.name, "json": f"{name}.json", "fps": rate, "n_frames": gt["n_frames"],
                      "events": [{"kind": e["kind"], "aus": [a["code"] for a in e["aus"]], "side": e["aus"][0]["side"]}
                                 for e in gt["events"]], "blinks": len(gt["blinks"]), "drift": gt["drift"]["enabled"]})
        if progress is not None:
            progress(path, gt)
    evs = [e for c in index for e in c["events"]]
    summary = {"clips": n, "events": len(evs), "micro": sum(e["kind"] == "micro" for e in evs),
               "macro": sum(e["kind"] == "macro" for e in evs), "one_sided": sum(e["side"] != "both" for e in evs),
               "blinks": sum(c["blinks"] for c in index), "with_drift": sum(c["drift"] for c in index),
               "fps": {str(r): sum(c["fps"] == r for c in index) for r in rates}}
    (out / "index.json").write_text(json.dumps({"seed": int(seed), "format": fmt, "width": width, "height": height,
                                                "photo": _display_path(str(photo or DEFAULT_PHOTO)), "summary": summary,
                                                "clips": index}, indent=1))
    return paths


_DEMO_VERSION = 1


def demo_events() -> list[SynthEvent]:
    """The demo's script at 30 fps: a left AU14 (contempt) micro-expression, then a smile with a
    fleeting brow lowering inside it (a hidden negative emotion)."""
    return [
        SynthEvent(33, 39, 45, "micro", ("AU14",), "left", 3.0, "contempt"),
        SynthEvent(57, 72, 108, "macro", ("AU6", "AU12"), "both", 7.0, "happiness"),
        SynthEvent(80, 84, 89, "micro", ("AU4",), "both", 2.5, "anger"),
    ]


def cache_dir() -> Path:
    """mevqa's user cache folder: $XDG_CACHE_HOME/mevqa, else ~/.cache/mevqa."""
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "mevqa"


def demo_clip() -> tuple[Clip, dict]:
    """THE built-in demo: 4 s, 30 fps, 640x480, the bundled photo; neutral start, a blink (frames
    18-24), a left contempt micro-expression, then a smile hiding a micro brow lowering.

    Rendered once and cached as ``demo_v1.mp4`` + ``.json`` under :func:`cache_dir` (regenerated when
    missing or unreadable), so the app shows the same compressed pixels every time. Where the cache
    cannot be written the in-memory clip is returned.
    """
    folder = cache_dir() / "demo"
    mp4, js = folder / f"demo_v{_DEMO_VERSION}.mp4", folder / f"demo_v{_DEMO_VERSION}.json"
    if mp4.is_file() and js.is_file():
        try:
            gt = json.loads(js.read_text())
            clip = Clip.load(mp4)
            if clip.n_frames == gt["n_frames"]:
                clip.meta.update(synthetic=True, ground_truth=gt)
                return clip, gt
        except (OSError, ValueError, KeyError):
            pass  # a broken cache: make it again
    cfg = SynthConfig(width=640, height=480, fps=30.0, seconds=4.0, blinks=True, drift=True, noise=1.5,
                      flicker=0.005, seed=2025)
    clip, gt = make_clip(cfg, events=demo_events(), blinks=[(18, 24)], name=mp4.name)
    try:
        folder.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryDirectory(dir=folder) as tmp:  # write aside, then rename: no torn cache
            tmp_mp4 = write_clip(clip.frames, Path(tmp) / mp4.name, fps=cfg.fps)
            (Path(tmp) / js.name).write_text(json.dumps(gt, indent=1))
            os.replace(tmp_mp4, mp4)
            os.replace(Path(tmp) / js.name, js)
        loaded = Clip.load(mp4)
        loaded.meta.update(synthetic=True, ground_truth=gt)
        return loaded, gt
    except (OSError, ClipError):
        return clip, gt


def _describe(gt: dict) -> str:
    evs = "; ".join(f"{e['kind']} {'+'.join(a['code'] for a in e['aus'])}({e['aus'][0]['side']}) "
                    f"{e['onset']}-{e['offset']}" for e in gt["events"]) or "none"
    return f"{gt['fps']:g} fps, {gt['n_frames']} frames, events: {evs}; blinks: {len(gt['blinks'])}"


def main_synth(out_dir, *, n: int = 20, seed: int = 0, fmt: str = "mp4", fps: float | Sequence[float] = (30.0, 200.0),
               photo=None, width: int = 640, height: int = 480) -> list[Path]:
    """``mevqa synth OUT_DIR``: write a synthetic set and print one line per clip."""
    def report(path: Path, gt: dict) -> None:
        print(f"wrote {path}  ({_describe(gt)})", flush=True)

    paths = write_synth_set(out_dir, n, seed=seed, fmt=fmt, fps=fps, width=width, height=height, photo=photo,
                            progress=report)
    print(f"ground truth: {Path(out_dir) / 'index.json'}", flush=True)
    return paths
