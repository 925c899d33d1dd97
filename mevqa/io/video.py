"""Clip loading: video files (decord, OpenCV fallback) and dataset frame folders.

A :class:`Clip` holds every frame of a short face clip in memory as RGB ``uint8`` (T, H, W, 3), so
random access, uniform sampling and keyframe picking never decode twice. Micro-expression clips are
short (CASME II and SAMM clips are a few hundred frames), and caps on frames, duration and resolution
keep a long upload from filling the memory. The caps are checked from the container's metadata (or the
image headers of a frame folder) *before* anything is decoded, and frames are decoded straight to the
size they are kept at: larger than ``max_side``, or too many pixels together for ``max_pixels``, and
they are downscaled while decoding. A file that decodes to fewer frames than its index lists is
truncated or damaged and is refused, not half analysed.

Frame folders are read as the datasets ship them, in natural numeric order:
CASME II ``img46.jpg``, SAMM ``006_1_2_0001.jpg``, CAS(ME)^3 ``1.jpg``. They carry no frame rate, so
the caller gives one (CASME II and SAMM are 200 fps, CAS(ME)^3 is 30 fps).
"""
from __future__ import annotations

import hashlib
import math
import os
import re
from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np

# ClipError, ClipLimits and DEFAULT_LIMITS live with the decoders and are re-exported here.
from mevqa.io.decode import (DEFAULT_LIMITS, MAX_FPS, MIN_FPS, ClipError, ClipLimits, _check_complete,  # noqa: F401
                             _check_counts, _check_fps, _check_size, _decode_decord, _decode_opencv, _decode_size,
                             _image_size, _probe)

from mevqa.io.formats import IMAGE_EXTENSIONS, VIDEO_EXTENSIONS  # noqa: F401 (re-exported)


@dataclass
class Clip:
    """A face clip: RGB frames (T, H, W, 3) uint8, its frame rate and where it came from.

    ``frame_numbers`` keeps the numbering of the source (a frame folder may start at img46), so
    results can be reported in the dataset's own frame numbers while indices stay 0-based.
    """

    frames: np.ndarray
    fps: float
    source: str = "<memory>"
    frame_numbers: np.ndarray | None = None
    meta: dict = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.frames.ndim != 4 or self.frames.shape[-1] != 3 or self.frames.dtype != np.uint8:
            raise ClipError(f"{self.source}: frames must be uint8 (T, H, W, 3), got {self.frames.dtype} {self.frames.shape}")
        if len(self.frames) == 0:
            raise ClipError(f"{self.source}: the clip has no frames")
        _check_fps(self.fps, self.source)
        if self.frame_numbers is None:
            self.frame_numbers = np.arange(len(self.frames))

    # -- basic properties -------------------------------------------------------------------
    @property
    def n_frames(self) -> int:
        return len(self.frames)

    @property
    def duration(self) -> float:
        return self.n_frames / self.fps

    @property
    def size(self) -> tuple[int, int]:
        """(width, height)."""
        return self.frames.shape[2], self.frames.shape[1]

    @property
    def name(self) -> str:
        return Path(self.source).stem if self.source != "<memory>" else "clip"

    def __len__(self) -> int:
        return self.n_frames

    def __getitem__(self, i):
        return self.frames[i]

    def time_of(self, index: int) -> float:
        """Seconds from the start of the clip to frame ``index``."""
        return index / self.fps

    # -- sampling ---------------------------------------------------------------------------
    def uniform_indices(self, n: int, *, start: int = 0, stop: int | None = None) -> np.ndarray:
        """``n`` frame indices spread evenly over [start, stop] (inclusive), without repeats."""
        stop = self.n_frames - 1 if stop is None else min(stop, self.n_frames - 1)
        start = max(0, min(start, stop))
        n = max(1, min(n, stop - start + 1))
        return np.unique(np.round(np.linspace(start, stop, n)).astype(int))

    def sample(self, indices) -> np.ndarray:
        """Frames at ``indices`` (already decoded: no second decode)."""
        idx = np.clip(np.asarray(indices, dtype=int), 0, self.n_frames - 1)
        return self.frames[idx]

    def subsampled(self, step: int) -> "Clip":
        """Every ``step``-th frame, fps divided accordingly; frame numbers keep the source's."""
        if step <= 1:
            return self
        return Clip(self.frames[::step], self.fps / step, self.source, self.frame_numbers[::step], dict(self.meta))

    def content_hash(self) -> str:
        """A short hash of the pixels and fps: the key of every cache built on this clip."""
        h = hashlib.sha1()
        h.update(np.asarray(self.frames.shape).tobytes())
        h.update(f"{self.fps:.4f}".encode())
        # Hashing every 4th row of a few frames is enough to tell clips apart and costs ~1 ms.
        for i in self.uniform_indices(16):
            h.update(np.ascontiguousarray(self.frames[i, ::4]).tobytes())
        return h.hexdigest()[:16]

    # -- loading ----------------------------------------------------------------------------
    @classmethod
    def load(cls, path, *, fps: float | None = None, limits: ClipLimits = DEFAULT_LIMITS,
             backend: str = "auto") -> "Clip":
        """Load a video file or a frame folder.

        ``fps`` overrides the file's frame rate and is required for frame folders whose dataset
        cannot be recognised from the file names. ``backend`` is ``"auto"`` (decord, then OpenCV),
        ``"decord"`` or ``"opencv"``.
        """
        p = Path(os.fspath(path)).expanduser()
        if fps is not None and not (isinstance(fps, (int, float)) and math.isfinite(fps) and fps > 0):
            raise ClipError(f"{p}: --fps {fps!r} is not a frame rate (give a positive number, e.g. --fps 30)")
        if not p.exists():
            raise ClipError(f"{p}: no such file or folder")
        if p.is_dir():
            return _load_folder(p, fps=fps, limits=limits)
        if p.suffix.lower() not in VIDEO_EXTENSIONS:
            if p.suffix.lower() in IMAGE_EXTENSIONS:
                raise ClipError(f"{p}: a single image is not a clip; give a video file or a folder of frames")
            raise ClipError(f"{p}: not a video (expected one of {', '.join(VIDEO_EXTENSIONS)})")
        if p.stat().st_size == 0:
            raise ClipError(f"{p}: the file is empty")
        return _load_video(p, fps=fps, limits=limits, backend=backend)

    def save(self, path, *, fps: float | None = None) -> Path:
        """Write the clip as an mp4 (mp4v) or, for a path without suffix, as a frame folder."""
        return write_clip(self.frames, path, fps=fps or self.fps)



