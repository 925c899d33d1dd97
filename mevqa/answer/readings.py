"""One reading of one interval, from which every MEGC answer about it is written, so they agree.

The AU list, the yes/no AU answers, the left/right answers, the fine and coarse classes and the
analysis sentence of a clip all come from the same :class:`Reading` of the same interval (the one
:func:`mevqa.evidence.select.resolve` picks: the clip's main expression unless the question names a
time, a number or an ordinal). So the coarse class always follows the fine one through
:data:`~mevqa.facs.labels.FINE_TO_COARSE`, "yes" is said exactly of the AUs the AU answer lists, and
the analysis sentence repeats the same AUs and classes.

No answer asserts what the evidence lacks. Every fallback is documented here and its ``note`` says so
in plain words (the command line prints it, the app shows it):

- **AUs.** The interval's measured AUs (above the detector's threshold), strongest first. With none
  measured, the strongest movement below threshold is answered as a *guess* (a MEGC answer must name
  an AU) and the note gives its score; with nothing at all the answer is empty.
- **Emotion.** A smile, the lip corner puller (AU12) with the cheek raiser (AU6) or on both sides,
  is happiness (the EMFACS happiness prototype 6+12; Ekman, Davidson & Friesen 1990 on the Duchenne
  smile) unless the brow lowerer (AU4) or the lip corner depressor (AU15) moves too (crying pulls the
  lip corners as well: sadness is 1+4+15) and the face's blendshape state (the interval's
  ``expression``, :mod:`mevqa.evidence.face_state`) does not hold "smiling" for at least half of it.
  While the builder finds the mouth covered (a hand over it), the lip and jaw AUs are left out of the
  emotion reading (the rules run on the visible AUs; :data:`MOUTH_AUS`);
  a competing candidate from a wider mouth (AU9/AU10 while laughing) does not override a smile. Else
  the first FACS rule candidate of the measured AUs (Ekman, Friesen & Hager, FACS 2002; the rules in
  :mod:`mevqa.facs.emotions`). Coarse = FINE_TO_COARSE[fine] always. With no
  candidate the answer is a *prior*, the most frequent label of the MEGC2025 training files
  (fine: disgust, 70 of 278 clips; coarse: negative, 250 of 442), and the note says it is a prior.
  With ``--recognizer`` (a trained MMNet's reading on the interval, :mod:`mevqa.evidence.recognized`),
  a learned class at confidence >= :data:`RECOGNIZER_MIN_CONFIDENCE` takes the *prior's* place, never
  a FACS rule's: the rules rest on measured AUs a reader can check, the network on a training set
  that may not match the clip. A coarse class maps to the most frequent fine class under it
  (positive -> happiness, surprise -> surprise, negative -> disgust); the note says it is learned.
- **Doubts.** When the builder lowered an interval's confidence (a turning head, a covered mouth),
  every answer resting on it repeats the builder's reasons in its note ("Less sure: ...").
- **Presence** ("Is the action unit X shown on the face?"): "yes" exactly when X is in the AU answer
  of the interval in focus (for a question naming a time range: of any interval in it); the note
  names the other intervals where X is measured, so "no" about the main expression never hides a
  smile elsewhere in the clip.
- **Side.** Only from a measured side: X measured on one side -> that side; on both -> the stronger
  side by its per-side score, said in the note; X not measured in the interval -> its measured side
  in another interval of the clip, said in the note; not measured anywhere -> the prior "left"
  (44 of the 71 left/right answers in the MEGC2025 training files), said in the note.
"""
from __future__ import annotations

from dataclasses import dataclass

from mevqa.facs.codes import ACTION_UNITS
from mevqa.evidence.select import resolve
from mevqa.facs.emotions import emotion_candidates
from mevqa.facs.labels import FINE_TO_COARSE

PRIOR_FINE, PRIOR_COARSE, PRIOR_SIDE = "disgust", "negative", "left"
PRIOR_NOTE = ("This is a prior, not a reading: no FACS rule matched the measured action units, so it is the most "
              "frequent label of the MEGC training data ({fine}, {coarse}).")


