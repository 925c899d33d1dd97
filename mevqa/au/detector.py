"""Action units (FACS) between an onset and an apex frame: measurements, fused rules, occlusion.

The detector reads muscle actions, not spill-over: an AU is present when its own region moves in its
muscle's direction relative to its neighbourhood, after the one head-motion model
(:mod:`mevqa.motion.head`), by more than the noise measured on a null pair of frames of the same clip
(:mod:`mevqa.au.features`); flow (the micro scale) is fused with landmark geometry and the Face
Landmarker's blendshapes (the macro scale) with documented weights (:mod:`mevqa.au.rules`,
:mod:`mevqa.au.config`). AUs in a region the front end reports occluded are withheld, with the reason.

Sides are the **subject's own** left and right (the convention of :mod:`mevqa.face.landmarks` and of
MEGC's "Is the action unit ... located on the left or right face?"): a smile on the subject's left half
is on the image's right in an unmirrored video.
"""
from __future__ import annotations

from typing import Iterable

import numpy as np

from mevqa.au.config import DEFAULT_WEIGHTS, AUConfig
from mevqa.au.features import BLENDSHAPE_AUS, GEOMETRY_AUS, AUFeatures, measure
from mevqa.au.linear import LinearAUModel, fit_linear
from mevqa.au.results import (AU_CODES, MIDLINE_AUS, AUActivation, AUError, AUResult, NoIntervalError,
                              intensity_letter)
from mevqa.au.rules import decide_aus
from mevqa.io.video import Clip
from mevqa.spot.spotter import spot

__all__ = [
    "AU_CODES", "MIDLINE_AUS", "GEOMETRY_AUS", "BLENDSHAPE_AUS", "DEFAULT_WEIGHTS", "OCCLUDED_AUS", "AUConfig",
    "AUActivation", "AUResult", "AUFeatures", "AUError", "NoIntervalError", "LinearAUModel", "au_features",
    "decide_aus", "detect_aus", "detect_aus_clip", "fit_linear", "intensity_letter", "occluded_aus",
]

#: Face regions a front end may report occluded -> the AUs read there (withheld while it is covered).
OCCLUDED_AUS: dict[str, tuple[str, ...]] = {
    "mouth": ("AU10", "AU12", "AU14", "AU15", "AU17", "AU20", "AU25", "AU26"),
    "lower_face": ("AU9", "AU10", "AU12", "AU14", "AU15", "AU17", "AU20", "AU25", "AU26"),
    "nose": ("AU9",),
    "eyes": ("AU5", "AU6", "AU7", "AU43"),
    "left_eye": ("AU5", "AU6", "AU7", "AU43"),
    "right_eye": ("AU5", "AU6", "AU7", "AU43"),
    "brows": ("AU1", "AU2", "AU4"),
    "upper_face": ("AU1", "AU2", "AU4", "AU5", "AU6", "AU7", "AU43"),
    "face": AU_CODES,
}


def _frames(front, onset: int, apex: int) -> tuple[int, int]:
    if onset is None or apex is None:
        raise AUError("give both onset and apex frames")
    n = front.clip.n_frames
    for name, f in (("onset", onset), ("apex", apex)):
        if not 0 <= int(f) < n:
            raise AUError(f"{name} frame {f} is outside the clip (0..{n - 1})")
    if apex < onset:
        raise AUError(f"apex frame {apex} comes before onset frame {onset}")
    return front.to_analysis(int(onset)), front.to_analysis(int(apex))


def _get(item, *names):
    for n in names:
        v = item.get(n) if isinstance(item, dict) else getattr(item, n, None)
        if v is not None:
            return v
    return None


