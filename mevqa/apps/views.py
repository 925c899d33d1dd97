"""Views of an Evidence for people: the motion plot, the AU table, keyframes, and short texts.

Shared by the app and the command line, so ``mevqa spot --plot``, ``mevqa au`` and the app use the same
words. Nothing here computes evidence; everything reads an :class:`~mevqa.evidence.builder.Evidence`
(or a :class:`~mevqa.spot.spotter.SpotResult` / :class:`~mevqa.au.detector.AUResult` for the CLI).
"""
from __future__ import annotations

from functools import lru_cache
from pathlib import Path

import cv2
import numpy as np

from mevqa.evidence.builder import Evidence
from mevqa.evidence.plot import plot_evidence
from mevqa.motion.flow import flow_to_rgb

#: Table headers: short words, so no header wraps in a narrow column.
AU_HEADERS = ["#", "AU", "name", "side", "intensity"]
#: Intensity is the detector's 0-1 estimate (1 = the strongest movement its rules expect); FACS letter
#: grades (A-E) are a human coder's judgement and are not shown, to avoid suggesting that precision.
INTENSITY_NOTE = ("intensity: 0-1, the detector's estimate of how strongly the muscle moved; side: where the "
                  "movement was measured (the person's own left/right).")
FLOW_MAX_PX = 3.0  # flow maps' full brightness (mevqa.motion.flow.flow_to_rgb's default)


def motion_figure(ev: Evidence):
    """The motion plot of an Evidence (a Figure not held by pyplot: a long-running server keeps none)."""
    return plot_evidence(ev)


def spot_figure(res):
    """The same plot for a :class:`~mevqa.spot.spotter.SpotResult` (``mevqa spot --plot``)."""
    return res.plot()


def au_rows(ev: Evidence) -> list[list]:
    """One row per present AU; an interval without one says so, with no side or intensity."""
    rows = []
    for iv in ev.intervals:
        n = iv.index + 1
        if not iv.aus:
            rows.append([n, "-", "none above threshold", "", ""])
        for a in iv.aus:
            rows.append([n, a["code"], a["name"], a["side"], f"{float(a['intensity']):.2f}"])
    return rows


def interval_choices(ev: Evidence) -> list[tuple[str, int]]:
    return [(iv.label() + (" (assumed)" if iv.assumed else ""), iv.index) for iv in ev.intervals]


@lru_cache(maxsize=1)
def flow_key(size: int = 160) -> np.ndarray:
    """A colour key for the flow maps: the colour at each place is the colour of motion in that
    direction; brightness grows with size up to ``FLOW_MAX_PX`` at the rim."""
    r = size // 2 - 20
    y, x = np.mgrid[-(size // 2):size - size // 2, -(size // 2):size - size // 2].astype(np.float32)
    flow = np.dstack([x, y]) / r * FLOW_MAX_PX
    img = flow_to_rgb(flow, max_magnitude=FLOW_MAX_PX)
    img[np.hypot(x, y) > r] = 255
    font = cv2.FONT_HERSHEY_SIMPLEX
    c = size // 2
    for text, (px, py) in {"up": (c - 9, 13), "down": (c - 16, 2 * c - 6), "left": (2, c + 4),
                           "right": (2 * c - 33, c + 4)}.items():
        cv2.putText(img, text, (px, py), font, 0.38, (0, 0, 0), 1, cv2.LINE_AA)
    return img


def keyframes(ev: Evidence | None, index) -> list[tuple]:
    """Onset, apex and offset crops, the onset-to-apex flow map and its colour key, with captions."""
    if ev is None or index is None or not (0 <= int(index) < len(ev.intervals)):
        return []
    iv = ev.intervals[int(index)]
    frames = {"onset": iv.onset, "apex": iv.apex, "offset": iv.offset}
    out = []
    for name in ("onset", "apex", "offset", "flow"):
        img = iv.images.get(name)
        if img is None:
            continue
        # Short captions: the gallery tiles are narrow (frame numbers are in the interval text).
        caption = f"{name} {frames[name] / ev.fps:.2f} s" if name in frames else "flow map"
        out.append((img, caption))
    if "flow" in iv.images:
        out.append((flow_key(), "flow key"))
    return out


def interval_text(ev: Evidence | None, index) -> str:
    if ev is None or index is None or not (0 <= int(index) < len(ev.intervals)):
        return ""
    iv = ev.intervals[int(index)]
    emo = "; ".join(f"{e['fine']} ({e['coarse']}, {e['confidence']:.2f}: {e['rule']})" for e in iv.emotions[:3])
    note = " No interval stood out; this is the strongest motion in the clip." if iv.assumed else ""
    return (f"**{iv.label()}**: frames {iv.onset}-{iv.apex}-{iv.offset} (onset-apex-offset), "
            f"{iv.duration:.2f} s long.{note} Flow map: colour = direction of motion (see the key), "
            f"brightness = size.  \nEmotion candidates by FACS rules: {emo or 'none matched'}")


def hidden_text(ev: Evidence) -> str:
    if not ev.intervals:
        return "**Hidden-emotion check:** no expression was spotted, so there is nothing to check."
    if not ev.hidden:
        return ("**Hidden-emotion check:** nothing flagged (no micro-expression conflicts with its context "
                "or appears on an otherwise neutral face).")
    lines = [f"- {h.kind}: {h.explanation}" for h in ev.hidden]
    return ("**Hidden-emotion check** (a flag to look again, not proof of anything):\n" + "\n".join(lines))


def summary_line(ev: Evidence) -> str:
    micro = sum(iv.kind == "micro" for iv in ev.intervals)
    macro = len(ev.intervals) - micro
    lost = f"; face lost in {len(ev.lost_frames)} frame(s)" if ev.lost_frames else ""
    return (f"**{Path(ev.clip).name}** analysed: {ev.duration:.1f} s, {ev.n_frames} frames at {ev.fps:g} fps, "
            f"{ev.width}x{ev.height}; {micro} micro- and {macro} macro-expression interval(s){lost}.")


def au_table_text(res) -> str:
    """``mevqa au``'s table: present AUs with side and intensity; absent AUs named once, without a side."""
    present = [a for a in res.aus if a.present]
    absent = [a for a in res.aus if not a.present]
    lines = [f"AUs of {Path(res.clip).name}, onset frame {res.onset} -> apex frame {res.apex}", ""]
    if present:
        w = max(len(a.name) for a in present)
        lines.append(f"  {'AU':5s} {'name':{w}s}  {'side':5s}  intensity  score")
        for a in present:
            lines.append(f"  {a.code:5s} {a.name:{w}s}  {a.side:5s}  {a.intensity:9.2f}  {a.score:5.2f}")
    else:
        lines.append("  no action unit above threshold")
    if absent:
        lines += ["", "not present: " + ", ".join(a.code for a in absent)]
    lines += ["", "intensity: 0-1, how strongly the muscle moved (detector's estimate); score: the detector's "
                  "confidence that the AU is present; side: the person's own left/right."]
    return "\n".join(lines)
