"""ME-LVQA training questions from a long-video coding sheet (a hand-made SAMM-layout CSV), split by subject."""
from __future__ import annotations

import json

from mevqa.answer.lvqa import lvqa_question
from mevqa.io.sheets import load_sheet
from mevqa.train.lvqa_questions import lvqa_training_records, main

SHEET = """Subject,Filename,Inducement Code,Onset Frame,Apex Frame,Offset Frame,Duration,Type,Action Units,Estimated Emotion
006,006_1_2,1,1000,1200,1500,501,Macro,4+7,Anger
006,006_1_1,1,100,140,180,81,Micro - 1/2,R12,Happiness
006,006_2_1,2,50,60,70,21,Micro - 1/2,14,Contempt
007,007_3_1,3,500,600,800,301,Macro,1+2,Surprise
008,008_1_1,1,10,20,90,81,Micro - 1/2,15,Sadness
"""


def test_records_answer_by_the_lvqa_definitions(tmp_path):
    p = tmp_path / "samm_long.csv"
    p.write_text(SHEET)
    recs = lvqa_training_records(load_sheet(p, dataset="samm"))
    video = {r["question"]: r["answer"] for r in recs if r["video"] == "006_1"}
    # two events of 006_1 in onset order: 100-180 (80 frames at 200 fps = 0.4 s: micro), 1000-1500 (macro)
    assert video["How many expression events appear in this video?"] == "2"
    assert video["How many micro-expression events appear in this video?"] == "1"
    assert video["What distinct action units appear in this video?"] == "brow lowerer, lid tightener, lip corner puller"
    assert video["What is the expression type of the 1-th expression event in this video?"] == "micro-expression"
    assert video["What is the expression type of the 2-th expression event in this video?"] == "macro-expression"
    assert {r["video"] for r in recs} == {"006_1", "006_2", "007_3", "008_1"}
    assert all(lvqa_question(r["question"]) for r in recs)
    assert len({r["id"] for r in recs}) == len(recs)


def test_main_writes_a_subject_independent_split(tmp_path, capsys):
    p = tmp_path / "samm_long.csv"
    p.write_text(SHEET)
    assert main([str(p), "--out", str(tmp_path / "out"), "--test-subjects", "samm/7"]) == 0
    train = [json.loads(x) for x in (tmp_path / "out" / "train.jsonl").read_text().splitlines()]
    test = [json.loads(x) for x in (tmp_path / "out" / "test.jsonl").read_text().splitlines()]
    assert {r["subject"] for r in test} == {"7"} and {r["subject"] for r in train} == {"6", "8"}
    assert "about 3 long videos" in capsys.readouterr().err
    assert main([str(tmp_path / "nope.csv"), "--out", str(tmp_path / "o2")]) == 2
