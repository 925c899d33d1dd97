"""Batch evaluation (mevqa eval): scoring hand-made files, runs over synthetic MEGC-layout clip sets,
kill-and-resume, failing clips, sharding, the official test question files, STRS."""
from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from mevqa.megc import command as C
from mevqa.megc import run as E
from mevqa.megc import report as R
from mevqa.megc import strs as S
from mevqa.apps.cli import main as cli_main
from mevqa.io.megc import MegcRecord

DATA = Path(__file__).parent / "data" / "megc2025"
SHARED = Path(__file__).parent / "data" / "megc2025"
CAS_TEST = "me_vqa_casme3_test_to_answer.jsonl"
SAMM_TEST = "me_vqa_samm_test_to_answer.jsonl"
ALLOWED = {"coarse": {"negative", "positive", "surprise"},
           "fine": {"anger", "contempt", "disgust", "fear", "happiness", "repression", "sadness", "surprise"},
           "au_presence": {"yes", "no"}, "au_side": {"left", "right"}}


def megc_file(name: str) -> Path:
    p = DATA / name if (DATA / name).exists() else SHARED / name
    if not p.exists():
        pytest.skip(f"{name} not available")
    return p


def first_clips(name: str, n_clips: int, out: Path) -> Path:
    """The official question file's lines for its first ``n_clips`` clips, byte for byte."""
    lines = megc_file(name).read_text().splitlines()
    keep, clips = [], []
    for line in lines:
        v = json.loads(line)["video"]
        if v not in clips:
            clips.append(v)
        if len(clips) > n_clips:
            break
        keep.append(line)
    out.write_text("\n".join(keep) + "\n")
    return out


@pytest.fixture(scope="module", autouse=True)
def evidence_cache(tmp_path_factory):
    # Evidence is cached on disk by clip content; keep this module's cache out of the user's home.
    with pytest.MonkeyPatch.context() as mp:
        d = tmp_path_factory.mktemp("evcache")
        mp.setenv("MEVQA_CACHE", str(d))
        for k in ("RANK", "WORLD_SIZE", "LOCAL_RANK", "MASTER_ADDR"):
            mp.delenv(k, raising=False)
        yield d


@pytest.fixture(scope="module")
def synth(tmp_path_factory):
    """Three 2-second synthetic clips (320x240, 30 fps, one expression each) as mp4 files."""
    from mevqa.testing.synth import SynthConfig, make_clip

    d = tmp_path_factory.mktemp("synth")
    paths = []
    for i in range(3):
        clip, _ = make_clip(SynthConfig(width=320, height=240, fps=30.0, seconds=2.0, n_events=1, seed=i))
        paths.append(clip.save(d / f"synth{i}.mp4"))
    return paths


@pytest.fixture()
def cas_clips(tmp_path, synth):
    """A clips root laid out like the CAS(ME)^3 test release: CAS-1.mp4, CAS-2.mp4, CAS-3.mp4."""
    root = tmp_path / "clips"
    root.mkdir()
    for i, p in enumerate(synth):
        shutil.copy(p, root / f"CAS-{i + 1}.mp4")
    return root


def run_cli(*argv) -> int:
    return cli_main(["eval", *map(str, argv)])


def check_submission(pred: Path, questions: Path) -> list[str]:
    """Prediction lines equal the question lines except for the filled answer; returns the answers."""
    q_lines = [x for x in questions.read_text().splitlines() if x.strip()]
    p_lines = pred.read_text().splitlines()
    assert len(p_lines) == len(q_lines)
    answers = []
    for q, p in zip(q_lines, p_lines):
        ans = json.loads(p)["answer"]
        assert list(json.loads(p)) == list(json.loads(q))                 # same keys, same order
        assert p.replace(f'"answer":{json.dumps(ans)}', '"answer":""') == q  # same bytes otherwise
        answers.append(ans)
    return answers


