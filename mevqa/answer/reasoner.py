"""Open questions answered from the whole clip: a small grounded reasoner over Evidence (no model).

Every sentence it writes is read off the Evidence: the intervals (times, AUs, FACS readings), the
motion curve and its threshold, the hidden-emotion check, lost frames, and (when the evidence has
them) expression states, head pose and occlusions. It never answers from a fixed text.

What it understands, in this order (the first that applies answers):

1. **greetings and help** ("hello", "what can you do?"): a short greeting and what it can answer;
2. **why / how do you know**: the previous question of the chat history is answered again and its
   grounds are given (interval, measured AUs with scores, the FACS rule, or that it was a prior);
3. **concealment** ("is she hiding something?"): the hidden-emotion check, as a flag, never a verdict;
4. **when + an expression word** ("when does she start laughing?"): the start of the first stretch
   that reads so (:mod:`mevqa.answer.stretches`: an interval read from its AUs, or a stretch between
   intervals read from the face's held states), the motion leading into it when an interval without
   AUs ends where it starts, and movement above the threshold before it that no interval covers;
5. **expression words without "when"** ("is she sad or happy?", "is she crying?"): each stretch of
   the clip read in turn, and where each word applies;
6. **an AU or its everyday name with "where"** ("where is the smile?"): the intervals where it is
   measured;
7. **a named time, range, number or ordinal** (:func:`mevqa.evidence.select.resolve`): those
   intervals; at a time with none, what the motion curve does there, the face's state and the
   nearest intervals;
8. **counting** ("how many expressions?"), **the face itself** (lost frames, occlusions, head pose,
   the doubts the evidence notes per interval);
9. otherwise a summary of the whole clip: the stretches, the main expression, what covered the face
   and the hidden-emotion check.

Interval readings are those of :class:`~mevqa.answer.readings.Reading`, the ones the MEGC answers use,
so an open answer never contradicts them.
"""
from __future__ import annotations

import re

import numpy as np

from mevqa.answer.questions import find_au_names, question_type
from mevqa.answer.readings import answer_megc, read_interval
from mevqa.evidence.select import main_interval, resolve
from mevqa.answer.stretches import (
    EXPRESSIONS, expression_words, fine_of, label, matches, merged, reading_of, segments, word, words,
)
from mevqa.facs.codes import ACTION_UNITS, au_by_name

# Everyday names of AUs that the MEGC names do not cover.
EVERYDAY_AUS = {"smile": ("AU12",), "smiling": ("AU12",), "frown": ("AU4",), "frowning": ("AU4",),
                "brows": ("AU1", "AU2"), "eyebrows": ("AU1", "AU2"), "blink": ("AU45",), "wink": ("AU46",),
                "squint": ("AU7",), "dimple": ("AU14",), "pout": ("AU22",), "sneer": ("AU10",)}
GREETINGS = {"hello", "hi", "hey", "hallo", "greetings", "morning", "evening", "thanks", "thank", "bye"}
_WHY = re.compile(r"\b(why|how do you know|how can you tell|what makes you|explain|reason|evidence for)\b")
_HIDING = re.compile(r"\b(hid|hide|hiding|hidden|conceal|mask|suppress|lying|lie|liar|deceiv|fake|true feeling|real feeling)")
_HELP = re.compile(r"\b(what can you|help|what do you do|who are you|what are you)\b")
_FACE = re.compile(r"\b(occlu|covered|covering|hand|hands|head|pose|turn|tilt|lost|visible|track)")
_WHEN = re.compile(r"\b(when|what time|start|starts|begin|begins|first|at what point)\b")


def _aus(iv, n: int = 4) -> str:
    return ", ".join(f"{a['name']} ({a['side']})" for a in iv.aus[:n]) or "no action unit above threshold"


