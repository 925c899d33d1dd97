"""The command line: JSON contracts of ARCHITECTURE.md and one-line errors."""
import json
import subprocess
import sys

import pytest

from mevqa.apps.cli import main


def _run(args, capsys):
    code = main(args)
    out = capsys.readouterr()
    return code, out.out, out.err


@pytest.fixture(scope="module")
def demo_mp4(tmp_path_factory):
    from mevqa.testing.synth import demo_clip

    clip, gt = demo_clip()
    p = tmp_path_factory.mktemp("demo") / "demo.mp4"
    clip.save(p)
    return p, gt


def test_help_teaches(capsys):
    with pytest.raises(SystemExit):
        main(["--help"])
    out = capsys.readouterr().out
    assert "examples:" in out and "mevqa spot clip.mp4 --json" in out and "subject" not in out.split("examples:")[0][:10]


def test_spot_json_contract(demo_mp4, capsys):
    code, out, _ = _run(["spot", str(demo_mp4[0]), "--json"], capsys)
    assert code == 0
    d = json.loads(out)
    assert set(d) >= {"clip", "fps", "n_frames", "intervals"}
    assert d["n_frames"] == demo_mp4[1]["n_frames"]
    for iv in d["intervals"]:
        assert set(iv) >= {"onset", "apex", "offset", "kind", "score"}
        assert 0 <= iv["onset"] <= iv["apex"] <= iv["offset"] < d["n_frames"]
        assert iv["kind"] in ("micro", "macro")


def test_au_json_contract(demo_mp4, capsys):
    ev = demo_mp4[1]["events"][0]
    code, out, _ = _run(["au", str(demo_mp4[0]), "--onset", str(ev["onset"]), "--apex", str(ev["apex"]), "--json"], capsys)
    assert code == 0
    d = json.loads(out)
    assert d["onset"] == ev["onset"] and d["apex"] == ev["apex"]
    for a in d["aus"]:
        assert set(a) >= {"code", "name", "side", "intensity", "score", "present"}
        assert a["side"] in ("left", "right", "both")


def test_evidence_and_ask(demo_mp4, capsys, tmp_path):
    code, out, _ = _run(["evidence", str(demo_mp4[0]), "--json", "--out", str(tmp_path)], capsys)
    assert code == 0
    d = json.loads(out)
    assert d["intervals"] and "hidden_emotion" in d
    assert (tmp_path / "motion.png").exists() and (tmp_path / "interval1_flow.png").exists()
    code, out, err = _run(["ask", str(demo_mp4[0]), "What is the coarse expression class?"], capsys)
    assert code == 0 and out.strip() in ("negative", "positive", "surprise")
    assert "evidence-only" in err
    code, out, _ = _run(["ask", str(demo_mp4[0]), "Is this person hiding an emotion?", "--json"], capsys)
    d = json.loads(out)
    assert d["backend"].startswith("evidence-only") and "evidence" in d


@pytest.mark.parametrize("args,needle", [
    (["spot", "/nonexistent/clip.mp4"], "no such file"),
    (["au", "x.mp4", "--onset", "3"], "give both --onset and --apex"),
    (["ask", "demo", "?", "--adapter", "somewhere"], "--adapter needs --model"),
    (["ask", "demo", "What is it?", "--model", "/nonexistent/model"], ""),
])
def test_errors_are_one_line(args, needle, capsys):
    code, out, err = _run(args, capsys)
    assert code == 2
    lines = [ln for ln in err.splitlines() if ln.startswith("mevqa")]
    assert len(lines) == 1 and needle in lines[0]
    assert "Traceback" not in err


def test_console_script_runs():
    r = subprocess.run([sys.executable, "-m", "mevqa", "spot", "/nope.mp4"], capture_output=True, text=True)
    assert r.returncode == 2 and r.stderr.strip().startswith("mevqa spot: error:") and "Traceback" not in r.stderr


