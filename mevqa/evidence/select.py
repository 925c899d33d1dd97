"""Which intervals a clip has, which one is its main expression, and which ones a question is about.

One definition, shared by ``mevqa spot``, ``mevqa au``, ``mevqa evidence``, ``mevqa ask``, ``mevqa eval``,
training and the app:

**A clip's intervals** (:func:`clip_intervals`) are the spotter's intervals, the strongest
``max_intervals`` of them by spotting score (:class:`mevqa.evidence.builder.EvidenceConfig`, 8 by
default), listed in time order and numbered #1, #2, ... in that order. ``mevqa spot`` prints exactly
these and says how many weaker detections were left out, so its numbers are the evidence's numbers.

**The clip's main expression** (:func:`main_interval`) answers clip-level questions (every MEGC
question: a test clip holds one expression). Each interval gets :func:`main_score`::

    main_score = spotting score x confidence x (1 + sum of the scores of its three strongest measured AUs)

where ``confidence`` (1 when the evidence knows nothing against the interval) is lowered by the
builder for a turning head or a covered face, and intervals with at least one measured AU (above its
detector threshold) always come before
intervals without one, which come before an *assumed* interval (nothing spotted; the clip's peak).
So a strong burst of motion in which the AU detector measured nothing (a head turn, a blink cut
short) never becomes the interval the AU and emotion answers rest on, while among intervals with
AUs the spotter's confidence still counts. Ties keep the earlier interval.

**The intervals a question is about** (:func:`resolve`). The question is read once, left to right,
by a tokenizer (:func:`references`; linear time, so a pasted 20,000-digit line costs milliseconds):

- a time, "at 1.2 s", "1.2 seconds", "250 ms", "frame 30": the intervals covering it (or within
  ``tolerance`` = 0.25 s of it); none is a valid answer ("nothing was spotted at 1.2 s");
- a range, "between 10 and 12 seconds", "from 10 s to 12 s", "10-12 s", "frames 30 to 60": every
  interval overlapping it;
- a number, "interval 3", "event #2", "#4": that interval;
- an ordinal, "the first", "the 3rd event", "the second micro-expression", "the last": that interval
  in time order, among micro- or macro-expressions when the question says which;
- AU codes passed by the caller (the answer layer reads "where is the smile?" as AU12): the
  intervals where one of them is measured;
- nothing of the above: the main expression.

A time or frame wins over a number, a number over an ordinal, an ordinal over AU codes.
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field

__all__ = ["clip_intervals", "main_score", "main_interval", "Reference", "references", "Focus", "resolve",
           "TIME_TOLERANCE"]

TIME_TOLERANCE = 0.25  # seconds: "at 1.2 s" also finds an interval ending at 1.0 s (people round times)


# -- the clip's intervals ---------------------------------------------------------------------------
def clip_intervals(spotted, *, max_intervals: int | None) -> list:
    """The spotter's intervals that make up a clip's evidence: the strongest ``max_intervals`` by
    score (all with ``None``), in time order (onset, then offset)."""
    items = list(spotted)
    if max_intervals is not None and len(items) > max_intervals:
        items = sorted(items, key=lambda iv: -float(iv.score))[:max_intervals]
    return sorted(items, key=lambda iv: (iv.onset, iv.offset))


# -- the main expression ----------------------------------------------------------------------------
def main_score(iv) -> float:
    """Spotting score x confidence x (1 + the sum of the scores of the three strongest measured AUs)."""
    confidence = float(getattr(iv, "confidence", 1.0))
    return float(iv.score) * confidence * (1.0 + sum(float(a.get("score", 0.0)) for a in list(iv.aus)[:3]))


def _main_key(iv):
    tier = 0 if getattr(iv, "assumed", False) else (2 if iv.aus else 1)
    return (tier, main_score(iv), -iv.index)


def main_interval(ev):
    """The clip's main expression (see the module docstring); None when the clip has no interval."""
    return max(ev.intervals, key=_main_key) if ev.intervals else None


# -- reading references out of a question -----------------------------------------------------------
@dataclass(frozen=True)
class Reference:
    """One reference found in a question.

    ``kind``: "time" (``start`` s), "range" (``start``-``end`` s), "number" (``index``, 0-based),
    "ordinal" (``index``, 0-based, -1 for "last"; ``of`` "micro"/"macro"/""), "frame" (``start``,
    ``end`` frames; a range when they differ).
    """

    kind: str
    start: float = 0.0
    end: float = 0.0
    index: int = 0
    of: str = ""
    text: str = ""


