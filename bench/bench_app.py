"""Time to first evidence in the app: a 3-second 640x360 clip, from the uploaded file to the Evidence.

Runs the app's own path (:func:`mevqa.apps.uploads.load_upload` then :func:`mevqa.apps.uploads.evidence_stream`) with the
evidence cache disabled, on 3-second windows of the real test video (640x360, 23.98 fps), and prints
the median over runs. Target: <= 3 s on 2 CPU cores.

    python bench/bench_app.py [--runs 5] [--threads 2]
"""
from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time
from pathlib import Path

os.environ.setdefault("GLOG_minloglevel", "2")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
os.environ.setdefault("MPLBACKEND", "Agg")

REAL_VIDEO = Path(__file__).resolve().parents[1] / "tests" / "data" / "pexels_woman_emotions.mp4"


def one_run(path: Path) -> dict:
    from mevqa.evidence.builder import Evidence
    from mevqa.apps.uploads import evidence_stream, load_upload

    t0 = time.perf_counter()
    clip = load_upload(path)
    t_loaded = time.perf_counter()
    t_first_progress = None
    for item in evidence_stream(clip, cache=False):
        if t_first_progress is None:
            t_first_progress = time.perf_counter()
        if isinstance(item, Evidence):
            ev = item
    t_done = time.perf_counter()
    return {"decode": t_loaded - t0, "first_progress": t_first_progress - t0, "evidence": t_done - t0,
            "intervals": len(ev.intervals), "frames": clip.n_frames, "size": clip.size}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--threads", type=int, default=2, help="OpenCV threads (the target machine has 2 cores)")
    ap.add_argument("--seconds", type=float, default=3.0)
    a = ap.parse_args()

    import cv2

    from mevqa.io.video import Clip, write_clip

    cv2.setNumThreads(a.threads)
    src = Clip.load(REAL_VIDEO)
    n = round(a.seconds * src.fps)
    starts = [(k * n) % max(1, src.n_frames - n) for k in range(a.runs)]  # different windows of the video
    with tempfile.TemporaryDirectory() as tmp:
        paths = [write_clip(src.frames[s:s + n], Path(tmp) / f"clip{k}_{s}.mp4", fps=src.fps)
                 for k, s in enumerate(starts)]
        warm = one_run(paths[0])  # first run pays for MediaPipe's graph set-up (once per process)
        runs = [one_run(p) for p in paths]
    med = {k: statistics.median(r[k] for r in runs) for k in ("decode", "first_progress", "evidence")}
    w, h = runs[0]["size"]
    each = ", ".join(f"{r['evidence']:.2f}" for r in runs)
    print(f"clip: {a.seconds:g} s, {runs[0]['frames']} frames, {w}x{h} (windows of {REAL_VIDEO.name}); "
          f"cv2 threads {a.threads}; evidence cache off; {a.runs} runs after 1 warm-up")
    print(f"cold first run (process start-up costs included): {warm['evidence']:.2f} s")
    print(f"median decode:                 {med['decode']:.2f} s")
    print(f"median time to first progress: {med['first_progress']:.2f} s")
    print(f"median time to first evidence: {med['evidence']:.2f} s  (target <= 3 s) "
          f"[{each}]")
    print(f"intervals per run: {[r['intervals'] for r in runs]}")


if __name__ == "__main__":
    main()
