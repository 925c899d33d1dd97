"""The Gradio chat app: upload a face clip (or use the built-in demo), see the evidence, ask questions;
a long video (up to 10 minutes) in its own tab (:mod:`mevqa.apps.long_tab`), a webcam live in another
(:mod:`mevqa.apps.live_tab`).

The app is a thin view over the library: :func:`mevqa.evidence.builder.compute_evidence` measures the clip
(the same call the CLI and the batch evaluation make) and :class:`mevqa.answer.agent.Agent` answers from that
Evidence, so what the app shows is what the answer rests on. This module holds the layout and the events;
uploads and the analysis worker are in :mod:`mevqa.apps.uploads`, the views in :mod:`mevqa.apps.views`, and
a session's clip, conversation and waiting questions in :mod:`mevqa.apps.chat`.

Serving rules (issues 8 and 17): every upload goes through :func:`~mevqa.apps.uploads.load_upload`; a failed
or cancelled analysis keeps the evidence already on screen; each browser session has its own
:class:`~mevqa.apps.chat.Session` (``gr.State``) and answers one question at a time, in order; Gradio's queue
bounds the concurrent work and ``delete_cache`` removes uploaded files after an hour; the server listens on
127.0.0.1 unless told otherwise.
"""
from __future__ import annotations

import argparse
import logging
import sys
import threading
from pathlib import Path
from typing import Iterator

import gradio as gr

from mevqa.answer.agent import Agent, EvidenceBackend
from mevqa.answer.questions import AU_LIST_QUESTION_PLURAL, COARSE_QUESTION, FINE_QUESTION
from mevqa.apps import long_view
from mevqa.apps.chat import NO_CLIP, Session, answer_pending, backend_text, text_of
from mevqa.apps.live_tab import build_live_tab
from mevqa.apps.long_tab import build_long_tab
from mevqa.apps.net import check_port
from mevqa.apps.page import CSS, JS, TAKE_QUESTION
from mevqa.apps.uploads import (APP_LIMITS, MAX_UPLOAD_MB, UPLOAD_TYPES, AnalysisCancelled, UploadError,  # noqa: F401
                                check_upload, demo_clip, evidence_stream, extract_frames_zip, load_upload)
from mevqa.apps.views import (AU_HEADERS, FLOW_MAX_PX, INTENSITY_NOTE, au_rows, hidden_text, interval_choices, interval_text,
                              keyframes, motion_figure, summary_line)
from mevqa.evidence.builder import Evidence, compute_evidence
from mevqa.evidence.select import main_interval
from mevqa.io.video import ClipError, ClipLimits

log = logging.getLogger("mevqa.apps.gradio_app")
_text_of = text_of  # the name tests and callers used before the split

#: The responsible-use note shown in the app (the README quotes this constant).
RESPONSIBLE_USE = (
    "**What this can and cannot tell.** mevqa measures facial movement: when the face moved "
    "(onset, apex, offset), which muscle actions (FACS action units) moved and on which side, and which "
    "emotion categories the FACS rules associate with them. A micro-expression is a brief movement that "
    "*may* show a feeling; it does not show why the person feels it, and people differ in how they "
    "express. **It is not a lie detector**: no facial measurement can tell whether someone is lying, "
    "and the hidden-emotion check is a flag to look again, never proof. Automatic AU detection is "
    "imperfect (typically 0.4-0.6 F1 per AU) and less reliable for poor lighting, head turns, occlusion "
    "and faces unlike its test data. Do not use it to make decisions about people (hiring, policing, "
    "credit, immigration, medical or legal matters), and analyse only videos of people who agreed to it."
)

SUGGESTIONS = (
    COARSE_QUESTION,
    FINE_QUESTION,
    AU_LIST_QUESTION_PLURAL,
    "Is the lip corner puller on the left or right?",
    "Is this person hiding an emotion?",
    "What happened at 1.2 s?",
)

def _fps_or_none(fps) -> float | None:
    return float(fps) if fps else None  # 0 or empty: use the file's own rate or the dataset's


