"""The streaming front end: each frame tracked and aligned once, as it arrives; only aligned crops kept.

:func:`mevqa.motion.frontend.run_frontend` tracks and aligns a whole in-memory clip. For a long video or
a live camera that would hold every full frame (0.7 MB at 640x360). Here one Face Landmarker stays open
in VIDEO mode for the whole stream (after the first detection it tracks, a few ms a frame), each frame
is warped to the 224 px eye-aligned crop (150 kB) and the full frame dropped. The alignment low-passes
the eye centres in time (:class:`mevqa.face.align.AlignConfig` ``smooth_seconds``, a Gaussian of
+-3 sigma), so a frame is aligned once the frames 3 sigma after it (0.45 s) have been tracked: that
delay line is the only full frames held. The result per frame (:class:`AlignedFrame`) is what the
spotter and the AU detector read (crop, landmarks, blendshapes, pose); :func:`window_frontend` makes a
:class:`FrontEnd` of any run of them, so overlapping windows are never tracked twice.

Differences from the batch front end, and why: frames where the face is lost take the last seen
landmarks (the batch version interpolates across the gap, which needs the frames after it); no border
is tried for tight dataset crops (the batch tracker's second pass needs the whole clip first).
"""
from __future__ import annotations

from collections import deque
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from functools import cached_property
from typing import Callable, Iterable, Iterator

import cv2
import numpy as np

from mevqa.face.align import AlignConfig, AlignedFaces, similarity_to_crop
from mevqa.face.groups import eye_centres
from mevqa.face.landmarker import BLENDSHAPE_NAMES, N_LANDMARKS, open_landmarker, quiet_native_stderr, result_faces, to_image
from mevqa.face.landmarks import FaceTrack, _pick_face
from mevqa.face.occlusion import frame_ratios
from mevqa.io.video import Clip
from mevqa.motion.frontend import FrontEnd, FrontEndConfig


@dataclass
class AlignedFrame:
    """One analysed frame: its source frame number, aligned crop and what the tracker saw."""

    number: int
    crop: np.ndarray          # (S, S, 3) uint8 RGB
    landmarks: np.ndarray     # (478, 2) crop pixels
    frame_landmarks: np.ndarray  # (478, 2) frame pixels
    transform: np.ndarray     # (2, 3) frame -> crop
    blendshapes: np.ndarray   # (52,), NaN where lost
    pose: np.ndarray          # (4, 4), NaN where lost
    n_faces: int
    frame_size: tuple[int, int]
    _ratios: dict = field(default_factory=dict, repr=False, compare=False)

    @property
    def detected(self) -> bool:
        return self.n_faces > 0

    @cached_property
    def gray(self) -> np.ndarray:
        """The crop in grayscale (S, S) uint8, converted once (the live cut's windows overlap)."""
        return cv2.cvtColor(self.crop, cv2.COLOR_RGB2GRAY)

    def occlusion_ratios(self, margin: float) -> dict[str, float]:
        """:func:`mevqa.face.occlusion.frame_ratios` of this crop, measured once: the live cut's windows
        overlap, and each would otherwise measure its every frame again (a fifth of a window's work)."""
        got = self._ratios.get(margin)
        if got is None:
            got = self._ratios[margin] = frame_ratios(self.gray, self.landmarks, margin=margin)
        return got


def _gauss(sigma: float) -> tuple[int, np.ndarray]:
    r = int(3 * sigma) if sigma >= 0.5 else 0
    k = np.exp(-0.5 * (np.arange(-r, r + 1) / max(sigma, 1e-6)) ** 2)
    return r, k / k.sum()


