"""Uploads for the app: size, type and archive checks, zipped frame folders, and the analysis worker.

Serving rules (issue 8):
- every upload goes through :func:`load_upload`, which enforces size, type and clip limits and turns
  every failure into one line for the UI;
- zipped frame folders are unpacked by :func:`extract_frames_zip` into a temporary folder that is
  deleted as soon as the frames are in memory (guards against zip-slip and zip bombs);
- :func:`evidence_stream` runs :func:`mevqa.evidence.builder.compute_evidence` in a worker thread and
  stops it at the next progress report once the caller says so (the app's Cancel button, or a newer
  clip in the same session).
"""
from __future__ import annotations

import gc
import queue
import stat
import tempfile
import threading
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterator

from mevqa.evidence.builder import Evidence, compute_evidence
from mevqa.io.demo import demo_clip as load_demo
from mevqa.io.video import IMAGE_EXTENSIONS, VIDEO_EXTENSIONS, Clip, ClipError, ClipLimits

MAX_UPLOAD_MB = 200
#: Stricter than the library defaults: a web upload is held in memory for the session, and a
#: micro-expression clip is seconds long (CASME II and SAMM clips are a few hundred frames).
APP_LIMITS = ClipLimits(max_frames=1500, max_seconds=30.0, max_side=960, min_side=64)
#: A zipped frame folder may hold at most this many bytes once unpacked (zip-bomb guard).
ZIP_MAX_UNPACKED_MB = 1024
UPLOAD_TYPES = tuple(VIDEO_EXTENSIONS) + (".zip",)


class UploadError(ClipError):
    """An upload refused before decoding (size, type, archive content); one line for the UI."""


class AnalysisCancelled(Exception):
    """The analysis was stopped (Cancel, or a newer clip in the same session)."""

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


# -- computing in a worker thread, with progress and cancel ------------------------------------------------
def release_stream() -> None:
    """Close here, in the thread that ran it, what a stopped stream left open.

    A stream stopped part way (Cancel raises in its progress report) leaves its generators suspended
    with the Face Landmarker open in them. If they were left to the garbage collector, it could close
    the landmarker in whichever thread it happens to run, possibly one inside MediaPipe's dispatcher,
    whose lock is not re-entrant (seen: a test hung so). Collecting here closes them in this thread."""
    gc.collect()


@dataclass(frozen=True)
class _Result:
    """What :func:`in_worker`'s ``run`` returned (told apart from the items it reported)."""

    value: object


def in_worker(run: Callable[[Callable[[], bool], Callable[[object], None]], object], *, stop: Callable[[], bool] | None,
              name: str, on_error: Callable[[BaseException], None] | None = None) -> Iterator:
    """Run ``run(stopped, report)`` in a daemon thread named ``name``; yield each item it ``report``-s, then
    what it returns. Its exceptions are re-raised here, in the caller's thread (without their frames).

    ``stopped()`` is true once ``stop()`` is or this generator was closed; ``report`` then raises
    :class:`AnalysisCancelled` in the worker (so it does not keep a core busy for work nobody waits for),
    and this generator raises it at once. ``on_error(e)`` is called in the worker with what it raised
    (logging); the worker's last act is :func:`release_stream`.
    """
    events: queue.Queue = queue.Queue()
    closed = threading.Event()

    def stopped() -> bool:
        return closed.is_set() or (stop is not None and stop())

    def report(item) -> None:
        if stopped():
            raise AnalysisCancelled("the analysis was cancelled")
        events.put(item)

    def work() -> None:
        try:
            events.put(_Result(run(stopped, report)))
        except BaseException as e:  # noqa: BLE001 - handed to the caller's thread
            if on_error is not None:
                on_error(e)
            events.put(e.with_traceback(None))
        release_stream()

    threading.Thread(target=work, name=name, daemon=True).start()
    try:
        while True:
            try:
                item = events.get(timeout=0.25)
            except queue.Empty:
                if stop is not None and stop():
                    raise AnalysisCancelled("the analysis was cancelled") from None
                continue
            if isinstance(item, BaseException):
                raise item
            if isinstance(item, _Result):
                yield item.value
                return
            yield item
    finally:
        closed.set()


def evidence_stream(clip: Clip, *, cache: bool = True, persist: bool = False,
                    stop: Callable[[], bool] | None = None) -> Iterator[tuple[str, float] | Evidence]:
    """Run :func:`compute_evidence` in a worker thread (:func:`in_worker`); yield ``(stage, fraction)``
    while it runs, then the Evidence. Uploads are cached in this process's memory only (``persist=False``):
    nothing of a user's clip is written to disk. ``stop`` is polled at every progress report and while
    waiting: see :func:`in_worker`.
    """
    return in_worker(lambda stopped, report: compute_evidence(
        clip, cache=cache, persist=persist, progress=lambda stage, frac: report((stage, float(frac)))),
        stop=stop, name="mevqa-evidence")
