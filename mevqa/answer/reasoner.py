"""Open questions answered from the whole clip: a small grounded reasoner over Evidence (no model).

Every sentence it writes is read off the Evidence: the intervals (times, AUs, FACS readings), the
motion curve and its threshold, the hidden-emotion check, lost frames, and (when the evidence has
them) expression states, head pose and occlusions. It never answers from a fixed text.

What it understands, in this order (the first that applies answers):

1. **greetings and help** ("hello", "what can you do?"): a short greeting and what it can answer;
2. **why / how do you know**: the previous question of the chat history is answered again and its
   grounds are given (interval, measured AUs with scores, the FACS rule, or that it was a prior);
3. **concealment** ("is she hiding something?"): the hidden-emotion check, as a flag, never a verdict;
4. **when + an expression word** ("when does she start laughing?"): the onset of the first interval
   of that reading (a smile or laugh is a *positive* interval, see :func:`reading_of`), and the
   motion that leads into it when an interval without AUs ends where it starts;
5. **expression words without "when"** ("is she sad or happy?", "is she crying?", "how does she
   feel?"): each stretch of the clip read in turn (consecutive intervals with the same reading);
6. **a named time, range, number or ordinal** (:func:`mevqa.evidence.select.resolve`): those
   intervals; at a time with none, what the motion curve does there and the nearest intervals;
7. **an AU or its everyday name** ("where is the smile?", "when does she raise her brows?"): the
   intervals where it is measured;
8. **counting** ("how many expressions?"), **the face itself** (lost frames, head pose, occlusion);
9. otherwise a summary of the whole clip: every interval, the stretches, the main expression and
   the hidden-emotion check.

The reading of an interval (:func:`reading_of`) is the coarse class of its
:class:`~mevqa.answer.readings.Reading` (a smile, AU12 with AU6 or on both sides, is happiness and so
positive), the same reading the MEGC answers use, so an open answer never contradicts them; an
interval without a measured AU has no reading.
"""
from __future__ import annotations

import re

import numpy as np

from mevqa.answer.questions import find_au_names, question_type
from mevqa.answer.readings import answer_megc, read_interval
from mevqa.evidence.select import main_interval, resolve
from mevqa.facs.codes import ACTION_UNITS, au_by_name

_WORD = re.compile(r"[a-z]+")

# Everyday words for expressions: (reading, fine classes that also count, AU codes that show it).
EXPRESSIONS = {
    "laugh": ("positive", {"happiness"}), "smile": ("positive", {"happiness"}), "happy": ("positive", {"happiness"}),
    "joy": ("positive", {"happiness"}), "amused": ("positive", {"happiness"}), "cheerful": ("positive", {"happiness"}),
    "cry": ("negative", {"sadness"}), "sad": ("negative", {"sadness"}), "tear": ("negative", {"sadness"}),
    "upset": ("negative", set()), "unhappy": ("negative", {"sadness"}), "sob": ("negative", {"sadness"}),
    "angry": ("negative", {"anger"}), "anger": ("negative", {"anger"}), "mad": ("negative", {"anger"}),
    "fear": ("negative", {"fear"}), "afraid": ("negative", {"fear"}), "scared": ("negative", {"fear"}),
    "disgust": ("negative", {"disgust"}), "contempt": ("negative", {"contempt"}), "smirk": ("negative", {"contempt"}),
    "surprise": ("surprise", {"surprise"}), "shock": ("surprise", {"surprise"}),
    "negative": ("negative", set()), "positive": ("positive", set()),
}
_STEMS = sorted(EXPRESSIONS, key=len, reverse=True)
# Everyday names of AUs that the MEGC names do not cover.
EVERYDAY_AUS = {"smile": ("AU12",), "smiling": ("AU12",), "frown": ("AU4",), "frowning": ("AU4",),
                "brows": ("AU1", "AU2"), "eyebrows": ("AU1", "AU2"), "blink": ("AU45",), "wink": ("AU46",),
                "squint": ("AU7",), "dimple": ("AU14",), "pout": ("AU22",), "sneer": ("AU10",)}
GREETINGS = {"hello", "hi", "hey", "hallo", "greetings", "morning", "evening", "thanks", "thank", "bye"}
_WHY = re.compile(r"\b(why|how do you know|how can you tell|what makes you|explain|reason|evidence for)\b")
_HIDING = re.compile(r"\b(hid|hide|hiding|hidden|conceal|mask|suppress|lying|lie|liar|deceiv|fake|true feeling|real feeling)")
_HELP = re.compile(r"\b(what can you|help|what do you do|who are you|what are you)\b")
_FACE = re.compile(r"\b(occlu|covered|covering|hand|hands|head|pose|turn|tilt|lost|visible|track)")


