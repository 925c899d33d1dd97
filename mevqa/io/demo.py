"""The built-in demo clip: a small synthetic clip shipped with the package as an asset.

``mevqa/assets/demo.mp4`` (4 s, 30 fps, 640x480) and its ground truth ``demo.json`` beside it were
rendered once by :mod:`mevqa.testing.synth.demo` (the script: a blink, a left contempt
micro-expression, then a smile hiding a micro brow lowering). The product reads the file, so
``mevqa ask demo ...``, ``mevqa spot demo`` and the app never import the synthesiser, and every run
analyses the same compressed pixels.
"""
from __future__ import annotations

import json
from pathlib import Path

from mevqa.io.video import Clip, ClipError

DEMO_MP4 = Path(__file__).resolve().parents[1] / "assets" / "demo.mp4"
DEMO_JSON = DEMO_MP4.with_suffix(".json")


def demo_ground_truth() -> dict:
    """The demo's ground truth (events, blinks, drift) as written beside the asset."""
    try:
        return json.loads(DEMO_JSON.read_text(encoding="utf-8"))
    except (OSError, ValueError) as e:
        raise ClipError(f"{DEMO_JSON}: the demo's ground truth is missing or unreadable; reinstall mevqa") from e


def demo_clip() -> Clip:
    """The shipped demo clip, its ground truth in ``meta["ground_truth"]`` (``meta["synthetic"]`` True).

    A fresh Clip each call (callers may keep or change its frames); decoding takes ~0.3 s.
    """
    if not DEMO_MP4.is_file():
        raise ClipError(f"{DEMO_MP4}: the demo clip is missing; reinstall mevqa")
    gt = demo_ground_truth()
    clip = Clip.load(DEMO_MP4)
    if clip.n_frames != gt.get("n_frames"):
        raise ClipError(f"{DEMO_MP4}: {clip.n_frames} frames where its ground truth says {gt.get('n_frames')}; "
                        "reinstall mevqa")
    clip.source = DEMO_MP4.name  # as the app names uploads: the file's name, not the install path
    clip.meta.update(synthetic=True, ground_truth=gt)
    return clip
