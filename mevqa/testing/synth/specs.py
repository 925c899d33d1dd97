"""Synthetic clips: the action units as displacement specs, emotion combinations, limits and the
event/config dataclasses (see :mod:`mevqa.testing.synth` for how a clip is made)."""
from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from mevqa.face.landmarks import LANDMARK_GROUPS
from mevqa.io.video import ClipError

DEFAULT_PHOTO = Path(__file__).resolve().parents[2] / "assets" / "astronaut.png"
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