@dataclass(frozen=True)
class Reading:
    """What the evidence says about one interval (None: the clip has no interval)."""

    interval: object | None
    aus: tuple[dict, ...]          # the AU answer's AUs, strongest first
    au_basis: str                  # "measured" | "guess" (strongest below threshold) | "none"
    fine: str
    coarse: str
    emotion_basis: str             # "facs" | "prior"
    rule: str = ""

    @property
    def codes(self) -> list[str]:
        return [a["code"] for a in self.aus]

    @property
    def names(self) -> list[str]:
        return [a["name"] for a in self.aus]

    @property
    def where(self) -> str:
        iv = self.interval
        return f"#{iv.index + 1} ({iv.t_onset:.2f}-{iv.t_offset:.2f} s)" if iv is not None else "the clip"

    # -- notes ------------------------------------------------------------------------------------
    def au_note(self) -> str:
        if self.au_basis == "guess":
            a = self.aus[0]
            return (f"No action unit passed its threshold in {self.where}; {a['name']} ({a['code']}) is the "
                    f"strongest movement below it (score {a['score']:.2f}), a guess.")
        if self.au_basis == "none":
            return f"No action unit was measured in {self.where}."
        return ""

    def emotion_note(self) -> str:
        if self.emotion_basis == "prior":
            return PRIOR_NOTE.format(fine=self.fine, coarse=self.coarse)
        if self.emotion_basis == "recognizer":
            return f"This is {self.rule}, not a FACS rule reading."
        return ""

    # -- answers ----------------------------------------------------------------------------------
    def au_answer(self) -> tuple[str, str]:
        return ", ".join(self.names), self.au_note()

    def coarse_answer(self) -> tuple[str, str]:
        return self.coarse, self.emotion_note()

    def fine_answer(self) -> tuple[str, str]:
        return self.fine, self.emotion_note()

    def analysis(self) -> tuple[str, str]:
        # Written here rather than with questions.analysis_sentence(check=True): a guess or an empty
        # AU list must still give the official frame, so scorers and readers see the same form.
        names = self.names or ["none"]
        verb = "action unit present is" if len(names) == 1 else "action units present are"
        text = (f"The {verb}: {', '.join(names)}. Therefore, the fine-grained expression class is {self.fine}, "
                f"and the coarse expression class is {self.coarse}.")
        return text, " ".join(x for x in (self.au_note(), self.emotion_note()) if x)

    def presence(self, code: str, ev, others=()) -> tuple[str, str]:
        shown = code in self.codes or any(iv.au(code) is not None for iv in others)
        name = ACTION_UNITS[code].name if code in ACTION_UNITS else code
        notes = []
        if shown and self.au_basis == "guess" and code in self.codes:
            notes.append(self.au_note())
        elsewhere = [iv for iv in ev.intervals if iv is not self.interval and iv not in others
                     and iv.au(code) is not None]
        if elsewhere:
            where = ", ".join(f"#{iv.index + 1} ({iv.t_onset:.2f}-{iv.t_offset:.2f} s)" for iv in elsewhere)
            notes.append(f"{name.capitalize()} is {'also ' if shown else ''}measured in {where}"
                         + ("" if shown else f", not in {self.where}") + ".")
        elif not shown and self.interval is not None:
            notes.append(f"{name.capitalize()} is measured in no interval of the clip.")
        return ("yes" if shown else "no"), " ".join(notes)

    def side(self, code: str, ev) -> tuple[str, str]:
        name = ACTION_UNITS[code].name if code in ACTION_UNITS else code
        a = self.interval.au(code) if self.interval is not None else None
        if a is not None:
            if a["side"] in ("left", "right"):
                return a["side"], ""
            left, right = float(a.get("left", 0)), float(a.get("right", 0))
            s = "left" if left >= right else "right"
            if max(left, right) < BOTH_SIDES_RATIO * min(left, right):
                # MEGC's side question wants one side; when the two differ by less than the detector's own
                # left/right disagreement on a mirrored clip, the answer says it is no real difference.
                return s, (f"{name.capitalize()} is measured on both sides about equally in {self.where} "
                           f"(left {left:.2f}, right {right:.2f}): '{s}' is barely the stronger; read it as both.")
            return s, (f"{name.capitalize()} is measured on both sides in {self.where}; the {s} side is stronger "
                       f"(left {left:.2f}, right {right:.2f}).")
        for iv in ev.intervals:
            b = iv.au(code)
            if b is not None and b["side"] in ("left", "right"):
                return b["side"], (f"{name.capitalize()} is not measured in {self.where}; this is its side in "
                                   f"#{iv.index + 1} ({iv.t_onset:.2f}-{iv.t_offset:.2f} s).")
        return PRIOR_SIDE, (f"{name.capitalize()} is measured on no side in this clip; '{PRIOR_SIDE}' is a prior "
                            f"(the most frequent side in the MEGC training data), not a reading.")


#: a two-sided AU's answer names its stronger side, and says the sides are about equal unless one is at least
#: this many times the other
BOTH_SIDES_RATIO = 1.25


