"""The clip read stretch by stretch, and everyday expression words matched against it.

A **segment** is a stretch of the clip with a reading: each spotted interval, and (when the evidence
has the face's blendshape states, :mod:`mevqa.evidence.face_state`) each stretch between intervals.
Its reading (positive / negative / surprise / None) is, for an interval, the coarse class of its
:class:`~mevqa.answer.readings.Reading` from the measured AUs (the reading the MEGC answers use, so
an open answer never contradicts them), and only when no AU was measured the class the face's
held states give; between intervals, the face's states. Each segment says which it used.

Everyday words ("laughing", "crying", "angry") map to a reading and, for the negative ones that name
an emotion ("angry", "afraid", "disgusted"), to that fine class (:data:`EXPRESSIONS`). Laughing is a
positive stretch with the mouth open as well (lips part, jaw drop or mouth stretch, AU25/26/27
measured, or the face state "jaw open": the laughter pattern 6+12+25/26/27 of Ruch & Ekman, "The
expressive pattern of laughter", 2001); smiling is any positive stretch. Crying, sobbing and tears
themselves are not measured: "is she crying?" is answered from the negative readings, and says so.
"""
from __future__ import annotations

import re
from dataclasses import dataclass

from mevqa.answer.readings import read_interval

_WORD = re.compile(r"[a-z]+")

#: everyday stem -> (reading, fine classes it names)
EXPRESSIONS = {
    "laugh": ("positive", {"happiness"}), "smil": ("positive", {"happiness"}), "happ": ("positive", {"happiness"}),
    "joy": ("positive", {"happiness"}), "amused": ("positive", {"happiness"}), "cheerful": ("positive", {"happiness"}),
    "cry": ("negative", {"sadness"}), "sad": ("negative", {"sadness"}), "tear": ("negative", {"sadness"}),
    "upset": ("negative", set()), "unhapp": ("negative", {"sadness"}), "sob": ("negative", {"sadness"}),
    "angry": ("negative", {"anger"}), "anger": ("negative", {"anger"}), "mad": ("negative", {"anger"}),
    "fear": ("negative", {"fear"}), "afraid": ("negative", {"fear"}), "scared": ("negative", {"fear"}),
    "disgust": ("negative", {"disgust"}), "contempt": ("negative", {"contempt"}), "smirk": ("negative", {"contempt"}),
    "surpris": ("surprise", {"surprise"}), "shock": ("surprise", {"surprise"}),
    "negative": ("negative", set()), "positive": ("positive", set()),
}
_STEMS = sorted(EXPRESSIONS, key=len, reverse=True)
ANY_NEGATIVE = {"cry", "sad", "tear", "upset", "unhapp", "sob", "negative"}
_WHOLE_WORD = {"mad", "sob", "sad", "joy", "tear"}  # short stems: the whole word only ("made", "so", "tearing")
_WORDS_OF = {"smil": "smiling", "happ": "happy", "unhapp": "unhappy", "surpris": "surprised"}


def words(q: str) -> list[str]:
    return _WORD.findall(q.lower())


def expression_words(q: str) -> list[str]:
    """Expression stems named in a question, in order ("sad or happy" -> ["sad", "happ"])."""
    out = []
    for w in words(q):
        if w.startswith("happen"):  # "what happened", not "happy"
            continue
        stem = next((s for s in _STEMS if w.startswith(s)), None)
        if stem and stem not in out and (stem not in _WHOLE_WORD or w in (stem, stem + "s", stem + "ness")):
            out.append(stem)
    return out


def word(stem: str) -> str:
    """A stem as a word for answers ("smil" -> "smiling")."""
    return _WORDS_OF.get(stem, stem)


def label(stem: str) -> str:
    """What an expression word is read as: the fine class it names, else its reading."""
    want, fines = EXPRESSIONS[stem]
    if stem == "laugh":
        return "laughing (positive with the mouth open)"
    return next(iter(fines)) if want == "negative" and len(fines) == 1 and stem not in ANY_NEGATIVE else want


def reading_of(iv) -> str | None:
    """The coarse class of an interval's Reading, or None when it rests on no measured AU."""
    r = read_interval(iv)
    return r.coarse if r.emotion_basis == "facs" else None


def fine_of(iv) -> str:
    r = read_interval(iv)
    return r.fine if r.emotion_basis == "facs" else "no FACS reading"


@dataclass(frozen=True)
class Segment:
    start: float
    end: float
    interval: object | None        # the IntervalEvidence, or None between intervals
    reading: str | None            # positive / negative / surprise / None
    fine: str | None
    source: str                    # "AUs" | "face state" | ""
    face: str = ""                 # the held blendshape states in words ("smiling, eyes closed")

    @property
    def name(self) -> str:
        return f"#{self.interval.index + 1}" if self.interval is not None else "between intervals"

    def text(self) -> str:
        what = f"{self.reading} ({self.fine}, from the {self.source})" if self.reading else "no reading"
        face = f"; face: {self.face}" if self.face and self.source != "face state" else ""
        return f"{self.start:.2f}-{self.end:.2f} s {self.name}: {what}{face}"


def _face(st: dict | None) -> tuple[str | None, str | None, str]:
    st = st or {}
    return st.get("coarse"), st.get("emotion"), st.get("reading", "")


def segments(ev) -> list[Segment]:
    """The clip's segments in time order (see the module docstring)."""
    out = []
    for iv in ev.intervals:
        coarse, emo, face = _face(getattr(iv, "expression", None))
        r = reading_of(iv)
        if r is not None:
            out.append(Segment(iv.t_onset, iv.t_offset, iv, r, fine_of(iv), "AUs", face))
        else:
            out.append(Segment(iv.t_onset, iv.t_offset, iv, coarse, emo, "face state" if coarse else "", face))
    for st in getattr(ev, "expression", None) or []:
        if str(st.get("label", "")).startswith("between"):
            coarse, emo, face = _face(st)
            out.append(Segment(float(st["start"]), float(st["end"]), None, coarse, emo,
                               "face state" if coarse else "", face))
    return sorted(out, key=lambda s: (s.start, s.end))


def mouth_open(seg: Segment) -> bool:
    if seg.interval is not None and any(seg.interval.au(c) is not None for c in ("AU25", "AU26", "AU27")):
        return True
    return "jaw open" in seg.face


def matches(seg: Segment, stem: str) -> bool:
    """Whether a segment shows an expression word: its reading, and for "angry", "afraid", ... its class;
    laughing also needs the mouth open."""
    want, fines = EXPRESSIONS[stem]
    if seg.reading != want or (stem == "laugh" and not mouth_open(seg)):
        return False
    return want != "negative" or stem in ANY_NEGATIVE or seg.fine in fines


def merged(segs: list[Segment]) -> list[tuple[str | None, list[Segment]]]:
    """Consecutive segments with the same reading, grouped."""
    out: list[tuple[str | None, list[Segment]]] = []
    for s in segs:
        if out and out[-1][0] == s.reading:
            out[-1][1].append(s)
        else:
            out.append((s.reading, [s]))
    return out
