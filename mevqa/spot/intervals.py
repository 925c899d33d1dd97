"""Candidate detections in one region's motion curve, and their merging into expressions.

See :mod:`mevqa.spot.spotter` for the method and :class:`mevqa.spot.config.SpotConfig` for the options.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from mevqa.motion.filters import lowpass, rolling_noise, runs
from mevqa.spot.config import SpotConfig


@dataclass
class _Cand:
    onset: float
    apex: int
    offset: float
    roi: int
    score: float
    rise: float


def _walk(x: np.ndarray, p: int, level: float, tol: float, stop: int, step: int) -> tuple[float, bool]:
    """From the apex ``p`` walk outward (``step`` -1 or +1) to where ``x`` falls to ``level``.

    The walk ends early at a valley only when the signal beyond it climbs back by more than ``tol``
    (the foot of a neighbouring event); shallower wiggles are noise on a plateau and are walked over.
    Returns a fractional frame position (linear interpolation at the level crossing) and whether the
    level was crossed (rather than a valley or the search limit reached).
    """
    best, t = p, p
    while t != stop:
        nxt = t + step
        if x[nxt] <= level:
            frac = (x[t] - level) / max(x[t] - x[nxt], 1e-12)
            return t + step * float(np.clip(frac, 0, 1)), True
        if x[nxt] > x[best] + tol:
            return float(best), False  # climbing into another event: the valley is the boundary
        t = nxt
        if x[t] < x[best]:
            best = t
    return float(best if x[best] < x[stop] else stop), False


def _foot(pos: float, apex: int, q: float) -> float:
    """Where a smooth rise that crosses ``q`` of its height at ``pos`` started (or a fall ended).

    Motion below the noise cannot be seen, so a level crossing is late by the part of the rise spent
    under the level. For a raised-cosine rise (the usual model of an expression's onset and offset) the
    level q is reached after a fraction u = arccos(1 - 2q) / pi of the rise time.
    """
    q = float(np.clip(q, 1e-3, 0.5))
    u = math.acos(1 - 2 * q) / math.pi
    return pos + (pos - apex) * u / (1 - u)


def _candidates(x: np.ndarray, xb: np.ndarray, d: np.ndarray, thr: np.ndarray, fps: float, cfg: SpotConfig,
                roi: int) -> list[_Cand]:
    """Detections in one region: runs where the rise ``d`` of ``x`` exceeds ``thr`` (per frame), checked, then
    bounded on the lightly smoothed ``xb``."""
    n = len(x)
    half = max(1, round(cfg.baseline_seconds * fps))
    reach = max(half, round(cfg.macro_max_seconds / 2 * fps))
    out = []
    for a, b in runs(d > thr):
        p = a + int(np.argmax(x[a:b + 1]))
        left = x[max(0, p - half):p + 1].min()
        right = x[p:min(n, p + half + 1)].min()
        rise = x[p] - min(left, right)
        # A step (onset with no return) is no expression unless the clip ends before it can return.
        ends = p + half >= n - 1
        if not ends and x[p] - right < cfg.fall_fraction * rise:
            continue
        lo, hi = max(0, p - reach), min(n - 1, p + reach)
        near = max(1, round(0.1 * fps))
        pb = max(lo, p - near) + int(np.argmax(xb[max(lo, p - near):min(hi, p + near) + 1]))
        # Each side's floor is a low percentile of that side, not its minimum: the noise around a
        # small event sits above its deepest dip, and a level under the noise is never crossed. Per
        # side, so a clip that is one expression (nothing but the rise on one side) still ends at
        # its neutral frames.
        pad = cfg.edge_noise * float(thr[p])
        levels, bases = [], []
        for part in (xb[lo:pb + 1], xb[pb:hi + 1]):
            base = float(np.percentile(part, cfg.floor_percentile))
            bases.append(base)
            levels.append(base + max(cfg.edge_level * (xb[pb] - base), pad))
        tol = cfg.valley_depth * (xb[pb] - min(levels))
        bounds = []
        for level, base, stop, step in ((levels[0], bases[0], lo, -1), (levels[1], bases[1], hi, +1)):
            pos, crossed = _walk(xb, pb, level, tol, stop, step)
            if crossed and cfg.calibrate_edges:
                pos = float(np.clip(_foot(pos, pb, (level - base) / max(xb[pb] - base, 1e-9)), lo, hi))
            bounds.append(pos)
        on, off = bounds
        out.append(_Cand(on, p, off, roi, float(d[p] / thr[p]), float(rise)))
    return out


@dataclass
class _Group:
    on: float
    apex: int
    off: float
    score: float
    members: list


def _group(cands: list[_Cand], gap: float, member_fraction: float) -> list[_Group]:
    """Merge detections across regions into expressions.

    Strongest first, a detection joins an expression when each one's apex lies inside the other's
    span (give or take ``gap`` frames): the same movement seen by several regions. The expression's
    bounds are the union of its members at least ``member_fraction`` as strong as its best.
    Expressions that still overlap are then merged or cut apart by :func:`_resolve`, so a busy
    stretch of video does not chain into one long interval.
    """
    groups: list[list[_Cand]] = []
    for c in sorted(cands, key=lambda c: -c.score):
        for g in groups:
            s = g[0]
            if s.onset - gap <= c.apex <= s.offset + gap and c.onset - gap <= s.apex <= c.offset + gap:
                g.append(c)
                break
        else:
            groups.append([c])
    out = []
    for g in groups:
        strong = [c for c in g if c.score >= member_fraction * g[0].score]
        out.append(_Group(min(c.onset for c in strong), g[0].apex, max(c.offset for c in strong), g[0].score, list(g)))
    return out


def _resolve(groups: list[_Group], curve: np.ndarray, *, valley: float = 0.5,
             nested_score: float = 2.0) -> list[_Group]:
    """Merge or cut apart overlapping expressions (see :func:`_group`).

    An expression inside one more than twice as long, seen in other regions and scoring at least
    ``nested_score``, is left alone: a brief expression during a longer one (MEGC ground truth
    has such pairs; so has the demo clip). Weaker ones are usually the longer one's spill-over.
    Otherwise two expressions that overlap are one when they share half of the shorter, or when
    ``curve`` does not dip below ``valley`` x the lower of their two peaks between their apexes; else
    they are cut apart at that dip.
    """
    groups = sorted(groups, key=lambda g: g.on)
    kept: set[tuple[int, int]] = set()  # pairs left to overlap: a brief expression inside a longer one
    changed = True
    while changed:
        changed = False
        for a, b in ((a, b) for i, a in enumerate(groups) for b in groups[i + 1:]):
            overlap = min(a.off, b.off) - max(a.on, b.on)
            if overlap <= 0 or (id(a), id(b)) in kept:
                continue
            lo, hi = sorted((a.apex, b.apex))
            cut = lo + int(np.argmin(curve[lo:hi + 1])) if hi > lo else lo
            short, long_ = sorted((a, b), key=lambda g: g.off - g.on)
            inside = long_.on <= short.on and short.off <= long_.off
            if (inside and hi > lo and short.off - short.on < 0.5 * (long_.off - long_.on)
                    and short.score >= nested_score
                    and not {c.roi for c in short.members} & {c.roi for c in long_.members}):
                # Other regions, much briefer: an expression of its own during the longer one (a
                # masked micro-expression during a smile, say). Both stay.
                kept.add((id(a), id(b)))
                continue
            if overlap >= 0.5 * min(a.off - a.on, b.off - b.on) or hi == lo:
                keep, drop = (a, b) if a.score >= b.score else (b, a)
                keep.members += drop.members
                groups.pop(groups.index(drop))
            elif curve[cut] >= valley * min(curve[a.apex], curve[b.apex]):
                # No real valley between them: one movement seen as two peaks.
                keep, drop = (a, b) if a.score >= b.score else (b, a)
                keep.on, keep.off = min(a.on, b.on), max(a.off, b.off)
                keep.members += drop.members
                groups.pop(groups.index(drop))
            else:
                first, second = (a, b) if a.apex < b.apex else (b, a)
                first.off, second.on = min(first.off, float(cut)), max(second.on, float(cut))
            groups.sort(key=lambda g: g.on)
            changed = True
            break
    return groups


def _split_long(on: float, off: float, curve: np.ndarray, max_len: float, min_gap: int) -> list[tuple[float, float]]:
    """Split [on, off] at the deepest valleys of ``curve`` until no piece is longer than ``max_len``."""
    if off - on <= max_len:
        return [(on, off)]
    a, b = int(math.ceil(on)) + min_gap, int(math.floor(off)) - min_gap
    if b <= a:
        return [(on, off)]
    cut = a + int(np.argmin(curve[a:b + 1]))
    return _split_long(on, float(cut), curve, max_len, min_gap) + _split_long(float(cut), off, curve, max_len, min_gap)


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
    res = raw - lowpass(raw, fps, cutoff_hz)
    _, spread = rolling_noise(res, fps, seconds=seconds)
    thr = k * np.median(spread, axis=0)
    if rises is not None:
        level, sigma = rolling_noise(np.median(rises, axis=0), fps, seconds=seconds)
        thr = np.maximum(thr, level + k_rise * sigma)
    return np.maximum(thr, floor)