def _words(q: str) -> list[str]:
    return _WORD.findall(q.lower())


def expression_words(q: str) -> list[str]:
    """Expression stems named in a question, in order ("sad or happy" -> ["sad", "happy"])."""
    out = []
    for w in _words(q):
        stem = next((s for s in _STEMS if w.startswith(s)), None)
        if stem and stem not in out and not (stem == "mad" and w != "mad") and not (stem == "sob" and w == "so"):
            out.append(stem)
    return out


def reading_of(iv) -> str | None:
    """positive / negative / surprise / None for an interval (see the module docstring)."""
    r = read_interval(iv)
    return r.coarse if r.emotion_basis == "facs" else None


def _fine(iv) -> str:
    r = read_interval(iv)
    return r.fine if r.emotion_basis == "facs" else "no FACS reading"


def _aus(iv, n: int = 4) -> str:
    return ", ".join(f"{a['name']} ({a['side']})" for a in iv.aus[:n]) or "no action unit above threshold"


def describe(iv) -> str:
    """One interval in a sentence: when, what kind, which AUs, the FACS reading."""
    r = reading_of(iv)
    feel = f"; reads as {_fine(iv)} ({r})" if r else ""
    return (f"#{iv.index + 1} {iv.t_onset:.2f}-{iv.t_offset:.2f} s ({iv.kind}, apex {iv.t_apex:.2f} s): "
            f"{_aus(iv)}{feel}")


def stretches(ev) -> list[tuple[str | None, list]]:
    """Consecutive intervals grouped by :func:`reading_of`; intervals without a reading join none."""
    out: list[tuple[str | None, list]] = []
    for iv in ev.intervals:
        r = reading_of(iv)
        if out and out[-1][0] == r:
            out[-1][1].append(iv)
        else:
            out.append((r, [iv]))
    return out


def _span(ivs) -> str:
    nums = ", ".join(f"#{iv.index + 1}" for iv in ivs)
    return f"{ivs[0].t_onset:.2f}-{ivs[-1].t_offset:.2f} s ({nums})"


_ANY_NEGATIVE = {"cry", "sad", "tear", "upset", "unhappy", "sob", "negative"}


def _matches(iv, stem: str) -> bool:
    """Whether an interval shows an expression word: its reading, and for "angry", "afraid", ... its class."""
    want, fines = EXPRESSIONS[stem]
    if reading_of(iv) != want:
        return False
    return want != "negative" or stem in _ANY_NEGATIVE or _fine(iv) in fines


# -- answers ------------------------------------------------------------------------------------------
def answer_open(ev, question: str, history=None) -> tuple[str, object, str]:
    """(answer, the interval it rests on or None, note) for an open question."""
    text, iv, note, _ = reason(ev, question, history)
    return text, iv, note


def reason(ev, question: str, history=None) -> tuple[str, object, str, str]:
    """(answer, interval or None, note, basis): ``basis`` says in words what the answer was read from."""
    q = question.lower()
    words = set(_words(q))
    if not ev.intervals:
        return (f"I found no facial expression in this {ev.duration:.1f} s clip: the face shows no motion above "
                "the noise, so there is nothing to interpret.", None, "",
                "the spotter found no interval and the motion stayed under its threshold")
    if words & GREETINGS and len(words) <= 6 or _HELP.search(q):
        return greeting(ev), None, "", "a greeting needs no evidence"
    if _WHY.search(q):
        return explain_previous(ev, history) + ("",)
    if _HIDING.search(q):
        return hidden(ev), None, "", ("the hidden-emotion check: a micro-expression whose reading conflicts with "
                                      "the expression around it, or one on an otherwise still face")
    stems = expression_words(q)
    codes = _au_codes(q)
    if codes and re.search(r"\bwhere\b", q):
        return where_au(ev, codes), None, "", "the intervals where the action unit detector measured " + \
            " or ".join(ACTION_UNITS[c].name for c in codes)
    basis_read = ("the reading of each interval: its measured action units and the FACS rule they match "
                  "(a smile, lip corner puller with cheek raiser or on both sides, reads as happiness)")
    if stems and re.search(r"\b(when|what time|start|starts|begin|begins|first|at what point)\b", q):
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


