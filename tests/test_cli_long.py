"""`mevqa au` and `mevqa evidence` on a video over the in-memory clip limits: read as a stream, the same
output formats, every frame number the source's. The limit is lowered to 2 s so the 4 s demo video is
"long" (the streaming path is the same for a 10-minute video, only slower)."""
from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import pytest

import mevqa
import mevqa.io.decode as D
from mevqa.apps.cli import main

DEMO = Path(mevqa.__file__).parent / "assets" / "demo.mp4"
TRUTH = json.loads(DEMO.with_suffix(".json").read_text())["events"]


@pytest.fixture
def short_limit(monkeypatch):
    monkeypatch.setattr(D, "DEFAULT_LIMITS", dataclasses.replace(D.DEFAULT_LIMITS, max_seconds=2.0))


def _overlaps(a: tuple[int, int], b: tuple[int, int]) -> bool:
    return min(a[1], b[1]) - max(a[0], b[0]) + 1 >= 0.5 * (max(a[1], b[1]) - min(a[0], b[0]) + 1)


def test_evidence_of_a_long_video_is_streamed(short_limit, capsys, tmp_path):
    assert main(["evidence", str(DEMO), "--json", "--out", str(tmp_path / "shots")]) in (0, None)
    out = json.loads(capsys.readouterr().out)
    assert out["streamed"] is True and out["n_frames"] == 120 and out["fps"] == pytest.approx(30.0)
    found = {(iv["onset"], iv["offset"]): iv for iv in out["intervals"]}
    assert all(0 <= iv["onset"] <= iv["apex"] <= iv["offset"] < 120 for iv in found.values())  # source frames
    # the scripted smile (AU6+AU12, frames 57-108) is found and read (`mevqa spot`'s test checks every event)
    smile = next(ev for ev in TRUTH if ev["kind"] == "macro")
    match = [iv for span, iv in found.items() if _overlaps(span, (smile["onset"], smile["offset"]))]
    assert match and "AU12" in {a["code"] for iv in match for a in iv["aus"]}, list(found)
    pngs = sorted(p.name for p in (tmp_path / "shots").glob("*.png"))
    assert {f"interval1_{n}.png" for n in ("onset", "apex", "offset", "flow")} <= set(pngs)
    assert main(["evidence", str(DEMO)]) in (0, None)
    text = capsys.readouterr().out
    assert "read as a stream" in text and text.count(" -> ") == len(found), text  # one line per interval
    assert main(["evidence", str(DEMO), "--recognizer", "runs/x"]) == 2
    assert "--recognizer" in capsys.readouterr().err


def test_au_of_a_long_video(short_limit, capsys):
    # the main expression: the scripted smile (AU6+AU12, frames 57-108), AUs read on the frames around it
    assert main(["au", str(DEMO), "--json"]) in (0, None)
    captured = capsys.readouterr()
    res = json.loads(captured.out)
    assert "main expression" in captured.err and "read as a stream" in captured.err
    assert 50 <= res["onset"] <= 65 and 65 <= res["apex"] <= 80, res
    assert "AU12" in {a["code"] for a in res["aus"] if a["present"]}
    # explicit frames, in source numbers
    assert main(["au", str(DEMO), "--onset", "33", "--apex", "39", "--json"]) in (0, None)
    res = json.loads(capsys.readouterr().out)
    assert (res["onset"], res["apex"]) == (33, 39)
    assert "AU14" in {a["code"] for a in res["aus"] if a["present"]}
    assert main(["au", str(DEMO), "--onset", "500", "--apex", "520"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "120 frames" in err