def describe(iv) -> str:
    """One interval in a sentence: when, what kind, which AUs, its reading, the face state, doubts."""
    r = reading_of(iv)
    feel = f"; reads as {fine_of(iv)} ({r})" if r else ""
    face = (getattr(iv, "expression", None) or {}).get("reading")
    doubt = getattr(iv, "notes", None) if getattr(iv, "confidence", 1.0) < 1.0 else None
    return (f"#{iv.index + 1} {iv.t_onset:.2f}-{iv.t_offset:.2f} s ({iv.kind}, apex {iv.t_apex:.2f} s): "
            f"{_aus(iv)}{feel}" + (f"; face: {face}" if face else "") + (f" (less sure: {doubt[0]})" if doubt else ""))


# -- answers ------------------------------------------------------------------------------------------
def answer_open(ev, question: str, history=None) -> tuple[str, object, str]:
    """(answer, the interval it rests on or None, note) for an open question."""
    text, iv, note, _ = reason(ev, question, history)
    return text, iv, note


def reason(ev, question: str, history=None) -> tuple[str, object, str, str]:
    """(answer, interval or None, note, basis): ``basis`` says in words what the answer was read from."""
    q = question.lower()
    said = set(words(q))
    if not ev.intervals:
        return (f"I found no facial expression in this {ev.duration:.1f} s clip: the face shows no motion above "
                "the noise, so there is nothing to interpret.", None, "",
                "the spotter found no interval and the motion stayed under its threshold")
    if said & GREETINGS and len(said) <= 6 or _HELP.search(q):
        return greeting(ev), None, "", "a greeting needs no evidence"
    if _WHY.search(q):
        return explain_previous(ev, history) + ("",)
    if is_hiding_question(q):
        return hidden(ev), None, "", ("the hidden-emotion check: a micro-expression whose reading conflicts with "
                                      "the expression around it, or one on an otherwise still face")
    stems = expression_words(q)
    codes = _au_codes(q)
    if codes and re.search(r"\bwhere\b", q):
        return where_au(ev, codes), None, "", "the intervals where the action unit detector measured " + \
            " or ".join(ACTION_UNITS[c].name for c in codes)
    basis_read = ("the reading of each interval: its measured action units and the FACS rule they match "
                  "(a smile, lip corner puller with cheek raiser or on both sides, reads as happiness; laughing "
                  "also needs the mouth open), or between intervals the face's held states")
    if stems and _WHEN.search(q):
        text, iv = when_expression(ev, stems[0])
        return text, iv, "", basis_read
    if stems:
        yes_no = bool(re.match(r"(is|are|does|do|was|did|has)\b", q.strip()))
        return per_stretch(ev, stems, yes_no=yes_no), None, "", basis_read
    focus = resolve(ev, question)
    if focus.named:
        basis = ("the intervals " + focus.how + ", their action units and readings" if focus.intervals else
                 "the motion curve " + focus.how + " against the spotter's threshold, and the nearest intervals")
        return about_focus(ev, focus), focus.interval, "", basis
    if codes:
        return where_au(ev, codes), None, "", "the intervals where those action units were measured"
    if re.search(r"\bhow many\b", q):
        return count(ev), None, "", "the spotter's intervals"
    if _FACE.search(q):
        return face_state(ev), None, "", "the face tracker's lost frames"
    return summary(ev), None, "", "every interval, its reading and the hidden-emotion check"


def greeting(ev) -> str:
    main = main_interval(ev)
    return (f"Hello. I have analysed this {ev.duration:.1f} s clip ({len(ev.intervals)} expression interval(s); "
            f"the main one is #{main.index + 1} at {main.t_onset:.2f} s). Ask me what happens at a time "
            "(\"what happens between 10 and 12 s?\"), about an interval (\"the first one\", \"interval 3\"), "
            "which action units move and on which side, the expression class, when she starts smiling, "
            "or whether a micro-expression conflicts with the rest of the face.")


