"""Synthetic long videos with known expression events, and their ME-LVQA ground truth (tests, bench).

A long video is one :func:`mevqa.testing.synth.make_clip` clip with several events placed one after the
other (random kinds, durations, AUs and gaps from a seed). Its ground truth answers the five MEGC2026
ME-LVQA question kinds by the definitions of :mod:`mevqa.answer.lvqa`: events in onset order, micro when
the onset-to-offset time is at most 0.5 s, the distinct AUs by MEGC name.
"""
from __future__ import annotations

import json
import random
from pathlib import Path

from mevqa.answer.lvqa import au_question, count_question, event_kind, type_question
from mevqa.facs.codes import find_au
from mevqa.testing.synth import SynthConfig, SynthEvent, make_clip

__all__ = ["AU_COMBOS", "random_events", "make_long_video", "lvqa_ground_truth", "write_lvqa_files"]

# AU combinations the synthetic face renders, with the emotion the FACS rules give them
AU_COMBOS = ((("AU12",), "happiness"), (("AU6", "AU12"), "happiness"), (("AU4", "AU7"), "anger"),
             (("AU1", "AU2"), "surprise"), (("AU14",), "contempt"), (("AU15",), "sadness"),
             (("AU9",), "disgust"), (("AU1", "AU4"), "sadness"))


def random_events(seed: int, *, fps: float = 30.0, n_events: int = 4, lead_s: float = 0.7,
                  gap_s: tuple[float, float] = (1.0, 1.8)) -> tuple[list[SynthEvent], int]:
    """(events, frames needed): ``n_events`` events one after another, about half micro (0.2-0.43 s
    onset to offset) and half macro (0.8-1.6 s), separated by ``gap_s`` seconds of neutral face."""
    rng = random.Random(seed)
    t, events = round(lead_s * fps), []
    for _ in range(n_events):
        micro = rng.random() < 0.5
        span = round(rng.uniform(0.2, 0.43) * fps) if micro else round(rng.uniform(0.8, 1.6) * fps)
        apex = t + max(1, round(span * rng.uniform(0.3, 0.5)))
        aus, emotion = AU_COMBOS[rng.randrange(len(AU_COMBOS))]
        amp = rng.uniform(4.0, 5.5) if micro else rng.uniform(6.0, 8.0)
        events.append(SynthEvent(t, apex, t + span, "micro" if micro else "macro", aus, "both", amp, emotion))
        t += span + 1 + round(rng.uniform(*gap_s) * fps)
    return events, t + round(lead_s * fps)


def make_long_video(path: Path, seed: int, *, n_events: int = 4, fps: float = 30.0, size: tuple[int, int] = (320, 240)
                    ) -> list[SynthEvent]:
    """Write a long synthetic video to ``path`` (mp4); returns its events."""
    events, n_frames = random_events(seed, fps=fps, n_events=n_events)
    clip, _ = make_clip(SynthConfig(width=size[0], height=size[1], fps=fps, seconds=n_frames / fps, blinks=False,
                                    seed=seed), events=events)
    path.parent.mkdir(parents=True, exist_ok=True)
    clip.save(path)
    return events


def lvqa_ground_truth(events, fps: float) -> dict[str, str]:
    """``{question: answer}`` of a video with these events (all five kinds, every event's type)."""
    kinds = [event_kind(e.onset, e.offset, fps) for e in sorted(events, key=lambda e: e.onset)]
    codes = sorted({a for e in events for a in e.aus}, key=lambda c: int(c[2:]))
    gt = {count_question("all"): str(len(kinds)), count_question("micro"): str(kinds.count("micro")),
          count_question("macro"): str(kinds.count("macro")), au_question(): ", ".join(find_au(c).name for c in codes)}
    gt.update({type_question(i + 1): f"{k}-expression" for i, k in enumerate(kinds)})
    return gt


def write_lvqa_files(videos: dict[str, list], fps: float, questions: Path, truth: Path, *, dataset: str = "synth"
                     ) -> None:
    """A question file and its ground truth (MEGC2026 test layout) for ``{video: events}``."""
    q_lines, t_lines = [], []
    for video, events in videos.items():
        for i, (q, a) in enumerate(lvqa_ground_truth(events, fps).items(), start=1):
            rec = {"video_id": f"{dataset}_test_{video}_{i}", "video": video, "question": q, "answer": ""}
            q_lines.append(json.dumps(rec))
            t_lines.append(json.dumps({**rec, "answer": a}))
    questions.write_text("".join(x + "\n" for x in q_lines), encoding="utf-8")
    truth.write_text("".join(x + "\n" for x in t_lines), encoding="utf-8")
