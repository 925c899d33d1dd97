"""Per-AU decisions from the measurements of :mod:`mevqa.au.features`: fusion, sides and intensity.

Fusion
------
Every measurement is turned into evidence in units of its own threshold: flow over
``max(floor, noise_k x flow noise)``, geometry over ``max(geometry_floor, noise_k x geometry noise)``,
blendshape change over ``max(blend_change, noise_k x blendshape noise)``, blendshape level at the apex
over ``blend_state`` (its highest level from onset to apex, and only where that level is ``blend_change``
above the clip's resting level: the resting face's own slight smile is not an action, a broad laugh already
under way at the onset is), lips held apart from onset to apex (above the clip's resting gap) over the
geometry threshold for AU25. Each is multiplied by its weight (:data:`mevqa.au.config.DEFAULT_WEIGHTS`) and the
AU's evidence on a side is the strongest of them: flow sees sub-pixel micro-expressions that blendshapes
miss (a 2 px brow raise changes them by 0.01-0.07), blendshapes and geometry see large actions where flow
breaks down (lips parting over teeth). Where a region moves more than ``macro_flow`` (a displacement the
blendshape model sees) but the AU's blendshape did not rise from onset to apex, the flow evidence is capped below the
threshold (``veto_cap``): the macro-scale model arbitrates spill-over and out-of-plane head motion.
``score = 1 - 2**-evidence`` (0.5 at the threshold), ``present =
score >= 0.5``; ``source`` names the measurement that carried it.

Antagonists
-----------
Some AUs move the same skin in opposite directions and cannot both act on one side at one time:
the lip corner puller (AU12, zygomatic major: corner up and out) and the lip corner depressor (AU15,
depressor anguli oris: corner down), the upper lid raiser (AU5) and eye closure (AU43) (Ekman, Friesen &
Hager, *FACS Manual*, 2002, on each AU's appearance changes). Where both clear their thresholds on a side,
one of them is the other's spill-over (an open laughing mouth drags the lower lip and the flow beside the
corner down): the stronger wins (:data:`ANTAGONISTS`). "Stronger" is read on the macro scale first, the
blendshape level of each from onset to apex (the model sees the whole corner or lid, not a window beside
it), when the two differ by at least ``blend_change``; else the fused evidence decides. The loser's
evidence on that side is capped at ``veto_cap`` and its ``source`` says which AU it yielded to.

Sides and intensity
-------------------
``side`` is "left", "right" or "both" in the subject's own left and right. An AU is one-sided when the
weaker side shows no action of its own (its evidence under the threshold, 1: an AU that clears its threshold
on both halves is bilateral, however asymmetric, as FACS scores it) and is below ``asymmetry_ratio`` times the
stronger side's, **and** the stronger side
exceeds the weaker by at least ``side_margin`` thresholds: evidence is in units of a threshold of at least
four noise sigmas, so the default 1 asks the difference between the halves to be as large as a detection
(with ``asymmetry_ratio`` 0.5 it binds for AUs under two thresholds). Without it, an action barely present on one side and barely absent on
the other is given the side that the noise, the JPEG blocks or the tracker's own left-right asymmetry
favour, and a mirrored copy of the video need not read the other side. ``intensity`` in [0, 1] is
the evidence over ``full_scale`` (8 thresholds = 1.0); :func:`mevqa.au.results.intensity_letter` maps it
to FACS letters A-E in fifths.
"""
from __future__ import annotations

from typing import Mapping

import numpy as np

from mevqa.au.config import AUConfig
from mevqa.au.features import GEOMETRY_AUS, AUFeatures
from mevqa.au.linear import LinearAUModel
from mevqa.au.results import MIDLINE_AUS, AUActivation, AUError
from mevqa.facs.codes import au_name