def _load_video(p: Path, *, fps, limits: ClipLimits, backend: str) -> Clip:
    errors = []
    order = {"auto": ("decord", "opencv"), "decord": ("decord",), "opencv": ("opencv",)}.get(backend)
    if order is None:
        raise ClipError(f"unknown video backend {backend!r} (auto, decord or opencv)")
    # Budgets from the header, before a single frame is decoded.
    w, h, n_meta, meta_fps = _probe(p)
    size = None
    if w and h:
        rate = fps if fps is not None else meta_fps
        if n_meta > limits.max_frames:
            raise ClipError(f"{p}: {n_meta} frames is over the limit of {limits.max_frames}; trim the clip")
        if n_meta and rate and MIN_FPS <= rate <= MAX_FPS:
            _check_counts(n_meta, rate, str(p), limits)  # length and a single frame, from the header
        size = _decode_size(w, h, max(n_meta, 1), str(p), limits)
    smaller = size if size is not None and size != (w, h) else None  # decoders keep the file's size otherwise
    for name in order:
        try:
            frames, file_fps = (_decode_decord if name == "decord" else _decode_opencv)(p, limits, smaller)
        except ClipError:
            raise
        except ImportError as e:  # decord missing: fall back silently
            errors.append(f"{name}: {e}")
            continue
        except Exception as e:  # noqa: BLE001 - any decoder failure means "try the next one"
            errors.append(f"{name}: {str(e).splitlines()[0] if str(e) else type(e).__name__}")
            continue
        if frames is None:
            errors.append(f"{name}: decoded no frames")
            continue
        _check_complete(len(frames), n_meta, p)
        use_fps = fps if fps is not None else file_fps
        _check_fps(use_fps, str(p))
        _check_counts(len(frames), use_fps, str(p), limits)
        meta = {"decoder": name, "file_fps": file_fps}
        if size is not None and size != (w, h):
            meta["source_size"] = (w, h)  # decoded smaller: max_side or the memory budget
        return Clip(frames, float(use_fps), str(p), meta=meta)
    raise ClipError(f"{p}: cannot decode the video (corrupt, truncated or not a video)")



# -- frame folders ----------------------------------------------------------------------------
_NUM = re.compile(r"(\d+)")

# Dataset naming conventions, used to guess a folder's frame rate when none is given.
FOLDER_PATTERNS = {
    "casme2": (re.compile(r"^img(\d+)$", re.I), 200.0),
    "samm": (re.compile(r"^\d{3}_\d+_\d+_(\d+)$"), 200.0),
    "casme3": (re.compile(r"^(\d+)$"), 30.0),
}


def frame_number(name: str) -> int:
    """The frame number in a file name: the last run of digits (``006_1_2_0001`` -> 1)."""
    found = _NUM.findall(Path(name).stem)
    if not found:
        raise ClipError(f"{name}: no frame number in the file name")
    return int(found[-1])


