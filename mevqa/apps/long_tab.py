"""The app's "Long video" tab: upload a video of up to 10 minutes, follow and cancel its streamed
analysis, zoom the timeline of events, pick an event to see its keyframes, flow map, AUs and reading,
and ask the long-video questions. The views and the analysis are :mod:`mevqa.apps.long_view`; this
module holds only the components and their events.

Failures (a refused upload, a video with no face, an internal error) are one status line; the result
already on screen stays.
"""
from __future__ import annotations

import logging
from pathlib import Path
from typing import Iterator

import gradio as gr

from mevqa.apps.long_view import (LONG_MAX_SECONDS, LONG_QUESTIONS, LongSession, answer, check_long_upload,
                                  event_choices, event_gallery, event_text, stream_analysis, summary, timeline_figure,
                                  view_range)
from mevqa.apps.uploads import MAX_UPLOAD_MB, AnalysisCancelled
from mevqa.evidence.stream import OVERLAP_SECONDS, WINDOW_SECONDS
from mevqa.io.video import ClipError

log = logging.getLogger("mevqa.apps.long_tab")

NO_VIDEO = (f"No long video yet: upload one (up to {LONG_MAX_SECONDS / 60:g} minutes). It is read as a stream, "
            "about as fast as it plays on two cores; the timeline is drawn when it is done.")


def _bar(done: int, total: int) -> str:
    frac = min(1.0, done / total) if total else 0.0
    n = int(round(frac * 20))
    return f"`{'#' * n}{'.' * (20 - n)}` {frac:4.0%}"


def _one_line(message: str) -> str:
    """The message without temporary folders (Gradio's upload paths mean nothing to the user)."""
    words = [Path(w).name if w.startswith("/") else w for w in str(message).split(" ")]
    return (" ".join(words).splitlines() or [""])[0]


