"""Spotting accuracy on a seeded synthetic set, spotting speed, and the real test video.

    python bench/bench_spotting.py [--n 24] [--seed 2025] [--out DIR] [--plot /tmp/spot_real.png]

1. Writes ``--n`` clips with ``mevqa.testing.synth.write_synth_set`` (mp4, 640x480, 30 and 200 fps; micro and
   macro events, some one-sided, head drift and blinks in most clips), loads each back from the mp4
   (so the codec's noise is in), runs the front end and the spotter, and prints MEGC spotting scores
   (IoU >= 0.5, counts pooled over clips; ``mevqa.megc.metrics.spotting_scores``) overall, micro and macro.
2. Times the front end and the spotter on the real 640x360 video (median of ``--repeats``) and
   prints frames per second for the spotter alone and front end + spotter (decoding excluded and
   included). Target (issue 3): >= 60 frames/s front end included on 2 cores.
3. Prints the intervals spotted in the real video with their times, and saves its motion plot.

Targets (issue 3): overall F1 >= 0.85 and micro F1 >= 0.80 on the synthetic set.
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import tempfile
import time
from pathlib import Path

os.environ.setdefault("GLOG_minloglevel", "2")

from mevqa.motion.frontend import run_frontend  # noqa: E402
from mevqa.megc.metrics import iou, spotting_scores  # noqa: E402
from mevqa.spot.spotter import SpotConfig, spot  # noqa: E402
from mevqa.testing.synth import write_synth_set  # noqa: E402
from mevqa.io.video import Clip  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
REAL = ROOT / "tests" / "data" / "pexels_woman_emotions.mp4"


def _fmt(prf) -> str:
    return f"F1 {prf.f1:.3f}  P {prf.precision:.3f}  R {prf.recall:.3f}  (TP {prf.tp}, FP {prf.fp}, FN {prf.fn})"


def synthetic(n: int, seed: int, out: Path, config: SpotConfig) -> None:
    t0 = time.perf_counter()
    paths = write_synth_set(out, n, seed=seed)
    print(f"wrote {n} synthetic clips to {out} in {time.perf_counter() - t0:.0f} s (seed {seed})")
    pred, gt = {}, {}
    t_fe = t_sp = 0.0
    frames = 0
    for p in paths:
        truth = json.loads((out / f"{p.stem}.json").read_text())
        clip = Clip.load(p)
        t = time.perf_counter()
        front = run_frontend(clip)
        t_fe += time.perf_counter() - t
        t = time.perf_counter()
        res = spot(front, config=config)
        t_sp += time.perf_counter() - t
        frames += clip.n_frames
        pred[p.stem] = [(iv.onset, iv.offset, iv.kind) for iv in res.intervals]
        gt[p.stem] = [(e["onset"], e["offset"], e["kind"]) for e in truth["events"]]
        hits = []
        for e in truth["events"]:
            same_kind = [iv for iv in res.intervals if iv.kind == e["kind"]]
            best = max((iou((iv.onset, iv.offset), (e["onset"], e["offset"])) for iv in same_kind), default=0.0)
            hits.append(f"{e['kind']} {'+'.join(a['code'] for a in e['aus'])}({e['aus'][0]['side'][0]}) "
                        f"{e['onset']}-{e['offset']} IoU {best:.2f}")
        extra = [f"{iv.kind} {iv.onset}-{iv.offset}" for iv in res.intervals
                 if all(iou((iv.onset, iv.offset), (e["onset"], e["offset"])) < 0.5 for e in truth["events"])]
        print(f"  {p.stem} {truth['fps']:g} fps {truth['n_frames']:4d} fr, {len(truth['blinks'])} blink(s): "
              f"{'; '.join(hits)}" + (f"  | unmatched: {', '.join(extra)}" if extra else ""))
    s = spotting_scores(pred, gt)
    print(f"\nMEGC spotting on {s.n_videos} synthetic clips (IoU >= 0.5, pooled; overall = micro + macro):")
    print(f"  overall  {_fmt(s.overall)}")
    print(f"  micro    {_fmt(s.micro)}")
    print(f"  macro    {_fmt(s.macro)}")
    print(f"  speed on these 640x480 clips ({frames} frames, 200 fps clips analysed at 50 fps): "
          f"front end {frames / t_fe:.0f} frames/s, spotter {frames / t_sp:.0f} frames/s, "
          f"both {frames / (t_fe + t_sp):.0f} frames/s")


def real(path: Path, repeats: int, plot: Path, config: SpotConfig) -> None:
    t_dec, t_fe, t_sp = [], [], []
    for _ in range(repeats):
        t = time.perf_counter()
        clip = Clip.load(path)
        t_dec.append(time.perf_counter() - t)
        t = time.perf_counter()
        front = run_frontend(clip)
        t_fe.append(time.perf_counter() - t)
        t = time.perf_counter()
        res = spot(front, config=config)
        t_sp.append(time.perf_counter() - t)
    n = clip.n_frames
    dec, fe, sp = (statistics.median(v) for v in (t_dec, t_fe, t_sp))
    print(f"\n{path.name}: {clip.size[0]}x{clip.size[1]}, {n} frames, {clip.fps:.2f} fps "
          f"(median of {repeats}, {os.cpu_count()} cores)")
    print(f"  spotter alone              {n / sp:6.1f} frames/s  ({sp:.2f} s)")
    print(f"  front end + spotter        {n / (fe + sp):6.1f} frames/s  ({fe + sp:.2f} s)")
    print(f"  decode + front end + spot  {n / (dec + fe + sp):6.1f} frames/s  ({dec + fe + sp:.2f} s)")
    print(f"  {len(res.intervals)} interval(s); blinks at frames {res.blinks}")
    for iv in res.intervals:
        print(f"    {iv.kind:5s} frames {iv.onset:3d}-{iv.offset:3d} apex {iv.apex:3d}  "
              f"({iv.onset / clip.fps:5.2f}-{iv.offset / clip.fps:5.2f} s, apex {iv.apex / clip.fps:5.2f} s)  "
              f"score {iv.score:5.2f}  regions: {', '.join(list(iv.rois)[:3])}")
    fig = res.plot()
    fig.savefig(plot, dpi=110, bbox_inches="tight")
    print(f"  motion plot: {plot}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--n", type=int, default=24, help="synthetic clips (default 24)")
    ap.add_argument("--seed", type=int, default=2025)
    ap.add_argument("--out", default=None, help="folder for the synthetic set (default: a temporary one)")
    ap.add_argument("--repeats", type=int, default=3, help="timing runs on the real video")
    ap.add_argument("--real", default=str(REAL))
    ap.add_argument("--plot", default="/tmp/spot_real.png")
    ap.add_argument("--skip-synth", action="store_true")
    a = ap.parse_args()
    config = SpotConfig()
    if not a.skip_synth:
        if a.out:
            synthetic(a.n, a.seed, Path(a.out), config)
        else:
            with tempfile.TemporaryDirectory() as tmp:
                synthetic(a.n, a.seed, Path(tmp), config)
    real(Path(a.real), a.repeats, Path(a.plot), config)


if __name__ == "__main__":
    main()
