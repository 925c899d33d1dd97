"""The built-in demo's script, and the renderer of the asset the product ships (``mevqa/assets/demo.mp4``).

The product reads the asset through :func:`mevqa.io.demo.demo_clip`; this module is how the asset
was made and how to make it again (``mevqa synth OUT --demo``, then copy ``demo.mp4`` and
``demo.json`` into ``mevqa/assets/``). The mp4 is written the way the demo was always cached (OpenCV
mp4v), so the evidence the app shows is what it showed before the asset existed. The asset is frozen:
re-rendering follows the landmarker of the day (the asset was made with FaceMesh landmarks; the Face
Landmarker places the face about 1 px apart), so refresh it on purpose, not as a side effect.
"""
from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path

from mevqa.io.demo import DEMO_MP4, demo_clip as _load_asset
from mevqa.io.video import Clip, write_clip
from mevqa.testing.synth.clips import make_clip
from mevqa.testing.synth.specs import SynthConfig, SynthEvent

DEMO_BLINKS = ((18, 24),)


def demo_events() -> list[SynthEvent]:
    """The demo's script at 30 fps: a left AU14 (contempt) micro-expression, then a smile with a
    fleeting brow lowering inside it (a hidden negative emotion)."""
    return [
        SynthEvent(33, 39, 45, "micro", ("AU14",), "left", 3.0, "contempt"),
        SynthEvent(57, 72, 108, "macro", ("AU6", "AU12"), "both", 7.0, "happiness"),
        SynthEvent(80, 84, 89, "micro", ("AU4",), "both", 2.5, "anger"),
    ]


def demo_config() -> SynthConfig:
    """4 s, 30 fps, 640x480, the bundled photo, light noise, drift on; the seed fixes drift and noise."""
    return SynthConfig(width=640, height=480, fps=30.0, seconds=4.0, blinks=True, drift=True, noise=1.5,
                       flicker=0.005, seed=2025)


def render_demo() -> tuple[Clip, dict]:
    """The demo rendered in memory (uncompressed) and its ground truth, named like the asset."""
    return make_clip(demo_config(), events=demo_events(), blinks=list(DEMO_BLINKS), name=DEMO_MP4.name)


def write_demo(folder) -> Path:
    """Render the demo into ``folder`` as ``demo.mp4`` + ``demo.json`` (written aside, then renamed)."""
    folder = Path(folder).expanduser()
    folder.mkdir(parents=True, exist_ok=True)
    clip, gt = render_demo()
    mp4, js = folder / DEMO_MP4.name, folder / DEMO_MP4.with_suffix(".json").name
    with tempfile.TemporaryDirectory(dir=folder) as tmp:
        tmp_mp4 = write_clip(clip.frames, Path(tmp) / mp4.name, fps=clip.fps)
        (Path(tmp) / js.name).write_text(json.dumps(gt, indent=1) + "\n")
        os.replace(tmp_mp4, mp4)
        os.replace(Path(tmp) / js.name, js)
    return mp4


def demo_clip() -> tuple[Clip, dict]:
    """The shipped demo clip (what the product analyses) and its ground truth."""
    clip = _load_asset()
    return clip, clip.meta["ground_truth"]
