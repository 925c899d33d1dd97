"""Evidence: everything mevqa measured on a clip, in one JSON-serialisable object.

Every consumer (chat app, ``mevqa ask``, batch evaluation, the training-data builder) answers from the
same Evidence and renders it into prompts with the same template (``prompts/evidence.txt``), so what a
model is trained on is what it sees when it answers.

An Evidence holds the spotted intervals, each with its action units (side and intensity), emotion
candidates from the FACS rules, keyframes (onset, apex, offset) and the onset-to-apex flow map, the
macro-expression reading from blendshapes during and around it, its head pose and a confidence with
the reasons it was lowered; the motion curve; the **hidden-emotion check** (:mod:`mevqa.evidence.hidden`);
the expression stretches between intervals, the clip's head pose, and frame quality (face lost, mouth or
eyes occluded). Keys are only ever added to the JSON: older files still load.
"""
from __future__ import annotations

import base64
import json
from dataclasses import asdict, dataclass, field
from pathlib import Path

import cv2
import numpy as np

from mevqa.evidence.plot import plot_evidence
from mevqa.evidence.text import render_evidence

EVIDENCE_VERSION = 1


@dataclass
class IntervalEvidence:
    index: int
    onset: int
    apex: int
    offset: int
    kind: str                      # micro | macro
    score: float
    fps: float
    aus: list[dict]                # present AUs, strongest first: code, name, side, intensity, score
    emotions: list[dict]           # fine, coarse, confidence, rule
    rois: dict = field(default_factory=dict)
    weak_aus: list[dict] = field(default_factory=list)  # strongest AUs below threshold (best guesses)
    assumed: bool = False          # True when no interval was spotted and the clip's peak is used
    images: dict = field(default_factory=dict, repr=False)  # onset/apex/offset crops + flow map (RGB arrays)
    expression: dict = field(default_factory=dict)  # blendshape reading during the interval (face_state.read_stretch)
    context: dict = field(default_factory=dict)     # ... and in the second around it
    head_pose: dict = field(default_factory=dict)   # yaw/pitch/roll medians, turn, motion (degrees)
    confidence: float = 1.0        # 1 = nothing known against the reading; lowered with a note for each reason
    notes: list[str] = field(default_factory=list)
    keyframes: dict = field(default_factory=dict)  # name -> {"frame": clip index, "transform": 2x3 frame->crop}
    recognizer: dict = field(default_factory=dict)  # a trained recogniser's reading (evidence.recognized), if asked

    @property
    def t_onset(self) -> float:
        return self.onset / self.fps

    @property
    def t_apex(self) -> float:
        return self.apex / self.fps

    @property
    def t_offset(self) -> float:
        return self.offset / self.fps

    @property
    def duration(self) -> float:
        return (self.offset - self.onset + 1) / self.fps

    @property
    def top_emotion(self) -> dict | None:
        return self.emotions[0] if self.emotions else None

    def au(self, code: str) -> dict | None:
        return next((a for a in self.aus if a["code"] == code), None)

    def label(self) -> str:
        return f"#{self.index + 1} {self.kind} {self.t_onset:.2f}-{self.t_offset:.2f} s"

    def to_dict(self, *, images: bool = False) -> dict:
        d = {k: v for k, v in asdict(self).items() if k != "images"}
        d.update(t_onset=round(self.t_onset, 3), t_apex=round(self.t_apex, 3), t_offset=round(self.t_offset, 3))
        if images:
            d["images"] = {k: png_b64(v) for k, v in self.images.items()}
        return d


@dataclass
class HiddenEmotionFinding:
    interval: int                  # index into Evidence.intervals
    kind: str                      # "valence conflict" | "micro-expression on a neutral face"
    explanation: str
    onset: int
    apex: int
    offset: int
    micro_emotion: str | None
    context_emotion: str | None = None


