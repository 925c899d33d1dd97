"""FACS action units: codes, names (MEGC spellings), aliases, and AU strings from coding sheets.

Sources
-------
- Ekman, Friesen & Hager (2002), *Facial Action Coding System: Manual*: AU numbers, names, the L/R
  laterality prefixes and the A-E intensity suffixes used by the datasets' coders.
- MEGC2025 ME-VQA training files (``me_vqa_casme2_train.jsonl``, ``me_vqa_samm_casme2_smic_train.jsonl``):
  the exact AU names used in the answers.
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Iterable

__all__ = [
    "FacsError", "UnknownActionUnitError", "AUStringError", "UnknownLabelError",
    "ActionUnit", "ACTION_UNITS", "MEGC_AU_NAMES", "AU_ALIASES", "SIDES",
    "au_by_name", "au_name", "normalise_au_code", "find_au",
    "AUOccurrence", "parse_au_string", "format_au_string",
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
            f"unknown action unit name {name!r} (see mevqa.facs.codes.ACTION_UNITS for names)"
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

