"""Streaming front end and long-video evidence: same result as the in-memory path, bounded windows, watch."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from mevqa.io.stream import iter_frames, probe, read_frames_at, windows
from mevqa.io.video import Clip

VIDEO = Path(__file__).parent / "data" / "pexels_woman_emotions.mp4"


def test_windows_overlap_and_cover_everything():
    got = list(windows(range(10), 4, 1))
    assert [w for w, _ in got] == [[0, 1, 2, 3], [3, 4, 5, 6], [6, 7, 8, 9]]
    assert [last for _, last in got] == [False, False, True]
    assert [w for w, _ in windows(range(5), 4, 2)] == [[0, 1, 2, 3], [2, 3, 4]]
    with pytest.raises(ValueError):
        list(windows(range(5), 4, 4))


def test_reader_matches_clip_and_seeks():
    info = probe(VIDEO)
    assert info.n_frames == 472 and not info.live and abs(info.fps - 23.976) < 0.01
    clip = Clip.load(VIDEO, backend="opencv")
    frames = list(iter_frames(VIDEO, step=4, max_seconds=2.0))
    assert [n for n, _ in frames] == list(range(0, 48, 4))
    assert all(np.array_equal(f, clip.frames[n]) for n, f in frames)
    seek = read_frames_at(VIDEO, [200, 3, 201])
    assert sorted(seek) == [3, 200, 201] and np.array_equal(seek[200], clip.frames[200])


def test_streaming_front_end_equals_the_batch_one():
    """Each frame tracked once, aligned with the same smoothed transform: the spotter sees the same crops."""
    from mevqa.motion.frontend import run_frontend
    from mevqa.motion.stream import stream_frontend, window_frontend

    clip = Clip(np.stack([f for _, f in iter_frames(VIDEO, max_seconds=4.0)]), probe(VIDEO).fps)
    batch = run_frontend(clip)
    streamed = window_frontend(list(stream_frontend(iter_frames(VIDEO, max_seconds=4.0), clip.fps)), clip.fps)
    assert streamed.n == batch.n
    assert np.abs(streamed.faces.transforms - batch.faces.transforms).max() < 1e-4
    assert np.abs(streamed.faces.crops.astype(int) - batch.faces.crops).max() <= 1


def test_long_video_evidence_is_windowed_and_answers_lvqa(capsys):
    from mevqa.apps.cli import main
    from mevqa.evidence.stream import spot_stream

    whole = spot_stream(VIDEO, window_seconds=30.0)
    assert whole.windows == 1 and whole.n_frames == 472 and whole.intervals
    assert all(iv.images == {} and iv.fps == whole.fps for iv in whole.intervals)
    short = spot_stream(VIDEO, window_seconds=14.0, overlap_seconds=10.0)
    assert short.windows >= 3
    # the same expressions (those with AUs) are found whether the video is one window or several
    big = [(iv.onset, iv.offset) for iv in whole.intervals if iv.aus and iv.offset - iv.onset > 12]
    got = [(iv.onset, iv.offset) for iv in short.intervals]
    for on, off in big:
        assert any(min(off, b) - max(on, a) > 0.5 * (off - on) for a, b in got), (on, off, got)
    assert main(["ask", str(VIDEO), "How many expression events appear in this video?"]) == 0
    assert capsys.readouterr().out.strip().isdigit()


def test_watch_prints_events_of_a_file():
    import io

    from mevqa.apps.watch import watch

    out = io.StringIO()
    summary = watch(str(VIDEO), max_seconds=8.0, out=out)
    lines = out.getvalue().splitlines()
    assert summary["events"] == len(lines) >= 1
    assert all(" s  " in line and "->" in line for line in lines)


def test_watch_stopped_with_ctrl_c_prints_what_it_saw(monkeypatch, capsys):
    """Ctrl-C (how a webcam is stopped) still prints the summary of the events so far, then propagates."""
    import io

    import mevqa.evidence.stream as st
    from mevqa.apps.watch import watch

    real = st.spot_stream

    def interrupted(*args, on_event, **kw):
        def first_then_stop(iv, newest):
            on_event(iv, newest)
            raise KeyboardInterrupt
        return real(*args, on_event=first_then_stop, **kw)

    monkeypatch.setattr(st, "spot_stream", interrupted)
    out = io.StringIO()
    with pytest.raises(KeyboardInterrupt):
        watch(str(VIDEO), max_seconds=8.0, out=out)
    err = capsys.readouterr().err
    assert len(out.getvalue().splitlines()) == 1 and "'events': 1" in err and "stopped (Ctrl-C)" in err
    assert 0 < float(err.split("'seconds': ")[1].split(",")[0]) <= 8.0


def test_watch_a_missing_camera_or_stream_is_one_line(capfd):
    """No camera at an index (or an unreachable URL): exit 2 and one line naming it, not OpenCV's log."""
    from mevqa.apps.cli import main

    assert main(["watch", "9"]) == 2
    err = capfd.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "webcam 9: cannot open it" in err[0], err
    assert main(["watch", "rtsp://127.0.0.1:9/none"]) == 2
    err = capfd.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "cannot open the stream" in err[0], err