def check_answer_forms(questions: Path, answers: list[str]) -> None:
    from mevqa.answer.questions import question_type

    for line, ans in zip(questions.read_text().splitlines(), answers):
        kind = question_type(json.loads(line)["question"]).kind
        assert ans, f"empty answer to {line}"
        if kind in ALLOWED:
            assert ans in ALLOWED[kind], (kind, ans)
        elif kind == "analysis":
            assert ans.startswith("The action unit") and "coarse expression class is" in ans


# ------------------------------------------------------------------------------------------------
# Scoring hand-made files
# ------------------------------------------------------------------------------------------------
def _rec(rid, ds, subject, clip, question, answer):
    return json.dumps({"id": rid, "dataset": ds, "image_id": f"{subject}_{clip}", "subject": subject,
                       "filename": clip, "question": question, "answer": answer})


ANALYSIS = ("The action unit present is: lip corner puller. Therefore, the fine-grained expression class is "
            "happiness, and the coarse expression class is positive.")
GT_ROWS = [  # id, dataset, subject, clip, question, true answer, predicted answer (None: no line)
    ("a1", "casme2", "sub01", "A", "What is the coarse expression class?", "positive", "positive"),
    ("a2", "casme2", "sub01", "A", "What is the fine-grained expression class?", "happiness", "happiness"),
    ("a3", "casme2", "sub01", "A", "What is the action unit?", "lip corner puller", "lip corner puller"),
    ("a4", "casme2", "sub01", "A", "Is the action unit lip corner puller shown on the face?", "yes", "yes"),
    ("a5", "casme2", "sub01", "A", "What is the action unit present, and based on it, what is the fine-grained "
     "expression and the coarse expression class?", ANALYSIS, ANALYSIS),
    ("b1", "casme2", "sub02", "B", "What is the coarse expression class?", "negative", "positive"),
    ("b2", "casme2", "sub02", "B", "What is the fine-grained expression class?", "disgust", " Disgust "),
    ("b3", "casme2", "sub02", "B", "What are the action units?", "brow lowerer, lid tightener", "brow lowerer"),
    ("b4", "casme2", "sub02", "B", "Is the action unit brow lowerer shown on the face?", "yes", "yes"),
    ("b5", "casme2", "sub02", "B", "Is the action unit lid tightener located on the left or right face?", "left", "right"),
    ("c1", "samm", "6", "C", "What is the coarse expression class?", "surprise", "surprise"),
    ("c2", "samm", "6", "C", "What is the fine-grained expression class?", "surprise", "amazed"),
    ("c3", "samm", "6", "C", "What are the action units?", "inner brow raiser, outer brow raiser",
     "inner brow raiser, outer brow raiser, jaw drop"),
    ("c4", "samm", "6", "C", "Is the action unit jaw drop shown on the face?", "no", "yes"),
    ("c5", "samm", "6", "C", "Is the action unit outer brow raiser located on the left or right face?", "right", "right"),
    ("d1", "samm", "6", "D", "What is the coarse expression class?", "negative", None),
    ("d2", "samm", "6", "D", "What is the fine-grained expression class?", "anger", "anger"),
]


