"""ME-LVQA on a synthetic long-video set with known events: the scores of `mevqa eval` and their cost.

    python bench/bench_lvqa.py [--videos 6] [--events 4] [--size 320x240] [--seed 0]

Makes ``--videos`` long synthetic videos (``--events`` expression events each, random kinds, AUs and
gaps; 30 fps; :mod:`mevqa.testing.long_videos`), writes their MEGC2026 ME-LVQA questions and ground truth
(counts, distinct AUs, every event's type), answers them with ``run_eval`` (evidence computed afresh) and
scores with :func:`mevqa.megc.lvqa_report.score_lvqa` (this package's metrics: the official ones are not
public). Also prints what two answer-free baselines score: "0 events / no AU / macro" and the ground
truth's own means (count rounded, most frequent type), so the figures have a scale.

The videos are made by this project's own generator, which also made the spotter's test clips: these
figures say the pipeline works end to end on clean synthetic faces, not how it does on CAS(ME)^3 or SAMM.
"""
from __future__ import annotations

import argparse
import json
import os
import resource
import tempfile
import time
from collections import Counter
from pathlib import Path

os.environ.setdefault("GLOG_minloglevel", "2")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

from mevqa.answer.lvqa import lvqa_question  # noqa: E402
from mevqa.megc.lvqa_report import score_lvqa  # noqa: E402
from mevqa.megc.run import RunConfig, run_eval  # noqa: E402
from mevqa.testing.long_videos import make_long_video, write_lvqa_files  # noqa: E402


def _baseline(gt: Path, out: Path, answer) -> Path:
    lines = [json.loads(x) for x in gt.read_text().splitlines()]
    out.write_text("".join(json.dumps({**r, "answer": answer(r)}) + "\n" for r in lines))
    return out


def _row(name: str, rep) -> str:
    s = rep.overall
    by = s.counts_by_kind
    return (f"| {name} | {s.counts.mae:.3f} | {s.counts.rmse:.3f} | {by['micro'].mae:.3f} | {by['macro'].mae:.3f} | "
            f"{s.aus.micro.f1:.3f} | {s.aus.jaccard:.3f} | {s.types.uf1:.3f} | {s.types.uar:.3f} |")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--videos", type=int, default=6)
    ap.add_argument("--events", type=int, default=4)
    ap.add_argument("--size", default="320x240")
    ap.add_argument("--seed", type=int, default=0)
    a = ap.parse_args()
    size = tuple(int(x) for x in a.size.split("x"))
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        os.environ["MEVQA_CACHE"] = str(work / "cache")
        t0 = time.perf_counter()
        videos = {f"V{i + 1}": make_long_video(work / "clips" / f"V{i + 1}.mp4", a.seed + i, n_events=a.events,
                                               size=size) for i in range(a.videos)}
        t_make = time.perf_counter() - t0
        q, gt = work / "q.jsonl", work / "gt.jsonl"
        write_lvqa_files(videos, 30.0, q, gt)
        pred = work / "pred.jsonl"
        t0 = time.perf_counter()
        res = run_eval(RunConfig(q, work / "clips", pred, progress=False))
        t_eval = time.perf_counter() - t0
        rep = score_lvqa(pred, gt)
        recs = [json.loads(x) for x in gt.read_text().splitlines()]
        counts = Counter()
        for r in recs:
            k = lvqa_question(r["question"])
            if k.kind == "count":
                counts[k.which] += int(r["answer"])
        types = Counter(r["answer"] for r in recs if lvqa_question(r["question"]).kind == "type")
        n_v = len(videos)

        def mean_answer(r):
            k = lvqa_question(r["question"])
            if k.kind == "count":
                return str(round(counts[k.which] / n_v))
            return types.most_common(1)[0][0] if k.kind == "type" else "lip corner puller"

        nothing = {"count": "0", "aus": "", "type": "macro-expression"}
        zero = score_lvqa(_baseline(gt, work / "zero.jsonl", lambda r: nothing[lvqa_question(r["question"]).kind]), gt)
        prior = score_lvqa(_baseline(gt, work / "prior.jsonl", mean_answer), gt)
    n_events = sum(len(v) for v in videos.values())
    n_micro = sum(e.offset - e.onset <= 15 for v in videos.values() for e in v)
    frames = sum(v[-1].offset for v in videos.values())
    print(f"{n_v} synthetic long videos ({size[0]}x{size[1]}, 30 fps, about {frames / n_v / 30:.1f} s each), "
          f"{n_events} events ({n_micro} micro by onset-to-offset <= 0.5 s), {res.n_questions} questions; "
          f"made in {t_make:.1f} s, answered in {t_eval:.1f} s ({res.questions_per_second:.2f} questions/s), "
          f"peak RSS {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.0f} MB; "
          f"load average {os.getloadavg()[0]:.1f}")
    print()
    print("| answers | count MAE | count RMSE | micro MAE | macro MAE | AU F1 (micro) | AU Jaccard | type UF1 "
          "| type UAR |")
    print("|---|---|---|---|---|---|---|---|---|")
    print(_row("mevqa eval (spotted events)", rep))
    print(_row("baseline: 0 events, no AU, macro", zero))
    print(_row("baseline: truth's mean counts, lip corner puller, majority type", prior))


if __name__ == "__main__":
    main()
