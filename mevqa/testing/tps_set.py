"""Sets of clips from the second synthetic generator (:mod:`mevqa.testing.tps_generator`) on disk.

A seeded mix of faces, sizes and crops (the portrait at 320x240 to 960x540 with 38-100 px between the
eyes, off-centre crops; calm frames of the real video at its own size, cropped and halved), frame rates
(25, 30, 60 fps), 1-3 events, noise, gain wander, JPEG re-encoding and head motion. Each clip is an mp4
(or a frame folder) with ``<name>.json`` ground truth in :func:`mevqa.testing.synth.make_clip`'s schema,
plus an ``index.json``.
"""
from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np

from mevqa.io.video import write_clip
from mevqa.testing.tps_faces import CALM_TIMES
from mevqa.testing.tps_generator import TPSConfig, make_tps_clip

_PORTRAIT_FRAMES = ((640, 480, (0.09, 0.16)), (320, 240, (0.16, 0.22)), (480, 640, (0.10, 0.13)), (960, 540, (0.11, 0.18)))
_VIDEO_FRAMES = ((640, 360, None), (480, 360, None), (320, 180, 0.28))  # iod: None = as filmed, else x height


def tps_configs(n: int, *, seed: int = 0, seconds: tuple[float, float] = (2.5, 5.0)) -> list[TPSConfig]:
    """``n`` varied configs (deterministic in ``seed``), clips lasting ``seconds`` (a range)."""
    rng = np.random.default_rng(np.random.SeedSequence([int(seed), 4242]))
    out = []
    for i in range(n):
        fps = float(rng.choice([30.0, 30.0, 25.0, 60.0]))
        common = dict(fps=fps, seconds=float(np.round(rng.uniform(*seconds), 2)), n_events=int(rng.integers(1, 4)),
                      micro_fraction=0.6, head_motion=bool(rng.random() < 0.8),
                      noise=float(np.round(rng.uniform(0.5, 3.0), 2)), flicker=float(np.round(rng.uniform(0, 0.02), 4)),
                      jpeg_quality=int(rng.choice([0, 0, 40, 60, 85])), seed=int(seed) * 1000 + i)
        if i % 5 < 3:  # 3 portraits in 5, 2 real-video faces
            w, h, (lo, hi) = _PORTRAIT_FRAMES[int(rng.integers(len(_PORTRAIT_FRAMES)))]
            centre = (float(np.round(rng.uniform(0.42, 0.58), 3)), float(np.round(rng.uniform(0.42, 0.55), 3)))
            out.append(TPSConfig(face="portrait", width=w, height=h, iod=float(np.round(rng.uniform(lo, hi) * h, 1)),
                                 centre=centre, **common))
        else:
            w, h, k = _VIDEO_FRAMES[int(rng.integers(len(_VIDEO_FRAMES)))]
            out.append(TPSConfig(face="video", width=w, height=h, iod=None if k is None else k * h,
                                 video_time=float(rng.choice(CALM_TIMES)), **common))
    return out


def write_tps_set(out_dir, n: int = 20, *, seed: int = 0, fmt: str = "mp4", seconds: tuple[float, float] = (2.5, 5.0),
                  progress=None) -> list[Path]:
    """Write ``n`` clips ``tps_000.mp4`` ... with ``<name>.json`` ground truth and ``index.json``; returns
    the clip paths. ``fmt`` "mp4" (OpenCV mp4v) or "folder" (JPEG frames ``img1.jpg`` ...; pass the fps
    from the JSON when loading). ``progress(path, gt)`` is called after each clip."""
    if fmt not in ("mp4", "folder"):
        raise ValueError(f"format must be 'mp4' or 'folder', got {fmt!r}")
    out = Path(out_dir).expanduser()
    out.mkdir(parents=True, exist_ok=True)
    paths, index = [], []
    for i, cfg in enumerate(tps_configs(n, seed=seed, seconds=seconds)):
        name = f"tps_{i:03d}"
        for _ in range(4):  # a face that does not fit, or events that do not: centre it, then fewer events
            try:
                clip, gt = make_tps_clip(cfg, name=name)
                break
            except ValueError:
                cfg.centre, cfg.n_events = (0.5, 0.5), max(1, cfg.n_events - 1)
        else:  # pragma: no cover - one centred event always fits the sizes above
            raise ValueError(f"{name}: cannot make this clip")
        path = write_clip(clip.frames, out / (f"{name}.mp4" if fmt == "mp4" else name), fps=cfg.fps)
        gt["clip"] = path.name
        (out / f"{name}.json").write_text(json.dumps(gt, indent=1))
        paths.append(path)
        index.append({"name": name, "clip": path.name, "json": f"{name}.json", "face": gt["photo"], "fps": cfg.fps,
                      "size": [gt["width"], gt["height"]], "iod": gt["iod"], "n_frames": gt["n_frames"],
                      "events": [{"kind": e["kind"], "aus": [a["code"] for a in e["aus"]], "side": e["aus"][0]["side"]}
                                 for e in gt["events"]]})
        if progress is not None:
            progress(path, gt)
    (out / "index.json").write_text(json.dumps({"generator": "tps", "seed": int(seed), "format": fmt, "clips": index},
                                               indent=1))
    return paths


def main(argv=None) -> None:
    """``python -m mevqa.testing.tps_set OUT_DIR [--n 20] [--seed 0] [--format mp4|folder]``."""
    ap = argparse.ArgumentParser(prog="python -m mevqa.testing.tps_set", description=__doc__.splitlines()[0])
    ap.add_argument("out_dir")
    ap.add_argument("--n", type=int, default=20)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--format", choices=("mp4", "folder"), default="mp4")
    a = ap.parse_args(argv)

    def report(path: Path, gt: dict) -> None:
        evs = "; ".join(f"{e['kind']} {'+'.join(x['code'] for x in e['aus'])}({e['aus'][0]['side']}) "
                        f"{e['onset']}-{e['offset']}" for e in gt["events"])
        print(f"wrote {path}  ({gt['photo']}, {gt['width']}x{gt['height']}, {gt['fps']:g} fps, events: {evs})", flush=True)

    write_tps_set(a.out_dir, a.n, seed=a.seed, fmt=a.format, progress=report)
    print(f"ground truth: {Path(a.out_dir) / 'index.json'}")


if __name__ == "__main__":
    main()
