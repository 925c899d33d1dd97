"""The second, independent synthetic generator (thin-plate-spline warp of muscle pulls on landmarks):
ground truth consistent with the pixels, the same schema as the first generator, motion in each AU's
direction on the right side, no folding warps, and the real-video faces."""
import json
import math

import cv2
import numpy as np
import pytest

from mevqa.io.video import Clip
from mevqa.testing.tps_actions import ACTIONS, PROTOTYPES, action_displacements, face_frame
from mevqa.testing.tps_faces import iod_of
from mevqa.testing.tps_generator import (MACRO_IOD, MICRO_IOD, TPSConfig, TPSEvent, _event_displacement, _Warper,
                                         make_tps_clip, neutral_face)
from mevqa.testing.tps_set import write_tps_set

QUIET = dict(noise=0.0, flicker=0.0, head_motion=False, jpeg_quality=0)


@pytest.fixture(scope="module")
def portrait():
    return neutral_face(TPSConfig(iod=60.0))


def test_ground_truth_schema_matches_the_first_generator():
    from mevqa.testing.synth import SynthConfig, make_clip

    _, first = make_clip(SynthConfig(width=320, height=240, seconds=1.5, n_events=1, seed=1))
    clip, gt = make_tps_clip(TPSConfig(width=320, height=240, seconds=1.5, n_events=1, seed=1))
    assert set(first) <= set(gt) and gt["generator"] == "tps"
    assert set(first["events"][0]) == set(gt["events"][0])
    assert set(first["events"][0]["aus"][0]) == set(gt["events"][0]["aus"][0])
    assert json.loads(json.dumps(gt)) == gt and clip.n_frames == gt["n_frames"] == 45
    assert clip.meta["ground_truth"] is gt and clip.size == (gt["width"], gt["height"])


def test_drawn_events_are_consistent_and_pixels_move_only_inside_them():
    for seed in range(3):
        cfg = TPSConfig(width=320, height=240, fps=30.0, seconds=4.0, n_events=3, seed=seed, **QUIET)
        clip, gt = make_tps_clip(cfg)
        if seed == 0:
            again, gt2 = make_tps_clip(cfg)
            assert gt2 == gt and np.array_equal(again.frames, clip.frames)  # deterministic in the seed
        n, fps, iod = gt["n_frames"], gt["fps"], gt["iod"]
        busy = np.zeros(n, bool)
        prev = -1
        for e in gt["events"]:
            assert 0 <= e["onset"] < e["apex"] < e["offset"] <= n - 1
            assert e["onset"] - prev - 1 >= math.ceil(0.25 * fps) - 1  # neutral between events
            prev = e["offset"]
            dur = (e["offset"] - e["onset"] + 1) / fps
            assert (dur <= 0.5) == (e["kind"] == "micro")
            lo, hi = MICRO_IOD if e["kind"] == "micro" else MACRO_IOD
            assert lo * iod - 0.02 <= e["amplitude"] <= hi * iod + 0.02
            assert all(a["code"] in ACTIONS and a["side"] in ("left", "right", "both") for a in e["aus"])
            assert max(a["peak"] for a in e["aus"]) <= e["amplitude"] + 1e-3
            if e["emotion"] is not None:
                assert tuple(a["code"] for a in e["aus"]) in PROTOTYPES[e["emotion"]]
            if e["emotion"] == "contempt":
                assert e["aus"][0]["side"] != "both"
            busy[e["onset"] + 1: e["offset"]] = True  # zero at onset and offset themselves
            assert not np.array_equal(clip.frames[e["apex"]], clip.frames[0])
        for i in np.flatnonzero(~busy):
            assert np.array_equal(clip.frames[i], clip.frames[0]), i


# (code, side, a well-textured landmark that must move, expected signs on the face's axes (out, down))
MOVES = [
    ("AU12", "left", 291, (1, -1)), ("AU12", "right", 61, (1, -1)), ("AU15", "both", 291, (0, 1)),
    ("AU20", "right", 61, (1, 0)), ("AU1", "both", 107, (0, -1)), ("AU2", "left", 293, (0, -1)),
    ("AU4", "both", 336, (-1, 1)), ("AU5", "right", 159, (0, -1)), ("AU7", "left", 374, (0, -1)),
    ("AU9", "left", 294, (0, -1)), ("AU10", "right", 40, (0, -1)), ("AU14", "left", 291, (-1, 0)),
    ("AU17", "both", 199, (0, -1)), ("AU26", "both", 152, (0, 1)), ("AU6", "right", 50, (0, -1)),
]
TWIN = {291: 61, 61: 291, 293: 63, 159: 386, 374: 145, 294: 64, 40: 270, 50: 280}


def _track(clip, points, i):
    """Where Lucas-Kanade (OpenCV's pyramidal tracker) finds ``points`` of frame 0 in frame ``i``."""
    g0, g1 = (cv2.cvtColor(clip.frames[k], cv2.COLOR_RGB2GRAY) for k in (0, i))
    p0 = np.asarray(points, np.float32).reshape(-1, 1, 2)
    p1, ok, _ = cv2.calcOpticalFlowPyrLK(g0, g1, p0, None, winSize=(11, 11), maxLevel=2)
    assert ok.all()
    return (p1 - p0).reshape(-1, 2)


