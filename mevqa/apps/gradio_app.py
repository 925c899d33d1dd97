"""The Gradio chat app: upload a face clip (or use the built-in demo), see the evidence, ask questions.

The app is a thin view over the library: :func:`mevqa.evidence.builder.compute_evidence` measures the clip
(the same call the CLI and the batch evaluation make) and :class:`mevqa.answer.agent.Agent` answers from that
Evidence, so what the app shows is what the answer rests on.

Serving rules (issue 8):
- every upload goes through :func:`load_upload`, which enforces size, type and clip limits and turns
  every failure into one line for the UI; a failed upload keeps the evidence already on screen;
- zipped frame folders are unpacked by :func:`extract_frames_zip` into a temporary folder that is
  deleted as soon as the frames are in memory (guards against zip-slip and zip bombs);
- each browser session has its own Evidence (``gr.State``); Gradio's queue bounds the concurrent
  work and ``delete_cache`` removes uploaded files after an hour;
- the server listens on 127.0.0.1 unless told otherwise.
"""
from __future__ import annotations

import argparse
import logging
import queue
import stat
import tempfile
import threading
import zipfile
from pathlib import Path
from typing import Iterator

import gradio as gr

from mevqa.answer.agent import Agent, EvidenceBackend
from mevqa.evidence.builder import Evidence, compute_evidence
from mevqa.answer.questions import AU_LIST_QUESTION_PLURAL, COARSE_QUESTION, FINE_QUESTION
from mevqa.io.demo import demo_clip as load_demo
from mevqa.io.video import IMAGE_EXTENSIONS, VIDEO_EXTENSIONS, Clip, ClipError, ClipLimits

log = logging.getLogger("mevqa.apps.gradio_app")

# -- texts and limits -------------------------------------------------------------------------------

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

MAX_UPLOAD_MB = 200
#: Stricter than the library defaults: a web upload is held in memory for the session, and a
#: micro-expression clip is seconds long (CASME II and SAMM clips are a few hundred frames).
APP_LIMITS = ClipLimits(max_frames=1500, max_seconds=30.0, max_side=960, min_side=64)
#: A zipped frame folder may hold at most this many bytes once unpacked (zip-bomb guard).
ZIP_MAX_UNPACKED_MB = 1024
UPLOAD_TYPES = tuple(VIDEO_EXTENSIONS) + (".zip",)

SUGGESTIONS = (
    COARSE_QUESTION,
    FINE_QUESTION,
    AU_LIST_QUESTION_PLURAL,
    "Is the lip corner puller on the left or right?",
    "Is this person hiding an emotion?",
    "What happened at 1.2 s?",
)

AU_HEADERS = ["interval", "code", "name", "side", "intensity"]
NO_CLIP = "No clip analysed yet: upload a video (or a zip of frames), or press **Use the demo clip**."

CSS = """
#status {min-height: 2.2em}
#backend {font-size: 0.9em}
.note {font-size: 0.8em; opacity: 0.9}
.suggest button {font-size: 0.82em !important; white-space: normal !important}
"""


class UploadError(ClipError):
    """An upload refused before decoding (size, type, archive content); one line for the UI."""


# -- uploads --------------------------------------------------------------------------------------------
def check_upload(path, *, max_mb: float = MAX_UPLOAD_MB) -> Path:
    """The uploaded file, if its type and size are acceptable."""
    p = Path(path)
    if not p.is_file():
        raise UploadError("the upload did not arrive; please try again")
    if p.suffix.lower() not in UPLOAD_TYPES:
        raise UploadError(f"{p.name}: not a video or a zip of frames (allowed: {', '.join(UPLOAD_TYPES)})")
    size_mb = p.stat().st_size / 2**20
    if size_mb > max_mb:
        raise UploadError(f"{p.name}: {size_mb:.0f} MB is over the upload limit of {max_mb:g} MB")
    if size_mb == 0:
        raise UploadError(f"{p.name}: the file is empty")
    return p


def _is_symlink(info: zipfile.ZipInfo) -> bool:
    return stat.S_ISLNK(info.external_attr >> 16)


