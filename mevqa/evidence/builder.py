"""Evidence: everything mevqa measured on a clip, in one JSON-serialisable object.

Every consumer (chat app, ``mevqa ask``, batch evaluation, the training-data builder) answers from the
same Evidence and renders it into prompts with the same template (``prompts/evidence.txt``), so what a
model is trained on is what it sees when it answers.

An Evidence holds the spotted intervals, each with its action units (side and intensity), emotion
candidates from the FACS rules, keyframes (onset, apex, offset) and the onset-to-apex flow map; the
motion curve; and a **hidden-emotion check**. The check follows the idea behind Ekman's "leakage"
(Ekman & Friesen, "Nonverbal leakage and clues to deception", Psychiatry 1969; Ekman, "Telling Lies",
1985): a micro-expression whose valence conflicts with the surrounding macro-expression (a fleeting brow
lowering inside a smile), or a micro-expression on an otherwise neutral face, is worth a second look. It
is a flag, not a verdict: nothing here detects lies.

Evidence is computed once per clip and cached by the clip's content hash and the settings.
"""
from __future__ import annotations

import base64
import hashlib
import json
import os
from collections import OrderedDict
from dataclasses import asdict, dataclass, field
from functools import lru_cache
from pathlib import Path

import numpy as np

from mevqa.facs.emotions import emotion_candidates
from mevqa.motion.flow import flow_to_rgb
from mevqa.motion.frontend import FrontEnd, FrontEndConfig, run_frontend
from mevqa.io.video import Clip
from mevqa.evidence.text import render_evidence

EVIDENCE_VERSION = 1


@dataclass(frozen=True)
class EvidenceConfig:
    """Settings that change the evidence (and so its cache key)."""

    frontend: FrontEndConfig = FrontEndConfig()
    max_intervals: int = 8          # strongest intervals kept
    flow_map_scale: float = 3.0     # px in the aligned crop that saturates a flow map
    curve_points: int = 400         # motion curve samples kept for plots
    assume_expression: bool = True  # no interval spotted -> analyse the strongest motion of the clip
    text_budget_tokens: int = 400   # the prompt's evidence block stays within this (about 4 chars a token)


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
            d["images"] = {k: _png_b64(v) for k, v in self.images.items()}
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
        }

    def to_json(self, *, images: bool = False) -> str:
        return json.dumps(self.to_dict(images=images), ensure_ascii=False)

    @classmethod
    def from_dict(cls, d: dict) -> "Evidence":
        ivs = []
        for x in d["intervals"]:
            x = dict(x)
            imgs = {k: _png_decode(v) for k, v in x.pop("images", {}).items()}
            for k in ("t_onset", "t_apex", "t_offset"):
                x.pop(k, None)
            ivs.append(IntervalEvidence(**x, images=imgs))
        return cls(d["clip"], d["clip_hash"], d["fps"], d["n_frames"], d["width"], d["height"], ivs,
                   [HiddenEmotionFinding(**h) for h in d.get("hidden_emotion", [])], d["curve"],
                   d.get("lost_frames", []), d.get("settings", {}), d.get("version", EVIDENCE_VERSION))

    @classmethod
    def from_json(cls, s: str) -> "Evidence":
        return cls.from_dict(json.loads(s))

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
        import cv2

        out = Path(out_dir)
        out.mkdir(parents=True, exist_ok=True)
        written = []
        for iv in self.intervals:
            for name, img in iv.images.items():
                p = out / f"interval{iv.index + 1}_{name}.png"
                cv2.imwrite(str(p), cv2.cvtColor(img, cv2.COLOR_RGB2BGR))
                written.append(p)
        fig = self.plot_motion()
        p = out / "motion.png"
        fig.savefig(p, dpi=110, bbox_inches="tight")
        written.append(p)
        return written

    def plot_motion(self, ax=None):
        """Motion curve over time with the spotted intervals shaded and labelled micro or macro."""
        import matplotlib

        matplotlib.use("Agg", force=False)
        import matplotlib.pyplot as plt

        if ax is None:
            fig, ax = plt.subplots(figsize=(9, 2.8))
        else:
            fig = ax.figure
        t = np.asarray(self.curve.get("times", []))
        if len(t):
            ax.plot(t, self.curve["motion"], color="#1f4e79", lw=1.4, label="facial motion")
            if self.curve.get("threshold"):
                ax.plot(t, self.curve["threshold"], color="#999999", lw=1, ls="--", label="threshold")
        colours = {"micro": "#d62728", "macro": "#ff9f1c"}
        for iv in self.intervals:
            ax.axvspan(iv.t_onset, iv.t_offset, color=colours.get(iv.kind, "#888"), alpha=0.22 if not iv.assumed else 0.1)
            top = iv.top_emotion["fine"] if iv.top_emotion else ""
            ax.annotate(f"{iv.index + 1}: {iv.kind}\n{top}", (iv.t_apex, 1.0), xycoords=("data", "axes fraction"),
                        ha="center", va="top", fontsize=8, color=colours.get(iv.kind, "#444"))
            ax.axvline(iv.t_apex, color=colours.get(iv.kind, "#888"), lw=0.8)
        for h in self.hidden:
            ax.axvspan(h.onset / self.fps, h.offset / self.fps, ymax=0.08, color="#6a0dad", alpha=0.8)
        ax.set_xlim(0, self.duration)
        ax.set_xlabel("time (s)")
        ax.set_ylabel("motion (px)")
        ax.legend(loc="upper left", fontsize=8, frameon=False)
        ax.set_title(f"{Path(self.clip).name}: {len(self.intervals)} interval(s)", fontsize=10)
        fig.tight_layout()
        return fig


