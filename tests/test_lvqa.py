"""MEGC2026 long-video questions (ME-LVQA): question kinds, answers from events, the scores (by hand), and
`mevqa eval` on both official test files against generated long videos laid out as the release names them."""
from __future__ import annotations

import json
import os
import re
from pathlib import Path

import pytest

from mevqa.answer.lvqa import LvqaQuestion, answer_lvqa, events, lvqa_question
from mevqa.apps.cli import main as cli_main
from mevqa.evidence.builder import Evidence, IntervalEvidence
from mevqa.megc.lvqa_metrics import au_set_agreement, count_scores, lvqa_scores, parse_count, type_scores

DATA = Path(__file__).parent / "data" / "megc2026"
TEST_FILES = {"me_lvqa_casme3_test_to_answer.jsonl": 120, "me_lvqa_samm_test_to_answer.jsonl": 60}


@pytest.fixture(scope="module", autouse=True)
def evidence_cache(tmp_path_factory):
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("MEVQA_CACHE", str(tmp_path_factory.mktemp("evcache")))
        for k in ("RANK", "WORLD_SIZE", "LOCAL_RANK", "MASTER_ADDR"):
            mp.delenv(k, raising=False)
        yield


# ------------------------------------------------------------------ questions and answers
def test_every_official_question_has_a_kind():
    for name, n in TEST_FILES.items():
        lines = (DATA / name).read_text().splitlines()
        assert len(lines) == n
        kinds = [lvqa_question(json.loads(x)["question"]) for x in lines]
        assert all(kinds), name
        assert {k.kind for k in kinds} == {"count", "aus", "type"}
        assert {k.which for k in kinds if k.kind == "count"} == {"all", "micro", "macro"}
    assert lvqa_question("What is the expression type of the 33-th expression event in this video?") == \
        LvqaQuestion("type", n=33)
    # the short-clip ME-VQA questions are not long-video ones
    for q in ("What is the coarse expression class?", "What are the action units?",
              "Is the action unit lip corner puller shown on the face?"):
        assert lvqa_question(q) is None


def _iv(i, onset, offset, kind, codes, fps=30.0, assumed=False):
    names = {"AU12": "lip corner puller", "AU4": "brow lowerer", "AU1": "inner brow raiser", "AU6": "cheek raiser"}
    return IntervalEvidence(index=i, onset=onset, apex=(onset + offset) // 2, offset=offset, kind=kind, score=1.0,
                            fps=fps, aus=[{"code": c, "name": names[c], "side": "both"} for c in codes], emotions=[],
                            assumed=assumed)


def _evidence(intervals, fps=30.0):
    return Evidence(clip="x", clip_hash="h", fps=fps, n_frames=600, width=320, height=240, intervals=intervals,
                    hidden=[], curve={}, lost_frames=[], settings={})


def test_answers_from_events_in_time_order():
    # given out of order; onset-to-offset 15 frames at 30 fps = exactly 0.5 s -> micro; 16 -> macro even
    # though the spotter said "micro"; an assumed interval, one with no AU and one mostly inside a
    # stronger event are no events
    nested = _iv(4, 505, 515, "micro", ["AU4"])
    nested.score = 0.5
    ev = _evidence([_iv(0, 300, 316, "micro", ["AU4", "AU12"]), _iv(1, 100, 115, "macro", ["AU12"]),
                    _iv(2, 500, 540, "macro", ["AU6", "AU1"]), _iv(3, 10, 20, "micro", ["AU4"], assumed=True),
                    _iv(5, 200, 205, "micro", []), nested])
    assert [(e.onset, e.kind) for e in events(ev)] == [(100, "micro"), (300, "macro"), (500, "macro")]
    assert len(events(ev, require_au=False)) == 4
    ask = lambda q: answer_lvqa(ev, q)  # noqa: E731
    assert ask("How many expression events appear in this video?") == "3"
    assert ask("How many micro-expression events appear in this video?") == "1"
    assert ask("How many macro-expression events appear in this video?") == "2"
    assert ask("What distinct action units appear in this video?") == \
        "inner brow raiser, brow lowerer, cheek raiser, lip corner puller"  # AU number order
    assert ask("What is the expression type of the 1-th expression event in this video?") == "micro-expression"
    assert ask("What is the expression type of the 2-th expression event in this video?") == "macro-expression"
    # beyond the events spotted: the majority type of long-video annotations
    assert ask("What is the expression type of the 9-th expression event in this video?") == "macro-expression"
    empty = _evidence([])
    assert answer_lvqa(empty, "How many expression events appear in this video?") == "0"
    assert answer_lvqa(empty, "What distinct action units appear in this video?") == ""