def _safe_target(root: Path, name: str) -> Path:
    """Where a member may be written: inside ``root``, or UploadError (zip-slip: ``../``, absolute paths)."""
    target = (root / name).resolve()
    if Path(name).is_absolute() or ".." in Path(name).parts or not target.is_relative_to(root):
        raise UploadError(f"the zip holds an unsafe path ({name!r}); refusing it")
    return target


def extract_frames_zip(path, dest, *, max_files: int = APP_LIMITS.max_frames,
                       max_unpacked_mb: float = ZIP_MAX_UNPACKED_MB) -> Path:
    """Unpack the image frames of a zipped frame folder into ``dest``; return the folder holding them.

    Only image files are written (nested archives, scripts and links are skipped). Unpacked bytes are
    counted while writing, not taken from the archive's headers, which a zip bomb can fake.
    """
    root = Path(dest).resolve()
    budget = int(max_unpacked_mb * 2**20)
    try:
        zf = zipfile.ZipFile(path)
    except (zipfile.BadZipFile, OSError) as e:
        raise UploadError(f"{Path(path).name}: not a readable zip file ({e})") from None
    with zf:
        for m in zf.infolist():  # refuse the whole archive if any entry points outside it
            _safe_target(root, m.filename)
        members = [m for m in zf.infolist() if not m.is_dir() and not _is_symlink(m)
                   and Path(m.filename).suffix.lower() in IMAGE_EXTENSIONS
                   and not any(part.startswith((".", "__MACOSX")) for part in Path(m.filename).parts)]
        if not members:
            raise UploadError(f"{Path(path).name}: the zip holds no image frames ({', '.join(IMAGE_EXTENSIONS)})")
        if len(members) > max_files:
            raise UploadError(f"{Path(path).name}: {len(members)} frames is over the limit of {max_files}")
        if sum(m.file_size for m in members) > budget:
            raise UploadError(f"{Path(path).name}: unpacks to more than {max_unpacked_mb:g} MB")
        written, folders = 0, set()
        for m in members:
            target = _safe_target(root, m.filename)
            target.parent.mkdir(parents=True, exist_ok=True)
            try:
                with zf.open(m) as src, open(target, "wb") as out:
                    while chunk := src.read(1 << 20):
                        written += len(chunk)
                        if written > budget:
                            raise UploadError(f"{Path(path).name}: unpacks to more than {max_unpacked_mb:g} MB")
                        out.write(chunk)
            except (zipfile.BadZipFile, EOFError, NotImplementedError, RuntimeError) as e:
                raise UploadError(f"{Path(path).name}: damaged or encrypted zip ({e})") from None
            folders.add(target.parent)
    if len(folders) > 1:
        raise UploadError(f"{Path(path).name}: frames in {len(folders)} folders; zip the frames of one clip only")
    return folders.pop()


def load_upload(path, *, fps: float | None = None, limits: ClipLimits = APP_LIMITS,
                max_mb: float = MAX_UPLOAD_MB) -> Clip:
    """A Clip from an uploaded video or zipped frame folder; ClipError (one line) when unusable."""
    p = check_upload(path, max_mb=max_mb)
    if p.suffix.lower() != ".zip":
        clip = Clip.load(p, fps=fps, limits=limits)
    else:
        # The frames are in memory once loaded, so the unpacked copy can go at once.
        with tempfile.TemporaryDirectory(prefix="mevqa-zip-") as tmp:
            folder = extract_frames_zip(p, tmp, max_files=limits.max_frames)
            clip = Clip.load(folder, fps=fps, limits=limits)
    clip.source = p.name  # the user's file name, not a temporary path, in titles and answers
    return clip


def demo_clip() -> Clip:
    """The built-in demo clip, shipped with the package (``mevqa/assets/demo.mp4``, :mod:`mevqa.io.demo`)."""
    return load_demo()


