"""Evidence as a picture: the motion curve with intervals, hidden-emotion flags and occluded stretches."""
from __future__ import annotations

from pathlib import Path

import numpy as np

_COLOURS = {"micro": "#d62728", "macro": "#ff9f1c"}


def plot_evidence(ev, ax=None):
    """Motion curve over time with the spotted intervals shaded and labelled micro or macro; hidden-emotion
    findings as purple marks at the bottom, occluded stretches as grey hatching at the top."""
    # Deferred: matplotlib takes ~0.5 s to import and only pictures need it.
    import matplotlib  # noqa: PLC0415

    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt  # noqa: PLC0415

    if ax is None:
        fig, ax = plt.subplots(figsize=(9, 2.8))
    else:
        fig = ax.figure
    t = np.asarray(ev.curve.get("times", []))
    if len(t):
        ax.plot(t, ev.curve["motion"], color="#1f4e79", lw=1.4, label="facial motion")
        if ev.curve.get("threshold"):
            ax.plot(t, ev.curve["threshold"], color="#999999", lw=1, ls="--", label="threshold")
    for iv in ev.intervals:
        colour = _COLOURS.get(iv.kind, "#888")
        ax.axvspan(iv.t_onset, iv.t_offset, color=colour, alpha=0.22 if not iv.assumed else 0.1)
        top = iv.top_emotion["fine"] if iv.top_emotion else ""
        ax.annotate(f"{iv.index + 1}: {iv.kind}\n{top}", (iv.t_apex, 1.0), xycoords=("data", "axes fraction"),
                    ha="center", va="top", fontsize=8, color=colour)
        ax.axvline(iv.t_apex, color=colour, lw=0.8)
    for h in ev.hidden:
        ax.axvspan(h.onset / ev.fps, h.offset / ev.fps, ymax=0.08, color="#6a0dad", alpha=0.8)
    for o in (ev.quality or {}).get("occlusions", []):
        ax.axvspan(o["start"], o["end"], ymin=0.92, color="#555555", alpha=0.35, hatch="//",
                   label=f"{o['region']} occluded")
    ax.set_xlim(0, ev.duration)
    ax.set_xlabel("time (s)")
    ax.set_ylabel("motion (px)")
    ax.legend(loc="upper left", fontsize=8, frameon=False)
    ax.set_title(f"{Path(ev.clip).name}: {len(ev.intervals)} interval(s)", fontsize=10)
    fig.tight_layout()
    return fig
