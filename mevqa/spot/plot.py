"""One motion plot for every view: ``mevqa spot --plot``, ``mevqa evidence --out`` and the app.

The curve is the spotter's motion (the rise above the local baseline of the region strongest relative to
its threshold) with the threshold, the spotted intervals shaded and numbered, and two kinds of marks a
reader would otherwise wonder about: peaks above the threshold that are in no interval (the spotter's
interval rules dropped them) and the short bars on the time axis (blinks, or hidden-emotion flags).
Everything drawn has a legend entry; the legend sits under the axes so it never covers the curve.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import numpy as np

KIND_COLOURS = {"micro": "#d62728", "macro": "#ff9f1c"}
CURVE_LABEL = "facial motion (rise above baseline)"
DROPPED_LABEL = "peak above threshold in no interval (not prominent enough, too short, or a blink)"


@dataclass
class MotionMark:
    """One interval on the plot: its number (as in the interval list), times in seconds and kind."""

    number: int
    t_onset: float
    t_apex: float
    t_offset: float
    kind: str
    assumed: bool = False


def dropped_peaks(times, motion, threshold, marks: Sequence[MotionMark]) -> np.ndarray:
    """Indices of local maxima above the threshold that lie in no interval (one per run above threshold)."""
    t, m = np.asarray(times, float), np.asarray(motion, float)
    if threshold is None or not len(t):
        return np.array([], int)
    thr = np.broadcast_to(np.asarray(threshold, float), m.shape)
    inside = np.zeros(len(t), bool)
    for mk in marks:
        inside |= (t >= mk.t_onset) & (t <= mk.t_offset)
    above = (m > thr) & ~inside
    out, k = [], 0
    while k < len(t):  # each run of frames above the threshold outside the intervals: its highest point
        if above[k]:
            j = k
            while j + 1 < len(t) and above[j + 1]:
                j += 1
            out.append(k + int(np.argmax(m[k:j + 1])))
            k = j + 1
        else:
            k += 1
    return np.array(out, int)


def _label_rows(x: Sequence[float], span: float, *, rows: int = 3, min_gap: float = 0.035) -> list[int]:
    """A text row for each label so that labels closer than ``min_gap`` of the axis never share a row."""
    last: list[float] = [-np.inf] * rows
    out = []
    for xi in x:
        row = next((r for r in range(rows) if (xi - last[r]) / max(span, 1e-9) >= min_gap), None)
        if row is None:  # every row is taken nearby: use the one whose last label is furthest away
            row = int(np.argmin(last))
        last[row] = xi
        out.append(row)
    return out


def plot_motion(*, times, motion, threshold=None, marks: Sequence[MotionMark] = (), duration: float | None = None,
                bars: Sequence[tuple[float, float]] = (), bar_label: str = "blink",
                bands: Sequence[tuple[float, float, str]] = (), unit: str = "px", title: str = "", ax=None):
    """The motion plot; returns the matplotlib Figure (not kept by pyplot when ``ax`` is not given).

    ``marks`` are the intervals (numbered as in the interval list); ``bars`` are (start, end) seconds
    drawn as short bars on the time axis under ``bar_label``; ``bands`` are (start, end, label) seconds
    hatched along the top (e.g. "mouth occluded"); ``unit`` names the curve's unit.
    """
    import matplotlib

    matplotlib.use("Agg", force=False)
    from matplotlib.figure import Figure
    from matplotlib.lines import Line2D
    from matplotlib.patches import Patch

    if ax is None:
        fig = Figure(figsize=(9, 3.4))  # not through pyplot: a long-running server must not pile figures up
        ax = fig.subplots()
    else:
        fig = ax.figure
    t = np.asarray(times, float)
    m = np.asarray(motion, float)
    handles = []
    if len(t):
        handles += ax.plot(t, m, color="#1f4e79", lw=1.4, label=CURVE_LABEL)
        if threshold is not None and len(np.atleast_1d(threshold)):
            thr = np.broadcast_to(np.asarray(threshold, float), m.shape)
            handles += ax.plot(t, thr, color="#777777", lw=1, ls="--", label="threshold")
            peaks = dropped_peaks(t, m, thr, marks)
            if len(peaks):
                handles += ax.plot(t[peaks], m[peaks], ls="none", marker="v", ms=6, color="#555555",
                                   label=DROPPED_LABEL)
    end = duration if duration is not None else (float(t[-1]) if len(t) else 1.0)
    kinds = set()
    rows = _label_rows([mk.t_apex for mk in marks], end)
    for mk, row in zip(marks, rows):
        c = KIND_COLOURS.get(mk.kind, "#888888")
        ax.axvspan(mk.t_onset, mk.t_offset, color=c, alpha=0.1 if mk.assumed else 0.25, lw=0)
        ax.axvline(mk.t_apex, color=c, lw=0.8)
        ax.annotate(str(mk.number), (mk.t_apex, 1.0), xycoords=("data", "axes fraction"),
                    xytext=(0, -2 - 11 * row), textcoords="offset points", ha="center", va="top", fontsize=8,
                    fontweight="bold", color=c, bbox=dict(boxstyle="round,pad=0.15", fc="white", ec=c, lw=0.6))
        kinds.add((mk.kind, mk.assumed))
    for kind in ("micro", "macro"):
        if (kind, False) in kinds:
            handles.append(Patch(color=KIND_COLOURS[kind], alpha=0.4, label=f"{kind}-expression interval (number)"))
    if any(assumed for _, assumed in kinds):
        handles.append(Patch(color="#888888", alpha=0.2, label="assumed interval (nothing stood out)"))
    if marks:
        handles.append(Line2D([], [], color="#444444", lw=0.8, label="apex"))
    for b0, b1 in bars:
        ax.axvspan(b0, b1, ymax=0.06, color="#6a0dad", alpha=0.8, lw=0)
    if bars:
        handles.append(Patch(color="#6a0dad", alpha=0.8, label=bar_label))
    for label in dict.fromkeys(lab for _, _, lab in bands):  # one legend entry per kind of band
        for b0, b1, lab in bands:
            if lab == label:
                ax.axvspan(b0, b1, ymin=0.94, color="#555555", alpha=0.35, hatch="//", lw=0)
        handles.append(Patch(facecolor="#555555", alpha=0.35, hatch="//", label=label))
    ax.set_xlim(0, max(end, 1e-3))
    ax.set_ylim(bottom=0, top=(float(np.nanmax(m)) * 1.25 + 1e-9) if len(m) else None)  # room for the numbers
    ax.set_xlabel("time (s)")
    ax.set_ylabel(f"motion ({unit})")
    if title:
        ax.set_title(title, fontsize=10)
    if handles:
        ax.legend(handles=handles, loc="upper center", bbox_to_anchor=(0.5, -0.2), ncol=2, fontsize=7.5,
                  frameon=False)
    fig.tight_layout()
    return fig
