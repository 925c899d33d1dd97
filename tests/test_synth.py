"""Synthetic clips: determinism, ground truth that matches the pixels, warp direction and side, I/O."""
import json
import math
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest

from mevqa.face.landmarks import group_centre
from mevqa.motion.flow import dense_flow
from mevqa.testing.synth import (AU_SPECS, EMOTION_AUS, SynthConfig, SynthError, SynthEvent, amplitude_range, demo_clip,
                         event_field, face_setup, main_synth, make_clip, render_demo, temporal_profile,
                         write_synth_set)
from mevqa.io.video import Clip

QUIET = dict(blinks=False, drift=False, noise=0.0, flicker=0.0)


@pytest.fixture(scope="module")
def setup():
    return face_setup()


def _window(field: np.ndarray, point, r: int = 6) -> np.ndarray:
    x, y = int(round(point[0])), int(round(point[1]))
    return field[y - r:y + r + 1, x - r:x + r + 1].reshape(-1, 2).mean(0)


def test_face_is_placed_at_dataset_size(setup):
    assert setup.image.shape == (480, 640, 3)
    assert 90 <= setup.iod <= 110  # CASME II-like inter-ocular distance at 640x480
    lm = setup.landmarks
    assert lm[:, 0].min() > 100 and lm[:, 0].max() < 540 and lm[:, 1].min() > 40 and lm[:, 1].max() < 440
    assert face_setup() is setup  # cached per (photo, size)
    wide = face_setup(width=640, height=360)
    assert wide.image.shape == (360, 640, 3) and 65 <= wide.iod <= 85
    assert wide.landmarks[:, 1].min() > 10 and wide.landmarks[:, 1].max() < 350


def test_same_seed_same_clip_other_seed_other_clip():
    small = dict(width=320, height=240, seconds=1.5, n_events=1)
    cfg = SynthConfig(seed=7, **small)
    a, ga = make_clip(cfg)
    b, gb = make_clip(cfg)
    assert np.array_equal(a.frames, b.frames) and ga == gb
    assert json.loads(json.dumps(ga)) == ga  # plain JSON
    c, gc = make_clip(SynthConfig(seed=8, **small))
    assert not np.array_equal(a.frames, c.frames) and gc["events"] != ga["events"]
    # Independent random streams: switching drift off leaves events and blinks where they were.
    d, gd = make_clip(SynthConfig(seed=7, drift=False, **small))
    assert gd["events"] == ga["events"] and gd["blinks"] == ga["blinks"]
    assert not gd["drift"]["enabled"] and max(map(abs, gd["drift"]["tx"])) == 0


def test_drawn_ground_truth_is_consistent():
    with_blinks = 0
    for seed in range(6):
        cfg = SynthConfig(width=320, height=240, fps=30.0, seconds=5.0, n_events=3, seed=seed)
        clip, gt = make_clip(cfg)
        n, fps = gt["n_frames"], gt["fps"]
        assert clip.n_frames == n == 150 and clip.size == (320, 240)
        gap = math.ceil(0.3 * fps)
        prev_end = -1
        for e in gt["events"]:
            assert 0 <= e["onset"] < e["apex"] < e["offset"] <= n - 1
            assert e["onset"] - prev_end - 1 >= gap  # neutral between events and at the start
            prev_end = e["offset"]
            frames = e["offset"] - e["onset"] + 1
            lo, hi = amplitude_range(e["kind"], gt["iod"])  # 1-4 / 4-10 px at 100 px eye distance
            assert lo - 0.01 <= e["amplitude"] <= hi + 0.01
            if e["kind"] == "micro":
                assert frames / fps <= 0.5
            else:
                assert (e["offset"] - e["onset"]) / fps > 0.5 and frames / fps <= 4.0
            assert e["aus"] and all(a["code"] in AU_SPECS and a["side"] in ("left", "right", "both") for a in e["aus"])
            assert e["emotion"] is None or e["emotion"] in EMOTION_AUS
            if e["emotion"] == "contempt":
                assert e["aus"][0]["side"] != "both"
        assert n - 1 - prev_end >= gap  # neutral at the end
        for b in gt["blinks"]:
            assert 0 <= b["onset"] < b["offset"] <= n - 1
            assert 0.1 <= (b["offset"] - b["onset"] + 1) / fps <= 0.3
            assert all(b["offset"] < e["onset"] or b["onset"] > e["offset"] for e in gt["events"])  # not events
        with_blinks += bool(gt["blinks"])
    assert with_blinks >= 5