def test_scores_on_hand_made_files_match_hand_derived_values(tmp_path, capsys):
    gt, pred = tmp_path / "gt.jsonl", tmp_path / "pred.jsonl"
    gt.write_text("".join(_rec(r[0], r[1], r[2], r[3], r[4], r[5]) + "\n" for r in GT_ROWS))
    pred.write_text("".join(_rec(r[0], r[1], r[2], r[3], r[4], r[6]) + "\n" for r in GT_ROWS if r[6] is not None)
                    + _rec("zz", "samm", "7", "Z", "What is the coarse expression class?", "negative") + "\n")
    assert run_cli("--score", pred, "--gt", gt, "--report", tmp_path / "rep") == 0
    md = capsys.readouterr().out
    rep = json.loads((tmp_path / "rep" / "report.json").read_text())
    o = rep["overall"]
    # coarse: truth [pos, neg, sur, neg], pred [pos, pos, sur, ""(missing)]
    #   negative F1 0 (0 TP, 2 FN), positive 2*1/(2+1+0)=2/3, surprise 1 -> UF1 5/9; recalls 0, 1, 1 -> UAR 2/3
    assert o["coarse_uf1"] == pytest.approx(5 / 9) and o["coarse_uar"] == pytest.approx(2 / 3)
    # fine: happiness, disgust (case and spaces do not matter), anger right; "amazed" for surprise wrong
    assert o["fine_uf1"] == pytest.approx(3 / 4) and o["fine_uar"] == pytest.approx(3 / 4)
    # AU lists: A {lcp}={lcp}; B {bl,lt} vs {bl}; C {ibr,obr} vs {ibr,obr,jd}: TP 4, FP 1, FN 1
    au = o["au_list"]
    assert (au["micro"]["tp"], au["micro"]["fp"], au["micro"]["fn"]) == (4, 1, 1)
    assert au["micro"]["f1"] == pytest.approx(8 / 10)
    assert au["macro_f1"] == pytest.approx(4 / 5)            # lcp 1, bl 1, lt 0, ibr 1, obr 1
    assert au["exact"] == pytest.approx(1 / 3)
    assert au["per_au"]["jaw drop"]["fp"] == 1 and au["per_au"]["lid tightener"]["fn"] == 1
    assert o["presence_accuracy"] == pytest.approx(2 / 3)     # yes, yes right; jaw drop "yes" wrong
    assert o["side_accuracy"] == pytest.approx(1 / 2)         # left->right wrong, right right
    assert o["analysis_exact"] == 1.0
    assert o["missing"] == 1 and o["unparsable"] == {"fine": 1}  # d1 missing; "amazed" is no class
    assert rep["n_extra"] == 1 and rep["n_gt"] == len(GT_ROWS)
    # per dataset: casme2 coarse truth [pos, neg] pred [pos, pos] -> F1 (2/3 + 0)/2, recall (1 + 0)/2
    assert rep["by_dataset"]["casme2"]["coarse_uf1"] == pytest.approx(1 / 3)
    assert rep["by_dataset"]["casme2"]["coarse_uar"] == pytest.approx(1 / 2)
    assert rep["by_dataset"]["samm"]["coarse_uf1"] == pytest.approx(1 / 2)   # surprise 1, negative 0
    assert rep["by_subject"]["casme2/sub01"]["coarse_uf1"] == 1.0
    assert list(rep["by_subject"]) == ["casme2/sub01", "casme2/sub02", "samm/6"]
    # confusion: the coarse matrix of everything, with the missing answer in the "other" column
    cm = rep["overall"]["coarse_confusion"]
    assert cm["labels"] == ["negative", "positive", "surprise"] and cm["counts"][0] == [0, 1, 0] and cm["other"] == [1, 0, 0]
    # the Markdown names each variant and is also written, with the plots
    assert "| coarse UF1 | 0.556 | 0.333 | 0.500 |" in md
    assert "BLEU (sentence, smoothed, mean)" in md and "BLEU-4 (corpus, sacreBLEU)" in md and "ROUGE-1 recall" in md
    assert (tmp_path / "rep" / "report.md").read_text() == md
    for name in ("confusion_coarse.png", "confusion_fine.png", "confusion_coarse_samm.png"):
        assert (tmp_path / "rep" / name).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_text_scores_on_hand_made_files(tmp_path):
    rows = [("t1", "What is the action unit present, and based on it, what is the fine-grained expression and "
             "the coarse expression class?", ANALYSIS, ANALYSIS),
            ("t2", "What is the coarse expression class?", "positive", "positive")]
    gt, pred = tmp_path / "gt.jsonl", tmp_path / "pred.jsonl"
    gt.write_text("".join(_rec(r, "casme2", "sub01", "A", q, a) + "\n" for r, q, a, _ in rows))
    pred.write_text("".join(_rec(r, "casme2", "sub01", "A", q, p) + "\n" for r, q, _, p in rows))
    v = R.score_predictions(pred, gt).overall.vqa
    # sentence BLEU-4, smoothing 1: the long exact sentence scores 1; the one-word exact answer has
    # precisions 1, 0.1, 0.1, 0.1 (0 n-grams -> 0.1), so its BLEU is 0.1 ** (3/4)
    assert v.bleu_sentence_smoothed == pytest.approx((1 + 0.1 ** 0.75) / 2, abs=1e-6)
    # corpus BLEU-4 pools n-gram counts: every n-gram matches, lengths equal -> 1
    assert v.bleu_corpus4 == pytest.approx(1.0)
    assert v.rouge1_recall == pytest.approx(1.0) and v.rouge1_f1 == pytest.approx(1.0)

    # ROUGE-1 on a partial answer and an empty one: "brow lowerer" vs "brow lowerer, lid tightener"
    # recalls 2 of 4 reference words (precision 1, F1 2/3); an empty answer scores 0.
    rows = [("u1", "What are the action units?", "brow lowerer, lid tightener", "brow lowerer"),
            ("u2", "Is the action unit brow lowerer shown on the face?", "yes", "")]
    gt.write_text("".join(_rec(r, "samm", "6", "C", q, a) + "\n" for r, q, a, _ in rows))
    pred.write_text("".join(_rec(r, "samm", "6", "C", q, p) + "\n" for r, q, _, p in rows))
    v = R.score_predictions(pred, gt).overall.vqa
    assert v.rouge1_recall == pytest.approx((0.5 + 0) / 2)
    assert v.rouge1_f1 == pytest.approx((2 / 3 + 0) / 2)
    assert v.presence_accuracy == 0.0


