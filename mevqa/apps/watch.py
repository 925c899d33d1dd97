"""``mevqa watch SOURCE``: expressions of a webcam, a stream or a file, printed as they are spotted; and
``mevqa ask`` on long videos.

``watch`` runs the streaming evidence (:func:`mevqa.evidence.stream.spot_stream`) with the live cut: a
window of the last 6 s (or more, when behind) every 1 s, and one as soon as an expression seen ending
has settled, each frame tracked once and each pair of frames measured once; an expression is printed
once its offset lies 0.5 s before the newest aligned frame (the alignment itself waits 0.45 s for
the frames after one). ``--realtime`` plays a file at its own pace (as a camera would deliver it) and
then each line carries the delay from the expression's offset to its report, timed from the first
frame read (loading the models is not counted).

Long videos (over the in-memory clip limit, or any video asked a long-video question such as "How many
micro-expression events appear in this video?") are answered from the streamed events
(:mod:`mevqa.answer.lvqa`), in memory bounded by a window, up to ``--max-seconds`` (default 600 s).
"""
from __future__ import annotations

import argparse
import json
import statistics
import sys
import time

WATCH_EXAMPLES = """examples:
  mevqa watch 0                          the first webcam, until Ctrl-C (then a summary on stderr)
  mevqa watch rtsp://camera.local/stream a network stream
  mevqa watch interview.mp4 --realtime   a file played at its own pace, with report delays
  mevqa watch interview.mp4 --json       as fast as possible, one JSON object per expression"""


def add_arguments(p: argparse.ArgumentParser) -> None:
    """The ``watch`` command's arguments (kept here so ``mevqa --help`` imports nothing heavy)."""
    p.add_argument("source", help="webcam index (0), stream URL (rtsp://, http://) or a video file / frame folder")
    p.add_argument("--realtime", action="store_true", help="play a file at its own frame rate (default: as fast as possible)")
    p.add_argument("--fps", type=float, default=None, help="frame rate (overrides the source's)")
    p.add_argument("--max-seconds", type=float, default=600.0,
                   help="stop after this much of the source (default 600; 0: no limit, for cameras)")
    p.add_argument("--json", action="store_true", help="one JSON object per expression instead of a line")


def _line(iv, delay: float | None) -> str:
    aus = ", ".join(f"{a['code']}{'(' + a['side'][0] + ')' if a.get('side') and a['side'] != 'both' else ''}"
                    for a in iv.aus) or "no AU"
    reading = iv.top_emotion["fine"] if iv.top_emotion else "no FACS rule matched"
    t0, t1 = iv.onset / iv.fps, iv.offset / iv.fps
    tail = f"  (reported {delay:.2f} s after its offset)" if delay is not None else ""
    return f"{t0:7.2f}-{t1:6.2f} s  {iv.kind:5s}  {aus}  -> {reading}{tail}"


def median_p95(values, digits: int = 3) -> tuple[float | None, float | None]:
    """Median and 95th percentile (the nearest rank) of ``values``, rounded; (None, None) for none."""
    q = sorted(values)
    if not q:
        return None, None
    return round(statistics.median(q), digits), round(q[min(len(q) - 1, int(round(0.95 * (len(q) - 1))))], digits)


