"""Synthetic clips: sets of clips on disk with ground truth and an index (``mevqa synth``)."""
from __future__ import annotations

import json
from pathlib import Path
from typing import Sequence

import numpy as np

from mevqa.io.video import write_clip
from mevqa.testing.synth.clips import _display_path, make_clip
from mevqa.testing.synth.specs import DEFAULT_PHOTO, SynthConfig, SynthError


def write_synth_set(out_dir, n: int = 20, *, seed: int = 0, fmt: str = "mp4", fps: float | Sequence[float] = (30.0, 200.0),
                    width: int = 640, height: int = 480, photo=None, progress=None) -> list[Path]:
    """Write ``n`` clips (mp4 files or CASME II-style frame folders) with ``<name>.json`` ground truth
    and an ``index.json``; returns the clip paths.

    The set is a seeded mix: frame rates alternate through ``fps``; 30-fps-like clips last 3-6 s with
    1-3 events, high-speed clips 1.5-2.5 s with 1-2; about 60% micro events, some one-sided, drift
    and blinks in most clips. Frame folders are named so that :meth:`Clip.load` infers their rate:
    ``img1.jpg...`` (CASME II, 200 fps) at 200 fps, ``1.jpg...`` (CAS(ME)^3, 30 fps) at 30 fps;
    other rates need ``--fps`` from the JSON. ``progress(path, gt)`` is called after each clip.
    """
    if fmt not in ("mp4", "folder"):
        raise SynthError(f"format must be 'mp4' or 'folder', got {fmt!r}")
    if not isinstance(n, (int, np.integer)) or n < 1:
        raise SynthError(f"n must be a positive integer, got {n!r}")
    rates = [float(fps)] if isinstance(fps, (int, float)) else [float(f) for f in fps]
    if not rates:
        raise SynthError("give at least one frame rate")
    out = Path(out_dir).expanduser()
    out.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(np.random.SeedSequence([int(seed), 7919]))
    order = rng.permutation(np.resize(np.arange(len(rates)), n))
    paths, index = [], []
    for i in range(n):
        rate = rates[int(order[i])]
        fast = rate > 60
        seconds = float(np.round(rng.uniform(1.5, 2.5) if fast else rng.uniform(3.0, 6.0), 2))
        n_events = int(rng.integers(1, 3 if fast else 4))
        cfg = SynthConfig(width=width, height=height, fps=rate, seconds=seconds, n_events=n_events,
                          micro_fraction=0.6, blinks=bool(rng.random() < 0.8), drift=bool(rng.random() < 0.8),
                          noise=float(np.round(rng.uniform(1.0, 3.0), 2)), flicker=float(np.round(rng.uniform(0, 0.02), 4)),
                          seed=int(seed) * 1000 + i, photo=photo)
        name = f"synth_{i:03d}"
        for _ in range(5):  # an unlucky draw of long events in a short clip: shorten, then retry
            try:
                clip, gt = make_clip(cfg, name=name)
                break
            except SynthError:
                cfg.n_events = max(1, cfg.n_events - 1)
        else:  # pragma: no cover - one event always fits the clip lengths above
            raise SynthError(f"{name}: cannot place events")
        if fmt == "mp4":
            path = write_clip(clip.frames, out / f"{name}.mp4", fps=rate)
        else:
            path = write_clip(clip.frames, out / name, fps=rate, pattern="img{n}.jpg" if rate >= 100 else "{n}.jpg")
        gt["clip"] = path.name
        (out / f"{name}.json").write_text(json.dumps(gt, indent=1))
        paths.append(path)
        index.append({"name": name, "clip": path.name, "json": f"{name}.json", "fps": rate, "n_frames": gt["n_frames"],
                      "events": [{"kind": e["kind"], "aus": [a["code"] for a in e["aus"]], "side": e["aus"][0]["side"]}
                                 for e in gt["events"]], "blinks": len(gt["blinks"]), "drift": gt["drift"]["enabled"]})
        if progress is not None:
            progress(path, gt)
    evs = [e for c in index for e in c["events"]]
    summary = {"clips": n, "events": len(evs), "micro": sum(e["kind"] == "micro" for e in evs),
               "macro": sum(e["kind"] == "macro" for e in evs), "one_sided": sum(e["side"] != "both" for e in evs),
               "blinks": sum(c["blinks"] for c in index), "with_drift": sum(c["drift"] for c in index),
               "fps": {str(r): sum(c["fps"] == r for c in index) for r in rates}}
    (out / "index.json").write_text(json.dumps({"seed": int(seed), "format": fmt, "width": width, "height": height,
                                                "photo": _display_path(str(photo or DEFAULT_PHOTO)), "summary": summary,
                                                "clips": index}, indent=1))
    return paths



def _describe(gt: dict) -> str:
    evs = "; ".join(f"{e['kind']} {'+'.join(a['code'] for a in e['aus'])}({e['aus'][0]['side']}) "
                    f"{e['onset']}-{e['offset']}" for e in gt["events"]) or "none"
    return f"{gt['fps']:g} fps, {gt['n_frames']} frames, events: {evs}; blinks: {len(gt['blinks'])}"


def main_synth(out_dir, *, n: int = 20, seed: int = 0, fmt: str = "mp4", fps: float | Sequence[float] = (30.0, 200.0),
               photo=None, width: int = 640, height: int = 480) -> list[Path]:
    """``mevqa synth OUT_DIR``: write a synthetic set and print one line per clip."""
    def report(path: Path, gt: dict) -> None:
        print(f"wrote {path}  ({_describe(gt)})", flush=True)

    paths = write_synth_set(out_dir, n, seed=seed, fmt=fmt, fps=fps, width=width, height=height, photo=photo,
                            progress=report)
    print(f"ground truth: {Path(out_dir) / 'index.json'}", flush=True)
    return paths