# -- computing the evidence, with progress ----------------------------------------------------------------
def evidence_stream(clip: Clip, *, cache: bool = True) -> Iterator[tuple[str, float] | Evidence]:
    """Run :func:`compute_evidence` in a worker thread; yield ``(stage, fraction)`` while it runs, then
    the Evidence. Exceptions of the computation are re-raised here, in the caller's thread."""
    events: queue.Queue = queue.Queue()

    def work():
        try:
            events.put(compute_evidence(clip, cache=cache, progress=lambda s, f: events.put((s, float(f)))))
        except BaseException as e:  # noqa: BLE001 - handed to the caller's thread
            events.put(e)

    threading.Thread(target=work, name="mevqa-evidence", daemon=True).start()
    while True:
        item = events.get()
        if isinstance(item, BaseException):
            raise item
        yield item
        if isinstance(item, Evidence):
            return


# -- views of the evidence --------------------------------------------------------------------------------
def motion_figure(ev: Evidence):
    """Evidence.plot_motion(), detached from pyplot so figures do not pile up in a long-running server."""
    import matplotlib.pyplot as plt

    fig = ev.plot_motion()
    plt.close(fig)  # a closed figure still renders; pyplot just stops holding a reference to it
    return fig


def au_rows(ev: Evidence) -> list[list]:
    rows = []
    for iv in ev.intervals:
        if not iv.aus:
            rows.append([iv.label(), "-", "no action unit above threshold", "-", "-"])
        for a in iv.aus:
            rows.append([iv.label(), a["code"], a["name"], a["side"], f"{float(a['intensity']):.2f}"])
    return rows


def interval_choices(ev: Evidence) -> list[tuple[str, int]]:
    return [(iv.label() + (" (assumed)" if iv.assumed else ""), iv.index) for iv in ev.intervals]


def keyframes(ev: Evidence | None, index) -> list[tuple]:
    """Onset, apex and offset crops beside the onset-to-apex flow map of one interval, with captions."""
    if ev is None or index is None or not (0 <= int(index) < len(ev.intervals)):
        return []
    iv = ev.intervals[int(index)]
    frames = {"onset": iv.onset, "apex": iv.apex, "offset": iv.offset}
    out = []
    for name in ("onset", "apex", "offset", "flow"):
        img = iv.images.get(name)
        if img is None:
            continue
        # Short captions: the gallery tiles are narrow (frame numbers are in the interval text).
        caption = f"{name} {frames[name] / ev.fps:.2f} s" if name in frames else "flow map"
        out.append((img, caption))
    return out


def interval_text(ev: Evidence | None, index) -> str:
    if ev is None or index is None or not (0 <= int(index) < len(ev.intervals)):
        return ""
    iv = ev.intervals[int(index)]
    emo = "; ".join(f"{e['fine']} ({e['coarse']}, {e['confidence']:.2f}: {e['rule']})" for e in iv.emotions[:3])
    note = " No interval stood out; this is the strongest motion in the clip." if iv.assumed else ""
    return (f"**{iv.label()}**: frames {iv.onset}-{iv.apex}-{iv.offset} (onset-apex-offset), "
            f"{iv.duration:.2f} s long.{note} Flow map hue: direction, brightness: size.  \n"
            f"Emotion candidates by FACS rules: {emo or 'none matched'}")


def hidden_text(ev: Evidence) -> str:
    if not ev.intervals:
        return "**Hidden-emotion check:** no expression was spotted, so there is nothing to check."
    if not ev.hidden:
        return ("**Hidden-emotion check:** nothing flagged (no micro-expression conflicts with its context "
                "or appears on an otherwise neutral face).")
    lines = [f"- {h.kind}: {h.explanation}" for h in ev.hidden]
    return ("**Hidden-emotion check** (a flag to look again, not proof of anything):\n" + "\n".join(lines))


def summary_line(ev: Evidence) -> str:
    micro = sum(iv.kind == "micro" for iv in ev.intervals)
    macro = len(ev.intervals) - micro
    lost = f"; face lost in {len(ev.lost_frames)} frame(s)" if ev.lost_frames else ""
    return (f"**{Path(ev.clip).name}** analysed: {ev.duration:.1f} s, {ev.n_frames} frames at {ev.fps:g} fps, "
            f"{ev.width}x{ev.height}; {micro} micro- and {macro} macro-expression interval(s){lost}.")


def evidence_views(ev: Evidence) -> tuple:
    """Values for (status, plot, AU table, interval dropdown, keyframes, interval text, hidden, state)."""
    first = ev.primary.index if ev.primary is not None else None
    return (summary_line(ev), motion_figure(ev), au_rows(ev),
            gr.update(choices=interval_choices(ev), value=first), keyframes(ev, first), interval_text(ev, first),
            hidden_text(ev), ev)


