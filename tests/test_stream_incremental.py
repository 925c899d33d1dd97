"""The live cut pays only for its new frames (issue 15) and reports what the uncached path reports."""
from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

import cv2
import numpy as np
import pytest

from mevqa.io.stream import iter_frames, probe

VIDEO = Path(__file__).parent / "data" / "pexels_woman_emotions.mp4"


@pytest.fixture(scope="module")
def aligned():
    """8 s of the real video, tracked and aligned once (as the live cut does)."""
    from mevqa.motion.stream import stream_frontend

    fps = probe(VIDEO).fps
    return list(stream_frontend(iter_frames(VIDEO, max_seconds=8.0), fps)), fps


def test_roi_motion_from_the_pair_cache_equals_measuring_every_pair(aligned):
    """Overlapping windows of one stream: the cached motion is bit for bit the uncached one, and a window
    one hop on measures only its new pairs (its new frames, its last lag frames against its new last
    frame, none of the old ones)."""
    from mevqa.motion.stream import PairCache, window_frontend
    from mevqa.spot.config import SpotConfig
    from mevqa.spot.signals import roi_motion

    frames, fps = aligned
    from mevqa.evidence.stream import LIVE_TAIL_STEP_SECONDS

    cfg = SpotConfig(tail_step_seconds=LIVE_TAIL_STEP_SECONDS)  # as the live cut measures
    lag = round(cfg.lag_seconds * fps)
    # the last lag frames' flows to the last frame: every stride-th (signals.roi_motion)
    tail = len(range(lag - 1, 0, -max(1, round(cfg.tail_step_seconds * fps))))
    assert tail < lag - 1
    hop = 24
    last = 0
    with PairCache() as cache:
        for k, start in enumerate((0, 0, hop)):  # the same start twice (a window that keeps its start), then on
            chunk = frames[start:start + 140 + k * hop]
            grown, last = start + len(chunk) - last, start + len(chunk)
            front = window_frontend(chunk, fps)
            args = (front.faces.gray, front.faces.landmarks, fps)
            plain = roi_motion(*args, config=cfg, iod=front.interocular_px)
            before = cache.misses
            cache.bind([f.number for f in chunk])
            cached = roi_motion(*args, config=cfg, iod=front.interocular_px, cache=cache)
            assert all(np.array_equal(a, b) for a, b in zip(plain, cached))
            new = cache.misses - before
            if k == 0:
                assert new == len(chunk) - 1 + tail  # every pair once
            elif k == 1:  # hop new frames, the tail's pairs to the new last frame
                assert new == hop + tail and cache.hits > 0
            else:  # a new first frame: its lag pairs are measured again too
                assert new <= grown + 2 * lag
        # a window of another length than the one bound is measured without the cache
        assert all(np.array_equal(a, b) for a, b in zip(plain, roi_motion(*args, config=cfg, iod=front.interocular_px,
                                                                           cache=cache)))


def test_spot_window_equals_spot(aligned):
    from mevqa.motion.stream import PairCache, window_frontend
    from mevqa.spot.incremental import spot_window
    from mevqa.spot.spotter import spot

    frames, fps = aligned
    with PairCache() as cache:
        for start, end in ((0, 150), (24, 174), (24, 190)):
            chunk = frames[start:end]
            a = spot(window_frontend(chunk, fps))
            b = spot_window(window_frontend(chunk, fps), [f.number for f in chunk], cache)
            assert a.to_dict() == b.to_dict() and np.array_equal(a.combined, b.combined)
        with pytest.raises(ValueError):
            spot_window(window_frontend(chunk, fps), [0, 1], cache)