# ---------------------------------------------------------------------------------------------
def _png_b64(img: np.ndarray) -> str:
    import cv2

    ok, buf = cv2.imencode(".png", cv2.cvtColor(img, cv2.COLOR_RGB2BGR))
    return base64.b64encode(buf.tobytes()).decode()


def _png_decode(s: str) -> np.ndarray:
    import cv2

    buf = np.frombuffer(base64.b64decode(s), np.uint8)
    return cv2.cvtColor(cv2.imdecode(buf, cv2.IMREAD_COLOR), cv2.COLOR_BGR2RGB)


def _downsample_curve(t: np.ndarray, ys: dict, n: int) -> dict:
    if len(t) <= n:
        idx = np.arange(len(t))
    else:
        idx = np.unique(np.round(np.linspace(0, len(t) - 1, n)).astype(int))
    return {k: [round(float(v), 4) for v in np.asarray(y)[idx]] for k, y in {"times": t, **ys}.items()}


def _calm_around(iv: IntervalEvidence, curve: dict | None, seconds: float) -> bool:
    """Whether the motion curve is quiet in the ``seconds`` before and after an interval.

    Quiet means the median motion there stays under the spotter's threshold (or, without one, under a
    third of the interval's own peak): a held or ongoing expression is not a neutral face.
    """
    if not curve or not curve.get("times"):
        return True
    t = np.asarray(curve["times"], float)
    m = np.asarray(curve["motion"], float)
    ctx = ((t >= iv.t_onset - seconds) & (t < iv.t_onset)) | ((t > iv.t_offset) & (t <= iv.t_offset + seconds))
    if not ctx.any():
        return True
    inside = (t >= iv.t_onset) & (t <= iv.t_offset)
    peak = m[inside].max() if inside.any() else m.max()
    limit = np.median(np.asarray(curve["threshold"], float)[ctx]) if curve.get("threshold") else peak / 3
    return float(np.median(m[ctx])) <= max(limit, 1e-6)


def hidden_emotion_check(intervals: list[IntervalEvidence], fps: float, *, curve: dict | None = None,
                         context_seconds: float = 0.4) -> list[HiddenEmotionFinding]:
    """Flag micro-expressions that conflict with their context or appear on an otherwise neutral face.

    A micro-expression *inside or next to* (within ``context_seconds``) a macro-expression of another
    valence is a "valence conflict" (a fleeting brow lowering inside a smile). A micro-expression with
    no other expression within ``context_seconds`` is a "micro-expression on a neutral face"; a burst of
    movements (laughter broken into pieces, talking), or one over a face that keeps moving (``curve``,
    the motion curve, stays above the threshold around it), is neither. Both are flags to look at, not proof
    of concealment.
    """
    found = []
    real = [iv for iv in intervals if not iv.assumed]
    pad = context_seconds * fps
    for iv in real:
        if iv.kind != "micro" or not iv.top_emotion:
            continue
        mine = iv.top_emotion
        near = [o for o in real if o is not iv and o.onset - pad <= iv.offset and iv.onset <= o.offset + pad]
        macros = [m for m in near if m.kind == "macro"]
        when = f"{iv.t_onset:.2f}-{iv.t_offset:.2f} s (frames {iv.onset}-{iv.offset})"
        aus = ", ".join(a["name"] for a in iv.aus[:3]) or "facial motion"
        if macros:
            ctx = max(macros, key=lambda m: m.score)
            theirs = ctx.top_emotion
            if theirs and theirs["coarse"] != mine["coarse"]:
                found.append(HiddenEmotionFinding(
                    iv.index, "valence conflict",
                    f"a fleeting {mine['fine']} micro-expression ({aus}) at {when} conflicts with the surrounding "
                    f"{theirs['fine']} expression ({ctx.t_onset:.2f}-{ctx.t_offset:.2f} s)",
                    iv.onset, iv.apex, iv.offset, mine["fine"], theirs["fine"]))
        elif not near and _calm_around(iv, curve, 2 * context_seconds):
            found.append(HiddenEmotionFinding(
                iv.index, "micro-expression on a neutral face",
                f"a brief {mine['fine']} micro-expression ({aus}) at {when} on an otherwise neutral face",
                iv.onset, iv.apex, iv.offset, mine["fine"], None))
    return found


