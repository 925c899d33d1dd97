"""Evidence of a long video or a live stream, in memory bounded by a window (not by the video's length).

Frames are read one at a time (:mod:`mevqa.io.stream`), tracked and aligned once
(:func:`mevqa.motion.stream.stream_frontend`: only the 224 px crops, 150 kB a frame, are kept, never
the full frames), and cut into overlapping windows of aligned frames. Each window is one
:class:`mevqa.motion.frontend.FrontEnd`, spotted and read by the same spotter, AU detector and FACS
rules as a short clip (:func:`mevqa.evidence.builder.evidence_from_frontend`); only its intervals are
kept (AUs, emotions, scores, keyframe numbers and transforms; no images: :func:`keyframes` re-reads
them by seeking).

Two ways to cut windows:

- **long videos** (:func:`spot_stream` defaults): 30 s windows overlapping by 10 s (at least twice the
  spotter's 2 s reference lag plus the longest macro-expression, 4 s); each window keeps the intervals
  whose middle lies in its own half of the overlaps, so every expression is reported by the one window
  that measures it as the whole video would.
- **live** (``hop_seconds``): a window of the last ``window_seconds`` every ``hop_seconds``; an interval
  is reported once its offset lies ``settle_seconds`` before the window's end (the spotter compares
  each frame with the frames ``lag_seconds`` around it, so the end of an interval needs a little
  after it to be sure), and only once. A window that shows an interval ended but not yet settled has
  the next one cut as soon as it will be (``early``), not at the next hop. Each window measures only
  the frame pairs the windows before it did not (``incremental``: :class:`mevqa.motion.stream.PairCache`
  with :func:`mevqa.spot.incremental.spot_window`; a window's start moves only every
  ``LIVE_SLACK_SECONDS`` so the pairs against it are shared too) and reads AUs only for the intervals it
  reports: the same events as spotting and reading each window whole, at a fraction of the work. A timed
  source (``realtime_lag``) has its windows measured in a thread while the next frames are tracked; a
  window is put off while the one before is still being measured (the next reaches back over it).

The live cut reports an interval 0.3 s after its offset (past the reach of the spotter's low-pass),
before the spotter's 2 s reference after it has arrived: its bounds there are those the newest frames
allow, and a later window may place it a little differently (it is not reported twice). Its frames are
aligned with the eye centres smoothed over +-0.15 s, not +-0.45 s (``LIVE_LOOKAHEAD_SECONDS``: the
alignment's delay line), and while an expression is under way at a window's end the next window comes
at least ``LIVE_MIN_GAP_SECONDS`` later rather than a hop later (``early``). With ``LIVE_TAIL_STEP_SECONDS``,
:func:`_cut_start` and the settling window cut as soon as it settles: report delay on the 80 s file, in real
time on 2 cores, median about 1.05 s, p95 2.5-3 s. No earlier report helps the p95 (``bench_long.py --mode
bound``): a window holds a falling interval's offset at its end (:func:`mevqa.spot.intervals.segment`'s clip-end
rule) until the fall has ended, 1-1.7 s after the offset for some; released sooner, offsets came early.
"""
from __future__ import annotations

from collections import deque
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Callable

import cv2
import numpy as np

from mevqa.evidence.builder import (EvidenceConfig, IntervalEvidence, evidence_from_frontend, interval_evidence,
                                    read_face)
from mevqa.face.landmarks import FaceError
from mevqa.io.stream import MAX_STREAM_SECONDS, STREAM_MAX_SIDE, analysis_step, iter_frames, probe, read_frames_at, windows
from mevqa.io.video import ClipError, frame_number, list_frames
from mevqa.motion.stream import PairCache, stream_frontend, window_frontend
from mevqa.spot.incremental import spot_window