# Numbers, words and the few symbols that matter; everything else separates tokens. One finditer
# pass: each match consumes its characters and a failed position costs one step (no backtracking
# into digit runs, unlike a pattern such as r"(\d+)\s*s" searched at every offset).
_TOKEN = re.compile(r"\d+(?:[.,]\d+)?|[a-z]+|[#\-\u2013\u2014]")
_MAX_NUMBER_CHARS = 9
_SECONDS = {"s": 1.0, "sec": 1.0, "secs": 1.0, "second": 1.0, "seconds": 1.0, "ms": 1e-3, "msec": 1e-3,
            "millisecond": 1e-3, "milliseconds": 1e-3, "min": 60.0, "mins": 60.0, "minute": 60.0, "minutes": 60.0}
_FRAME_WORDS = {"frame", "frames", "f"}
_NUMBER_WORDS = {"interval", "intervals", "event", "events", "expression", "expressions", "number", "no", "#",
                 "segment", "moment", "movement", "peak"}
_RANGE_JOIN = {"and", "to", "till", "until", "through", "-", "\u2013", "\u2014"}
_ORDINALS = {"first": 0, "second": 1, "third": 2, "fourth": 3, "fifth": 4, "sixth": 5, "seventh": 6,
             "eighth": 7, "ninth": 8, "tenth": 9, "last": -1, "final": -1, "latest": -1}
_ORDINAL_SUFFIX = {"st", "nd", "rd", "th"}
_KIND_WORDS = {"micro": "micro", "macro": "macro"}


def _tokens(text: str) -> list[str]:
    return _TOKEN.findall(str(text).lower())


def _num(tok: str) -> float | None:
    if not tok[:1].isdigit() or len(tok) > _MAX_NUMBER_CHARS:
        return None  # a 20,000-digit "number" is no time anyone means
    return float(tok.replace(",", "."))


def references(text: str) -> list[Reference]:
    """Every time, range, frame, interval number and ordinal in ``text``, in reading order.

    Linear in the length of ``text``: one tokenizer pass, then one pass over the tokens.
    """
    toks = _tokens(text)
    out: list[Reference] = []
    i, n = 0, len(toks)
    while i < n:
        t = toks[i]
        v = _num(t)
        if v is not None:
            ref, used = _number_at(toks, i, v)
            if ref is not None:
                out.append(ref)
            i += used
            continue
        if t in _ORDINALS and not (t == "second" and i > 0 and _num(toks[i - 1]) is not None):
            of = next((_KIND_WORDS[w] for w in toks[i + 1:i + 3] if w in _KIND_WORDS), "")
            out.append(Reference("ordinal", index=_ORDINALS[t], of=of, text=t))
        i += 1
    return out


def _number_at(toks: list[str], i: int, v: float) -> tuple[Reference | None, int]:
    """The reference a number at ``toks[i]`` starts (or None) and how many tokens it used."""
    prev = toks[i - 1] if i > 0 else ""
    nxt = toks[i + 1] if i + 1 < len(toks) else ""
    if nxt in _ORDINAL_SUFFIX and v == int(v) and v >= 1:          # "3rd", "2nd event"
        of = next((_KIND_WORDS[w] for w in toks[i + 2:i + 4] if w in _KIND_WORDS), "")
        return Reference("ordinal", index=int(v) - 1, of=of, text=f"{int(v)}{nxt}"), 2
    if prev in _FRAME_WORDS:                                        # "frame 30", "frames 30 to 60"
        end, used = _range_end(toks, i)
        return Reference("frame", start=v, end=v if end is None else end, text=f"frame {toks[i]}"), used
    if nxt in _SECONDS:                                             # "1.2 s", "10 s to 12 s"
        start = v * _SECONDS[nxt]
        end, used = _range_end(toks, i + 1)
        if end is not None:
            return Reference("range", start=start, end=end, text=f"{toks[i]} {nxt}"), used + 1
        return Reference("time", start=start, end=start, text=f"{toks[i]} {nxt}"), 2
    end, used = _range_end(toks, i)                                 # "between 10 and 12 seconds", "10-12 s"
    if end is not None and used >= 3 and toks[i + used - 1] in _SECONDS:
        unit = _SECONDS[toks[i + used - 1]]
        return Reference("range", start=v * unit, end=end, text=" ".join(toks[i:i + used])), used
    if prev in _NUMBER_WORDS and v == int(v) and v >= 1:            # "interval 3", "event #2", "#4"
        return Reference("number", index=int(v) - 1, text=f"{prev} {toks[i]}"), 1
    return None, 1


