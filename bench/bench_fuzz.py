"""Bad input, fuzzed: every case runs the real command line in a child process and prints a table.

    python bench/bench_fuzz.py            # all cases (a few minutes: some decode large frames)
    python bench/bench_fuzz.py --fast     # only the cases that take seconds

Columns: case, exit code, the first line the user sees (stderr, else stdout), peak RSS of the child
(GNU time's report of the child) and seconds. What a good row looks like: a non-zero exit with
one clear line for input that cannot be used, exit 0 for input that can, no traceback anywhere, and
peak RSS under 2 GB. Each defect it covers also has a test of its own in tests/.
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import cv2
import numpy as np

ROOT = Path(__file__).resolve().parents[1]
REAL = ROOT / "tests" / "data" / "pexels_woman_emotions.mp4"


def run_measured(argv: list[str], *, timeout: float = 600) -> dict:
    """Run ``python -m mevqa ARGV``: exit code, first line, traceback seen, peak RSS (MB, from
    /usr/bin/time's report of the child), seconds."""
    with tempfile.NamedTemporaryFile(suffix=".txt") as rep:
        env = dict(os.environ, MEVQA_CACHE=tempfile.mkdtemp(prefix="mevqa-fuzz-cache-"))
        t0 = time.perf_counter()
        proc = subprocess.run(["/usr/bin/time", "-f", "%M", "-o", rep.name, sys.executable, "-m", "mevqa", *argv],
                              capture_output=True, text=True, env=env, timeout=timeout)
        seconds = time.perf_counter() - t0
        try:
            rss = int(Path(rep.name).read_text().strip().splitlines()[-1]) / 1024
        except (ValueError, IndexError):
            rss = float("nan")
    text = proc.stderr.strip() or proc.stdout.strip()
    return {"code": proc.returncode, "first": text.splitlines()[0] if text else "",
            "lines": len(proc.stderr.strip().splitlines()), "traceback": "Traceback (most recent call last)" in proc.stderr,
            "seconds": seconds, "rss_mb": rss}


def _video(path: Path, frames: list[np.ndarray], fps: float = 30.0) -> Path:
    h, w = frames[0].shape[:2]
    wr = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"mp4v"), fps, (w, h))
    for f in frames:
        wr.write(f)
    wr.release()
    return path


def fast_cases(tmp: Path) -> list[tuple[str, list[str]]]:
    """Cases that take seconds: bad files, bad options, bad questions, bad eval records."""
    junk = tmp / "junk.mp4"
    junk.write_bytes(os.urandom(50_000))
    cut = tmp / "cut.mp4"
    data = REAL.read_bytes()
    cut.write_bytes(data[: int(len(data) * 0.3)])
    one = _video(tmp / "one.mp4", [np.full((240, 320, 3), 128, np.uint8)])
    empty = tmp / "empty"
    empty.mkdir()
    q = tmp / "numeric_id.jsonl"
    q.write_text(json.dumps({"video_id": 123, "video": "x", "question": "What is the coarse expression class?",
                             "answer": ""}) + "\n")
    esc = tmp / "escape.jsonl"
    esc.write_text(json.dumps({"video_id": "a", "video": "../../etc/passwd",
                               "question": "What is the coarse expression class?", "answer": ""}) + "\n")
    bad_utf8 = tmp / "bad_utf8.jsonl"
    bad_utf8.write_bytes(b'{"video_id": "a", "video": "x", "question": "caf\xe9?", "answer": ""}\n')
    clips = tmp / "clips"
    clips.mkdir()
    return [
        ("random bytes as .mp4", ["spot", str(junk)]),
        ("mp4 cut to 30%", ["spot", str(cut)]),
        ("1-frame clip", ["spot", str(one)]),
        ("missing file", ["spot", str(tmp / "nope.mp4")]),
        ("empty folder", ["spot", str(empty)]),
        ("--fps 0", ["spot", str(REAL), "--fps", "0"]),
        ("--fps nan", ["spot", str(REAL), "--fps", "nan"]),
        ("20,000-digit question", ["ask", "demo", "1" * 20_000]),
        ("--samples 0", ["ask", "demo", "What is it?", "--samples", "0"]),
        ("synth --size 640", ["synth", str(tmp / "s"), "--size", "640"]),
        ("eval: numeric video_id", ["eval", str(q), "--clips", str(clips), "--out", str(tmp / "p1.jsonl")]),
        ("eval: ../ in video", ["eval", str(esc), "--clips", str(clips), "--out", str(tmp / "p2.jsonl")]),
        ("eval: invalid UTF-8", ["eval", str(bad_utf8), "--clips", str(clips), "--out", str(tmp / "p3.jsonl")]),
        ("spot --plot into a missing folder", ["spot", "demo", "--plot", str(tmp / "no" / "dir" / "x.png")]),
    ]


def slow_cases(tmp: Path) -> list[tuple[str, list[str]]]:
    """Cases that decode large frames or whole clips."""
    big = _video(tmp / "big_4000x3000.mp4", [np.random.default_rng(i).integers(0, 255, (3000, 4000, 3), np.uint8)
                                             for i in range(30)])
    pngs = tmp / "huge_pngs"
    pngs.mkdir()
    for i in range(3):
        cv2.imwrite(str(pngs / f"img{i + 1}.png"), np.zeros((9000, 9000, 3), np.uint8))
    return [
        ("real video (accepted)", ["spot", str(REAL)]),
        ("30 frames of 4000x3000", ["spot", str(big)]),
        ("3 PNGs of 9000x9000", ["spot", str(pngs), "--fps", "30"]),
    ]


def cache_key_case() -> str:
    """Two clips that differ in one frame must never share a cache entry."""
    from mevqa.evidence.cache import clip_key
    from mevqa.io.video import Clip

    frames = np.random.default_rng(0).integers(0, 255, (40, 64, 64, 3), np.uint8)
    other = frames.copy()
    other[37, 5, 5, 0] ^= 1
    a = clip_key(Clip(frames, 30.0, "a"))
    b = clip_key(Clip(other, 30.0, "a"))
    return "different keys" if a != b else "SAME KEY"


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--fast", action="store_true", help="only the cases that take seconds")
    a = ap.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="mevqa-fuzz-") as d:
        tmp = Path(d)
        cases = fast_cases(tmp) + ([] if a.fast else slow_cases(tmp))
        print(f"{'case':36s} {'exit':>4s} {'peak MB':>8s} {'s':>6s}  first line")
        worst = 0.0
        tracebacks = 0
        for name, argv_ in cases:
            r = run_measured(argv_)
            worst = max(worst, r["rss_mb"]) if r["rss_mb"] == r["rss_mb"] else worst
            tracebacks += r["traceback"]
            print(f"{name:36s} {r['code']:>4d} {r['rss_mb']:8.0f} {r['seconds']:6.1f}  {r['first'][:110]}")
    print(f"{'two clips differing in one frame':36s} {'':>4s} {'':>8s} {'':>6s}  {cache_key_case()}")
    print(f"\ncases: {len(cases)}; tracebacks: {tracebacks}; largest peak RSS {worst:.0f} MB (target < 2048)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