def test_score_refuses_a_question_file_as_ground_truth(tmp_path):
    q = megc_file(SAMM_TEST)
    with pytest.raises(E.EvalError, match="question file, not ground truth"):
        R.score_predictions(q, q)


def test_strs_csvs_are_scored_like_metrics_does(tmp_path, capsys):
    from mevqa.megc.metrics import read_strs_csv, strs_scores

    pred, gt = megc_file("strs_example_pred.csv"), megc_file("strs_example_gt.csv")
    assert run_cli("--score", pred, "--gt", gt) == 0
    out = capsys.readouterr().out
    s = strs_scores(read_strs_csv(pred), read_strs_csv(gt))
    assert f"| spotting F1 | {s.spotting.f1:.3f} |" in out and f"| STRS = spotting F1 x recognition F1 | {s.strs:.3f} |" in out


# ------------------------------------------------------------------------------------------------
# Finding clips
# ------------------------------------------------------------------------------------------------
def test_resolver_finds_release_layouts_and_explains_misses(tmp_path):
    root = tmp_path
    (root / "CASME2_RAW_selected" / "sub01" / "EP02_01f").mkdir(parents=True)
    (root / "SAMM" / "006" / "006_1_2").mkdir(parents=True)
    (root / "smic" / "deep" / "HS" / "s01_ne_01").mkdir(parents=True)
    (root / "SAMM-1.avi").write_bytes(b"x")
    r = E.ClipResolver(root)
    rec = lambda **kw: MegcRecord(question="q", **kw)  # noqa: E731
    assert r.resolve(rec(id="1", dataset="casme2", image_id="sub01_EP02_01f", subject="sub01", filename="EP02_01f"))[0] \
        == root / "CASME2_RAW_selected" / "sub01" / "EP02_01f"
    assert r.resolve(rec(id="2", dataset="samm", image_id="006_1_2", subject="6", filename="006_1_2"))[0] \
        == root / "SAMM" / "006" / "006_1_2"                      # subject "6" -> folder 006
    assert r.resolve(rec(video_id="samm_test_SAMM-1_1", video="SAMM-1"))[0] == root / "SAMM-1.avi"
    # a layout nobody foresaw: found by name
    assert r.resolve(rec(id="3", dataset="smic", image_id="s01_ne_01", subject="s01", filename="s01_ne_01"))[0] \
        == root / "smic" / "deep" / "HS" / "s01_ne_01"
    path, why = r.resolve(rec(video_id="samm_test_SAMM-9_1", video="SAMM-9"))
    assert path is None and "SAMM-9" in why and "samm/SAMM-9" in why
    # an explicit --pattern replaces the defaults
    r2 = E.ClipResolver(root, C._patterns("SAMM/{subject:03d}/{filename}"))
    assert r2.resolve(rec(id="1", dataset="casme2", subject="sub01", filename="EP02_01f"))[0] is None


