"""The answering agent: question -> answer over one clip, with chat history and two backends.

- :class:`EvidenceBackend`, the embedded default, needs no model weights. It answers every MEGC
  question type from the Evidence (spotted intervals, action units, FACS emotion rules) and open
  questions ("what happened at 1.2 s?", "is she hiding something?") with a summary that cites
  intervals and times.
- :class:`VLMBackend` asks a Qwen-VL model (optionally with a LoRA adapter) with the same evidence in
  its prompt, plus keyframes and the flow map (:mod:`mevqa.answer.prompt`).

Every :class:`Answer` says which backend produced it.
"""
from __future__ import annotations

import re
from collections import Counter
from dataclasses import dataclass, field
from typing import Iterator

from mevqa.evidence.builder import Evidence, IntervalEvidence, compute_evidence
from mevqa.facs.labels import FINE_TO_COARSE
from mevqa.answer.prompt import PromptConfig, build_messages
from mevqa.answer.questions import QuestionKind, analysis_sentence, normalise_answer, question_type
from mevqa.io.video import Clip

# When the evidence holds no emotion candidate, answer with the most frequent label of the MEGC2025
# training files (coarse: negative 250 of 442 clips; fine: disgust 70 of 278), and say so.
PRIOR_COARSE, PRIOR_FINE = "negative", "disgust"
EVIDENCE_BACKEND = "evidence-only backend (no model loaded): answers from the spotter, the AU detector and FACS rules"


@dataclass
class Answer:
    question: str
    kind: str
    text: str                      # the answer (scoreable form for MEGC question kinds)
    backend: str                   # which backend produced it
    interval: int | None = None    # index of the interval the answer relies on
    cited: str = ""                # "interval #2 micro 1.20-1.43 s"
    note: str = ""                 # caveats (assumed interval, label prior, unparsable model output)
    raw: str = ""                  # the model's own words, before normalisation
    evidence: Evidence | None = field(default=None, repr=False)

    def to_dict(self, *, include_evidence: bool = False) -> dict:
        d = {k: getattr(self, k) for k in ("question", "kind", "text", "backend", "interval", "cited", "note", "raw")}
        if include_evidence and self.evidence is not None:
            d["evidence"] = self.evidence.to_dict()
        return d

    def display(self) -> str:
        """Answer text for a chat: the answer, what it rests on, and the backend."""
        parts = [self.text or "(no answer)"]
        if self.cited:
            parts.append(f"Based on {self.cited}.")
        if self.note:
            parts.append(self.note)
        return " ".join(parts) + f"\n\n_{self.backend}_"


# -- picking the interval a question is about -------------------------------------------------------
_TIME = re.compile(r"(\d+(?:\.\d+)?)\s*(?:s\b|sec|second)")
_FRAME = re.compile(r"frame\s*(\d+)")
_INTERVAL_NO = re.compile(r"(?:interval|expression|event)\s*#?\s*(\d+)")


def focus_interval(ev: Evidence, question: str) -> IntervalEvidence | None:
    """The interval a question names (by time, frame or number), else the primary one."""
    q = question.lower()
    if m := _INTERVAL_NO.search(q):
        k = int(m.group(1)) - 1
        if 0 <= k < len(ev.intervals):
            return ev.intervals[k]
    if m := _TIME.search(q):
        return ev.interval_at(float(m.group(1)), tolerance=0.5)
    if m := _FRAME.search(q):
        return ev.interval_at(int(m.group(1)) / ev.fps, tolerance=0.5)
    return ev.primary


# -- the evidence-only backend ------------------------------------------------------------------------
class EvidenceBackend:
    """Answers from the Evidence alone (no model). Deterministic."""

    name = EVIDENCE_BACKEND

    def describe(self) -> str:
        return self.name

    def answer(self, ev: Evidence, question: str, history=None, *, samples: int = 1) -> Answer:
        kind = question_type(question)
        iv = focus_interval(ev, question)
        text, note = self._answer(kind, ev, iv, question)
        if iv is not None and iv.assumed:
            note = (note + " " if note else "") + "No expression stood out; this reads the strongest motion in the clip."
        return Answer(question, kind.kind, text, self.name, iv.index if iv else None, iv.label() if iv else "",
                      note.strip(), text, ev)

    def stream(self, ev: Evidence, question: str, history=None) -> Iterator[str]:
        ans = self.answer(ev, question, history)
        words = ans.display().split(" ")
        for i in range(1, len(words) + 1):
            yield " ".join(words[:i])

    # One method per question kind; each returns (answer, note).
    def _answer(self, kind: QuestionKind, ev: Evidence, iv: IntervalEvidence | None, question: str):
        if kind.kind == "open":
            return open_answer(ev, iv, question), ""
        fine, coarse, note = _emotion(iv)
        aus = _aus(iv)
        if kind.kind == "coarse":
            return coarse, note
        if kind.kind == "fine":
            return fine, note
        if kind.kind == "au_list":
            names = [a["name"] for a in aus]
            return (", ".join(names), "") if names else ("", "No action unit was measured.")
        if kind.kind == "au_presence":
            shown = iv is not None and iv.au(kind.au.code) is not None
            return ("yes" if shown else "no"), ""
        if kind.kind == "au_side":
            return _side(iv, kind.au.code), ""
        if kind.kind == "analysis":
            names = [a["name"] for a in aus] or ["none"]
            return analysis_sentence(names, fine, coarse, check=False), note
        return open_answer(ev, iv, question), ""


