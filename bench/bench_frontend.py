"""Front-end speed: decode, landmarks, alignment and flow frames per second.

    python bench/bench_frontend.py [--repeats 3]

Runs on the real 640x360 test video and on a 640x480 synthetic clip, and prints the median of
``--repeats`` runs for each stage, the whole front end, and decode alone. Target (issue 2): the whole
front end at 60 frames/s or more on 640x360 with 2 CPU cores.
"""
from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time
from pathlib import Path

os.environ.setdefault("GLOG_minloglevel", "2")

from mevqa.face.landmarks import align_faces, track_face  # noqa: E402
from mevqa.motion.flow import flow_sequence  # noqa: E402
from mevqa.io.video import Clip  # noqa: E402

REAL = Path(__file__).resolve().parents[1] / "tests" / "data" / "pexels_woman_emotions.mp4"


def _time(fn):
    t = time.perf_counter()
    out = fn()
    return time.perf_counter() - t, out


def bench(path: Path, repeats: int) -> dict:
    rows = {k: [] for k in ("decode (decord)", "decode (opencv)", "landmarks", "alignment", "flow (DIS medium)", "front end")}
    n = 0
    for _ in range(repeats):
        t_dec, clip = _time(lambda: Clip.load(path, backend="decord"))
        t_cv, _ = _time(lambda: Clip.load(path, backend="opencv"))
        t_lm, track = _time(lambda: track_face(clip))
        t_al, faces = _time(lambda: align_faces(clip, track))
        t_fl, _ = _time(lambda: flow_sequence(faces.gray, reference=0))
        n = clip.n_frames
        for k, t in zip(rows, (t_dec, t_cv, t_lm, t_al, t_fl, t_dec + t_lm + t_al + t_fl)):
            rows[k].append(n / t)
    return {"clip": f"{path.name} ({clip.size[0]}x{clip.size[1]}, {n} frames)",
            **{k: statistics.median(v) for k, v in rows.items()}}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--repeats", type=int, default=3)
    a = ap.parse_args()
    paths = [REAL]
    tmp = tempfile.TemporaryDirectory()
    try:
        from mevqa.testing.synth import SynthConfig, make_clip

        clip, _ = make_clip(SynthConfig(width=640, height=480, fps=30.0, seconds=10.0, n_events=3, seed=1))
        paths.append(clip.save(Path(tmp.name) / "synth_640x480.mp4"))
    except ImportError as e:
        print(f"(synthetic clip skipped: {e})")
    print(f"front-end frames/s, median of {a.repeats} (cores available: {os.cpu_count()})")
    for p in paths:
        r = bench(p, a.repeats)
        print(f"\n{r.pop('clip')}")
        for k, v in r.items():
            print(f"  {k:20s} {v:8.1f} frames/s")
    tmp.cleanup()


if __name__ == "__main__":
    main()
