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
from importlib import resources

from mevqa.answer.questions import QuestionKind, answer_options, question_type

CHARS_PER_TOKEN = 4.0  # rough average of Qwen's BPE on English prose; used only for the budget


@dataclass(frozen=True)
class PromptConfig:
    """What goes into a prompt. Visual inputs: ``keyframes`` of the focused interval plus its flow map."""

    keyframes: tuple[str, ...] = ("onset", "apex", "offset")
    flow_map: bool = True
    evidence: bool = True
    budget_tokens: int = 400  # the evidence block's budget


@lru_cache(maxsize=None)
def load_template(name: str) -> str:
    """A template file from ``prompts/`` (shipped in the wheel as ``mevqa.prompts``)."""
    return resources.files("mevqa.prompts").joinpath(name).read_text(encoding="utf-8")


@lru_cache(maxsize=None)
def _sections(name: str) -> dict[str, str]:
    """``[section]`` blocks of a template file; '#' lines are comments."""
    out, cur = {}, None
    for line in load_template(name).splitlines():
        if line.startswith("#"):
            continue
        if line.startswith("[") and line.rstrip().endswith("]"):
            cur = line.strip()[1:-1]
            out[cur] = []
        elif cur is not None and line.strip():
            out[cur].append(line)
    return {k: "\n".join(v) for k, v in out.items()}


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


def _interval_block(iv, s: dict) -> str:
    lines = [s["interval"].format(number=iv.index + 1, kind=iv.kind, assumed=" (assumed: nothing spotted)" if iv.assumed else "",
                                  t_onset=iv.t_onset, t_offset=iv.t_offset, onset=iv.onset, offset=iv.offset,
                                  apex=iv.apex, t_apex=iv.t_apex, score=iv.score)]
    lines += [s["au"].format(**a) for a in iv.aus] or [s["no_au"]]
    lines += [s["emotion"].format(**e) for e in iv.emotions[:2]]
    return "\n".join(lines)


def render_evidence(ev, *, budget_tokens: int = 400, focus=None) -> str:
    """The evidence block for ``ev`` within ``budget_tokens`` (weakest intervals dropped first)."""
    s = _sections("evidence.txt")
    head = s["header"].format(clip=ev.clip.split("/")[-1], duration=ev.duration, fps=ev.fps, n_frames=ev.n_frames,
                              n_intervals=len(ev.intervals))
    if not ev.intervals:
        return head + "\n" + s["none"]
    focus = focus or ev.primary
    hidden = [s["hidden"].format(explanation=h.explanation) for h in ev.hidden]
    focus_line = [s["focus"].format(number=focus.index + 1)] if focus is not None else []
    budget = budget_tokens * CHARS_PER_TOKEN
    # Always keep the header and the focused interval; then hidden-emotion findings, then the
    # strongest other intervals, while they fit. Intervals print in time order.
    blocks = {iv.index: _interval_block(iv, s) for iv in ev.intervals}
    kept = {focus.index} if focus is not None else set()
    used = len(head) + sum(len(blocks[k]) + 1 for k in kept) + sum(len(x) + 1 for x in focus_line)
    kept_hidden = []
    for line in hidden:
        if used + len(line) + 1 <= budget:
            kept_hidden.append(line)
            used += len(line) + 1
    for iv in sorted(ev.intervals, key=lambda iv: -iv.score):
        if iv.index not in kept and used + len(blocks[iv.index]) + 1 <= budget:
            kept.add(iv.index)
            used += len(blocks[iv.index]) + 1
    parts = [head] + [blocks[iv.index] for iv in ev.intervals if iv.index in kept]
    if len(kept) < len(ev.intervals):
        parts.append(s["dropped"].format(n=len(ev.intervals) - len(kept)))
    if not hidden:
        parts.append(s["no_hidden"])
    return "\n".join(parts + kept_hidden + focus_line)


def estimate_tokens(text: str) -> int:
    return int(len(text) / CHARS_PER_TOKEN + 0.999)


def visual_inputs(ev, interval=None, *, config: PromptConfig = PromptConfig()) -> list:
    """Images for the prompt: the interval's keyframes and flow map (RGB arrays), in a fixed order."""
    iv = interval or ev.primary
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
    iv = interval or (ev.primary if ev is not None else None)
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
