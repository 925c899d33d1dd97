"""The second synthetic generator: FACS muscle pulls on Face Mesh landmarks, warped by thin-plate splines.

Independent of :mod:`mevqa.testing.synth` by construction, so that validation is not circular
(calibrate on one generator, report on the other):

* **faces**: the portrait at other sizes and crops, and calm frames of the real video
  (:mod:`mevqa.testing.tps_faces`);
* **displacements**: action units as muscle pulls from insertion toward origin on landmarks
  (:mod:`mevqa.testing.tps_actions`), not Gaussian bumps;
* **warp**: each frame the moved landmarks, still landmarks (the irises too: the eyeball stays put) and
  a still ring around the face are interpolated by a thin-plate spline (Bookstein, "Principal warps",
  IEEE PAMI 1989) fitted **backward**, from where skin is to where it came from, so ``cv2.remap``
  needs no field inversion; it is evaluated on a 3-px grid and upsampled (a TPS is smooth);
* **time**: quintic smootherstep rise, a plateau for macro events (the reported apex is its middle),
  smootherstep fall; exactly zero outside [onset, offset];
* **head motion**: a smoothed random walk of shift, in-plane rotation and scale, applied after the
  expression as a second, bilinear resampling of the whole frame;
* **camera**: colour (per-channel) Gaussian noise, a slow gain wander and optional JPEG re-encoding.

Ground truth has the keys of :func:`mevqa.testing.synth.make_clip`'s (``clip``, ``fps``, ``n_frames``,
``width``, ``height``, ``photo``, ``seed``, ``iod``, ``events`` with ``onset``/``apex``/``offset``/
``kind``/``aus`` [{code, side, peak}]/``emotion``/``amplitude``, ``blinks``, ``drift``, ``noise``,
``flicker``, ``config``) plus ``generator: "tps"``. Sides are the subject's own. ``amplitude`` and
``peak`` are the largest landmark displacement at the apex in output pixels (the spline passes
exactly through the landmarks). Frames are 0-based, inclusive. This generator draws no blinks.
"""
from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Sequence

import cv2
import numpy as np
from scipy.interpolate import RBFInterpolator
from scipy.ndimage import gaussian_filter1d

from mevqa.io.video import Clip
from mevqa.testing.tps_actions import ACTIONS, ONE_SIDED, PROTOTYPES, SOLO, action_displacements, face_frame
from mevqa.testing.tps_faces import NeutralFace, iod_of, place, portrait_source, video_source

MICRO_S, MACRO_S = (0.17, 0.5), (0.7, 3.0)  # durations: micro <= 0.5 s (MEGC), macro longer
MICRO_IOD, MACRO_IOD = (0.012, 0.035), (0.04, 0.09)  # apex amplitude as a fraction of the eye distance
GRID = 3  # px between spline evaluations


@dataclass
class TPSEvent:
    """One event; frames 0-based inclusive; ``side`` the subject's own; ``amplitude`` in output px."""

    onset: int
    apex: int
    offset: int
    kind: str = "micro"
    aus: tuple[str, ...] = ("AU12",)
    side: str = "both"
    amplitude: float = 2.0
    emotion: str | None = None


@dataclass
class TPSConfig:
    """``face`` "portrait" or "video"; ``iod`` the portrait's eye distance in px (None: 0.12 x height;
    the video frame keeps its size); ``centre`` where the face sits (fractions); ``video_time`` the
    real-video frame (s); ``noise`` colour noise sigma (grey levels); ``flicker`` gain wander std;
    ``jpeg_quality`` 0 (off) or 10-100; ``head_motion`` shift/rotation/scale wander."""

    face: str = "portrait"
    width: int = 640
    height: int = 480
    iod: float | None = None
    centre: tuple[float, float] = (0.5, 0.5)
    video_time: float = 9.8
    fps: float = 30.0
    seconds: float = 3.0
    n_events: int = 1
    micro_fraction: float = 0.5
    head_motion: bool = True
    noise: float = 1.5
    flicker: float = 0.01
    jpeg_quality: int = 0
    seed: int = 0