#: Every interval of a window, none assumed where nothing stood out (a long video has quiet stretches).
STREAM_EVIDENCE = EvidenceConfig(max_intervals=100_000, assume_expression=False)
# A frame is measured against frames up to lag_seconds (2 s) away, so a window measures what the whole
# video would only 2 s inside its ends; an interval (up to 4 s) whose middle lies in a window's own part
# must then lie whole 2 s inside it: overlap / 2 >= 2 s + 4 s / 2, i.e. overlap >= 8 s.
WINDOW_SECONDS, OVERLAP_SECONDS = 30.0, 10.0
# hop 1 s, not 0.5 s: the shorter hop agreed less with the long-video cut (interval F1 on the 20/40/80 s
# files 0.78/0.82/0.73 -> 0.50/0.65/0.61). settle: an interval is final this long after its offset, just
# past the reach of the spotter's 2 Hz low-pass (a Gaussian of sigma 0.066 s: +-3 sigma is 0.2 s)
LIVE_WINDOW_SECONDS, LIVE_HOP_SECONDS, LIVE_SETTLE_SECONDS = 6.0, 1.0, 0.3
# live frames are aligned with the eye centres smoothed over +-1 sigma (0.15 s), not +-3 sigma (0.45 s)
LIVE_LOOKAHEAD_SECONDS = 0.15
# a live window's first frame moves only every 2 s, so the pairs measured against it are reused
LIVE_SLACK_SECONDS = 2.0
# while an expression is under way at a window's end, the next window comes this long after it (early)
LIVE_MIN_GAP_SECONDS = 0.25
# a live window measures its last lag frames against its last frame every 0.08 s, interpolated between (every
# window pays for them anew); not whole clips: there it moved a few ends (8 s excerpt, F1 0.86 -> 0.57)
LIVE_TAIL_STEP_SECONDS = 0.08
# an AU's resting level from the stream's last minute: a 6-8 s live window in the laughing half held no
# resting face (live laughs read as a person labels them: 17/27 -> 22/27; 20 or 30 s: the same)
REST_SECONDS = 60.0
MACRO_MAX_SECONDS = 4.0  # the longest expression the spotter reports whole (SpotConfig.macro_max_seconds)
LAG_SECONDS = 2.0        # the spotter's reference lag (SpotConfig.lag_seconds)


@dataclass
class StreamEvidence:
    """What a long video or stream left: its intervals (source frame numbers and rate) and counts."""

    source: str
    fps: float
    analysis_fps: float
    n_frames: int                      # source frames read
    intervals: list[IntervalEvidence]
    windows: int = 0
    failed_windows: int = 0
    lost_frames: int = 0               # analysed frames with no face
    notes: list[str] = field(default_factory=list)

    @property
    def duration(self) -> float:
        return self.n_frames / self.fps


def _iou(a: tuple[int, int], b: tuple[int, int]) -> float:
    inter = min(a[1], b[1]) - max(a[0], b[0]) + 1
    return inter / (max(a[1], b[1]) - min(a[0], b[0]) + 1) if inter > 0 else 0.0


def _covered(a: tuple[int, int], b: tuple[int, int]) -> bool:
    """Whether the two intervals share at least half of the shorter one (live: seen again by a later window)."""
    inter = min(a[1], b[1]) - max(a[0], b[0]) + 1
    return inter >= 0.5 * min(a[1] - a[0] + 1, b[1] - b[0] + 1)


def _to_source(iv: IntervalEvidence, numbers: np.ndarray, rate: float, index: int) -> IntervalEvidence:
    """A window's interval in the source's frame numbers and rate, images dropped (re-read on demand)."""
    keys = {k: {**v, "frame": int(numbers[min(v["frame"], len(numbers) - 1)])} for k, v in (iv.keyframes or {}).items()}
    return replace(iv, index=index, onset=int(numbers[iv.onset]), apex=int(numbers[iv.apex]),
                   offset=int(numbers[iv.offset]), fps=rate, images={}, keyframes=keys)


class StreamStopped(RuntimeError):
    """Raised inside :func:`spot_stream` when its ``stop()`` turned true (the caller cancelled)."""


def _stoppable(frames, stop: Callable[[], bool]):
    """``frames`` until ``stop()`` is true (checked before each frame), then :class:`StreamStopped`."""
    for item in frames:
        if stop():
            raise StreamStopped("stopped")
        yield item