def _progress_bar(stage: str, frac: float) -> str:
    n = int(round(frac * 20))
    return f"`{'#' * n}{'.' * (20 - n)}` {frac:4.0%} {stage}..."


def _strip_temp_paths(message: str) -> str:
    out = []
    for word in message.split(" "):
        core = word.rstrip(":,;")
        if "/" in core and (core.startswith("/") or core.startswith("~")):
            word = Path(core).name + word[len(core):]
        out.append(word)
    return " ".join(out)


# Outputs of an analysis: status, plot, AU table, interval dropdown, keyframes, interval text, hidden check,
# chat, cancel button.
N_OUTPUTS = 9


def _keep(n: int = N_OUTPUTS - 1) -> tuple:
    return (gr.skip(),) * n


def evidence_views(ev: Evidence, session: Session) -> tuple:
    main = main_interval(ev)  # the interval ask/eval answer MEGC questions from (mevqa.evidence.select)
    first = main.index if main is not None else None
    return (summary_line(ev), motion_figure(ev), au_rows(ev),
            gr.update(choices=interval_choices(ev), value=first), keyframes(ev, first), interval_text(ev, first),
            hidden_text(ev), session.messages(), gr.update(interactive=False))


def _failure(message: str, session: Session) -> tuple:
    # Paths of Gradio's temporary upload folder mean nothing to the user: keep only the file name.
    message = _strip_temp_paths(message)
    if "is over the limit of" in message and " s; trim" in message:  # a long video: say where it goes
        message += f" (or use the Long video tab: up to {long_view.LONG_MAX_SECONDS / 60:g} min)"
    gr.Warning(f"Could not use this clip: {message}")
    shown = Path(session.evidence.clip).name if session.evidence is not None else None
    keep = f"  \nThe evidence below is still that of **{shown}**." if shown else ""
    return ((f"**Could not use this clip:** {message}{keep}",) + _keep(N_OUTPUTS - 3)
            + (session.messages(), gr.update(interactive=False)))


def analyse_events(load, name: str, session: Session) -> Iterator[tuple]:
    """The analysis handler's body: load a clip, stream progress, then show its evidence.

    ``load`` makes the Clip. Failures become a warning and a status line; the outputs of the evidence
    already shown are skipped, so a bad upload never wipes a good analysis. A newer clip in the same
    session, or Cancel, stops this one at its next progress report.
    """
    gen = session.start_analysis(name)
    shown = Path(session.evidence.clip).name if session.evidence is not None else None
    still = f" The evidence below is still that of **{shown}** until it is done." if shown else ""
    ev = None
    try:
        yield ((f"Loading and decoding **{name}**...{still}",) + _keep(N_OUTPUTS - 3)
               + (session.messages(), gr.update(interactive=True)))
        clip = load()
        head = f"**{Path(clip.source).name}**: {clip.duration:.1f} s, {clip.n_frames} frames. "
        for item in evidence_stream(clip, stop=lambda: session.stopped(gen)):
            if isinstance(item, Evidence):
                ev = item
            else:
                yield (head + _progress_bar(*item) + still,) + _keep()
    except AnalysisCancelled:
        ev = None
    except ClipError as e:  # includes FaceError and UploadError: a message the user can act on
        session.finish_analysis(gen, None)
        yield _failure(str(e), session)
        return
    except Exception:  # noqa: BLE001 - never a traceback in the UI; the log has it
        log.exception("analysis failed")
        session.finish_analysis(gen, None)
        yield _failure("the analysis failed on this clip (an internal error; the server log has details)", session)
        return
    if ev is not None and session.finish_analysis(gen, ev):
        yield evidence_views(ev, session)
    elif gen == session.cancelled:
        keep = f" The evidence below is still that of **{shown}**." if shown else ""
        yield (f"Analysis of **{name}** cancelled.{keep}",) + _keep(N_OUTPUTS - 3) + (
            session.messages(), gr.update(interactive=False))
    # else: a newer clip took over this session; its own handler updates the views


