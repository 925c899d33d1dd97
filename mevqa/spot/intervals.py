"""From a motion curve to expression intervals, and the curve's local noise threshold.

See :mod:`mevqa.spot.spotter` for the method and :class:`mevqa.spot.config.SpotConfig` for the options.

Intervals are the curve's prominent peaks (topographic prominence as ``scipy.signal.peak_prominences``
defines it), bounded where the curve has fallen most of the way to its base
(``scipy.signal.peak_widths``). Prominence is what a small change of the curve changes least: a
wiggle on a plateau has little of it, however high the plateau, so mirroring, re-encoding or a change
of brightness that moves every sample a little moves no boundary far and makes no new interval. An
earlier design detected per region and merged the detections across regions (with rules for nested
and overlapping ones); on the real test video its intervals agreed with a mirrored copy's at F1 0.67
and with a JPEG-10 copy's at 0.48, because each rule is a threshold a small change can cross.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from scipy.signal import find_peaks, peak_prominences, peak_widths

from mevqa.motion.filters import lowpass, rolling_noise


@dataclass
class Segment:
    """One prominent peak of a motion curve: fractional bounds, apex, and height over the threshold."""

    onset: float
    apex: int
    offset: float
    score: float
    rows: tuple[int, ...] = ()  # the regions of the curve it came from (set by the caller)


def _foot(pos: float, apex: int, q: float) -> float:
    """Where a smooth rise that crosses ``q`` of its height at ``pos`` started (or a fall ended).

    Motion below the noise cannot be seen, so a level crossing is late by the part of the rise spent
    under the level. For a raised-cosine rise (the usual model of an expression's onset and offset) the
    level q is reached after a fraction u = arccos(1 - 2q) / pi of the rise time.
    """
    q = float(np.clip(q, 1e-3, 0.5))
    u = math.acos(1 - 2 * q) / math.pi
    return pos + (pos - apex) * u / (1 - u)


def segment(curve: np.ndarray, threshold: np.ndarray, fps: float, *, min_height: float = 1.0,
            min_prominence: float = 1.0,
            relative_prominence: float = 0.5, edge: float = 0.8, reach_seconds: float = 4.0,
            calibrate_edges: bool = False) -> list[Segment]:
    """Prominent peaks of ``curve`` (T,) that clear ``threshold`` (T,), as non-overlapping segments.

    A peak counts when it reaches ``min_height`` thresholds and its prominence (its height over the higher of the
    two lowest points that separate it from higher peaks, searched within ``reach_seconds`` either
    side) is at least ``min_prominence`` thresholds and ``relative_prominence`` of its own height: a
    dip between two bursts of laughter that falls by less than half is one expression, not two. Each
    segment runs to where the curve has fallen by ``edge`` of the prominence on either side, moved out
    to where a smooth rise through that level began (``calibrate_edges``, :func:`_foot`), never past
    the peak's bases; neighbours that still overlap are cut at the lowest point between their apexes.
    """
    c = np.asarray(curve, float)
    thr = np.asarray(threshold, float)
    peaks, _ = find_peaks(c)
    peaks = peaks[c[peaks] >= min_height * thr[peaks]]
    if not len(peaks):
        return []
    wlen = 2 * max(1, round(reach_seconds * fps)) + 1
    prom, left_base, right_base = peak_prominences(c, peaks, wlen=wlen)
    keep = (prom >= min_prominence * thr[peaks]) & (prom >= relative_prominence * c[peaks])
    peaks, prom, left_base, right_base = peaks[keep], prom[keep], left_base[keep], right_base[keep]
    if not len(peaks):
        return []
    cb = c
    _, _, left, right = peak_widths(cb, peaks, rel_height=edge, prominence_data=(prom, left_base, right_base),
                                    wlen=wlen)
    out = []
    for p, pr, lb, rb, on, off in zip(peaks, prom, left_base, right_base, left, right):
        # A rise whose base is the clip's first frame and whose level crossing lies in the half of it
        # next to that frame began with the clip (dataset clips are cut from the onset); the same at
        # the end. A crossing far from the edge is an event that rose inside the clip.
        if lb == 0 and on < p / 2:
            on = 0.0
        last = len(c) - 1
        if rb == last and off > (p + last) / 2:
            off = float(last)
        if calibrate_edges:
            q = 1.0 - edge  # the crossing's level, as a part of the rise from the base
            on, off = max(float(lb), _foot(on, p, q)), min(float(rb), _foot(off, p, q))
        out.append(Segment(float(on), int(p), float(off), float(c[p] / thr[p])))
    return _cut_overlaps(out, c)


def _cut_overlaps(segments: list[Segment], curve: np.ndarray) -> list[Segment]:
    """Neighbours (by apex) that overlap are cut apart at the lowest point of ``curve`` between apexes."""
    segments = sorted(segments, key=lambda sg: sg.apex)
    for a, b in zip(segments, segments[1:]):
        if a.offset > b.onset:
            cut = a.apex + int(np.argmin(curve[a.apex:b.apex + 1]))
            a.offset, b.onset = min(a.offset, float(cut)), max(b.onset, float(cut))
    return segments


def combine(brows: list[Segment], rest: list[Segment], curve: np.ndarray, *, nested_score: float = 2.0,
            nested_fraction: float = 0.5, nested_max: float = float("inf")) -> list[Segment]:
    """One list of expressions from the brows' segments and the rest of the face's.

    Segmented apart, a brief action of one part during a longer expression of the other (a brow
    lowering hidden under a smile, the demo's script; MEGC ground truth has such pairs) keeps its own
    peak, which the whole face's curve would bury under the smile. A segment of one part that overlaps
    one of the other is the same expression, and the stronger one's bounds stand, unless it lies
    inside the other, lasts under ``nested_fraction`` of it and at most ``nested_max`` frames (a
    micro-expression leaking during a longer one) and scores at least ``nested_score``: then both
    stand (the brows moving with a laugh are longer, and part of the laugh). Whatever still overlaps is cut at the lowest point of ``curve`` between apexes.
    """
    merged: list[Segment] = []
    for sg in sorted(brows + rest, key=lambda sg: -sg.score):
        clash = False
        for other in merged:
            overlap = min(sg.offset, other.offset) - max(sg.onset, other.onset)
            if overlap <= 0:
                continue
            short, long_ = sorted((sg, other), key=lambda x: x.offset - x.onset)
            if (long_.onset <= short.onset and short.offset <= long_.offset and short.score >= nested_score
                    and short.offset - short.onset < nested_fraction * (long_.offset - long_.onset)
                    and short.offset - short.onset <= nested_max):
                continue  # a brief expression of its own during the longer one
            if overlap >= 0.5 * (short.offset - short.onset):
                clash = True
                break
        if not clash:
            merged.append(sg)
    nested = [sg for sg in merged if any(o is not sg and o.onset <= sg.onset and sg.offset <= o.offset for o in merged)]
    rest = _cut_overlaps([sg for sg in merged if not any(sg is x for x in nested)], curve)
    return sorted(rest + nested, key=lambda sg: sg.onset)


def drop_shoulders(segments: list[Segment], *, max_len: float, max_gap: float) -> list[Segment]:
    """Segments minus the shoulders of longer, stronger ones.

    A shoulder is a segment of at most ``max_len`` frames that sticks out of, touches or lies within
    ``max_gap`` frames of a longer segment scoring higher: the wobble of that expression's rise or
    fall, which a small change of the curve (a mirror, a frame rate, a re-encoding) turns into a peak
    of its own or back into the slope. A brief segment wholly inside a longer one is left alone
    (:func:`combine` decided it is an expression of its own). On the real test video 8 of the 13
    intervals that a transformed copy did not share with the original were such shoulders.
    """
    def shoulder(s: Segment) -> bool:
        if s.offset - s.onset > max_len:
            return False
        for o in segments:
            if o is s or o.offset - o.onset <= s.offset - s.onset or o.score <= s.score:
                continue
            if o.onset <= s.onset and s.offset <= o.offset:
                continue
            if max(o.onset - s.offset, s.onset - o.offset) <= max_gap:
                return True
        return False
    return [s for s in segments if not shoulder(s)]


def split_long(on: float, off: float, curve: np.ndarray, max_len: float, min_gap: int) -> list[tuple[float, float]]:
    """Split [on, off] at the deepest valleys of ``curve`` until no piece is longer than ``max_len``."""
    if off - on <= max_len:
        return [(on, off)]
    a, b = int(math.ceil(on)) + min_gap, int(math.floor(off)) - min_gap
    if b <= a:
        return [(on, off)]
    cut = a + int(np.argmin(curve[a:b + 1]))
    return split_long(on, float(cut), curve, max_len, min_gap) + split_long(float(cut), off, curve, max_len, min_gap)


REFERENCE_FPS = 30.0  # the frame rate local_threshold's ``k`` is stated at


def _residual_gain(fps: float, cutoff_hz: float) -> float:
    """Variance that ``x - lowpass(x)`` keeps of unit white noise: the squared norm of its kernel."""
    impulse = np.zeros(2 * int(math.ceil(3 * fps / cutoff_hz)) + 3)
    impulse[len(impulse) // 2] = 1.0
    return float(((impulse - lowpass(impulse, fps, cutoff_hz)) ** 2).sum())


def local_threshold(raw: np.ndarray, fps: float, *, cutoff_hz: float, seconds: float, k: float,
                    floor: float, rises: np.ndarray | None = None, k_rise: float = 4.0) -> np.ndarray:
    """Per-frame rise threshold (T,), local to ``seconds`` around each frame, at least ``floor``.

    Two local noise levels, the larger wins: ``k`` x the flow's own error, i.e. the robust sigma
    (1.4826 MAD) of the raw per-frame motion above ``cutoff_hz`` (facial actions change slower than
    that); and, when ``rises`` (R, T) is given, the regions' typical rise plus ``k_rise`` robust sigmas
    of it (slow wobble that compression, lighting or breathing leave in every region). Both are taken
    per frame as the median over the regions (an expression moves a few regions, the others still show
    the noise) and over the window around the frame: a 6 s excerpt and the 20 s clip it came from get
    the same threshold, and a clip's other expressions do not move it.
    """
    # The flow's error is white from frame to frame, so the residual keeps a part of its variance
    # that depends on the frame rate (about 0.35 at 30 fps, 0.21 at 24, 0.90 at 200) and none at all
    # at 12 fps, where a 5 Hz cut-off is next to Nyquist. The cut-off is kept below a quarter of the
    # frame rate and the spread divided by the residual filter's white-noise gain, relative to 30 fps
    # (where ``k`` was set): the threshold then means the same at any frame rate.
    cutoff = min(cutoff_hz, fps / 4)
    res = raw - lowpass(raw, fps, cutoff)
    _, spread = rolling_noise(res, fps, seconds=seconds)
    gain = math.sqrt(_residual_gain(fps, cutoff) / _residual_gain(REFERENCE_FPS, cutoff_hz))
    thr = k * np.median(spread, axis=0) / gain
    if rises is not None:
        level, sigma = rolling_noise(np.median(rises, axis=0), fps, seconds=seconds)
        thr = np.maximum(thr, level + k_rise * sigma)
    return np.maximum(thr, floor)