def _reporting(frames, every: int, report: Callable[[int], None]):
    """``frames`` ((number, frame) pairs), calling ``report(number)`` after every ``every``-th one."""
    for k, item in enumerate(frames, 1):
        yield item
        if k % every == 0:
            report(int(item[0]))


def _started(frames, on_start: Callable[[], None]):
    """``frames``, calling ``on_start()`` as the first one is read."""
    it = iter(frames)
    first = next(it, None)
    if first is None:
        return
    on_start()
    yield first
    yield from it


@dataclass
class _Wake:
    """When the live cut's next window is wanted early: once ``frames`` more frames have come after the
    last one (None: at the hop). Set by the reader of a window that saw an interval end but not settle."""

    frames: int | None = None


def _live_windows(aligned, min_len: int, hop: int, settle: int, reach: int, *, behind=None, slack: int = 0,
                  wake: _Wake | None = None):
    """(window, is_last) for the live cut: every ``hop`` frames the newest frames, reaching back at least
    ``min_len`` frames and to ``reach`` frames before what the previous window left unsettled. While the
    reader is ``behind`` the source, windows are put off (the next one reaches back further, so nothing
    is missed), unless the ring of frames kept would lose unsettled ones; memory: at most 2x ``min_len``
    + ``reach`` frames.

    ``slack``: a window's first frame stays where it was until it lies more than ``slack`` frames before
    where it must start at the latest. The spotter measures a window's first ``lag`` frames against its
    first frame, so a start that moves every hop makes every window measure those pairs anew; one that
    moves every few hops lets the windows in between reuse them (:class:`mevqa.motion.stream.PairCache`),
    for windows up to ``slack`` frames longer.

    ``wake``: a window is also cut as soon as ``wake.frames`` frames have come since the last one (the
    reader sets it when a window shows an interval that has ended but is not settled yet: the window
    that settles it is cut then, not up to a hop later)."""
    cap = 2 * min_len + reach
    ring: deque = deque(maxlen=cap)
    count, since, settled = 0, 0, 0  # frames read; since the last window; frames settled by it
    anchor = None  # the first frame of the windows while it may stay

    def first() -> int:
        nonlocal anchor
        latest = min(count - min_len, settled - reach)  # the window must start here or before
        if anchor is None or latest - anchor > slack or anchor > latest:
            anchor = latest
        return max(count - len(ring), anchor)

    for f in aligned:
        ring.append(f)
        count += 1
        since += 1
        if since < hop and (wake is None or wake.frames is None or since < wake.frames):
            continue
        oldest = count - len(ring)
        must = len(ring) == cap and oldest + hop > settled - reach  # the ring would lose unsettled frames
        if behind is not None and behind(f) and not must:
            continue  # behind the source: wait for a later window (it reaches back here)
        if wake is not None:
            wake.frames = None
        yield list(ring)[first() - oldest:], False
        settled, since = count - settle, 0
    if ring:
        yield list(ring)[first() - (count - len(ring)):], True


def _cut_start(numbers: np.ndarray, first: int, fps: float) -> int:
    """How many of a live window's first frames its intervals may not begin in: ``lag`` frames, unless the
    window begins with the stream.

    The spotter measures a window's first ``lag`` frames against its first frame (it has none earlier).
    Where the live cut started the window in the middle of an expression, that expression's return to
    neutral then looks like an expression of its own (a 2 s smile's tail, reported again 5 s late). Nothing
    real is lost: a window's first frame moves only to at least ``reach`` (a lag plus the longest expression)
    before what the window before it left unsettled, so an expression beginning there was settled earlier.
    """
    return 0 if int(numbers[0]) <= first else max(1, round(LAG_SECONDS * fps))


