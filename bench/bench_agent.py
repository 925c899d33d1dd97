"""Per-question latency of the answering agent on CPU.

    python bench/bench_agent.py [--repeats 20] [--clip PATH]

Evidence is computed once (as the app and ``mevqa eval`` do), then every MEGC question type is asked
``--repeats`` times of the evidence-only backend, and a few times of the tiny random Qwen2.5-VL and
Qwen3-VL (built locally) through the full prompt: keyframes + flow map + evidence text. Prints medians.
Target (issue 5): evidence-only under 50 ms a question once evidence exists.
"""
from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time
from pathlib import Path

os.environ.setdefault("GLOG_minloglevel", "2")
os.environ.setdefault("HF_HUB_OFFLINE", "1")

from mevqa.answer.agent import Agent, VLMBackend  # noqa: E402
from mevqa.evidence.builder import compute_evidence  # noqa: E402
from mevqa.io.video import Clip  # noqa: E402

REAL = Path(__file__).resolve().parents[1] / "tests" / "data" / "pexels_woman_emotions.mp4"
QUESTIONS = [
    "What is the coarse expression class?",
    "What is the fine-grained expression class?",
    "What are the action units?",
    "Is the action unit lip corner puller shown on the face?",
    "Is the action unit lip corner puller located on the left or right face?",
    "What are the action units present, and based on them, what is the fine-grained expression and the coarse "
    "expression class?",
    "Is she hiding something?",
    "What happened at 11 s?",
]


def _median_ms(fn, repeats: int) -> float:
    times = []
    for _ in range(repeats):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return statistics.median(times) * 1e3


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--repeats", type=int, default=20)
    ap.add_argument("--clip", default=str(REAL))
    a = ap.parse_args()
    clip = Clip.load(a.clip)
    t = time.perf_counter()
    ev = compute_evidence(clip, cache=False)
    print(f"{Path(a.clip).name}: evidence computed once in {time.perf_counter() - t:.2f} s "
          f"({len(ev.intervals)} intervals)")

    agent = Agent()
    print(f"\nevidence-only backend, median of {a.repeats} per question:")
    for q in QUESTIONS:
        ms = _median_ms(lambda: agent.ask(ev, q), a.repeats)
        print(f"  {ms:7.2f} ms  {q[:70]}")

    from mevqa.vlm.model import QwenVL
    from mevqa.testing.tiny_model import build_tiny_model

    with tempfile.TemporaryDirectory() as tmp:
        for family in ("qwen2_5_vl", "qwen3_vl"):
            vlm = QwenVL.from_pretrained(str(build_tiny_model(Path(tmp) / family, family=family)))
            tiny = Agent(VLMBackend(vlm))
            enc = vlm.encode(tiny.backend._messages(ev, QUESTIONS[0], None)[0])
            print(f"\ntiny {family} (random weights, {vlm.n_visual_tokens(enc)} visual tokens, "
                  f"{int(enc['input_ids'].shape[1])} prompt tokens), median of 5 per question:")
            for q in QUESTIONS[:3]:
                ms = _median_ms(lambda: tiny.ask(ev, q), 5)
                print(f"  {ms:7.1f} ms  {q[:70]}")


if __name__ == "__main__":
    main()