# -- issue 17: the command line as a person uses it ------------------------------------------------------
def test_debug_is_accepted_after_the_command(capsys):
    assert main(["spot", "/nonexistent/clip.mp4"]) == 2
    for argv in (["spot", "/nonexistent/clip.mp4", "--debug"], ["--debug", "spot", "/nonexistent/clip.mp4"]):
        with pytest.raises(Exception):  # --debug: the traceback, not the one-line error
            main(argv)


def test_eval_exits_non_zero_when_clips_fail(tmp_path, capsys):
    from pathlib import Path

    src = Path(__file__).parent / "data" / "megc2025" / "me_vqa_casme3_test_to_answer.jsonl"
    q = tmp_path / "q.jsonl"
    q.write_text("".join(src.read_text().splitlines(keepends=True)[:10]))  # the questions of CAS-1 and CAS-2
    (tmp_path / "clips").mkdir()
    (tmp_path / "clips" / "CAS-1.mp4").write_bytes(b"not a video" * 50)  # CAS-1 unreadable, CAS-2 missing
    code, _, err = _run(["eval", str(q), "--clips", str(tmp_path / "clips"), "--out", str(tmp_path / "p.jsonl")],
                        capsys)
    assert code == 1 and "10 failed" in err, err


def test_every_command_teaches(capsys):
    import argparse

    from mevqa.apps.cli_args import build_parser

    sub = next(a for a in build_parser()._actions if isinstance(a, argparse._SubParsersAction))
    for name, p in sub.choices.items():
        assert p.epilog and "examples:" in p.epilog, name
        for action in p._actions:
            assert action.help, f"mevqa {name}: {action.dest} has no help text"
    assert "how clips are found" in sub.choices["eval"].epilog
    assert "m4v" in sub.choices["spot"].format_help() and "mpeg" in sub.choices["ask"].format_help()


@pytest.mark.parametrize("args,needle", [
    (["synth", "x", "--size", "640"], "WIDTHxHEIGHT"),
    (["spot", "demo", "--plot", "missing/dir/x.png"], "does not exist"),
])
def test_more_errors_are_one_line_and_early(args, needle, capsys):
    import time

    t0 = time.perf_counter()
    code, out, err = _run(args, capsys)
    assert code == 2 and len(err.strip().splitlines()) == 1 and needle in err, err
    assert time.perf_counter() - t0 < 5  # refused before any computation


def test_samples_must_be_positive(capsys):
    with pytest.raises(SystemExit) as e:
        main(["ask", "demo", "What is it?", "--samples", "0"])
    assert e.value.code == 2 and "at least 1" in capsys.readouterr().err


def test_corrupt_video_is_one_line(tmp_path):
    bad = tmp_path / "corrupt.mp4"
    bad.write_bytes(b"\x00\x00\x00\x18ftypmp42 definitely not a video " * 64)
    r = subprocess.run([sys.executable, "-m", "mevqa", "spot", str(bad)], capture_output=True, text=True)
    assert r.returncode == 2 and r.stderr.count("\n") == 1 and "cannot decode" in r.stderr, r.stderr


def test_au_table_has_no_grades_and_no_side_for_absent_aus(demo_mp4, capsys):
    ev = demo_mp4[1]["events"][0]
    code, out, _ = _run(["au", str(demo_mp4[0]), "--onset", str(ev["onset"]), "--apex", str(ev["apex"])], capsys)
    assert code == 0 and "not present:" in out
    absent = out.split("not present:")[1].splitlines()[0]
    assert "left" not in absent and "right" not in absent and "both" not in absent
    assert not any(f" {g} |" in out or f"{v} {g}" in out for g in "ABCDE" for v in ("0", "1")), out


def test_app_port_in_use_is_one_line_naming_the_flag():
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen()
        port = s.getsockname()[1]
        r = subprocess.run([sys.executable, "-m", "mevqa", "app", "--port", str(port)], capture_output=True,
                           text=True, timeout=120)
    assert r.returncode == 2 and r.stdout == "" and r.stderr.count("\n") == 1 and "--port" in r.stderr, r.stderr
