"""mevqa: ask questions about facial micro-expressions in video.

The facade, as py-feat's ``Detector`` is for its users::

    import mevqa
    ev = mevqa.analyse("clip.mp4")                 # -> mevqa.Evidence (intervals, AUs, readings)
    ev.to_frame()                                  # pandas DataFrame: intervals x AUs with sides
    ev.plot()                                      # motion curve with the spotted intervals
    mevqa.Agent().ask(ev, "What are the action units?").text

Data flow (ARCHITECTURE.md): Clip (io) -> face track (face) -> aligned crops and optical flow (motion)
-> spotter (spot) + AU detector (au) -> Evidence (evidence) -> prompt and backend (vlm, answer).
The names below load on first use, so ``import mevqa`` (and ``mevqa --help``) stay fast: the
analysis pulls in MediaPipe, OpenCV and, for models, torch.
"""
from __future__ import annotations

from dataclasses import fields, replace
from importlib import import_module
from typing import TYPE_CHECKING, Any

__version__ = "0.2.0"
__all__ = ["analyse", "Agent", "Answer", "Clip", "ClipError", "Evidence", "EvidenceConfig", "__version__"]

_LAZY = {
    "Agent": "mevqa.answer.agent",
    "Answer": "mevqa.answer.agent",
    "Clip": "mevqa.io.video",
    "ClipError": "mevqa.io.video",
    "Evidence": "mevqa.evidence.builder",
    "EvidenceConfig": "mevqa.evidence.builder",
}

if TYPE_CHECKING:  # pragma: no cover - names for type checkers only
    from mevqa.answer.agent import Agent, Answer
    from mevqa.evidence.builder import Evidence, EvidenceConfig
    from mevqa.io.video import Clip, ClipError


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        return getattr(import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'mevqa' has no attribute {name!r}")


def analyse(clip, *, fps: float | None = None, cache: bool = True, progress=None, **settings) -> "Evidence":
    """The Evidence of ``clip``: spotted intervals, their action units and readings.

    ``clip`` is a video file, a dataset frame folder, ``"demo"`` or a :class:`mevqa.Clip`; ``fps``
    overrides the frame rate of a frame folder. ``settings`` are :class:`mevqa.EvidenceConfig`
    fields (``max_intervals=4``...); results are cached by clip content and settings unless
    ``cache=False``. ``progress`` is an optional ``(stage, fraction)`` callable.
    """
    from mevqa.evidence.builder import EvidenceConfig, compute_evidence
    from mevqa.io.video import Clip

    known = {f.name for f in fields(EvidenceConfig)}
    unknown = sorted(set(settings) - known)
    if unknown:
        raise TypeError(f"analyse() got unknown setting(s) {', '.join(unknown)}; known: {', '.join(sorted(known))}")
    if isinstance(clip, str) and clip == "demo":
        from mevqa.io.demo import demo_clip

        clip = demo_clip()
    elif not isinstance(clip, Clip):
        clip = Clip.load(clip, fps=fps)
    return compute_evidence(clip, config=replace(EvidenceConfig(), **settings), cache=cache, progress=progress)
