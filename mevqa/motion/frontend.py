"""The shared front end: one pass of face tracking and alignment per clip.

The spotter, the AU detector and the evidence builder all start from the same aligned face crops, so a
clip is decoded, tracked and aligned once. High-frame-rate footage (CASME II and SAMM are 200 fps) is
subsampled to at most ``max_fps`` for analysis: facial motion has little energy above ~10 Hz, and
subsampling makes 200 fps clips cost what 50 fps clips cost. Every public result is still reported in
the clip's own frame indices (:meth:`FrontEnd.to_clip`).

Long videos and live sources do not fit in memory as a :class:`Clip`: :mod:`mevqa.motion.stream`
tracks and aligns them a frame at a time and makes a :class:`FrontEnd` of each window of aligned crops.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from functools import cached_property

import numpy as np

from mevqa.face.landmarks import AlignConfig, AlignedFaces, FaceTrack, align_faces, group_points, track_face
from mevqa.face.occlusion import OcclusionConfig, detect_occlusions
from mevqa.io.video import Clip
from mevqa.motion.head import RIGID_INDICES


@dataclass(frozen=True)
class FrontEndConfig:
    max_fps: float = 50.0
    align: AlignConfig = AlignConfig()
    occlusion: OcclusionConfig = OcclusionConfig()


@dataclass
class FrontEnd:
    """A clip with its face track and aligned crops, sampled every ``step`` frames."""

    clip: Clip
    track: FaceTrack
    faces: AlignedFaces
    step: int
    config: FrontEndConfig
    # per occlusion region the (n,) gradient ratios where already measured (a live stream's frames are
    # measured once, not in every window that holds them: mevqa.motion.stream.window_frontend)
    occlusion_ratios: dict[str, np.ndarray] | None = None
    # (N, 52) blendshape scores of the frames the person's resting level is read from, where more than
    # this clip's own (a stream's window: the stream's last minute, mevqa.evidence.stream.REST_SECONDS)
    rest_blendshapes: np.ndarray | None = None

    @property
    def fps(self) -> float:
        """Frame rate of the analysed (possibly subsampled) sequence."""
        return self.clip.fps / self.step

    @property
    def n(self) -> int:
        return len(self.faces)

    def to_clip(self, i) -> int | np.ndarray:
        """Analysis index -> clip frame index (0-based)."""
        return np.minimum(np.asarray(i) * self.step, self.clip.n_frames - 1) if np.ndim(i) else min(int(i) * self.step, self.clip.n_frames - 1)

    def to_analysis(self, frame: int) -> int:
        """Clip frame index -> nearest analysis index."""
        return int(np.clip(round(frame / self.step), 0, self.n - 1))

    def rigid_points(self, i: int | None = None) -> np.ndarray:
        """Crop coordinates of the rigid landmarks (nose ridge, inner eye corners) at frame i or median."""
        lm = self.faces.mean_landmarks if i is None else self.faces.landmarks[i]
        return np.concatenate([group_points(lm, "nose_ridge"), group_points(lm, "inner_eye_corners")])

    def head_points(self, i: int | None = None) -> np.ndarray:
        """Crop coordinates of the 19 rigid landmarks of the head-motion model
        (:data:`mevqa.motion.head.RIGID_INDICES`) at frame i or their median over the clip."""
        lm = self.faces.mean_landmarks if i is None else self.faces.landmarks[i]
        return lm[list(RIGID_INDICES)]

    @cached_property
    def occlusion(self) -> dict[str, np.ndarray]:
        """Per region ("mouth", "right eye", "left eye") a (n,) bool mask of analysis frames where it
        looks covered (:func:`mevqa.face.occlusion.detect_occlusions`); spotter and AU detector can
        discount those frames."""
        return detect_occlusions(self.faces.gray, self.faces.landmarks, self.fps, config=self.config.occlusion,
                                 ratios=self.occlusion_ratios)

    @property
    def interocular_px(self) -> float:
        """Inter-ocular distance in the aligned crop (fixed by the alignment)."""
        return self.config.align.eye_distance * self.config.align.size


def run_frontend(clip: Clip, *, config: FrontEndConfig = FrontEndConfig(), progress=None) -> FrontEnd:
    """Track and align the face of ``clip`` (subsampled to ``config.max_fps``)."""
    step = max(1, math.ceil(clip.fps / config.max_fps - 1e-6))
    sub = clip.subsampled(step)
    track = track_face(sub, progress=progress)
    faces = align_faces(sub, track, config=config.align)
    return FrontEnd(clip, track, faces, step, config)