def build_app(agent: Agent | None = None, *, limits: ClipLimits = APP_LIMITS, max_upload_mb: float = MAX_UPLOAD_MB,
              demo_on_start: bool = True, long_options: dict | None = None) -> gr.Blocks:
    """The app's Blocks: the Clip, Long video (:mod:`mevqa.apps.long_tab`) and Webcam
    (:mod:`mevqa.apps.live_tab`) tabs. ``agent`` defaults to the evidence-only backend; with
    ``demo_on_start`` each new session opens on the built-in demo clip; ``long_options``: keyword
    arguments of :func:`~mevqa.apps.long_tab.build_long_tab` (tests use short windows)."""
    agent = agent or Agent()
    # A loaded model answers one question at a time (one copy of the weights); the evidence-only
    # backend is cheap and thread-safe.
    chat_limit = 4 if isinstance(agent.backend, EvidenceBackend) else 1

    with gr.Blocks(title="mevqa: micro-expression questions", delete_cache=(1800, 3600)) as app:
        # An instance, not a factory: a callable State value adds a load event that replaces the state,
        # racing with the demo's analysis on load. Each session gets a deep copy (a fresh Session).
        session = gr.State(Session())
        gr.Markdown("## mevqa: ask about facial micro-expressions in a clip")
        gr.Markdown(RESPONSIBLE_USE, elem_classes="note", elem_id="responsible-use")
        with gr.Tabs(elem_id="tabs"):
            with gr.Tab(f"Clip (up to {limits.max_seconds:g} s)", id="clip"):
                with gr.Row(equal_height=False):
                    with gr.Column(scale=3, min_width=300):
                        with gr.Row():
                            # No file_types filter here: Gradio would refuse other types with its own error,
                            # bypassing the status line; check_upload gives the same refusal in our words.
                            upload = gr.File(label=f"Clip: a video or a zip of frames (max {max_upload_mb:g} MB, "
                                                   f"{limits.max_seconds:g} s)",
                                             height=110, elem_id="upload", scale=3, min_width=200)
                            with gr.Column(scale=1, min_width=150):
                                fps = gr.Number(value=0, label="fps (frame folders; 0 = auto)", precision=2, minimum=0,
                                                maximum=1000)
                                analyse_btn = gr.Button("Analyse", variant="primary", size="sm")
                                demo_btn = gr.Button("Use the demo clip", size="sm")
                                cancel_btn = gr.Button("Cancel analysis", size="sm", variant="stop", interactive=False,
                                                       elem_id="cancel")
                        gr.Markdown(f"Accepted: {', '.join(t.strip('.') for t in UPLOAD_TYPES)}.", elem_classes="note")
                        status = gr.Markdown(NO_CLIP, elem_id="status")
                        # The figure's own title names the clip; a component label would sit on top of it.
                        plot = gr.Plot(show_label=False, elem_id="motion-plot")
                        with gr.Row(equal_height=False):
                            pick = gr.Dropdown(choices=[], label="Interval", interactive=True, elem_id="interval",
                                               scale=1, min_width=220)
                            with gr.Column(scale=2, min_width=300):  # under the list on phones
                                iv_text = gr.Markdown(elem_id="interval-text")
                        # Captions above, not as component labels: a label floats over the first tile.
                        gr.Markdown("**Onset, apex and offset frames, the onset-to-apex flow map and its colour key** "
                                    f"(the key's rim is {FLOW_MAX_PX:g} px of motion; brighter = larger)",
                                    elem_classes="note")
                        frames = gr.Gallery(show_label=False, columns=5, height=190, object_fit="contain",
                                            allow_preview=True, elem_id="keyframes")
                        gr.Markdown(f"**Action units per interval** ({INTENSITY_NOTE})", elem_classes="note")
                        table = gr.Dataframe(headers=AU_HEADERS, show_label=False, interactive=False, wrap=True,
                                             max_height=420, column_widths=["7%", "15%", "37%", "18%", "23%"],
                                             elem_id="au-table")
                        hidden = gr.Markdown(elem_id="hidden")
                    with gr.Column(scale=2, min_width=300):
                        gr.Markdown(backend_text(agent), elem_id="backend")
                        gr.Markdown("**Questions about the clip on screen**", elem_classes="note")
                        # Per-message copy only: the toolbar of share/copy-all buttons sat over the first message.
                        chat = gr.Chatbot(show_label=False, height=440, elem_id="chat", buttons=["copy"], feedback_options=None,
                                          placeholder="Ask about the clip, or click a suggestion below.")
                        with gr.Row():
                            msg = gr.Textbox(placeholder="e.g. Which action units are shown?", show_label=False,
                                             scale=5, elem_id="question", submit_btn=False, min_width=160)
                            send = gr.Button("Ask", variant="primary", scale=1, min_width=60, elem_id="ask-button")
                        gr.Markdown("Suggestions (MEGC question types):", elem_classes="note")
                        with gr.Column(elem_classes="suggest"):
                            buttons = [gr.Button(q, size="sm") for q in SUGGESTIONS]
                        clear = gr.Button("Clear chat", size="sm", variant="secondary")
                        api_ask = gr.Button("ask (API)", visible=False)
            with gr.Tab(f"Long video (up to {long_view.LONG_MAX_SECONDS / 60:g} min)", id="long"):
                build_long_tab(max_upload_mb=max_upload_mb, **(long_options or {}))
            with gr.Tab("Webcam (live)", id="webcam"):
                build_live_tab()

        outputs = [status, plot, table, pick, frames, iv_text, hidden, chat, cancel_btn]

        def analyse(path, rate, s):
            if not path:
                yield _failure("no file uploaded yet", s)
                return
            yield from analyse_events(lambda: load_upload(path, fps=_fps_or_none(rate), limits=limits,
                                                          max_mb=max_upload_mb), Path(path).name, s)

        def use_demo(s):
            yield from analyse_events(demo_clip, "the demo clip", s)

        def cancel(s):
            if s.cancel():
                return "Cancelling the analysis...", gr.update(interactive=False)
            return gr.skip(), gr.update(interactive=False)

        def show_interval(index, s):
            return keyframes(s.evidence, index), interval_text(s.evidence, index)

        def ask(question, s):
            s.add_question(question)
            return s.messages()

        def drain(s):
            yield from answer_pending(agent, s)

        def ask_and_answer(question, s):  # the API's /ask: one call, the chat with its answer
            s.add_question(question)
            yield from answer_pending(agent, s)

        def clear_chat(s):
            s.clear()
            return s.messages()

        # Progress is streamed as text into the status line; Gradio's own indicator (a timer) goes on the
        # plot only. "multiple": a second clip while one is analysed starts at once and stops the first.
        common = dict(outputs=outputs, concurrency_id="analysis", concurrency_limit=2, show_progress="minimal",
                      show_progress_on=[plot], trigger_mode="multiple")
        chat_out = dict(concurrency_id="chat", concurrency_limit=chat_limit, show_progress="hidden")
        # Taking a question is instant and in order (one at a time for the whole server: microseconds).
        take = dict(concurrency_id="take", concurrency_limit=1, trigger_mode="multiple", show_progress="hidden")
        for ev in (upload.upload(analyse, [upload, fps, session], api_name="analyse", **common),
                   analyse_btn.click(analyse, [upload, fps, session], api_visibility="private", **common),
                   demo_btn.click(use_demo, [session], api_name="use_demo", **common)):
            ev.then(drain, [session], [chat], api_visibility="private", **chat_out)
        if demo_on_start:
            app.load(use_demo, [session], api_visibility="private", **common).then(
                drain, [session], [chat], api_visibility="private", **chat_out)
        cancel_btn.click(cancel, [session], [status, cancel_btn], api_visibility="private",
                         concurrency_limit=None).then(drain, [session], [chat], api_visibility="private", **chat_out)
        # .input (user picks), not .change: evidence_views already fills the gallery for a new clip, and a
        # second write of the same images races with the browser fetching them (truncated responses).
        pick.input(show_interval, [pick, session], [frames, iv_text], api_name="show_interval")

        # In the browser TAKE_QUESTION hands over the question the page took from the box (see JS); Enter is
        # handled there too (it clicks Ask). The API's /ask (a button never shown) answers in one call.
        api_ask.click(ask_and_answer, [msg, session], [chat], api_name="ask", **chat_out)
        for trigger in (send.click, msg.submit):  # msg.submit only fires without the page script
            trigger(ask, [msg, session], [chat], api_visibility="private", js=TAKE_QUESTION, **take).then(
                drain, [session], [chat], api_visibility="private", **chat_out)
        for b in buttons:  # a button's value is its label: the question itself
            b.click(ask, [b, session], [chat], api_visibility="private", **take).then(
                drain, [session], [chat], api_visibility="private", **chat_out)
        clear.click(clear_chat, [session], [chat], api_visibility="private")
        chat.clear(clear_chat, [session], [chat], api_visibility="private")  # the chat's own trash icon
    # Two CPU cores: two analyses at once use them both; more would only queue inside the process.
    app.queue(default_concurrency_limit=2, max_size=64)
    return app


