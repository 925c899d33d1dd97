"""The ROI-flow spotter on synthetic clips with exact ground truth (mevqa.testing.synth), plus its pure parts."""
import json

import numpy as np
import pytest

from mevqa.motion.frontend import run_frontend
from mevqa.megc.metrics import iou
from mevqa.motion.filters import local_baseline, lowpass
from mevqa.spot.config import SpotConfig
from mevqa.spot.signals import detect_blinks
from mevqa.spot.spotter import SpotResult, spot, spot_clip
from mevqa.testing.synth import SynthConfig, SynthEvent, demo_events, face_setup, make_clip


def _spot(cfg: SynthConfig, events, blinks=None):
    clip, gt = make_clip(cfg, events=events, blinks=blinks)
    return spot_clip(clip), gt


def _best(res: SpotResult, event: dict):
    """The spotted interval that best overlaps a ground-truth event, and the IoU."""
    scored = [(iou((iv.onset, iv.offset), (event["onset"], event["offset"])), iv) for iv in res.intervals]
    return max(scored, key=lambda s: s[0], default=(0.0, None))


# -- whole clips ----------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def micro_result():
    """A one-sided (left) lip-corner micro-expression with head drift and sensor noise."""
    cfg = SynthConfig(fps=30.0, seconds=3.0, blinks=False, drift=True, noise=2.0, seed=11)
    return _spot(cfg, [SynthEvent(40, 45, 51, "micro", ("AU12",), "left", 2.5)])


def test_micro_expression_is_found_as_micro(micro_result):
    res, gt = micro_result
    score, iv = _best(res, gt["events"][0])
    assert score >= 0.5 and iv.kind == "micro"
    assert len(res.intervals) == 1
    assert iv.onset <= iv.apex <= iv.offset
    # The subject's own left mouth corner carries it, not the right one.
    assert next(iter(iv.rois)) in ("left_mouth_corner", "left_cheek")
    assert iv.rois.get("left_mouth_corner", 0) > iv.rois.get("right_mouth_corner", 0)


def test_macro_expression_is_found_as_macro():
    cfg = SynthConfig(fps=30.0, seconds=4.0, blinks=False, drift=True, noise=2.0, seed=12)
    res, gt = _spot(cfg, [SynthEvent(30, 55, 84, "macro", ("AU6", "AU12"), "both", 6.0)])
    score, iv = _best(res, gt["events"][0])
    assert score >= 0.5 and iv.kind == "macro"
    assert len(res.intervals) == 1


def test_blinks_alone_yield_nothing():
    cfg = SynthConfig(fps=30.0, seconds=4.0, n_events=0, drift=True, noise=2.0, seed=13)
    res, gt = _spot(cfg, [], blinks=[(20, 26), (70, 78), (100, 105)])
    assert res.intervals == []
    # ...because they were seen as blinks (one span per blink, overlapping it).
    assert len(res.blinks) == 3
    for (a, b), g in zip(res.blinks, gt["blinks"]):
        assert a <= g["offset"] and b >= g["onset"]


def test_expression_during_a_blink_survives():
    cfg = SynthConfig(fps=30.0, seconds=3.0, drift=True, noise=2.0, seed=14)
    res, gt = _spot(cfg, [SynthEvent(40, 45, 52, "micro", ("AU1", "AU2"), "both", 2.5)], blinks=[(43, 49)])
    score, iv = _best(res, gt["events"][0])
    assert score >= 0.5 and iv.kind == "micro"
    assert any("brow" in r for r in iv.rois)


def test_micro_expression_inside_a_smile_is_its_own_interval():
    """The demo's script: a contempt micro, then a smile hiding a brief brow lowering."""
    cfg = SynthConfig(fps=30.0, seconds=4.0, drift=True, noise=1.5, flicker=0.005, seed=2025)
    res, gt = _spot(cfg, demo_events(), blinks=[(18, 24)])
    assert len(res.intervals) == 3
    for e in gt["events"]:
        score, iv = _best(res, e)
        assert score >= 0.5 and iv.kind == e["kind"], (e, iv)
    brief = _best(res, gt["events"][2])[1]
    assert all("brow" in r or "upper_lid" in r for r in brief.rois)


def test_neutral_clip_with_drift_and_noise_yields_nothing():
    cfg = SynthConfig(fps=30.0, seconds=4.0, n_events=0, blinks=False, drift=True, noise=3.0, flicker=0.02, seed=15)
    res, _ = _spot(cfg, [])
    assert res.intervals == []
    assert np.all(res.combined < res.threshold)