N_EVIDENCE_OUTPUTS = 8


def _progress_bar(stage: str, frac: float) -> str:
    n = int(round(frac * 20))
    return f"`{'#' * n}{'.' * (20 - n)}` {frac:4.0%} {stage}..."


def analyse_events(load) -> Iterator[tuple]:
    """The analysis handler's body: load a clip, stream progress, then show its evidence.

    ``load`` makes the Clip. Failures become a warning and a status line; the outputs of the evidence
    already shown are skipped, so a bad upload never wipes a good analysis.
    """
    keep = (gr.skip(),) * (N_EVIDENCE_OUTPUTS - 1)
    try:
        yield ("Loading and decoding the clip...",) + keep
        clip = load()
        head = f"**{Path(clip.source).name}**: {clip.duration:.1f} s, {clip.n_frames} frames. "
        for item in evidence_stream(clip):
            if isinstance(item, Evidence):
                yield evidence_views(item)
            else:
                yield (head + _progress_bar(*item),) + keep
    except ClipError as e:  # includes FaceError and UploadError: a message the user can act on
        yield _failure(str(e)) + keep
    except Exception:  # noqa: BLE001 - never a traceback in the UI; the log has it
        log.exception("analysis failed")
        yield _failure("the analysis failed on this clip (an internal error; the server log has details)") + keep


def _failure(message: str) -> tuple:
    # Paths of Gradio's temporary upload folder mean nothing to the user: keep only the file name.
    message = _strip_temp_paths(message)
    gr.Warning(f"Could not use this clip: {message}")
    return (f"**Could not use this clip:** {message}  \nThe evidence below (if any) is from the previous clip.",)


def _strip_temp_paths(message: str) -> str:
    out = []
    for word in message.split(" "):
        core = word.rstrip(":,;")
        if "/" in core and (core.startswith("/") or core.startswith("~")):
            word = Path(core).name + word[len(core):]
        out.append(word)
    return " ".join(out)


# -- chat -------------------------------------------------------------------------------------------------
def _text_of(content) -> str:
    """Plain text of a Chatbot message's content (a string, or Gradio's list of typed parts)."""
    if isinstance(content, str):
        return content
    if isinstance(content, dict):
        return str(content.get("text") or content.get("value") or "")
    if isinstance(content, (list, tuple)):
        return " ".join(_text_of(c) for c in content if c is not None).strip()
    return "" if content is None else str(content)


def plain_history(history) -> list[dict]:
    """Chatbot history as the agent's ``{"role", "content"}`` string messages."""
    return [{"role": m["role"], "content": _text_of(m.get("content"))} for m in (history or [])
            if isinstance(m, dict) and m.get("role") in ("user", "assistant")]


def chat_events(agent: Agent, question: str, history, ev: Evidence | None) -> Iterator[list[dict]]:
    """The chat history with the question appended, then with the answer growing in the last message."""
    question = (question or "").strip()
    msgs = plain_history(history)
    if not question:
        yield msgs
        return
    before = list(msgs)
    msgs = msgs + [{"role": "user", "content": question}, {"role": "assistant", "content": ""}]
    if ev is None:
        msgs[-1]["content"] = NO_CLIP
        yield msgs
        return
    yield msgs
    try:
        for text in agent.stream(ev, question, before):
            msgs[-1]["content"] = text
            yield msgs
    except Exception:  # noqa: BLE001 - the chat keeps working; the log has the traceback
        log.exception("answering failed")
        msgs[-1]["content"] = "Sorry, I could not answer that (an internal error; the server log has details)."
        yield msgs


def backend_text(agent: Agent) -> str:
    text = f"**Backend:** {agent.backend_name}"
    if agent.notice:
        text += f"  \n**Notice:** {agent.notice}"
    return text


# -- the app ----------------------------------------------------------------------------------------------
def _fps_or_none(fps) -> float | None:
    return float(fps) if fps else None  # 0 or empty: use the file's own rate or the dataset's


