"""MEGC JSONL files, coding-sheet importers, QA generation, summaries and subject splits."""
import json
import random
from pathlib import Path

import numpy as np
import openpyxl
import pytest

from mevqa.io.megc import (
    MegcFormatError, MegcRecord, clip_key, group_by_clip, read_megc_jsonl, write_megc_jsonl,
)
from mevqa.train.qa import (
    QAError, clip_from_records, format_summary, generate_qa, summarise_files, summary,
)
from mevqa.io.sheets import LabelledClip, SheetError, load_sheet, map_emotion, read_casme2
from mevqa.io.splits import (
    SplitError, SubjectLeakageError, assert_subject_disjoint, holdout_split, loso_folds,
    normalise_dataset, normalise_subject,
)
from mevqa.facs.codes import MEGC_AU_NAMES, AUOccurrence, parse_au_string
from mevqa.answer.questions import question_type

DATA = Path(__file__).parent / "data" / "megc2025"
TRAIN_FILES = ("me_vqa_casme2_train.jsonl", "me_vqa_samm_casme2_smic_train.jsonl")
TEST_FILES = ("me_vqa_samm_test_to_answer.jsonl", "me_vqa_casme3_test_to_answer.jsonl")


@pytest.fixture(scope="module")
def train_records():
    return [r for name in TRAIN_FILES for r in read_megc_jsonl(DATA / name)]


# ------------------------------------------------------------------ MEGC JSONL
@pytest.mark.parametrize("name", TRAIN_FILES + TEST_FILES)
def test_round_trip_is_byte_identical(name, tmp_path):
    src = DATA / name
    records = read_megc_jsonl(src)
    out = write_megc_jsonl(records, tmp_path / name)
    # the release's training files lack a final newline; everything else is identical
    assert out.read_text() == src.read_text().rstrip("\n") + "\n"


def test_record_fields_and_layouts():
    train = read_megc_jsonl(DATA / "me_vqa_casme2_train.jsonl")
    assert len(train) == 911
    r = train[0]
    assert (r.id, r.dataset, r.image_id, r.subject, r.filename) == (
        "casme2_sub01_EP02_01f_1", "casme2", "sub01_EP02_01f", "sub01", "EP02_01f")
    assert r.question == "What is the coarse expression class?" and r.answer == "positive"
    assert not r.is_test and not r.compact
    test = read_megc_jsonl(DATA / "me_vqa_samm_test_to_answer.jsonl")
    t = test[0]
    assert t.is_test and t.compact and t.video == "SAMM-1" and t.answer == ""
    assert list(t.to_dict()) == ["video_id", "video", "question", "answer"]
    filled = t.with_answer("negative")
    assert filled.answer == "negative" and t.answer == "" and filled.video_id == t.video_id


def test_unknown_keys_kept_in_order(tmp_path):
    p = tmp_path / "x.jsonl"
    p.write_text('{"video_id": "v_1", "note": 3, "video": "v", "question": "q?", "answer": "a", "z": [1]}\n')
    (rec,) = read_megc_jsonl(p)
    assert rec.extra == {"note": 3, "z": [1]}
    assert list(rec.to_dict()) == ["video_id", "note", "video", "question", "answer", "z"]
    out = write_megc_jsonl([rec.with_answer("b")], tmp_path / "y.jsonl")
    assert json.loads(out.read_text()) == {"video_id": "v_1", "note": 3, "video": "v",
                                           "question": "q?", "answer": "b", "z": [1]}


def test_new_records_get_the_official_key_order(tmp_path):
    rec = MegcRecord(question="What is the coarse expression class?", answer="positive",
                     id="x_1", dataset="casme2", image_id="sub01_EP", subject="sub01", filename="EP")
    assert list(rec.to_dict()) == ["id", "dataset", "image_id", "subject", "filename", "question", "answer"]
    write_megc_jsonl([rec.to_dict()], tmp_path / "d.jsonl")  # dicts are accepted too
    assert read_megc_jsonl(tmp_path / "d.jsonl")[0] == MegcRecord.from_dict(rec.to_dict())


@pytest.mark.parametrize("lines, lineno", [
    ('{"question": "q", "answer": "a"}\n{"question": \n', 2),
    ('\n\n[1, 2]\n', 3),
    ('{"answer": "a"}\n', 1),
    ('{"question": "q", "answer": 5}\n', 1),
])
def test_bad_lines_name_the_line(tmp_path, lines, lineno):
    p = tmp_path / "bad.jsonl"
    p.write_text(lines)
    with pytest.raises(MegcFormatError) as err:
        read_megc_jsonl(p)
    assert f"bad.jsonl:{lineno}:" in str(err.value)
    assert "\n" not in str(err.value)


