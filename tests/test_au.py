"""AU detector (mevqa.au.detector) on synthetic clips with known AUs and sides (mevqa.testing.synth), plus contracts."""
from __future__ import annotations

import json
from functools import lru_cache

import cv2
import numpy as np
import pytest

from mevqa.au import detector as au
from mevqa.au.detector import AUConfig, AUError, LinearAUModel, NoIntervalError, detect_aus, detect_aus_clip, fit_linear

ONSET, APEX, OFFSET = 8, 13, 19  # a 12-frame (0.4 s) micro-expression at 30 fps


@lru_cache(maxsize=None)
def synth_front(aus: tuple[str, ...] = (), side: str = "both", amplitude: float = 2.5, *, seed: int = 7,
                drift: bool = True):
    """Front end of a 1 s, 640x480, 30 fps synthetic clip with one micro event (or none)."""
    from mevqa.motion.frontend import run_frontend
    from mevqa.testing.synth import SynthConfig, SynthEvent, make_clip

    events = [SynthEvent(ONSET, APEX, OFFSET, "micro", aus, side, amplitude)] if aus else []
    clip, _ = make_clip(SynthConfig(fps=30.0, seconds=1.0, blinks=False, drift=drift, noise=2.0, seed=seed),
                        events=events, name=f"synth_{'_'.join(aus) or 'neutral'}_{side}")
    return run_frontend(clip)


# Each AU synth draws, at micro amplitude (px at the apex in a 640x480 frame, IOD 100 px), one-sided
# where FACS codes the AU per side.
CASES = [
    ("AU1", "both", 2.5), ("AU2", "right", 2.5), ("AU4", "both", 2.5), ("AU5", "left", 3.0),
    ("AU6", "both", 2.5), ("AU7", "right", 3.0), ("AU9", "both", 2.5), ("AU10", "left", 2.5),
    ("AU12", "left", 2.0), ("AU14", "right", 2.5), ("AU15", "left", 2.0), ("AU17", "both", 2.5),
    ("AU20", "right", 2.0),
]


@pytest.mark.parametrize("code,side,amplitude", CASES)
def test_single_micro_au_is_found_on_its_side(code, side, amplitude):
    res = detect_aus(synth_front((code,), side, amplitude), ONSET, APEX)
    present = {a.code: a for a in res.present_aus()}
    assert code in present, res.to_markdown()
    assert present[code].side == side, res.to_markdown()
    # the event's AU is the strongest finding, and at most one neighbour leaks in beside it
    assert res.present_aus()[0].code == code, res.to_markdown()
    assert len(present) <= 2, res.to_markdown()


def test_combination_and_emotion_rule():
    from mevqa.facs.emotions import emotion_candidates

    res = detect_aus(synth_front(("AU1", "AU2"), "both", 3.0), ONSET, APEX)
    codes = {a.code for a in res.present_aus()}
    assert {"AU1", "AU2"} <= codes
    assert emotion_candidates(res.present_aus())[0].fine == "surprise"


def test_neutral_pair_reports_nothing():
    front = synth_front()
    for onset, apex in ((ONSET, APEX), (2, 20)):
        res = detect_aus(front, onset, apex)
        assert res.present_aus() == [], res.to_markdown()
        assert max(a.score for a in res.aus) < 0.5


def test_head_drift_creates_no_aus():
    """A neutral face that translates 6 px, rolls 2 degrees and grows 3% between onset and apex."""
    from mevqa.motion.frontend import run_frontend
    from mevqa.testing.synth import SynthConfig, make_clip
    from mevqa.io.video import Clip

    clip, _ = make_clip(SynthConfig(fps=30.0, seconds=1.0, blinks=False, drift=False, noise=2.0, seed=11), events=[])
    frames = []
    h, w = clip.frames.shape[1:3]
    for i, f in enumerate(clip.frames):
        t = i / (len(clip.frames) - 1)
        m = cv2.getRotationMatrix2D((w / 2, h / 2), 2.0 * t, 1.0 + 0.03 * t)
        m[:, 2] += (6.0 * t, -3.0 * t)
        frames.append(cv2.warpAffine(f, m, (w, h), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT101))
    front = run_frontend(Clip(np.stack(frames), clip.fps, "drift.mp4"))
    res = detect_aus(front, 0, len(frames) - 1)
    assert res.present_aus() == [], res.to_markdown()