def watch(source: str, *, realtime: bool = False, fps: float | None = None, max_seconds: float | None = 600.0,
          as_json: bool = False, out=sys.stdout) -> dict:
    """Print each expression as it is spotted; returns the report delays (s) when they can be measured
    (a file played with ``realtime``; a live source's frames are timed by their arrival)."""
    from mevqa.evidence.stream import LIVE_HOP_SECONDS, LIVE_WINDOW_SECONDS, spot_stream  # noqa: PLC0415 - MediaPipe

    from mevqa.io.stream import is_live, probe  # noqa: PLC0415 - with the line above

    timed = realtime or is_live(source)
    delays: list[float] = []
    behind: list[float] = []
    ahead = 0  # events reported while the source ran ahead of real time
    begun = time.perf_counter()
    start = begun  # the source's clock: reset when its first frame is read (after the models have loaded)

    def started() -> None:
        nonlocal start
        start = time.perf_counter()

    def on_event(iv, newest: int) -> None:
        nonlocal ahead
        # how much of the source had been read past the offset when it was reported: the delay the
        # windowing itself adds, whatever the machine's speed
        behind.append((newest - iv.offset) / iv.fps)
        delay = None
        now = time.perf_counter()
        # a network source may deliver a file faster than it plays (an mp4 over HTTP): then frames do not
        # come at start + t, and no delay can be read off the clock
        if timed and newest / iv.fps > now - start + 1.0:
            ahead += 1
        elif timed:  # the offset's frame came at start + offset/fps (played or live at its own pace; the
            # clock starts at the first frame, so loading the models is not counted as delay)
            delay = now - (start + iv.offset / iv.fps)
            delays.append(delay)
        if as_json:
            print(json.dumps({"onset": iv.onset, "offset": iv.offset, "fps": round(iv.fps, 3), "kind": iv.kind,
                              "aus": [a["code"] for a in iv.aus],
                              "reading": iv.top_emotion["fine"] if iv.top_emotion else None,
                              "delay_s": None if delay is None else round(delay, 3),
                              "read_past_offset_s": round(behind[-1], 3)}), file=out, flush=True)
        else:
            print(_line(iv, delay), file=out, flush=True)

    # seconds of the source read (the live cut reports after each window): a camera or stream's frames come
    # at their own pace, so the time since its first frame; a file's from its frame rate
    rate = None if is_live(source) else probe(source, fps=fps).fps
    seconds_read = 0.0

    def progress(done: int, total: int) -> None:
        nonlocal seconds_read
        seconds_read = done / rate if rate else time.perf_counter() - start

    def summarise(events: int, seconds: float, notes: list[str]) -> dict:
        summary = {"events": events, "seconds": round(seconds, 2),
                   "wall_seconds": round(time.perf_counter() - begun, 2), "startup_s": round(start - begun, 2),
                   "notes": notes + ([f"{ahead} event(s) came while the source delivered frames faster than "
                                      "real time: no report delay measured for them"] if ahead else [])}
        for name, values in (("delay", delays), ("read_past_offset", behind)):
            if values:
                summary[f"{name}_median_s"], summary[f"{name}_p95_s"] = median_p95(values)
        return summary

    try:
        res = spot_stream(source, fps=fps, window_seconds=LIVE_WINDOW_SECONDS, hop_seconds=LIVE_HOP_SECONDS,
                          max_seconds=max_seconds or None, realtime=realtime, on_event=on_event,
                          realtime_lag=(lambda t: time.perf_counter() - start - t) if timed else None,
                          on_start=started, progress=progress)
    except KeyboardInterrupt:  # Ctrl-C, the way to stop a webcam: what was seen so far, then the CLI's exit 130
        # ``behind`` has one entry per event reported
        print(f"[{summarise(len(behind), seconds_read, ['stopped (Ctrl-C)'])}]", file=sys.stderr)
        raise
    summary = summarise(len(res.intervals), res.duration, res.notes)
    print(f"[{summary}]", file=sys.stderr)
    return summary


def answer_long(path: str, question: str, *, fps: float | None = None, max_seconds: float = 600.0) -> str | None:
    """The answer to a long-video question (ME-LVQA) from the streamed events of ``path``; None when the
    question is not one and the clip fits in memory (the ordinary ``ask`` path answers it). A clip over
    the in-memory limits asked anything else: ValueError saying what can be asked."""
    from mevqa.answer.lvqa import answer_hidden, answer_lvqa, events_from, lvqa_question  # noqa: PLC0415 - heavy on start-up
    from mevqa.answer.reasoner import is_hiding_question  # noqa: PLC0415
    from mevqa.apps.cli_long import streamed  # noqa: PLC0415
    from mevqa.io.decode import DEFAULT_LIMITS  # noqa: PLC0415
    from mevqa.io.stream import probe  # noqa: PLC0415

    kind = lvqa_question(question)
    if path == "demo":
        return None
    info = probe(path, fps=fps)
    long = info.n_frames > DEFAULT_LIMITS.max_frames or info.duration > DEFAULT_LIMITS.max_seconds
    hiding = kind is None and long and is_hiding_question(question)
    if kind is None and not hiding:
        if long:
            raise ValueError(f"{path}: {info.duration:.0f} s is longer than a clip ({DEFAULT_LIMITS.max_seconds:g} s); "
                             "ask a long-video question (how many (micro-/macro-)expression events, which action "
                             "units, the type of the N-th event, whether the person is hiding an emotion) or trim the clip")
        return None
    res = streamed(path, fps=fps, max_seconds=max_seconds)
    if hiding:
        return answer_hidden(res.intervals, res.fps)
    return answer_lvqa(events_from(res.intervals, res.fps), kind)
