"""AU -> emotion rules (FACS / EMFACS prototypes, CASME II criteria), read over an interval's whole AU set.

Sources
-------
- Friesen & Ekman (1983), *EMFACS-7*, and Ekman & Friesen's prototype tables (as summarised in
  Matsumoto & Ekman, and in the CK+ paper, Lucey et al. 2010, Table 2): AU combinations for the
  basic emotions.
- Yan et al. (2014), *CASME II: An Improved Spontaneous Micro-Expression Database*, PLoS ONE
  9(1), Table 3: the AU criteria the CASME II coders used for happiness, disgust, surprise,
  repression, fear and sadness (e.g. disgust = AU9, AU10 or AU4+AU7; repression = AU15, AU17,
  AU14, AU24 alone or combined).
- Davison et al. (2018), *SAMM*, IEEE T-AFFC: SAMM's emotion labels follow EMFACS (anger =
  AU4+AU7 family, contempt = unilateral AU12/AU14).
- MEGC2025 ME-VQA training files: which fine classes co-occur with which AUs there
  (:data:`MEGC_TRAIN_AU_FINE_COUNTS`).
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Iterable, Mapping

from mevqa.facs.codes import SIDES, FacsError, normalise_au_code
from mevqa.facs.labels import FINE_CLASSES, FINE_TO_COARSE

__all__ = ["EmotionCandidate", "emotion_candidates", "MEGC_TRAIN_AU_FINE_COUNTS", "CONFLICTS", "LAUGHTER_SPILLOVER",
           "laughter"]

#: Clips per (AU name, fine class) in the MEGC2025 training files, CASME II + SAMM together
#: (an AU listed in a clip's AU answer counts once for that clip's fine class). Recomputed from
#: the files by tests/test_facs.py. It tempers the textbook rules where the data disagree:
#: CASME II codes brow lowerer (+ lid tightener) mostly as *disgust* (53 of 56 clips), SAMM
#: codes lid tightener (alone) mostly as *anger*; dimpler is contempt in SAMM but happiness in
#: CASME II; chin raiser / lip corner depressor are CASME II's repression.
MEGC_TRAIN_AU_FINE_COUNTS: dict[str, dict[str, int]] = {
    "brow lowerer": {"disgust": 54, "anger": 21, "repression": 2, "happiness": 1},
    "lid tightener": {"anger": 42, "disgust": 30, "happiness": 3, "surprise": 1, "fear": 1},
    "lip corner puller": {"happiness": 54, "repression": 3, "contempt": 2, "surprise": 1,
                          "disgust": 1, "sadness": 1},
    "chin raiser": {"repression": 19, "contempt": 3, "sadness": 3, "disgust": 2, "happiness": 1,
                    "anger": 1},
    "inner brow raiser": {"surprise": 23, "sadness": 2, "happiness": 1, "disgust": 1},
    "outer brow raiser": {"surprise": 25, "disgust": 1, "happiness": 1},
    "upper lip raiser": {"disgust": 22, "happiness": 1},
    "lip corner depressor": {"repression": 14, "happiness": 4, "sadness": 2},
    "dimpler": {"contempt": 12, "happiness": 4, "surprise": 2, "disgust": 1},
    "nose wrinkler": {"disgust": 13, "anger": 1},
    "upper lid raiser": {"surprise": 11, "disgust": 1, "fear": 1},
    "cheek raiser": {"disgust": 5, "happiness": 5, "anger": 2},
    "eye closure": {"anger": 8},
    "lips part": {"surprise": 3, "fear": 1, "contempt": 1, "happiness": 1, "disgust": 1},
    "jaw drop": {"surprise": 3, "fear": 2, "contempt": 1, "disgust": 1},
    "lip stretcher": {"fear": 7},
    "lip pressor": {"happiness": 2, "surprise": 1, "contempt": 1},
    "jaw clencher": {"fear": 1, "disgust": 1},
    "nostril dilater": {"surprise": 1},
    "lower lip depressor": {"disgust": 1},
    "neck tightener": {"fear": 1},
    "eyes left": {"happiness": 1},
    "nostril compress": {"happiness": 1},
    "tilt right": {"anger": 1},
    "lip tightener": {"anger": 1},
}


@dataclass(frozen=True)
class EmotionCandidate:
    """One emotion a set of AUs suggests, with the rule that fired and the AUs it used."""

    fine: str
    coarse: str
    confidence: float
    rule: str
    aus: tuple[str, ...]


@dataclass(frozen=True)
class _Rule:
    fine: str
    name: str
    strength: float
    all_of: tuple[str, ...] = ()
    # at least one of each inner tuple must be present (e.g. (("AU5", "AU26", "AU27"),))
    any_of: tuple[tuple[str, ...], ...] = ()
    support: tuple[str, ...] = ()          # each present one adds a little confidence
    none_of: tuple[str, ...] = ()          # the rule does not fire when one of these is present
    unilateral: bool = False               # at least one required AU coded on one side only
    bilateral: bool = False                # none of the required AUs coded on one side only
    datasets: Mapping[str, float] | None = None  # per-dataset strength overrides (0: the rule is off)


#: AUs that speak against an emotion wherever they appear in the interval's AU set, with the reason.
#: Each present one multiplies that emotion's confidence by (1 - 0.5 x its score): the reading is made
#: over the whole set, not from the first prototype that matches.
CONFLICTS: dict[str, dict[str, str]] = {
    # EMFACS happiness has no brow lowering and no lip-corner depression; crying faces have both
    # nor eyes held shut: a laugh narrows them with AU6 and lips apart (waived while laughing, see laughter())
    "happiness": {"AU4": "brows lowered", "AU15": "lip corners pulled down", "AU43": "eyes shut",
                  "AU17": "chin raised (sadness, suppression; in no happiness prototype)"},
    # the upper lip lifted over the teeth in a broad smile is no disgust (EMFACS disgust has no AU12)
    "disgust": {"AU12": "lip corners pulled up (a broad smile lifts the upper lip too)"},
    "sadness": {"AU12": "lip corners pulled up"},
    "surprise": {"AU4": "brows lowered",
                 # EMFACS surprise and fear widen the eyes (AU5); eyes held shut under raised brows are crying
                 "AU43": "eyes shut (surprise widens them)", "AU7": "lids tightened (surprise widens the eyes)"},
    "fear": {"AU43": "eyes shut (fear widens them)"},
}

#: Brow, lid and nose AUs a broad laugh drags with it, with the reason (Ekman, Friesen & Hager, *FACS Manual*,
#: 2002, appearance changes of AU6, AU12 and AU26/27): a strong AU12 with AU6 pushes the cheeks up and
#: narrows the eye opening (read as lid tightening or closure), deepens the furrow beside the nose (read as
#: nose wrinkling), and AU6 pulls the brows down slightly at their outer part; the head tilts with the laugh,
#: which moves the brows against the rigid points. While the face laughs (:func:`laughter`) these neither
#: speak against happiness nor, alone or with the laugh's own AUs (:data:`LAUGH_AUS`), make another emotion: their readings are multiplied by
#: ``1 - 0.5 x`` the laugh's score and say so.
LAUGHTER_SPILLOVER: dict[str, str] = {
    "AU1": "brows move with the laugh", "AU2": "brows move with the laugh", "AU4": "brows move with the laugh",
    "AU7": "eyes narrow with the laugh", "AU43": "eyes narrow with the laugh",
    "AU9": "the nasolabial furrow deepens with the laugh",
}

#: The laugh's own AUs (see :func:`laughter`): a reading made of these and spill-over is the laugh.
LAUGH_AUS = frozenset({"AU6", "AU10", "AU12", "AU25", "AU26"})


def laughter(observed: Mapping[str, tuple[str, float]]) -> float:
    """Score in [0, 1] of a laughing face in an AU set (code -> (side, score)), 0 when there is none.

    Laughter is the EMFACS happiness prototype with the lips apart: a bilateral lip corner puller (AU12)
    with lips part or jaw drop (AU25/AU26) and a cheek raiser (AU6) or the upper lip raised over the teeth
    (AU10), and neither a lip corner depressor (AU15) nor a lip stretcher (AU20), which make the mouth of a
    crying face instead. The score is the weakest of AU12, the mouth opening and AU6/AU10. The smile itself
    must be bilateral (a one-sided corner pull is contempt's); AU6 and AU10 may be stronger on one side, as
    they often are in a laugh with the head turned.
    """
    def score(code, *, bilateral=True):
        side, sc = observed.get(code, ("both", 0.0))
        return sc if side == "both" or not bilateral else 0.0
    if any(c in observed for c in ("AU15", "AU20")):
        return 0.0
    return min(score("AU12"), max(score("AU25"), score("AU26")),
               max(score("AU6", bilateral=False), score("AU10", bilateral=False)))


# Strengths are hand-set on a 0-1 scale: 0.85-0.9 for the full EMFACS prototypes, 0.6-0.8 for
# the core pairs, 0.3-0.5 for single AUs that are only indicative. Comments give the evidence.
# dataset names after dropping everything but letters and digits ("CAS(ME)^3" -> "casme3")
_CASME = ("casme2", "casmeii", "casme3", "casmeiii", "casme", "casme2long")
_RULES: tuple[_Rule, ...] = (
    # Happiness: AU6+AU12 (Duchenne smile; EMFACS, CK+), with or without lips part / jaw drop
    # (laughter); AU12 with AU10 is a broad smile showing the upper teeth. AU12 alone is weaker but
    # still the majority reading in MEGC (lip corner puller: 54 of 62 clips happiness).
    _Rule("happiness", "AU6+AU12 (Duchenne smile)", 0.9, all_of=("AU6", "AU12"), support=("AU25", "AU26"),
          bilateral=True),
    _Rule("happiness", "AU12+AU25/AU26 (laughter)", 0.85, all_of=("AU12",), any_of=(("AU25", "AU26"),),
          support=("AU6", "AU10"), bilateral=True),
    _Rule("happiness", "AU12+AU10 (broad smile)", 0.8, all_of=("AU12", "AU10"), support=("AU6", "AU25", "AU26"),
          bilateral=True),
    _Rule("happiness", "AU12 (smile)", 0.65, all_of=("AU12",), support=("AU6", "AU25"), bilateral=True),
    _Rule("happiness", "AU6 alone", 0.3, all_of=("AU6",)),
    # Contempt needs a one-sided AU12 or AU14 (EMFACS; SAMM). SAMM also labels bilateral AU14 contempt
    # (12 of 12 dimpler clips there), so that reading is kept for SAMM only.
    _Rule("contempt", "unilateral AU12/AU14", 0.75, any_of=(("AU12", "AU14"),), unilateral=True,
          none_of=("AU6", "AU25", "AU26")),
    _Rule("contempt", "AU14 (dimpler, SAMM convention)", 0.0, all_of=("AU14",), support=("AU17", "AU24"),
          datasets={"samm": 0.7}),
    _Rule("happiness", "unilateral AU12 (half smile)", 0.4, all_of=("AU12",), unilateral=True),
    # Surprise: AU1+AU2 with AU5 or AU26/27 (EMFACS); AU1+AU2 alone or AU5 alone weaker. Raised brows
    # alone are surprise only on an otherwise open face (Ekman & Friesen, *Unmasking the Face*, 1975: the
    # surprise brow with the eyes and mouth at rest); under eyes held shut (AU43) they are the crying
    # face's raised brows, and these rules do not fire.
    _Rule("surprise", "AU1+AU2+AU5/AU26/AU27", 0.9, all_of=("AU1", "AU2"),
          any_of=(("AU5", "AU26", "AU27"),), none_of=("AU12",)),
    _Rule("surprise", "AU1+AU2 (brows raised)", 0.65, all_of=("AU1", "AU2"), support=("AU25",), none_of=("AU43",)),
    _Rule("surprise", "AU1 or AU2 alone", 0.4, any_of=(("AU1", "AU2"),), none_of=("AU43",)),
    _Rule("surprise", "AU5 (upper lid raiser)", 0.4, all_of=("AU5",), support=("AU26", "AU27")),
    # Fear: AU1+AU2+AU4+AU5+AU20 (+AU26) (EMFACS); AU20 alone is fear in SAMM (7 of 7).
    _Rule("fear", "AU1+AU2+AU4+AU5+AU20", 0.9, all_of=("AU1", "AU2", "AU4", "AU5", "AU20"),
          support=("AU26", "AU25")),
    _Rule("fear", "AU1+AU2+AU4", 0.55, all_of=("AU1", "AU2", "AU4"), support=("AU5", "AU20")),
    _Rule("fear", "AU20 (lip stretcher)", 0.5, all_of=("AU20",), support=("AU5", "AU26"), none_of=("AU12",)),
    # Anger: AU4+AU5+AU7+AU23 (EMFACS); AU4+AU7 the SAMM core (anger), but CASME II's criteria
    # list AU4+AU7 under disgust (Yan et al. 2014, Table 3) and its labels follow that.
    _Rule("anger", "AU4+AU5+AU7+AU23/AU24", 0.9, all_of=("AU4", "AU5", "AU7"),
          any_of=(("AU23", "AU24"),)),
    _Rule("anger", "AU4+AU7 (brows lowered, lids tightened)", 0.6, all_of=("AU4", "AU7"),
          support=("AU23", "AU24", "AU43", "AU17"),
          datasets={"samm": 0.8, **{d: 0.4 for d in _CASME}}),
    _Rule("anger", "AU4 alone", 0.35, all_of=("AU4",), support=("AU23", "AU24"),
          datasets={"samm": 0.5, **{d: 0.25 for d in _CASME}}),
    _Rule("anger", "AU7 alone", 0.35, all_of=("AU7",), support=("AU43", "AU23", "AU24"),
          datasets={"samm": 0.55, **{d: 0.2 for d in _CASME}}),
    # Disgust: AU9 or AU10 without a smile (EMFACS, CASME II), AU4(+AU7) in CASME II's labels.
    _Rule("disgust", "AU9+AU10", 0.85, all_of=("AU9", "AU10"), support=("AU4", "AU17", "AU25"), none_of=("AU12",)),
    _Rule("disgust", "AU9 (nose wrinkler)", 0.75, all_of=("AU9",), support=("AU4", "AU17")),
    _Rule("disgust", "AU10 (upper lip raiser)", 0.7, all_of=("AU10",), support=("AU4", "AU17", "AU25"),
          none_of=("AU12",)),
    _Rule("disgust", "AU4+AU7 (CASME II criterion)", 0.55, all_of=("AU4", "AU7"),
          datasets={"samm": 0.3, **{d: 0.7 for d in _CASME}}),
    _Rule("disgust", "AU4 alone (CASME II criterion)", 0.35, all_of=("AU4",),
          datasets={"samm": 0.2, **{d: 0.5 for d in _CASME}}),
    # Sadness: AU1+AU4+AU15 (+AU17) (EMFACS); the crying face adds closed eyes (AU43) under raised inner
    # brows or a raised chin (AU17) under lowered corners; AU15 alone or AU1+AU4 weaker.
    _Rule("sadness", "AU1+AU4+AU15", 0.85, all_of=("AU1", "AU4", "AU15"), support=("AU17", "AU11")),
    _Rule("sadness", "AU15+AU17 (lowered corners, raised chin)", 0.6, all_of=("AU15", "AU17"), support=("AU1", "AU4")),
    _Rule("sadness", "AU1+AU4 (sad brows)", 0.55, all_of=("AU1", "AU4"), support=("AU15", "AU17", "AU43")),
    _Rule("sadness", "AU1+AU43 (crying: inner brows up, eyes shut)", 0.5, all_of=("AU1", "AU43"),
          support=("AU4", "AU15", "AU17")),
    _Rule("sadness", "AU4+AU43 (crying: brows drawn together, eyes shut)", 0.5, all_of=("AU4", "AU43"),
          support=("AU1", "AU15", "AU17")),
    _Rule("sadness", "AU17+AU43 (crying: chin raised, eyes shut)", 0.5, all_of=("AU17", "AU43"),
          support=("AU1", "AU4", "AU15"), none_of=("AU25", "AU26")),
    # The crying grimace: the lip corners pulled out and up (read as AU12, and a blendshape model scores it a
    # smile) under lowered, knit brows (AU4) with the inner brows raised (AU1) or the corners pulled down
    # (AU15), the chin raised (AU17) or the lips stretched (AU20): EMFACS sadness (1+4+15, 1+4+15+17) and its
    # grimace with 20; no happiness prototype has AU4 (Ekman & Friesen; Matsumoto & Ekman). AU12 is part of the
    # rule, so it does not speak against it; brows that move with a laugh do not make one (see laughter()).
    _Rule("sadness", "AU12 under AU1+AU4 (crying grimace)", 0.75, all_of=("AU1", "AU4", "AU12"),
          support=("AU43", "AU17", "AU15", "AU20")),
    _Rule("sadness", "AU12 with AU4 and AU15/AU17/AU20 (crying grimace)", 0.75, all_of=("AU4", "AU12"),
          any_of=(("AU15", "AU17", "AU20"),), support=("AU1", "AU43")),
    # ... and the grimace read on the mouth and eyes where the brows are not measured as moving (a clip that
    # starts mid-cry, brows already knit at the onset): corners pulled under a raised chin and eyes squeezed
    # shut. Neither AU17 nor closed eyes belong to a smile (CONFLICTS); with lips apart this is no suppression.
    _Rule("sadness", "AU12 with AU17 and AU43 (crying grimace: chin raised, eyes squeezed shut)", 0.7,
          all_of=("AU12", "AU17", "AU43"), support=("AU4", "AU1", "AU15", "AU20", "AU6")),
    _Rule("sadness", "AU6+AU15 (EMFACS sadness)", 0.6, all_of=("AU6", "AU15"), support=("AU1", "AU4", "AU17")),
    _Rule("sadness", "AU15 (lip corner depressor)", 0.4, all_of=("AU15",), support=("AU17", "AU1")),
    # Repression (CASME II only): AU14, AU15, AU17, AU24 alone or combined (Yan et al. 2014).
    _Rule("repression", "AU15+AU17", 0.55, all_of=("AU15", "AU17"),
          datasets={d: 0.7 for d in _CASME}),
    # Suppression keeps the mouth closed (the chin pushes the lower lip up, the lips press, the corners
    # tighten): with the lips apart or the jaw dropped nothing is being held back.
    _Rule("repression", "AU14/AU17/AU24 (suppression)", 0.5, any_of=(("AU14", "AU17", "AU24"),),
          none_of=("AU25", "AU26"), datasets={"samm": 0.2, **{d: 0.6 for d in _CASME}}),
    _Rule("repression", "AU15 (CASME II criterion)", 0.35, all_of=("AU15",),
          datasets={"samm": 0.15, **{d: 0.45 for d in _CASME}}),
)


def _as_observation(item) -> tuple[str, str, float]:
    """(code, side, score) from an AUOccurrence, dict, tuple, object with .code, or a code string."""
    if isinstance(item, str):
        return normalise_au_code(item), "both", 1.0
    if isinstance(item, Mapping):
        code, side, score = item.get("code"), item.get("side", "both"), item.get("score", 1.0)
        if item.get("present") is False:
            score = 0.0
    elif isinstance(item, (tuple, list)):
        if len(item) == 1:
            code, side, score = item[0], "both", 1.0
        elif len(item) == 2:
            (code, side), score = item, 1.0
        elif len(item) == 3:
            code, side, score = item
        else:
            raise FacsError(f"AU observation {item!r} must be (code, side, score)")
    else:
        code = getattr(item, "code", None)
        side = getattr(item, "side", "both")
        score = getattr(item, "score", 1.0)
    if code is None:
        raise FacsError(f"AU observation {item!r} has no code")
    side = side or "both"
    if side not in SIDES:
        raise FacsError(f"AU observation {item!r}: side must be left, right or both")
    score = 1.0 if score is None else float(score)
    if not 0.0 <= score <= 1.0:
        raise FacsError(f"AU observation {item!r}: score must be in [0, 1]")
    return normalise_au_code(code), side, score


def emotion_candidates(aus: Iterable, *, dataset: str | None = None,
                       min_score: float = 0.0) -> list[EmotionCandidate]:
    """Emotions suggested by a set of AUs, best first, one candidate per fine class.

    ``aus`` holds :class:`AUOccurrence` objects, ``(code, side, score)`` tuples, dicts with
    ``code``/``side``/``score`` (``present: False`` zeroes the score), or bare codes (score 1).
    AUs scoring ``<= min_score`` are ignored. The reading is made over the whole AU set: a rule fires
    only when its required AUs are present and none of its excluded ones (``none_of``: AU10 with AU12 is
    a broad smile, not disgust); its confidence is its strength times the weakest required AU's score,
    plus 0.05 per supporting AU (times its score), times ``1 - 0.5 x score`` for each AU of
    :data:`CONFLICTS` that speaks against the emotion (named in ``rule`` after "against:"), capped at 1.
    While the face laughs (:func:`laughter`), the brow, lid and nose AUs of :data:`LAUGHTER_SPILLOVER` do not
    speak against happiness (named after "laughter spill-over:"), and a reading of another emotion made of
    them alone is multiplied by ``1 - 0.5 x`` the laugh's score ("against: laughter").

    ``dataset`` ("samm", "casme2", "casme3") switches to that dataset's coding conventions where
    they differ (see :data:`MEGC_TRAIN_AU_FINE_COUNTS`); None uses EMFACS-centred defaults.
    Rules: Ekman & Friesen EMFACS prototypes and CASME II's AU criteria (module docstring).
    """
    observed: dict[str, tuple[str, float]] = {}
    for item in aus:
        code, side, score = _as_observation(item)
        if score <= min_score:
            continue
        if code in observed:  # same AU twice: keep the higher score, merge the sides
            old_side, old_score = observed[code]
            side = old_side if old_side == side else "both"
            score = max(score, old_score)
        observed[code] = (side, score)
    ds = re.sub(r"[^a-z0-9]", "", str(dataset).lower()) if dataset else None
    laugh = laughter(observed)

    best: dict[str, EmotionCandidate] = {}
    for rule in _RULES:
        used = [c for c in rule.all_of if c in observed]
        if len(used) != len(rule.all_of):
            continue
        ok = True
        for group in rule.any_of:
            present = [c for c in group if c in observed]
            if not present:
                ok = False
                break
            used.append(max(present, key=lambda c: observed[c][1]))
        if not ok:
            continue
        if any(c in observed for c in rule.none_of):
            continue
        sides = [observed[c][0] for c in used]
        if rule.unilateral and not any(s in ("left", "right") for s in sides):
            continue
        if rule.bilateral and any(s in ("left", "right") for s in sides):
            continue
        strength = rule.strength
        if ds and rule.datasets and ds in rule.datasets:
            strength = rule.datasets[ds]
        if strength <= 0:
            continue
        confidence = strength * min(observed[c][1] for c in used)
        support = [c for c in rule.support if c in observed and c not in used]
        confidence += sum(0.05 * observed[c][1] for c in support)
        against = [c for c in CONFLICTS.get(rule.fine, {}) if c in observed and c not in used]
        waived = [c for c in against if laugh > 0 and c in LAUGHTER_SPILLOVER]
        against = [c for c in against if c not in waived]
        for c in against:
            confidence *= 1 - 0.5 * observed[c][1]
        spill = [c for c in used if c in LAUGHTER_SPILLOVER]
        if laugh > 0 and rule.fine != "happiness" and spill and all(c in spill or c in LAUGH_AUS for c in used):
            confidence *= 1 - 0.5 * laugh
            against.append("laughter (AU12+AU25/AU26: " + LAUGHTER_SPILLOVER[spill[0]] + ")")
        confidence = round(min(confidence, 1.0), 4)
        name = rule.name + (f", against: {', '.join(against)}" if against else "")
        name += f", laughter spill-over: {', '.join(waived)}" if waived else ""
        cand = EmotionCandidate(fine=rule.fine, coarse=FINE_TO_COARSE[rule.fine],
                                confidence=confidence, rule=name, aus=tuple(used + support))
        if rule.fine not in best or cand.confidence > best[rule.fine].confidence:
            best[rule.fine] = cand
    # Ties are broken by FINE_CLASSES order so the output is deterministic.
    return sorted(best.values(), key=lambda c: (-c.confidence, FINE_CLASSES.index(c.fine)))