def test_to_dict_contract_and_flow():
    front = synth_front(("AU12",), "left", 2.0)
    res = detect_aus(front, ONSET, APEX)
    d = res.to_dict()
    assert list(d) == ["clip", "onset", "apex", "aus"]
    assert (d["onset"], d["apex"]) == (ONSET, APEX)
    assert [a["code"] for a in d["aus"]] == list(au.AU_CODES)
    for a in d["aus"]:
        assert list(a) == ["code", "name", "side", "intensity", "score", "present"]
        assert a["side"] in ("left", "right", "both")
        assert 0.0 <= a["score"] <= 1.0 and 0.0 <= a["intensity"] <= 1.0
        assert a["present"] == (a["score"] >= 0.5)
    au12 = next(a for a in d["aus"] if a["code"] == "AU12")
    assert au12["name"] == "lip corner puller" and au12["present"] and au12["side"] == "left"
    assert json.loads(json.dumps(d)) == d
    # the flow map comes with the result (aligned-crop pixels) but is not exported
    assert res.flow.shape == (*front.faces.gray.shape[1:], 2) and "flow" not in d
    md = res.to_markdown()
    assert "| AU12 | lip corner puller | yes | left |" in md
    assert res.present_aus()[0].intensity_letter in "ABCDE"


def test_frames_map_to_the_clip_and_bad_frames_fail():
    front = synth_front(("AU12",), "left", 2.0)
    with pytest.raises(AUError, match="before onset"):
        detect_aus(front, APEX, ONSET)
    with pytest.raises(AUError, match="outside the clip"):
        detect_aus(front, 0, 10_000)


def test_intensity_letters():
    assert [au.intensity_letter(x) for x in (0.0, 0.25, 0.5, 0.7, 1.0)] == list("ABCDE")


def test_clip_without_interval_raises_one_line_error():
    from mevqa.motion.frontend import run_frontend

    front = synth_front(drift=False)
    with pytest.raises(NoIntervalError) as e:
        detect_aus_clip(front.clip, front=front)
    assert "\n" not in str(e.value) and "--onset" in str(e.value)
    assert isinstance(e.value, ValueError)
    # with frames given, the same clip is analysed (and nothing is found)
    res = detect_aus_clip(front.clip, onset=2, apex=9, front=run_frontend(front.clip))
    assert res.present_aus() == []


def _toy_features(n=120, seed=0):
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, len(au.AUFeatures.names())))
    y = np.zeros((n, len(au.AU_CODES)))
    col = au.AUFeatures.names().index
    y[:, 0] = x[:, col("AU1_flow_max")] + 0.3 * rng.normal(size=n) > 0.5   # AU1 follows its own flow feature
    y[:, 8] = x[:, col("AU12_flow_max")] - 0.5 * x[:, col("AU12_geometry_max")] > 0  # AU12 a mix of its own
    return x, y


@pytest.mark.parametrize("suffix", [".npz", ".json"])
def test_linear_model_roundtrip_without_pickle(tmp_path, suffix):
    x, y = _toy_features()
    model = fit_linear(x, y)
    p = model.predict_proba(x)
    assert p.shape == y.shape
    assert ((p[:, 0] > 0.5) == y[:, 0]).mean() > 0.85
    assert ((p[:, 8] > 0.5) == y[:, 8]).mean() > 0.9
    assert np.allclose(p[:, 3], y[:, 3].mean() + 1e-3, atol=0.01)  # never present: base rate
    path = model.save(tmp_path / f"m{suffix}")
    if suffix == ".npz":
        with np.load(path, allow_pickle=False) as z:  # plain arrays only
            assert set(z.files) == {"codes", "feature_names", "mean", "scale", "weights", "bias"}
    loaded = LinearAUModel.load(path)
    assert loaded.codes == model.codes and loaded.feature_names == model.feature_names
    assert np.allclose(loaded.predict_proba(x), p)


def test_model_file_with_objects_is_refused(tmp_path):
    path = tmp_path / "evil.npz"
    np.savez(path, codes=np.array([{"x": 1}], dtype=object), feature_names=np.array(["a"]), mean=np.zeros(1),
             scale=np.ones(1), weights=np.zeros((1, 1)), bias=np.zeros(1))
    with pytest.raises(AUError):
        LinearAUModel.load(path)
    with pytest.raises(AUError, match="not found"):
        LinearAUModel.load(tmp_path / "missing.npz")