def build_app(agent: Agent | None = None, *, limits: ClipLimits = APP_LIMITS, max_upload_mb: float = MAX_UPLOAD_MB,
              demo_on_start: bool = True) -> gr.Blocks:
    """The app's Blocks. ``agent`` defaults to the evidence-only backend; with ``demo_on_start`` each new
    session opens on the built-in demo clip."""
    agent = agent or Agent()
    # A loaded model answers one question at a time (one copy of the weights); the evidence-only
    # backend is cheap and thread-safe.
    chat_limit = 4 if isinstance(agent.backend, EvidenceBackend) else 1

    with gr.Blocks(title="mevqa: micro-expression questions", delete_cache=(1800, 3600)) as app:
        ev_state = gr.State(None)
        gr.Markdown("## mevqa: ask about facial micro-expressions in a clip")
        gr.Markdown(RESPONSIBLE_USE, elem_classes="note", elem_id="responsible-use")
        with gr.Row(equal_height=False):
            with gr.Column(scale=3):
                with gr.Row():
                    # No file_types filter here: Gradio would refuse other types with its own error,
                    # bypassing the status line; check_upload gives the same refusal in our words.
                    upload = gr.File(label=f"Clip: video or zip of frames (max {max_upload_mb:g} MB, "
                                           f"{limits.max_seconds:g} s)", height=110, elem_id="upload", scale=3)
                    with gr.Column(scale=1, min_width=150):
                        fps = gr.Number(value=0, label="fps (frame folders; 0 = auto)", precision=2, minimum=0,
                                        maximum=1000)
                        analyse_btn = gr.Button("Analyse", variant="primary", size="sm")
                        demo_btn = gr.Button("Use the demo clip", size="sm")
                status = gr.Markdown(NO_CLIP, elem_id="status")
                # The figure's own title names the clip; a component label would sit on top of it.
                plot = gr.Plot(show_label=False, elem_id="motion-plot")
                with gr.Row(equal_height=False):
                    pick = gr.Dropdown(choices=[], label="Interval", interactive=True, elem_id="interval",
                                       scale=1, min_width=220)
                    iv_text = gr.Markdown(elem_id="interval-text")
                frames = gr.Gallery(label="Onset, apex and offset frames beside the onset-to-apex flow map",
                                    columns=4, height=180, object_fit="contain", allow_preview=True,
                                    elem_id="keyframes")
                table = gr.Dataframe(headers=AU_HEADERS, label="Action units per interval", interactive=False,
                                     wrap=True, max_height=260, elem_id="au-table")
                hidden = gr.Markdown(elem_id="hidden")
            with gr.Column(scale=2):
                gr.Markdown(backend_text(agent), elem_id="backend")
                chat = gr.Chatbot(label="Questions about the clip", height=440, elem_id="chat",
                                  placeholder="Ask about the clip, or click a suggestion below.")
                with gr.Row():
                    msg = gr.Textbox(placeholder="e.g. Which action units are shown?", show_label=False,
                                     scale=5, elem_id="question", submit_btn=False)
                    send = gr.Button("Ask", variant="primary", scale=1, min_width=60)
                gr.Markdown("Suggestions (MEGC question types):", elem_classes="note")
                with gr.Column(elem_classes="suggest"):
                    buttons = [gr.Button(q, size="sm") for q in SUGGESTIONS]
                clear = gr.Button("Clear chat", size="sm", variant="secondary")

        outputs = [status, plot, table, pick, frames, iv_text, hidden, ev_state]

        def analyse(path, rate):
            if not path:
                yield _failure("no file uploaded yet") + (gr.skip(),) * (N_EVIDENCE_OUTPUTS - 1)
                return
            yield from analyse_events(lambda: load_upload(path, fps=_fps_or_none(rate), limits=limits,
                                                          max_mb=max_upload_mb))

        def use_demo():
            yield from analyse_events(demo_clip)

        def show_interval(index, ev):
            return keyframes(ev, index), interval_text(ev, index)

        def respond(question, history, ev):
            # The question box is cleared with the first update only: later updates leave it alone, so a
            # question typed while an answer streams is not erased.
            for k, msgs in enumerate(chat_events(agent, question, history, ev)):
                yield msgs, ("" if k == 0 else gr.skip())

        def respond_chat_only(question, history, ev):  # suggestion buttons leave the box alone
            yield from chat_events(agent, question, history, ev)

        # Progress is streamed as text into the status line; Gradio's own indicator (a timer) goes on the
        # plot only: on the status line it would overprint that text, and a full overlay flickers
        # between streamed updates.
        common = dict(outputs=outputs, concurrency_id="analysis", concurrency_limit=2, show_progress="minimal",
                      show_progress_on=[plot])
        upload.upload(analyse, [upload, fps], api_name="analyse", **common)
        analyse_btn.click(analyse, [upload, fps], api_visibility="private", **common)
        demo_btn.click(use_demo, None, api_name="use_demo", **common)
        if demo_on_start:
            app.load(use_demo, None, api_visibility="private", **common)
        # .input (user picks), not .change: evidence_views already fills the gallery for a new clip, and a
        # second write of the same images races with the browser fetching them (truncated responses).
        pick.input(show_interval, [pick, ev_state], [frames, iv_text], api_name="show_interval")

        chat_opts = dict(concurrency_id="chat", concurrency_limit=chat_limit)
        msg.submit(respond, [msg, chat, ev_state], [chat, msg], api_name="ask", **chat_opts)
        send.click(respond, [msg, chat, ev_state], [chat, msg], api_visibility="private", **chat_opts)
        for b in buttons:  # a button's value is its label: the question itself
            b.click(respond_chat_only, [b, chat, ev_state], [chat], api_visibility="private", **chat_opts)
        clear.click(lambda: ([], ""), None, [chat, msg], api_visibility="private")
    # Two CPU cores: two analyses at once use them both; more would only queue inside the process.
    app.queue(default_concurrency_limit=2, max_size=64)
    return app


