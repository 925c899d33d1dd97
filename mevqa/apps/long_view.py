"""The app's long-video views: the upload check, the streamed analysis with progress and cancel, the
timeline of events, one event's keyframes and reading, and answers to long-video questions.

A long video (up to :data:`LONG_MAX_SECONDS`, 10 minutes, the streaming readers' documented limit) is
never held in memory: :func:`mevqa.evidence.stream.spot_stream` reads it window by window and keeps only
its intervals (source frame numbers); an event's keyframes are re-read from the uploaded file when it
is picked (:func:`mevqa.apps.long_events.event_images`). Questions are answered as ``mevqa ask`` answers
them on a long video: the ME-LVQA answerer over the streamed events (:mod:`mevqa.answer.lvqa`).

Nothing here builds Gradio components (that is :mod:`mevqa.apps.long_tab`), so all of it is tested
without a browser.
"""
from __future__ import annotations

import logging
import threading
from pathlib import Path
from typing import Callable, Iterator

from matplotlib.figure import Figure

from mevqa.answer.lvqa import answer_hidden, answer_lvqa, au_question, count_question, events_from, lvqa_question, type_question
from mevqa.answer.reasoner import is_hiding_question
from mevqa.apps.long_events import event_images, reading
from mevqa.apps.uploads import AnalysisCancelled, UploadError, check_upload, in_worker
from mevqa.apps.views import flow_key
from mevqa.evidence.stream import OVERLAP_SECONDS, WINDOW_SECONDS, StreamEvidence, StreamStopped, spot_stream
from mevqa.io.stream import MAX_STREAM_SECONDS, probe
from mevqa.io.video import ClipError

log = logging.getLogger("mevqa.apps.long_view")

#: The longest video the long-video tab analyses (the streaming readers' default limit).
LONG_MAX_SECONDS = MAX_STREAM_SECONDS
COLOURS = {"micro": "#d62728", "macro": "#1f77b4"}
LONG_QUESTIONS = (count_question("all"), count_question("micro"), count_question("macro"), au_question(),
                  type_question(1))
ASKABLE = ("On a long video I answer the long-video questions (ME-LVQA): how many expression events "
           "(or micro-/macro-expression events) appear, which distinct action units appear, and the "
           "expression type of the N-th event; and whether the person may be hiding an emotion (the hidden-emotion "
           "check). Pick an event on the timeline to see its action units and reading.")


class LongSession:
    """One browser session's long video: its streamed result, the file its keyframes are re-read from,
    and the analysis running now (a newer upload or Cancel stops an older one at its next window).
    A plain class with a fresh copy per session (see :class:`mevqa.apps.chat.Session`)."""

    def __init__(self):
        self.res: StreamEvidence | None = None
        self.source: str | None = None
        self.name = ""
        self.generation = 0
        self.cancelled = -1
        self.analysing = False
        self.messages: list[dict] = []
        self.lock = threading.Lock()

    def __deepcopy__(self, memo):
        return LongSession()

    def start(self) -> int:
        with self.lock:
            self.generation += 1
            self.analysing = True
            return self.generation

    def stopped(self, gen: int) -> bool:
        return gen != self.generation or gen == self.cancelled

    def cancel(self) -> bool:
        with self.lock:
            if not self.analysing:
                return False
            self.cancelled = self.generation
            return True

    def finish(self, gen: int, res: StreamEvidence | None, source: str | None = None, name: str = "") -> bool:
        """Keep ``res`` if ``gen`` is still the current analysis; a failure keeps what was shown."""
        with self.lock:
            if gen != self.generation:
                return False
            self.analysing = False
            if res is None or gen == self.cancelled:
                return False
            self.res, self.source, self.name = res, source, name
            self.messages.append({"role": "assistant", "content": f"New video: {name}, {len(res.intervals)} "
                                  f"event(s) spotted. {ASKABLE}"})
            return True