@dataclass
class Evidence:
    clip: str
    clip_hash: str
    fps: float
    n_frames: int
    width: int
    height: int
    intervals: list[IntervalEvidence]
    hidden: list[HiddenEmotionFinding]
    curve: dict                    # times (s), motion, threshold, and per-ROI signals for plots
    lost_frames: list[int]
    settings: dict
    version: int = EVIDENCE_VERSION
    expression: list[dict] = field(default_factory=list)  # stretches (intervals and between) with readings
    head_pose: dict = field(default_factory=dict)         # clip-level pose summary
    quality: dict = field(default_factory=dict)           # face_lost, occlusions, two_faces, notes

    # -- questions are about one interval --------------------------------------------------------
    @property
    def primary(self) -> IntervalEvidence | None:
        """The interval a single-answer question is about: the strongest micro-expression, else the
        strongest interval (MEGC clips hold one expression each)."""
        if not self.intervals:
            return None
        micro = [iv for iv in self.intervals if iv.kind == "micro" and not iv.assumed]
        return max(micro or self.intervals, key=lambda iv: iv.score)

    @property
    def duration(self) -> float:
        return self.n_frames / self.fps

    def interval_at(self, seconds: float, *, tolerance: float = 0.25) -> IntervalEvidence | None:
        """The interval covering a time (or the nearest within ``tolerance`` seconds)."""
        best, dist = None, tolerance
        for iv in self.intervals:
            d = 0.0 if iv.t_onset <= seconds <= iv.t_offset else min(abs(seconds - iv.t_onset), abs(seconds - iv.t_offset))
            if d <= dist:
                best, dist = iv, d
        return best

    # -- serialisation --------------------------------------------------------------------------
    def to_dict(self, *, images: bool = False) -> dict:
        return {
            "version": self.version, "clip": self.clip, "clip_hash": self.clip_hash, "fps": self.fps,
            "n_frames": self.n_frames, "width": self.width, "height": self.height,
            "intervals": [iv.to_dict(images=images) for iv in self.intervals],
            "hidden_emotion": [asdict(h) for h in self.hidden],
            "curve": self.curve, "lost_frames": self.lost_frames, "settings": self.settings,
            "expression": self.expression, "head_pose": self.head_pose, "quality": self.quality,
        }

    def to_json(self, *, images: bool = False) -> str:
        return json.dumps(self.to_dict(images=images), ensure_ascii=False)

    @classmethod
    def from_dict(cls, d: dict) -> "Evidence":
        ivs = []
        for x in d["intervals"]:
            x = dict(x)
            imgs = {k: png_decode(v) for k, v in x.pop("images", {}).items()}
            for k in ("t_onset", "t_apex", "t_offset"):
                x.pop(k, None)
            ivs.append(IntervalEvidence(**x, images=imgs))
        return cls(d["clip"], d["clip_hash"], d["fps"], d["n_frames"], d["width"], d["height"], ivs,
                   [HiddenEmotionFinding(**h) for h in d.get("hidden_emotion", [])], d["curve"],
                   d.get("lost_frames", []), d.get("settings", {}), d.get("version", EVIDENCE_VERSION),
                   d.get("expression", []), d.get("head_pose", {}), d.get("quality", {}))

    @classmethod
    def from_json(cls, s: str) -> "Evidence":
        return cls.from_dict(json.loads(s))

    # -- tables -----------------------------------------------------------------------------------
    def to_frame(self):
        """A pandas DataFrame, one row per (interval, AU): timing, kind, confidence, AU code, name, side,
        intensity, score, left/right, and whether the AU is present (False: a best guess below threshold)."""
        # Deferred: pandas costs ~0.3 s to import and only table users need it.
        import pandas as pd  # noqa: PLC0415

        cols = ["interval", "kind", "t_onset", "t_apex", "t_offset", "confidence", "code", "name", "side",
                "intensity", "score", "left", "right", "present"]
        rows = []
        for iv in self.intervals:
            for present, aus in ((True, iv.aus), (False, iv.weak_aus)):
                for a in aus:
                    rows.append({"interval": iv.index + 1, "kind": iv.kind, "t_onset": round(iv.t_onset, 3),
                                 "t_apex": round(iv.t_apex, 3), "t_offset": round(iv.t_offset, 3),
                                 "confidence": iv.confidence, **{k: a.get(k) for k in cols[6:13]}, "present": present})
        return pd.DataFrame(rows, columns=cols)

    # -- text for prompts and terminals -----------------------------------------------------------
    def to_text(self, *, budget_tokens: int | None = None) -> str:
        """The evidence block of the prompt (template ``prompts/evidence.txt``), within a token budget.

        Tokens are estimated at 4 characters each (English text with Qwen's BPE averages close to
        that); intervals beyond the budget are dropped weakest first, and the text says so.
        """
        budget = budget_tokens or self.settings.get("text_budget_tokens", 400)
        return render_evidence(self, budget_tokens=budget)

    # -- images ---------------------------------------------------------------------------------
    def save_images(self, out_dir) -> list[Path]:
        """Keyframes and flow maps as PNG files (``interval1_apex.png``, ``interval1_flow.png``, ...)."""
        out = Path(out_dir)
        out.mkdir(parents=True, exist_ok=True)
        written = []
        for iv in self.intervals:
            for name, img in iv.images.items():
                p = out / f"interval{iv.index + 1}_{name}.png"
                if not cv2.imwrite(str(p), cv2.cvtColor(img, cv2.COLOR_RGB2BGR)):  # False on a failed write
                    raise OSError(f"cannot write {p} (full disk or no permission?)")
                written.append(p)
        fig = self.plot()
        p = out / "motion.png"
        fig.savefig(p, dpi=110, bbox_inches="tight")
        written.append(p)
        return written

    def plot(self, ax=None):
        """Motion curve over time with the intervals shaded (micro or macro), hidden-emotion flags and
        occluded stretches marked; returns the matplotlib figure."""
        return plot_evidence(self, ax=ax)

    plot_motion = plot  # the older name


def png_b64(img: np.ndarray) -> str:
    ok, buf = cv2.imencode(".png", cv2.cvtColor(img, cv2.COLOR_RGB2BGR))
    return base64.b64encode(buf.tobytes()).decode()


def png_decode(s: str) -> np.ndarray:
    buf = np.frombuffer(base64.b64decode(s), np.uint8)
    return cv2.cvtColor(cv2.imdecode(buf, cv2.IMREAD_COLOR), cv2.COLOR_BGR2RGB)
