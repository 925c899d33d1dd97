"""Options of the AU detector (:mod:`mevqa.au.detector`); the defaults need no training data.

No threshold here was fitted to a synthetic generator. Each measurement has a floor in physical units and
must also clear ``noise_k`` times the noise measured on a null pair of frames of the same clip (see
:mod:`mevqa.au.features`), so the bar rises by itself on compressed, dim or moving footage.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Mapping


@dataclass(frozen=True)
class AUConfig:
    """Options of the AU detector.

    ``window``: radius of the flow windows around landmarks (IOD). ``apex_seconds``, ``onset_seconds``:
    flow is the mean from the frames (onset - r0 .. onset) to the frames (apex - r1 .. apex + r1), r in
    seconds (at least one frame, frames about 30 a second; :func:`mevqa.au.features.measure`). The onset
    side reaches 0.08 s (two frames at 24-30 fps), the apex side 0.04 s (one): with one frame on both,
    the real test video's readings of one laugh in a mirrored or rescaled copy (apexes a frame apart)
    shared their AU sets at Jaccard 0.72 on average, with these 0.76; wider at the apex (0.125 s) cut
    the second generator's AU micro-F1 from 0.84 to 0.80 (a micro-expression's apex is brief).
    ``flow_floor`` (IOD, 0.003 = 0.23 px in the 224 px crop): the least region displacement read as a
    muscle action, about the sub-pixel accuracy of DIS flow on skin texture; ``thresholds`` overrides
    it per AU. ``noise_k``: every measurement must also exceed this many robust sigmas of the same
    measurement on the null pair (4: about 1 false AU in 15 000 side measurements under Gaussian noise);
    ``null_pairs``: how many 0.1 s null pairs back to back before the onset give the noise (their median).
    ``geometry_floor`` (IOD): landmark changes must exceed about three times the frame-to-frame jitter
    of the Face Landmarker's landmarks on a still face (~1 px = 0.013 IOD).
    ``blend_change``: a blendshape score that changes by this much from onset to apex is the action
    (the scores of a still face jitter by a few hundredths). ``blend_state``: a score at least this high
    at the apex is the action held (the model's own decision boundary, 0.5).
    ``macro_flow`` (IOD, 1.5 px in the crop): region displacements above this are large enough for the
    blendshape model to see, which must then corroborate flow (its AU's score rose from onset to apex by
    ``blend_rise`` and by twice its own noise), else the flow evidence is capped at ``veto_cap``
    thresholds (not present on its own).
    ``weights``: how much each measurement counts when they are fused (see :mod:`mevqa.au.rules`).
    ``asymmetry_ratio``: weaker side / stronger side below this, with the weaker side under its own threshold
    (an action on both halves is bilateral, however asymmetric) -> a one-sided AU, and only when the stronger
    side also exceeds the weaker by ``side_margin`` thresholds (1: the difference between the halves must
    itself be as large as a detection; with ``asymmetry_ratio`` 0.5 it binds for AUs under two thresholds): a side is a measurement too, and a near-symmetric action whose halves differ by
    less than the noise (or than a mirrored copy of the same face reads them) is "both", not a side that
    flips with the noise.
    ``jaw_coupling``: where on the mouth midline (0 = upper lip, 1 = lower lip) lip corners are
    measured from, so an opening jaw does not read as corners moving down.
    ``full_scale``: evidence (in thresholds) that maps to intensity 1.0.
    ``model_path``: a :class:`mevqa.au.linear.LinearAUModel` (JSON or .npz) that replaces the rules' scores.
    """

    flow_method: str = "dis"
    window: float = 0.05
    apex_seconds: float = 0.04
    onset_seconds: float = 0.08
    flow_floor: float = 0.003
    thresholds: Mapping[str, float] = field(default_factory=dict)
    noise_k: float = 4.0
    null_pairs: int = 3
    geometry_floor: float = 0.04
    blend_change: float = 0.15
    blend_state: float = 0.5
    macro_flow: float = 0.02
    blend_rise: float = 0.01
    veto_cap: float = 0.9
    weights: Mapping[str, float] = field(default_factory=lambda: dict(DEFAULT_WEIGHTS))
    asymmetry_ratio: float = 0.5
    side_margin: float = 1.0
    jaw_coupling: float = 0.4
    full_scale: float = 8.0
    model_path: str | None = None

    def threshold(self, code: str) -> float:
        """The flow floor of one AU (IOD)."""
        return float(self.thresholds.get(code, self.flow_floor))


#: Fusion weights (evidence in units of each measurement's own threshold is multiplied by these; an AU
#: is present when the strongest weighted evidence reaches 1). Flow is the micro-scale signal and counts
#: fully. Landmark geometry and blendshape change count fully too: they carry large motions where flow
#: breaks down (lips parting, teeth appearing). A blendshape *state* at the apex counts at 0.8, so a held
#: expression is reported only when the model is clearly above its boundary (score >= 0.5 / 0.8 = 0.625):
#: it says what the face shows, not what moved.
DEFAULT_WEIGHTS: dict[str, float] = {"flow": 1.0, "geometry": 1.0, "blendshape change": 1.0, "blendshape state": 0.8}