def check_long_upload(path, *, max_seconds: float = LONG_MAX_SECONDS, max_mb: float) -> tuple[Path, float]:
    """The uploaded video and its length, if it can be streamed; UploadError/ClipError (one line) if not."""
    p = check_upload(path, max_mb=max_mb)
    if p.suffix.lower() == ".zip":
        raise UploadError(f"{p.name}: the long-video tab takes a video file (a zip of frames goes in the Clip tab)")
    info = probe(p)
    if info.n_frames <= 0:
        raise ClipError(f"{p.name}: the video reports no frames (damaged, or not a video)")
    if info.duration > max_seconds + 0.5:
        raise UploadError(f"{p.name}: {info.duration / 60:.1f} min is over the long-video limit of "
                          f"{max_seconds / 60:g} min; trim it")
    return p, info.duration


def stream_analysis(path, *, stop: Callable[[], bool], max_seconds: float = LONG_MAX_SECONDS,
                    window_seconds: float = WINDOW_SECONDS, overlap_seconds: float = OVERLAP_SECONDS
                    ) -> Iterator[tuple[int, int] | StreamEvidence]:
    """Run :func:`spot_stream` in a worker thread (:func:`mevqa.apps.uploads.in_worker`); yield ``(frames
    read, frames total)`` after each window, then the result. Once ``stop()`` is true this raises
    :class:`AnalysisCancelled` at once, and the worker stops before its next frame (``spot_stream(stop=)``)
    or, while a window is being measured, at its end, so no core stays busy for it."""
    def run(stopped, report):
        try:
            return spot_stream(path, max_seconds=max_seconds, window_seconds=window_seconds,
                               overlap_seconds=overlap_seconds, stop=stopped,
                               progress=lambda done, total: report((int(done), int(total))))
        except StreamStopped:
            raise AnalysisCancelled("the analysis was cancelled") from None

    def on_error(e: BaseException) -> None:
        if not isinstance(e, (AnalysisCancelled, ClipError)):
            log.error("long-video analysis failed", exc_info=e)

    return in_worker(run, stop=stop, name="mevqa-long-video", on_error=on_error)


# -- views ------------------------------------------------------------------------------------------------
def summary(res: StreamEvidence, name: str) -> str:
    micro = sum(iv.kind == "micro" for iv in res.intervals)
    notes = "".join(f"  \n_{n}_" for n in res.notes)
    lost = f"; face lost in {res.lost_frames} analysed frame(s)" if res.lost_frames else ""
    return (f"**{name}** analysed: {res.duration:.1f} s, {res.n_frames} frames at {res.fps:g} fps, read as a stream "
            f"in {res.windows} window(s); **{len(res.intervals)} event(s)**: {micro} micro, "
            f"{len(res.intervals) - micro} macro{lost}.{notes}")


def view_range(res: StreamEvidence | None, start, end) -> tuple[float, float]:
    """The zoom range in seconds: ``start``/``end`` clipped to the video, the whole video when unusable."""
    total = res.duration if res is not None else 1.0
    lo = 0.0 if start is None else min(max(0.0, float(start)), total)
    hi = total if end is None or float(end) <= 0 else min(float(end), total)
    if hi - lo < 0.5:  # empty or reversed: the whole video
        return 0.0, total
    return lo, hi


def timeline_figure(res: StreamEvidence, *, start=None, end=None, selected=None, name: str = "") -> Figure:
    """Events on a time axis: one bar (onset to offset) and one mark (apex) each, micro above macro,
    coloured by kind, numbered; the picked event outlined. ``start``/``end`` (s) zoom in."""
    lo, hi = view_range(res, start, end)
    fig = Figure(figsize=(10, 2.5), layout="constrained")
    ax = fig.subplots()
    shown = [iv for iv in res.intervals if iv.t_offset >= lo and iv.t_onset <= hi]
    for iv in shown:
        y = 1 if iv.kind == "micro" else 0
        pick = selected is not None and int(selected) == iv.index
        ax.broken_barh([(iv.t_onset, max(iv.t_offset - iv.t_onset, (hi - lo) / 800))], (y - 0.3, 0.6),
                       facecolors=COLOURS[iv.kind], alpha=0.55, edgecolor="black" if pick else "none",
                       linewidth=2 if pick else 0)
        ax.plot([iv.t_apex], [y], marker="|", markersize=22 if pick else 14, color=COLOURS[iv.kind],
                markeredgewidth=3 if pick else 1.5)
        if len(shown) <= 60 or pick:
            ax.annotate(str(iv.index + 1), (iv.t_apex, y + 0.33), ha="center", va="bottom", fontsize=8,
                        fontweight="bold" if pick else "normal")
    ax.set_xlim(lo, hi)
    ax.set_ylim(-0.7, 1.8)
    ax.set_yticks([0, 1], ["macro", "micro"])
    ax.set_xlabel("time (s)")
    ax.grid(axis="x", alpha=0.3)
    micro = sum(iv.kind == "micro" for iv in res.intervals)
    zoom = "" if (lo, hi) == (0.0, res.duration) else f"; showing {lo:.1f}-{hi:.1f} s ({len(shown)} event(s))"
    ax.set_title(f"{name or Path(res.source).name}: {len(res.intervals)} event(s), {micro} micro (red), "
                 f"{len(res.intervals) - micro} macro (blue){zoom}", fontsize=10)
    return fig


