"""Streaming frame reading: long videos, frame folders, webcams and network streams, a frame at a time.

:class:`mevqa.io.video.Clip` holds a whole clip in memory (about 0.7 MB a frame at 640x360, 2.7 MB at
1280x720), which is right for the short clips of MEGC's VQA task but not for long videos (SAMM and
CAS(ME)^3 long videos, recorded interviews, a live camera). Here frames are decoded one by one, resized
while decoding, and handed on in overlapping windows (:func:`windows`) that later stages turn into
small per-interval results and drop, so memory is bounded by one window, not by the video's length.

Frames a later stage needs again (the keyframes of a spotted interval) are re-read by seeking
(:func:`read_frames_at`), not kept.

High-frame-rate sources (CASME II, SAMM: 200 fps) are read every ``step``-th frame. Analysis runs at up
to 50 fps (:class:`mevqa.motion.frontend.FrontEndConfig`): a micro-expression lasts 1/25-1/2 s, so
50 fps still gives it 2-25 frames, while 200 fps would quadruple tracking time for motion with little
energy above ~10 Hz. (The field does the same: MEGC spotting baselines subsample SAMM by 7, to ~29 fps.)
"""
from __future__ import annotations

import math
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable, Iterator

import cv2
import numpy as np

from mevqa.io.decode import ClipError
from mevqa.io.native import quiet_native_stderr
from mevqa.io.video import FOLDER_PATTERNS, VIDEO_EXTENSIONS, frame_number, guess_dataset, list_frames

#: Longest stretch the streaming readers analyse by default (a documented limit, not a memory one:
#: memory does not grow with length; time does, ~1x real time on two busy cores).
MAX_STREAM_SECONDS = 600.0
#: Longer side frames are decoded to: the face then spans ~150-300 px, more than the 224 px aligned crop.
STREAM_MAX_SIDE = 640


@dataclass(frozen=True)
class SourceInfo:
    """What a source says about itself before decoding: frame rate, frame count (0: unknown, live)."""

    source: str
    fps: float
    n_frames: int
    live: bool

    @property
    def duration(self) -> float:
        return self.n_frames / self.fps if self.n_frames else math.inf


def is_live(source) -> bool:
    """A webcam index ("0", 0) or a network stream URL (rtsp://, http(s)://, udp://...)."""
    s = str(source)
    return s.isdigit() or "://" in s


def _capture(source) -> cv2.VideoCapture:
    s = str(source)
    # OpenCV and FFmpeg log their own lines when a camera or URL fails to open; the ClipError below is the one line
    with quiet_native_stderr():
        cap = cv2.VideoCapture(int(s)) if s.isdigit() else cv2.VideoCapture(s)
    if not cap.isOpened():
        if s.isdigit():
            raise ClipError(f"webcam {s}: cannot open it (no camera with that index here, or another program holds it)")
        raise ClipError(f"{source}: cannot open the {'stream' if is_live(source) else 'video'}")
    return cap


def probe(source, *, fps: float | None = None) -> SourceInfo:
    """Frame rate and count of a file, frame folder, webcam index or stream URL (``fps`` overrides)."""
    if not is_live(source):
        p = Path(source).expanduser()
        if not p.exists():
            raise ClipError(f"{p}: no such file or folder")
        if p.is_dir():
            files = list_frames(p)
            if not files:
                raise ClipError(f"{p}: the folder holds no image frames")
            if fps is None:
                ds = guess_dataset([f.stem for f in files])
                if ds is None:
                    raise ClipError(f"{p}: a frame folder carries no frame rate; pass --fps")
                fps = FOLDER_PATTERNS[ds][1]
            return SourceInfo(str(p), float(fps), len(files), False)
        if p.suffix.lower() not in VIDEO_EXTENSIONS:
            raise ClipError(f"{p}: not a video (expected one of {', '.join(VIDEO_EXTENSIONS)})")
    cap = _capture(source)
    try:
        rate = fps or cap.get(cv2.CAP_PROP_FPS)
        n = 0 if is_live(source) else max(0, int(cap.get(cv2.CAP_PROP_FRAME_COUNT)))
    finally:
        cap.release()
    if not rate or not math.isfinite(rate) or rate <= 0:
        if not is_live(source):
            raise ClipError(f"{source}: the video has no frame rate; pass --fps")
        rate = 30.0  # webcams often report 0; 30 fps is what most deliver
    return SourceInfo(str(source), float(rate), n, is_live(source))


def analysis_step(fps: float, max_fps: float = 50.0) -> int:
    """Read every ``step``-th frame so the analysed rate is at most ``max_fps`` (200 fps -> step 4, 50 fps)."""
    return max(1, math.ceil(fps / max_fps - 1e-6))