@pytest.mark.parametrize("code,side,point,sign", MOVES)
def test_pixels_move_as_the_action_unit_on_the_subjects_side(portrait, code, side, point, sign):
    lm = portrait.landmarks
    fr = face_frame(lm)
    amp = 0.08 * fr.iod
    clip, gt = make_tps_clip(TPSConfig(iod=60.0, seconds=0.4, **QUIET), events=[TPSEvent(1, 5, 10, "micro", (code,), side, amp)])
    shown = gt["events"][0]["amplitude"]  # lid and dimple moves may be scaled down (lids must not meet)
    assert 0.4 * amp < shown <= amp + 1e-3
    twin = TWIN.get(point, point)
    f, f_twin = _track(clip, [lm[point], lm[twin]], 5)
    own_left = float((lm[point] - fr.mid) @ fr.ex) > 0  # the subject's left is the image's right here
    out_axis = fr.ex if own_left else -fr.ex
    comp = (float(f @ out_axis), float(f @ fr.ey))
    for s, c in zip(sign, comp):
        if s:
            assert s * c > 0.15 * shown, (code, side, comp)
    # What the pixels do is what the ground truth says, within the tracker's error.
    want = action_displacements(code, side, lm, fr, amplitude=amp)[point] * shown
    assert np.linalg.norm(f - want) < 0.3 * shown + 0.3, (f, want)
    if side in ("left", "right"):
        assert (side == "left") == own_left  # the named side is the subject's own
        assert np.linalg.norm(f_twin) < 0.2 * shown, f_twin  # the other side stays


@pytest.mark.parametrize("kind", ["portrait", "video"])
def test_no_action_unit_folds_the_warp_at_the_largest_macro_amplitude(kind):
    face = neutral_face(TPSConfig(face=kind, width=640, height=480 if kind == "portrait" else 360))
    amp = MACRO_IOD[1] * iod_of(face.landmarks)
    for code in ACTIONS:
        for side in ("both", "left"):
            d, _ = _event_displacement(face, TPSEvent(1, 2, 3, "micro", (code,), side, amp))
            off = _Warper(face, d).backward(d).astype(np.float64)
            gy0, gx0 = np.gradient(off[..., 0])
            gy1, gx1 = np.gradient(off[..., 1])
            det = (1 + gx0) * (1 + gy1) - gy0 * gx1
            assert det.min() > 0.15, (code, side, det.min())
            assert np.abs(off).max() < 1.7 * amp, (code, side, np.abs(off).max())


def test_real_video_face_and_portrait_crops():
    video = neutral_face(TPSConfig(face="video", width=640, height=360))
    assert video.source.startswith("pexels_woman_emotions.mp4@") and 80 < iod_of(video.landmarks) < 130
    fr = face_frame(video.landmarks)
    assert float((video.landmarks[263] - fr.mid) @ fr.ex) > 0 > float((video.landmarks[33] - fr.mid) @ fr.ex)
    small = neutral_face(TPSConfig(width=320, height=240, iod=40.0, centre=(0.42, 0.45)))
    assert small.image.shape == (240, 320, 3) and abs(iod_of(small.landmarks) - 40.0) < 0.5
    c = (small.landmarks.min(0) + small.landmarks.max(0)) / 2
    assert abs(c[0] - 0.42 * 320) < 1 and abs(c[1] - 0.45 * 240) < 1


@pytest.mark.parametrize("cfg,events,match", [
    (TPSConfig(seconds=2.0), [TPSEvent(2, 10, 40, "micro")], "micro"),
    (TPSConfig(), [TPSEvent(2, 5, 10, aus=("AU99",))], "action units"),
    (TPSConfig(), [TPSEvent(5, 3, 10)], "onset < apex < offset"),
    (TPSConfig(seconds=1.0, n_events=6), None, "do not fit"),
    (TPSConfig(face="cartoon"), None, "face must be"),
    (TPSConfig(width=320, height=240, iod=200.0), None, "does not fit"),
])
def test_bad_input_is_one_line(cfg, events, match):
    with pytest.raises(ValueError, match=match) as e:
        make_tps_clip(cfg, events=events)
    assert "\n" not in str(e.value)


def test_written_set_loads_with_its_ground_truth(tmp_path):
    paths = write_tps_set(tmp_path, 2, seed=3, seconds=(1.5, 1.5))
    index = json.loads((tmp_path / "index.json").read_text())
    assert index["generator"] == "tps" and len(index["clips"]) == 2 == len(paths)
    for p in paths:
        gt = json.loads(p.with_suffix(".json").read_text())
        clip = Clip.load(p)
        assert clip.n_frames == gt["n_frames"] and clip.size == (gt["width"], gt["height"]) and gt["clip"] == p.name
