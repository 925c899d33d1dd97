"""Peak memory and speed on long videos: the real test video played back and forth to 20 s, 80 s, 5 and 10 min.

    python bench/bench_long.py                       # streamed evidence and front end, all lengths
    python bench/bench_long.py --mode clip --lengths 20 80   # the in-memory path (Clip.load + compute_evidence)
    python bench/bench_long.py --mode frontend       # only decode + track + align (the front end)
    python bench/bench_long.py --mode live --lengths 80   # `mevqa watch --realtime`: report delays
    python bench/bench_long.py --mode agree --lengths 20 40 80  # live events against the long-video cut's
    python bench/bench_long.py --mode transforms --lengths 40   # both cuts on transformed copies
    python bench/bench_long.py --mode bound --lengths 80   # the earliest a live report could have come

``--mode live`` plays the file at its own pace through :func:`mevqa.apps.watch.watch` (the live cut)
and prints the delay from each expression's offset to its report (median, p95, over the run's events),
how far past the offset the reader was when it was reported, and the CPU seconds per second of video.

``--mode agree`` runs the live cut as fast as it can (not timed: the same windows every run) and the
long-video cut on the same file, and prints how far the live events agree with the long-video ones
(interval F1 at IoU >= 0.5, :func:`mevqa.megc.spotting_metrics.match_intervals`; events = intervals
with an AU found present, as both report them) and how far past each offset the reader was when it
was reported: what the live cut's early reports cost in placement. Both are also read as a person
labels the source (bench_realvideo.py): events in its laughing half positive with AU12, in its crying
half negative.

``--mode bound`` asks how early any live report could come, whatever it reported: it runs the live cut
(untimed) and the long-video cut, and for each long-video event finds the first live window in which a
spotted span that has ended (offset before the window's last frame) matches it (IoU >= 0.5, >= 0.3, or
any overlap), and how far past the event's offset that window's last frame is: the read past offset of
the earliest report that window could make (the window's measuring, 0.2-0.4 s, comes on top).

``--mode transforms`` writes transformed copies of the long video (mirror, half size, 12 fps, JPEG
quality 10, brighter, gamma 1.8: bench_realvideo.py's, none of which may change a reading; written
losslessly, so a copy differs from the decoded original by its transform alone) and runs the
long-video cut and the live cut (untimed) on the original and on each copy: interval F1 at IoU >= 0.5
and the AU sets' Jaccard of the matched events, lateral AUs swapped under the mirror, and how often the
matched events' coarse reading is the same (bench_realvideo.agreement; events in seconds).

Each run is a fresh process (peak RSS = its ru_maxrss). The long videos are written to --tmp (not the
repo) with cv2.VideoWriter: tests/data/pexels_woman_emotions.mp4 (640x360, 23.976 fps, 19.7 s) forward
then backward, so joins are not cuts. Frames/s = source frames / wall seconds, and / process CPU seconds
(the machine may be shared: CPU time is the steadier figure). The load average is printed with each row.
"""
from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import subprocess
import sys
import time
from pathlib import Path

import cv2
import numpy as np

VIDEO = Path(__file__).resolve().parents[1] / "tests" / "data" / "pexels_woman_emotions.mp4"


def make_video(seconds: float, tmp: Path) -> Path:
    out = tmp / f"long_{int(seconds)}s.mp4"
    if out.exists():
        return out
    cap = cv2.VideoCapture(str(VIDEO))
    frames = []
    while True:
        ok, f = cap.read()
        if not ok:
            break
        frames.append(f)
    fps = cap.get(cv2.CAP_PROP_FPS)
    h, w = frames[0].shape[:2]
    n = int(round(seconds * fps))
    part = out.with_suffix(".part.mp4")
    vw = cv2.VideoWriter(str(part), cv2.VideoWriter_fourcc(*"mp4v"), fps, (w, h))
    for i in range(n):
        k = i % (2 * len(frames))
        vw.write(frames[k if k < len(frames) else 2 * len(frames) - 1 - k])
    vw.release()
    part.rename(out)
    return out


TRANSFORMS = ("mirror", "half", "fps12", "jpeg10", "bright", "gamma")