def launch_options(max_upload_mb: float = MAX_UPLOAD_MB) -> dict:
    """Keyword arguments for ``Blocks.launch`` (theme and css go there in Gradio 6)."""
    return dict(theme=gr.themes.Soft(), css=CSS, max_file_size=f"{max_upload_mb:g}mb", show_error=False)


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
    """Render the demo clip and compute its evidence before the first visitor asks (it is cached)."""
    try:
        compute_evidence(demo_clip())
    except Exception:  # noqa: BLE001 - a visitor will see the error in the UI instead
        log.exception("demo warm-up failed")


def launch(model=None, adapter=None, load_in_4bit=False, load_in_8bit=False, host="127.0.0.1", port=7860):
    """Start the app (blocking). Listens on 127.0.0.1 unless ``host`` says otherwise."""
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    logging.getLogger("httpx").setLevel(logging.WARNING)  # Gradio's own start-up probes, one line each
    agent = make_agent(model, adapter, load_in_4bit, load_in_8bit)
    if agent.notice:
        log.warning(agent.notice)
    threading.Thread(target=_warm_demo, name="mevqa-demo-warmup", daemon=True).start()
    app = build_app(agent)
    print(f"mevqa app on http://{host}:{port} ({agent.backend_name})")
    app.launch(server_name=host, server_port=port, **launch_options())


def main(argv: list[str] | None = None) -> None:
    """``python app/app.py`` / ``python -m mevqa.apps.gradio_app``: the same flags as ``mevqa app``."""
    ap = argparse.ArgumentParser(prog="mevqa-app", description="the mevqa Gradio chat app")
    ap.add_argument("--model", help="Qwen-VL hub id or local folder (default: the evidence-only backend)")
    ap.add_argument("--adapter", help="LoRA adapter folder (PEFT format) for --model")
    ap.add_argument("--load-in-4bit", action="store_true", help="4-bit weights (bitsandbytes)")
    ap.add_argument("--load-in-8bit", action="store_true", help="8-bit weights (bitsandbytes)")
    ap.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1: this machine only)")
    ap.add_argument("--port", type=int, default=7860)
    a = ap.parse_args(argv)
    launch(model=a.model, adapter=a.adapter, load_in_4bit=a.load_in_4bit, load_in_8bit=a.load_in_8bit,
           host=a.host, port=a.port)


if __name__ == "__main__":
    main()
