"""mevqa eval under bad input (issue 18, item 6): non-string ids, clip fields that reach outside --clips,
failed questions retried once their clips are back, prediction lines without an answer, invalid UTF-8.

Each test failed before the fix it names."""
from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from mevqa.apps.cli import main as cli_main
from mevqa.megc import run as E


@pytest.fixture(scope="module", autouse=True)
def evidence_cache(tmp_path_factory):
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("MEVQA_CACHE", str(tmp_path_factory.mktemp("evcache")))
        for k in ("RANK", "WORLD_SIZE", "LOCAL_RANK", "MASTER_ADDR"):
            mp.delenv(k, raising=False)
        yield


@pytest.fixture(scope="module")
def clip(tmp_path_factory) -> Path:
    """One 1.5-second synthetic clip (320x240, 30 fps, one expression) as mp4."""
    from mevqa.testing.synth import SynthConfig, make_clip

    c, _ = make_clip(SynthConfig(width=320, height=240, fps=30.0, seconds=1.5, n_events=1, seed=3))
    return c.save(tmp_path_factory.mktemp("clip") / "c.mp4")


def _line(vid, video, q="What is the coarse expression class?"):
    return json.dumps({"video_id": vid, "video": video, "question": q, "answer": ""}, separators=(",", ":"))


def _questions(path: Path, lines) -> Path:
    path.write_text("".join(x + "\n" for x in lines), encoding="utf-8")
    return path


def _eval(capsys, *argv) -> tuple[int, str]:
    rc = cli_main(["eval", *map(str, argv)])
    return rc, capsys.readouterr().err


def test_numeric_video_id_is_refused_with_one_line(tmp_path, clip, capsys):
    clips = tmp_path / "clips"
    clips.mkdir()
    shutil.copy(clip, clips / "CAS-1.mp4")
    q = _questions(tmp_path / "q.jsonl", [_line("casme3_test_CAS-1_1", "CAS-1"),
                                          json.dumps({"video_id": 123, "video": "CAS-1", "question": "What is the "
                                                      "fine-grained expression class?", "answer": ""})])
    out = tmp_path / "pred.jsonl"
    for _ in range(2):  # first run and rerun: the same one line, never a traceback
        rc, err = _eval(capsys, q, "--clips", clips, "--out", out)
        assert rc == 2 and len(err.strip().splitlines()) == 1, err
        assert f"{q}:2" in err and "'video_id' must be a string" in err
    assert not out.exists()


@pytest.mark.parametrize("field,value", [("video", "../outside"), ("video", "/etc/passwd"),
                                         ("filename", "../../outside"), ("subject", "..")])
def test_clip_fields_cannot_reach_outside_clips(tmp_path, clip, capsys, field, value):
    clips = tmp_path / "clips"
    clips.mkdir()
    shutil.copy(clip, tmp_path / "outside.mp4")  # a real clip, one level above --clips
    rec = {"id": "x_1", "dataset": "casme2", "image_id": "sub01_EP01", "subject": "sub01", "filename": "EP01",
           "question": "What is the coarse expression class?", "answer": ""}
    if field == "video":
        rec = {"video_id": "casme3_test_x_1", "video": value, "question": rec["question"], "answer": ""}
    else:
        rec[field] = value
    q = _questions(tmp_path / "q.jsonl", [json.dumps(rec)])
    rc, err = _eval(capsys, q, "--clips", clips, "--out", tmp_path / "pred.jsonl")
    assert rc == 2 and len(err.strip().splitlines()) == 1, err
    assert f"{q}:1" in err and "not a clip or folder name" in err


def test_a_layout_leading_outside_clips_is_never_used(tmp_path, clip):
    clips = tmp_path / "clips"
    clips.mkdir()
    shutil.copy(clip, tmp_path / "CAS-1.mp4")
    from mevqa.io.megc import MegcRecord

    rec = MegcRecord(question="q", video_id="casme3_test_CAS-1_1", video="CAS-1")
    path, why = E.ClipResolver(clips, ("../{video}",)).resolve(rec)
    assert path is None and "no layout fits" in why