def test_live_cut_reports_the_same_events_with_and_without_the_cache():
    """The incremental live cut (cached motion, AUs read only for the intervals it reports) against the
    whole evidence of every window: the same events, field for field, from the same windows."""
    from mevqa.evidence.stream import spot_stream

    seen: list = [[], []]
    runs = [spot_stream(VIDEO, window_seconds=6.0, hop_seconds=1.0, max_seconds=7.0, incremental=inc,
                        on_window=lambda spans, last, k=k: seen[k].append((last, spans)))
            for k, inc in enumerate((True, False))]
    assert runs[0].windows == runs[1].windows
    got = [[{k: v for k, v in vars(iv).items()} for iv in r.intervals] for r in runs]
    assert got[0] == got[1] and len(got[0]) >= 1
    # on_window: every window once, in order, with its spotted spans (source frames); each event reported
    # is one of them, from a window whose last frame lies past its offset
    assert len(seen[0]) == runs[0].windows and seen[0] == seen[1]
    lasts = [last for last, _ in seen[0]]
    assert lasts == sorted(lasts) and lasts[-1] == runs[0].n_frames - 1
    for iv in runs[0].intervals:
        assert any((iv.onset, iv.offset) in spans and iv.offset < last for last, spans in seen[0])


def test_live_windows_keep_their_start_and_wake_early():
    """A window's first frame moves at most every ``slack`` frames and never later than it must; a window
    is cut early when asked (wake), else every hop."""
    from mevqa.evidence.stream import _live_windows, _Wake

    frames = [SimpleNamespace(number=i) for i in range(300)]
    starts, ends, settled = [], [], 0
    for chunk, last in _live_windows(iter(frames), 40, 10, 3, 30, slack=20):
        nums = [f.number for f in chunk]
        assert nums[0] <= max(0, min(nums[-1] + 1 - 40, settled - 30))  # reaches back as far as it must
        starts.append(nums[0])
        ends.append(nums[-1])
        settled = nums[-1] + 1 - 3
    moves = [b for a, b in zip(starts, starts[1:]) if b != a]
    assert len(moves) < len(starts) / 2 and all(b - a <= 20 + 10 for a, b in zip(starts, starts[1:]))
    assert all(b - a == 10 for a, b in zip(ends[:-1], ends[1:-1]))

    wake = _Wake()
    ends = []
    for chunk, _ in _live_windows(iter(frames[:100]), 40, 10, 3, 30, wake=wake):
        ends.append(chunk[-1].number)
        if len(ends) == 2:
            wake.frames = 4  # the reader wants the next window 4 frames on
    assert ends[2] - ends[1] == 4 and ends[3] - ends[2] == 10


def test_watch_realtime_prints_events_while_playing():
    """`mevqa watch FILE --realtime`: lines come while the file plays, each with its report delay."""
    import io
    import time

    from mevqa.apps.watch import watch

    class Timed(io.StringIO):
        def __init__(self):
            super().__init__()
            self.at = []

        def write(self, s):
            self.at.append(time.perf_counter())
            return super().write(s)

    out = Timed()
    t0 = time.perf_counter()
    summary = watch(str(VIDEO), realtime=True, max_seconds=7.0, out=out)
    end = time.perf_counter()
    lines = out.getvalue().splitlines()
    assert summary["events"] == len(lines) >= 1 and "delay_median_s" in summary
    assert all("reported" in line and "after its offset" in line for line in lines)
    assert out.at[0] < end - 0.5 and summary["wall_seconds"] >= 7.0 - 0.5 and out.at[0] > t0


def test_a_live_window_takes_no_interval_from_its_first_lag_frames_unless_it_starts_the_stream():
    """There the spotter measures against the window's first frame: a window cut in the middle of an
    expression would report its return to neutral as one of its own."""
    from mevqa.evidence.stream import LAG_SECONDS, _cut_start

    fps = 24.0
    assert _cut_start(np.arange(0, 150), 0, fps) == 0
    assert _cut_start(np.arange(40, 190), 0, fps) == round(LAG_SECONDS * fps)
    assert _cut_start(np.arange(80, 230, 2), 80, fps / 2) == 0  # a stream whose first analysed frame is 80