def test_nothing_moves_outside_events_and_blinks(setup):
    events = [SynthEvent(5, 9, 12, "micro", ("AU12",), "left", 3.0), SynthEvent(20, 30, 45, "macro", ("AU4", "AU7"), "both", 6.0)]
    clip, gt = make_clip(SynthConfig(seconds=2.0, **QUIET), events=events, blinks=[(50, 56)])
    neutral = setup.image
    busy = set()
    for iv in gt["events"] + gt["blinks"]:
        busy.update(range(iv["onset"] + 1, iv["offset"]))  # onset and offset frames are still neutral
    still = [i for i in range(clip.n_frames) if i not in busy]
    assert all(np.array_equal(clip.frames[i], neutral) for i in still)
    assert all(not np.array_equal(clip.frames[e.apex], neutral) for e in events)
    # At the blink's closure the eyes change and the mouth does not.
    lm = setup.landmarks
    diff = np.abs(clip.frames[52].astype(int) - neutral).sum(-1)
    for eye in ("left_eye", "right_eye"):
        assert _window(np.dstack([diff, diff]).astype(float), group_centre(lm, eye), 5)[0] > 20
    assert _window(np.dstack([diff, diff]).astype(float), group_centre(lm, "upper_lip"), 8)[0] == 0


# (AU, side, landmark group without side, direction on the moving side as (outward, down))
DIRECTIONS = [
    ("AU12", "left", "mouth_corner", (0.55, -0.85)),
    ("AU15", "right", "mouth_corner", (0.2, 1.0)),
    ("AU14", "left", "mouth_corner", (-1.0, -0.1)),
    ("AU1", "right", "inner_brow", (0.0, -1.0)),
    ("AU2", "left", "outer_brow", (0.1, -1.0)),
]


@pytest.mark.parametrize("code,side,group,direction", DIRECTIONS)
def test_warp_moves_the_intended_region_direction_and_side(setup, code, side, group, direction):
    amp = 3.0
    ev = [SynthEvent(3, 8, 13, "micro", (code,), side, amp)]
    clip, _ = make_clip(SynthConfig(seconds=0.6, blinks=False, drift=False, noise=2.0, flicker=0.0), events=ev)
    flow = dense_flow(clip.frames[0], clip.frames[8])  # DIS: where neutral content went at the apex
    other = "right" if side == "left" else "left"
    moving = _window(flow, group_centre(setup.landmarks, f"{side}_{group}"))
    still = _window(flow, group_centre(setup.landmarks, f"{other}_{group}"))
    outward = 1.0 if side == "left" else -1.0  # the subject's left is the image right
    d = np.array([direction[0] * outward, direction[1]])
    d /= np.linalg.norm(d)
    assert moving @ d > 0.4 * amp, (moving, d)
    assert moving @ d / np.linalg.norm(moving) > 0.8  # the direction, not just some motion
    assert np.linalg.norm(still) < 0.2, still