def guess_dataset(stems: list[str]) -> str | None:
    """Which dataset's naming a folder follows (``casme2``, ``samm``, ``casme3``), if any."""
    for name, (pattern, _) in FOLDER_PATTERNS.items():
        if stems and all(pattern.match(s) for s in stems):
            return name
    return None


def list_frames(folder: Path) -> list[Path]:
    files = [f for f in folder.iterdir() if f.suffix.lower() in IMAGE_EXTENSIONS and not f.name.startswith(".")]
    return sorted(files, key=lambda f: (frame_number(f.name), f.name))


def _load_folder(folder: Path, *, fps, limits: ClipLimits) -> Clip:
    files = list_frames(folder)
    if not files:
        raise ClipError(f"{folder}: the folder holds no image frames")
    if len(files) > limits.max_frames:
        raise ClipError(f"{folder}: {len(files)} frames is over the limit of {limits.max_frames}; trim the clip")
    numbers = np.array([frame_number(f.name) for f in files])
    gaps = np.flatnonzero(np.diff(numbers) != 1)
    if len(gaps):
        i = gaps[0]
        raise ClipError(f"{folder}: frame numbers jump from {numbers[i]} to {numbers[i + 1]} (missing or duplicate frames)")
    dataset = guess_dataset([f.stem for f in files])
    if fps is None:
        if dataset is None:
            raise ClipError(f"{folder}: a frame folder carries no frame rate; pass --fps")
        fps = FOLDER_PATTERNS[dataset][1]
    _check_fps(fps, str(folder))
    _check_counts(len(files), fps, str(folder), limits)
    head = None  # sizes from the image headers, before any pixel is decoded
    for f in files:
        sz = _image_size(f)
        if sz is not None and head is not None and sz != head:
            raise ClipError(f"{folder}: mixed frame sizes ({head[0]}x{head[1]} and {sz[0]}x{sz[1]} at {f.name})")
        head = head or sz
    size = _decode_size(*head, len(files), str(folder), limits) if head else None
    frames, first = [], None
    for f in files:
        bgr = cv2.imread(str(f), cv2.IMREAD_COLOR)
        if bgr is None:
            raise ClipError(f"{f}: cannot read the image (corrupt or not an image)")
        if first is None:
            first = bgr.shape
            _check_size(bgr.shape[1], bgr.shape[0], str(folder), limits)
            size = size or _decode_size(bgr.shape[1], bgr.shape[0], len(files), str(folder), limits)
        elif bgr.shape != first:
            raise ClipError(f"{folder}: mixed frame sizes ({first[1]}x{first[0]} and {bgr.shape[1]}x{bgr.shape[0]} at {f.name})")
        rgb = cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)
        if (rgb.shape[1], rgb.shape[0]) != size:
            rgb = cv2.resize(rgb, size, interpolation=cv2.INTER_AREA)
        frames.append(rgb)
    meta = {"dataset": dataset}
    if size != (first[1], first[0]):
        meta["source_size"] = (first[1], first[0])
    return Clip(np.stack(frames), float(fps), str(folder), numbers, meta=meta)


# -- writing ----------------------------------------------------------------------------------
def write_clip(frames: np.ndarray, path, *, fps: float, pattern: str = "img{n}.jpg", start: int = 1) -> Path:
    """Write RGB frames to an .mp4/.avi (OpenCV) or, for a path without a suffix, a frame folder.

    ``pattern`` names folder frames (``img{n}.jpg`` as CASME II, ``{prefix}_{n:04d}.jpg`` as SAMM).
    """
    path = Path(path)
    if path.suffix.lower() in VIDEO_EXTENSIONS:
        path.parent.mkdir(parents=True, exist_ok=True)
        h, w = frames.shape[1:3]
        fourcc = cv2.VideoWriter_fourcc(*("MJPG" if path.suffix.lower() == ".avi" else "mp4v"))
        vw = cv2.VideoWriter(str(path), fourcc, float(fps), (w, h))
        if not vw.isOpened():
            raise ClipError(f"{path}: OpenCV cannot write this video format")
        for f in frames:
            vw.write(cv2.cvtColor(f, cv2.COLOR_RGB2BGR))
        vw.release()
        return path
    path.mkdir(parents=True, exist_ok=True)
    for i, f in enumerate(frames):
        target = path / pattern.format(n=i + start)
        # cv2.imwrite reports a failed write (full disk, no permission) only by returning False
        if not cv2.imwrite(str(target), cv2.cvtColor(f, cv2.COLOR_RGB2BGR), [cv2.IMWRITE_JPEG_QUALITY, 95]):
            raise OSError(f"cannot write the frame {target} (full disk or no permission?)")
    return path