def neutral_face(cfg: TPSConfig) -> NeutralFace:
    """The placed neutral face of ``cfg``."""
    if cfg.face == "portrait":
        iod = cfg.iod if cfg.iod is not None else 0.12 * cfg.height
        return place(portrait_source(), width=cfg.width, height=cfg.height, iod=iod, centre=tuple(cfg.centre))
    if cfg.face == "video":
        src = video_source(cfg.video_time)
        if (cfg.width, cfg.height) == src.size and cfg.iod is None and tuple(cfg.centre) == (0.5, 0.5):
            return src
        c = (src.landmarks.min(0) + src.landmarks.max(0)) / 2 / np.array(src.size)
        centre = tuple(c) if tuple(cfg.centre) == (0.5, 0.5) else tuple(cfg.centre)
        return place(src, width=cfg.width, height=cfg.height, iod=cfg.iod, centre=centre)
    raise ValueError(f"face must be 'portrait' or 'video', got {cfg.face!r}")


def profile(n: int, onset: int, apex: int, offset: int, hold: int = 0) -> np.ndarray:
    """Smootherstep rise onset -> apex - hold//2, plateau, smootherstep fall to zero at ``offset``."""
    p = np.zeros(n)
    top0, top1 = max(onset + 1, apex - hold // 2), min(offset - 1, apex + (hold - hold // 2))
    t = np.arange(n, dtype=np.float64)

    def smoother(x):
        x = np.clip(x, 0.0, 1.0)
        return x * x * x * (x * (6 * x - 15) + 10)

    up = (t > onset) & (t < top0)
    p[up] = smoother((t[up] - onset) / (top0 - onset))
    p[(t >= top0) & (t <= top1)] = 1.0
    down = (t > top1) & (t < offset)
    p[down] = smoother((offset - t[down]) / (offset - top1))
    return p


def _squeeze(lm: np.ndarray, disp: np.ndarray, iod: float) -> float:
    """The smallest ratio of moved to neutral distance between neighbouring landmarks (< 0.3 IOD apart)."""
    a = lm[:468]
    d0 = np.linalg.norm(a[:, None] - a[None], axis=-1)
    near = (d0 > 0) & (d0 < 0.3 * iod)
    b = a + disp[:468]
    d1 = np.linalg.norm(b[:, None] - b[None], axis=-1)
    return float((d1[near] / d0[near]).min())


def _event_displacement(face: NeutralFace, e: TPSEvent) -> tuple[np.ndarray, dict]:
    """Landmark displacement (478, 2) at the apex, scaled so its largest move is ``e.amplitude``; and
    each AU's own peak in px.

    Where the drawn amplitude would squeeze two neighbouring landmarks to under 45% of their distance
    (a lid move on a narrow eye: the lids would meet), the event is scaled down until they do not, and
    the ground truth reports the smaller amplitude really shown.
    """
    fr = face_frame(face.landmarks)
    units = {c: action_displacements(c, e.side, face.landmarks, fr, amplitude=e.amplitude) for c in e.aus}
    total = sum(units.values())
    k = e.amplitude / max(float(np.linalg.norm(total, axis=1).max()), 1e-9)
    for _ in range(12):
        if _squeeze(face.landmarks, total * k, fr.iod) >= 0.45:
            break
        k *= 0.85
    peaks = {c: round(float(np.linalg.norm(u * k, axis=1).max()), 3) for c, u in units.items()}
    return total * k, peaks


def _anchors(face: NeutralFace, box) -> np.ndarray:
    """Still points on the border of the warped box: the spline is zero there, so the box pastes in."""
    x0, y0, x1, y1 = box
    step = 0.25 * iod_of(face.landmarks)
    xs = np.linspace(x0, x1 - 1, max(2, int((x1 - x0) / step)))
    ys = np.linspace(y0, y1 - 1, max(2, int((y1 - y0) / step)))
    ring = np.concatenate([np.c_[xs, np.full_like(xs, y0)], np.c_[xs, np.full_like(xs, y1 - 1)],
                           np.c_[np.full_like(ys[1:-1], x0), ys[1:-1]], np.c_[np.full_like(ys[1:-1], x1 - 1), ys[1:-1]]])
    return ring  # corners once each: a repeated point makes the spline's system singular


class _Warper:
    """Per-frame backward TPS on the face box: control = moving landmarks + still landmarks + ring."""

    def __init__(self, face: NeutralFace, reach: np.ndarray):
        """``reach`` (478, 2): any displacement the clip will use (the sum of its events' apex moves)."""
        lm, w, h = face.landmarks, *face.size
        L = iod_of(lm)
        lo, hi = lm.min(0) - 0.6 * L, lm.max(0) + 0.6 * L
        x0, y0 = int(max(0, lo[0])), int(max(0, lo[1]))
        x1, y1 = int(min(w, hi[0])), int(min(h, hi[1]))
        # Whole grid cells, so that the coarse samples (at cell centres) upsample exactly onto pixels.
        self.box = (x0, y0, x0 + (x1 - x0) // GRID * GRID, y0 + (y1 - y0) // GRID * GRID)
        # A thinned mesh holds the rest of the face. The irises hold the eyeball still unless a pull
        # reaches them; then they are left to the spline (a moved iris point can meet a lid point).
        moves = np.linalg.norm(reach, axis=1) > 1e-3
        moving = np.flatnonzero(moves[:468])
        still = np.setdiff1d(np.r_[np.arange(0, 468, 3), np.arange(468, 478)], moving)
        if moves[468:].any():
            still = still[still < 468]
        self.moving, self.still = moving, still
        self.fixed = np.concatenate([lm[self.still], _anchors(face, self.box)])
        x0, y0, x1, y1 = self.box
        gy, gx = np.mgrid[y0:y1:GRID, x0:x1:GRID] + (GRID - 1) / 2
        self.coarse = np.c_[gx.ravel(), gy.ravel()].astype(np.float64)
        self.coarse_shape = gx.shape
        self.lm = lm

    def backward(self, disp: np.ndarray) -> np.ndarray:
        """Backward offsets (box h, box w, 2): where each output pixel's skin came from, minus itself."""
        moved = self.lm[self.moving] + disp[self.moving]
        src = np.concatenate([moved, self.fixed])
        val = np.concatenate([-disp[self.moving], np.zeros_like(self.fixed)])
        tps = RBFInterpolator(src, val, kernel="thin_plate_spline", degree=1)
        off = tps(self.coarse).reshape(*self.coarse_shape, 2).astype(np.float32)
        x0, y0, x1, y1 = self.box
        # Samples sit at cell centres: an integer-factor resize puts them back on their own pixels.
        return cv2.resize(off, (x1 - x0, y1 - y0), interpolation=cv2.INTER_CUBIC)


def _head_motion(n: int, fps: float, rng: np.random.Generator, on: bool) -> dict:
    """Smoothed random walks: shift (px), rotation (deg) and scale, a few px / tenths of a degree per s."""
    z = np.zeros(n)
    if not on:
        return {"enabled": False, "tx": z, "ty": z, "rotation_deg": z, "scale": z + 1}
    k = max(1.0, 0.25 * fps)

    def walk(step):
        w = np.cumsum(rng.normal(0, step / math.sqrt(fps), n))
        w = gaussian_filter1d(w, k, mode="nearest")
        return w - w[0]

    return {"enabled": True, "tx": walk(3.0), "ty": walk(2.0), "rotation_deg": walk(0.6), "scale": 1 + walk(0.006)}


def _draw_events(cfg: TPSConfig, rng: np.random.Generator, iod: float) -> list[TPSEvent]:
    n, fps = int(round(cfg.seconds * cfg.fps)), float(cfg.fps)
    gap = int(math.ceil(0.25 * fps))
    kinds = ["micro" if rng.random() < cfg.micro_fraction else "macro" for _ in range(cfg.n_events)]
    lengths = []
    for k in kinds:
        lo, hi = MICRO_S if k == "micro" else MACRO_S
        if k == "micro":
            lengths.append(int(np.clip(round(rng.uniform(lo, hi) * fps), 3, math.floor(0.5 * fps))))
        else:
            lengths.append(max(int(math.floor(0.5 * fps)) + 3, int(round(rng.uniform(lo, hi) * fps))))  # > 0.5 s
    free = n - gap * (len(kinds) + 1) - sum(lengths)
    shortest = int(math.floor(0.5 * fps)) + 3
    for i in np.argsort(lengths)[::-1]:  # too long together: shorten the longest macro events first
        if free < 0 and kinds[i] == "macro":
            cut = min(-free, lengths[i] - shortest)
            lengths[i] -= cut
            free += cut
    if free < 0:
        raise ValueError(f"{cfg.n_events} events do not fit in {cfg.seconds:g} s; use fewer events or a longer clip")
    cuts = np.sort(rng.integers(0, free + 1, len(kinds)))
    events, t = [], 0
    for i, (k, length) in enumerate(zip(kinds, lengths)):
        onset = t + gap + int(cuts[i] - (cuts[i - 1] if i else 0))
        offset = onset + length - 1
        apex = onset + int(np.clip(round(rng.uniform(0.3, 0.65) * (length - 1)), 1, length - 2))
        if rng.random() < 0.3:
            aus, emotion = (str(rng.choice(SOLO)),), None
            side = str(rng.choice(["left", "right"])) if rng.random() < 0.35 else "both"
        else:
            emotion = str(rng.choice(list(PROTOTYPES)))
            opts = PROTOTYPES[emotion]
            aus = opts[int(rng.integers(len(opts)))]
            side = str(rng.choice(["left", "right"])) if emotion in ONE_SIDED or rng.random() < 0.1 else "both"
        lo, hi = MICRO_IOD if k == "micro" else MACRO_IOD
        events.append(TPSEvent(onset, apex, offset, k, tuple(aus), side, round(float(rng.uniform(lo, hi) * iod), 2), emotion))
        t = offset + 1
    return events


def _check(cfg: TPSConfig, events: list[TPSEvent], n: int) -> None:
    if not (1 <= cfg.fps <= 1000 and 0 < cfg.seconds <= 60 and n >= 4):
        raise ValueError(f"need 1-1000 fps, 0-60 s and >= 4 frames, got {cfg.fps!r} fps, {cfg.seconds!r} s")
    if cfg.jpeg_quality and not 10 <= cfg.jpeg_quality <= 100:
        raise ValueError(f"jpeg_quality must be 0 (off) or 10-100, got {cfg.jpeg_quality!r}")
    for e in events:
        if not 0 <= e.onset < e.apex < e.offset <= n - 1:
            raise ValueError(f"event {e.onset}-{e.offset}: need 0 <= onset < apex < offset <= {n - 1}")
        dur = (e.offset - e.onset + 1) / cfg.fps
        if e.kind not in ("micro", "macro") or (e.kind == "micro") != (dur <= 0.5):
            raise ValueError(f"event {e.onset}-{e.offset}: {dur:.3f} s does not make a {e.kind!r} event (micro <= 0.5 s)")
        if not e.aus or any(c not in ACTIONS for c in e.aus) or e.side not in ("left", "right", "both"):
            raise ValueError(f"event {e.onset}-{e.offset}: bad action units {e.aus!r} or side {e.side!r}")


def make_tps_clip(config: TPSConfig = TPSConfig(), *, events: Sequence[TPSEvent | dict] | None = None,
                  name: str | None = None) -> tuple[Clip, dict]:
    """A clip of the second generator and its ground truth (same schema as ``make_clip``'s).

    ``events`` None draws ``config.n_events`` events (>= 0.25 s of neutral between them and at the
    ends) from EMFACS prototypes and single AUs, some one-sided. Randomness: ``config.seed`` through
    independent streams for events, head motion and camera noise.
    """
    cfg = config
    n, fps = int(round(cfg.seconds * cfg.fps)), float(cfg.fps)
    face = neutral_face(cfg)
    iod = iod_of(face.landmarks)
    r_ev, r_head, r_cam = (np.random.default_rng(s) for s in np.random.SeedSequence([cfg.seed, 1989]).spawn(3))
    if events is None:
        evs = _draw_events(cfg, r_ev, iod)
    else:
        evs = [TPSEvent(**e) if isinstance(e, dict) else TPSEvent(**asdict(e)) for e in events]
        for e in evs:
            e.aus = tuple(e.aus)
    _check(cfg, evs, n)
    evs.sort(key=lambda e: (e.onset, e.offset))
    apex_disp, peaks, profiles = [], [], []
    for e in evs:
        d, pk = _event_displacement(face, e)
        apex_disp.append(d)
        peaks.append(pk)
        hold = int(round(0.25 * (e.offset - e.onset))) if e.kind == "macro" else 0
        profiles.append(profile(n, e.onset, e.apex, e.offset, hold))
    warper = _Warper(face, sum(np.abs(d) for d in apex_disp) if evs else np.zeros((478, 2)))
    head = _head_motion(n, fps, r_head, cfg.head_motion)
    gain = 1 + cfg.flicker * np.sin(2 * np.pi * r_cam.uniform(0.2, 1.0) * np.arange(n) / fps + r_cam.uniform(0, 6.3))
    w, h = face.size
    centre = tuple(float(v) for v in face.landmarks.mean(0))
    x0, y0, x1, y1 = warper.box
    gy, gx = np.mgrid[y0:y1, x0:x1].astype(np.float32)
    frames = np.empty((n, h, w, 3), np.uint8)
    noise_seeds = r_cam.integers(0, 2 ** 31 - 1, n)
    noise = np.empty((h, w, 3), np.float32)
    for i in range(n):
        img = face.image.copy()
        disp = sum((p[i] * d for p, d in zip(profiles, apex_disp) if p[i] > 0), np.zeros((478, 2)))
        if np.abs(disp).max() > 1e-3:
            off = warper.backward(disp)
            img[y0:y1, x0:x1] = cv2.remap(face.image, gx + off[..., 0], gy + off[..., 1], cv2.INTER_CUBIC,
                                          borderMode=cv2.BORDER_REFLECT101)
        if head["enabled"]:
            m = cv2.getRotationMatrix2D(centre, float(head["rotation_deg"][i]), float(head["scale"][i]))
            m[:, 2] += (head["tx"][i], head["ty"][i])
            img = cv2.warpAffine(img, m, (w, h), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT101)
        f = img.astype(np.float32) * float(gain[i])
        if cfg.noise > 0:  # colour noise, independent per channel (OpenCV's generator: numpy's is ~10x slower)
            cv2.setRNGSeed(int(noise_seeds[i]))
            cv2.randn(noise, (0.0, 0.0, 0.0), (cfg.noise,) * 3)
            f += noise
        img = np.clip(f + 0.5, 0, 255).astype(np.uint8)
        if cfg.jpeg_quality:
            ok, buf = cv2.imencode(".jpg", img, [cv2.IMWRITE_JPEG_QUALITY, int(cfg.jpeg_quality)])
            img = cv2.imdecode(buf, cv2.IMREAD_UNCHANGED)
        frames[i] = img
    clip_name = name or f"tps_seed{cfg.seed}"
    gt = {
        "clip": clip_name, "fps": fps, "n_frames": n, "width": w, "height": h, "photo": face.source,
        "seed": int(cfg.seed), "iod": round(iod, 2), "generator": "tps",
        "events": [{"onset": int(e.onset), "apex": int(e.apex), "offset": int(e.offset), "kind": e.kind,
                    "aus": [{"code": c, "side": e.side, "peak": pk[c]} for c in e.aus], "emotion": e.emotion,
                    "amplitude": round(float(np.linalg.norm(d, axis=1).max()), 3)}
                   for e, d, pk in zip(evs, apex_disp, peaks)],
        "blinks": [],
        "drift": {"enabled": head["enabled"], "centre": list(centre),
                  **{k: [round(float(x), 4) for x in v] for k, v in head.items() if k != "enabled"}},
        "noise": float(cfg.noise), "flicker": float(cfg.flicker), "jpeg_quality": int(cfg.jpeg_quality),
        "config": {**asdict(cfg), "centre": list(cfg.centre)},
    }
    return Clip(frames, fps, clip_name, meta={"synthetic": True, "ground_truth": gt}), gt