# -- computing --------------------------------------------------------------------------------
def _interval_evidence(front: FrontEnd, k: int, onset: int, apex: int, offset: int, kind: str, score: float,
                       rois: dict, config: EvidenceConfig, *, assumed: bool = False) -> IntervalEvidence:
    from mevqa.au.detector import detect_aus

    res = detect_aus(front, onset, apex)
    ranked = sorted(res.aus, key=lambda a: -a.score)
    rows = [{"code": a.code, "name": a.name, "side": a.side, "intensity": round(float(a.intensity), 3),
             "score": round(float(a.score), 3), "left": round(float(a.left), 3), "right": round(float(a.right), 3)}
            for a in ranked]
    aus = [r for r, a in zip(rows, ranked) if a.present]
    weak = [r for r, a in zip(rows, ranked) if not a.present][:2]
    cands = emotion_candidates([(a["code"], a["side"], a["score"]) for a in aus])
    emotions = [{"fine": c.fine, "coarse": c.coarse, "confidence": round(float(c.confidence), 3), "rule": c.rule}
                for c in cands[:3]]
    crops = front.faces.crops
    images = {"onset": crops[front.to_analysis(onset)], "apex": crops[front.to_analysis(apex)],
              "offset": crops[front.to_analysis(offset)]}
    if getattr(res, "flow", None) is not None:
        images["flow"] = flow_to_rgb(res.flow, max_magnitude=config.flow_map_scale)
    return IntervalEvidence(k, int(onset), int(apex), int(offset), kind, round(float(score), 4), front.clip.fps,
                            aus, emotions, {r: round(float(v), 4) for r, v in (rois or {}).items()}, weak, assumed,
                            images)


def _coded_interval(front: FrontEnd, sr, coded: tuple, config: EvidenceConfig) -> IntervalEvidence:
    """The interval a dataset's coding sheet gives (onset, apex or None, offset or None), measured.

    A missing apex is the frame of strongest motion in [onset, offset]; a missing offset is the clip's
    last frame. The motion score and ROI contributions come from the spotted interval that overlaps it
    most (0 when none does).
    """
    clip = front.clip
    last = clip.n_frames - 1
    onset, apex, offset = coded
    if not 0 <= int(onset) <= last:
        raise ValueError(f"{clip.source}: onset {onset} is outside the clip (0-{last})")
    offset = last if offset is None else min(int(offset), last)
    onset = min(int(onset), offset)
    if apex is None:
        lo, hi = front.to_analysis(onset), front.to_analysis(offset)
        apex = int(front.to_clip(lo + int(np.argmax(np.asarray(sr.combined)[lo:hi + 1]))))
    apex = int(min(max(int(apex), onset), offset))

    def overlap(iv):
        inter = min(iv.offset, offset) - max(iv.onset, onset) + 1
        return inter / (max(iv.offset, offset) - min(iv.onset, onset) + 1) if inter > 0 else 0.0

    best = max(sr.intervals, key=overlap, default=None)
    best = best if best is not None and overlap(best) > 0 else None
    kind = "micro" if (offset - onset + 1) / clip.fps <= 0.5 else "macro"
    return _interval_evidence(front, 0, onset, apex, offset, kind, best.score if best else 0.0,
                              getattr(best, "rois", {}) if best else {}, config)