@pytest.mark.parametrize("fps,event", [
    (30.0, SynthEvent(0, 20, 44, "macro", ("AU12",), "both", 5.0)),
    (200.0, SynthEvent(0, 35, 79, "micro", ("AU4",), "both", 2.5)),
])
def test_clip_that_is_one_expression_yields_it(fps, event):
    """Dataset clips start at the onset and end near the offset: no valley before or after."""
    cfg = SynthConfig(fps=fps, seconds=(event.offset + 1) / fps, blinks=False, drift=True, noise=2.0, seed=16)
    res, gt = _spot(cfg, [event])
    score, iv = _best(res, gt["events"][0])
    assert score >= 0.5 and iv.kind == event.kind
    assert iv.onset <= 0.1 * fps  # within 0.1 s of the first frame


def test_same_event_at_30_and_200_fps():
    """Time constants are seconds: the same 0.3 s event at both rates, reported in each clip's frames."""
    found = []
    for fps in (30.0, 200.0):
        on, apex, off = (round(t * fps) for t in (1.0, 1.15, 1.3))
        cfg = SynthConfig(fps=fps, seconds=2.0, blinks=False, drift=True, noise=2.0, seed=17)
        res, gt = _spot(cfg, [SynthEvent(on, apex, off, "micro", ("AU14",), "right", 2.5)])
        score, iv = _best(res, gt["events"][0])
        assert score >= 0.5 and iv.kind == "micro", (fps, score, iv)
        assert res.n_frames == round(2.0 * fps) and res.fps == fps
        found.append(((iv.onset + iv.offset) / 2 / fps, iv.apex / fps))
    (mid30, apex30), (mid200, apex200) = found
    assert abs(mid30 - mid200) < 0.07 and abs(apex30 - apex200) < 0.07


def test_long_clip_with_drift_uses_sliding_references():
    """A clip longer than a window: the second event sits in a later window; drift builds no false rise."""
    cfg = SynthConfig(fps=30.0, seconds=9.0, blinks=False, drift=True, noise=2.0, seed=18)
    events = [SynthEvent(45, 50, 56, "micro", ("AU12",), "both", 2.5),
              SynthEvent(225, 231, 238, "micro", ("AU4",), "both", 3.0)]
    res, gt = _spot(cfg, events)
    assert len(res.intervals) == 2
    for e in gt["events"]:
        score, iv = _best(res, e)
        assert score >= 0.5 and iv.kind == "micro"


# -- the result object ----------------------------------------------------------------------------
def test_to_dict_matches_the_cli_contract(micro_result, tmp_path):
    res, _ = micro_result
    d = json.loads(res.to_json())
    assert set(d) == {"clip", "fps", "n_frames", "intervals"}
    assert d["fps"] == 30.0 and d["n_frames"] == 90 and isinstance(d["clip"], str)
    for iv in d["intervals"]:
        assert {"onset", "apex", "offset", "kind", "score"} <= set(iv)
        assert all(isinstance(iv[k], int) for k in ("onset", "apex", "offset"))
        assert 0 <= iv["onset"] <= iv["apex"] <= iv["offset"] < d["n_frames"]
        assert iv["kind"] in ("micro", "macro") and iv["score"] >= 1.0
    assert len(res.times) == len(res.combined) == len(res.threshold)
    assert all(len(s) == len(res.times) for s in res.signals.values())
    fig = res.plot()
    fig.savefig(tmp_path / "spot.png")
    assert (tmp_path / "spot.png").stat().st_size > 1000
    assert fig.axes[0].get_xlabel() == "time (s)"


def test_spot_reuses_a_front_end_and_reports_progress():
    clip, _ = make_clip(SynthConfig(fps=30.0, seconds=1.0, n_events=0, blinks=False, seed=19), events=[])
    calls = []
    res = spot(run_frontend(clip), progress=lambda done, total: calls.append((done, total)))
    assert calls and calls[-1] == (30, 30)
    assert res.intervals == []


def test_config_rejects_nonsense():
    with pytest.raises(ValueError, match="lag_seconds"):
        SpotConfig(lag_seconds=0.0)
    with pytest.raises(ValueError, match="unknown ROI"):
        SpotConfig(rois=("forehead_tattoo",))


# -- pure parts -----------------------------------------------------------------------------------
def test_head_motion_model_recovers_similarity_despite_outliers():
    """The spotter removes head motion with the one model of mevqa.motion.head (robust similarity)."""
    from mevqa.motion.head import fit_head_motion, head_displacement

    rng = np.random.default_rng(0)
    xy = rng.uniform(-60, 60, (19, 2))
    a, b, tx, ty = 0.01, -0.02, 0.7, -0.3  # 1% scale, about 1 degree of roll, a shift
    uv = np.stack([a * xy[:, 0] - b * xy[:, 1] + tx, b * xy[:, 0] + a * xy[:, 1] + ty], axis=1)
    moved = uv.copy()
    moved[:3] += (2.0, -1.5)  # three landmarks an expression moved
    m = fit_head_motion(xy, xy + moved)
    assert np.allclose(head_displacement(m, xy), uv, atol=1e-3)