def explain_previous(ev, history) -> tuple[str, object, str]:
    prev_q = next((t["content"] for t in reversed(history or []) if t.get("role") == "user"
                   and isinstance(t.get("content"), str) and not _WHY.search(t["content"].lower())), None)
    if prev_q is None:
        main = main_interval(ev)
        r = read_interval(main)
        basis = (f"the FACS rule {r.rule!r}" if r.emotion_basis == "facs" else
                 "no FACS rule (the class would be a prior)")
        return (f"There is no earlier answer to explain. My reading of the clip rests on its main expression "
                f"{describe(main)}; it was chosen for its spotting score ({main.score:.2f}) and its measured "
                f"action units, and its class follows {basis}.", main, "")
    kind = question_type(prev_q)
    if kind.kind == "open":
        text, iv, note, basis = reason(ev, prev_q)
        return f"You asked {prev_q!r}. I answered from {basis}" + (f", here {describe(iv)}" if iv else "") + ".", iv, note
    prev_text, iv, note, _ = answer_megc(ev, prev_q, kind)
    r = read_interval(iv)
    aus = ", ".join(f"{a['name']} (score {a['score']:.2f}, {a['side']})" for a in r.aus) or "no action unit"
    emo = (f"the FACS rule {r.rule!r} reads them as {r.fine}, which is {r.coarse}" if r.emotion_basis == "facs"
           else f"no FACS rule matched, so the class is the MEGC training prior ({r.fine}, {r.coarse})")
    why_iv = ("the question names it" if resolve(ev, prev_q).named else
              f"it is the clip's main expression (spotting score {iv.score:.2f}, with measured action units)")
    return (f"I answered {prev_text!r} to {prev_q!r} from interval {describe(iv)}, because {why_iv}. "
            f"The action unit detector measured {aus}; {emo}.", iv, note)


def is_hiding_question(question: str) -> bool:
    """Whether a question asks about concealment ("is she hiding something?", "is he lying?")."""
    return bool(_HIDING.search(str(question).lower()))


def hidden(ev) -> str:
    return hidden_findings_text(ev.hidden)


def hidden_findings_text(findings) -> str:
    """The answer to a concealment question from the hidden-emotion check's findings."""
    if findings:
        items = [h.explanation for h in findings]
        listed = items[0] if len(items) == 1 else "; ".join(f"({k}) {x}" for k, x in enumerate(items, 1))
        return (f"Worth a second look: {listed}. This is a flag, not proof: a micro-expression shows a brief "
                "feeling, not a lie or its reason.")
    return ("Nothing suggests a concealed emotion: no micro-expression conflicts with the visible expressions, "
            "and none appears on an otherwise neutral face. Micro-expression analysis cannot tell whether "
            "someone is lying.")


def when_expression(ev, stem: str) -> tuple[str, object]:
    hits = [g for g in segments(ev) if matches(g, stem)]
    want = label(stem)
    if not hits:
        return f"I see no {want.split(' (')[0]} in this clip: no stretch of it reads as {want}.", None
    first = hits[0]
    iv = first.interval
    if iv is None:
        text = (f"From about {first.start:.2f} s, between spotted intervals: the face holds {first.face} "
                f"(reads as {first.fine}, from the face state).")
    else:
        text = f"From about {first.start:.2f} s: {describe(iv)}."
        lead = [o for o in ev.intervals if not o.aus and abs(o.t_offset - iv.t_onset) <= 0.1]
        if lead:
            text += f" The motion leading into it starts at {lead[0].t_onset:.2f} s (#{lead[0].index + 1}, no AU measured)."
        early = _moving_before(ev, iv)
        if early is not None:
            text += (f" Before that the face is already moving from {early:.2f} s (motion above the spotter's "
                     "threshold, no interval spotted there).")
    if len(hits) > 1:
        text += " Again at " + ", ".join(f"{g.start:.2f} s ({g.name})" for g in hits[1:4]) + "."
    return text, iv