def transformed(path: Path, name: str) -> Path:
    """A copy of ``path`` with one of :data:`TRANSFORMS` applied to every frame (12 fps: every second frame),
    written losslessly (FFV1 in Matroska): the copy differs from the decoded original by the transform alone."""
    from bench_realvideo import frame_transforms

    out = path.with_name(f"{path.stem}_{name}.mkv")
    if out.exists():
        return out
    cap = cv2.VideoCapture(str(path))
    fps, w, h = cap.get(cv2.CAP_PROP_FPS), int(cap.get(cv2.CAP_PROP_FRAME_WIDTH)), int(cap.get(cv2.CAP_PROP_FRAME_HEIGHT))
    fn = frame_transforms(w, h).get(name, lambda f: f)  # fps12: every second frame, unchanged
    size = (w // 2, h // 2) if name == "half" else (w, h)
    part = out.with_suffix(".part.mkv")
    vw = cv2.VideoWriter(str(part), cv2.VideoWriter_fourcc(*"FFV1"), fps / 2 if name == "fps12" else fps, size)
    k = 0
    while True:
        ok, bgr = cap.read()
        if not ok:
            break
        k += 1
        if name != "fps12" or k % 2:  # the transforms take RGB frames (JPEG encodes colour)
            vw.write(np.ascontiguousarray(fn(bgr[..., ::-1])[..., ::-1]))
    vw.release()
    part.rename(out)
    return out


def _seconds(intervals) -> list[dict]:
    """Streamed events as bench_realvideo.agreement compares them (seconds, AU -> side, coarse reading)."""
    return [{"on": iv.onset / iv.fps, "off": (iv.offset + 1) / iv.fps, "aus": {a["code"]: a.get("side") for a in iv.aus},
             "coarse": (iv.top_emotion or {}).get("coarse")} for iv in intervals if iv.aus]


def _as_labelled(events) -> str:
    """How the events read against what a person sees in the source (bench_realvideo's halves): apex in
    the laughing half read positive with AU12, in the crying half negative. The long videos play the
    source forward then backward, so a frame's time in the source folds back."""
    from bench_realvideo import CRY_UNTIL, LAUGH_FROM

    from mevqa.io.stream import probe

    n = probe(VIDEO).n_frames
    laugh = cry = good_laugh = good_cry = 0
    for iv in events:
        k = iv.apex % (2 * n)
        t = (k if k < n else 2 * n - 1 - k) / iv.fps
        coarse, aus = (iv.top_emotion or {}).get("coarse"), {a["code"] for a in iv.aus}
        if t >= LAUGH_FROM:
            laugh, good_laugh = laugh + 1, good_laugh + (coarse == "positive" and "AU12" in aus)
        elif t < CRY_UNTIL:
            cry, good_cry = cry + 1, good_cry + (coarse == "negative")
    return f"{good_laugh}/{laugh} laughing, {good_cry}/{cry} crying"


def run_one(mode: str, path: str) -> dict:
    """In this (fresh) process: analyse ``path`` one way; time, CPU and peak RSS."""
    t, c = time.perf_counter(), time.process_time()
    if mode == "clip":
        from mevqa.evidence.builder import compute_evidence
        from mevqa.io.video import Clip

        clip = Clip.load(path)
        n, events = clip.n_frames, len(compute_evidence(clip, cache=False).intervals)
    elif mode == "frontend":
        from mevqa.io.stream import iter_frames, probe
        from mevqa.motion.stream import stream_frontend

        fps = probe(path).fps
        n = sum(1 for _ in stream_frontend(iter_frames(path, max_seconds=None), fps))
        events = None
    elif mode == "live":
        import io

        from mevqa.apps.watch import watch

        d = watch(path, realtime=True, as_json=True, out=io.StringIO(), max_seconds=None)
        wall, cpu = time.perf_counter() - t, time.process_time() - c
        return {"video_s": d["seconds"], "wall_s": round(wall, 1),
                "cpu_s": round(cpu, 1), "cpu_per_video_s": round(cpu / max(d["seconds"], 1e-9), 2), "events": d["events"],
                **{k: d.get(k) for k in ("delay_median_s", "delay_p95_s", "read_past_offset_median_s",
                                         "read_past_offset_p95_s", "startup_s")},
                "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)}
    elif mode == "agree":
        from mevqa.apps.watch import median_p95
        from mevqa.evidence.stream import LIVE_HOP_SECONDS, LIVE_WINDOW_SECONDS, spot_stream
        from mevqa.megc.spotting_metrics import match_intervals

        past = []
        live = spot_stream(path, window_seconds=LIVE_WINDOW_SECONDS, hop_seconds=LIVE_HOP_SECONDS, max_seconds=None,
                           on_event=lambda iv, newest: past.append((newest - iv.offset) / iv.fps))
        whole = [iv for iv in spot_stream(path, max_seconds=None).intervals if iv.aus]
        m = match_intervals(live.intervals, whole).counts
        median, p95 = median_p95(past)
        return {"person_live": _as_labelled(live.intervals), "person_long": _as_labelled(whole),
                "live_events": len(live.intervals), "long_events": len(whole), "matched": m.tp,
                "f1": round(m.f1, 3), "windows": live.windows, "read_past_median_s": median, "read_past_p95_s": p95}
    elif mode == "bound":
        from mevqa.apps.watch import median_p95
        from mevqa.evidence.stream import LIVE_HOP_SECONDS, LIVE_WINDOW_SECONDS, spot_stream
        from mevqa.megc.spotting_metrics import iou

        seen: list = []  # (last frame, spans) of every live window, in order
        live = spot_stream(path, window_seconds=LIVE_WINDOW_SECONDS, hop_seconds=LIVE_HOP_SECONDS, max_seconds=None,
                           on_window=lambda spans, last: seen.append((last, spans)))
        whole = [iv for iv in spot_stream(path, max_seconds=None).intervals if iv.aus]
        out = {"events": len(whole), "windows": len(seen)}
        for name, least in (("iou 0.5", 0.5), ("iou 0.3", 0.3), ("any overlap", 0.0)):
            past = []
            for ev in whole:
                for last, spans in seen:
                    if any(off < last and 0 < iou((on, off), ev) >= least for on, off in spans):
                        past.append((last - ev.offset) / live.fps)
                        break
            median, p95 = median_p95(past, 2)
            out[name] = {"found": len(past), "median_s": median, "p95_s": p95, "within_1s": sum(x < 1.0 for x in past)}
        return out
    elif mode == "events":  # both cuts' events in seconds (for --mode transforms)
        from mevqa.evidence.stream import LIVE_HOP_SECONDS, LIVE_WINDOW_SECONDS, spot_stream

        live = spot_stream(path, window_seconds=LIVE_WINDOW_SECONDS, hop_seconds=LIVE_HOP_SECONDS, max_seconds=None)
        return {"long": _seconds(spot_stream(path, max_seconds=None).intervals), "live": _seconds(live.intervals)}
    else:
        from mevqa.evidence.stream import spot_stream

        res = spot_stream(path, max_seconds=None)
        n, events = res.n_frames, len(res.intervals)
    wall, cpu = time.perf_counter() - t, time.process_time() - c
    return {"frames": n, "wall_s": round(wall, 1), "cpu_s": round(cpu, 1), "fps_wall": round(n / wall, 1),
            "fps_cpu": round(n / cpu, 1), "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024),
            "intervals": events}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--mode", choices=("stream", "clip", "frontend", "live", "agree", "bound", "transforms", "events"),
                    default="stream")
    ap.add_argument("--lengths", type=float, nargs="+", default=[20, 80, 300, 600], help="seconds")
    ap.add_argument("--tmp", default="/tmp/mevqa_bench_long")
    ap.add_argument("--one", default=None, help=argparse.SUPPRESS)
    a = ap.parse_args(argv)
    if a.one:
        print(json.dumps(run_one(a.mode, a.one)))
        return 0
    tmp = Path(a.tmp)
    tmp.mkdir(parents=True, exist_ok=True)
    print(f"mode {a.mode}; {os.cpu_count()} CPUs; times on a shared machine are noisy, CPU time less so")
    if a.mode == "live":
        print("length  events  delay median s  delay p95 s  read past offset median/p95 s  cpu s per video s  "
              "start-up s  load")
    elif a.mode == "transforms":
        return _transforms(a.lengths, tmp)
    elif a.mode == "agree":
        print("length  live events  long-video events  matched  interval F1  read past offset median/p95 s  windows  "
              "as a person labels it: live | long-video")
    elif a.mode == "bound":
        print("length  long-video events  a live window's ended span ...  found  read past offset median / p95 s  "
              "within 1 s")
    else:
        print("length   frames  wall s  cpu s  frames/s wall  frames/s cpu  peak RSS MB  intervals  load")
    for secs in a.lengths:
        path = VIDEO if secs <= 20 else make_video(secs, tmp)
        r = subprocess.run([sys.executable, __file__, "--mode", a.mode, "--one", str(path)], capture_output=True, text=True)
        if r.returncode:
            print(f"{secs:6.0f} s  failed: {(r.stderr.strip().splitlines() or ['?'])[-1]}")
            continue
        d = json.loads(r.stdout.strip().splitlines()[-1])
        if a.mode == "agree":
            print(f"{secs:6.0f} s  {d['live_events']:11d}  {d['long_events']:17d}  {d['matched']:7d}  {d['f1']:11.3f}  "
                  f"{d['read_past_median_s']!s:>14} / {d['read_past_p95_s']!s:<13}  {d['windows']:7d}  "
                  f"{d['person_live']} | {d['person_long']}", flush=True)
            continue
        if a.mode == "bound":
            for name in ("iou 0.5", "iou 0.3", "any overlap"):
                b = d[name]
                print(f"{secs:6.0f} s  {d['events']:17d}  matching it at {name:<13s}  {b['found']:5d}  "
                      f"{b['median_s']!s:>14} / {b['p95_s']!s:<15}  {b['within_1s']:10d}", flush=True)
            continue
        if a.mode == "live":
            print(f"{secs:6.0f} s  {d['events']:6d}  {d['delay_median_s']!s:>14}  {d['delay_p95_s']!s:>11}  "
                  f"{d['read_past_offset_median_s']!s:>14} / {d['read_past_offset_p95_s']!s:<13}  "
                  f"{d['cpu_per_video_s']:17.2f}  {d['startup_s']!s:>10}  {os.getloadavg()[0]:.1f}", flush=True)
            continue
        print(f"{secs:6.0f} s  {d['frames']:6d}  {d['wall_s']:6.1f}  {d['cpu_s']:5.1f}  {d['fps_wall']:13.1f}  "
              f"{d['fps_cpu']:12.1f}  {d['peak_rss_mb']:11d}  {str(d['intervals']):>9s}  {os.getloadavg()[0]:.1f}",
              flush=True)
    return 0


def _events(path: Path) -> dict:
    r = subprocess.run([sys.executable, __file__, "--mode", "events", "--one", str(path)], capture_output=True, text=True)
    if r.returncode:
        raise SystemExit(f"{path}: {(r.stderr.strip().splitlines() or ['?'])[-1]}")
    return json.loads(r.stdout.strip().splitlines()[-1])


def _transforms(lengths, tmp: Path) -> int:
    from bench_realvideo import agreement, match

    print("length  transform  cut    events (orig/copy)  interval F1  AU Jaccard  coarse same  lateral swapped")
    for secs in lengths:
        path = VIDEO if secs <= 20 else make_video(secs, tmp)
        if secs <= 20:  # the copies go to --tmp, not next to the test video
            path = Path(shutil.copy(VIDEO, tmp / "long_20s.mp4"))
        ref = _events(path)
        means = {"long": [], "live": []}
        for name in TRANSFORMS:
            got = _events(transformed(path, name))
            for cut in ("long", "live"):
                ag = agreement(ref[cut], got[cut], mirrored=name == "mirror")
                pairs = match(ref[cut], got[cut])
                same = sum(x["coarse"] == y["coarse"] for x, y in pairs)
                means[cut].append((ag["f1"], ag["au_jaccard"] or 0.0))
                print(f"{secs:6.0f} s  {name:9s}  {cut:5s}  {ag['n_ref']:8d} / {ag['n_var']:<8d}  {ag['f1']:11.3f}  "
                      f"{ag['au_jaccard']!s:>10}  {same:5d}/{len(pairs):<5d}  {ag.get('lateral_swapped', '')}", flush=True)
        for cut, rows in means.items():
            print(f"{secs:6.0f} s  mean       {cut:5s}  {'':19s}  {np.mean([f for f, _ in rows]):11.3f}  "
                  f"{np.mean([j for _, j in rows]):10.3f}", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