def _fit(bgr: np.ndarray, max_side: int) -> np.ndarray:
    h, w = bgr.shape[:2]
    s = max_side / max(h, w)
    if s < 1:
        bgr = cv2.resize(bgr, (round(w * s), round(h * s)), interpolation=cv2.INTER_AREA)
    if bgr.ndim == 2:
        return cv2.cvtColor(bgr, cv2.COLOR_GRAY2RGB)
    return cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)


def iter_frames(source, *, step: int = 1, max_side: int = STREAM_MAX_SIDE, max_seconds: float | None = None,
                fps: float | None = None, realtime: bool = False, start: int = 0) -> Iterator[tuple[int, np.ndarray]]:
    """(source frame number, RGB uint8 frame) for every ``step``-th frame, decoded one at a time.

    Frame numbers are a frame folder's own (``img46.jpg`` -> 46), else 0-based. ``max_seconds`` stops
    reading after that much of the source (``None``: no limit). ``realtime`` paces a file at its own
    frame rate, as a camera would deliver it (live sources are paced by themselves). ``start`` seeks to
    a frame (0-based index) first.
    """
    info_fps = fps
    p = None if is_live(source) else Path(source).expanduser()
    if p is not None and p.is_dir():
        files = list_frames(p)
        rate = info_fps or probe(p).fps
        limit = len(files) if max_seconds is None else min(len(files), int(round(max_seconds * rate)))
        t0 = time.perf_counter()
        for i in range(start, limit, step):
            bgr = cv2.imread(str(files[i]), cv2.IMREAD_COLOR)
            if bgr is None:
                raise ClipError(f"{files[i]}: cannot read the image (corrupt or not an image)")
            if realtime:
                _pace(t0, (i - start) / rate)
            yield frame_number(files[i].name), _fit(bgr, max_side)
        return
    cap = _capture(source)
    rate = info_fps or cap.get(cv2.CAP_PROP_FPS) or 30.0
    limit = math.inf if max_seconds is None else max_seconds * rate
    i = start
    if start:
        cap.set(cv2.CAP_PROP_POS_FRAMES, start)
    t0 = time.perf_counter()
    try:
        while i < limit:
            # grab() without retrieve() skips the colour conversion of frames that are not kept
            if not cap.grab():
                break
            if (i - start) % step == 0:
                ok, bgr = cap.retrieve()
                if not ok:
                    break
                if realtime and p is not None:
                    _pace(t0, (i - start) / rate)
                yield i, _fit(bgr, max_side)
            i += 1
    finally:
        cap.release()


def _pace(t0: float, due: float) -> None:
    wait = t0 + due - time.perf_counter()
    if wait > 0:
        time.sleep(wait)


def windows(items: Iterable, per_window: int, overlap: int) -> Iterator[tuple[list, bool]]:
    """(window, is_last): lists of ``per_window`` consecutive items (the last may be shorter), each
    starting ``per_window - overlap`` after the previous; a window is never only the previous one's
    overlap. Only one window (plus one item) is held at a time."""
    if not 0 <= overlap < per_window:
        raise ValueError(f"overlap {overlap} must be in [0, {per_window})")
    it = iter(items)
    buf = []
    for item in it:
        buf.append(item)
        if len(buf) == per_window:
            nxt = next(it, None)
            yield buf, nxt is None
            if nxt is None:
                return
            buf = buf[per_window - overlap:] + [nxt]
    if buf:
        yield buf, True


def read_frames_at(source, indices, *, max_side: int = STREAM_MAX_SIDE) -> dict[int, np.ndarray]:
    """RGB frames at the given 0-based indices, by seeking (a frame folder: by position in its listing).

    What the long-video path uses to show a spotted interval's keyframes without keeping any frame."""
    want = sorted({int(i) for i in indices})
    out: dict[int, np.ndarray] = {}
    p = Path(source).expanduser()
    if p.is_dir():
        files = list_frames(p)
        for i in want:
            bgr = cv2.imread(str(files[i]), cv2.IMREAD_COLOR)
            if bgr is not None:
                out[i] = _fit(bgr, max_side)
        return out
    cap = _capture(source)
    try:
        pos = -1
        for i in want:
            if i != pos + 1:  # seek only across gaps: decoding on from the last frame is cheaper
                cap.set(cv2.CAP_PROP_POS_FRAMES, i)
            ok, bgr = cap.read()
            pos = i
            if ok:
                out[i] = _fit(bgr, max_side)
    finally:
        cap.release()
    return out