def test_clip_keys_and_groups(train_records):
    groups = group_by_clip(train_records)
    assert len(groups) == 145 + 133 + 164
    assert list(groups)[0] == "sub01_EP02_01f"
    assert all(len({r.dataset for r in rs}) == 1 for rs in groups.values())  # keys never collide
    test = read_megc_jsonl(DATA / "me_vqa_casme3_test_to_answer.jsonl")
    tg = group_by_clip(test)
    assert len(tg) == 17 and all(len(v) == 5 for v in tg.values())
    assert clip_key({"video_id": "samm_test_SAMM-1_3"}) == "samm_test_SAMM-1"
    with pytest.raises(MegcFormatError):
        clip_key({"question": "q"})


# ------------------------------------------------------------------ coding sheets
def _xlsx(path, sheets):
    wb = openpyxl.Workbook()
    wb.remove(wb.active)
    for title, rows in sheets:
        ws = wb.create_sheet(title)
        for row in rows:
            ws.append(row)
    wb.save(path)
    return path


CASME2_ROWS = [
    ["Subject", "Filename", None, "OnsetFrame", "ApexFrame", "OffsetFrame", None, "Action Units",
     "Estimated Emotion"],
    [1, "EP02_01f", None, 46, 59, 86, None, "12", "happiness"],
    [1, "EP19_05f", None, 396, 415, 446, None, "4+7+L10", "disgust"],
    [2, "EP03_02", None, 130, "/", 160, None, "R12", "others"],
    [3, "EP01_2", None, 10, 20, 40, None, "4+X", "repression"],
    [None, None, None, None, None, None, None, None, None],
]

SAMM_ROWS = [
    ["SAMM Micro-Facial Movement Dataset"], ["Version 2"], [None],
    ["Notes: FACS coded by certified coders"], ["Intensity A-E"], [None], [None], [None],
    [None], [None], [None], [None], [None],
    ["Subject", "Filename", "Inducement Code", "Onset Frame", "Apex Frame", "Offset Frame",
     "Duration", "Type", "Action Units", "Estimated Emotion", "Objective Classes", "Notes"],
    ["006", "006_1_2", 1, 5562, 5588, 5632, 71, "Micro - 1/2", "4+7", "Anger", 1, None],
    [6, "006_1_3", 1, 3912, 3948, 3988, 77, "Micro - 1/2", "R14A", "Contempt", 3, None],
    ["007", "007_3_1", 3, 100, 120, 150, 51, "Micro - 1/2", "A1+A2", "Other", 7, None],
]

CASME3_README = [["CAS(ME)^3 part A"], ["see the label sheet"]]
CASME3_ROWS = [
    ["Subject", "Filename", "Onset", "Apex", "Offset", "AU", "Objective class", "emotion"],
    ["spNO.1", "a", 138, 147, 161, "L4+L7", 4, "disgust"],
    ["spNO.1", "b", 20, 30, 45, "12", 1, "happy"],
    ["spNO.2", "a", 5, 9, 14, "1+2", 5, "others"],
]

SMIC_ROWS = [
    ["Subject", "Filename", "Onset", "Offset", "Emotion"],
    ["s1", "s1_ne_01", 10, 40, "negative"],
    ["s1", "s1_po_01", 5, 30, "positive"],
    ["s3", "s3_sur_02", 1, 22, "surprise"],
]


def test_casme2_sheet(tmp_path):
    path = _xlsx(tmp_path / "CASME2-coding-20140508.xlsx", [("Sheet1", CASME2_ROWS)])
    clips = read_casme2(path)
    assert len(clips) == 4
    c = clips[0]
    assert (c.dataset, c.subject, c.filename, c.onset, c.apex, c.offset) == (
        "casme2", "sub01", "EP02_01f", 46, 59, 86)
    assert [(o.code, o.side) for o in c.aus] == [("AU12", "both")]
    assert (c.fine, c.coarse, c.fps) == ("happiness", "positive", 200.0)
    assert c.image_id == "sub01_EP02_01f"
    assert [(o.code, o.side) for o in clips[1].aus] == [("AU4", "both"), ("AU7", "both"), ("AU10", "left")]
    assert clips[2].apex is None and clips[2].fine is None and clips[2].coarse is None  # "/" and others
    assert clips[2].emotion == "others"
    assert clips[3].aus == [] and len(clips.problems) == 1 and "row 5" in clips.problems[0]
    assert clips.missing_frames == []