def event_choices(res: StreamEvidence) -> list[tuple[str, int]]:
    return [(f"#{iv.index + 1} {iv.kind} {iv.t_onset:.2f}-{iv.t_offset:.2f} s "
             f"({', '.join(a['code'] for a in iv.aus) or 'no AU'})", iv.index) for iv in res.intervals]


def _event(res: StreamEvidence | None, index):
    if res is None or index is None or not str(index).lstrip("-").isdigit():
        return None
    k = int(index)
    return res.intervals[k] if 0 <= k < len(res.intervals) else None


def event_gallery(s: LongSession, index) -> tuple[list[tuple], str]:
    """(gallery items, a line when the keyframes could not be re-read) for one event."""
    iv = _event(s.res, index)
    if iv is None:
        return [], ""
    try:
        images = event_images(s.source, iv)
    except Exception as e:  # noqa: BLE001 - the upload may have been removed (after an hour); say so
        log.warning("keyframes of %s not re-read: %s", s.name, e)
        return [], f"_The keyframes could not be re-read from {s.name} (upload it again)._"
    times = {"onset": iv.t_onset, "apex": iv.t_apex, "offset": iv.t_offset}
    items = [(img, f"{name} {times[name]:.2f} s" if name in times else "flow map")
             for name, img in images.items()]
    if "flow" in images:
        items.append((flow_key(), "flow key"))
    return items, ""


def event_text(res: StreamEvidence | None, index) -> str:
    iv = _event(res, index)
    if iv is None:
        return "Pick an event (the list, or its number on the timeline)." if res is not None and res.intervals else ""
    aus = "\n".join(f"- {a['code']} {a['name']}, {a['side']}, intensity {float(a['intensity']):.2f}" for a in iv.aus)
    emo = "; ".join(f"{e['fine']} ({e['coarse']}, {e['confidence']:.2f}: {e['rule']})" for e in iv.emotions[:3])
    return (f"**#{iv.index + 1} {iv.kind}-expression**, {iv.t_onset:.2f}-{iv.t_offset:.2f} s "
            f"(frames {iv.onset}-{iv.apex}-{iv.offset}, onset-apex-offset; {iv.duration:.2f} s long, "
            f"spotting score {iv.score:.2f}).  \n**Action units:**\n{aus or '- none above threshold'}\n\n"
            f"**Reading** (FACS rules): {reading(iv)}. Candidates: {emo or 'none matched'}")


def answer(s: LongSession, question: str) -> str:
    """The answer to a question about the session's long video, as ``mevqa ask`` gives it on a long video."""
    q = " ".join(str(question or "").split())
    if not q:
        return ""
    if s.analysing:
        return "The video is still being analysed; ask again when the timeline is drawn."
    if s.res is None:
        return "No long video analysed yet: upload one above."
    kind = lvqa_question(q)
    if kind is None and is_hiding_question(q):
        return answer_hidden(s.res.intervals, s.res.fps)
    if kind is None:
        return ASKABLE
    events = events_from(s.res.intervals, s.res.fps)
    text = answer_lvqa(events, kind)
    spans = ", ".join(f"{e.onset / s.res.fps:.1f}-{e.offset / s.res.fps:.1f} s ({e.kind})" for e in events[:12])
    more = f" and {len(events) - 12} more" if len(events) > 12 else ""
    basis = f"events (intervals with an action unit): {spans}{more}" if events else "no event was spotted"
    return f"{text}\n\n_Based on the {basis}._"