def evidence_from_frontend(front: FrontEnd, *, config: EvidenceConfig = EvidenceConfig(), coded: tuple | None = None,
                           progress=None) -> Evidence:
    """Spot, detect AUs per interval, apply the FACS rules and the hidden-emotion check.

    With ``coded = (onset, apex, offset)`` (a dataset's coding sheet; apex/offset may be None) the
    evidence holds that one interval instead of the spotted ones: training uses the labelled frames.
    """
    from mevqa.spot.spotter import spot

    clip = front.clip
    # 1. Spot intervals; keep the strongest few, in time order (or measure the coded one).
    sr = spot(front)
    intervals = []
    if coded is not None:
        intervals.append(_coded_interval(front, sr, coded, config))
        spotted = []
    else:
        spotted = sorted(sorted(sr.intervals, key=lambda iv: -iv.score)[: config.max_intervals], key=lambda iv: iv.onset)
    # 2. AUs and emotions per interval.
    for k, iv in enumerate(spotted):
        intervals.append(_interval_evidence(front, k, iv.onset, iv.apex, iv.offset, iv.kind, iv.score,
                                            getattr(iv, "rois", {}), config))
        if progress:
            progress(k + 1, len(spotted))
    # 3. Nothing spotted in a clip that is supposed to hold one expression (a dataset clip): analyse
    #    the strongest motion anyway, marked as assumed so answers can say how sure they are.
    if not intervals and config.assume_expression and len(sr.combined):
        a = int(np.argmax(sr.combined))
        apex = int(front.to_clip(a))
        if apex > 0:
            intervals.append(_interval_evidence(front, 0, 0, apex, clip.n_frames - 1,
                                                "micro" if clip.duration <= 0.5 else "macro", 0.0, {}, config,
                                                assumed=True))
    # 4. Hidden-emotion check and the curve for plots.
    ys = {"motion": sr.combined}
    if getattr(sr, "threshold", None) is not None and len(sr.threshold) == len(sr.combined):
        ys["threshold"] = sr.threshold
    curve = _downsample_curve(np.asarray(sr.times), ys, config.curve_points)
    hidden = hidden_emotion_check(intervals, clip.fps, curve=curve)
    settings = {"max_fps": config.frontend.max_fps, "crop": config.frontend.align.size,
                "text_budget_tokens": config.text_budget_tokens, "step": front.step}
    if coded is not None:
        settings["interval"] = "coded (onset/apex/offset from the coding sheet)"
    lost = [int(front.to_clip(i)) for i in front.track.lost_frames]
    return Evidence(clip.source, clip.content_hash(), clip.fps, clip.n_frames, clip.size[0], clip.size[1],
                    intervals, hidden, curve, lost, settings)


_ANALYSIS_PACKAGES = ("io", "face", "motion", "spot", "au", "facs", "evidence")


@lru_cache(maxsize=1)
def _code_version() -> str:
    """A hash of the analysis code itself: a cache entry made by other code is never reused."""
    h = hashlib.sha1()
    here = Path(__file__).parent.parent
    for name in _ANALYSIS_PACKAGES:
        for p in sorted((here / name).glob("*.py")):
            h.update(p.read_bytes())
    return h.hexdigest()[:8]


def _settings_key(config: EvidenceConfig) -> str:
    return hashlib.sha1(f"{EVIDENCE_VERSION}{_code_version()}{config!r}".encode()).hexdigest()[:10]


def cache_dir() -> Path:
    root = os.environ.get("MEVQA_CACHE") or os.path.join(os.environ.get("XDG_CACHE_HOME", "~/.cache"), "mevqa")
    return Path(root).expanduser() / "evidence"


_memory: "OrderedDict[str, Evidence]" = OrderedDict()
MEMORY_ITEMS = 32  # evidence kept in memory (a long-running app must not grow without bound)


def _remember(key: str, ev: Evidence) -> None:
    _memory[key] = ev
    _memory.move_to_end(key)
    while len(_memory) > MEMORY_ITEMS:
        _memory.popitem(last=False)


def compute_evidence(clip: Clip, *, config: EvidenceConfig = EvidenceConfig(), coded: tuple | None = None,
                     cache: bool = True, progress=None) -> Evidence:
    """The Evidence of a clip, computed once and cached by clip content and settings.

    ``coded = (onset, apex, offset)`` measures a dataset's labelled interval instead of the spotted
    ones (see :func:`evidence_from_frontend`). The cache lives in memory and on disk (``$MEVQA_CACHE``
    or ``~/.cache/mevqa/evidence``); set ``cache=False`` to recompute. ``progress`` is an optional
    ``(stage: str, fraction: float)`` callable.
    """
    key = f"{clip.content_hash()}-{_settings_key(config)}"
    if coded is not None:
        key += "-coded-" + "-".join("x" if v is None else str(int(v)) for v in coded)
    if cache and key in _memory:
        _memory.move_to_end(key)
        return _memory[key]
    path = cache_dir() / f"{key}.json"
    if cache and path.exists():
        try:
            ev = Evidence.from_json(path.read_text())
            ev.clip = clip.source
            _remember(key, ev)
            return ev
        except (ValueError, KeyError, TypeError):
            pass  # an old or damaged cache entry: recompute
    say = progress or (lambda stage, frac: None)
    say("tracking the face", 0.0)
    front = run_frontend(clip, config=config.frontend,
                         progress=lambda i, n: say("tracking the face", 0.6 * i / n))
    say("spotting and reading action units", 0.6)
    ev = evidence_from_frontend(front, config=config, coded=coded,
                                progress=lambda i, n: say("reading action units", 0.6 + 0.4 * i / n))
    say("done", 1.0)
    if cache:
        _remember(key, ev)
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            tmp = path.with_suffix(f".{os.getpid()}.tmp")  # one writer per process
            tmp.write_text(ev.to_json(images=True))
            tmp.replace(path)  # atomic: a crash never leaves half a cache entry
        except OSError:
            pass  # a read-only home is no reason to fail
    return ev