def launch_options(max_upload_mb: float = MAX_UPLOAD_MB) -> dict:
    """Keyword arguments for ``Blocks.launch`` (theme, css and js go there in Gradio 6)."""
    return dict(theme=gr.themes.Soft(), css=CSS, js=JS, max_file_size=f"{max_upload_mb:g}mb", show_error=False)


def make_agent(model=None, adapter=None, load_in_4bit=False, load_in_8bit=False) -> Agent:
    """An agent for the app: whatever goes wrong loading a model, the app still starts (evidence-only,
    with a notice saying why)."""
    try:
        return Agent.from_args(model=model, adapter=adapter, load_in_4bit=load_in_4bit,
                               load_in_8bit=load_in_8bit, fallback=True)
    except Exception as e:  # noqa: BLE001 - e.g. --adapter without --model, a missing dependency
        log.warning("model not loaded: %s", e)
        first = str(e).splitlines()[0] if str(e) else type(e).__name__
        return Agent(notice=f"Could not load the model ({first}); answering with the evidence-only backend.")


def _warm_demo() -> None:
    """Compute the demo clip's evidence before the first visitor asks (it is cached)."""
    try:
        compute_evidence(demo_clip())
    except Exception:  # noqa: BLE001 - a visitor will see the error in the UI instead
        log.exception("demo warm-up failed")


