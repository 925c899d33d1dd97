"""Live spotting of frames handed over one by one (the app's webcam), with ``mevqa watch``'s machinery.

A browser's webcam reaches the server as single images, while :func:`mevqa.evidence.stream.spot_stream`
reads a source it opens itself (a file, a webcam index, a stream URL). The adapter here is a stream URL:
:class:`FrameFeed` serves the frames handed to it as an MJPEG stream on 127.0.0.1 (a random port and an
unguessable path, for this process only), and :class:`LiveRun` runs ``spot_stream`` on that URL exactly
as ``mevqa watch http://...`` does (live cut: the last 6 s every 1 s, each frame tracked once, an
expression reported 0.3 s after its offset, windows put off while the reader is behind). So the webcam
tab and ``mevqa watch`` share one code path, whatever changes inside it.

The feed is paced by the clock: at each tick of the nominal rate it sends the newest frame that had
arrived by then (a browser delivers frames unevenly), so frame numbers are times since the camera
started. When the analysis falls behind, frames wait in the feed (up to :data:`FEED_HISTORY_SECONDS`) and
are sent as the reader catches up, as a camera's buffer would.
"""
from __future__ import annotations

import bisect
import logging
import secrets
import threading
import time
from collections import deque
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import cv2
import numpy as np

from mevqa.apps.uploads import release_stream
from mevqa.evidence.builder import IntervalEvidence
from mevqa.evidence.stream import LIVE_HOP_SECONDS, LIVE_WINDOW_SECONDS
from mevqa.io.stream import STREAM_MAX_SIDE
from mevqa.io.video import ClipError

log = logging.getLogger("mevqa.apps.live_frames")

#: Frames a second the app asks the browser for (each is one request; an expression of 0.2 s and more
#: still spans two frames or more).
LIVE_FPS = 10.0
#: How far the analysis may fall behind the camera before the oldest waiting frames are dropped.
FEED_HISTORY_SECONDS = 30.0
JPEG_QUALITY = 90
FIRST_FRAME_SECONDS = 10.0  # how long a new run waits for its first frame


def fit_frame(rgb: np.ndarray, max_side: int = STREAM_MAX_SIDE) -> np.ndarray:
    """A browser frame as the streaming readers give one: RGB uint8, longer side at most ``max_side``."""
    img = np.asarray(rgb)
    if img.ndim == 2:
        img = np.dstack([img] * 3)
    img = np.ascontiguousarray(img[..., :3]).astype(np.uint8, copy=False)
    h, w = img.shape[:2]
    if max(h, w) > max_side:
        s = max_side / max(h, w)
        img = cv2.resize(img, (round(w * s), round(h * s)), interpolation=cv2.INTER_AREA)
    return img


class FrameFeed:
    """Frames handed over with :meth:`put`, served as an MJPEG stream at ``url`` (paced by the clock).

    The stream ends ``idle_seconds`` after the last frame arrived (the camera was stopped) or at
    :meth:`close`; each connection gets the frames from its own first tick on."""

    def __init__(self, *, fps: float = LIVE_FPS, idle_seconds: float = 3.0,
                 history_seconds: float = FEED_HISTORY_SECONDS):
        self.fps, self.idle = float(fps), float(idle_seconds)
        self.times: deque = deque()   # arrival times of the frames kept, oldest first
        self.jpegs: deque = deque()
        self.history = history_seconds
        self.received = 0
        self.dropped = 0              # ticks skipped because the reader fell more than ``history`` behind
        self.last_arrival = self.t0 = time.perf_counter()
        self.closed = threading.Event()
        self.arrived = threading.Condition()
        token = secrets.token_urlsafe(16)
        feed = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self):  # noqa: N802 - http.server's name
                if self.path != f"/{token}.mjpg":
                    self.send_error(404)
                    return
                self.send_response(200)
                self.send_header("Content-Type", "multipart/x-mixed-replace; boundary=frame")
                self.end_headers()
                try:
                    for jpeg in feed._ticks():
                        self.wfile.write(b"--frame\r\nContent-Type: image/jpeg\r\nContent-Length: %d\r\n\r\n"
                                         % len(jpeg) + jpeg + b"\r\n")
                except (BrokenPipeError, ConnectionResetError):
                    pass  # the reader closed it (the probe does, after one frame)

            def log_message(self, *args):  # no request lines on the server's stderr
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_port}/{token}.mjpg"
        threading.Thread(target=self.server.serve_forever, name="mevqa-webcam-feed", daemon=True).start()

    def put(self, rgb: np.ndarray) -> None:
        ok, buf = cv2.imencode(".jpg", cv2.cvtColor(fit_frame(rgb), cv2.COLOR_RGB2BGR),
                               [cv2.IMWRITE_JPEG_QUALITY, JPEG_QUALITY])
        if not ok:
            return
        now = time.perf_counter()
        with self.arrived:
            self.times.append(now)
            self.jpegs.append(buf.tobytes())
            while self.times and self.times[0] < now - self.history:
                self.times.popleft()
                self.jpegs.popleft()
            self.received += 1
            self.last_arrival = now
            self.arrived.notify_all()

    def _ticks(self):
        """The newest frame as of each tick (t0 + k / fps) from the first frame on; ends when idle or closed."""
        with self.arrived:  # a reader may connect before the first frame: wait for it a while
            while not self.times and not self.closed.is_set():
                if not self.arrived.wait(timeout=max(self.idle, FIRST_FRAME_SECONDS)):
                    return
        k, t0 = 0, time.perf_counter()
        self.t0 = t0  # the clock of the newest reader (the probe connects first, then the reader)
        while not self.closed.is_set():
            due = t0 + k / self.fps
            wait = due - time.perf_counter()
            if wait > 0:
                time.sleep(wait)
            with self.arrived:
                if due - self.last_arrival > self.idle:
                    return  # the camera was stopped (frames before that are still sent, however late)
                if not self.times:
                    return
                if due < self.times[0] - 1.0 / self.fps:  # fell behind the history: skip ahead
                    skip = int((self.times[0] - due) * self.fps)
                    self.dropped += skip
                    k += skip
                    continue
                i = max(0, bisect.bisect_right(self.times, due) - 1)
                jpeg = self.jpegs[i]
            yield jpeg
            k += 1

    def close(self) -> None:
        self.closed.set()
        with self.arrived:
            self.arrived.notify_all()
        self.server.shutdown()
        self.server.server_close()