def test_model_path_in_config_drives_scores(tmp_path):
    front = synth_front(("AU12",), "left", 2.0)
    feats = au.au_features(front, ONSET, APEX)
    neutral = au.au_features(synth_front(), ONSET, APEX)
    labels = [["AU12"], []] * 4
    model = fit_linear([feats, neutral] * 4, labels, l2=0.1)
    path = model.save(tmp_path / "au.json")
    res = detect_aus(front, ONSET, APEX, config=AUConfig(model_path=str(path)))
    assert res["AU12"].present and res["AU12"].side == "left"
    assert not res["AU4"].present


@pytest.fixture(scope="module")
def real_laugh(real_clip):
    """11.5-13.5 s of the real video: the smile fades and comes back broad (mouthSmile about 0.25 at
    12.0 s, 0.7 at 12.8 s), as a person sees it."""
    from mevqa.io.video import Clip
    from mevqa.motion.frontend import run_frontend

    a = round(11.5 * real_clip.fps)
    return run_frontend(Clip(real_clip.frames[a:a + round(2 * real_clip.fps)].copy(), real_clip.fps, "laugh.mp4"))


def test_real_laughter_reads_lip_corner_puller_and_happiness(real_laugh):
    """Replaces a test that asserted AU4 + AU6 at the start of the crying half and a noise floor above
    the old synthetic thresholds: both encoded the old detector's behaviour, not what a person sees."""
    from mevqa.facs.emotions import emotion_candidates

    fps = real_laugh.clip.fps
    res = detect_aus(real_laugh, round(0.5 * fps), round(1.3 * fps))
    present = {a.code: a for a in res.present_aus()}
    assert "AU12" in present and present["AU12"].side == "both", res.to_markdown()
    top = emotion_candidates([(a.code, a.side, a.score) for a in res.present_aus()])[0]
    assert top.coarse == "positive", (top, res.to_markdown())


def test_occluded_region_withholds_its_aus(real_laugh):
    fps = real_laugh.clip.fps
    on, ap = round(0.5 * fps), round(1.3 * fps)
    res = detect_aus(real_laugh, on, ap, occluded=("mouth",))
    assert not res["AU12"].present and res["AU12"].withheld == "mouth occluded"
    assert res.withheld["AU25"] == "mouth occluded" and "AU1" not in res.withheld
    # the front end's own reports (clip frames or seconds) are read the same way
    assert au.occluded_aus(real_laugh, on, ap, regions=()) == {}

    class Front:  # a front end that reports stretches rather than masks
        clip, occlusion = real_laugh.clip, None
        occlusions = [{"region": "mouth", "t_start": 0.0, "t_end": 0.8}, {"region": "eyes", "start": 40, "end": 45}]
    why = au.occluded_aus(Front, on, ap)
    assert why["AU12"].startswith("mouth occluded 0.0-0.8 s") and "AU43" not in why


def test_hand_over_mouth_is_withheld_from_the_real_video(real_clip):
    """3-9 s of the real video: a hand covers the mouth; the front end sees it and the mouth's AUs are
    withheld with the reason, the eyes' are still read."""
    from mevqa.io.video import Clip
    from mevqa.motion.frontend import run_frontend

    a = round(5.0 * real_clip.fps)
    front = run_frontend(Clip(real_clip.frames[a:a + round(2 * real_clip.fps)].copy(), real_clip.fps, "hand.mp4"))
    res = detect_aus(front, 2, round(1.2 * real_clip.fps))
    assert res["AU12"].withheld.startswith("mouth occluded") and not res["AU12"].present, res.to_markdown()
    assert not res["AU1"].withheld


def test_mirrored_clip_swaps_the_side():
    """Metamorphic: the same one-sided action, mirrored, is read on the other side."""
    from mevqa.io.video import Clip
    from mevqa.motion.frontend import run_frontend

    front = synth_front(("AU12",), "left", 2.0)
    clip = front.clip
    mirrored = run_frontend(Clip(np.ascontiguousarray(clip.frames[:, :, ::-1]), clip.fps, "mirrored.mp4"))
    a, b = detect_aus(front, ONSET, APEX)["AU12"], detect_aus(mirrored, ONSET, APEX)["AU12"]
    assert a.present and b.present and (a.side, b.side) == ("left", "right")