def test_ask_refuses_other_questions_on_a_long_video_in_one_line(monkeypatch, capsys):
    """Over the in-memory clip limit only long-video questions are answered (streamed); others say why."""
    import mevqa.io.decode as decode
    from mevqa.apps.cli import main

    monkeypatch.setattr(decode, "DEFAULT_LIMITS", decode.ClipLimits(max_frames=100, max_seconds=4.0))
    assert main(["ask", str(VIDEO), "Which action units are shown?"]) == 2
    err = capsys.readouterr().err
    assert "ask a long-video question" in err and len(err.strip().splitlines()) == 1
    assert main(["ask", str(VIDEO), "Is this person hiding an emotion?"]) == 0  # the hidden-emotion check
    out = capsys.readouterr().out
    assert out.startswith(("Nothing suggests", "Worth a second look")) and "whole video" in out


def test_keyframes_are_re_read_by_seeking():
    from mevqa.evidence.stream import keyframes, spot_stream

    seen = []
    res = spot_stream(VIDEO, max_seconds=6.0, progress=lambda done, total: seen.append((done, total)))
    # progress every second of video read, never backwards, within the frames to be read (6 s of 23.976 fps)
    assert len(seen) >= 5 and all(t == seen[0][1] for _, t in seen) and seen[0][1] in (143, 144)
    assert [d for d, _ in seen] == sorted(d for d, _ in seen) and seen[-1][0] <= seen[0][1]
    iv = next(iv for iv in res.intervals if iv.keyframes)
    crops = keyframes(VIDEO, iv)
    assert set(crops) == set(iv.keyframes) and all(c.shape == (224, 224, 3) for c in crops.values())


def test_a_streamed_events_flow_map_has_the_head_motion_taken_off():
    """The flow map made from re-read keyframes removes the head's own motion, fitted at the onset's rigid
    points the event kept: at those points what is left is smaller than the plain flow there."""
    from mevqa.apps.long_events import event_images
    from mevqa.evidence.stream import keyframes, spot_stream
    from mevqa.motion.flow import dense_flow, flow_to_rgb, sample_points

    res = spot_stream(VIDEO, max_seconds=6.0)
    iv = next(iv for iv in res.intervals if iv.keyframes)
    head = np.asarray(iv.keyframes["onset"]["head"], np.float32)
    assert head.shape == (19, 2)
    crops = keyframes(VIDEO, iv)
    plain = dense_flow(crops["onset"], crops["apex"])
    shown = event_images(VIDEO, iv)["flow"]
    assert shown.shape == (224, 224, 3) and not np.array_equal(shown, flow_to_rgb(plain))
    from mevqa.motion.flow import remove_head_motion

    rest = remove_head_motion(plain, head)
    at = lambda f: float(np.median(np.linalg.norm(sample_points(f, head, radius=4), axis=-1)))  # noqa: E731
    assert at(rest) <= at(plain)