def test_samm_sheet_with_title_rows_and_frames(tmp_path):
    path = _xlsx(tmp_path / "SAMM_Micro_FACS_Codes_v2.xlsx", [("FACS", SAMM_ROWS)])
    root = tmp_path / "frames"
    (root / "SAMM" / "006" / "006_1_2").mkdir(parents=True)
    clips = load_sheet(path, frames_root=root)  # dataset auto-detected
    assert [c.dataset for c in clips] == ["samm"] * 3
    assert [c.subject for c in clips] == ["6", "6", "7"]  # MEGC spelling of "006" and 6
    assert clips[0].frames_dir == root / "SAMM" / "006" / "006_1_2"
    assert (clips[0].fine, clips[0].coarse) == ("anger", "negative")
    assert [(o.code, o.side, o.intensity) for o in clips[1].aus] == [("AU14", "right", "A")]
    assert clips[1].fine == "contempt"
    assert [o.code for o in clips[2].aus] == ["AU1", "AU2"] and clips[2].fine is None
    assert clips[0].image_id == "006_1_2" and clips[0].onset == 5562
    assert len(clips.missing_frames) == 2 and "006_1_3" in clips.missing_frames[0]


def test_casme3_sheet_prefers_label_sheet_and_matches_folder_case(tmp_path):
    path = _xlsx(tmp_path / "labels.xlsx", [("readme", CASME3_README), ("label", CASME3_ROWS)])
    root = tmp_path / "partA"
    (root / "spNo.1" / "a" / "color").mkdir(parents=True)  # folders spell spNo, labels spNO
    clips = load_sheet(path, frames_root=root)
    assert [c.dataset for c in clips] == ["casme3"] * 3
    assert clips[0].frames_dir == root / "spNo.1" / "a" / "color"
    assert [(o.code, o.side) for o in clips[0].aus] == [("AU4", "left"), ("AU7", "left")]
    assert (clips[1].fine, clips[1].coarse) == ("happiness", "positive")
    assert clips[2].fine is None and clips[0].fps == 30.0
    assert clips[0].image_id == "spNO.1_a_138"
    assert len(clips.missing_frames) == 2


@pytest.mark.parametrize("fmt", ["csv", "xlsx"])
def test_smic_sheet(tmp_path, fmt):
    if fmt == "csv":
        path = tmp_path / "smic_coding.csv"
        path.write_text("\n".join(",".join(str(x) for x in r) for r in SMIC_ROWS) + "\n")
    else:
        path = _xlsx(tmp_path / "sheet.xlsx", [("s", SMIC_ROWS)])
    root = tmp_path / "SMIC"
    (root / "HS" / "s1" / "micro" / "negative" / "s1_ne_01").mkdir(parents=True)
    clips = load_sheet(path, frames_root=root)
    assert [c.dataset for c in clips] == ["smic"] * 3
    c = clips[0]
    assert (c.subject, c.filename, c.apex, c.fine, c.coarse) == ("s01", "s01_ne_01", None, None, "negative")
    assert c.frames_dir == root / "HS" / "s1" / "micro" / "negative" / "s1_ne_01"
    assert clips[2].coarse == "surprise" and clips[2].subject == "s03"
    assert len(clips.missing_frames) == 2


def test_sheet_errors(tmp_path):
    with pytest.raises(SheetError, match="not found"):
        load_sheet(tmp_path / "nope.xlsx")
    p = _xlsx(tmp_path / "x.xlsx", [("s", [["a", "b"], [1, 2]])])
    with pytest.raises(SheetError, match="header"):
        load_sheet(p)
    p = _xlsx(tmp_path / "y.xlsx", [("s", [["Subject", "Filename", "Onset"], ["p1", "clip", 3]])])
    with pytest.raises(SheetError, match="dataset="):
        load_sheet(p)
    (tmp_path / "old.xls").write_bytes(b"\xd0\xcf")
    with pytest.raises(SheetError, match=".xlsx"):
        load_sheet(tmp_path / "old.xls")


def test_map_emotion():
    assert map_emotion("CASME II", "Happiness") == ("happiness", "positive")
    assert map_emotion("casme2", "repression") == ("repression", "negative")
    assert map_emotion("casme2", "others") == (None, None)
    assert map_emotion("CAS(ME)^3", "sad") == ("sadness", "negative")
    assert map_emotion("smic", "surprise") == (None, "surprise")
    with pytest.raises(SheetError):
        map_emotion("samm", "boredom")