def build_long_tab(*, max_seconds: float = LONG_MAX_SECONDS, max_upload_mb: float = MAX_UPLOAD_MB,
                   window_seconds: float = WINDOW_SECONDS, overlap_seconds: float = OVERLAP_SECONDS) -> None:
    """The tab's components and events, inside the caller's ``gr.Blocks`` (and ``gr.Tab``).
    ``window_seconds``/``overlap_seconds``: the streaming windows (tests use short ones)."""
    state = gr.State(LongSession())
    with gr.Row(equal_height=False):
        with gr.Column(scale=3, min_width=300):
            with gr.Row():
                upload = gr.File(label=f"Long video (max {max_upload_mb:g} MB, {max_seconds / 60:g} min)",
                                 height=110, elem_id="long-upload", scale=3, min_width=200)
                with gr.Column(scale=1, min_width=150):
                    go = gr.Button("Analyse", variant="primary", size="sm", elem_id="long-analyse")
                    stop = gr.Button("Cancel analysis", size="sm", variant="stop", interactive=False,
                                     elem_id="long-cancel")
            status = gr.Markdown(NO_VIDEO, elem_id="long-status")
            plot = gr.Plot(show_label=False, elem_id="timeline")
            with gr.Row():
                start = gr.Number(value=0, label="from (s)", minimum=0, precision=1, elem_id="zoom-from", min_width=90)
                end = gr.Number(value=0, label="to (s) (0 = end)", minimum=0, precision=1, elem_id="zoom-to", min_width=90)
                zoom = gr.Button("Zoom", size="sm", elem_id="zoom")
                whole = gr.Button("Whole video", size="sm", elem_id="zoom-all")
            with gr.Row(equal_height=False):
                pick = gr.Dropdown(choices=[], label="Event", interactive=True, elem_id="event", scale=1, min_width=220)
                with gr.Column(scale=2, min_width=300):
                    text = gr.Markdown(elem_id="event-text")
            gr.Markdown("**Onset, apex and offset frames (re-read from the video), the onset-to-apex flow map and "
                        "its key** (head motion left by the alignment is included)", elem_classes="note")
            frames = gr.Gallery(show_label=False, columns=5, height=190, object_fit="contain", elem_id="event-frames")
        with gr.Column(scale=2, min_width=300):
            gr.Markdown("**Questions about the long video** (answered from its events, as `mevqa ask` answers them)",
                        elem_classes="note")
            chat = gr.Chatbot(show_label=False, height=360, elem_id="long-chat", buttons=["copy"], feedback_options=None,
                              placeholder="Ask how many events, which AUs, or the type of the N-th event.")
            with gr.Row():
                box = gr.Textbox(placeholder="e.g. How many micro-expression events appear in this video?",
                                 show_label=False, scale=5, elem_id="long-question", min_width=160)
                ask_btn = gr.Button("Ask", variant="primary", scale=1, min_width=60, elem_id="long-ask")
            with gr.Column(elem_classes="suggest"):
                suggestions = [gr.Button(q, size="sm") for q in LONG_QUESTIONS]

    outputs = [status, plot, pick, text, frames, start, end, chat, stop]
    keep = (gr.skip(),) * 7

    def long_analyse(path, s: LongSession) -> Iterator[tuple]:
        if not path:
            yield ("**Could not use this video:** no file uploaded yet",) + keep + (gr.update(interactive=False),)
            return
        name = Path(path).name
        gen = s.start()
        res = None
        try:
            src, seconds = check_long_upload(path, max_seconds=max_seconds, max_mb=max_upload_mb)
            yield (f"Reading **{name}** ({seconds:.0f} s) as a stream...",) + keep + (gr.update(interactive=True),)
            for item in stream_analysis(src, stop=lambda: s.stopped(gen), max_seconds=max_seconds,
                                        window_seconds=window_seconds, overlap_seconds=overlap_seconds):
                if isinstance(item, tuple):
                    yield (f"Analysing **{name}**: {_bar(*item)} ({item[0] / max(1, item[1]) * seconds:.0f} of "
                           f"{seconds:.0f} s)...",) + keep + (gr.update(interactive=True),)
                else:
                    res = item
        except AnalysisCancelled:
            s.finish(gen, None)
            if gen == s.cancelled:
                yield (f"Analysis of **{name}** cancelled.",) + keep + (gr.update(interactive=False),)
            return  # else a newer upload took over; its own handler updates the views
        except ClipError as e:  # includes UploadError and FaceError: a line the user can act on
            s.finish(gen, None)
            yield (f"**Could not use this video:** {_one_line(str(e))}",) + keep + (gr.update(interactive=False),)
            return
        except Exception:  # noqa: BLE001 - never a traceback in the UI; the log has it
            log.exception("long-video analysis failed")
            s.finish(gen, None)
            yield ("**Could not use this video:** the analysis failed (an internal error; the server log has details)",
                   ) + keep + (gr.update(interactive=False),)
            return
        if not s.finish(gen, res, str(src), name):
            return
        first = res.intervals[0].index if res.intervals else None
        items, missing = event_gallery(s, first)
        yield (summary(res, name), timeline_figure(res, selected=first, name=name),
               gr.update(choices=event_choices(res), value=first), event_text(res, first) + missing, items,
               0, round(res.duration, 1), list(s.messages), gr.update(interactive=False))

    def long_cancel(s: LongSession):
        if s.cancel():
            return "Cancelling the analysis...", gr.update(interactive=False)
        return gr.skip(), gr.update(interactive=False)

    def long_redraw(lo, hi, index, s: LongSession):
        if s.res is None:
            return gr.skip(), gr.skip(), gr.skip()
        lo, hi = view_range(s.res, lo, hi)
        return timeline_figure(s.res, start=lo, end=hi, selected=index, name=s.name), lo, hi

    def long_show_all(index, s: LongSession):
        return long_redraw(0, 0, index, s)

    def long_show_event(index, lo, hi, s: LongSession):
        if s.res is None:
            return gr.skip(), gr.skip(), gr.skip()
        items, missing = event_gallery(s, index)
        return (event_text(s.res, index) + missing, items,
                timeline_figure(s.res, start=lo, end=hi, selected=index, name=s.name))

    def long_ask(question, s: LongSession):
        if question and question.strip():
            s.messages += [{"role": "user", "content": question.strip()},
                           {"role": "assistant", "content": answer(s, question)}]
        return list(s.messages), ""

    common = dict(concurrency_id="analysis", concurrency_limit=2, show_progress="minimal",
                  show_progress_on=[plot], trigger_mode="multiple")
    upload.upload(long_analyse, [upload, state], outputs, api_name="analyse_long", **common)
    go.click(long_analyse, [upload, state], outputs, api_visibility="private", **common)
    stop.click(long_cancel, [state], [status, stop], api_visibility="private", concurrency_limit=None)
    zoom.click(long_redraw, [start, end, pick, state], [plot, start, end], api_visibility="private")
    for field in (start, end):
        field.submit(long_redraw, [start, end, pick, state], [plot, start, end], api_visibility="private")
    whole.click(long_show_all, [pick, state], [plot, start, end], api_visibility="private")
    pick.input(long_show_event, [pick, start, end, state], [text, frames, plot], api_name="show_event")
    ask_btn.click(long_ask, [box, state], [chat, box], api_name="ask_long")
    box.submit(long_ask, [box, state], [chat, box], api_visibility="private")
    for b in suggestions:
        b.click(long_ask, [b, state], [chat, box], api_visibility="private")
