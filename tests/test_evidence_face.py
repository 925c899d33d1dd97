"""Evidence from the face around the intervals: blendshape states, head pose, occlusion, JSON compatibility."""
import json

import numpy as np
import pytest

from mevqa.evidence.builder import Evidence, IntervalEvidence, compute_evidence, evidence_from_frontend
from mevqa.evidence.face_state import between_stretches, pose_notes, pose_summary, read_stretch
from mevqa.evidence.hidden import hidden_emotion_check
from mevqa.face.landmarker import BLENDSHAPE_NAMES
from mevqa.face.occlusion import stretches
from mevqa.facs.blendshapes import AU_BLENDSHAPES, au_scores


def _bs(t=20, **scores):
    b = np.zeros((t, len(BLENDSHAPE_NAMES)), np.float32)
    for name, v in scores.items():
        b[:, BLENDSHAPE_NAMES.index(name)] = v
    return b


# -- pure parts -----------------------------------------------------------------------------------
def test_blendshape_au_table_names_exist_and_sides_are_kept():
    for row in AU_BLENDSHAPES.values():
        assert all(n in BLENDSHAPE_NAMES for n in row.left + row.right)
    s = au_scores({"mouthSmileLeft": 0.8, "mouthSmileRight": 0.1, "jawOpen": 0.5})
    assert s["AU12"]["side"] == "left" and s["AU12"]["score"] == pytest.approx(0.8)
    assert s["AU26"]["side"] == "both" and s["AU1"]["score"] == 0


def test_reading_a_stretch_gives_states_sides_and_an_emotion():
    b = _bs(mouthSmileLeft=0.9, mouthSmileRight=0.2, cheekSquintLeft=0.6, cheekSquintRight=0.5)
    r = read_stretch(b, BLENDSHAPE_NAMES, 0, 19)
    states = {s["state"]: s for s in r["states"]}
    assert states["smiling"]["side"] == "left" and states["smiling"]["au"] == "AU12"
    assert "cheeks raised" in states and r["coarse"] == "positive"
    assert read_stretch(_bs(), BLENDSHAPE_NAMES, 0, 19)["reading"] == "neutral"


def test_occluded_mouth_is_not_read():
    b = _bs(mouthSmileLeft=0.9, mouthSmileRight=0.9, browDownLeft=0.6, browDownRight=0.6)
    occ = {"mouth": np.ones(20, bool)}
    r = read_stretch(b, BLENDSHAPE_NAMES, 0, 19, occluded=occ)
    assert [s["state"] for s in r["states"]] == ["brows lowered"]
    assert r["occluded"] == ["mouth"] and "mouth occluded" in r["reading"]


def test_stretches_between_intervals_and_runs():
    assert between_stretches([(5, 9), (15, 19)], 30) == [(0, 4), (10, 14), (20, 29)]
    m = np.zeros(40, bool)
    m[5:10] = m[12:20] = True
    m[30] = True
    assert stretches(m, 10.0, bridge_seconds=0.3, min_seconds=0.3) == [(5, 19)]


def test_large_head_turns_lower_confidence_with_a_reason():
    angles = np.zeros((10, 3))
    assert pose_notes(pose_summary(angles, 0, 9)) == []
    angles[:, 0] = 30
    notes = pose_notes(pose_summary(angles, 0, 9))
    assert len(notes) == 1 and "turned 30 degrees" in notes[0]
    angles[:, 0] = np.linspace(0, 12, 10)
    assert "rotated 12 degrees" in pose_notes(pose_summary(angles, 0, 9))[0]


def _iv(k, onset, offset, kind, fine, coarse, **kw):
    return IntervalEvidence(k, onset, (onset + offset) // 2, offset, kind, 1.0, 30.0,
                            [{"code": "AU4", "name": "brow lowerer", "side": "both", "intensity": 0.5, "score": 0.9}],
                            [{"fine": fine, "coarse": coarse, "confidence": 0.7, "rule": "r"}], **kw)


def test_hidden_check_compares_a_micro_expression_with_the_blendshape_context():
    smile = {"reading": "smiling", "emotion": "happiness", "coarse": "positive"}
    iv = _iv(0, 30, 40, "micro", "anger", "negative", context=smile)
    found = hidden_emotion_check([iv], 30.0)
    assert len(found) == 1 and found[0].kind == "valence conflict" and "blendshapes" in found[0].explanation
    # The same micro-expression on a neutral face is the other flag; without context data as before.
    for ctx in ({"reading": "neutral"}, {}):
        f = hidden_emotion_check([_iv(0, 30, 40, "micro", "anger", "negative", context=ctx)], 30.0)
        assert [x.kind for x in f] == ["micro-expression on a neutral face"]


