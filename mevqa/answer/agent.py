"""The answering agent: question -> answer over one clip, with chat history and two backends.

- :class:`EvidenceBackend`, the embedded default, needs no model weights. MEGC questions are answered
  from one :class:`~mevqa.answer.readings.Reading` of the interval the question is about
  (:func:`mevqa.evidence.select.resolve`: the clip's main expression unless the question names a time,
  range, number or ordinal), so a clip's answers agree with each other and every fallback is said in
  the answer's note. Open questions go to a small grounded reasoner over the whole Evidence and the
  chat history (:mod:`mevqa.answer.reasoner`).
- :class:`VLMBackend` asks a Qwen-VL model (optionally with a LoRA adapter) with the same evidence and
  history in its prompt, plus keyframes and the flow map of the interval in focus
  (:mod:`mevqa.answer.prompt`).

Questions longer than :data:`MAX_QUESTION_CHARS` are refused with one line (parsing is linear-time,
but nobody asks a 2,000-character question about a face). Every :class:`Answer` says which backend
produced it.
"""
from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import Iterator

from mevqa.evidence.builder import Evidence, IntervalEvidence, compute_evidence
from mevqa.evidence.select import main_interval, resolve
from mevqa.answer.prompt import PromptConfig, build_messages
from mevqa.answer.questions import normalise_answer, question_type
from mevqa.answer.readings import PRIOR_COARSE, PRIOR_FINE, answer_megc  # noqa: F401 (PRIOR_* re-exported)
from mevqa.answer.reasoner import answer_open
from mevqa.io.video import Clip

EVIDENCE_BACKEND = "evidence-only backend (no model loaded): answers from the spotter, the AU detector and FACS rules"
MAX_QUESTION_CHARS = 2000


def check_question(question) -> str:
    """The question stripped; ValueError (one line) when it is empty or longer than the limit."""
    if not isinstance(question, str) or not question.strip():
        raise ValueError("the question is empty")
    q = question.strip()
    if len(q) > MAX_QUESTION_CHARS:
        raise ValueError(f"the question is {len(q)} characters long; the limit is {MAX_QUESTION_CHARS}")
    return q


@dataclass
class Answer:
    question: str
    kind: str
    text: str                      # the answer (scoreable form for MEGC question kinds)
    backend: str                   # which backend produced it
    interval: int | None = None    # index of the interval the answer relies on
    cited: str = ""                # "interval #2 micro 1.20-1.43 s"
    note: str = ""                 # caveats (fallback AU, label prior, unparsable model output)
    raw: str = ""                  # the model's own words, before normalisation
    evidence: Evidence | None = field(default=None, repr=False)

    def to_dict(self, *, include_evidence: bool = False) -> dict:
        d = {k: getattr(self, k) for k in ("question", "kind", "text", "backend", "interval", "cited", "note", "raw")}
        if include_evidence and self.evidence is not None:
            d["evidence"] = self.evidence.to_dict()
        return d

    def grounds(self) -> str:
        """What the answer rests on and its caveats, in one line ("" when there is nothing to add)."""
        parts = [f"Based on {self.cited}." if self.cited else "", self.note]
        return " ".join(p for p in parts if p)

    def display(self) -> str:
        """Answer text for a chat: the answer, what it rests on, its caveats, and the backend."""
        parts = [self.text or "(no answer)", self.grounds()]
        return " ".join(p for p in parts if p) + f"\n\n_{self.backend}_"


# -- picking the interval a question is about -------------------------------------------------------
def focus_interval(ev: Evidence, question: str) -> IntervalEvidence | None:
    """The interval an answer to ``question`` rests on (:func:`mevqa.evidence.select.resolve`): the one
    the question names, else the clip's main expression. Used for prompts and training samples."""
    focus = resolve(ev, question)
    return focus.interval if focus.interval is not None else main_interval(ev)


# -- the evidence-only backend ------------------------------------------------------------------------
class EvidenceBackend:
    """Answers from the Evidence alone (no model). Deterministic."""

    name = EVIDENCE_BACKEND

    def describe(self) -> str:
        return self.name

    def answer(self, ev: Evidence, question: str, history=None, *, samples: int = 1) -> Answer:
        question = check_question(question)
        kind = question_type(question)
        if kind.kind == "open":
            text, iv, note = answer_open(ev, question, history)
        else:
            text, iv, note, _ = answer_megc(ev, question, kind)
        return Answer(question, kind.kind, text, self.name, iv.index if iv is not None else None,
                      iv.label() if iv is not None else "", note.strip(), text, ev)

    def stream(self, ev: Evidence, question: str, history=None) -> Iterator[str]:
        ans = self.answer(ev, question, history)
        words = ans.display().split(" ")
        for i in range(1, len(words) + 1):
            yield " ".join(words[:i])


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
        question = check_question(question)
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
        """Answer one question; ``history`` is the chat so far as ``{"role", "content"}`` dicts.

        ValueError (one line) for an empty question or one over :data:`MAX_QUESTION_CHARS`."""
        question = check_question(question)
        return self.backend.answer(self.evidence_of(clip_or_evidence), question, history, samples=samples)

    def stream(self, clip_or_evidence, question: str, history: list[dict] | None = None) -> Iterator[str]:
        """Yield the growing answer text as it is produced (the last item is the full answer).

        An empty or over-long question yields one line saying why (a chat shows it as the reply)."""
        try:
            question = check_question(question)
        except ValueError as e:
            yield f"I cannot answer that: {e}."
            return
        yield from self.backend.stream(self.evidence_of(clip_or_evidence), question, history)