@pytest.mark.parametrize("aus,amp", [(("AU6", "AU12"), 3.0), (("AU1", "AU2"), 3.0), (("AU6", "AU12"), 8.0)])
def test_apex_displacement_matches_the_amplitude(setup, aus, amp):
    fld = event_field(setup, aus, "both", amp)
    assert fld.peak == pytest.approx(amp, rel=1e-3)
    assert all(0 < p <= amp + 1e-6 for p in fld.au_peaks.values())
    ev = [SynthEvent(3, 8, 13 if amp < 4 else 20, "micro" if amp < 4 else "macro", aus, "both", amp)]
    clip, gt = make_clip(SynthConfig(seconds=0.8, **QUIET), events=ev)
    assert gt["events"][0]["amplitude"] == pytest.approx(amp, rel=1e-3)
    x0, y0, x1, y1 = setup.roi
    flow = dense_flow(clip.frames[0], clip.frames[8])[y0:y1, x0:x1]
    truth = fld.smooth
    strong = np.linalg.norm(truth, axis=-1) > 0.5 * amp
    gain = (flow[strong] * truth[strong]).sum() / (truth[strong] ** 2).sum()
    assert 0.55 < gain < 1.2  # DIS medium reads 60-95% of the true motion on these bumps
    peak = np.percentile(np.linalg.norm(flow, axis=-1), 99.5)
    assert 0.5 * amp < peak < 1.15 * amp


def test_lid_moves_are_capped_and_reported(setup):
    fld = event_field(setup, ("AU5",), "both", 10.0)
    gap = min(setup.eyes[s].gap_max for s in ("left", "right"))
    assert fld.peak < 10.0 and fld.peak <= 0.45 * max(setup.eyes[s].gap_max for s in ("left", "right")) + 1e-6
    assert all(-0.45 * gap - 1 <= v < 0 for v in fld.lids.values())  # AU5 opens both upper lids


def test_temporal_profile_is_zero_outside_and_one_at_apex():
    p = temporal_profile(20, 4, 8, 15)
    assert np.all(p[:5] == 0) and np.all(p[15:] == 0) and p[8] == 1
    assert np.all(np.diff(p[4:9]) > 0) and np.all(np.diff(p[8:16]) < 0)


def test_drift_in_ground_truth_is_the_motion_in_the_frames():
    cfg = SynthConfig(width=320, height=240, seconds=1.0, n_events=0, blinks=False, drift=True, noise=0.0, flicker=0.0, seed=3)
    clip, gt = make_clip(cfg)
    d = gt["drift"]
    assert d["enabled"] and 1.0 <= math.hypot(*d["velocity_px_s"]) <= 4.0 and abs(d["rotation_deg_s"]) <= 0.8
    i = clip.n_frames - 1
    m = cv2.getRotationMatrix2D(tuple(d["centre"]), d["rotation_deg"][i], 1.0)
    m[:, 2] += (d["tx"][i], d["ty"][i])
    redo = cv2.warpAffine(clip.frames[0], m, clip.size, flags=cv2.INTER_CUBIC, borderMode=cv2.BORDER_REFLECT101)
    inner = (slice(30, -30), slice(30, -30))
    err = np.abs(redo[inner].astype(int) - clip.frames[i][inner]).mean()
    moved = np.abs(clip.frames[0][inner].astype(int) - clip.frames[i][inner]).mean()
    assert err < 2.0 and moved > 3 * err


def test_folder_set_loads_in_natural_order_at_its_frame_rate(tmp_path):
    paths = write_synth_set(tmp_path, n=2, seed=1, fmt="folder", width=320, height=240)
    index = json.loads((tmp_path / "index.json").read_text())
    assert [c["clip"] for c in index["clips"]] == [p.name for p in paths]
    assert sorted(c["fps"] for c in index["clips"]) == [30.0, 200.0]
    for p in paths:
        gt = json.loads((tmp_path / f"{p.name}.json").read_text())
        clip = Clip.load(p)  # frame rate inferred from the CASME II / CAS(ME)^3 naming
        assert clip.fps == gt["fps"] and clip.n_frames == gt["n_frames"]
        assert list(clip.frame_numbers) == list(range(1, gt["n_frames"] + 1))
        if gt["fps"] == 30.0:  # render again from the stored config: frame i on disk is frame i
            again, gt2 = make_clip(SynthConfig(**gt["config"]), name=gt["clip"])
            assert gt2["events"] == gt["events"]
            for i in (0, 9, 10, 11, gt["n_frames"] - 1):
                assert np.abs(clip.frames[i].astype(int) - again.frames[i]).mean() < 2.5


