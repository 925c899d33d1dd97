"""Synthetic clips: time: the raised-cosine profile, drawing events, blinks and head drift, and the
checks on configs and given events."""
from __future__ import annotations

import math

import numpy as np

from mevqa.testing.synth.face import FaceSetup, _check_size
from mevqa.testing.synth.fields import event_field
from mevqa.testing.synth.specs import (AU_SPECS, EMOTION_AUS, KINDS, MACRO_AMPLITUDE, MACRO_MAX_S, MACRO_MIN_S,
                                      MICRO_AMPLITUDE, MICRO_MAX_S, NEUTRAL_GAP_S, SIDES, SINGLE_AUS,
                                      _ONE_SIDED_EMOTIONS, SynthConfig, SynthError, SynthEvent)


# -- time ---------------------------------------------------------------------------------------
def temporal_profile(n_frames: int, onset: int, apex: int, offset: int) -> np.ndarray:
    """Raised-cosine rise onset->apex and fall apex->offset; 1 at the apex, 0 at and outside onset/offset."""
    t = np.arange(n_frames, dtype=np.float64)
    p = np.zeros(n_frames)
    if apex > onset:
        r = (t >= onset) & (t <= apex)
        p[r] = 0.5 - 0.5 * np.cos(np.pi * (t[r] - onset) / (apex - onset))
    if offset > apex:
        f = (t >= apex) & (t <= offset)
        p[f] = 0.5 + 0.5 * np.cos(np.pi * (t[f] - apex) / (offset - apex))
    if 0 <= apex < n_frames:
        p[apex] = 1.0
    return p


# -- drawing events, blinks and drift ---------------------------------------------------------
def _draw_aus(rng: np.random.Generator) -> tuple[tuple[str, ...], str | None, str]:
    if rng.random() < 0.25:
        code = str(rng.choice(SINGLE_AUS))
        side = str(rng.choice(["left", "right"])) if rng.random() < 0.4 else "both"
        return (code,), None, side
    emotion = str(rng.choice(list(EMOTION_AUS)))
    options = EMOTION_AUS[emotion]
    aus = options[int(rng.integers(len(options)))]
    if emotion in _ONE_SIDED_EMOTIONS or rng.random() < 0.1:
        side = str(rng.choice(["left", "right"]))
    else:
        side = "both"
    return tuple(aus), emotion, side


def amplitude_range(kind: str, iod: float = 100.0) -> tuple[float, float]:
    """Apex amplitude range in pixels for ``kind``: 1-4 px (micro) and 4-10 px (macro) at an
    inter-ocular distance of 100 px (640x480), scaled with the face so a smaller face moves less."""
    lo, hi = MICRO_AMPLITUDE if kind == "micro" else MACRO_AMPLITUDE
    k = iod / 100.0
    return lo * k, hi * k


def _micro_frames(fps: float) -> int:
    return int(math.floor(MICRO_MAX_S * fps + 1e-9))


def _draw_events(cfg: SynthConfig, rng: np.random.Generator, setup: FaceSetup) -> list[SynthEvent]:
    n, fps, total = cfg.n_events, cfg.fps, cfg.n_frames
    if n == 0:
        return []
    gap = int(math.ceil(NEUTRAL_GAP_S * fps))
    kinds = ["micro" if rng.random() < cfg.micro_fraction else "macro" for _ in range(n)]
    micro_max = _micro_frames(fps)
    micro_min = max(3, min(micro_max, int(round(0.2 * fps))))
    macro_min = max(micro_max + 2, int(math.ceil(MACRO_MIN_S * fps)))
    macro_max = int(math.floor(MACRO_MAX_S * fps))
    free = total - gap * (n + 1)
    lengths = []
    for k in kinds:
        if k == "micro":
            lo, hi = micro_min, max(micro_min, int(math.floor(0.48 * fps)))
            lengths.append(int(rng.integers(lo, min(hi, micro_max) + 1)))
        else:
            length = int(round(rng.uniform(MACRO_MIN_S, min(3.0, MACRO_MAX_S)) * fps))
            lengths.append(min(max(length, macro_min), macro_max))
    if sum(lengths) > free:  # shrink macro events toward their minimum before giving up
        over = sum(lengths) - free
        for i, k in enumerate(kinds):
            if k == "macro" and over > 0:
                cut = min(over, lengths[i] - macro_min)
                lengths[i] -= cut
                over -= cut
        if over > 0:
            raise SynthError(f"{n} events do not fit in {cfg.seconds:g} s with {NEUTRAL_GAP_S:g} s of neutral "
                             "between them; use fewer events or a longer clip")
    slack = free - sum(lengths)
    shares = rng.dirichlet(np.ones(n + 1)) * slack
    extra = np.floor(shares).astype(int)
    extra[: slack - extra.sum()] += 1
    events, t = [], 0
    for i, (k, length) in enumerate(zip(kinds, lengths)):
        t += gap + int(extra[i])
        onset, offset = t, t + length - 1
        span = offset - onset
        apex = onset + int(np.clip(round(rng.uniform(0.35, 0.6) * span), 1, span - 1))
        aus, emotion, side = _draw_aus(rng)
        lo, hi = amplitude_range(k, setup.iod)
        # Lid-only AUs (AU5) are capped by the eye opening: draw within what the face can show.
        hi = min(hi, event_field(setup, aus, side, hi).peak)
        amp = float(rng.uniform(lo, max(lo, hi)))
        events.append(SynthEvent(onset, apex, offset, k, aus, side, round(amp, 2), emotion))
        t = offset + 1
    return events


