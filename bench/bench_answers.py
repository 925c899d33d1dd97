"""Do the answers follow the evidence? Agreement rate and latency of the evidence-only backend.

    python bench/bench_answers.py [--synthetic 4] [--repeats 5] [--clip PATH]

A fixed question set (every MEGC question type, the three ME-VQA-v2 analysis paraphrases, a presence
and a side question for every AU of the evidence, and 20 natural questions with times, ranges,
ordinals, AU references and follow-ups asked as one chat) goes to the real video
(tests/data/pexels_woman_emotions.mp4) and ``--synthetic`` synthetic clips (3 s, 30 fps, two
expressions each). Each answer is checked against the clip's Evidence (:mod:`mevqa.answer.check`):
the cited interval exists and is cited with its own times, AU answers name only AUs of that interval
(a below-threshold guess only with a note saying so), a prior class or an unmeasured side only with
a note; and each clip's MEGC answers must agree (coarse = FINE_TO_COARSE[fine]; presence "yes"
exactly for the AUs of the AU answer; the analysis sentence names the same AUs and classes). Open
answers are checked for the intervals they name (every "#k" exists).

Prints, per clip, the number of questions, the checks failed and the median latency per question
once evidence exists (``--repeats`` runs, evidence computed once beforehand), then the agreement
rate over all answers. Targets (issue 14): 100 % agreement, under 50 ms a question.
"""
from __future__ import annotations

import argparse
import os
import re
import statistics
import tempfile
import time
from pathlib import Path

os.environ.setdefault("GLOG_minloglevel", "2")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

from mevqa.answer.agent import Agent  # noqa: E402
from mevqa.answer.check import check_agreement, check_answer  # noqa: E402
from mevqa.answer.questions import (  # noqa: E402
    ANALYSIS_QUESTION, ANALYSIS_QUESTION_PLURAL, ANALYSIS_QUESTIONS_V2, AU_LIST_QUESTION,
    AU_LIST_QUESTION_PLURAL, COARSE_QUESTION, FINE_QUESTION, presence_question, side_question,
)
from mevqa.evidence.builder import compute_evidence  # noqa: E402
from mevqa.facs.codes import ACTION_UNITS  # noqa: E402
from mevqa.io.video import Clip  # noqa: E402

REAL = Path(__file__).resolve().parents[1] / "tests" / "data" / "pexels_woman_emotions.mp4"
NATURAL = [  # asked in this order as one chat, so the follow-ups have a history
    "hello",
    "What is going on in this clip?",
    "What happened at 1.2 s?",
    "What happens between 10 and 12 seconds?",
    "What happens from 10 s to 12 s?",
    "and 0.5-1.5 s?",
    "What happens in the first event?",
    "the 3rd event?",
    "What about the last one?",
    "Describe the second macro-expression.",
    "What is the fine-grained expression class of interval 2?",
    "Why do you think so?",
    "Is she sad or happy?",
    "When does she start laughing?",
    "Is she crying?",
    "Where is the smile?",
    "When does she raise her eyebrows?",
    "Is she hiding something?",
    "How many expressions are there?",
    "Why?",
]


def megc_set(ev) -> list[str]:
    codes = sorted({a["code"] for iv in ev.intervals for a in iv.aus + iv.weak_aus} | {"AU12", "AU4"})
    return ([COARSE_QUESTION, FINE_QUESTION, AU_LIST_QUESTION, AU_LIST_QUESTION_PLURAL, ANALYSIS_QUESTION,
             ANALYSIS_QUESTION_PLURAL, *ANALYSIS_QUESTIONS_V2]
            + [presence_question(c) for c in codes] + [side_question(c) for c in codes if ACTION_UNITS[c].lateral])


def open_problems(ev, ans) -> list[str]:
    named = {int(k) for k in re.findall(r"#(\d+)", ans.text)}
    return [f"names #{k}, the clip has {len(ev.intervals)}" for k in sorted(named) if not 1 <= k <= len(ev.intervals)]


def failed_answers(problems: list[str]) -> int:
    """Answers with at least one failed check (an agreement failure counts once per pair)."""
    return len({p.split("': ")[0] for p in problems if not p.startswith("agreement:")}) + \
        sum(p.startswith("agreement:") for p in problems)


def run_clip(name: str, ev, repeats: int) -> tuple[int, list[str], float]:
    agent = Agent()
    megc = {q: agent.ask(ev, q) for q in megc_set(ev)}
    problems = [f"{q!r}: {p}" for q, a in megc.items() for p in check_answer(ev, a)]
    problems += [f"agreement: {p}" for p in check_agreement({q: a.text for q, a in megc.items()})]
    history, answers = [], list(megc.values())
    for q in NATURAL:
        a = agent.ask(ev, q, history=history)
        answers.append(a)
        problems += [f"{q!r}: {p}" for p in check_answer(ev, a) + open_problems(ev, a)]
        history += [{"role": "user", "content": q}, {"role": "assistant", "content": a.display()}]
    questions = list(megc) + NATURAL
    times = []
    for _ in range(repeats):
        hist = []
        for q in questions:
            t0 = time.perf_counter()
            agent.ask(ev, q, history=hist)
            times.append(time.perf_counter() - t0)
            hist = hist[-6:] + [{"role": "user", "content": q}]
    ms = 1000 * statistics.median(times)
    print(f"{name:34s} {len(ev.intervals):3d} intervals {len(answers):4d} answers {failed_answers(problems):3d} failed "
          f"{ms:7.2f} ms median, {1000 * statistics.mean(times):.2f} ms mean, {1000 * max(times):.1f} ms max")
    for p in problems[:10]:
        print(f"    {p}")
    return len(answers), problems, ms


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--synthetic", type=int, default=4, help="synthetic clips (default 4)")
    ap.add_argument("--repeats", type=int, default=5, help="latency runs over the whole question set")
    ap.add_argument("--clip", default=str(REAL), help="the real clip (default: the test video)")
    a = ap.parse_args()
    from mevqa.testing.synth import SynthConfig, make_clip

    clips = [(Path(a.clip).name, Clip.load(a.clip))]
    for seed in range(a.synthetic):
        clip, _ = make_clip(SynthConfig(width=480, height=360, seconds=3.0, n_events=2, seed=seed))
        clips.append((f"synthetic seed {seed}", clip))
    with tempfile.TemporaryDirectory() as cache:
        os.environ["MEVQA_CACHE"] = cache
        total, failed, lat = 0, 0, []
        for name, clip in clips:
            t0 = time.perf_counter()
            ev = compute_evidence(clip)
            print(f"(evidence of {name}: {time.perf_counter() - t0:.1f} s)")
            n, problems, ms = run_clip(name, ev, a.repeats)
            total, failed, lat = total + n, failed + failed_answers(problems), lat + [ms]
    print(f"\nagreement: {total - failed}/{total} answers pass every check ({100 * (total - failed) / total:.1f} %); "
          f"latency per question once evidence exists: median over clips {statistics.median(lat):.2f} ms, "
          f"worst clip {max(lat):.2f} ms")


if __name__ == "__main__":
    main()