def test_lowpass_cutoff_is_in_seconds_not_frames():
    """A 0.25 s bump keeps the same height after the 2 Hz low-pass at 30 and at 200 fps."""
    peaks = []
    for fps in (30.0, 200.0):
        t = np.arange(round(3 * fps)) / fps
        x = np.where(np.abs(t - 1.5) < 0.125, 1.0, 0.0)
        peaks.append(lowpass(x, fps, 2.0).max())
    assert 0.5 < peaks[0] < 0.95 and abs(peaks[0] - peaks[1]) < 0.05


def test_local_threshold_ignores_what_happens_far_away():
    """The noise floor is local: appending 20 s of much noisier signal leaves the first seconds' alone."""
    from mevqa.spot.intervals import local_threshold

    rng = np.random.default_rng(3)
    quiet = 1.0 + 0.05 * rng.normal(size=(5, 150))
    loud = 1.0 + 0.5 * rng.normal(size=(5, 600))
    kw = dict(cutoff_hz=5.0, seconds=2.0, k=6.0, floor=0.0)
    alone = local_threshold(quiet, 30.0, **kw)
    joined = local_threshold(np.concatenate([quiet, loud], axis=1), 30.0, **kw)
    assert np.allclose(alone[:90], joined[:90], rtol=0.05)
    assert joined[-300:].min() > 5 * alone.max()


def test_an_event_reads_the_same_in_an_excerpt():
    """Clip independence: an expression spotted in a 6 s clip and in a 3 s excerpt around it gets the same
    interval (in seconds), a peak and a threshold within 25%."""
    cfg = SynthConfig(fps=30.0, seconds=6.0, blinks=False, drift=True, noise=2.0, seed=21)
    clip, gt = make_clip(cfg, events=[SynthEvent(120, 126, 134, "micro", ("AU4",), "both", 3.0)])
    full = spot_clip(clip)
    part = spot_clip(type(clip)(clip.frames[75:165].copy(), clip.fps, "excerpt.mp4"))
    (a,), (b,) = full.intervals, part.intervals
    assert abs(a.onset - (b.onset + 75)) <= 3 and abs(a.offset - (b.offset + 75)) <= 3
    pa, pb = full.combined[a.apex], part.combined[b.apex]
    ta, tb = full.threshold[a.apex], part.threshold[b.apex]
    assert abs(pa - pb) <= 0.25 * pa and abs(ta - tb) <= 0.25 * ta


def test_local_baseline_stays_within_a_segment():
    x = np.array([[5, 4, 3, 9, 1, 1, 8, 7]], float)
    seg = np.array([0, 0, 0, 0, 1, 1, 1, 1])
    out = local_baseline(x, 2, segments=seg)
    assert out[0].tolist() == [3, 3, 3, 3, 1, 1, 1, 1]


def _lids(n, setup, *, upper=(), lower=(), eyes=("right", "left"), close=0.8):
    """A still face's landmarks for n frames, with the upper (or lower) lids closed in some frames."""
    from mevqa.spot.config import _LIDS

    lm = np.repeat(setup.landmarks[None].astype(float), n, axis=0)
    for side in eyes:
        pairs, _ = _LIDS[side]
        for i, j in pairs:
            gap = lm[0, j, 1] - lm[0, i, 1]
            for t in upper:
                lm[t, i, 1] += close * gap
            for t in lower:
                lm[t, j, 1] -= close * gap
    return lm


def test_blinks_are_both_upper_lids_falling():
    setup = face_setup()
    blink = range(30, 36)
    assert detect_blinks(_lids(90, setup, upper=blink), 30.0) == [(30, 35)]
    assert detect_blinks(_lids(90, setup, upper=blink, eyes=("left",)), 30.0) == []  # a wink
    assert detect_blinks(_lids(90, setup, lower=blink), 30.0) == []  # a lid tightener
    assert detect_blinks(_lids(90, setup, upper=range(30, 60)), 30.0) == []  # eyes closed for 1 s


def test_a_brief_peak_on_the_slope_of_a_stronger_expression_is_its_shoulder():
    from mevqa.spot.intervals import Segment, drop_shoulders

    long_ = Segment(100.0, 130, 160.0, score=6.0)
    shoulder = Segment(163.0, 166, 170.0, score=1.5)       # 3 frames after it, 7 long, weaker
    inside = Segment(120.0, 124, 128.0, score=2.5)         # wholly inside: combine() kept it on purpose
    apart = Segment(200.0, 204, 208.0, score=1.5)          # a micro-expression of its own, 40 frames away
    stronger = Segment(60.0, 64, 70.0, score=9.0)          # brief but stronger than its neighbour
    neighbour = Segment(72.0, 80, 95.0, score=3.0)
    kept = drop_shoulders([long_, shoulder, inside, apart, stronger, neighbour], max_len=15, max_gap=9)
    assert shoulder not in kept
    assert all(s in kept for s in (long_, inside, apart, stronger, neighbour))
    assert drop_shoulders([long_, shoulder], max_len=15, max_gap=2) == [long_, shoulder]  # too far for this gap
