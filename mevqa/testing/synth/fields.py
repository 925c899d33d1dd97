"""Synthetic clips: AU displacement fields (Gaussian bumps on landmark anchors), their composition into
an event's apex field, lid caps and the strain limit that keeps a warp from folding."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import cv2
import numpy as np

from mevqa.testing.synth.face import FaceSetup
from mevqa.testing.synth.specs import AU_SPECS, SIDES, _LID_CLOSE_CAP, _LID_OPEN_CAP, SynthError, _Bump


@dataclass
class EventField:
    """An event's displacement at its apex: ``smooth`` (roi h, roi w, 2) forward bump field in pixels,
    ``lids`` {(side, "upper"|"lower"): closing px at the lid centre}, the composite ``peak`` and each
    AU's own ``au_peaks``."""

    smooth: np.ndarray
    lids: dict
    peak: float
    au_peaks: dict
    box: tuple[int, int, int, int] | None = None  # support of ``smooth`` in ROI pixels (x0, y0, x1, y1)

    def full(self, setup: FaceSetup) -> np.ndarray:
        """The smooth forward field on the whole frame (H, W, 2)."""
        w, h = setup.size
        out = np.zeros((h, w, 2), np.float32)
        x0, y0, x1, y1 = setup.roi
        out[y0:y1, x0:x1] = self.smooth
        return out



def _roi_grid(setup: FaceSetup):
    if "_grid" not in setup._units:
        x0, y0, x1, y1 = setup.roi
        gy, gx = np.mgrid[y0:y1, x0:x1].astype(np.float32)
        setup._units["_grid"] = (gx, gy)
    return setup._units["_grid"]


def _bump_field(setup: FaceSetup, b: _Bump, side: str) -> np.ndarray:
    gx, gy = _roi_grid(setup)
    L, ex, ey = setup.iod, setup.ex, setup.ey
    out_axis = ex if side == "left" else -ex  # outward = away from the midline on that side
    idx = b.anchor[1 if side == "left" else 0]
    c = setup.landmarks[list(idx)].mean(0) + L * (b.offset[0] * out_axis + b.offset[1] * ey)
    dx, dy = gx - c[0], gy - c[1]
    a = (dx * ex[0] + dy * ex[1]) / (b.sigma[0] * L)
    v = (dx * ey[0] + dy * ey[1]) / (b.sigma[1] * L)
    g = np.exp(-0.5 * (a * a + v * v))
    d = np.asarray(b.direction, np.float32)
    vec = (d[0] * out_axis + d[1] * ey) / max(np.linalg.norm(d), 1e-6)
    return (b.weight * g)[..., None] * vec.astype(np.float32)


def au_unit_field(setup: FaceSetup, code: str, side: str) -> tuple[np.ndarray, dict]:
    """One AU on one side (``"left"``/``"right"``), scaled so its largest displacement is 1 px.

    Returns the forward bump field on ``setup.roi`` (h, w, 2) and its lid closings
    {(side, "upper"|"lower"): px}. Cached in ``setup``.
    """
    if code not in AU_SPECS:
        raise SynthError(f"unknown action unit {code!r} (known: {', '.join(AU_SPECS)})")
    if side not in ("left", "right"):
        raise SynthError(f"side must be 'left' or 'right' here, got {side!r}")
    key = (code, side)
    if key not in setup._units:
        spec = AU_SPECS[code]
        x0, y0, x1, y1 = setup.roi
        smooth = np.zeros((y1 - y0, x1 - x0, 2), np.float32)
        lids: dict = {}
        for part in spec.parts:
            if isinstance(part, _Bump):
                smooth += _bump_field(setup, part, side)
            else:
                lids[(side, part.lid)] = lids.get((side, part.lid), 0.0) + part.weight
        smooth *= setup.protect[..., None]
        peak = max(float(np.sqrt((smooth ** 2).sum(-1)).max()), *[abs(v) for v in lids.values()], 1e-9)
        setup._units[key] = (smooth / peak, {k: v / peak for k, v in lids.items()})
    return setup._units[key]


def _sides(side: str) -> tuple[str, ...]:
    return ("right", "left") if side == "both" else (side,)


def _cap_lids(setup: FaceSetup, lids: dict) -> dict:
    """Keep AU lid moves physiological: never shut the eye, never open it past about half again."""
    out = {}
    for (side, lid), v in lids.items():
        gap = setup.eyes[side].gap_max
        out[(side, lid)] = float(np.clip(v, -_LID_OPEN_CAP * gap, _LID_CLOSE_CAP * gap))
    return out