def read_interval(iv) -> Reading:
    """The :class:`Reading` of an interval (see the module docstring for the fallbacks)."""
    if iv is None:
        return Reading(None, (), "none", PRIOR_FINE, PRIOR_COARSE, "prior")
    if iv.aus:
        aus, basis = tuple(iv.aus), "measured"
    elif iv.weak_aus:
        aus, basis = (iv.weak_aus[0],), "guess"
    else:
        aus, basis = (), "none"
    emo = emotion_of(iv)
    if emo is not None:
        fine, rule = emo
        return Reading(iv, aus, basis, fine, FINE_TO_COARSE[fine], "facs", rule)
    learned = _learned(iv)
    if learned is not None:
        return Reading(iv, aus, basis, learned[0], FINE_TO_COARSE[learned[0]], "recognizer", learned[1])
    return Reading(iv, aus, basis, PRIOR_FINE, PRIOR_COARSE, "prior")


#: --recognizer: a learned reading replaces the prior (never a FACS rule) when at least this sure
RECOGNIZER_MIN_CONFIDENCE = 0.5
_COARSE_TO_FINE = {"positive": "happiness", "surprise": "surprise", "negative": PRIOR_FINE}


def _learned(iv) -> tuple[str, str] | None:
    """(fine class, rule) from the interval's recogniser reading, if sure enough (module docstring)."""
    rec = getattr(iv, "recognizer", None) or {}
    label, conf = rec.get("label"), float(rec.get("confidence", 0.0))
    fine = label if label in FINE_TO_COARSE else _COARSE_TO_FINE.get(label)
    if fine is None or conf < RECOGNIZER_MIN_CONFIDENCE:
        return None
    return fine, f"the learned recogniser's reading ({label}, confidence {conf:.2f}), as no FACS rule matched"


SMILE_RULE = ("lip corner puller with cheek raiser or on both sides, without brow lowerer or lip corner depressor: "
              "a smile (EMFACS happiness 6+12)")


#: lip and jaw AUs: not read for the emotion while the builder finds the mouth covered
MOUTH_AUS = {f"AU{n}" for n in (10, 11, 12, 13, 14, 15, 16, 17, 18, 20, 22, 23, 24, 25, 26, 27, 28)}


def emotion_of(iv) -> tuple[str, str] | None:
    """(fine class, rule) read from an interval's measured AUs, or None (see the module docstring)."""
    codes = {a["code"]: a for a in iv.aus}
    face = getattr(iv, "expression", None) or {}
    if "mouth" in face.get("occluded", []):  # a hand over the mouth: read the emotion from what is visible
        visible = [a for a in iv.aus if a["code"] not in MOUTH_AUS]
        top = next(iter(emotion_candidates([(a["code"], a["side"], a["score"]) for a in visible])), None)
        return (top.fine, f"{top.rule} (mouth covered: its AUs left out)") if top else None
    # Not "unless the face holds a smile": MediaPipe's smile blendshapes read high on a crying grimace
    # (AU12 pulled with AU4 and AU20 under shut eyes), which FACS reads as crying; the FACS rules
    # (:func:`emotion_candidates`) already keep a laugh's brow spill-over from turning it negative.
    if "AU12" in codes and ("AU6" in codes or codes["AU12"]["side"] == "both") and not {"AU4", "AU15"} & set(codes):
        return "happiness", SMILE_RULE
    top = iv.top_emotion if iv.aus else None
    if top and top["fine"] in FINE_TO_COARSE:
        return top["fine"], top.get("rule", "")
    return None


def answer_megc(ev, question: str, kind) -> tuple[str, object, str, object]:
    """(answer, interval, note, focus) for a MEGC question kind (``kind`` from ``question_type``).

    The interval is :func:`mevqa.evidence.select.resolve`'s: the main expression unless the question
    names a time, range, number or ordinal. A named time where nothing was spotted falls back to the
    main expression, and the note says so.
    """
    focus = resolve(ev, question)
    note = ""
    if focus.named and not focus.intervals:
        why = focus.missing or "nothing was spotted there"
        focus = resolve(ev, "")
        note = f"{why[0].upper()}{why[1:]}; this reads the main expression instead."
    iv = focus.interval
    r = read_interval(iv)
    if kind.kind == "coarse":
        text, extra = r.coarse_answer()
    elif kind.kind == "fine":
        text, extra = r.fine_answer()
    elif kind.kind == "au_list":
        text, extra = r.au_answer()
    elif kind.kind == "au_presence":
        text, extra = r.presence(kind.au.code, ev, others=focus.intervals[1:])
    elif kind.kind == "au_side":
        text, extra = r.side(kind.au.code, ev)
    else:  # analysis
        text, extra = r.analysis()
    if iv is not None and getattr(iv, "assumed", False):
        extra = (extra + " " if extra else "") + "No expression stood out; this reads the strongest motion in the clip."
    if iv is not None and getattr(iv, "confidence", 1.0) < 1.0 and getattr(iv, "notes", None):
        extra = (extra + " " if extra else "") + "Less sure: " + "; ".join(iv.notes) + "."
    return text, iv, " ".join(x for x in (note, extra) if x), focus
