"""The app's "Webcam" tab: the browser's camera, streamed to the server a frame at a time, spotted live
with ``mevqa watch``'s machinery (:mod:`mevqa.apps.live_frames`); each expression appears in the table as
it is spotted (time since the camera started, kind, AUs, reading).

The webcam component sends :data:`~mevqa.apps.live_frames.LIVE_FPS` frames a second (each one request);
the stream handler only hands the frame over, and a timer redraws the status and the table once a
second while a run is live (so the last events, settled after the camera stops, still appear). Frames
are analysed in memory and dropped; nothing is written to disk.
"""
from __future__ import annotations

import threading
import time

import gradio as gr

from mevqa.apps.live_frames import LIVE_FPS, LiveRun

LIVE_HEADERS = ["#", "time (s)", "kind", "action units", "reading"]
LIVE_MAX_SECONDS = 600  # one camera session, then the stream is closed (start the camera again for more)
IDLE = ("Start the camera (the button under the picture): expressions are listed below as they are spotted, "
        "about 1-2 s after they end. Frames are analysed in memory and dropped.")


#: Webcams analysed at once by this server (each takes most of a core); more wait with a notice.
MAX_LIVE_RUNS = 2
_RUNS: list[LiveRun] = []
_RUNS_LOCK = threading.Lock()


def _start_run(fps: float) -> LiveRun | None:
    """A new run if fewer than :data:`MAX_LIVE_RUNS` are live on this server, else None."""
    with _RUNS_LOCK:
        _RUNS[:] = [r for r in _RUNS if r.alive]
        if len(_RUNS) >= MAX_LIVE_RUNS:
            return None
        _RUNS.append(LiveRun(fps=fps))
        return _RUNS[-1]


class LiveState:
    """One browser session's webcam run (a fresh copy per session; see :class:`mevqa.apps.chat.Session`)."""

    def __init__(self, fps: float = LIVE_FPS):
        self.fps = fps
        self.run: LiveRun | None = None
        self.busy = False  # the server was analysing MAX_LIVE_RUNS webcams when this one started
        self.lock = threading.Lock()

    def __deepcopy__(self, memo):
        return LiveState(self.fps)

    def put(self, frame) -> bool:
        """Hand a frame to the current run, starting one if none is live; True when a run was started."""
        with self.lock:
            fresh = self.run is None or not self.run.alive
            if fresh:
                self.run = _start_run(self.fps)
                self.busy = self.run is None
            if self.run is not None:
                self.run.put(frame)
            return fresh


def event_rows(run: LiveRun | None) -> list[list]:
    if run is None:
        return []
    rows = []
    for iv in list(run.events):
        aus = ", ".join(f"{a['code']}{'(' + a['side'][0] + ')' if a.get('side') not in (None, '', 'both') else ''}"
                        for a in iv.aus)
        rows.append([iv.index + 1, f"{iv.t_onset:.1f}-{iv.t_offset:.1f}", iv.kind, aus or "-",
                     iv.top_emotion["fine"] if iv.top_emotion else "no FACS rule matched"])
    return rows


def live_status(run: LiveRun | None) -> str:
    if run is None:
        return IDLE
    if run.error:
        return f"**The live analysis stopped:** {run.error}"
    seconds = max(1e-6, time.perf_counter() - run.started)
    state = "Live" if run.alive else "Stopped"
    drop = f", {run.dropped} skipped (the analysis was over 30 s behind)" if run.dropped else ""
    windows = f"{run.windows} window(s) analysed" if run.windows else "waiting for the first window with a face"
    notes = "".join(f"  \n_{n}_" for n in run.notes)
    return (f"**{state}:** {run.received} frames received ({run.received / seconds:.1f} a second){drop}; "
            f"{windows}; **{len(run.events)} expression(s)** spotted.{notes}")


def build_live_tab(*, fps: float = LIVE_FPS) -> None:
    """The tab's components and events, inside the caller's ``gr.Blocks`` (and ``gr.Tab``)."""
    state = gr.State(LiveState(fps))
    with gr.Row(equal_height=False):
        with gr.Column(scale=2, min_width=300):
            cam = gr.Image(sources=["webcam"], streaming=True, type="numpy", label="Webcam", elem_id="webcam",
                           height=360)
        with gr.Column(scale=3, min_width=300):
            status = gr.Markdown(IDLE, elem_id="live-status")
            table = gr.Dataframe(headers=LIVE_HEADERS, show_label=False, interactive=False, wrap=True, max_height=420,
                                 column_widths=["7%", "15%", "11%", "37%", "30%"], elem_id="live-events")
            gr.Markdown("time: seconds since the camera started; an expression is listed once it has ended "
                        "(0.3 s after its offset plus the time the analysis takes: about 1.2 s in all on 2 cores). "
                        "These are early reports: for a reading to keep, record the session and analyse the file "
                        "(Long video tab).", elem_classes="note")
    timer = gr.Timer(1.0, active=False)

    def webcam_frame(frame, st: LiveState):
        if frame is None:
            return gr.skip()
        return gr.Timer(active=True) if st.put(frame) else gr.skip()

    def webcam_refresh(st: LiveState):
        run = st.run
        if st.busy:
            return (f"**Busy:** this server is analysing {MAX_LIVE_RUNS} webcams already; stop the camera and try "
                    "again in a while.", [], gr.Timer(active=False))
        done = run is None or not run.alive
        return live_status(run), event_rows(run), gr.Timer(active=not done)

    cam.stream(webcam_frame, [cam, state], [timer], stream_every=1.0 / fps, time_limit=LIVE_MAX_SECONDS,
               concurrency_limit=None, show_progress="hidden", api_visibility="private")
    timer.tick(webcam_refresh, [state], [status, table, timer], show_progress="hidden", api_visibility="private",
               concurrency_limit=None)