def event_field(setup: FaceSetup, aus: Sequence[str], side: str, amplitude: float) -> EventField:
    """The apex displacement of AUs ``aus`` on ``side``, scaled so the composite peak is ``amplitude``.

    Lid moves are capped to a fraction of the eye opening (so an AU7 never shuts the eye); when a cap
    bites, ``peak`` reports the smaller displacement that is really shown.
    """
    if side not in SIDES:
        raise SynthError(f"side must be one of {', '.join(SIDES)}, got {side!r}")
    parts = []
    for code in aus:
        sm = None
        lids: dict = {}
        for s in _sides(side):
            f, lf = au_unit_field(setup, code, s)
            sm = f.copy() if sm is None else sm + f
            for k, v in lf.items():
                lids[k] = lids.get(k, 0.0) + v
        parts.append((code, sm, lids))
    smooth = sum(p[1] for p in parts)
    lids_all: dict = {}
    for _, _, lf in parts:
        for k, v in lf.items():
            lids_all[k] = lids_all.get(k, 0.0) + v
    peak = max(float(np.sqrt((smooth ** 2).sum(-1)).max()), *[abs(v) for v in lids_all.values()], 1e-9)
    scale = float(amplitude) / peak
    smooth = (smooth * scale).astype(np.float32)
    # A large amplitude on a narrow bump would crush the skin (and make the warp fold): widen the field
    # until the compression is physiological, keeping the peak. Each AU's share is widened the same way.
    smooth, widen = _limit_strain(setup, smooth)
    if widen:
        parts = [(c, widen(sm), lf) for c, sm, lf in parts]
    lids_all = _cap_lids(setup, {k: v * scale for k, v in lids_all.items()})
    au_peaks = {}
    for code, sm, lf in parts:
        capped = _cap_lids(setup, {k: v * scale for k, v in lf.items()})
        au_peaks[code] = max(float(np.sqrt((sm ** 2).sum(-1)).max()) * scale,
                             *[abs(v) for v in capped.values()], 0.0)
    mag = np.sqrt((smooth ** 2).sum(-1))
    real_peak = max(float(mag.max()), *[abs(v) for v in lids_all.values()], 0.0)
    # Where the field is worth computing (> 0.005 px), padded by the displacement so that the
    # fixed-point inversion never looks outside the box.
    ys, xs = np.nonzero(mag > 0.005)
    box = None
    if len(xs):
        pad = int(np.ceil(mag.max())) + 3
        h, w = mag.shape
        box = (max(0, xs.min() - pad), max(0, ys.min() - pad), min(w, xs.max() + pad + 1), min(h, ys.max() + pad + 1))
    return EventField(smooth, lids_all, real_peak, au_peaks, box)


_GRIDS: dict = {}


def _grid(h: int, w: int):
    if (h, w) not in _GRIDS:
        if len(_GRIDS) > 16:
            _GRIDS.clear()
        gy, gx = np.mgrid[0:h, 0:w].astype(np.float32)
        _GRIDS[(h, w)] = (gx, gy)
    return _GRIDS[(h, w)]


MIN_AREA = 0.35  # smallest local area ratio det(I + grad d) a field may have: skin compressed <= 65%


def _min_area(d: np.ndarray) -> float:
    gy0, gx0 = np.gradient(d[..., 0])
    gy1, gx1 = np.gradient(d[..., 1])
    return float(((1 + gx0) * (1 + gy1) - gy0 * gx1).min())


def _limit_strain(setup: FaceSetup, d: np.ndarray):
    """Blur ``d`` (re-masking the eyes, restoring its peak) until no skin is compressed past MIN_AREA.

    A big amplitude on a narrow bump would crush skin and, past det = 0, fold the warp over itself.
    Returns the field and the widening as a function to apply to parts of it (None if untouched).
    """
    peak = float(np.sqrt((d ** 2).sum(-1)).max())
    if peak == 0 or _min_area(d) >= MIN_AREA:
        return d, None
    best, best_area, best_sigma = d, _min_area(d), 0.0
    sigma = 0.0
    for _ in range(10):
        sigma += 0.02 * setup.iod
        out = _widen(d, sigma, setup.protect, peak)
        area = _min_area(out)
        if area > best_area:
            best, best_area, best_sigma = out, area, sigma
        if area >= MIN_AREA:
            break
    if best_sigma == 0:
        return d, None
    gain = peak / max(float(np.sqrt((_widen(d, best_sigma, setup.protect, None) ** 2).sum(-1)).max()), 1e-9)
    return best, lambda part: _widen(part, best_sigma, setup.protect, None) * gain


def _widen(d: np.ndarray, sigma: float, protect: np.ndarray, peak: float | None) -> np.ndarray:
    out = cv2.GaussianBlur(d, (0, 0), sigma) * protect[..., None]
    if peak is not None:
        out *= peak / max(float(np.sqrt((out ** 2).sum(-1)).max()), 1e-9)
    return out.astype(np.float32)