def test_live_windows_reach_back_over_what_they_put_off():
    """Live cut: a window every hop; behind the source, windows are put off but the next reaches back to
    what the last one left unsettled, so no frame an unreported event may span is dropped."""
    from types import SimpleNamespace

    from mevqa.evidence.stream import _live_windows

    frames = [SimpleNamespace(number=i) for i in range(200)]
    for behind in (None, lambda f: True):
        settled, n = 0, 0
        for chunk, last in _live_windows(iter(frames), 20, 5, 3, 10, behind=behind):
            n += 1
            nums = [f.number for f in chunk]
            assert nums == list(range(nums[0], nums[-1] + 1)) and len(nums) >= min(20, nums[-1] + 1)
            assert nums[0] <= max(0, settled - 10)  # reaches back over the unsettled part
            settled = nums[-1] + 1 - 3
        assert last and nums[-1] == 199
        assert n == 41 if behind is None else n < 41  # 40 hops, then the end once more (flush)


def test_spot_streams_a_video_over_the_clip_limits(monkeypatch, capsys):
    """`mevqa spot` reads a video over the in-memory clip limits as a stream, with the same JSON contract."""
    import dataclasses
    import json
    from pathlib import Path

    import mevqa
    import mevqa.io.decode as D
    from mevqa.apps.cli import main

    demo = Path(mevqa.__file__).parent / "assets" / "demo.mp4"
    monkeypatch.setattr(D, "DEFAULT_LIMITS", dataclasses.replace(D.DEFAULT_LIMITS, max_seconds=2.0))
    assert main(["spot", str(demo), "--json"]) in (0, None)
    out = json.loads(capsys.readouterr().out)
    assert out["streamed"] is True and out["n_frames"] == 120
    truth = json.loads(demo.with_suffix(".json").read_text())["events"]
    found = [(iv["onset"], iv["offset"]) for iv in out["intervals"]]
    # every scripted event is found (IoU >= 0.5), in source frame numbers
    for ev in truth:
        a, b = ev["onset"], ev["offset"]
        assert any(min(b, y) - max(a, x) + 1 >= 0.5 * (max(b, y) - min(a, x) + 1) for x, y in found), (ev, found)
    assert main(["spot", str(demo), "--plot", "/tmp/x.png"]) == 2


def test_a_stopped_stream_stops_within_a_frame():
    """``spot_stream(stop=)`` is checked before each frame: a cancelled long video does not run on to the
    end of its 30 s window."""
    from mevqa.evidence.stream import StreamStopped, spot_stream

    calls = []

    def stop():
        calls.append(1)
        return len(calls) > 20

    with pytest.raises(StreamStopped):
        spot_stream(VIDEO, stop=stop)
    assert len(calls) == 21  # the 21st check stopped it; no frame was read after it


def test_watch_reads_an_http_stream():
    """A network source (here the real video served over HTTP by a local server, as an IP camera's
    http:// stream would be read): events are printed as they come; a source that delivers faster than
    real time gets no report delay (its frames do not arrive at their own pace), and says so."""
    import functools
    import http.server
    import io
    import threading

    from mevqa.apps.watch import watch

    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(VIDEO.parent))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        out = io.StringIO()
        summary = watch(f"http://127.0.0.1:{server.server_address[1]}/{VIDEO.name}", max_seconds=8.0, out=out)
    finally:
        server.shutdown()
    lines = out.getvalue().splitlines()
    assert summary["events"] == len(lines) >= 1 and summary["seconds"] >= 7.5
    assert any("faster than real time" in n for n in summary["notes"])  # (the first may still come in time)