def _moving_before(ev, iv) -> float | None:
    """The first time in the gap before ``iv`` (since the previous interval) where the motion curve is above
    its threshold: a movement the spotter did not cut into an interval."""
    t = np.asarray(ev.curve.get("times", []), float)
    thr = ev.curve.get("threshold")
    if not len(t) or not thr:
        return None
    since = max([o.t_offset for o in ev.intervals if o.t_offset <= iv.t_onset + 1e-6 and o is not iv], default=0.0)
    above = (np.asarray(ev.curve["motion"], float) > np.asarray(thr, float)) & (t < iv.t_onset - 0.3) & (t > since)
    return float(t[np.argmax(above)]) if above.any() else None


def _runs(segs) -> str:
    """Consecutive segments as time spans with their names: "0.13-2.79 s (#1), 8.80-19.64 s (#5-#8)"."""
    out = []
    for g in segs:
        if out and abs(out[-1][-1].end - g.start) < 0.1:
            out[-1].append(g)
        else:
            out.append([g])
    names = [[x.name for x in run if x.interval is not None] for run in out]
    return ", ".join(f"{run[0].start:.2f}-{run[-1].end:.2f} s" + (f" ({', '.join(n)})" if n else "")
                     for run, n in zip(out, names))


def per_stretch(ev, stems: list[str], *, yes_no: bool) -> str:
    segs = segments(ev)
    head = ""
    if len(stems) > 1:
        found = []
        for stem in stems:
            hits = [g for g in segs if matches(g, stem)]
            found.append(f"{word(stem)} ({EXPRESSIONS[stem][0]}): " + (_runs(hits) if hits else "nowhere"))
        head = "; ".join(found).capitalize() + ". "
    if yes_no and len(stems) == 1:
        hits = [g for g in segs if matches(g, stems[0])]
        head = (f"Yes: {_runs(hits)}. " if hits else f"Not that I can measure: nothing reads as {label(stems[0])}. ")
        if stems[0] in ("cry", "tear", "sob") and hits:
            head = (f"Her face reads {EXPRESSIONS[stems[0]][0]} at {_runs(hits)}; tears and sobbing themselves "
                    "are not measured. ")
    parts = []
    for r, group in merged(segs):
        how = sorted({f"{g.fine} from the {g.source}" for g in group if g.reading})
        parts.append(f"{group[0].start:.2f}-{group[-1].end:.2f} s {r or 'no reading'}"
                     + (f" ({'; '.join(how)})" if how else ""))
    return head + "Stretch by stretch: " + "; ".join(parts) + "."


def about_focus(ev, focus) -> str:
    if focus.intervals:
        return f"{focus.how.capitalize()}: " + " ".join(describe(iv) + "." for iv in focus.intervals)
    if focus.missing:
        return f"Nothing to show for {focus.how}: {focus.missing}."
    lo, hi = focus.span
    curve = _curve_at(ev, lo, hi)
    near = sorted(ev.intervals, key=lambda iv: min(abs(iv.t_onset - lo), abs(iv.t_offset - hi)))[:2]
    near_txt = "; ".join(describe(iv) for iv in sorted(near, key=lambda iv: iv.onset))
    face = [g for g in segments(ev) if g.interval is None and g.start <= hi and lo <= g.end and g.face]
    held = f" The face holds: {face[0].face}." if face else ""
    fps = ev.fps or 1.0
    weaker = [(a / fps, (b + 1) / fps, sc) for a, b, sc in (ev.settings or {}).get("left_out", [])
              if a / fps <= hi and lo <= (b + 1) / fps]
    if weaker:
        a, b, sc = weaker[0]
        kept = len([iv for iv in ev.intervals if not iv.assumed])
        return (f"A weaker interval was spotted {focus.how}, {a:.2f}-{b:.2f} s (spotting score {sc:.2f}), but it is "
                f"not among the {kept} strongest the evidence keeps, so its action units were not read.{held} "
                f"Nearest kept: {near_txt}.")
    return f"No expression interval was spotted {focus.how}. {curve}{held} Nearest: {near_txt}."