def stream_frontend(frames: Iterable[tuple[int, np.ndarray]], fps: float, *, config: FrontEndConfig = FrontEndConfig(),
                    max_faces: int = 2, min_confidence: float = 0.5, model=None,
                    lookahead_seconds: float | None = None) -> Iterator[AlignedFrame]:
    """Track and align ``(number, RGB frame)`` pairs one at a time (``fps``: the rate they come at).

    Frames before the first face are held (at most 2 s of them, then given the frame centre) and aligned
    with the first face's landmarks, as the batch front end's nearest-neighbour fill does.
    ``lookahead_seconds`` cuts the alignment's Gaussian (normally +-3 sigma, 0.45 s) to that many seconds
    either side, so a frame comes out that much after it was read (live analysis: the delay line is
    most of the wait between an expression's end and its report; the eye centres' jitter, a few tenths
    of a pixel, averages out over +-1 sigma nearly as well)."""
    align = config.align
    r, kernel = _gauss(align.smooth_seconds * fps)
    if lookahead_seconds is not None and round(lookahead_seconds * fps) < r:
        cut = max(0, int(round(lookahead_seconds * fps)))
        kernel = kernel[r - cut:r + cut + 1] / kernel[r - cut:r + cut + 1].sum()
        r = cut
    pending: deque = deque()   # (number, frame, landmarks or None, bs, pose, n_faces), not yet aligned
    eyes: deque = deque()       # eye centres (2, 2) of the frames from pending[0] - r on
    last_lm = None
    last_ms = -1
    i = 0

    def emit(centre_eyes: np.ndarray) -> AlignedFrame:
        number, frame, lm, bs, pose, nf = pending.popleft()
        m = similarity_to_crop(centre_eyes[0], centre_eyes[1], align)
        s = align.size
        crop = cv2.warpAffine(frame, m, (s, s), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
        pts = (lm @ m[:, :2].T + m[:, 2]).astype(np.float32)
        h, w = frame.shape[:2]
        return AlignedFrame(number, crop, pts, lm, m, bs, pose, nf, (w, h))

    def smoothed(j: int) -> np.ndarray:
        # eyes holds frames [first - r .. last]; frame j's Gaussian over j-r..j+r, ends replicated
        arr = np.stack(eyes)
        idx = np.clip(np.arange(j - r, j + r + 1), 0, len(arr) - 1)
        return np.tensordot(kernel, arr[idx], axes=1)

    with open_landmarker(video=True, num_faces=max_faces, min_confidence=min_confidence, model=model) as lmk:
        for number, frame in frames:
            h, w = frame.shape[:2]
            ms = max(last_ms + 1, int(round(i * 1000.0 / fps)))
            last_ms = ms
            if i == 0:
                with quiet_native_stderr():
                    res = lmk.detect_for_video(to_image(frame), ms)
            else:
                res = lmk.detect_for_video(to_image(frame), ms)
            i += 1
            bs = np.full(len(BLENDSHAPE_NAMES), np.nan, np.float32)
            pose = np.full((4, 4), np.nan, np.float32)
            nf = 0
            if res.face_landmarks:
                faces, bss, mats = result_faces(res, w, h)
                j = _pick_face(faces, last_lm)
                last_lm, bs, pose, nf = faces[j].astype(np.float32), bss[j], mats[j], len(faces)
            if last_lm is None:  # no face yet: hold the frame (bounded), then give up on it
                pending.append((number, frame, None, bs, pose, 0))
                if len(pending) > 2 * fps:
                    pending.popleft()  # dropped: 2 s with no face at the start of a stream
                continue
            if pending and pending[0][2] is None:  # the first face: frames before it take its landmarks
                pending = deque((n, f, last_lm, b, p, c) for n, f, _, b, p, c in pending)
                e = np.stack(eye_centres(last_lm[None]))[:, 0]
                eyes.extend([e] * len(pending))
            pending.append((number, frame, last_lm, bs, pose, nf))
            eyes.append(np.stack(eye_centres(last_lm[None]))[:, 0])
            # Frame k of pending is aligned once r frames after it are known.
            while len(pending) > r:
                back = len(eyes) - len(pending)  # eye entries before pending[0]
                yield emit(smoothed(back))
                while len(eyes) - len(pending) > r:
                    eyes.popleft()
        while pending:
            if pending[0][2] is None:
                return  # the stream ended with no face at all
            back = len(eyes) - len(pending)
            yield emit(smoothed(back))


def window_frontend(frames: list[AlignedFrame], fps: float, *, source: str = "<stream>",
                    config: FrontEndConfig = FrontEndConfig(), rest_blendshapes: np.ndarray | None = None) -> FrontEnd:
    """A :class:`FrontEnd` over a run of aligned frames: the clip *is* the crops (at the analysed rate,
    frame numbers the source's), so the spotter, AU detector and evidence builder run unchanged.
    ``rest_blendshapes``: (N, 52) blendshape scores the person's resting level is read from, if not
    only these frames' (:attr:`FrontEnd.rest_blendshapes`)."""
    crops = np.stack([f.crop for f in frames])
    numbers = np.array([f.number for f in frames])
    clip = Clip(crops, float(fps), source, numbers, meta={"stream": True})
    n_faces = np.array([f.n_faces for f in frames], np.int16)
    track = FaceTrack(np.stack([f.frame_landmarks for f in frames]), n_faces > 0, frames[0].frame_size,
                      np.stack([f.blendshapes for f in frames]), np.stack([f.pose for f in frames]), n_faces,
                      BLENDSHAPE_NAMES, 0, [])
    faces = AlignedFaces(crops, np.stack([f.landmarks for f in frames]), np.stack([f.transform for f in frames]),
                         config.align, np.stack([f.gray for f in frames]))
    margin = config.occlusion.box_margin
    ratios = [f.occlusion_ratios(margin) for f in frames]
    return FrontEnd(clip, track, faces, 1, config, {region: np.array([r[region] for r in ratios]) for region in ratios[0]},
                    rest_blendshapes)


class PairCache:
    """What a measurement of two aligned frames of one stream gave (the spotter's per-region motion from
    a reference frame to a frame), kept by the pair's stream frame numbers.

    The crops and landmarks of a stream's frames are fixed once :func:`stream_frontend` has aligned
    them, so a pair measured in one window of a live stream measures the same in the next: overlapping
    windows look their old pairs up and compute only the new ones (in ``workers`` threads: OpenCV's flow
    releases the GIL). :meth:`bind` names the frame numbers of the window about to be measured and drops
    pairs whose reference lies before it (windows only move forward). ``key`` (the measurement's
    settings) must match, else the cache is cleared: values are never mixed across settings.
    """

    def __init__(self, *, workers: int = 2):
        self.workers = workers
        self.numbers: np.ndarray | None = None
        self.hits = self.misses = 0
        self._key = None
        self._values: dict[tuple[int, int], np.ndarray] = {}
        self._pool: ThreadPoolExecutor | None = None

    def bind(self, numbers) -> None:
        self.numbers = np.asarray(numbers, np.int64)
        first = int(self.numbers[0])
        self._values = {k: v for k, v in self._values.items() if k[0] >= first}

    def columns(self, pairs: list[tuple[int, int]], *, n: int, key, compute: Callable[[int, int], np.ndarray]) -> list:
        """``compute(r, t)`` for each (reference, frame) index pair of the bound window (length ``n``),
        from the cache where measured before. A window of another length than the bound one is computed
        without the cache."""
        nums = self.numbers
        if nums is None or len(nums) != n:
            return [compute(r, t) for r, t in pairs]
        if key != self._key:
            self._values, self._key = {}, key
        named = [(int(nums[r]), int(nums[t])) for r, t in pairs]
        todo = {name: pair for name, pair in zip(named, pairs) if name not in self._values}
        self.hits += len(pairs) - len(todo)
        self.misses += len(todo)
        if len(todo) > 1 and self.workers > 1:
            if self._pool is None:
                self._pool = ThreadPoolExecutor(self.workers, thread_name_prefix="mevqa-pairs")
            got = self._pool.map(lambda rt: compute(*rt), todo.values())
        else:
            got = (compute(r, t) for r, t in todo.values())
        self._values.update(zip(todo, got))
        return [self._values[name] for name in named]

    def close(self) -> None:
        if self._pool is not None:
            self._pool.shutdown()
            self._pool = None

    def __enter__(self) -> "PairCache":
        return self

    def __exit__(self, *exc) -> None:
        self.close()