def _emotion(iv: IntervalEvidence | None) -> tuple[str, str, str]:
    if iv is not None and iv.top_emotion:
        e = iv.top_emotion
        return e["fine"], FINE_TO_COARSE.get(e["fine"], e["coarse"]), ""
    return PRIOR_FINE, PRIOR_COARSE, "No FACS rule matched the measured action units; this is the most frequent label of the MEGC training data."


def _aus(iv: IntervalEvidence | None) -> list[dict]:
    """Present AUs; when none passed its threshold, the strongest measured one (a best guess)."""
    if iv is None:
        return []
    return iv.aus or iv.weak_aus[:1]


def _side(iv: IntervalEvidence | None, code: str) -> str:
    """left or right (subject's own) for an AU: its side, or the stronger side when it is bilateral."""
    if iv is None:
        return "left"
    a = iv.au(code) or next((w for w in iv.weak_aus if w["code"] == code), None)
    if a is None:
        # Not measured at all: the side of the strongest unilateral AU, as the MEGC side questions
        # are asked only about lateral AUs.
        lateral = [x for x in iv.aus if x["side"] in ("left", "right")]
        return lateral[0]["side"] if lateral else "left"
    if a["side"] in ("left", "right"):
        return a["side"]
    return "left" if a.get("left", 0) >= a.get("right", 0) else "right"


_HIDING = re.compile(r"\b(hid|hide|hiding|hidden|conceal|mask|suppress|lying|lie|liar|deceiv|fake|true feeling|real feeling)")


def open_answer(ev: Evidence, iv: IntervalEvidence | None, question: str) -> str:
    """A grounded plain-language answer citing intervals and times."""
    q = question.lower()
    if not ev.intervals:
        return (f"I found no facial expression in this {ev.duration:.1f} s clip: the face shows no motion above "
                "the noise, so there is nothing to interpret.")
    if _HIDING.search(q):
        if ev.hidden:
            items = [h.explanation for h in ev.hidden]
            listed = items[0] if len(items) == 1 else "; ".join(f"({k}) {x}" for k, x in enumerate(items, 1))
            return (f"Worth a second look: {listed}. This is a flag, not proof: a micro-expression shows a brief "
                    "feeling, not a lie or its reason.")
        return ("Nothing suggests a concealed emotion: no micro-expression conflicts with the visible expressions, "
                "and none appears on an otherwise neutral face. Micro-expression analysis cannot tell whether "
                "someone is lying.")
    if (_TIME.search(q) or _FRAME.search(q)) and iv is None:
        return "Nothing happens on the face at that time: no interval was spotted there. " + summary(ev)
    if iv is not None and (_TIME.search(q) or _FRAME.search(q) or _INTERVAL_NO.search(q)):
        return describe_interval(iv)
    return summary(ev)


def describe_interval(iv: IntervalEvidence) -> str:
    aus = ", ".join(f"{a['name']} ({a['code']}, {a['side']})" for a in iv.aus) or "no clear action unit"
    emo = iv.top_emotion
    feel = f"; by the FACS rules this reads as {emo['fine']} ({emo['coarse']})" if emo else ""
    return (f"From {iv.t_onset:.2f} to {iv.t_offset:.2f} s (apex at {iv.t_apex:.2f} s, frames {iv.onset}-{iv.offset}) "
            f"there is a {iv.kind}-expression: {aus}{feel}.")


def summary(ev: Evidence) -> str:
    n_micro = sum(iv.kind == "micro" and not iv.assumed for iv in ev.intervals)
    n_macro = sum(iv.kind == "macro" and not iv.assumed for iv in ev.intervals)
    head = (f"In {ev.duration:.1f} s I spotted {n_micro} micro-expression(s) and {n_macro} macro-expression(s).")
    body = " ".join(f"#{iv.index + 1}: {describe_interval(iv)}" for iv in ev.intervals[:4])
    hid = (" " + " ".join(f"Hidden-emotion check: {h.explanation}." for h in ev.hidden)) if ev.hidden else ""
    return f"{head} {body}{hid}"