class LiveRun:
    """One webcam session: frames in (:meth:`put`), events out (:attr:`events`), ``spot_stream`` on the
    feed's URL in a worker thread in between. The run ends when the feed goes idle (the camera stopped)."""

    def __init__(self, *, fps: float = LIVE_FPS, idle_seconds: float = 3.0, max_seconds: float | None = 600.0,
                 window_seconds: float = LIVE_WINDOW_SECONDS, hop_seconds: float = LIVE_HOP_SECONDS):
        self.feed = FrameFeed(fps=fps, idle_seconds=idle_seconds)
        self.events: list[IntervalEvidence] = []
        self.windows = 0
        self.error: str | None = None
        self.notes: list[str] = []
        self.started = time.perf_counter()
        self._args = dict(fps=fps, window_seconds=window_seconds, hop_seconds=hop_seconds, max_seconds=max_seconds)
        # Started with the first frame: OpenCV opens every video under one global lock, and opening the
        # feed before a frame is there would hold it (and stall any other video being opened) until one is.
        self.thread = threading.Thread(target=self._work, name="mevqa-webcam", daemon=True)

    @property
    def alive(self) -> bool:
        return self.thread.ident is None or self.thread.is_alive()  # not started yet: waiting for its first frame

    @property
    def received(self) -> int:
        return self.feed.received

    @property
    def dropped(self) -> int:
        return self.feed.dropped

    def put(self, rgb: np.ndarray) -> None:
        self.feed.put(rgb)
        if self.thread.ident is None:
            self.thread.start()

    def stop(self) -> None:
        self.feed.closed.set()

    def _progress(self, done: int, total: int) -> None:
        self.windows += 1

    def _work(self) -> None:
        from mevqa.evidence.stream import spot_stream  # noqa: PLC0415 - MediaPipe, on the first frame only

        try:
            res = spot_stream(self.feed.url, realtime_lag=lambda t: time.perf_counter() - self.feed.t0 - t,
                              on_event=lambda iv, newest: self.events.append(iv), progress=self._progress,
                              **self._args)
            self.notes = list(res.notes)
        except Exception as e:  # noqa: BLE001 - one line in the tab; the log has the traceback
            if isinstance(e, RuntimeError) and "after shutdown" in str(e):
                return  # the server is exiting (MediaPipe's executor is gone): nobody is watching
            text = (str(e).splitlines() or [type(e).__name__])[0].replace(self.feed.url, "the webcam")
            if "no face found" in text:
                text = "no face found in the camera's picture (face the camera, in good light)"
            if not isinstance(e, ClipError):  # an expected failure (no face) needs no traceback
                log.exception("webcam analysis failed")
            self.error = text
        finally:
            self.feed.close()
        release_stream()  # a stream that failed part way: close its landmarker in this thread
