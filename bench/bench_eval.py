"""Batch evaluation speed: questions per second of `mevqa eval` with the evidence-only backend.

    python bench/bench_eval.py [--clips 6] [--repeats 3] [--size 640x480] [--seconds 2]

Makes ``--clips`` synthetic clips (``--seconds`` long, 30 fps, one expression each) laid out like the
CAS(ME)^3 test release (CAS-1.mp4, ...), takes the official test questions of as many clips (5 per
clip: coarse, fine, AU list, one presence, analysis) and times ``run_eval`` end to end: decoding,
face tracking, spotting, AU detection (the evidence, computed afresh every run: disk and memory
caches are emptied), answering and writing. One warm-up run (model initialisation), then the median
of ``--repeats`` runs. Also prints process CPU seconds per question, which does not depend on what
else the machine is doing, and the load average, which says how busy it was.
Target (issue 7): >= 5 questions/s on 2 CPU cores.
"""
from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import tempfile
import time
from pathlib import Path

os.environ.setdefault("GLOG_minloglevel", "2")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

ROOT = Path(__file__).resolve().parents[1]
QUESTIONS = ROOT / "tests" / "data" / "megc2025" / "me_vqa_casme3_test_to_answer.jsonl"


def make_set(out: Path, n: int, size: tuple[int, int], seconds: float) -> tuple[Path, Path]:
    from mevqa.testing.synth import SynthConfig, make_clip

    clips = out / "clips"
    clips.mkdir(parents=True)
    for i in range(n):
        clip, _ = make_clip(SynthConfig(width=size[0], height=size[1], fps=30.0, seconds=seconds, n_events=1, seed=i))
        clip.save(clips / f"CAS-{i + 1}.mp4")
    wanted = {f"CAS-{i + 1}" for i in range(n)}
    lines = [x for x in QUESTIONS.read_text().splitlines() if json.loads(x)["video"] in wanted]
    q = out / "questions.jsonl"
    q.write_text("\n".join(lines) + "\n")
    return q, clips


def one_run(q: Path, clips: Path, work: Path, k: int) -> tuple[float, float, int]:
    """(wall seconds, CPU seconds, questions) of one run with empty evidence caches."""
    import mevqa.evidence.builder as ev_mod
    from mevqa.megc.run import RunConfig, run_eval

    os.environ["MEVQA_CACHE"] = str(work / f"cache{k}")
    getattr(ev_mod, "_memory", {}).clear()  # the in-process cache too: evidence extraction is part of the figure
    out = work / f"pred{k}.jsonl"
    r0, t0 = resource.getrusage(resource.RUSAGE_SELF), time.perf_counter()
    res = run_eval(RunConfig(q, clips, out, progress=False))
    wall = time.perf_counter() - t0
    r1 = resource.getrusage(resource.RUSAGE_SELF)
    cpu = (r1.ru_utime - r0.ru_utime) + (r1.ru_stime - r0.ru_stime)
    assert res.n_answered == res.n_questions, "every question should be answered"
    return wall, cpu, res.n_answered


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--clips", type=int, default=6)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--size", default="640x480")
    ap.add_argument("--seconds", type=float, default=2.0)
    a = ap.parse_args()
    size = tuple(int(v) for v in a.size.lower().split("x"))
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        q, clips = make_set(work, a.clips, size, a.seconds)
        one_run(q, clips, work, 0)  # warm-up: FaceMesh graph and imports
        runs = [one_run(q, clips, work, k) for k in range(1, a.repeats + 1)]
    n = runs[0][2]
    qps = [n / w for w, _, _ in runs]
    print(f"mevqa eval, evidence-only backend: {a.clips} clips of {a.seconds:g} s at 30 fps, {size[0]}x{size[1]}, "
          f"{n} questions (official CAS(ME)^3 test templates); cores available: {os.cpu_count()}; "
          f"load average {os.getloadavg()[0]:.1f}")
    for k, (w, c, _) in enumerate(runs, start=1):
        print(f"  run {k}: {w:6.2f} s wall  {n / w:6.2f} questions/s  {c / n:.3f} CPU s/question")
    print(f"median: {statistics.median(qps):.2f} questions/s ({statistics.median(c for _, c, _ in runs) / n:.3f} CPU s/question, "
          f"{statistics.median(w for w, _, _ in runs) / a.clips:.2f} s per clip incl. evidence); target >= 5")


if __name__ == "__main__":
    main()
