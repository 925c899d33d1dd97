"""The webcam tab's machinery without a browser: frames handed over one at a time, at a camera's pace,
are spotted live by `mevqa watch`'s code path (spot_stream on the feed's stream URL)."""
from __future__ import annotations

import time
import urllib.error
import urllib.request

import numpy as np
import pytest

from mevqa.apps.live_frames import FrameFeed, LiveRun, fit_frame
from mevqa.io.stream import iter_frames

pytest.importorskip("gradio")


def test_feed_is_private_and_paced():
    feed = FrameFeed(fps=10.0, idle_seconds=0.5)
    try:
        wrong = feed.url.rsplit("/", 1)[0] + "/guess.mjpg"
        with pytest.raises(urllib.error.HTTPError):
            urllib.request.urlopen(wrong, timeout=5)
        frame = np.zeros((480, 1280, 3), np.uint8)
        for _ in range(3):  # three frames, then nothing: the stream ticks at 10 fps until idle
            feed.put(frame)
        ticks = list(feed._ticks())
        assert 4 <= len(ticks) <= 8, len(ticks)  # 0.5 s of idle at 10 fps, give or take the start
        assert fit_frame(frame).shape == (240, 640, 3)
    finally:
        feed.close()


def test_live_run_reports_events_as_they_come(real_video):
    """Seconds 8-16 of the real video (crying, then laughing) at 12 fps, paced as a camera would send
    them: expressions are reported while frames still arrive, the laugh among them; the run ends once
    frames stop."""
    from mevqa.apps.live_tab import event_rows, live_status

    run = LiveRun(fps=12.0, idle_seconds=1.5)
    first_report = None
    t0 = time.perf_counter()
    for n, frame in iter_frames(real_video, step=2, start=8 * 24):
        if n >= 16 * 24:
            break
        wait = t0 + (n - 8 * 24) / 24 - time.perf_counter()
        if wait > 0:
            time.sleep(wait)
        run.put(frame)
        if first_report is None and run.events:
            first_report = time.perf_counter() - t0
    run.thread.join(timeout=30)
    assert not run.alive and run.error is None, run.error
    assert 90 <= run.received <= 96 and run.windows >= 5
    assert first_report is not None and first_report < 8.0, "nothing was reported while the camera ran"
    rows = event_rows(run)
    assert rows and any("AU12" in r[3] for r in rows), rows  # the laugh (lip corner puller)
    assert all(0 <= float(r[1].split("-")[0]) < 8.5 for r in rows)  # times since the camera started
    assert "Stopped" in live_status(run) and f"{len(rows)} expression(s)" in live_status(run)


def test_webcams_at_once_are_bounded():
    """More webcams than the server analyses at once get a notice, not another analysis thread."""
    from mevqa.apps import live_tab

    frame = np.zeros((120, 160, 3), np.uint8)
    states = [live_tab.LiveState() for _ in range(live_tab.MAX_LIVE_RUNS + 1)]
    try:
        assert all(st.put(frame) for st in states)  # each starts (or tries to start) a run
        assert [st.busy for st in states] == [False] * live_tab.MAX_LIVE_RUNS + [True]
        assert states[-1].run is None
    finally:
        for st in states:
            if st.run is not None:
                st.run.stop()
                st.run.thread.join(timeout=20)
    assert not any(st.run.alive for st in states[:-1])
    # a black picture: the run ends with one line, no traceback
    assert "no face" in live_tab.live_status(states[0].run) or "stopped" in live_tab.live_status(states[0].run).lower()