def _range_end(toks: list[str], i: int) -> tuple[float | None, int]:
    """After a range start at ``toks[i]``: (end in seconds or frames, tokens used from i) or (None, 1).

    "10 and 12 seconds" -> (12.0, 4); "10 s to 12 s" starting at "s" -> (12.0, 4); "30 to 60" after
    "frames" -> (60.0, 3). The end's own unit wins; without one the start's unit is taken by the caller.
    """
    j = i + 1
    if j < len(toks) and toks[j] in _RANGE_JOIN:
        end = _num(toks[j + 1]) if j + 1 < len(toks) else None
        if end is not None:
            unit = toks[j + 2] if j + 2 < len(toks) else ""
            if unit in _SECONDS:
                return end * _SECONDS[unit], 4
            if toks[i] in _SECONDS:  # "10 s to 12": the start's unit
                return end * _SECONDS[toks[i]], 3
            return end, 3
    return None, 1


# -- resolving a question to intervals ----------------------------------------------------------------
@dataclass
class Focus:
    """What a question is about: ``intervals`` (possibly none), the ``span`` in seconds it names (None
    when it names no time), ``how`` in words ("at 1.20 s", "the main expression"), whether the question
    ``named`` it (else the main expression was taken) and ``missing`` (why a named thing was not found)."""

    intervals: list = field(default_factory=list)
    span: tuple[float, float] | None = None
    how: str = "the main expression"
    named: bool = False
    missing: str = ""
    reference: Reference | None = None

    @property
    def interval(self):
        """The one interval an answer rests on: the first in focus, or None."""
        return self.intervals[0] if self.intervals else None


def _covering(ev, start: float, end: float, tolerance: float) -> list:
    return [iv for iv in ev.intervals if iv.t_onset - tolerance <= end and start <= iv.t_offset + tolerance]


def resolve(ev, question: str, *, au_codes=(), tolerance: float = TIME_TOLERANCE) -> Focus:
    """The intervals ``question`` is about (see the module docstring for the rules and their order)."""
    refs = references(question)
    by_kind = {}
    for r in refs:
        by_kind.setdefault(r.kind, r)
    n = len(ev.intervals)
    for kind in ("range", "time", "frame"):
        r = by_kind.get(kind)
        if r is None:
            continue
        start, end = (r.start / ev.fps, r.end / ev.fps) if kind == "frame" else (r.start, r.end)
        start, end = min(start, end), max(start, end)
        tol = tolerance if end - start < 1e-9 else 0.0
        how = f"at {start:.2f} s" if end - start < 1e-9 else f"between {start:.2f} and {end:.2f} s"
        if kind == "frame":
            how = (f"at frame {int(r.start)} ({start:.2f} s)" if r.start == r.end
                   else f"frames {int(min(r.start, r.end))}-{int(max(r.start, r.end))} ({start:.2f}-{end:.2f} s)")
        missing = "" if start <= ev.duration else f"the clip is only {ev.duration:.2f} s long"
        return Focus(_covering(ev, start, end, tol), (start, end), how, True, missing, r)
    r = by_kind.get("number")
    if r is not None:
        if 0 <= r.index < n:
            return Focus([ev.intervals[r.index]], None, f"interval #{r.index + 1}", True, "", r)
        return Focus([], None, f"interval #{r.index + 1}", True, f"the clip has {n} interval(s)", r)
    r = by_kind.get("ordinal")
    if r is not None:
        pool = [iv for iv in ev.intervals if not r.of or iv.kind == r.of]
        what = f"{r.of}-expression" if r.of else "interval"
        word = "last" if r.index == -1 else r.text
        if pool and -len(pool) <= r.index < len(pool):
            return Focus([pool[r.index]], None, f"the {word} {what}", True, "", r)
        return Focus([], None, f"the {word} {what}", True, f"the clip has {len(pool)} {what}(s)", r)
    codes = [c for c in au_codes if c]
    if codes:
        hits = [iv for iv in ev.intervals if any(iv.au(c) is not None for c in codes)]
        hits.sort(key=lambda iv: -max(iv.au(c)["score"] for c in codes if iv.au(c) is not None))
        return Focus(hits, None, "where " + " or ".join(codes) + " is measured", True,
                     "" if hits else "no interval has it measured")
    main = main_interval(ev)
    return Focus([main] if main is not None else [], None, "the main expression", False)
