"""Synthetic clips: from forward fields to pixels: Newton inversion of a displacement field, the eyelid
occlusion model and the per-frame renderer (one remap per frame, head drift folded in)."""
from __future__ import annotations

import cv2
import numpy as np

from mevqa.testing.synth.face import FaceSetup
from mevqa.testing.synth.fields import _grid
from mevqa.testing.synth.specs import _BAND, _LID_SKIN_DOWN, _LID_SKIN_UP


def _invert(d: np.ndarray, iterations: int = 6) -> np.ndarray:
    """Backward map B with B(x) = -d(x + B(x)): Newton's method on F(B) = B + d(x + B) = 0.

    Plain fixed-point iteration (Chen et al., "A simple fixed-point approach to invert a deformation
    field", Med. Phys. 2008) crawls where skin stretches by ~80% (a strong brow raise over the
    lid); Newton, with the Jacobian I + grad d sampled at x + B, converges in 2-3 steps. It stops
    once a step moves less than 0.005 px.
    """
    gx, gy = _grid(*d.shape[:2])
    gy0, gx0 = np.gradient(d[..., 0])
    gy1, gx1 = np.gradient(d[..., 1])
    jac = np.dstack([gx0, gy0, gx1, gy1]).astype(np.float32)
    b0, b1 = -d[..., 0], -d[..., 1]
    for _ in range(iterations):
        px, py = gx + b0, gy + b1
        # float32 maps: OpenCV's remap takes no others, and numpy 2 promotes float32 + float64 scalars to float64
        px, py = px.astype(np.float32, copy=False), py.astype(np.float32, copy=False)
        dd = cv2.remap(d, px, py, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
        jj = cv2.remap(jac, px, py, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
        r0, r1 = b0 + dd[..., 0], b1 + dd[..., 1]
        a, bq, c, e = 1 + jj[..., 0], jj[..., 1], jj[..., 2], 1 + jj[..., 3]
        det = np.maximum(a * e - bq * c, 0.05)
        s0, s1 = (e * r0 - bq * r1) / det, (a * r1 - c * r0) / det
        b0, b1 = b0 - s0, b1 - s1
        if max(float(np.abs(s0).max()), float(np.abs(s1).max())) < 0.005:
            break
    return np.dstack([b0, b1]).astype(np.float32)


def _piecewise(v, knots_v, knots_s):
    """Evaluate per-pixel piecewise-linear maps (identity outside the first/last knot)."""
    out = v.copy()
    for i in range(len(knots_v) - 1):
        a, b = knots_v[i], knots_v[i + 1]
        sel = (v >= a) & (v < b)
        if not sel.any():
            continue
        span = np.maximum(b - a, 1e-6)
        t = (v - a) / span
        val = knots_s[i] + t * (knots_s[i + 1] - knots_s[i])
        out[sel] = val[sel]
    return out


def _lid_backward(setup: FaceSetup, side: str, close_up: float, close_low: float, blink: float = 0.0):
    """Backward map (box, (h, w, 2)) that moves one eye's lids.

    ``close_up``/``close_low``: AU lid moves in px at the lid centre, positive closing; ``blink``: the
    fraction (0-1) of a blink's closure. A closing lid slides over the eyeball, which stays put and is
    covered; its lash band (the last ~3 px) translates rigidly and only the skin above it stretches,
    so lashes stay thin. An opening lid (AU5) compresses its skin and stretches the eyeball into the
    new opening, a fine approximation for the few pixels an AU5 moves here.
    """
    g = setup.eyes[side]
    L, ex, ey = setup.iod, setup.ex, setup.ey
    x0, y0, x1, y1 = g.box
    gx, gy = _grid(y1 - y0, x1 - x0)
    dx, dy = gx + (x0 - g.centre[0]), gy + (y0 - g.centre[1])
    u = dx * ex[0] + dy * ex[1]
    v = dx * ey[0] + dy * ey[1]
    vu = np.interp(u, g.u, g.v_upper).astype(np.float32)
    vl = np.interp(u, g.u, g.v_lower).astype(np.float32)
    gap = np.maximum(vl - vu, 0)
    prof = np.where((u > g.u[0]) & (u < g.u[-1]), gap / np.float32(g.gap_max), np.float32(0))
    su, sl = close_up * prof, close_low * prof
    if blink > 0:
        # A blink closes onto the lower lid and ~2 px past it, over a span a little wider than
        # FaceMesh's eye corners (which sit inside the visible ones), so no sclera peeks through.
        uc, half = (g.u[0] + g.u[-1]) / 2, (g.u[-1] - g.u[0]) / 2 + 0.03 * L
        shape = np.sqrt(np.clip(1 - ((u - uc) / half) ** 2, 0, 1))
        su = su + blink * (gap + 0.02 * L * shape)
    m, n = vu + su, vl - sl  # new margins
    crossed = m > n
    if crossed.any():  # lids that would cross meet where their moves balance (a blink pushes the lower lid)
        w = np.maximum(su, 0) + np.maximum(sl, 0) + 1e-6
        q = (np.maximum(su, 0) * m + np.maximum(sl, 0) * n) / w
        m, n = np.where(crossed, q, m), np.where(crossed, q, n)
    top, bot = vu - _LID_SKIN_UP * L, vl + _LID_SKIN_DOWN * L
    lash_u, lash_l = 0.06 * L, 0.025 * L
    a, b = np.maximum(m, vu), np.minimum(n, vl)  # the part of the eyeball still shown

    def f_eye(x):
        return a + (x - m) * (b - a) / np.maximum(n - m, 1e-6)

    m2, n1 = m + _BAND, n - _BAND
    squeezed = m2 > n1
    mid = (m + n) / 2
    m2, n1 = np.where(squeezed, mid, m2), np.where(squeezed, mid, n1)
    kv = [top, m - lash_u, m - _BAND, m2, n1, n + _BAND, n + lash_l, bot]
    ks = [top, vu - lash_u, vu - _BAND, f_eye(m2), f_eye(n1), vl + _BAND, vl + lash_l, bot]
    for i in range(1, len(kv)):  # keep the knots ordered in extreme cases
        kv[i] = np.maximum(kv[i], kv[i - 1])
    vs = _piecewise(v, kv, ks)
    shift = (vs - v).astype(np.float32)
    return g.box, shift[..., None] * ey.astype(np.float32)



def _similarity(centre, tx, ty, rot_deg) -> np.ndarray:
    m = cv2.getRotationMatrix2D((float(centre[0]), float(centre[1])), float(rot_deg), 1.0)
    m[:, 2] += (tx, ty)
    return m.astype(np.float64)


class _Renderer:
    """Per-frame composition: weighted event fields -> backward map -> remap -> gain and noise.

    Only the face box is resampled bicubically (bilinear blurs by an amount that varies with the
    sub-pixel phase, which flow would see as texture change); the background, where only drift acts,
    is warped bilinearly. Bicubic at integer positions returns the exact pixel, so a face box where
    nothing moves is identical to the neutral frame.
    """

    def __init__(self, setup: FaceSetup):
        self.setup = setup
        x0, y0, x1, y1 = setup.roi
        self.roi_shape = (y1 - y0, x1 - x0)
        w, h = setup.size
        self.size = (w, h)
        self.corners = np.float64([[x0, y0], [x1, y0], [x0, y1], [x1, y1]])

    def backward(self, smooth: np.ndarray | None, box, lids: dict):
        """Backward field on the ROI and the ROI sub-box where it is non-zero, or (None, None)."""
        s = self.setup
        x0, y0, x1, y1 = s.roi
        b, boxes = None, []
        if smooth is not None and box is not None:
            b = np.zeros((*self.roi_shape, 2), np.float32)
            bx0, by0, bx1, by1 = box
            b[by0:by1, bx0:bx1] = _invert(smooth[by0:by1, bx0:bx1])
            boxes.append(box)
        for side in ("right", "left"):
            cu, cl = lids.get((side, "upper"), 0.0), lids.get((side, "lower"), 0.0)
            bl = lids.get((side, "blink"), 0.0)
            if abs(cu) < 1e-4 and abs(cl) < 1e-4 and bl < 1e-4:
                continue
            (lx0, ly0, lx1, ly1), f = _lid_backward(s, side, cu, cl, bl)
            if b is None:
                b = np.zeros((*self.roi_shape, 2), np.float32)
            ax0, ay0, ax1, ay1 = max(lx0, x0), max(ly0, y0), min(lx1, x1), min(ly1, y1)
            b[ay0 - y0:ay1 - y0, ax0 - x0:ax1 - x0] += f[ay0 - ly0:ay1 - ly0, ax0 - lx0:ax1 - lx0]
            boxes.append((ax0 - x0, ay0 - y0, ax1 - x0, ay1 - y0))
        if b is None:
            return None, None
        bb = np.array(boxes)
        return b, (int(bb[:, 0].min()), int(bb[:, 1].min()), int(bb[:, 2].max()), int(bb[:, 3].max()))

    def frame(self, b_roi: np.ndarray | None, box, affine: np.ndarray | None) -> np.ndarray:
        """The warped neutral frame (uint8): map(x) = y + B(y), y = A^-1 x."""
        s = self.setup
        base = s.image
        x0, y0, x1, y1 = s.roi
        w, h = self.size
        if affine is None:
            out = base.copy()
            if b_roi is None:
                return out
            bx0, by0, bx1, by1 = box
            gx, gy = _grid(by1 - by0, bx1 - bx0)
            sub = b_roi[by0:by1, bx0:bx1]
            mx = gx + (sub[..., 0] + (x0 + bx0))
            my = gy + (sub[..., 1] + (y0 + by0))
            mx, my = mx.astype(np.float32, copy=False), my.astype(np.float32, copy=False)
            out[y0 + by0:y0 + by1, x0 + bx0:x0 + bx1] = cv2.remap(base, mx, my, cv2.INTER_CUBIC,
                                                                   borderMode=cv2.BORDER_REFLECT101)
            return out
        out = cv2.warpAffine(base, affine, (w, h), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT101)
        # The face box in the output: the ROI's corners moved by the drift, padded.
        pts = self.corners @ affine[:, :2].T + affine[:, 2]
        ox0, oy0 = (int(max(0, np.floor(pts[:, 0].min()) - 2)), int(max(0, np.floor(pts[:, 1].min()) - 2)))
        ox1, oy1 = (int(min(w, np.ceil(pts[:, 0].max()) + 3)), int(min(h, np.ceil(pts[:, 1].max()) + 3)))
        gx, gy = _grid(oy1 - oy0, ox1 - ox0)
        inv = cv2.invertAffineTransform(affine)
        px, py = gx + ox0, gy + oy0
        mx = (inv[0, 0] * px + inv[0, 1] * py + inv[0, 2]).astype(np.float32)
        my = (inv[1, 0] * px + inv[1, 1] * py + inv[1, 2]).astype(np.float32)
        if b_roi is not None:
            bb = cv2.remap(b_roi, mx - x0, my - y0, cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT, borderValue=0)
            mx += bb[..., 0]
            my += bb[..., 1]
        mx, my = mx.astype(np.float32, copy=False), my.astype(np.float32, copy=False)
        out[oy0:oy1, ox0:ox1] = cv2.remap(base, mx, my, cv2.INTER_CUBIC, borderMode=cv2.BORDER_REFLECT101)
        return out