# ------------------------------------------------------------------ QA generation
def test_generated_qa_matches_every_official_training_clip(train_records):
    n = 0
    for key, recs in group_by_clip(train_records).items():
        clip = clip_from_records(recs)
        official = [r.to_dict() for r in recs]
        gen = generate_qa(clip, rng=random.Random(n))
        assert len(gen) == len(official), key
        for g, o in zip(gen, official):
            assert list(g) == list(o) and g["id"] == o["id"]
            if question_type(o["question"]).kind == "au_presence":
                # the drawn AU differs by chance; the answer and the AU's pool must agree
                au = question_type(g["question"]).au.name
                present = clip.aus and au in [a.name for a in clip.aus]
                assert g["answer"] == o["answer"] == ("yes" if present else "no")
                assert au in MEGC_AU_NAMES or present
            else:
                assert g == o, key
        n += 1
    assert n == 442


def test_generate_qa_from_a_sheet_clip():
    clip = LabelledClip("casme2", "sub01", "EP19_05f", 396, 415, 446,
                        aus=parse_au_string("4+7+L10"), fine="disgust", coarse="negative")
    qa = generate_qa(clip, rng=np.random.default_rng(1))
    qs = [q["question"] for q in qa]
    assert qs[:3] == ["What is the coarse expression class?",
                      "What is the fine-grained expression class?", "What are the action units?"]
    assert qa[2]["answer"] == "brow lowerer, lid tightener, upper lip raiser"
    assert qa[3] == {**qa[3], "question": "Is the action unit upper lip raiser located on the left or right face?",
                     "answer": "left"}
    assert [q["answer"] for q in qa[4:6]] == ["yes", "no"]
    assert qa[6]["answer"].startswith("The action units present are: brow lowerer, lid tightener, upper lip raiser.")
    assert [q["id"] for q in qa] == [f"casme2_sub01_EP19_05f_{i}" for i in range(1, 8)]
    assert generate_qa(clip, rng=3) == generate_qa(clip, rng=3)


def test_generate_qa_edge_cases():
    single = LabelledClip("samm", "6", "006_1_4", 1, 2, 3, aus=[AUOccurrence("AU12")],
                          fine="happiness", coarse="positive")
    qa = generate_qa(single, rng=0)
    assert [q["question"] for q in qa][2] == "What is the action unit?"
    assert len(qa) == 6  # no side question: nothing coded on one side
    assert qa[-1]["answer"].startswith("The action unit present is: lip corner puller.")
    others = LabelledClip("casme2", "sub02", "EP03_02", 1, None, 5, aus=[AUOccurrence("AU12")])
    assert generate_qa(others, rng=0) == []
    smic = LabelledClip("smic", "s01", "s01_ne_01", 1, None, 5, coarse="negative")
    assert [q["question"] for q in generate_qa(smic, rng=0)] == ["What is the coarse expression class?"]
    with pytest.raises(QAError):
        generate_qa(single, rng="seed")


def test_clip_from_records_errors(train_records):
    with pytest.raises(QAError):
        clip_from_records([])
    with pytest.raises(QAError):
        clip_from_records(train_records[:20])  # several clips


def test_summary(train_records):
    s = summary(train_records)
    assert s["n_records"] == 1903 and s["n_clips"] == 442
    assert s["datasets"] == {"smic": 164, "casme2": 145, "samm": 133}
    assert s["coarse"] == {"negative": 250, "positive": 109, "surprise": 83}
    assert sum(s["fine"].values()) == 278 and s["fine"]["anger"] == 57
    assert len(s["aus"]) == 25 and s["presence"] == {"yes": 278, "no": 278}
    assert s["subjects"]["casme2/sub01"] == 3
    text = format_summary(s)
    assert "clips: 442" in text and "lip corner puller" in text
    test = summary(read_megc_jsonl(DATA / "me_vqa_samm_test_to_answer.jsonl"))
    assert test["unanswered"] == 35 and test["n_clips"] == 7
    clips = summary([LabelledClip("casme2", "sub01", "EP", 1, 2, 3, aus=parse_au_string("4+L10"),
                                  fine="disgust", coarse="negative")])
    assert clips["aus"] == {"brow lowerer": 1, "upper lip raiser": 1} and clips["sides"]["left"] == 1


def test_summarise_files(tmp_path):
    s = summarise_files([DATA / name for name in TRAIN_FILES])
    assert s["n_clips"] == 442 and len(s["files"]) == 2
    assert format_summary(s).startswith("files: ")
    sheet = _xlsx(tmp_path / "CASME2-coding.xlsx", [("Sheet1", CASME2_ROWS)])
    s = summarise_files([sheet])
    assert s["n_clips"] == 4 and s["fine"] == {"happiness": 1, "disgust": 1, "repression": 1}
    assert len(s["problems"]) == 1 and "problems (1)" in format_summary(s)
    with pytest.raises(QAError):
        summarise_files([sheet, DATA / TRAIN_FILES[0]])
    with pytest.raises(QAError):
        summarise_files([])