def test_nothing_resolving_is_one_error_listing_the_layouts(tmp_path, capsys):
    q = first_clips(SAMM_TEST, 2, tmp_path / "q.jsonl")
    (tmp_path / "empty").mkdir()
    assert run_cli(q, "--clips", tmp_path / "empty", "--out", tmp_path / "p.jsonl") == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "no clip of q.jsonl found" in err[0]
    assert "{video}" in err[0] and "SAMM/{subject:03d}/{filename}" in err[0] and "--pattern" in err[0]


# ------------------------------------------------------------------------------------------------
# Runs
# ------------------------------------------------------------------------------------------------
def test_run_answers_test_format_file_once_per_clip(tmp_path, cas_clips, monkeypatch, capsys):
    calls = []
    real = E.compute_evidence
    monkeypatch.setattr(E, "compute_evidence", lambda clip, **kw: calls.append(clip.source) or real(clip, **kw))
    q = first_clips(CAS_TEST, 3, tmp_path / "q.jsonl")
    out = tmp_path / "pred.jsonl"
    assert run_cli(q, "--clips", cas_clips, "--out", out, "--report", tmp_path / "rep") == 0
    answers = check_submission(out, q)
    check_answer_forms(q, answers)
    assert sorted(Path(c).name for c in calls) == ["CAS-1.mp4", "CAS-2.mp4", "CAS-3.mp4"]  # once per clip
    err = capsys.readouterr().err
    assert "15/15" in err and "q/s" in err                    # the progress bar, on stderr
    assert not E.failed_path(out).exists()
    run = json.loads((tmp_path / "rep" / "report.json").read_text())["run"]
    assert run["n_answered"] == 15 and "evidence-only" in run["backend"]
    # a second run finds everything answered and changes nothing
    before = out.read_bytes()
    res = E.run_eval(E.RunConfig(q, cas_clips, out, progress=False))
    assert (res.n_resumed, res.n_answered) == (15, 0) and out.read_bytes() == before


def test_run_with_tiny_model(tmp_path, cas_clips):
    tiny = pytest.importorskip("mevqa.testing.tiny_model", reason="mevqa.testing.tiny_model not there yet")
    model = tiny.build_tiny_model(tmp_path / "tiny")
    lines = first_clips(CAS_TEST, 1, tmp_path / "all.jsonl").read_text().splitlines()
    q = tmp_path / "q.jsonl"
    q.write_text(lines[0] + "\n")                            # one question: CPU generation is slow
    gt = tmp_path / "gt.jsonl"
    gt.write_text(q.read_text().replace('"answer":""', '"answer":"negative"'))
    out = tmp_path / "pred.jsonl"
    assert run_cli(q, "--clips", cas_clips, "--out", out, "--model", model, "--gt", gt, "--report", tmp_path / "rep") == 0
    answers = check_submission(out, q)
    # random weights: whatever it says is normalised to an allowed answer or left empty (unparsable)
    assert answers[0] in ALLOWED["coarse"] | {""}
    rep = json.loads((tmp_path / "rep" / "report.json").read_text())
    assert "Qwen-VL" in rep["run"]["backend"] and rep["n_gt"] == 1
    assert rep["overall"]["unparsable"].get("coarse", 0) == (answers[0] == "")