# ------------------------------------------------------------------ scores, by hand
def test_count_scores_by_hand():
    s = count_scores(["3", "0", "5"], ["2", "0", "eight"])  # number words up to ten count
    assert parse_count("eight") == 8 and parse_count("none") is None and parse_count("3 events") == 3
    # errors 1, 0, 3 -> MAE 4/3, RMSE sqrt(10/3)
    assert s.mae == pytest.approx(4 / 3) and s.rmse == pytest.approx((10 / 3) ** 0.5)
    assert s.exact == pytest.approx(1 / 3) and s.unparsable == 0
    s = count_scores(["2"], ["many"])  # no integer: scored as 0, counted unparsable
    assert (s.mae, s.unparsable) == (2.0, 1)


def test_au_set_agreement_by_hand():
    truth = ["brow lowerer, lid tightener", "lip corner puller", ""]
    pred = ["AU4", "lip corner puller, dimpler", "none"]
    a = au_set_agreement(truth, pred)
    # video 1: TP1 FN1 -> F1 2/3, Jaccard 1/2; video 2: TP1 FP1 -> F1 2/3, J 1/2; video 3: both empty -> 1, 1
    assert a.micro.tp == 2 and a.micro.fp == 1 and a.micro.fn == 1
    assert a.mean_f1 == pytest.approx((2 / 3 + 2 / 3 + 1) / 3)
    assert a.jaccard == pytest.approx((0.5 + 0.5 + 1) / 3)


def test_type_scores_by_hand():
    t = ["micro-expression", "macro-expression", "macro-expression", "macro-expression"]
    p = ["micro", "micro-expression", "Macro-expression", ""]
    s = type_scores(t, p)
    # micro: TP1 FP1 FN0 -> F1 2/3, R 1; macro: TP1 FP0 FN2 -> F1 2/4, R 1/3
    assert s.uf1 == pytest.approx((2 / 3 + 1 / 2) / 2) and s.uar == pytest.approx((1 + 1 / 3) / 2)
    assert s.accuracy == pytest.approx(2 / 4)


def test_lvqa_scores_split_by_kind():
    qs = ["How many expression events appear in this video?", "How many micro-expression events appear in this video?",
          "What distinct action units appear in this video?",
          "What is the expression type of the 1-th expression event in this video?",
          "What is the coarse expression class?"]
    s = lvqa_scores(qs, ["4", "1", "dimpler", "micro-expression", "negative"],
                    ["3", "1", "AU14", "micro-expression", "x"])
    assert s.counts.n == 2 and s.counts.mae == pytest.approx(0.5)
    assert s.counts_by_kind["all"].mae == 1.0 and s.counts_by_kind["micro"].mae == 0.0
    assert s.aus.jaccard == 1.0 and s.types.uf1 == 1.0 and s.other == 1


# ------------------------------------------------------------------ end to end
@pytest.fixture(scope="module")
def long_videos(tmp_path_factory):
    """Two generated long videos (3 events each, about 8 s, 320x240 at 30 fps) and their events."""
    from mevqa.testing.long_videos import make_long_video

    d = tmp_path_factory.mktemp("long")
    return {name: (d / f"{name}.mp4", make_long_video(d / f"{name}.mp4", seed, n_events=3))
            for name, seed in (("L1", 1), ("L2", 2))}


def _check_answers(q: Path, pred: Path):
    q_lines, p_lines = q.read_text().splitlines(), pred.read_text().splitlines()
    assert len(p_lines) == len(q_lines)
    per_video: dict[str, dict] = {}
    for ql, pl in zip(q_lines, p_lines):
        ans = json.loads(pl)["answer"]
        assert pl.replace(f'"answer": {json.dumps(ans)}', '"answer": ""') == ql  # same bytes but the answer
        kind = lvqa_question(json.loads(ql)["question"])
        if kind.kind == "count":
            assert re.fullmatch(r"\d+", ans), ans
            per_video.setdefault(json.loads(ql)["video"], {})[kind.which] = int(ans)
        elif kind.kind == "type":
            assert ans in ("micro-expression", "macro-expression")
        else:
            from mevqa.facs.codes import find_au

            assert all(find_au(n) is not None for n in ans.split(", ") if ans)
    for v, c in per_video.items():
        assert c["micro"] + c["macro"] == c["all"], v


