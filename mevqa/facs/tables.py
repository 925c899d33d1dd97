"""FACS knowledge: action-unit codes and names, AU strings from coding sheets, label sets, emotion rules.

Sources
-------
- Ekman, Friesen & Hager (2002), *Facial Action Coding System: Manual*: AU numbers, names, the L/R
  laterality prefixes and the A-E intensity suffixes used by the datasets' coders.
- Friesen & Ekman (1983), *EMFACS-7*, and Ekman & Friesen's prototype tables (as summarised in
  Matsumoto & Ekman, and in the CK+ paper, Lucey et al. 2010, Table 2): AU combinations for the
  basic emotions.
- Yan et al. (2014), *CASME II: An Improved Spontaneous Micro-Expression Database*, PLoS ONE
  9(1), Table 3: the AU criteria the CASME II coders used for happiness, disgust, surprise,
  repression, fear and sadness (e.g. disgust = AU9, AU10 or AU4+AU7; repression = AU15, AU17,
  AU14, AU24 alone or combined).
- Davison et al. (2018), *SAMM*, IEEE T-AFFC: SAMM's emotion labels follow EMFACS (anger =
  AU4+AU7 family, contempt = unilateral AU12/AU14).
- MEGC2025 ME-VQA training files (``me_vqa_casme2_train.jsonl``, ``me_vqa_samm_casme2_smic_train.jsonl``):
  the exact AU names used in the answers, the fine/coarse label sets and the fine -> coarse map
  (:data:`MEGC_TRAIN_AU_FINE_COUNTS` records which fine classes co-occur with which AUs there).
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Iterable, Mapping

__all__ = [
    "FacsError", "UnknownActionUnitError", "AUStringError", "UnknownLabelError",
    "ActionUnit", "ACTION_UNITS", "MEGC_AU_NAMES", "AU_ALIASES",
    "au_by_name", "au_name", "normalise_au_code", "find_au",
    "AUOccurrence", "parse_au_string", "format_au_string",
    "COARSE_CLASSES", "FINE_CLASSES", "FINE_TO_COARSE", "valence",
    "normalise_fine_label", "normalise_coarse_label",
    "EmotionCandidate", "emotion_candidates", "MEGC_TRAIN_AU_FINE_COUNTS",
]


# --------------------------------------------------------------------------------------------
# Errors: every bad input is a ValueError subclass with a one-line, actionable message.
# --------------------------------------------------------------------------------------------
class FacsError(ValueError):
    """Base class for FACS lookup and parsing errors."""


class UnknownActionUnitError(FacsError):
    """An AU code or name that is not in :data:`ACTION_UNITS`."""


class AUStringError(FacsError):
    """A coding-sheet AU string that cannot be parsed."""


class UnknownLabelError(FacsError):
    """An emotion label outside the MEGC label sets."""


# --------------------------------------------------------------------------------------------
# Action units
# --------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class ActionUnit:
    """One FACS action unit.

    ``name`` is spelled exactly as the MEGC2025 ME-VQA answers spell it where the AU occurs there
    (e.g. "eye closure" for AU43, "nostril dilater" for AU38, "tilt right" for AU56); other AUs use
    the FACS 2002 name in lower case. ``region`` is "upper", "lower", "head", "eyes" or "misc";
    ``lateral`` says whether FACS codes the action per side (L/R prefixes), which head and eye
    positions are not.
    """

    code: str
    number: int
    name: str
    region: str = "misc"
    lateral: bool = True


def _au(number: int, name: str, region: str, lateral: bool = True) -> ActionUnit:
    return ActionUnit(code=f"AU{number}", number=number, name=name, region=region, lateral=lateral)


# FACS 2002 numbering. AU3 does not exist in FACS; 40, 47-50 and 59-60 are unused.
# Head (51-58) and eye (61-64) position codes are named the way MEGC names the two that occur
# ("tilt right" = AU56 head tilt right, "eyes left" = AU61 eyes turn left): the word "head"/"turn"
# is dropped. Note: AU52 is *head turn right*, not tilt; the tilt codes are AU55/AU56.
_AU_TABLE: tuple[ActionUnit, ...] = (
    _au(1, "inner brow raiser", "upper"),
    _au(2, "outer brow raiser", "upper"),
    _au(4, "brow lowerer", "upper"),
    _au(5, "upper lid raiser", "upper"),
    _au(6, "cheek raiser", "upper"),
    _au(7, "lid tightener", "upper"),
    _au(8, "lips toward each other", "lower"),
    _au(9, "nose wrinkler", "lower"),
    _au(10, "upper lip raiser", "lower"),
    _au(11, "nasolabial deepener", "lower"),
    _au(12, "lip corner puller", "lower"),
    _au(13, "sharp lip puller", "lower"),
    _au(14, "dimpler", "lower"),
    _au(15, "lip corner depressor", "lower"),
    _au(16, "lower lip depressor", "lower"),
    _au(17, "chin raiser", "lower"),
    _au(18, "lip pucker", "lower"),
    _au(19, "tongue show", "misc"),
    _au(20, "lip stretcher", "lower"),
    _au(21, "neck tightener", "misc"),
    _au(22, "lip funneler", "lower"),
    _au(23, "lip tightener", "lower"),
    _au(24, "lip pressor", "lower"),
    _au(25, "lips part", "lower", lateral=False),
    _au(26, "jaw drop", "lower", lateral=False),
    _au(27, "mouth stretch", "lower", lateral=False),
    _au(28, "lip suck", "lower"),
    _au(29, "jaw thrust", "misc", lateral=False),
    _au(30, "jaw sideways", "misc", lateral=False),
    _au(31, "jaw clencher", "misc"),
    _au(32, "lip bite", "misc"),
    _au(33, "cheek blow", "misc"),
    _au(34, "cheek puff", "misc"),
    _au(35, "cheek suck", "misc"),
    _au(36, "tongue bulge", "misc"),
    _au(37, "lip wipe", "misc"),
    _au(38, "nostril dilater", "lower"),
    _au(39, "nostril compress", "lower"),
    _au(41, "lid droop", "upper"),
    _au(42, "slit", "upper"),
    _au(43, "eye closure", "upper"),
    _au(44, "squint", "upper"),
    _au(45, "blink", "upper"),
    _au(46, "wink", "upper"),
    _au(51, "turn left", "head", lateral=False),
    _au(52, "turn right", "head", lateral=False),
    _au(53, "head up", "head", lateral=False),
    _au(54, "head down", "head", lateral=False),
    _au(55, "tilt left", "head", lateral=False),
    _au(56, "tilt right", "head", lateral=False),
    _au(57, "head forward", "head", lateral=False),
    _au(58, "head back", "head", lateral=False),
    _au(61, "eyes left", "eyes", lateral=False),
    _au(62, "eyes right", "eyes", lateral=False),
    _au(63, "eyes up", "eyes", lateral=False),
    _au(64, "eyes down", "eyes", lateral=False),
)

#: AU code ("AU12") -> :class:`ActionUnit`, in FACS number order.
ACTION_UNITS: dict[str, ActionUnit] = {au.code: au for au in _AU_TABLE}

#: The 25 AU names that occur in the MEGC2025 ME-VQA training answers (both files), in the
#: order of first appearance there. The official "absent AU" presence questions draw from this
#: vocabulary (checked: every "no" question in the training files names one of these).
MEGC_AU_NAMES: tuple[str, ...] = (
    "lip corner puller", "brow lowerer", "lid tightener", "upper lip raiser", "inner brow raiser",
    "outer brow raiser", "nose wrinkler", "dimpler", "cheek raiser", "lip corner depressor",
    "lower lip depressor", "chin raiser", "upper lid raiser", "jaw drop", "lips part",
    "nostril dilater", "lip pressor", "lip tightener", "eye closure", "nostril compress",
    "lip stretcher", "jaw clencher", "neck tightener", "eyes left", "tilt right",
)

#: Other spellings a model or a person may use (FACS full names, verb forms, British/US).
AU_ALIASES: dict[str, str] = {
    "inner brow raise": "AU1", "inner brows raised": "AU1", "inner eyebrow raiser": "AU1",
    "outer brow raise": "AU2", "outer eyebrow raiser": "AU2",
    "brow lower": "AU4", "brow lowering": "AU4", "brows lowered": "AU4", "eyebrow lowerer": "AU4",
    "frown": "AU4",
    "upper lid raise": "AU5", "upper eyelid raiser": "AU5",
    "cheek raise": "AU6", "lid tighten": "AU7", "eyelid tightener": "AU7",
    "nose wrinkle": "AU9", "upper lip raise": "AU10",
    "lip corner pull": "AU12", "lip corners puller": "AU12", "smile": "AU12",
    "cheek puffer": "AU13",
    "lip corner depress": "AU15", "lip corners depressor": "AU15",
    "lower lip depress": "AU16", "chin raise": "AU17", "lip stretch": "AU20",
    "lip tighten": "AU23", "lip press": "AU24",
    "lips parted": "AU25", "lips apart": "AU25", "lip part": "AU25", "lips parting": "AU25",
    "jaw dropped": "AU26", "jaw clench": "AU31", "jaw clenched": "AU31",
    "nostril dilator": "AU38", "nostrils dilater": "AU38", "nostril compressor": "AU39",
    "eyes closed": "AU43", "eyes closure": "AU43", "eye closed": "AU43",
    "head turn left": "AU51", "head turn right": "AU52",
    "head tilt left": "AU55", "head tilt right": "AU56",
    "eyes turn left": "AU61", "eyes turn right": "AU62", "eyes turn up": "AU63",
    "eyes turn down": "AU64",
}


def _key(text: str) -> str:
    return " ".join(str(text).lower().replace("-", " ").replace("_", " ").split())


_NAME_INDEX: dict[str, str] = {au.name: au.code for au in _AU_TABLE}
_NAME_INDEX.update({_key(k): v for k, v in AU_ALIASES.items()})

_CODE_RE = re.compile(r"^\s*(?:au)?\s*0*(\d{1,3})\s*$", re.IGNORECASE)


def normalise_au_code(code: str | int) -> str:
    """Canonical code for an AU given as ``"au4"``, ``"4"``, ``"AU04"``, ``4`` -> ``"AU4"``.

    Raises :class:`UnknownActionUnitError` if the number is not a FACS AU.
    """
    if isinstance(code, bool):
        raise UnknownActionUnitError(f"not an action unit code: {code!r}")
    if isinstance(code, float) and code.is_integer():
        code = int(code)
    match = _CODE_RE.match(str(code))
    if not match:
        raise UnknownActionUnitError(f"not an action unit code: {code!r} (expected e.g. 'AU12' or '12')")
    canonical = f"AU{int(match.group(1))}"
    if canonical not in ACTION_UNITS:
        raise UnknownActionUnitError(f"{code!r} is not a FACS action unit (known: AU1-AU64, no AU3)")
    return canonical


def au_by_name(name: str) -> ActionUnit:
    """The AU with this name (MEGC spelling, FACS spelling or a listed alias), case-insensitive.

    A code such as ``"AU12"`` is accepted too.
    """
    key = _key(name)
    if _CODE_RE.match(key):
        return ACTION_UNITS[normalise_au_code(key)]
    try:
        return ACTION_UNITS[_NAME_INDEX[key]]
    except KeyError:
        raise UnknownActionUnitError(
            f"unknown action unit name {name!r} (see mevqa.facs.tables.ACTION_UNITS for names)"
        ) from None


def au_name(code: str | int) -> str:
    """The name of an AU code: ``au_name("AU4") == "brow lowerer"``."""
    return ACTION_UNITS[normalise_au_code(code)].name


def find_au(text: str) -> ActionUnit | None:
    """The AU a short piece of text names (code or name), or None. Never raises."""
    try:
        return au_by_name(text)
    except FacsError:
        return None


# --------------------------------------------------------------------------------------------
# AU strings as coded in the datasets' sheets
# --------------------------------------------------------------------------------------------
SIDES = ("left", "right", "both")


@dataclass(frozen=True)
class AUOccurrence:
    """One AU as coded for one clip.

    ``side`` is "left", "right" or "both" (no prefix means bilateral / unspecified, which the
    datasets code as plain numbers). ``intensity`` is the FACS A-E letter when coded.
    ``uncertain`` marks codes written with "?" or as alternatives ("4/7").
    """

    code: str
    side: str = "both"
    intensity: str | None = None
    uncertain: bool = False

    def __post_init__(self) -> None:
        object.__setattr__(self, "code", normalise_au_code(self.code))
        if self.side not in SIDES:
            raise AUStringError(f"side must be one of {SIDES}, got {self.side!r}")

    @property
    def au(self) -> ActionUnit:
        return ACTION_UNITS[self.code]

    @property
    def name(self) -> str:
        return self.au.name

    @property
    def number(self) -> int:
        return self.au.number


# Token grammar (after upper-casing): optional side prefix L/R (B = bilateral), optional "AU" or
# "A" (an abbreviation some sheets use, e.g. "A1"), 1-2 digit AU number, optional intensity A-E,
# optional side suffix L/R ("12L"), optional "?" (coder unsure).
_TOKEN_RE = re.compile(
    r"^(?P<side>[LRB])?(?:AU|A)?0*(?P<num>\d{1,2})(?P<intensity>[A-E])?(?P<sside>[LR])?(?P<unc>\?+)?$"
)
_EMPTY_AU = {"", "-", "--", "/", "NONE", "NA", "N/A", "NAN", "0", "NULL", "NO"}
_SIDE_LETTER = {"L": "left", "R": "right", "B": "both", None: "both"}


def parse_au_string(s: str | int | float | None) -> list[AUOccurrence]:
    """Parse a coding-sheet AU string into occurrences with laterality.

    Accepts the forms found in CASME II, SAMM, CAS(ME)^3 and MEGC sheets: ``4+7``, ``R12``,
    ``L14``, ``12+L10``, ``AU4+AU7``, ``AU4 + AU7``, ``L2+R2`` (merged into one bilateral AU2),
    ``12?`` (uncertain), ``4/7`` (alternatives: both kept, marked uncertain), ``R4B`` (right AU4 at
    intensity B), ``A1`` (AU1), plain numbers from Excel cells (``12`` or ``12.0``). Separators:
    ``+``, ``,``, ``;``, ``&``, whitespace. Empty cells, "none", "-" give ``[]``.

    The same AU coded twice is merged (left + right -> both); order of first appearance is kept.
    Raises :class:`AUStringError` on a token it cannot read, :class:`UnknownActionUnitError` on a
    number that is not a FACS AU.
    """
    if s is None:
        return []
    if isinstance(s, bool):
        raise AUStringError(f"cannot read AU string {s!r}")
    if isinstance(s, float):
        if s != s:  # NaN from pandas
            return []
        if not s.is_integer():
            raise AUStringError(f"cannot read AU string {s!r}: a decimal number is not an AU list")
        s = int(s)
    text = str(s).strip().upper()
    if text in _EMPTY_AU:
        return []
    # "AU 4" -> "AU4", "L 12" -> "L12"; then split on separators.
    text = re.sub(r"\bAU\s+(?=\d)", "AU", text)
    text = re.sub(r"\b([LRB])\s+(?=(?:AU)?\d)", r"\1", text)
    groups = [g for g in re.split(r"[+,;&\s]+", text) if g]
    found: dict[str, AUOccurrence] = {}
    for group in groups:
        alternatives = group.split("/")
        uncertain_group = len([a for a in alternatives if a]) > 1
        for token in alternatives:
            if not token:
                continue
            occ = _parse_token(token, original=s, uncertain=uncertain_group)
            found[occ.code] = _merge(found.get(occ.code), occ)
    return list(found.values())


def _parse_token(token: str, *, original, uncertain: bool) -> AUOccurrence:
    m = _TOKEN_RE.match(token)
    if not m:
        raise AUStringError(f"cannot read AU token {token!r} in {original!r} (expected e.g. '4', 'L12', 'R4B', 'AU7')")
    if m.group("side") and m.group("sside"):
        raise AUStringError(f"AU token {token!r} in {original!r} gives the side twice")
    side = _SIDE_LETTER[m.group("side") or m.group("sside")]
    number = int(m.group("num"))
    code = f"AU{number}"
    if code not in ACTION_UNITS:
        raise UnknownActionUnitError(f"AU token {token!r} in {original!r}: AU{number} is not a FACS action unit")
    return AUOccurrence(code=code, side=side, intensity=m.group("intensity"),
                        uncertain=uncertain or bool(m.group("unc")))


def _merge(old: AUOccurrence | None, new: AUOccurrence) -> AUOccurrence:
    if old is None:
        return new
    side = old.side if old.side == new.side else "both"
    return AUOccurrence(code=old.code, side=side, intensity=old.intensity or new.intensity,
                        uncertain=old.uncertain or new.uncertain)


def format_au_string(occurrences: Iterable[AUOccurrence]) -> str:
    """Inverse of :func:`parse_au_string` in CASME II style: ``"4+L10+R12B"``."""
    parts = []
    for occ in occurrences:
        prefix = {"left": "L", "right": "R", "both": ""}[occ.side]
        parts.append(f"{prefix}{occ.number}{occ.intensity or ''}{'?' if occ.uncertain else ''}")
    return "+".join(parts)


# --------------------------------------------------------------------------------------------
# Label sets (MEGC2025 ME-VQA)
# --------------------------------------------------------------------------------------------
#: Answers to "What is the coarse expression class?".
COARSE_CLASSES: tuple[str, ...] = ("negative", "positive", "surprise")

#: Answers to "What is the fine-grained expression class?" found in the MEGC2025 training files
#: (CASME II: disgust, happiness, repression, surprise; SAMM: anger, contempt, disgust, fear,
#: happiness, sadness, surprise; SMIC clips carry no fine label). Nothing else is invented.
FINE_CLASSES: tuple[str, ...] = (
    "anger", "contempt", "disgust", "fear", "happiness", "repression", "sadness", "surprise",
)

#: Fine -> coarse exactly as every training clip pairs them (checked over all 278 CASME II and
#: SAMM clips: happiness -> positive, surprise -> surprise, the other six -> negative; note
#: repression is negative here, not "others" as in some 5-class CASME II protocols).
FINE_TO_COARSE: dict[str, str] = {
    "anger": "negative",
    "contempt": "negative",
    "disgust": "negative",
    "fear": "negative",
    "happiness": "positive",
    "repression": "negative",
    "sadness": "negative",
    "surprise": "surprise",
}

_FINE_SYNONYMS: dict[str, str] = {
    "angry": "anger", "anger": "anger", "annoyed": "anger", "annoyance": "anger",
    "contempt": "contempt", "contemptuous": "contempt", "scorn": "contempt",
    "disgust": "disgust", "disgusted": "disgust",
    "fear": "fear", "fearful": "fear", "afraid": "fear", "scared": "fear",
    "happiness": "happiness", "happy": "happiness", "happiest": "happiness", "joy": "happiness",
    "repression": "repression", "repressed": "repression", "repress": "repression",
    "sadness": "sadness", "sad": "sadness", "sorrow": "sadness",
    "surprise": "surprise", "surprised": "surprise",
}
_COARSE_SYNONYMS: dict[str, str] = {
    "negative": "negative", "positive": "positive", "surprise": "surprise", "surprised": "surprise",
}


def normalise_fine_label(label: str | None) -> str | None:
    """A fine label (or a common synonym such as "happy", "sad") in MEGC spelling, else None."""
    if label is None:
        return None
    return _FINE_SYNONYMS.get(_key(label))


def normalise_coarse_label(label: str | None) -> str | None:
    """A coarse label in MEGC spelling, else None."""
    if label is None:
        return None
    return _COARSE_SYNONYMS.get(_key(label))


def valence(fine: str) -> str:
    """The MEGC coarse class of a fine class: ``valence("contempt") == "negative"``."""
    label = normalise_fine_label(fine)
    if label is None:
        raise UnknownLabelError(f"unknown fine-grained class {fine!r} (known: {', '.join(FINE_CLASSES)})")
    return FINE_TO_COARSE[label]


# --------------------------------------------------------------------------------------------
# AU -> emotion rules
# --------------------------------------------------------------------------------------------
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
    unilateral: bool = False               # at least one required AU coded on one side only
    bilateral: bool = False                # none of the required AUs coded on one side only
    datasets: Mapping[str, float] | None = None  # per-dataset strength overrides


# Strengths are hand-set on a 0-1 scale: 0.85-0.9 for the full EMFACS prototypes, 0.6-0.75 for
# the core pairs, 0.3-0.5 for single AUs that are only indicative. Comments give the evidence.
# dataset names after dropping everything but letters and digits ("CAS(ME)^3" -> "casme3")
_CASME = ("casme2", "casmeii", "casme3", "casmeiii", "casme", "casme2long")
_RULES: tuple[_Rule, ...] = (
    # Happiness: AU6+AU12 (Duchenne smile; EMFACS, CK+). AU12 alone is weaker but still the
    # majority reading in MEGC (lip corner puller: 54 of 62 clips happiness).
    _Rule("happiness", "AU6+AU12 (Duchenne smile)", 0.9, all_of=("AU6", "AU12"), bilateral=True),
    _Rule("happiness", "AU12 (smile)", 0.65, all_of=("AU12",), support=("AU6", "AU25"), bilateral=True),
    _Rule("happiness", "AU6 alone", 0.3, all_of=("AU6",)),
    # Contempt: unilateral AU12 or AU14 (EMFACS; SAMM). Bilateral AU14 is still contempt in SAMM
    # (12 of 12 dimpler clips there) but CASME II reads it as happiness, hence weaker.
    _Rule("contempt", "unilateral AU12/AU14", 0.75, any_of=(("AU12", "AU14"),), unilateral=True),
    _Rule("contempt", "AU14 (dimpler)", 0.5, all_of=("AU14",), support=("AU17", "AU24"),
          datasets={"samm": 0.7, **{d: 0.35 for d in _CASME}}),
    _Rule("happiness", "unilateral AU12 (half smile)", 0.4, all_of=("AU12",), unilateral=True),
    # Surprise: AU1+AU2 with AU5 or AU26/27 (EMFACS); AU1+AU2 alone or AU5 alone weaker.
    _Rule("surprise", "AU1+AU2+AU5/AU26/AU27", 0.9, all_of=("AU1", "AU2"),
          any_of=(("AU5", "AU26", "AU27"),)),
    _Rule("surprise", "AU1+AU2 (brows raised)", 0.65, all_of=("AU1", "AU2"), support=("AU25",)),
    _Rule("surprise", "AU1 or AU2 alone", 0.4, any_of=(("AU1", "AU2"),)),
    _Rule("surprise", "AU5 (upper lid raiser)", 0.4, all_of=("AU5",), support=("AU26", "AU27")),
    # Fear: AU1+AU2+AU4+AU5+AU20 (+AU26) (EMFACS); AU20 alone is fear in SAMM (7 of 7).
    _Rule("fear", "AU1+AU2+AU4+AU5+AU20", 0.9, all_of=("AU1", "AU2", "AU4", "AU5", "AU20"),
          support=("AU26", "AU25")),
    _Rule("fear", "AU1+AU2+AU4", 0.55, all_of=("AU1", "AU2", "AU4"), support=("AU5", "AU20")),
    _Rule("fear", "AU20 (lip stretcher)", 0.5, all_of=("AU20",), support=("AU5", "AU26")),
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
    # Disgust: AU9 or AU10 (EMFACS, CASME II), AU4(+AU7) in CASME II's labels.
    _Rule("disgust", "AU9+AU10", 0.85, all_of=("AU9", "AU10"), support=("AU4", "AU17", "AU25")),
    _Rule("disgust", "AU9 (nose wrinkler)", 0.75, all_of=("AU9",), support=("AU4", "AU17")),
    _Rule("disgust", "AU10 (upper lip raiser)", 0.7, all_of=("AU10",), support=("AU4", "AU17", "AU25")),
    _Rule("disgust", "AU4+AU7 (CASME II criterion)", 0.55, all_of=("AU4", "AU7"),
          datasets={"samm": 0.3, **{d: 0.7 for d in _CASME}}),
    _Rule("disgust", "AU4 alone (CASME II criterion)", 0.35, all_of=("AU4",),
          datasets={"samm": 0.2, **{d: 0.5 for d in _CASME}}),
    # Sadness: AU1+AU4+AU15 (EMFACS); AU15 alone or AU1+AU4 weaker.
    _Rule("sadness", "AU1+AU4+AU15", 0.85, all_of=("AU1", "AU4", "AU15"), support=("AU17", "AU11")),
    _Rule("sadness", "AU1+AU4 (sad brows)", 0.4, all_of=("AU1", "AU4")),
    _Rule("sadness", "AU15 (lip corner depressor)", 0.4, all_of=("AU15",), support=("AU17", "AU1")),
    # Repression (CASME II only): AU14, AU15, AU17, AU24 alone or combined (Yan et al. 2014).
    _Rule("repression", "AU15+AU17", 0.6, all_of=("AU15", "AU17"),
          datasets={d: 0.7 for d in _CASME}),
    _Rule("repression", "AU14/AU17/AU24 (suppression)", 0.5, any_of=(("AU14", "AU17", "AU24"),),
          datasets={"samm": 0.2, **{d: 0.6 for d in _CASME}}),
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
    AUs scoring ``<= min_score`` are ignored. A rule's confidence is its strength times the weakest
    required AU's score, plus 0.05 per supporting AU (times its score), capped at 1.

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
        sides = [observed[c][0] for c in used]
        if rule.unilateral and not any(s in ("left", "right") for s in sides):
            continue
        if rule.bilateral and any(s in ("left", "right") for s in sides):
            continue
        strength = rule.strength
        if ds and rule.datasets and ds in rule.datasets:
            strength = rule.datasets[ds]
        confidence = strength * min(observed[c][1] for c in used)
        support = [c for c in rule.support if c in observed and c not in used]
        confidence += sum(0.05 * observed[c][1] for c in support)
        confidence = round(min(confidence, 1.0), 4)
        cand = EmotionCandidate(fine=rule.fine, coarse=FINE_TO_COARSE[rule.fine],
                                confidence=confidence, rule=rule.name, aus=tuple(used + support))
        if rule.fine not in best or cand.confidence > best[rule.fine].confidence:
            best[rule.fine] = cand
    # Ties are broken by FINE_CLASSES order so the output is deterministic.
    return sorted(best.values(), key=lambda c: (-c.confidence, FINE_CLASSES.index(c.fine)))
