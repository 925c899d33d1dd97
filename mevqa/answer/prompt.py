"""The one prompt builder, shared by inference (``mevqa ask``, the app, ``mevqa eval``) and training.

A prompt is a Qwen-VL chat: the system text (``prompts/system.txt``), then a user turn holding the
visual inputs (keyframes of the interval in question and its onset-to-apex flow map), the evidence
block (``prompts/evidence.txt``), the question and the answer instruction for its kind
(``prompts/instructions.txt``). Training appends the answer as the assistant turn: the same function
builds both, so a fine-tuned adapter sees at inference exactly the layout it was trained on.
"""
from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

from mevqa.answer.questions import QuestionKind, answer_options, question_type
from mevqa.evidence.select import main_interval
from mevqa.evidence.text import estimate_tokens, load_template, render_evidence  # noqa: F401 (re-exported)



@dataclass(frozen=True)
class PromptConfig:
    """What goes into a prompt. Visual inputs: ``keyframes`` of the focused interval plus its flow map."""

    keyframes: tuple[str, ...] = ("onset", "apex", "offset")
    flow_map: bool = True
    evidence: bool = True
    budget_tokens: int = 400  # the evidence block's budget


@lru_cache(maxsize=None)
def _instructions() -> dict[str, str]:
    out = {}
    for line in load_template("instructions.txt").splitlines():
        if line.strip() and not line.startswith("#") and ":" in line:
            k, v = line.split(":", 1)
            out[k.strip()] = v.strip()
    return out


def system_prompt() -> str:
    return load_template("system.txt").strip()


def instruction_for(kind: QuestionKind) -> str:
    text = _instructions()[kind.kind]
    return text.format(options=answer_options(kind), au=kind.au.name if kind.au else "the action unit")


def visual_inputs(ev, interval=None, *, config: PromptConfig = PromptConfig()) -> list:
    """Images for the prompt: the interval's keyframes and flow map (RGB arrays), in a fixed order."""
    iv = interval or main_interval(ev)
    if iv is None:
        return []
    names = list(config.keyframes) + (["flow"] if config.flow_map else [])
    return [iv.images[n] for n in names if n in iv.images]


def build_messages(ev, question: str, *, history: list[dict] | None = None, answer: str | None = None,
                   config: PromptConfig = PromptConfig(), interval=None) -> list[dict]:
    """Qwen-VL chat messages for one question (and, for training, its answer).

    ``history`` holds earlier turns as ``{"role", "content"}`` dicts with text content; the images go
    with the first user turn only, so a long chat does not repeat them.
    """
    kind = question_type(question)
    iv = interval or (main_interval(ev) if ev is not None else None)
    images = visual_inputs(ev, iv, config=config) if ev is not None else []
    msgs: list[dict] = [{"role": "system", "content": [{"type": "text", "text": system_prompt()}]}]
    first_text = ""
    if ev is not None and config.evidence:
        first_text = render_evidence(ev, budget_tokens=config.budget_tokens, focus=iv) + "\n\n"
    turns = list(history or [])
    content = [{"type": "image", "image": im} for im in images]
    if turns:
        # The first earlier user turn carries the images and evidence; later ones are plain text.
        msgs.append({"role": "user", "content": content + [{"type": "text", "text": first_text + _text(turns[0])}]})
        msgs += [{"role": t["role"], "content": [{"type": "text", "text": _text(t)}]} for t in turns[1:]]
        content, first_text = [], ""
    msgs.append({"role": "user", "content": content + [
        {"type": "text", "text": f"{first_text}Question: {question}\n{instruction_for(kind)}"}]})
    if answer is not None:
        msgs.append({"role": "assistant", "content": [{"type": "text", "text": answer}]})
    return msgs


def _text(turn: dict) -> str:
    c = turn["content"]
    if isinstance(c, str):
        return c
    return " ".join(p.get("text", "") for p in c if isinstance(p, dict))