def test_failed_questions_are_retried_once_their_clips_are_back(tmp_path, clip, capsys):
    clips = tmp_path / "clips"
    clips.mkdir()
    shutil.copy(clip, clips / "CAS-1.mp4")
    lines = [_line(f"casme3_test_CAS-{i}_{j}", f"CAS-{i}", q) for i in (1, 2)
             for j, q in ((1, "What is the coarse expression class?"),
                          (2, "What is the fine-grained expression class?"))]
    q = _questions(tmp_path / "q.jsonl", lines)
    out = tmp_path / "pred.jsonl"
    rc, err = _eval(capsys, q, "--clips", clips, "--out", out)
    assert rc == 1 and "2 failed" in err  # finished, but clips failed: exit status 1
    assert [json.loads(x)["answer"] != "" for x in out.read_text().splitlines()] == [True, True, False, False]
    shutil.copy(clip, clips / "CAS-2.mp4")  # the missing clip is restored
    rc, err = _eval(capsys, q, "--clips", clips, "--out", out)
    assert rc == 0 and "2 new, 2 resumed" in err and "failed: see" not in err, err
    answers = [json.loads(x)["answer"] for x in out.read_text().splitlines()]
    assert len(answers) == 4 and all(answers)
    assert not E.failed_path(out).exists()
    # a rerun while a clip is still missing retries it, fails it again and finishes (no error)
    (clips / "CAS-2.mp4").unlink()
    out2 = tmp_path / "pred2.jsonl"
    assert _eval(capsys, q, "--clips", clips, "--out", out2)[0] == 1
    rc, err = _eval(capsys, q, "--clips", clips, "--out", out2)
    assert rc == 1 and "2 failed" in err and len(out2.read_text().splitlines()) == 4


def test_a_prediction_line_without_an_answer_is_asked_again(tmp_path, clip):
    clips = tmp_path / "clips"
    clips.mkdir()
    shutil.copy(clip, clips / "CAS-1.mp4")
    fine = "What is the fine-grained expression class?"
    q = _questions(tmp_path / "q.jsonl", [_line("casme3_test_CAS-1_1", "CAS-1"),
                                          _line("casme3_test_CAS-1_2", "CAS-1", fine)])
    out = tmp_path / "pred.jsonl"
    out.write_text('{"video_id": "casme3_test_CAS-1_1"}\n{"video_id": "casme3_test_CAS-1_2", "answer": null}\n')
    res = E.run_eval(E.RunConfig(q, clips, out, progress=False))
    assert (res.n_resumed, res.n_answered) == (0, 2)
    assert all(json.loads(x)["answer"] for x in out.read_text().splitlines())
    assert len(out.read_text().splitlines()) == 2


def test_invalid_utf8_names_the_file_and_line(tmp_path, capsys):
    q = tmp_path / "q.jsonl"
    q.write_bytes((_line("a_1", "A") + "\n").encode() + b'{"video_id":"a_2","video":"A","question":"caf\xe9?"}\n')
    (tmp_path / "clips").mkdir()
    rc, err = _eval(capsys, q, "--clips", tmp_path / "clips", "--out", tmp_path / "pred.jsonl")
    assert rc == 2 and len(err.strip().splitlines()) == 1, err
    assert f"{q}:2" in err and "not valid UTF-8" in err


def test_scoring_reads_number_answers_and_names_bad_ones(tmp_path):
    from mevqa.megc.lvqa_report import score_lvqa
    from mevqa.megc.records import EvalError

    q = "How many expression events appear in this video?"
    gt = _questions(tmp_path / "gt.jsonl", [json.dumps({"video_id": "v_1", "video": "v", "question": q, "answer": "3"})])
    pred = _questions(tmp_path / "p.jsonl", ['{"video_id": "v_1", "answer": 2}'])
    assert score_lvqa(pred, gt).overall.counts.mae == 1.0
    pred.write_text('{"video_id": "v_1", "answer": ["3"]}\n')
    with pytest.raises(EvalError, match="not a string"):
        score_lvqa(pred, gt)
