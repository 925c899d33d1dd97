"""ME-LVQA training questions from long-video coding sheets, split by subject.

    python -m mevqa.train.lvqa_questions SHEET [SHEET ...] --out DIR [--test-subjects casme3/spNO.1 ...]

A long-video coding sheet lists every coded expression of every long video (CAS(ME)^3 part A, Li et al.
2022; SAMM long videos, Yap et al. 2020; CAS(ME)^2, Qu et al. 2018): subject, video, onset, apex, offset,
AUs. Each row is read with :func:`mevqa.io.sheets.load_sheet`; rows are grouped into long videos
(:func:`long_video_key`: CAS(ME)^3 subject + video letter, SAMM "006_1_2" -> "006_1", others subject +
file name); each video gets the six MEGC2026 question kinds with answers by the definitions of
:mod:`mevqa.answer.lvqa` (events in onset order, micro when onset-to-offset <= 0.5 s at the dataset's frame
rate, distinct AUs by MEGC name), and a type question for every event. Videos are split by subject
(:func:`mevqa.io.splits.holdout_split`), never the same subject on both sides; ``train.jsonl`` and
``test.jsonl`` are written in the MEGC training layout (``id``, ``dataset``, ``subject``, ``video``,
``question``, ``answer``).
"""
from __future__ import annotations

import argparse
import json
import re
import sys
from pathlib import Path
from typing import Iterable, Sequence

from mevqa.answer.lvqa import au_question, count_question, event_kind, type_question
from mevqa.io.sheets import DATASET_FPS, LabelledClip, SheetError, load_sheet
from mevqa.io.splits import SplitError, assert_subject_disjoint, holdout_split

__all__ = ["long_video_key", "lvqa_training_records", "split_records", "main"]


def long_video_key(clip: LabelledClip) -> str:
    """The long video a coded expression belongs to (unique within its dataset)."""
    if clip.dataset == "samm":
        m = re.fullmatch(r"(\d+_\d+)_\d+", clip.filename)  # 006_1_2: expression 2 of video 006_1
        return m.group(1) if m else clip.filename
    return f"{clip.subject}_{clip.filename}"


def lvqa_training_records(clips: Iterable[LabelledClip], *, fps: float | None = None) -> list[dict]:
    """The ME-LVQA questions and answers of every long video the coded clips belong to.

    Rows without onset and offset are skipped (their timing is unknown); ``fps`` overrides the clips' and
    the dataset's frame rate."""
    videos: dict[tuple[str, str, str], list[LabelledClip]] = {}
    for c in clips:
        if c.onset is not None and c.offset is not None:
            videos.setdefault((c.dataset, c.subject, long_video_key(c)), []).append(c)
    out = []
    for (dataset, subject, video), rows in videos.items():
        rate = fps or rows[0].fps or DATASET_FPS.get(dataset)
        if not rate:
            raise SheetError(f"{dataset} video {video}: no frame rate known; pass fps")
        rows = sorted(rows, key=lambda c: (c.onset, c.offset))
        kinds = [event_kind(c.onset, c.offset, rate) for c in rows]
        aus = {}
        for c in rows:
            for occ in c.aus:
                aus.setdefault(occ.au.number, occ.au.name)
        qa = [(count_question("all"), str(len(rows))), (count_question("micro"), str(kinds.count("micro"))),
              (count_question("macro"), str(kinds.count("macro"))),
              (au_question(), ", ".join(aus[n] for n in sorted(aus)))]
        qa += [(type_question(i + 1), f"{k}-expression") for i, k in enumerate(kinds)]
        for i, (q, a) in enumerate(qa, start=1):
            out.append({"id": f"{dataset}_{video}_{i}", "dataset": dataset, "subject": subject, "video": video,
                        "question": q, "answer": a})
    return out


def split_records(records: Sequence[dict], *, test_subjects: Sequence[str] | None = None, test_fraction: float = 0.2,
                  seed: int = 0) -> tuple[list[dict], list[dict]]:
    """(train, test) by subject: no subject on both sides."""
    split = holdout_split(records, test_subjects=test_subjects, test_fraction=test_fraction, seed=seed)
    train, test = [records[i] for i in split.train_idx], [records[i] for i in split.test_idx]
    assert_subject_disjoint(train, test)
    return train, test


def _write(path: Path, records: Sequence[dict]) -> Path:
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text("".join(json.dumps(r) + "\n" for r in records), encoding="utf-8")
    tmp.replace(path)
    return path


def main(argv: Sequence[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m mevqa.train.lvqa_questions", description=__doc__.split("\n\n")[0])
    ap.add_argument("sheets", nargs="+", help="long-video coding sheets (.xlsx or .csv)")
    ap.add_argument("--out", required=True, help="folder for train.jsonl and test.jsonl")
    ap.add_argument("--test-subjects", nargs="*", help="dataset/subject pairs for the test side")
    ap.add_argument("--test-fraction", type=float, default=0.2)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--fps", type=float, help="frame rate of the videos (default: the dataset's)")
    a = ap.parse_args(argv)
    try:
        clips = [c for s in a.sheets for c in load_sheet(s)]
        records = lvqa_training_records(clips, fps=a.fps)
        if not records:
            raise SheetError(f"no coded expression with onset and offset in {', '.join(a.sheets)}")
        train, test = split_records(records, test_subjects=a.test_subjects, test_fraction=a.test_fraction, seed=a.seed)
    except (SheetError, SplitError, OSError) as e:
        print(f"lvqa_questions: error: {str(e).splitlines()[0]}", file=sys.stderr)
        return 2
    out = Path(a.out)
    out.mkdir(parents=True, exist_ok=True)
    for name, recs in (("train.jsonl", train), ("test.jsonl", test)):
        videos = len({(r["dataset"], r["video"]) for r in recs})
        print(f"wrote {_write(out / name, recs)}: {len(recs)} questions about {videos} long videos", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