def hidden(ev) -> str:
    if ev.hidden:
        items = [h.explanation for h in ev.hidden]
        listed = items[0] if len(items) == 1 else "; ".join(f"({k}) {x}" for k, x in enumerate(items, 1))
        return (f"Worth a second look: {listed}. This is a flag, not proof: a micro-expression shows a brief "
                "feeling, not a lie or its reason.")
    return ("Nothing suggests a concealed emotion: no micro-expression conflicts with the visible expressions, "
            "and none appears on an otherwise neutral face. Micro-expression analysis cannot tell whether "
            "someone is lying.")


def when_expression(ev, stem: str) -> tuple[str, object]:
    hits = [iv for iv in ev.intervals if _matches(iv, stem)]
    want = _label(stem)
    if not hits:
        return (f"I see no {want} expression in this clip: none of its {len(ev.intervals)} interval(s) reads as "
                f"{want}.", None)
    first = hits[0]
    lead = [iv for iv in ev.intervals if not iv.aus and abs(iv.t_offset - first.t_onset) <= 0.1]
    text = f"From about {first.t_onset:.2f} s: {describe(first)}."
    if lead:
        text += f" The motion leading into it starts at {lead[0].t_onset:.2f} s (#{lead[0].index + 1}, no AU measured)."
    early = _moving_before(ev, first)
    if early is not None:
        text += (f" Before that the face is already moving from {early:.2f} s (motion above the spotter's threshold, "
                 "no interval spotted there).")
    if len(hits) > 1:
        text += " It shows again in " + ", ".join(f"#{iv.index + 1} ({iv.t_onset:.2f} s)" for iv in hits[1:4]) + "."
    return text, first


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


def _label(stem: str) -> str:
    want, fines = EXPRESSIONS[stem]
    return next(iter(fines)) if want == "negative" and len(fines) == 1 and stem not in _ANY_NEGATIVE else want


def per_stretch(ev, stems: list[str], *, yes_no: bool) -> str:
    parts = []
    for r, ivs in stretches(ev):
        what = {"positive": "positive (smile)", None: "no reading (no action unit measured)"}.get(r, r)
        fines = sorted({_fine(iv) for iv in ivs if iv.top_emotion})
        parts.append(f"{_span(ivs)}: {what}" + (f" [{', '.join(fines)}]" if fines else ""))
    head = ""
    if len(stems) > 1:
        found = []
        for stem in stems:
            hits = [iv for iv in ev.intervals if _matches(iv, stem)]
            found.append(f"{stem} ({EXPRESSIONS[stem][0]}): " + (
                ", ".join(f"#{iv.index + 1}" for iv in hits) + f", from {hits[0].t_onset:.2f} s" if hits else "no interval"))
        head = "; ".join(found).capitalize() + ". "
    if yes_no and len(stems) == 1:
        hits = [iv for iv in ev.intervals if _matches(iv, stems[0])]
        want = EXPRESSIONS[stems[0]][0]
        head = (f"Yes, in {len(hits)} interval(s), first at {hits[0].t_onset:.2f} s. " if hits else
                f"Not that I can measure: no interval reads as {_label(stems[0])}. ")
        if stems[0] in ("cry", "tear", "sob"):
            head = (f"Her face reads {want} in {len(hits)} interval(s), first at {hits[0].t_onset:.2f} s; "
                    "tears and sobbing themselves are not measured. " if hits else head)
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
    return f"No expression interval was spotted {focus.how}. {curve} Nearest: {near_txt}."


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
    for w in _words(q):
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
    text = (f"The face was tracked in every frame." if not lost else
            f"The face was lost in {len(lost)} frame(s) (from {lost[0] / ev.fps:.2f} s).")
    for name in ("occlusions", "head_pose", "states"):  # richer evidence, when the builder provides it
        val = getattr(ev, name, None)
        if val:
            text += f" {name.replace('_', ' ').capitalize()}: {_brief(val)}."
    return text


def _brief(val) -> str:
    items = val if isinstance(val, list) else [val]
    return "; ".join(str(getattr(x, "explanation", None) or x) for x in items[:4])


def summary(ev) -> str:
    main = main_interval(ev)
    parts = [f"In {ev.duration:.1f} s I spotted {len(ev.intervals)} expression interval(s)."]
    parts.append("Stretch by stretch: " + "; ".join(
        f"{_span(ivs)} {({'positive': 'smile/positive', None: 'no AU reading'}).get(r, r)}"
        for r, ivs in stretches(ev)) + ".")
    parts.append(f"The main expression is {describe(main)}.")
    parts.append(hidden(ev) if ev.hidden else "Hidden-emotion check: nothing flagged.")
    return " ".join(parts)


def is_megc_kind(question: str) -> bool:
    return question_type(question).kind != "open"