def _curve_at(ev, lo: float, hi: float) -> str:
    t = np.asarray(ev.curve.get("times", []), float)
    if not len(t):
        return ""
    m = np.asarray(ev.curve["motion"], float)
    sel = (t >= lo - 0.1) & (t <= hi + 0.1)
    if not sel.any():
        sel = np.zeros(len(t), bool)
        sel[int(np.argmin(np.abs(t - lo)))] = True
    peak = float(m[sel].max())
    thr = ev.curve.get("threshold")
    if thr:
        th = float(np.asarray(thr, float)[sel].max())
        if peak > th:
            return (f"The face is moving there (motion {peak:.2f} px, above the spotter's threshold {th:.2f} px), "
                    "but no expression onset-apex-offset stood out.")
        return f"The face is still there (motion {peak:.2f} px, under the threshold {th:.2f} px)."
    return f"Facial motion there peaks at {peak:.2f} px."


def _au_codes(q: str) -> list[str]:
    codes = [au_by_name(n).code for n in find_au_names(q)]
    for w in words(q):
        codes += [c for c in EVERYDAY_AUS.get(w, ()) if c in ACTION_UNITS]
    return list(dict.fromkeys(codes))


def where_au(ev, codes: list[str]) -> str:
    names = " or ".join(ACTION_UNITS[c].name for c in codes)
    focus = resolve(ev, "", au_codes=codes)
    hits = sorted(focus.intervals, key=lambda iv: iv.onset)
    if not hits:
        return f"The {names} is measured in no interval of this clip."
    return f"The {names} is measured in {len(hits)} interval(s): " + " ".join(describe(iv) + "." for iv in hits)


def count(ev) -> str:
    micro = sum(iv.kind == "micro" and not iv.assumed for iv in ev.intervals)
    macro = sum(iv.kind == "macro" and not iv.assumed for iv in ev.intervals)
    return (f"{micro + macro} expression interval(s) in {ev.duration:.1f} s: {micro} micro- and {macro} "
            f"macro-expression(s), " + ", ".join(f"#{iv.index + 1} at {iv.t_onset:.2f} s" for iv in ev.intervals) + ".")


def face_state(ev) -> str:
    lost = ev.lost_frames
    parts = ["The face was tracked in every frame." if not lost else
             f"The face was lost in {len(lost)} frame(s) (from {lost[0] / ev.fps:.2f} s)."]
    quality = getattr(ev, "quality", None) or {}
    for occ in quality.get("occlusions", []):
        parts.append(f"The {occ['region']} is covered from {occ['start']:.2f} to {occ['end']:.2f} s "
                     "(its AUs and states are not read there).")
    if quality.get("two_faces_frames"):
        parts.append(f"A second face is in {quality['two_faces_frames']} frame(s).")
    pose = getattr(ev, "head_pose", None) or {}
    if pose.get("range"):
        r = pose["range"]
        parts.append(f"Head pose: yaw {r['yaw'][0]:.0f} to {r['yaw'][1]:.0f} degrees, pitch {r['pitch'][0]:.0f} to "
                     f"{r['pitch'][1]:.0f}, roll {r['roll'][0]:.0f} to {r['roll'][1]:.0f}.")
    doubts = [f"#{iv.index + 1}: {iv.notes[0]}" for iv in ev.intervals if getattr(iv, "notes", None)]
    if doubts:
        parts.append("Less sure: " + "; ".join(doubts[:4]) + ".")
    return " ".join(parts)


def summary(ev) -> str:
    main = main_interval(ev)
    parts = [f"In {ev.duration:.1f} s I spotted {len(ev.intervals)} expression interval(s)."]
    parts.append("Stretch by stretch: " + "; ".join(
        f"{g[0].start:.2f}-{g[-1].end:.2f} s {r or 'no reading'} ({', '.join(x.name for x in g)})"
        for r, g in merged(segments(ev))) + ".")
    parts.append(f"The main expression is {describe(main)}.")
    notes = (getattr(ev, "quality", None) or {}).get("notes")
    if notes:
        parts.append("Face: " + "; ".join(notes) + ".")
    parts.append(hidden(ev) if ev.hidden else "Hidden-emotion check: nothing flagged.")
    return " ".join(parts)