def _evidence_by_source(feats: AUFeatures, k: int, config: AUConfig) -> dict[str, np.ndarray]:
    """Weighted evidence (right, left) of AU ``k`` from each measurement, in threshold units."""
    code = feats.codes[k]
    w = config.weights
    t_flow = max(config.threshold(code), config.noise_k * feats.noise)
    flow = w.get("flow", 1.0) * feats.flow[k] / t_flow
    if feats.blend is not None and np.isfinite(feats.blend[k]).all():
        # Macro-scale flow needs the macro-scale model's word: a displacement the blendshape model
        # (trained on real faces) would see, with no rise in the AU's blendshape, is another action's
        # spill-over or out-of-plane head motion. Below macro_flow, flow is the only witness.
        silent = np.nanmax(feats.blend[k]) < max(config.blend_rise, 2 * feats.blend_noise)
        big = feats.flow[k] > config.macro_flow
        flow = np.where(big & silent, np.minimum(flow, config.veto_cap), flow)
    out = {"flow": flow}
    if code in GEOMETRY_AUS:
        t_geo = max(config.geometry_floor, config.noise_k * feats.geometry_noise)
        out["geometry"] = w.get("geometry", 1.0) * feats.geometry[k] / t_geo
    if feats.blend is not None and np.isfinite(feats.blend[k]).all():
        t_blend = max(config.blend_change, config.noise_k * feats.blend_noise)
        out["blendshape change"] = w.get("blendshape change", 1.0) * feats.blend[k] / t_blend
    if feats.state is not None and np.isfinite(feats.state[k]).all() and feats.raised is not None \
            and np.isfinite(feats.raised[k]).all():
        # A state counts where the face shows it above the person's own resting level (FACS codes against the
        # neutral face; the resting level is the clip's 5th percentile): a face that rests with a slight smile
        # does not smile in every interval, and a broad laugh already under way at the onset is still on the
        # face. One bar for both sides (a smile held on both sides that grew more on one is still bilateral),
        # and no test of how much it grew between onset and apex: that knife edge (a few hundredths) decided
        # whether a held laugh was read at all, and moved with the frame rate or JPEG noise.
        w_state = w.get("blendshape state", 1.0)
        shown = np.nanmax(feats.raised[k]) >= config.blend_change
        out["blendshape state"] = np.where(shown, w_state * feats.state[k] / config.blend_state, 0.0)
    elif feats.state is not None and np.isfinite(feats.state[k]).all() and feats.grown is not None:
        # measurements without a resting level: the state counts where it grew after the onset
        grew = np.nanmax(feats.grown[k]) >= config.blend_change / 3
        out["blendshape state"] = np.where(grew, w.get("blendshape state", 1.0) * feats.state[k] / config.blend_state, 0.0)
    if code == "AU25" and feats.lips_apart > 0:
        # lips held apart through the interval (their smallest inner gap from onset to apex, over the geometry
        # floor): FACS scores AU25 on the lips being apart, also where they part no further (a laugh under way)
        t_geo = max(config.geometry_floor, config.noise_k * feats.geometry_noise)
        out["lips held apart"] = np.full(2, w.get("blendshape state", 1.0) * feats.lips_apart / t_geo)
    return out


#: Pairs of AUs that pull the same skin in opposite directions (see "Antagonists" above).
ANTAGONISTS: tuple[tuple[str, str], ...] = (("AU12", "AU15"), ("AU5", "AU43"))


def _resolve_antagonists(feats: AUFeatures, evidence: dict[str, np.ndarray], config: AUConfig) -> dict[str, str]:
    """Cap the weaker of each antagonist pair on the sides where both are present (in place); returns
    code -> the AU it yielded to."""
    lost: dict[str, str] = {}
    for a, b in ANTAGONISTS:
        if a not in evidence or b not in evidence:
            continue
        ka, kb = feats.codes.index(a), feats.codes.index(b)
        for j in range(2):
            ea, eb = float(evidence[a][j]), float(evidence[b][j])
            if ea < 1.0 or eb < 1.0:
                continue
            winner = a if ea >= eb else b
            if feats.state is not None and np.isfinite(feats.state[[ka, kb], j]).all():
                sa, sb = float(feats.state[ka, j]), float(feats.state[kb, j])
                if abs(sa - sb) >= config.blend_change:
                    winner = a if sa > sb else b
            loser = b if winner == a else a
            evidence[loser][j] = min(float(evidence[loser][j]), config.veto_cap)
            lost[loser] = winner
    return lost


def decide_aus(feats: AUFeatures, *, config: AUConfig = AUConfig(), model: LinearAUModel | None = None,
               withheld: Mapping[str, str] | None = None) -> list[AUActivation]:
    """Per-AU decisions (present, score, side, intensity, source) from measurements: the fused rules, or
    ``model``'s probabilities for present/score when given (side and intensity always come from the
    rules). AUs named in ``withheld`` (code -> reason, e.g. "mouth occluded") are never present."""
    withheld = dict(withheld or {})
    probs = None
    if model is not None:
        x = feats.vector(config)
        if len(x) != len(model.feature_names):
            raise AUError(f"the AU model expects {len(model.feature_names)} features, these measurements have {len(x)}")
        probs = dict(zip(model.codes, model.predict_proba(x[None])[0]))
    sources = {code: _evidence_by_source(feats, k, config) for k, code in enumerate(feats.codes)}
    fused = {code: np.stack(list(s.values())).max(axis=0) for code, s in sources.items()}
    lost = _resolve_antagonists(feats, fused, config)
    out = []
    for k, code in enumerate(feats.codes):
        by_source = sources[code]
        stacked = np.stack(list(by_source.values()))
        ev = fused[code]
        right, left = float(ev[0]), float(ev[1])
        e = max(right, left)
        source = list(by_source)[int(np.argmax(stacked[:, int(np.argmax(stacked.max(axis=0)))]))]
        if code in lost:
            source += f" (yields to {lost[code]}, its antagonist)"
        score = 1.0 - 2.0 ** -max(e, 0.0)
        if probs is not None and code in probs:
            score = float(probs[code])
        reason = withheld.get(code, "")
        present = score >= 0.5 and not reason
        side = "both"
        if code not in MIDLINE_AUS:
            lo, hi = sorted((max(right, 0.0), max(left, 0.0)))
            if hi > 0 and lo < min(1.0, config.asymmetry_ratio * hi) and hi - lo >= config.side_margin:
                side = "left" if left > right else "right"
        intensity = min(1.0, max(e, 0.0) / config.full_scale) if present else 0.0
        out.append(AUActivation(code, au_name(code), side, round(intensity, 4), round(score, 4), bool(present),
                                round(left, 4), round(right, 4), source, reason))
    return out