def test_old_evidence_json_still_loads_and_new_keys_are_only_added():
    old = {"version": 1, "clip": "a.mp4", "clip_hash": "x", "fps": 30.0, "n_frames": 60, "width": 64, "height": 64,
           "intervals": [{"index": 0, "onset": 1, "apex": 5, "offset": 9, "kind": "micro", "score": 1.0, "fps": 30.0,
                          "aus": [], "emotions": [], "t_onset": 0.03}],
           "hidden_emotion": [], "curve": {}, "lost_frames": [], "settings": {}}
    ev = Evidence.from_dict(old)
    assert ev.intervals[0].confidence == 1.0 and ev.quality == {}
    d = json.loads(ev.to_json())
    assert set(old) <= set(d) and {"expression", "head_pose", "quality"} <= set(d)
    assert "Frame quality" not in ev.to_text()
    frame = ev.to_frame()
    assert list(frame.columns[:3]) == ["interval", "kind", "t_onset"] and len(frame) == 0


# -- the real video ---------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def real_front(real_clip):
    from mevqa.motion.frontend import run_frontend

    return run_frontend(real_clip)


def test_hand_over_the_mouth_is_found_on_the_real_video(real_front):
    """The subject covers her mouth with a hand from about 2.4 to 9.6 s (checked frame by frame by eye)."""
    fps = real_front.fps
    runs = [(a / fps, b / fps) for a, b in stretches(real_front.occlusion["mouth"], fps)]
    assert len(runs) == 1
    start, end = runs[0]
    assert 2.0 <= start <= 3.1 and 8.9 <= end <= 9.9
    assert not real_front.occlusion["right eye"].any() and not real_front.occlusion["left eye"].any()


def test_heavy_compression_does_not_cover_a_laughing_mouth(real_clip, real_front):
    """JPEG quality 10 doubles the lip landmarks' jitter; the laugh (10-19.7 s) is still uncovered, and
    the hand over the mouth in the same compressed clip is still found."""
    import cv2

    from mevqa.io.video import Clip
    from mevqa.motion.frontend import run_frontend

    def jpeg(f):
        return cv2.imdecode(cv2.imencode(".jpg", f, [cv2.IMWRITE_JPEG_QUALITY, 10])[1], cv2.IMREAD_COLOR)

    front = run_frontend(Clip(np.stack([jpeg(f) for f in real_clip.frames]), real_clip.fps, "jpeg10.mp4"))
    fps = front.fps
    runs = [(a / fps, b / fps) for a, b in stretches(front.occlusion["mouth"], fps)]
    assert len(runs) == 1 and 2.0 <= runs[0][0] <= 3.1 and 8.9 <= runs[0][1] <= 9.9, runs


def test_jitter_only_extends_what_the_orientation_found():
    from mevqa.face.occlusion import _extend

    seed = np.zeros(40, bool)
    seed[20:25] = True
    weak = np.zeros(40, bool)
    weak[10:30] = True   # jitter around the seed: extended, at most 4 frames either side
    weak[0:5] = True     # jitter elsewhere: not occlusion on its own
    assert np.flatnonzero(_extend(seed, weak, 4)).tolist() == list(range(16, 29))


@pytest.mark.slow
def test_evidence_reports_states_pose_and_occlusion(real_front, tmp_path):
    ev = evidence_from_frontend(real_front)
    d = json.loads(ev.to_json())
    assert any(n.startswith("mouth occluded") for n in d["quality"]["notes"])
    assert d["head_pose"]["range"]["yaw"][0] < d["head_pose"]["range"]["yaw"][1]
    # The laughing second half reads as smiling with a positive emotion from the blendshapes.
    late = [s for s in d["expression"] if s["start"] >= 10.0]
    assert late and all("smiling" in s["reading"] for s in late) and late[-1]["coarse"] == "positive"
    assert all(iv["head_pose"] and iv["expression"] for iv in d["intervals"])
    covered = [iv for iv in ev.intervals if 3.0 <= iv.t_apex <= 9.0]
    assert covered and all(iv.confidence < 1 and any("mouth occluded" in n for n in iv.notes) for iv in covered)
    text = ev.to_text()
    assert "Frame quality: mouth occluded" in text and "Face (blendshapes):" in text
    assert ev.plot() is not None