def _live_intervals(front, numbers: np.ndarray, cache: PairCache, *, config: EvidenceConfig, settled: int,
                    fresh: Callable[[int, int], bool], cut: int = 0):
    """The live cut's new events of one window, as :func:`evidence_from_frontend` would read them, but
    spotted with the motion earlier windows measured (:func:`mevqa.spot.incremental.spot_window`) and
    read (AUs, face) only for the intervals that are settled (offset before window frame ``settled``)
    and ``fresh(onset, offset)`` (stream frame numbers: not reported before), and that begin at or after
    window frame ``cut`` (:func:`_cut_start`). Spots now; returns its spans and an iterator that reads each
    interval once the ones before it were taken (the caller adds each to what ``fresh`` checks)."""
    sr = spot_window(front, numbers, cache, config=config.spot)
    spotted = sorted(sorted(sr.intervals, key=lambda iv: -iv.score)[: config.max_intervals], key=lambda iv: iv.onset)
    spotted = [s for s in spotted if s.onset >= cut]
    spans = [(s.onset, s.offset) for s in spotted]

    def read():
        for k, s in enumerate(spotted):
            if s.offset >= settled or not fresh(int(numbers[s.onset]), int(numbers[s.offset])):
                continue
            iv = interval_evidence(front, k, s.onset, s.apex, s.offset, s.kind, s.score, getattr(s, "rois", {}),
                                    config)
            if iv.aus:  # an event: an AU found present, as mevqa.answer.lvqa counts them
                read_face(front, [iv], config)  # each interval's own fields; the clip-wide ones are not kept
                yield iv
    return spans, read()


