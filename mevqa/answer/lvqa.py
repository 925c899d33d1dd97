"""MEGC2026 long-video questions (ME-LVQA), answered from the spotted events of a whole video.

The MEGC2026 ME-LVQA test files (CAS(ME)^3 and SAMM long videos, six questions per video) ask::

    How many expression events appear in this video?                      -> "3"
    How many micro-expression events appear in this video?                -> "1"
    How many macro-expression events appear in this video?                -> "2"
    What distinct action units appear in this video?                      -> "brow lowerer, lip corner puller"
    What is the expression type of the N-th expression event in this video?  -> "micro-expression"

**An expression event** is one spotted interval (onset..offset, frames) of the video in which at least
one action unit was found present: the long-video datasets code expressions by their AUs (CAS(ME)^3, Li
et al. 2022; SAMM long videos, Yap et al. 2020), so motion that moves no AU (head motion the alignment
left, lighting, noise) is not one. An interval lying mostly (over half its frames) inside a stronger event
is part of that event; intervals the evidence only assumed (no expression stood out) are not events.
Events are numbered 1, 2, ... by onset time. (The AU rule was chosen after seeing spurious AU-less
short intervals on the synthetic long videos of bench/bench_lvqa.py; it is not tuned on real data.)

**Micro or macro** follows the field's rule on the onset-to-offset time:
``(offset - onset) / fps <= 0.5 s`` is a micro-expression (CAS(ME)^2/^3 and SAMM long-video annotations;
MEGC spotting), longer is a macro-expression. The rule is applied here to every event, so that micro +
macro = all events whatever label the spotter gave. The distinct AUs are the union over events of the
AUs found present, named as the MEGC answers spell them, in AU number order. A question about an N-th
event beyond those spotted is answered with the more frequent type in long-video annotations,
``macro-expression`` (CAS(ME)^3 and SAMM long videos both code several times more macro- than
micro-expressions).

The MEGC2026 answer formats are not published with the test files; these forms (an integer, AU names
comma-separated, "micro-expression" / "macro-expression") are this package's reading of the questions.
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Sequence

from mevqa.answer.reasoner import hidden_findings_text
from mevqa.evidence.builder import Evidence, EvidenceConfig, IntervalEvidence
from mevqa.evidence.hidden import hidden_emotion_check
from mevqa.facs.codes import find_au

__all__ = [
    "MICRO_MAX_SECONDS", "LVQA_EVIDENCE", "LvqaQuestion", "lvqa_question", "is_lvqa_question", "Event",
    "events", "events_from", "event_kind", "answer_lvqa", "count_question", "au_question", "type_question",
    "answer_hidden",
]

MICRO_MAX_SECONDS = 0.5
# every spotted interval is an event (not only the strongest few), and an uneventful video has none
LVQA_EVIDENCE = EvidenceConfig(max_intervals=100_000, assume_expression=False)


@dataclass(frozen=True)
class LvqaQuestion:
    """``kind``: "count" (``which``: "all", "micro" or "macro"), "aus", or "type" (``n``: 1-based)."""

    kind: str
    which: str = "all"
    n: int = 0


_COUNT_RE = re.compile(r"^how many (micro-|macro-)?expression events? (?:appear|are there|occur)")
_AUS_RE = re.compile(r"^what (?:distinct )?action units? appear")
_TYPE_RE = re.compile(r"^what is the expression type of the (\d+)(?:-?th|st|nd|rd)? expression event")


def lvqa_question(question: str) -> LvqaQuestion | None:
    """The LVQA kind of a question, or None when it is not one (linear-time patterns, anchored)."""
    q = " ".join(str(question).lower().split())[:300]
    if m := _COUNT_RE.match(q):
        return LvqaQuestion("count", (m.group(1) or "all").rstrip("-"))
    if _AUS_RE.match(q):
        return LvqaQuestion("aus")
    if (m := _TYPE_RE.match(q)) and int(m.group(1)) >= 1:
        return LvqaQuestion("type", n=int(m.group(1)))
    return None


def is_lvqa_question(question: str) -> bool:
    return lvqa_question(question) is not None


@dataclass(frozen=True)
class Event:
    """One expression event: frames onset..offset, its type, the AU names found present."""

    onset: int
    offset: int
    kind: str          # "micro" | "macro"
    aus: tuple[str, ...]


def event_kind(onset: int, offset: int, fps: float, *, micro_max_s: float = MICRO_MAX_SECONDS) -> str:
    """"micro" when the onset-to-offset time is at most ``micro_max_s`` seconds, else "macro"."""
    return "micro" if (offset - onset) / fps <= micro_max_s + 1e-9 else "macro"


def _inside(iv, other) -> bool:
    """More than half of ``iv``'s frames lie within ``other``."""
    inter = min(iv.offset, other.offset) - max(iv.onset, other.onset) + 1
    return inter * 2 > iv.offset - iv.onset + 1


