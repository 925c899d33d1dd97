"""Evidence as a picture: the motion curve with intervals, hidden-emotion flags and occluded stretches.

Drawn by :func:`mevqa.spot.plot.plot_motion`, the one motion plot of ``mevqa spot --plot``, ``mevqa evidence
--out`` and the app (same words, numbered intervals, a legend for everything drawn).
"""
from __future__ import annotations

from pathlib import Path

from mevqa.spot.plot import MotionMark, plot_motion


def curve_unit(curve: dict, settings: dict | None = None) -> str:
    """The unit of the motion curve: what the evidence says, else pixels of the aligned face crop."""
    unit = (curve or {}).get("unit")
    if unit:
        return str(unit)
    crop = (settings or {}).get("crop")
    return f"px, {crop}-px face crop" if crop else "px, aligned face crop"


def plot_evidence(ev, ax=None):
    """Motion curve over time with the spotted intervals shaded and numbered; hidden-emotion findings as
    purple bars on the time axis, occluded stretches hatched along the top. Returns the Figure (not held
    by pyplot when ``ax`` is not given)."""
    c = ev.curve or {}
    return plot_motion(
        times=c.get("times", []), motion=c.get("motion", []), threshold=c.get("threshold"),
        marks=[MotionMark(iv.index + 1, iv.t_onset, iv.t_apex, iv.t_offset, iv.kind, iv.assumed) for iv in ev.intervals],
        duration=ev.duration,
        bars=[(h.onset / ev.fps, (h.offset + 1) / ev.fps) for h in ev.hidden],
        bar_label="hidden-emotion flag (see the hidden-emotion check)",
        bands=[(o["start"], o["end"], f"{o['region']} occluded")
               for o in (getattr(ev, "quality", None) or {}).get("occlusions", [])],
        unit=curve_unit(c, getattr(ev, "settings", None)),
        title=f"{Path(ev.clip).name}: {len(ev.intervals)} interval(s)", ax=ax)