def test_kill_and_resume_loses_and_repeats_nothing(tmp_path, synth):
    root = tmp_path / "clips"
    root.mkdir()
    for i, p in enumerate(synth):           # 3 distinct clips, then the same three again
        shutil.copy(p, root / f"CAS-{i + 1}.mp4")
    q = first_clips(CAS_TEST, 3, tmp_path / "q.jsonl")
    clean = tmp_path / "clean.jsonl"
    E.run_eval(E.RunConfig(q, root, clean, progress=False))

    # 1. a real kill: a fresh process with an empty evidence cache, killed once its first answers exist
    out = tmp_path / "pred.jsonl"
    env = dict(os.environ, MEVQA_CACHE=str(tmp_path / "fresh_cache"))
    proc = subprocess.Popen([sys.executable, "-m", "mevqa", "eval", str(q), "--clips", str(root), "--out", str(out)],
                            env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and proc.poll() is None and not (out.exists() and out.stat().st_size):
        time.sleep(0.01)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert proc.returncode == -signal.SIGKILL, "the run finished before it could be killed"
    n_before = len([x for x in out.read_bytes().split(b"\n") if x.strip()])
    assert 1 <= n_before < 15
    res = E.run_eval(E.RunConfig(q, root, out, progress=False))
    assert res.n_resumed + res.n_answered == 15 and res.n_resumed >= n_before - 1
    assert out.read_bytes() == clean.read_bytes()

    # 2. a torn last line (killed mid-write): it is dropped and answered again, nothing else is
    torn = clean.read_bytes().split(b"\n")
    out.write_bytes(b"\n".join(torn[:6]) + b"\n" + torn[6][: len(torn[6]) // 2])
    res = E.run_eval(E.RunConfig(q, root, out, progress=False))
    assert (res.n_resumed, res.n_answered) == (6, 9)
    assert out.read_bytes() == clean.read_bytes()

    # 3. a complete last line that only lacks its newline is kept
    out.write_bytes(b"\n".join(torn[:7]))
    assert E.run_eval(E.RunConfig(q, root, out, progress=False)).n_resumed == 7
    assert out.read_bytes() == clean.read_bytes()

    # 4. an output file from another question set is refused, not overwritten
    other = tmp_path / "other.jsonl"
    other.write_text('{"video_id":"x_1","video":"x","question":"q","answer":"a"}\n')
    with pytest.raises(E.EvalError, match="not in the question file"):
        E.run_eval(E.RunConfig(q, root, other, progress=False))


def test_failing_clips_are_reported_and_the_run_goes_on(tmp_path, synth, capsys):
    from mevqa.io.video import write_clip

    root = tmp_path / "clips"
    root.mkdir()
    shutil.copy(synth[0], root / "CAS-1.mp4")
    (root / "CAS-2.mp4").write_bytes(b"this is not a video" * 50)                  # unreadable
    write_clip(np.full((20, 240, 320, 3), 120, np.uint8), root / "CAS-3", fps=30, pattern="{n}.jpg")  # no face
    q = first_clips(CAS_TEST, 4, tmp_path / "q.jsonl")                               # CAS-4 does not exist
    gt = tmp_path / "gt.jsonl"
    gt.write_text("".join(
        json.dumps({**json.loads(x), "answer": "negative"}, separators=(",", ":")) + "\n" for x in q.read_text().splitlines()))
    out = tmp_path / "pred.jsonl"
    # exit status 1: the run finished, but some clips failed (issue 17)
    assert run_cli(q, "--clips", root, "--out", out, "--gt", gt, "--report", tmp_path / "rep") == 1
    answers = check_submission(out, q)
    assert all(answers[:5]) and answers[5:] == [""] * 15
    failed = [json.loads(x) for x in E.failed_path(out).read_text().splitlines()]
    assert [f["id"] for f in failed] == [json.loads(x)["video_id"] for x in q.read_text().splitlines()[5:]]
    reasons = {f["clip"]: f["failed"] for f in failed}
    assert "cannot decode" in reasons["CAS-2"] and "no face" in reasons["CAS-3"] and "no clip found" in reasons["CAS-4"]
    assert all(set(json.loads(x)) == {"video_id", "video", "question", "answer"} for x in out.read_text().splitlines())
    rep = json.loads((tmp_path / "rep" / "report.json").read_text())
    assert {f["clip"]: f["questions"] for f in rep["failures"]} == {"CAS-2": 5, "CAS-3": 5, "CAS-4": 5}
    assert rep["overall"]["failed"] == 15
    md = capsys.readouterr().out
    assert "## Failed clips" in md and "no face found" in md


def test_two_processes_share_the_clips_and_merge_in_question_order(tmp_path, cas_clips, monkeypatch):
    q = first_clips(CAS_TEST, 3, tmp_path / "q.jsonl")
    clean = tmp_path / "clean.jsonl"
    E.run_eval(E.RunConfig(q, cas_clips, clean, progress=False))
    out = tmp_path / "pred.jsonl"
    monkeypatch.setenv("WORLD_SIZE", "2")
    monkeypatch.setenv("RANK", "1")                         # the second process: clip 2 only
    res = E.run_eval(E.RunConfig(q, cas_clips, out, progress=False))
    assert (res.n_answered, res.merged) == (5, False) and not out.exists()
    assert len((tmp_path / "pred.jsonl.part1").read_text().splitlines()) == 5
    monkeypatch.setenv("RANK", "0")                         # the main process: clips 1 and 3, then merge
    res = E.run_eval(E.RunConfig(q, cas_clips, out, progress=False, poll_seconds=0.05))
    assert (res.n_answered, res.merged) == (10, True)
    assert out.read_bytes() == clean.read_bytes()
    assert not list(tmp_path.glob("pred.jsonl.part*"))


@pytest.mark.slow
def test_torchrun_launch_shards_over_two_processes(tmp_path, cas_clips):
    """A real launcher (torchrun, what `accelerate launch --multi_gpu` runs): two processes, one file."""
    torchrun = shutil.which("torchrun")
    if torchrun is None:
        pytest.skip("torchrun not installed")
    q = first_clips(CAS_TEST, 3, tmp_path / "q.jsonl")
    clean = tmp_path / "clean.jsonl"
    E.run_eval(E.RunConfig(q, cas_clips, clean, progress=False))   # also fills the disk cache the workers read
    out = tmp_path / "pred.jsonl"
    proc = subprocess.run([torchrun, "--nproc_per_node", "2", "-m", "mevqa", "eval", str(q), "--clips",
                           str(cas_clips), "--out", str(out)], capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "eval 1/2" in proc.stderr and "eval 2/2" in proc.stderr   # both processes answered
    assert out.read_bytes() == clean.read_bytes()
    assert not list(tmp_path.glob("pred.jsonl.*"))


def test_official_test_question_files_end_to_end(tmp_path, synth):
    """Both official test files, answered against a clips root laid out like the release (SAMM-1..7,
    CAS-1..17: copies of three synthetic clips, whose evidence is computed once per content)."""
    root = tmp_path / "clips"
    root.mkdir()
    for name, n in (("SAMM", 7), ("CAS", 17)):
        for i in range(n):
            os.link(synth[i % len(synth)], root / f"{name}-{i + 1}.mp4")
    for qname in (SAMM_TEST, CAS_TEST):
        q = megc_file(qname)
        out = tmp_path / qname.replace("_to_answer", "_pred")
        res = E.run_eval(E.RunConfig(q, root, out, progress=False))
        answers = check_submission(out, q)
        check_answer_forms(q, answers)
        assert res.n_answered == len(answers) == {SAMM_TEST: 35, CAS_TEST: 85}[qname]


# ------------------------------------------------------------------------------------------------
# STRS
# ------------------------------------------------------------------------------------------------
def test_strs_spots_long_videos_writes_csv_and_scores(tmp_path, monkeypatch, capsys):
    from mevqa.megc.metrics import read_strs_csv
    from mevqa.testing.synth import SynthConfig, SynthEvent, make_clip
    from mevqa.io.video import write_clip

    events = [SynthEvent(20, 28, 38, "macro", ("AU6", "AU12"), "both", 7.0, "happiness"),
              SynthEvent(92, 100, 110, "macro", ("AU4", "AU7"), "both", 7.0, "anger")]
    clip, gt = make_clip(SynthConfig(width=320, height=240, fps=30.0, seconds=4.5, blinks=False, seed=5), events=events)
    root = tmp_path / "long"
    write_clip(clip.frames, root / "sub01" / "vid_a", fps=30, pattern="{n}.jpg", start=1)  # folder: numbered from 1
    clip.save(root / "2" / "vid_b.mp4")                                                    # video: from 0
    rows = ["subject,video,onset,offset,emotion"]
    for subject, video, shift in (("1", "vid_a", 1), ("2", "vid_b", 0)):
        rows += [f"{subject},{video},{e['onset'] + shift},{e['offset'] + shift},{e['emotion']}" for e in gt["events"]]
    gt_csv = tmp_path / "gt.csv"
    gt_csv.write_text("\n".join(rows) + "\n")
    # chunks of 2.5 s overlapping by 1 s: the 4.5 s videos are read in three pieces
    monkeypatch.setattr(S, "STRS_CHUNK_SECONDS", 2.5)
    monkeypatch.setattr(S, "STRS_OVERLAP_SECONDS", 1.0)
    out = tmp_path / "strs.csv"
    assert run_cli("--strs", out, "--clips", root, "--gt", gt_csv, "--fps", 30, "--report", tmp_path / "rep") == 0
    assert out.read_text().splitlines()[0] == "subject,video,onset,offset,emotion"
    pred = read_strs_csv(out)
    assert {(r.subject, r.video) for r in pred} <= {("1", "vid_a"), ("2", "vid_b")}
    shown = capsys.readouterr().out
    rep = json.loads((tmp_path / "rep" / "strs_report.json").read_text())
    assert f"| spotting F1 | {rep['spotting']['f1']:.3f} |" in shown and "STRS" in shown
    # both smiles/frowns are strong macro events: the spotter finds most of them, and no interval twice
    assert rep["spotting"]["tp"] >= 2
    for r in pred:
        assert sum(abs(r.onset - o.onset) < 5 and r.video == o.video for o in pred) == 1
    # the videos a CSV names (here the ground truth itself), found under --clips: the same rows
    out2 = tmp_path / "strs_listed.csv"
    assert run_cli(gt_csv, "--strs", out2, "--clips", root, "--fps", 30) == 0
    assert sorted(out2.read_text().splitlines()) == sorted(out.read_text().splitlines())
    # two processes: the second writes its part, the main one gathers and writes the same CSV
    out3 = tmp_path / "strs_sharded.csv"
    monkeypatch.setenv("WORLD_SIZE", "2")
    for rank in ("1", "0"):
        monkeypatch.setenv("RANK", rank)
        S.run_strs(out3, root, fps=30, progress=False, poll_seconds=0.05)
    assert out3.read_text() == out.read_text() and not list(tmp_path.glob("strs_sharded.csv.part*"))


@pytest.mark.parametrize("rel, subject", [("sub01/EP02_01f", "1"), ("rawpic/s15/15_0101disgustingteeth", "15"),
                                          ("SAMM_longvideos/006_1", "6"), ("2/vid.mp4", "2"), ("x/vid", "x")])
def test_strs_subject_from_the_layout(rel, subject):
    assert S._subject_of(Path(rel)) == subject