def occluded_aus(front, onset: int, offset: int, *, regions: Iterable[str] = (),
                 share: float = 0.5) -> dict[str, str]:
    """AU code -> reason for the AUs whose region is occluded between clip frames ``onset`` and ``offset``.

    ``regions`` names occluded regions outright. The front end's own reading is
    :attr:`mevqa.motion.frontend.FrontEnd.occlusion` (per region a mask of analysis frames, from
    :func:`mevqa.face.occlusion.detect_occlusions`): a region counts when it is covered in at least ``share``
    of the frames from ``onset`` to ``offset`` (most of them: a hand that covers the mouth is there for
    seconds, while the occlusion detector's own false alarms, lip landmarks shaking in a fast laugh at a
    low frame rate or JPEG blocks, come in short stretches that would otherwise withhold a laugh's AUs). Front ends that report stretches instead (``occlusions``: items with a ``region``
    and ``start``/``end`` clip frames or ``t_start``/``t_end`` seconds) are read too.
    """
    found = {r: f"{r.replace('_', ' ')} occluded" for r in regions}
    fps = front.clip.fps
    masks = getattr(front, "occlusion", None)
    if isinstance(masks, dict):
        lo, hi = front.to_analysis(int(onset)), front.to_analysis(int(offset))
        for region, mask in masks.items():
            part = np.asarray(mask, bool)[lo:hi + 1]
            if part.size and part.mean() >= share:
                t = np.flatnonzero(np.asarray(mask, bool)[lo:hi + 1])
                found.setdefault(region, f"{region} occluded {front.to_clip(lo + t[0]) / fps:.1f}-"
                                         f"{front.to_clip(lo + t[-1]) / fps:.1f} s")
    for item in getattr(front, "occlusions", None) or []:
        region = _get(item, "region")
        start, end = _get(item, "start", "onset"), _get(item, "end", "offset")
        if start is None and _get(item, "t_start") is not None:
            start, end = float(_get(item, "t_start")) * fps, float(_get(item, "t_end")) * fps
        if region is None or start is None or end is None:
            continue
        if start <= offset and onset <= end:
            found.setdefault(region, f"{region.replace('_', ' ')} occluded {start / fps:.1f}-{end / fps:.1f} s")
    out: dict[str, str] = {}
    for region, why in found.items():
        for code in OCCLUDED_AUS.get(region.replace(" ", "_"), ()):
            out.setdefault(code, why)
    return out


def au_features(front, onset: int, apex: int, *, config: AUConfig = AUConfig()) -> AUFeatures:
    """Measurements between clip frames ``onset`` and ``apex`` (for :func:`mevqa.au.linear.fit_linear`)."""
    i0, i1 = _frames(front, onset, apex)
    return measure(front, i0, i1, config)[0]


def detect_aus(front, onset: int, apex: int, *, config: AUConfig = AUConfig(),
               occluded: Iterable[str] = ()) -> AUResult:
    """Action units between clip frames ``onset`` (neutral) and ``apex`` of a front end.

    ``front`` is a :class:`mevqa.motion.frontend.FrontEnd`; frames are the clip's own 0-based indices
    (mapped to the analysed, possibly subsampled, frames and back). ``occluded`` names regions to treat
    as covered besides those the front end reports (see :func:`occluded_aus`).
    """
    i0, i1 = _frames(front, onset, apex)
    feats, flow = measure(front, i0, i1, config)
    model = LinearAUModel.load(config.model_path) if config.model_path else None
    withheld = occluded_aus(front, int(onset), int(apex), regions=occluded)
    return AUResult(front.clip.source, int(front.to_clip(i0)), int(front.to_clip(i1)),
                    decide_aus(feats, config=config, model=model, withheld=withheld), flow=flow, features=feats,
                    withheld=withheld)


def detect_aus_clip(clip: Clip, *, onset: int | None = None, apex: int | None = None,
                    config: AUConfig = AUConfig(), front=None) -> AUResult:
    """AUs of a clip between ``onset`` and ``apex``; without them, of the strongest spotted interval.

    Raises :class:`NoIntervalError` when the spotter finds nothing to analyse.
    """
    if front is None:
        from mevqa.motion.frontend import run_frontend  # noqa: PLC0415 - MediaPipe is heavy

        front = run_frontend(clip)
    if onset is None or apex is None:
        if (onset is None) != (apex is None):
            raise AUError("give both onset and apex, or neither (then the strongest spotted interval is used)")
        intervals = list(getattr(spot(front), "intervals", []) or [])
        if not intervals:
            raise NoIntervalError(f"{clip.name}: no expression interval was spotted; give --onset and --apex")
        best = max(intervals, key=lambda iv: float(getattr(iv, "score", 0.0) or 0.0))
        onset, apex = int(best.onset), int(best.apex)
    return detect_aus(front, onset, apex, config=config)