def launch(model=None, adapter=None, load_in_4bit=False, load_in_8bit=False, host="127.0.0.1", port=7860):
    """Start the app (blocking). Listens on 127.0.0.1 unless ``host`` says otherwise."""
    check_port(host, port)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    logging.getLogger("httpx").setLevel(logging.WARNING)  # Gradio's own start-up probes, one line each
    agent = make_agent(model, adapter, load_in_4bit, load_in_8bit)
    if agent.notice:
        log.warning(agent.notice)
    threading.Thread(target=_warm_demo, name="mevqa-demo-warmup", daemon=True).start()
    app = build_app(agent)
    print(f"mevqa app on http://{host}:{port} ({agent.backend_name})")
    app.launch(server_name=host, server_port=port, quiet=True, **launch_options())


def main(argv: list[str] | None = None) -> int:
    """``python app/app.py`` / ``python -m mevqa.apps.gradio_app``: the same flags as ``mevqa app``."""
    ap = argparse.ArgumentParser(prog="mevqa-app", description="the mevqa Gradio chat app")
    ap.add_argument("--model", help="Qwen-VL hub id or local folder (default: the evidence-only backend)")
    ap.add_argument("--adapter", help="LoRA adapter folder (PEFT format) for --model")
    ap.add_argument("--load-in-4bit", action="store_true", help="4-bit weights (bitsandbytes)")
    ap.add_argument("--load-in-8bit", action="store_true", help="8-bit weights (bitsandbytes)")
    ap.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1: this machine only)")
    ap.add_argument("--port", type=int, default=7860, help="port to listen on (default 7860)")
    a = ap.parse_args(argv)
    try:
        launch(model=a.model, adapter=a.adapter, load_in_4bit=a.load_in_4bit, load_in_8bit=a.load_in_8bit,
               host=a.host, port=a.port)
    except OSError as e:
        print(f"mevqa-app: error: {e}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