def test_main_synth_prints_one_line_per_clip(tmp_path, capsys):
    paths = main_synth(tmp_path, n=2, seed=4, fmt="mp4", fps=30.0, photo=None, width=320, height=240)
    lines = [ln for ln in capsys.readouterr().out.splitlines() if ln.startswith("wrote ")]
    assert len(lines) == 2 == len(paths) and all(p.suffix == ".mp4" and p.exists() for p in paths)
    gt = json.loads((tmp_path / "synth_000.json").read_text())
    assert Clip.load(paths[0]).n_frames == gt["n_frames"]


def test_demo_asset_is_the_scripted_demo():
    clip, gt = demo_clip()  # the shipped asset, read as the product reads it
    assert Path(clip.source).name == "demo.mp4" and gt["clip"] == "demo.mp4"
    assert clip.n_frames == 120 and clip.fps == 30.0 and clip.size == (640, 480)
    first, smile, hidden = gt["events"]
    assert first["kind"] == "micro" and first["aus"] == [{"code": "AU14", "side": "left", "peak": 3.0}]
    assert smile["kind"] == "macro" and [a["code"] for a in smile["aus"]] == ["AU6", "AU12"]
    assert hidden["kind"] == "micro" and hidden["aus"][0]["code"] == "AU4"
    assert smile["onset"] < hidden["onset"] and hidden["offset"] < smile["offset"]  # hidden inside the smile
    assert len(gt["blinks"]) == 1 and gt["blinks"][0]["offset"] < first["onset"]
    # The asset is frozen (the app shows the same pixels across releases); the script still renders it:
    # same events, sides, emotions and blinks. Pixels and landmark-derived numbers follow the landmarker
    # of the day (the asset was rendered with FaceMesh; the Face Landmarker places the face ~1 px apart).
    fresh, gt_fresh = render_demo()

    def script(g):
        return [(e["onset"], e["apex"], e["offset"], e["kind"], [(a["code"], a["side"]) for a in e["aus"]], e["emotion"])
                for e in g["events"]], g["blinks"], g["n_frames"], g["fps"], (g["width"], g["height"])

    assert script(gt_fresh) == script(gt)
    for e, f in zip(gt["events"], gt_fresh["events"]):
        assert abs(e["amplitude"] - f["amplitude"]) <= 0.05 * e["amplitude"]


def test_demo_loader_does_not_import_the_synthesiser():
    code = ("import sys; from mevqa.io.demo import demo_clip; c = demo_clip(); "
            "assert not [m for m in sys.modules if m.startswith('mevqa.testing')]; print(c.n_frames)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0 and out.stdout.split()[-1] == "120", out.stderr[-2000:]


@pytest.mark.parametrize("kwargs,events,match", [
    ({}, [SynthEvent(5, 3, 10)], "onset < apex < offset"),
    ({}, [SynthEvent(2, 5, 10, aus=("AU99",))], "unknown action unit"),
    ({}, [SynthEvent(2, 5, 10, side="top")], "side"),
    ({"seconds": 2.0}, [SynthEvent(2, 10, 40, kind="micro")], "at most 0.5 s"),
    ({"seconds": 1.0, "n_events": 5}, None, "do not fit"),
    ({"fps": 0.5}, None, "fps"),
    ({"photo": "/nonexistent/face.png"}, None, "no such photo"),
])
def test_bad_input_is_a_one_line_value_error(kwargs, events, match):
    with pytest.raises(SynthError, match=match) as e:
        make_clip(SynthConfig(**kwargs), events=events)
    assert isinstance(e.value, ValueError) and "\n" not in str(e.value)


def test_photo_without_a_face_is_refused():
    with pytest.raises(SynthError, match="no face"):
        face_setup(np.full((200, 200, 3), 128, np.uint8))
