"""Checks that answers follow the evidence and agree with each other (tests and ``bench/bench_answers.py``).

:func:`check_answer` looks at one answer: the interval it cites exists and its times are the
interval's; an AU answer names only AUs the evidence holds for that interval (measured, or the one
below-threshold guess, which the note must then call a guess); a coarse/fine answer that is the prior
says so in its note; a left/right answer about an AU not measured on one side says why in its note.

:func:`check_agreement` looks at one clip's MEGC answers together: coarse = FINE_TO_COARSE[fine];
the presence answers are "yes" exactly for the AUs of the AU answer; the analysis sentence names the
same AUs, fine and coarse classes.
"""
from __future__ import annotations

from mevqa.answer.questions import find_au_names, parse_analysis_sentence, question_type
from mevqa.answer.readings import read_interval
from mevqa.facs.codes import au_by_name
from mevqa.facs.labels import FINE_TO_COARSE


def _codes(names: str) -> list[str]:
    return [au_by_name(n).code for n in find_au_names(names)]


def check_answer(ev, ans) -> list[str]:
    """Problems with one :class:`~mevqa.answer.agent.Answer` against its Evidence ([] when none)."""
    bad = []
    iv = None
    if ans.interval is not None:
        if not 0 <= ans.interval < len(ev.intervals):
            return [f"cites interval #{ans.interval + 1}, the clip has {len(ev.intervals)}"]
        iv = ev.intervals[ans.interval]
        if ans.cited and ans.cited != iv.label():
            bad.append(f"cites {ans.cited!r}, the interval is {iv.label()!r}")
    if ans.kind in ("au_list", "analysis") and iv is not None:
        said = _codes(ans.text if ans.kind == "au_list" else ", ".join(parse_analysis_sentence(ans.text)[0]))
        measured = {a["code"] for a in iv.aus}
        guess = {a["code"] for a in iv.weak_aus[:1]} if not iv.aus else set()
        extra = [c for c in said if c not in measured | guess]
        if extra:
            bad.append(f"names {extra} not in the evidence of {iv.label()}")
        if any(c in guess for c in said) and "guess" not in ans.note:
            bad.append("answers a below-threshold AU without saying it is a guess")
    if ans.kind in ("coarse", "fine") and ans.text in ("disgust", "negative") and iv is not None:
        if read_interval(iv).emotion_basis == "prior" and "prior" not in ans.note:
            bad.append("answers the training prior without saying so")
    if ans.kind == "au_side" and iv is not None:
        code = question_type(ans.question).au.code
        a = iv.au(code)
        if (a is None or a["side"] not in ("left", "right")) and not ans.note:
            bad.append("a left/right answer with no measured side and no note")
        elif a is not None and a["side"] in ("left", "right") and a["side"] != ans.text:
            bad.append(f"answers {ans.text}, the evidence measured {a['side']}")
    return bad


def check_agreement(answers: dict) -> list[str]:
    """Problems among one clip's MEGC answers, given as ``{question: answer text}`` for the same clip."""
    by_kind: dict[str, list] = {}
    for q, text in answers.items():
        by_kind.setdefault(question_type(q).kind, []).append((q, text))
    bad = []
    fine = by_kind.get("fine", [(None, None)])[0][1]
    coarse = by_kind.get("coarse", [(None, None)])[0][1]
    if fine and coarse and FINE_TO_COARSE.get(fine) != coarse:
        bad.append(f"coarse {coarse!r} does not follow fine {fine!r}")
    au_text = by_kind.get("au_list", [(None, None)])[0][1]
    listed = set(_codes(au_text)) if au_text is not None else None
    for q, text in by_kind.get("au_presence", []):
        code = question_type(q).au.code
        if listed is not None and (text == "yes") != (code in listed):
            bad.append(f"{q!r} -> {text!r}, but the AU answer is {au_text!r}")
    for q, text in by_kind.get("analysis", []):
        aus, a_fine, a_coarse = parse_analysis_sentence(text)
        if listed is not None and set(_codes(", ".join(aus))) != listed:
            bad.append(f"analysis AUs {aus} differ from the AU answer {au_text!r}")
        if fine and a_fine != fine or coarse and a_coarse != coarse:
            bad.append(f"analysis classes ({a_fine}, {a_coarse}) differ from ({fine}, {coarse})")
    return bad