def spot_stream(source, *, fps: float | None = None, window_seconds: float = WINDOW_SECONDS,
                overlap_seconds: float = OVERLAP_SECONDS, hop_seconds: float | None = None,
                settle_seconds: float = LIVE_SETTLE_SECONDS, max_seconds: float | None = MAX_STREAM_SECONDS,
                config: EvidenceConfig = STREAM_EVIDENCE, realtime: bool = False, max_side: int = STREAM_MAX_SIDE,
                on_event: Callable[[IntervalEvidence, int], None] | None = None,
                realtime_lag: Callable[[float], float] | None = None,
                progress: Callable[[int, int], None] | None = None, on_start: Callable[[], None] | None = None,
                incremental: bool = True, early: bool = True, stop: Callable[[], bool] | None = None,
                on_window: Callable[[list[tuple[int, int]], int], None] | None = None) -> StreamEvidence:
    """Spot and read every expression of a video file, frame folder, webcam index or stream URL.

    ``hop_seconds`` switches to the live cut (a window every hop, intervals reported once settled);
    ``on_event(interval, last_frame_number_read)`` is called as each interval is final. ``max_seconds``
    stops reading after that much (default :data:`mevqa.io.stream.MAX_STREAM_SECONDS`, 10 minutes;
    ``None``: no limit). ``progress(frames_read, frames_total or 0)``: every second of video read (tracking is
    most of the work), live after each window. A face lost in most of a window (turned away) skips it; if
    every window is skipped, the last error is raised.
    ``realtime_lag(t)`` (live cut only): how many seconds behind the source the frame at ``t`` s is read;
    while that is over a hop, or the last window is still being measured (in a thread, while tracking
    goes on), windows are put off and the next one reaches back over them (:func:`_live_windows`), so
    the work per second of video stays bounded and reports catch up.
    ``on_start()`` is called as the first frame is read (a file played in real time starts its clock
    there). ``incremental`` (live cut): each window measures only the frame pairs the one before did not
    (:class:`mevqa.motion.stream.PairCache`) and reads AUs only for the intervals it reports; ``False``
    runs the whole evidence of every window (the same events, several times the work). ``early`` (live
    cut): a window that shows an interval ended but not yet settled has the next window cut as soon as
    it would settle, and one that shows an interval under way at its end has the next one cut
    :data:`LIVE_MIN_GAP_SECONDS` later, rather than at the next hop.
    ``stop()``, checked before each frame is read: once true, :class:`StreamStopped` is raised within a
    frame (a cancelled analysis frees its core at once, not at the end of a 30 s window).
    ``on_window(spans, last)``: each window's spotted (onset, offset) and its last frame (source numbers)."""
    info = probe(source, fps=fps)
    step = analysis_step(info.fps, config.frontend.max_fps)
    sub_fps = info.fps / step
    per = max(8, int(round(window_seconds * sub_fps)))
    if hop_seconds is None:
        overlap = min(per - 1, int(round(overlap_seconds * sub_fps)))
    else:
        overlap = per - max(1, int(round(hop_seconds * sub_fps)))
    settle = int(round(settle_seconds * sub_fps))
    total = info.n_frames if max_seconds is None else min(info.n_frames, int(max_seconds * info.fps))
    frames = iter_frames(source, step=step, max_side=max_side, max_seconds=max_seconds, fps=info.fps, realtime=realtime)
    if on_start is not None:
        frames = _started(frames, on_start)
    if stop is not None:
        frames = _stoppable(frames, stop)
    if progress is not None and hop_seconds is None:
        frames = _reporting(frames, max(1, int(round(sub_fps))), lambda n: progress(min(n + 1, total), total))
    out = StreamEvidence(str(source), info.fps, sub_fps, 0, [])
    errors = []
    aligned = stream_frontend(frames, sub_fps, config=config.frontend,
                              lookahead_seconds=None if hop_seconds is None else LIVE_LOOKAHEAD_SECONDS)
    wake = None if hop_seconds is None or not early else _Wake()
    min_gap = max(1, int(round(LIVE_MIN_GAP_SECONDS * sub_fps)))
    busy = None
    if hop_seconds is None:
        cut = windows(aligned, per, overlap)
    else:
        reach = int(round((MACRO_MAX_SECONDS + LAG_SECONDS) * sub_fps))
        # timed: a window is put off while the last one is still being measured, or the reader is behind
        busy = None if realtime_lag is None else []  # the window being measured (its future)
        cut = _live_windows(aligned, per, per - overlap, settle, reach, slack=int(round(LIVE_SLACK_SECONDS * sub_fps)),
                            behind=None if busy is None else
                            lambda f: (busy and not busy[0].done()) or realtime_lag(f.number / info.fps) > hop_seconds,
                            wake=wake)
    live = hop_seconds is not None
    if live:  # every window measures its last lag frames anew (LIVE_TAIL_STEP_SECONDS)
        config = replace(config, spot=replace(config.spot, tail_step_seconds=LIVE_TAIL_STEP_SECONDS))
    # live: pairs of frames measured by one window are looked up by the next (identical results)
    cache = PairCache() if live and incremental and not config.assume_expression else None

    def fresh(on: int, off: int) -> bool:
        # neighbouring windows may place one expression a little differently: report it once
        return not any(_iou((on, off), (k.onset, k.offset)) >= 0.5 or (live and _covered((on, off), (k.onset, k.offset)))
                       for k in out.intervals[-8:])

    counted = -1
    opening = None  # the stream's first analysed frame number
    rest: deque = deque(maxlen=max(1, int(round(REST_SECONDS * sub_fps))))  # blendshapes of the last minute

    def measure(chunk: list, last: bool) -> None:
        """Spot and read one window, report its new intervals, ask for an early window if one is due."""
        nonlocal counted, opening
        out.windows += 1
        numbers = np.array([f.number for f in chunk])
        opening = int(numbers[0]) if opening is None else opening
        cut_start = _cut_start(numbers, opening, sub_fps) if live else 0
        out.n_frames = int(numbers[-1]) + 1
        out.lost_frames += sum(not f.detected for f in chunk if f.number > counted)
        rest.extend(f.blendshapes for f in chunk if f.number > counted)  # NaN where lost
        counted = int(numbers[-1])
        settled = len(chunk) if last else len(chunk) - 1 - settle
        try:
            if sum(f.detected for f in chunk) < 0.5 * len(chunk):
                raise FaceError(f"{source}: the face is lost in most of frames {numbers[0]}-{numbers[-1]}")
            front = window_frontend(chunk, sub_fps, source=str(source), config=config.frontend,
                                    rest_blendshapes=np.stack(rest))
            if cache is not None:
                spans, keep = _live_intervals(front, numbers, cache, config=config, settled=settled, fresh=fresh,
                                              cut=cut_start)
            else:
                ev = evidence_from_frontend(front, config=config)
                taken = [iv for iv in ev.intervals if iv.onset >= cut_start]
                spans = [(iv.onset, iv.offset) for iv in taken]
                if not live:
                    lo = 0 if out.windows == 1 else overlap / 2
                    hi = len(chunk) if last else len(chunk) - overlap / 2
                    keep = [iv for iv in ev.intervals if lo <= (iv.onset + iv.offset) / 2 < hi]
                else:  # only events (an AU found present, as mevqa.answer.lvqa counts them), once settled
                    keep = [iv for iv in taken if iv.aus and iv.offset < settled]
            if on_window is not None:
                on_window([(int(numbers[a]), int(numbers[b])) for a, b in spans], int(numbers[-1]))
        except FaceError as e:  # turned away or out of frame for a while: skip that stretch
            errors.append(e)
            out.failed_windows += 1
            return
        for iv in keep:
            if cache is None and not fresh(int(numbers[iv.onset]), int(numbers[iv.offset])):
                continue
            iv = _to_source(iv, numbers, info.fps, len(out.intervals))
            out.intervals.append(iv)
            if on_event is not None:
                on_event(iv, int(numbers[-1]))
        if wake is not None and not last:  # an interval that has ended: cut the window that settles it
            ends = [off for on, off in spans
                    if settled <= off < len(chunk) - 1 and fresh(int(numbers[on]), int(numbers[off]))]
            if ends:
                # as soon as it settles (the gap is the report's delay, so no minimum): a window then
                # measures only the few frames since, as the pairs before them are cached
                wake.frames = max(1, min(ends) + settle + 2 - len(chunk))
            elif any(off >= len(chunk) - 2 for _, off in spans):
                # an expression still under way at the window's end: look again soon rather than a hop
                # later, so that the window that sees it end comes shortly after it does
                wake.frames = min_gap
        if progress is not None and live:
            progress(out.n_frames, total)

    try:
        if busy is None:
            for chunk, last in cut:
                measure(chunk, last)
        else:  # timed: windows are measured in a thread while the next frames are tracked
            with ThreadPoolExecutor(1, thread_name_prefix="mevqa-window") as pool:
                for chunk, last in cut:
                    if busy:
                        busy.pop().result()  # the ring would lose unsettled frames (or the end): wait
                    busy.append(pool.submit(measure, chunk, last))
                if busy:
                    busy.pop().result()
    finally:
        if cache is not None:
            cache.close()
    if out.windows == 0:
        raise ClipError(f"{source}: no face found (or no frames)")
    if out.failed_windows == out.windows:
        raise errors[-1]
    if out.failed_windows:
        out.notes.append(f"{out.failed_windows} of {out.windows} windows skipped: {errors[-1]}")
    if max_seconds is not None and info.n_frames > max_seconds * info.fps + 1:  # +1: rounding of the header's count
        out.notes.append(f"only the first {max_seconds:g} s of {info.n_frames / info.fps:.0f} s were analysed "
                         "(the streaming limit; pass a larger max_seconds)")
    return out


def keyframes(source, iv: IntervalEvidence, *, max_side: int = STREAM_MAX_SIDE, size: int = 224) -> dict[str, np.ndarray]:
    """The aligned onset/apex/offset crops of a streamed interval, re-read from the source by seeking."""
    want = {name: k["frame"] for name, k in (iv.keyframes or {}).items()}
    if Path(str(source)).is_dir():  # a frame folder's numbers (img46.jpg -> 46) -> positions in its listing
        pos = {frame_number(f.name): i for i, f in enumerate(list_frames(Path(source)))}
        want = {name: pos[n] for name, n in want.items() if n in pos}
    frames = read_frames_at(source, want.values(), max_side=max_side)
    return {name: cv2.warpAffine(frames[f], np.asarray(iv.keyframes[name]["transform"], np.float32), (size, size),
                                 flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
            for name, f in want.items() if f in frames}