def _feats(**flow_by_code):
    """AUFeatures with flow evidence (IOD, (right, left)) only where given, blendshape states at zero."""
    codes = au.AU_CODES
    flow = np.zeros((len(codes), 2))
    for code, v in flow_by_code.items():
        flow[codes.index(code)] = v
    zeros = np.zeros((len(codes), 2))
    return au.AUFeatures(codes, flow, zeros.copy(), blend=zeros.copy(), state=zeros.copy(), grown=zeros.copy(),
                         noise=0.0005, held=zeros.copy())


def test_antagonists_on_one_side_the_stronger_wins():
    """FACS: AU12 (corner up) and AU15 (corner down) cannot act on one corner at once, nor AU5 and AU43 on one
    lid; where both clear their thresholds the stronger is kept and the other says whom it yielded to."""
    feats = _feats(AU12=(0.015, 0.015), AU15=(0.0, 0.008), AU5=(0.008, 0.0), AU43=(0.015, 0.0))
    got = {a.code: a for a in au.decide_aus(feats)}
    assert got["AU12"].present and got["AU43"].present
    assert not got["AU15"].present and "yields to AU12" in got["AU15"].source
    assert not got["AU5"].present and "yields to AU43" in got["AU5"].source
    # the macro scale decides first: a corner the blendshape model sees smiling and not frowning
    codes = au.AU_CODES
    feats = _feats(AU12=(0.006, 0.006), AU15=(0.02, 0.02))
    feats.state[codes.index("AU12")] = 0.85
    feats.grown[codes.index("AU12")] = 0.3
    got = {a.code: a for a in au.decide_aus(feats)}
    assert got["AU12"].present and not got["AU15"].present, [(a.code, a.source) for a in got.values()]


def test_a_held_action_counts_only_above_the_resting_level():
    codes = au.AU_CODES
    k = codes.index("AU12")
    feats = _feats(AU12=(0.0, 0.02))  # the left corner moved
    feats.state[k] = 0.9                # the model scores a smile through the interval...
    feats.raised = np.zeros((len(codes), 2))  # ...that is the face's resting level: not an action
    assert {a.code: a for a in au.decide_aus(feats)}["AU12"].side == "left"
    feats = _feats()
    feats.state[k] = 0.9
    feats.raised = np.zeros((len(codes), 2))
    assert not {a.code: a for a in au.decide_aus(feats)}["AU12"].present
    feats.raised[k] = 0.5               # 0.5 above the resting level, whether or not it grew since the onset
    got = {a.code: a for a in au.decide_aus(feats)}["AU12"]
    assert got.present and got.side == "both" and got.source == "blendshape state", got


def test_a_side_is_reported_only_with_a_margin():
    """A one-sided AU needs the weaker side under its own threshold (FACS: an action on both halves is
    bilateral, however asymmetric) and below half the stronger, and the difference itself above
    ``side_margin`` thresholds (1); an action barely over its threshold on one side and under it on the
    other is "both", whichever side the noise favoured."""
    t = au.AUConfig().flow_floor
    feats = _feats(AU12=(0.0, 3 * t))   # left only, clearly
    assert {a.code: a for a in au.decide_aus(feats)}["AU12"].side == "left"
    feats = _feats(AU12=(0.6 * t, 1.05 * t))   # ratio 0.57: both
    assert {a.code: a for a in au.decide_aus(feats)}["AU12"].side == "both"
    feats = _feats(AU12=(0.4 * t, 1.3 * t))   # ratio 0.31, but only 0.9 thresholds apart: both
    assert {a.code: a for a in au.decide_aus(feats)}["AU12"].side == "both"
    feats = _feats(AU12=(0.4 * t, 1.5 * t))   # 1.1 thresholds apart: left
    assert {a.code: a for a in au.decide_aus(feats)}["AU12"].side == "left"
    feats = _feats(AU12=(1.3 * t, 3.8 * t))   # ratio 0.34, but the right corner clears its threshold too
    assert {a.code: a for a in au.decide_aus(feats)}["AU12"].side == "both"


def test_lips_held_apart_are_au25():
    """FACS scores AU25 on the lips being apart: lips held apart through the interval (above the clip's resting
    gap) are read, although they part no further between onset and apex; a face at rest is not."""
    feats = _feats()
    assert not {a.code: a for a in au.decide_aus(feats)}["AU25"].present
    feats.lips_apart = 0.2              # IOD above the resting gap, from onset to apex
    got = {a.code: a for a in au.decide_aus(feats)}["AU25"]
    assert got.present and got.source == "lips held apart" and got.side == "both", got
