"""Synthetic clips: :func:`make_clip`, one clip and its exact ground truth."""
from __future__ import annotations

from dataclasses import asdict
from pathlib import Path
from typing import Sequence

import cv2
import numpy as np

from mevqa.face.landmarks import LANDMARK_GROUPS
from mevqa.io.video import Clip
from mevqa.testing.synth.face import face_setup
from mevqa.testing.synth.fields import event_field
from mevqa.testing.synth.specs import SynthConfig, SynthError, SynthEvent
from mevqa.testing.synth.timeline import (_check_config, _check_event, _draw_blinks, _draw_events, _drift,
                                         temporal_profile)
from mevqa.testing.synth.warp import _Renderer, _similarity


def make_clip(config: SynthConfig = SynthConfig(), *, events: Sequence[SynthEvent] | None = None,
              blinks: Sequence[tuple[int, int]] | None = None, name: str | None = None) -> tuple[Clip, dict]:
    """A synthetic clip and its ground truth (a JSON-serialisable dict).

    ``events`` None draws ``config.n_events`` non-overlapping events from :data:`EMOTION_AUS` and
    :data:`SINGLE_AUS`, with >= 0.3 s of neutral between them and at both ends. Given events may
    overlap (a micro-expression inside a macro one). ``blinks`` (onset, offset) pairs replace the
    random blinks of ``config.blinks``. All randomness comes from ``config.seed`` through independent
    streams (events, blinks, drift, noise), so switching drift off leaves the events where they were.
    """
    _check_config(config)
    setup = face_setup(config.photo, width=config.width, height=config.height, iod=config.iod)
    n, fps = config.n_frames, float(config.fps)
    r_ev, r_blink, r_drift, r_noise = (np.random.default_rng(s) for s in np.random.SeedSequence(config.seed).spawn(4))
    if events is None:
        events = _draw_events(config, r_ev, setup)
    else:
        events = [SynthEvent(**asdict(e)) if isinstance(e, SynthEvent) else SynthEvent(**e) for e in events]
        for e in events:
            e.aus = tuple(e.aus)
            _check_event(e, n, fps, setup.iod)
    events = sorted(events, key=lambda e: (e.onset, e.offset))
    if blinks is not None:
        blink_list = []
        for b in blinks:
            on, off = int(b[0]), int(b[1])
            if not 0 <= on < off - 1 < n - 1:
                raise SynthError(f"blink {on}-{off}: need 0 <= onset < offset - 1 < {n - 1}")
            blink_list.append((on, off, 1.0))
    else:
        blink_list = _draw_blinks(n, fps, events, r_blink) if config.blinks else []
    centre = setup.landmarks[list(LANDMARK_GROUPS["nose_ridge"])].mean(0)
    drift = _drift(n, fps, r_drift, centre, config.drift)

    fields = [event_field(setup, e.aus, e.side, e.amplitude) for e in events]
    profiles = [temporal_profile(n, e.onset, e.apex, e.offset) for e in events]
    blink_profiles = []
    for on, off, closure in blink_list:
        apex = on + max(1, int(round(0.35 * (off - on))))  # closing is faster than reopening
        blink_profiles.append((temporal_profile(n, on, min(apex, off - 1), off), closure))

    t = np.arange(n) / fps
    flick = np.zeros(n)
    if config.flicker > 0:  # a slow light wobble plus per-frame jitter, unit variance overall
        f0, ph = r_noise.uniform(0.5, 3.0), r_noise.uniform(0, 2 * np.pi)
        flick = config.flicker * (0.7 * np.sqrt(2) * np.sin(2 * np.pi * f0 * t + ph) + 0.71 * r_noise.standard_normal(n))
    noise_seeds = r_noise.integers(0, 2 ** 31 - 1, n)

    rend = _Renderer(setup)
    w, h = setup.size
    frames = np.empty((n, h, w, 3), np.uint8)
    noise = np.empty((h, w), np.float32)
    for i in range(n):
        smooth, boxes, lids = None, [], {}
        for fld, prof in zip(fields, profiles):
            a = prof[i]
            if a <= 0:
                continue
            if fld.box is not None:
                smooth = fld.smooth * a if smooth is None else smooth + fld.smooth * a
                boxes.append(fld.box)
            for k, v in fld.lids.items():
                lids[k] = lids.get(k, 0.0) + v * a
        for prof, closure in blink_profiles:
            a = prof[i]
            if a > 0:
                for side in ("right", "left"):
                    k = (side, "blink")
                    lids[k] = min(1.0, lids.get(k, 0.0) + a * closure)
        box = None
        if boxes:
            bb = np.array(boxes)
            box = (bb[:, 0].min(), bb[:, 1].min(), bb[:, 2].max(), bb[:, 3].max())
        b, bbox = rend.backward(smooth, box, lids)
        aff = _similarity(centre, drift["tx"][i], drift["ty"][i], drift["rotation_deg"][i]) if config.drift else None
        img = rend.frame(b, bbox, aff)
        gain = 1.0 + float(flick[i])
        if config.noise > 0:
            # Luminance noise (one field for R, G and B): after demosaicing and chroma denoising, camera
            # noise is mostly luminance; one channel also costs a third of three.
            cv2.setRNGSeed(int(noise_seeds[i]))  # OpenCV's generator: ~3x faster than numpy's here
            cv2.randn(noise, 0.0, float(config.noise))
            frames[i] = cv2.addWeighted(img, gain, cv2.cvtColor(noise, cv2.COLOR_GRAY2RGB), 1.0, 0.0, dtype=cv2.CV_8U)
        elif gain != 1.0:
            frames[i] = cv2.convertScaleAbs(img, alpha=gain)  # uint8 input: abs is a no-op
        else:
            frames[i] = img

    clip_name = name or f"synth_seed{config.seed}"
    gt = {
        "clip": clip_name,
        "fps": fps,
        "n_frames": n,
        "width": w,
        "height": h,
        "photo": setup.photo if setup.photo == "<array>" else _display_path(setup.photo),
        "seed": int(config.seed),
        "iod": round(setup.iod, 2),
        "events": [{
            "onset": int(e.onset), "apex": int(e.apex), "offset": int(e.offset), "kind": e.kind,
            "aus": [{"code": c, "side": e.side, "peak": round(fld.au_peaks[c], 3)} for c in e.aus],
            "emotion": e.emotion, "amplitude": round(fld.peak, 3),
        } for e, fld in zip(events, fields)],
        "blinks": [{"onset": int(on), "offset": int(off)} for on, off, _ in blink_list],
        "drift": {k: ([round(float(x), 4) for x in v] if isinstance(v, np.ndarray) else v) for k, v in drift.items()},
        "noise": float(config.noise),
        "flicker": float(config.flicker),
        # Everything make_clip needs to render this clip again: with events=None the same events and
        # blinks are drawn; given events and blinks are the ones listed above.
        "config": {**asdict(config), "photo": None if config.photo is None else
                   (str(config.photo) if not isinstance(config.photo, np.ndarray) else "<array>")},
    }
    clip = Clip(frames, fps, clip_name, meta={"synthetic": True, "ground_truth": gt})
    return clip, gt


def _display_path(p: str) -> str:
    """The bundled photo by its package-relative name, so ground truth does not leak install paths."""
    try:
        return str(Path(p).resolve().relative_to(Path(__file__).resolve().parents[3]))
    except ValueError:
        return p