def test_window_occlusion_from_per_frame_ratios_equals_measuring_the_window(aligned):
    """A stream frame's gradient ratios and grayscale crop are measured once and reused by every window
    that holds it: the window's occlusion masks are exactly those measured on its crops from scratch,
    also for a window that starts later (its edges differ, its frames were measured before)."""
    from mevqa.face.occlusion import detect_occlusions
    from mevqa.motion.stream import window_frontend

    frames, fps = aligned
    for chunk in (frames[:150], frames[60:190]):
        front = window_frontend(chunk, fps)
        assert front.occlusion_ratios is not None and set(front.occlusion_ratios) == set(front.occlusion)
        fresh = np.stack([cv2.cvtColor(f.crop, cv2.COLOR_RGB2GRAY) for f in chunk])
        assert np.array_equal(front.faces.gray, fresh)
        plain = detect_occlusions(fresh, front.faces.landmarks, fps, config=front.config.occlusion)
        assert all(np.array_equal(plain[k], front.occlusion[k]) for k in plain)


def test_blendshape_rows_keep_the_per_frame_reading_with_lost_frames(aligned):
    """All frames' AU blendshape scores at once read as one frame at a time: the mean of a frame and its
    neighbours that exist, the highest of a side's blendshapes, a lost (NaN) one never winning."""
    import warnings

    from mevqa.au.features import AU_CODES, BLENDSHAPE_AUS, _blendshape_rows
    from mevqa.motion.stream import window_frontend

    frames, fps = aligned
    track = window_frontend(frames[:60], fps).track
    track.blendshapes = track.blendshapes.copy()
    track.blendshapes[[0, 7, 8, 9, 59]] = np.nan   # lost frames, at both ends too
    track.blendshapes[20, 3] = np.nan              # one score missing
    col = {n: j for j, n in enumerate(track.blendshape_names)}

    def one(i):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)
            row = np.nanmean(track.blendshapes[max(0, i - 1):i + 2], axis=0)
        out = np.full((len(AU_CODES), 2), np.nan)
        for k, code in enumerate(AU_CODES):
            if code in BLENDSHAPE_AUS:
                out[k] = [max(row[col[n]] for n in names) for names in BLENDSHAPE_AUS[code]]
        return out

    rows = _blendshape_rows(track, range(60))
    assert np.isnan(rows[8]).all() and np.isfinite(rows[10][[k for k, c in enumerate(AU_CODES) if c in BLENDSHAPE_AUS]]).all()
    assert all(np.array_equal(rows[i], one(i), equal_nan=True) for i in range(60))


def test_resting_level_comes_from_the_rest_rows_when_given(aligned):
    """An AU's resting level (the blendshape score it must be held above) is the 5th percentile of the
    rows it is read from: the window's own, or the stream's last minute where the window passes them."""
    from mevqa.au.features import _baseline
    from mevqa.motion.stream import window_frontend

    frames, fps = aligned
    track = window_frontend(frames[:60], fps).track
    own = _baseline(track)
    assert np.array_equal(_baseline(track, track.blendshapes), own, equal_nan=True)
    quiet = np.zeros_like(track.blendshapes)
    rest = _baseline(track, quiet)
    read = np.isfinite(own)
    assert read.any() and np.all(rest[read] == 0) and np.isnan(rest[~read]).all()


def test_stream_windows_read_the_resting_level_from_the_last_rest_seconds(monkeypatch):
    """Each window gets the blendshapes of the stream's last REST_SECONDS (bounded, the newest frame
    last), not only its own frames (2 s windows here, a 5 s rest)."""
    import mevqa.evidence.stream as st

    got = []
    real = st.window_frontend

    def spy(chunk, fps, **kw):
        got.append((len(chunk), chunk[-1].blendshapes, kw["rest_blendshapes"], fps))
        return real(chunk, fps, **kw)

    monkeypatch.setattr(st, "window_frontend", spy)
    monkeypatch.setattr(st, "REST_SECONDS", 5.0)
    st.spot_stream(VIDEO, window_seconds=2.0, overlap_seconds=0.5, max_seconds=8.0)
    assert len(got) >= 4
    for n, newest, rest, fps in got:
        assert len(rest) <= round(5.0 * fps) and np.array_equal(rest[-1], newest, equal_nan=True)
    assert max(len(r) for _, _, r, _ in got) == round(5.0 * got[0][3])  # the rest outgrows a 2 s window
    assert max(len(r) - n for n, _, r, _ in got) > 0