def _draw_blinks(n_frames: int, fps: float, events: list[SynthEvent], rng: np.random.Generator) -> list[tuple]:
    """Blinks in the neutral stretches, clear of events by >= 0.1 s; about one every 4 s, at least one."""
    margin = max(1, int(round(0.1 * fps)))
    busy = np.zeros(n_frames, bool)
    for e in events:
        busy[max(0, e.onset - margin): e.offset + margin + 1] = True
    want = max(1, int(rng.poisson(0.25 * n_frames / fps)))
    blinks = []
    shortest = max(4, int(math.ceil(0.12 * fps)))
    for _ in range(want):
        length = max(shortest, int(round(rng.uniform(0.12, 0.3) * fps)))
        starts: list[int] = []
        while length >= shortest:  # no room for this one: try a quicker blink
            starts = [s for s in range(1, n_frames - length + 1) if not busy[s: s + length].any()]
            if starts:
                break
            length -= 1
        if not starts:
            break
        s = int(rng.choice(starts))
        closure = float(rng.uniform(0.9, 1.0))
        blinks.append((s, s + length - 1, closure))
        busy[max(0, s - margin): s + length + margin] = True
    return sorted(blinks)


def _drift(n_frames: int, fps: float, rng: np.random.Generator, centre, enabled: bool) -> dict:
    """Slow head drift: steady translation of 1-4 px/s and rotation below 0.8 deg/s, plus a slow sway."""
    t = np.arange(n_frames) / fps
    if not enabled:
        z = np.zeros(n_frames)
        return {"enabled": False, "centre": [float(c) for c in centre], "tx": z, "ty": z, "rotation_deg": z}
    speed, ang = rng.uniform(1.0, 4.0), rng.uniform(0, 2 * np.pi)
    sway, f, ph = rng.uniform(0.3, 1.5, 2), rng.uniform(0.15, 0.5), rng.uniform(0, 2 * np.pi, 3)
    w, rsway = rng.uniform(-0.8, 0.8), rng.uniform(0.05, 0.3)
    tx = speed * np.cos(ang) * t + sway[0] * (np.sin(2 * np.pi * f * t + ph[0]) - np.sin(ph[0]))
    ty = speed * np.sin(ang) * t + sway[1] * (np.sin(2 * np.pi * f * t + ph[1]) - np.sin(ph[1]))
    rot = w * t + rsway * (np.sin(2 * np.pi * f * 0.7 * t + ph[2]) - np.sin(ph[2]))
    return {"enabled": True, "centre": [float(c) for c in centre], "velocity_px_s": [float(speed * np.cos(ang)),
            float(speed * np.sin(ang))], "rotation_deg_s": float(w), "tx": tx, "ty": ty, "rotation_deg": rot}


def _check_config(cfg: SynthConfig) -> None:
    _check_size(cfg.width, cfg.height)
    if not (isinstance(cfg.fps, (int, float)) and 1.0 <= cfg.fps <= 1000.0):
        raise SynthError(f"fps {cfg.fps!r} is out of range (1-1000)")
    if not (0 < cfg.seconds <= 60):
        raise SynthError(f"seconds {cfg.seconds!r} is out of range (0-60)")
    if cfg.n_frames < 4:
        raise SynthError(f"{cfg.seconds:g} s at {cfg.fps:g} fps is fewer than 4 frames")
    if not (isinstance(cfg.n_events, (int, np.integer)) and 0 <= cfg.n_events <= 50):
        raise SynthError(f"n_events {cfg.n_events!r} must be an integer 0-50")
    if not 0 <= cfg.micro_fraction <= 1:
        raise SynthError(f"micro_fraction {cfg.micro_fraction!r} must be within 0-1")
    if not 0 <= cfg.noise <= 50:
        raise SynthError(f"noise {cfg.noise!r} must be within 0-50 grey levels")
    if not 0 <= cfg.flicker <= 0.2:
        raise SynthError(f"flicker {cfg.flicker!r} must be within 0-0.2")


def _check_event(e: SynthEvent, n_frames: int, fps: float, iod: float) -> None:
    where = f"event {e.onset}-{e.offset}"
    for name in ("onset", "apex", "offset"):
        if not isinstance(getattr(e, name), (int, np.integer)):
            raise SynthError(f"{where}: {name} must be an integer frame index")
    if not 0 <= e.onset < e.apex < e.offset <= n_frames - 1:
        raise SynthError(f"{where}: need 0 <= onset < apex < offset <= {n_frames - 1}, got {e.onset}, {e.apex}, {e.offset}")
    if e.kind not in KINDS:
        raise SynthError(f"{where}: kind must be 'micro' or 'macro', got {e.kind!r}")
    dur = e.n_frames / fps
    if e.kind == "micro" and dur > MICRO_MAX_S + 1e-9:
        raise SynthError(f"{where}: a micro event lasts at most {MICRO_MAX_S} s, this one {dur:.3f} s")
    if e.kind == "macro" and not (e.offset - e.onset) / fps > MICRO_MAX_S:
        raise SynthError(f"{where}: a macro event lasts more than {MICRO_MAX_S} s, this one {dur:.3f} s")
    if not e.aus:
        raise SynthError(f"{where}: no action units")
    for code in e.aus:
        if code not in AU_SPECS:
            raise SynthError(f"{where}: unknown action unit {code!r} (known: {', '.join(AU_SPECS)})")
    if e.side not in SIDES:
        raise SynthError(f"{where}: side must be one of {', '.join(SIDES)}, got {e.side!r}")
    if not 0 < e.amplitude <= 0.25 * iod:
        raise SynthError(f"{where}: amplitude {e.amplitude!r} px must be > 0 and <= {0.25 * iod:.0f} (a quarter of the eye distance)")


