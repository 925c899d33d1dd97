"""The app's long-video views without a browser: upload checks, the streamed analysis and its cancel, the
timeline, an event's keyframes, and answers that are those of `mevqa ask` on a long video.

"Long" videos here are a few seconds of the real video repeated (a 10-minute video takes the same path,
only longer); windows are shortened so that several are analysed within seconds.
"""
from __future__ import annotations

import threading
import time
from pathlib import Path

import numpy as np
import pytest

from mevqa.apps import long_view as lv
from mevqa.apps.uploads import AnalysisCancelled, UploadError
from mevqa.io.video import write_clip

pytest.importorskip("gradio")
DEMO = Path(__file__).parents[1] / "mevqa" / "assets" / "demo.mp4"


@pytest.fixture(scope="module")
def repeated_mp4(real_clip, tmp_path_factory) -> Path:
    """Seconds 10-13 of the real video (laughing), three times: a 9 s video."""
    part = real_clip.frames[240:312]
    return write_clip(np.concatenate([part] * 3), tmp_path_factory.mktemp("long") / "repeated.mp4", fps=real_clip.fps)


@pytest.fixture(scope="module")
def demo_result():
    """The demo video streamed as the tab streams it, and a session holding it."""
    s = lv.LongSession()
    gen = s.start()
    items = list(lv.stream_analysis(DEMO, stop=lambda: False))
    assert isinstance(items[-1], lv.StreamEvidence) and all(isinstance(x, tuple) for x in items[:-1])
    assert s.finish(gen, items[-1], str(DEMO), "demo.mp4")
    return s


def test_long_upload_checks(tmp_path):
    zipped = tmp_path / "frames.zip"
    zipped.write_bytes(b"PK\x05\x06" + b"\x00" * 18)
    with pytest.raises(UploadError, match="takes a video file"):
        lv.check_long_upload(zipped, max_mb=10)
    with pytest.raises(UploadError, match="over the long-video limit of 0.05 min"):
        lv.check_long_upload(DEMO, max_seconds=3.0, max_mb=10)
    note = tmp_path / "notes.txt"
    note.write_text("hi")
    with pytest.raises(UploadError, match="not a video"):
        lv.check_long_upload(note, max_mb=10)
    assert lv.check_long_upload(DEMO, max_mb=10)[1] == pytest.approx(4.0)


def test_cancel_stops_the_stream_worker(repeated_mp4):
    """Cancel answers at once; the worker stops at its next window (not after the whole video)."""
    seen: list = []
    t0 = time.perf_counter()
    with pytest.raises(AnalysisCancelled):
        for item in lv.stream_analysis(repeated_mp4, stop=lambda: len(seen) >= 1, window_seconds=3.0,
                                       overlap_seconds=1.0):
            seen.append(item)
    assert seen and isinstance(seen[0], tuple) and seen[0][0] < seen[0][1]  # stopped part way
    worker = next(t for t in threading.enumerate() if t.name == "mevqa-long-video")
    worker.join(timeout=15)
    assert not worker.is_alive(), "the worker kept analysing a cancelled video"
    assert time.perf_counter() - t0 < 25
    s = lv.LongSession()
    gen = s.start()
    assert not s.stopped(gen) and s.cancel() and s.stopped(gen)
    assert not s.finish(gen, None) and s.res is None and not s.analysing


def test_timeline_zoom_and_pick(demo_result):
    res = demo_result.res
    assert res.intervals
    fig = lv.timeline_figure(res, selected=0)
    ax = fig.axes[0]
    assert ax.get_xlim() == (0.0, pytest.approx(4.0))
    assert len(ax.collections) == len(res.intervals)  # one bar per event
    kinds = {tuple(np.round(c.get_facecolor()[0][:3], 2)) for c in ax.collections}
    assert len(kinds) == len({iv.kind for iv in res.intervals})  # coloured by kind
    outlined = [c for c in ax.collections if c.get_linewidth()[0] > 0]
    assert len(outlined) == 1
    zoomed = lv.timeline_figure(res, start=2.5, end=3.2).axes[0]
    assert zoomed.get_xlim() == (2.5, 3.2) and "showing 2.5-3.2 s" in zoomed.get_title()
    assert len(zoomed.collections) == sum(iv.t_offset >= 2.5 and iv.t_onset <= 3.2 for iv in res.intervals)
    assert lv.view_range(res, 3.0, 1.0) == (0.0, pytest.approx(4.0))  # reversed: the whole video
    assert "frames" in lv.event_text(res, 0) and "Action units" in lv.event_text(res, 0)
    assert lv.event_text(res, 99) == lv.event_text(res, "x") != ""


def test_event_keyframes_are_re_read(demo_result, tmp_path):
    items, missing = lv.event_gallery(demo_result, 0)
    assert not missing
    captions = [c for _, c in items]
    assert captions[:3] == [c for c in captions if c.split()[0] in ("onset", "apex", "offset")]
    assert any(c.startswith("flow map") for c in captions) and captions[-1] == "flow key"
    assert all(img.shape == (224, 224, 3) for img, c in items if c != "flow key")
    gone = lv.LongSession()
    gone.res, gone.source, gone.name = demo_result.res, str(tmp_path / "deleted.mp4"), "deleted.mp4"
    items, missing = lv.event_gallery(gone, 0)
    assert items == [] and "upload it again" in missing


def test_answers_are_those_of_ask_on_a_long_video(demo_result, monkeypatch):
    from mevqa.apps.watch import answer_long

    for q in lv.LONG_QUESTIONS:
        said = lv.answer(demo_result, q).split("\n")[0]
        assert said == answer_long(str(DEMO), q), q
    lying = lv.answer(demo_result, "Is she lying?")  # the hidden-emotion check over the whole video
    assert lying.startswith(("Nothing suggests", "Worth a second look")) and "keeps no motion curve" in lying
    assert lv.answer(demo_result, "What colour is her hair?") == lv.ASKABLE
    busy = lv.LongSession()
    busy.start()
    assert "still being analysed" in lv.answer(busy, lv.LONG_QUESTIONS[0])


def test_clip_tab_points_long_videos_to_the_long_tab():
    from mevqa.apps import gradio_app as ui
    from mevqa.apps.chat import Session
    from mevqa.io.video import ClipError, ClipLimits

    with pytest.raises(ClipError) as e:
        ui.load_upload(DEMO, limits=ClipLimits(max_seconds=2.0))
    status = ui._failure(str(e.value), Session())[0]
    assert "over the limit of 2 s" in status and "Long video tab: up to 10 min" in status, status
