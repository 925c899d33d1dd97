"""Evidence as text: the evidence block of every prompt and the terminal summary.

The wording lives in ``prompts/evidence.txt`` (shipped in the wheel as ``mevqa.prompts``), so the
text a model is trained on and the text it answers from come from one template.
"""
from __future__ import annotations

from functools import lru_cache
from importlib import resources

from mevqa.evidence.select import main_interval

CHARS_PER_TOKEN = 4.0  # rough average of Qwen's BPE on English prose; used only for the budget


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


def _interval_block(iv, s: dict) -> str:
    lines = [s["interval"].format(number=iv.index + 1, kind=iv.kind, assumed=" (assumed: nothing spotted)" if iv.assumed else "",
                                  t_onset=iv.t_onset, t_offset=iv.t_offset, onset=iv.onset, offset=iv.offset,
                                  apex=iv.apex, t_apex=iv.t_apex, score=iv.score)]
    lines += [s["au"].format(**a) for a in iv.aus] or [s["no_au"]]
    lines += [s["emotion"].format(**e) for e in iv.emotions[:2]]
    rec = getattr(iv, "recognizer", None) or {}
    if "label" in rec and "recognizer" in s:  # --recognizer: the learned reading, beside the FACS rules
        dist = ", ".join(f"{k} {v:.2f}" for k, v in rec["probabilities"].items())
        lines.append(s["recognizer"].format(label=rec["label"], confidence=rec["confidence"], distribution=dist))
    lines += _face_lines(iv, s)
    return "\n".join(lines)


def _face_lines(iv, s: dict) -> list[str]:
    """Blendshape reading and head pose of an interval (older evidence has neither: no lines)."""
    out = []
    face, ctx, pose = getattr(iv, "expression", None), getattr(iv, "context", None), getattr(iv, "head_pose", None)
    if face and "face" in s:
        out.append(s["face"].format(reading=face.get("reading", "?"), context=(ctx or {}).get("reading", "not seen")))
    if pose and "pose" in s:
        notes = getattr(iv, "notes", [])
        out.append(s["pose"].format(yaw=pose["yaw"], pitch=pose["pitch"], roll=pose["roll"],
                                    confidence=getattr(iv, "confidence", 1.0),
                                    why=f" ({'; '.join(notes)})" if notes else ""))
    return out


def _clip_face_lines(ev, s: dict) -> list[str]:
    """Frame quality and the face between intervals (older evidence has neither: no lines)."""
    out = []
    quality = getattr(ev, "quality", None) or {}
    if quality.get("notes") and "quality" in s:
        out.append(s["quality"].format(notes="; ".join(quality["notes"])))
    between = [x for x in getattr(ev, "expression", None) or [] if x.get("label") == "between"]
    if between and "between" in s:
        parts = [f"{x['start']:.1f}-{x['end']:.1f} s {x['reading']}" for x in between[:4]]
        out.append(s["between"].format(stretches="; ".join(parts)))
    return out


def render_evidence(ev, *, budget_tokens: int = 400, focus=None) -> str:
    """The evidence block for ``ev`` within ``budget_tokens`` (weakest intervals dropped first)."""
    s = _sections("evidence.txt")
    head = s["header"].format(clip=ev.clip.split("/")[-1], duration=ev.duration, fps=ev.fps, n_frames=ev.n_frames,
                              n_intervals=len(ev.intervals))
    head = "\n".join([head] + _clip_face_lines(ev, s))
    if not ev.intervals:
        return head + "\n" + s["none"]
    focus = focus or main_interval(ev)  # the clip's main expression (evidence.select)
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