def events(ev: Evidence, *, micro_max_s: float = MICRO_MAX_SECONDS, require_au: bool = True) -> list[Event]:
    """The video's expression events in onset order (see the module docstring); ``require_au=False``
    counts every spotted interval."""
    return events_from(ev.intervals, ev.fps, micro_max_s=micro_max_s, require_au=require_au)


def events_from(intervals: Sequence[IntervalEvidence], fps: float, *, micro_max_s: float = MICRO_MAX_SECONDS,
                require_au: bool = True) -> list[Event]:
    """:func:`events` from intervals in frames at ``fps`` (those of a long video spotted in chunks)."""
    kept: list = []
    for iv in sorted((iv for iv in intervals if not iv.assumed), key=lambda iv: -iv.score):  # strongest first
        if (iv.aus or not require_au) and not any(_inside(iv, k) for k in kept):
            kept.append(iv)
    return [Event(int(iv.onset), int(iv.offset), event_kind(iv.onset, iv.offset, fps, micro_max_s=micro_max_s),
                  tuple(dict.fromkeys(a["name"] for a in iv.aus)))
            for iv in sorted(kept, key=lambda iv: (iv.onset, iv.offset))]


def _au_number(name: str) -> tuple[int, str]:
    au = find_au(name)
    return (au.number if au else 999, name)


def count_question(which: str = "all") -> str:
    return ("How many expression events appear in this video?" if which == "all"
            else f"How many {which}-expression events appear in this video?")


def au_question() -> str:
    return "What distinct action units appear in this video?"


def type_question(n: int) -> str:
    return f"What is the expression type of the {n}-th expression event in this video?"


def answer_lvqa(ev: Evidence | Sequence[Event], question: str | LvqaQuestion) -> str:
    """The answer to one LVQA question from a video's evidence (compute it with :data:`LVQA_EVIDENCE`) or
    its events (:func:`events_from`)."""
    q = question if isinstance(question, LvqaQuestion) else lvqa_question(question)
    if q is None:
        raise ValueError(f"not a long-video question: {str(question)[:80]!r}")
    evs = events(ev) if isinstance(ev, Evidence) else list(ev)
    if q.kind == "count":
        return str(sum(1 for e in evs if q.which in ("all", e.kind)))
    if q.kind == "aus":
        names = {n for e in evs for n in e.aus}
        return ", ".join(sorted(names, key=_au_number))
    kind = evs[q.n - 1].kind if q.n <= len(evs) else "macro"
    return f"{kind}-expression"


def answer_hidden(intervals: Sequence[IntervalEvidence], fps: float) -> str:
    """"Is this person hiding an emotion?" about a long video: the hidden-emotion check
    (:func:`mevqa.evidence.hidden.hidden_emotion_check`) over all its streamed intervals, in the words a
    clip's answer uses. A long video keeps no motion curve, so a micro-expression with no other
    expression near it counts as on a neutral face without the check that the face was still around it
    (a clip's answer makes that check): the flags are looser, and the answer says so."""
    return (hidden_findings_text(hidden_emotion_check(list(intervals), fps)) + f" (Checked over {len(intervals)} spotted interval(s) of the whole video; "
            "a long video keeps no motion curve, so whether the face was still around a micro-expression "
            "is not checked.)")
