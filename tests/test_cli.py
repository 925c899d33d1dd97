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