# -- the Qwen-VL backend --------------------------------------------------------------------------------
class VLMBackend:
    """Qwen-VL (plus LoRA adapter) with the evidence in its prompt."""

    def __init__(self, vlm, *, prompt: PromptConfig = PromptConfig()):
        self.vlm = vlm
        self.prompt = prompt
        self.name = f"Qwen-VL backend: {vlm.describe()}"

    def describe(self) -> str:
        return self.name

    def _messages(self, ev, question, history):
        iv = focus_interval(ev, question)
        return build_messages(ev, question, history=history, config=self.prompt, interval=iv), iv

    def answer(self, ev: Evidence, question: str, history=None, *, samples: int = 1) -> Answer:
        kind = question_type(question)
        msgs, iv = self._messages(ev, question, history)
        if samples <= 1:
            raws = [self.vlm.generate(msgs)]
        else:  # self-consistency: sample, normalise, vote (ties go to the first sampled)
            raws = self.vlm.sample(msgs, n=samples)
        return self._finish(kind, question, raws, iv, ev)

    def _finish(self, kind, question, raws, iv, ev) -> Answer:
        if kind.kind == "open":
            text, note = raws[0].strip(), ""
        else:
            normed = [normalise_answer(kind, r) for r in raws]
            votes = Counter(n for n in normed if n)
            text = votes.most_common(1)[0][0] if votes else ""
            note = "" if text else "The model's answer did not match any allowed label."
            if len(raws) > 1 and text:
                note = f"{votes[text]} of {len(raws)} samples agree."
        return Answer(question, kind.kind, text, self.name, iv.index if iv else None,
                      iv.label() if iv else "", note, raws[0], ev)

    def stream(self, ev: Evidence, question: str, history=None) -> Iterator[str]:
        kind = question_type(question)
        msgs, iv = self._messages(ev, question, history)
        text = ""
        for piece in self.vlm.stream(msgs):
            text += piece
            yield text
        ans = self._finish(kind, question, [text], iv, ev)
        yield ans.display()


# -- the agent ----------------------------------------------------------------------------------------
class Agent:
    """Question answering over clips with chat history.

    >>> agent = Agent()                                   # evidence-only
    >>> agent = Agent.from_args(model="Qwen/Qwen2.5-VL-3B-Instruct", adapter="runs/lora")
    >>> agent.ask(clip_or_evidence, "What is the coarse expression class?").text
    """

    def __init__(self, backend=None, *, notice: str | None = None):
        self.backend = backend or EvidenceBackend()
        self.notice = notice  # e.g. why a model could not be loaded

    @classmethod
    def from_args(cls, *, model: str | None = None, adapter: str | None = None, load_in_4bit: bool = False,
                  load_in_8bit: bool = False, fallback: bool = True) -> "Agent":
        """An agent over ``model`` (hub id or folder), or the evidence-only backend without one.

        With ``fallback`` a model that fails to load gives the evidence-only backend and a notice
        (the app's behaviour); without it the one-line ModelLoadError propagates (the CLI's).
        """
        if not model:
            if adapter:
                raise ValueError("--adapter needs --model (the base model the adapter was trained on)")
            return cls()
        from mevqa.vlm.model import ModelLoadError, QwenVL

        try:
            vlm = QwenVL.from_pretrained(model, adapter=adapter, load_in_4bit=load_in_4bit, load_in_8bit=load_in_8bit)
        except ModelLoadError as e:
            if not fallback:
                raise
            return cls(notice=f"Could not load the model ({e}); answering with the evidence-only backend.")
        return cls(VLMBackend(vlm))

    @property
    def backend_name(self) -> str:
        return self.backend.describe()

    @staticmethod
    def evidence_of(clip_or_evidence) -> Evidence:
        if isinstance(clip_or_evidence, Evidence):
            return clip_or_evidence
        if isinstance(clip_or_evidence, Clip):
            return compute_evidence(clip_or_evidence)
        return compute_evidence(Clip.load(clip_or_evidence))

    def ask(self, clip_or_evidence, question: str, history: list[dict] | None = None, *, samples: int = 1) -> Answer:
        """Answer one question; ``history`` is the chat so far as ``{"role", "content"}`` dicts."""
        if not question or not question.strip():
            raise ValueError("the question is empty")
        return self.backend.answer(self.evidence_of(clip_or_evidence), question.strip(), history, samples=samples)

    def stream(self, clip_or_evidence, question: str, history: list[dict] | None = None) -> Iterator[str]:
        """Yield the growing answer text as it is produced (the last item is the full answer)."""
        if not question or not question.strip():
            raise ValueError("the question is empty")
        yield from self.backend.stream(self.evidence_of(clip_or_evidence), question.strip(), history)