def test_both_official_files_end_to_end(tmp_path, long_videos, capsys):
    """Every video of both files as `{video}.mp4` (CAS(ME)^3 dzw_a1, ...; SAMM 1_001_2, ...), a few
    under a dataset folder: hard links of the two generated long videos (evidence once per content)."""
    root = tmp_path / "clips"
    srcs = [p for p, _ in long_videos.values()]
    k = 0
    for name in TEST_FILES:
        dataset = name.split("_")[2]
        for v in dict.fromkeys(json.loads(x)["video"] for x in (DATA / name).read_text().splitlines()):
            dest = root / (f"{dataset}/{v}.mp4" if k % 5 == 0 else f"{v}.mp4")
            dest.parent.mkdir(parents=True, exist_ok=True)
            os.link(srcs[k % len(srcs)], dest)
            k += 1
    for name, n in TEST_FILES.items():
        q = DATA / name
        out = tmp_path / name.replace("_to_answer", "_pred")
        assert cli_main(["eval", str(q), "--clips", str(root), "--out", str(out)]) == 0
        assert f"{n} answers ({n} new" in capsys.readouterr().err
        _check_answers(q, out)
    assert {p.name for p in tmp_path.glob("*_pred.jsonl")} == {"me_lvqa_casme3_test_pred.jsonl",
                                                               "me_lvqa_samm_test_pred.jsonl"}


def test_scored_against_known_events(tmp_path, long_videos, capsys):
    from mevqa.testing.long_videos import lvqa_ground_truth, write_lvqa_files

    clips = tmp_path / "clips"
    clips.mkdir()
    for name, (p, _) in long_videos.items():
        os.link(p, clips / f"{name}.mp4")
    q, gt = tmp_path / "q.jsonl", tmp_path / "gt.jsonl"
    write_lvqa_files({n: ev for n, (_, ev) in long_videos.items()}, 30.0, q, gt)
    assert lvqa_ground_truth(long_videos["L1"][1], 30.0)["How many expression events appear in this video?"] == "3"
    out = tmp_path / "pred.jsonl"
    assert cli_main(["eval", str(q), "--clips", str(clips), "--out", str(out), "--gt", str(gt),
                     "--report", str(tmp_path / "rep")]) == 0
    md = capsys.readouterr().out
    assert "# ME-LVQA evaluation" in md and "count MAE" in md and "not public" in md
    rep = json.loads((tmp_path / "rep" / "report.json").read_text())
    assert rep["task"] == "me-lvqa" and rep["n_gt"] == len(q.read_text().splitlines())
    # the report's count MAE is the mean absolute error of the answers written
    truth = {json.loads(x)["video_id"]: json.loads(x)["answer"] for x in gt.read_text().splitlines()}
    errs = [abs(int(json.loads(x)["answer"]) - int(truth[json.loads(x)["video_id"]]))
            for x in out.read_text().splitlines() if json.loads(x)["question"].startswith("How many")]
    assert rep["overall"]["counts"]["mae"] == pytest.approx(sum(errs) / len(errs))
    # --score alone gives the same report
    assert cli_main(["eval", "--score", str(out), "--gt", str(gt)]) == 0
    assert capsys.readouterr().out == md


def test_long_videos_are_read_in_chunks_with_the_same_events(long_videos, monkeypatch):
    """A video longer than a chunk is spotted piecewise (memory bounded by the chunk): with 5-second
    chunks overlapping by 4.5 s (the spotter's 2 s references on both sides of a sub-second synthetic
    event) the events are those of one piece."""
    from mevqa.answer.lvqa import events_from
    from mevqa.megc import strs as S

    path, truth = long_videos["L1"]
    whole = events_from(*reversed(S.spot_long_video(path)))
    monkeypatch.setattr(S, "STRS_CHUNK_SECONDS", 5.0)
    monkeypatch.setattr(S, "STRS_OVERLAP_SECONDS", 4.5)
    chunked = events_from(*reversed(S.spot_long_video(path)))
    assert [(e.kind, e.aus) for e in chunked] == [(e.kind, e.aus) for e in whole]
    assert all(abs(a.onset - b.onset) <= 3 and abs(a.offset - b.offset) <= 3 for a, b in zip(chunked, whole))