# ------------------------------------------------------------------ splits
def test_normalise_subject_and_dataset():
    assert normalise_dataset("CASME II") == "casme2" and normalise_dataset("CAS(ME)^3") == "casme3"
    for s in (1, "1", "01", "sub1", "sub01"):
        assert normalise_subject("casme2", s) == "sub01"
    for s in (6, "6", "006", "sub06", 6.0):
        assert normalise_subject("SAMM", s) == "6"
    assert normalise_subject("smic", "s1") == "s01"
    assert normalise_subject("casme3", "spNo.12") == "spNO.12"
    with pytest.raises(SplitError):
        normalise_subject("samm", "")


def _mixed_items():
    items = []
    for i, subj in enumerate(["6", "006", "sub06", 6, "7", "007", "8", "9", "10", "11"]):
        items.append({"dataset": "samm", "subject": subj, "i": i})
    for subj in ("sub01", "1", "01", "sub02", "2", "sub03", "4", "sub05"):
        items.append({"dataset": "CASME II", "subject": subj})
    items.append({"dataset": "casme2", "subject": "sub06"})  # CASME II 6 is not SAMM 6
    return items


def _pairs(items, idx):
    return {(normalise_dataset(items[i]["dataset"]), normalise_subject(items[i]["dataset"], items[i]["subject"]))
            for i in idx}


def test_loso_never_leaks():
    items = _mixed_items()
    folds = loso_folds(items)
    assert len(folds) == 6 + 6  # samm 6..11; casme2 sub01..sub06
    held = [f.held_out for f in folds]
    assert ("samm", "6") in held and ("casme2", "sub06") in held and len(set(held)) == len(held)
    for f in folds:
        assert not _pairs(items, f.train_idx) & _pairs(items, f.test_idx)
        assert sorted(f.train_idx + f.test_idx) == list(range(len(items)))
        assert_subject_disjoint([items[i] for i in f.train_idx], [items[i] for i in f.test_idx])
    samm6 = next(f for f in folds if f.held_out == ("samm", "6"))
    assert len(samm6.test_idx) == 4  # "6", "006", "sub06", 6 are one person


def test_holdout_never_leaks_for_any_seed():
    items = _mixed_items()
    for seed in range(30):
        for frac in (0.1, 0.3, 0.5, 0.9):
            sp = holdout_split(items, test_fraction=frac, seed=seed)
            assert sp.test_idx and sp.train_idx
            assert not _pairs(items, sp.train_idx) & _pairs(items, sp.test_idx)
            assert sorted(sp.train_idx + sp.test_idx) == list(range(len(items)))
    assert holdout_split(items, seed=4) == holdout_split(items, seed=4)


def test_holdout_with_named_subjects():
    items = _mixed_items()
    sp = holdout_split(items, test_subjects=["samm/006", ("CASME II", 1)])
    assert set(sp.test_subjects) == {("samm", "6"), ("casme2", "sub01")}
    assert len(sp.test_idx) == 4 + 3
    with pytest.raises(SplitError, match="ambiguous"):
        holdout_split(items, test_subjects=["6"])
    with pytest.raises(SplitError, match="not in the items"):
        holdout_split(items, test_subjects=["samm/99"])


def test_assert_subject_disjoint_catches_formatting_variants():
    with pytest.raises(SubjectLeakageError, match="samm/6"):
        assert_subject_disjoint([{"dataset": "samm", "subject": "6"}], [{"dataset": "SAMM", "subject": "006"}])
    # same number, different datasets: different people, no leak
    assert_subject_disjoint([{"dataset": "samm", "subject": "1"}], [{"dataset": "casme2", "subject": "sub01"}])
    with pytest.raises(SplitError, match="item 0"):
        loso_folds([{"dataset": "samm"}])


def test_splits_on_real_megc_records(train_records):
    folds = loso_folds(train_records)
    subjects = {(r.dataset, r.subject) for r in train_records}
    assert len(folds) == len(subjects)
    sp = holdout_split(train_records, seed=0)
    assert_subject_disjoint([train_records[i] for i in sp.train_idx], [train_records[i] for i in sp.test_idx])
    assert 0.1 < len(sp.test_idx) / len(train_records) < 0.4
    # a clip never straddles the split either
    test_clips = {clip_key(train_records[i]) for i in sp.test_idx}
    assert not test_clips & {clip_key(train_records[i]) for i in sp.train_idx}
