"""Micro- and macro-expression spotting from ROI optical flow.

The design follows the classic ROI-flow spotters that won the MEGC2022 spotting task and the MEGC2024
cross-cultural spotting task (the field notes in ARCHITECTURE.md): optical flow against reference frames;
small regions of interest (inner and outer brows, upper and lower lids, nose wings, cheeks, mouth
corners, lips, chin); per region the mean of the largest 20-30% flow magnitudes once the head's own
motion is taken off; a low-pass filter (2 Hz); a rise above the local minimum within about +-1 s that
must also clear a noise floor; boundaries walked down toward the neighbouring valleys; micro versus macro by duration (MEGC: micro <= 0.5 s, macro
up to 4 s). The older whole-face baseline of MEGC2020 (MDMD, F1 about 0.04 on CAS(ME)^2) shows why the
regions matter.

Where this implementation differs, and why:

- **Clip-independent measurement.** Those spotters compare each frame with the first frame of a
  sliding window (200 frames), so what a frame measures depends on where the windows fall, that is on
  where the clip starts: the same laugh measured 0.68 IOD in a 20 s clip and 0.32 in a 6 s excerpt.
  Here each frame is compared with the frame ``lag_seconds`` (2 s) before it and with the frame as
  far after it (:func:`mevqa.spot.signals.roi_motion`; the second reuses the first's flows), and the
  smaller of the two is the face's departure from both: an expression that rises and falls within the
  lag keeps its own shape on a neutral face at either end, and nothing outside [t - lag, t + lag]
  affects frame t. Motion is in inter-ocular distances (IOD) of the aligned crop.
- **A local noise floor.** The threshold at each frame is ``noise_k`` robust sigmas (1.4826 MAD over
  ``noise_seconds`` around the frame, median over the regions) of the raw motion's part above
  ``noise_hz``, i.e. of the flow's own error, scaled by the residual filter's white-noise gain so
  it means the same at 12, 24, 30 or 200 fps, at least ``min_rise``
  (:func:`mevqa.spot.intervals.local_threshold`): not a quantile of the whole clip's motion, which a
  clip full of expressions raises and a quiet excerpt lowers.
- **Intervals are prominent peaks of two curves**, not per-region detections merged by rules
  (:mod:`mevqa.spot.intervals`): the brows' curve (brows, upper lids) and the rest of the face's
  (lower lids, nose, cheeks, mouth, chin) are each their most moving region's rise; a peak counts when it clears
  the threshold and its prominence is at least a threshold and half its height, and it is bounded
  where the curve has fallen by ``edge`` of that prominence. Prominence is what small changes of the
  curve change least; on the real test video the per-region design agreed with its own mirrored copy
  at interval F1 0.67 and with a JPEG-10 copy at 0.48. The two parts are kept apart so that a brief
  action of one during a longer expression of the other (a brow lowering under a smile) keeps its peak.
- **Shoulders are not expressions.** A peak of at most 0.5 s within ``shoulder_seconds`` of a longer,
  stronger interval is that expression's rise or fall wobbling (:func:`mevqa.spot.intervals.drop_shoulders`);
  a small change of the curve makes such a peak or takes it away, and on the real test video they were
  most of what a transformed copy did not share with the original (interval F1 0.78 -> 0.85).
- Regions the front end reports occluded (a hand over the mouth) add nothing while covered: the
  occluder moved, not the face.
- Head motion is the one head-motion model (:mod:`mevqa.motion.head`: a robust similarity fitted
  to the flow at rigid landmarks), removed at every ROI pixel: the alignment's residual scale and
  roll jitter grows with the distance from the eyes and, left in, shows up as false motion at the
  chin and lips.
- Eye blinks, the classic false positive of flow spotters, are found from the eyelid landmarks (the
  upper lid falling in both eyes; eye aspect ratio of Soukupova & Cech, CVWW 2016) and silence
  the lid windows while they last; in the brow and lower-lid windows the part of the upper lid's motion
  that leaks into them is taken off first, so a blink alone yields nothing while an expression during
  a blink (a brow raise included) survives.

Every time constant is in seconds, so 30 fps and 200 fps footage behave alike. Results are reported
in the original clip's 0-based, inclusive frame numbers.
"""
from __future__ import annotations

import json
import math
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np
from scipy import ndimage

from mevqa.io.video import Clip
from mevqa.motion.filters import GAUSS_3DB, local_baseline, lowpass
from mevqa.motion.frontend import FrontEnd, FrontEndConfig, run_frontend
from mevqa.spot.config import BLINK_ROIS, BROW_ROIS, LID_NEIGHBOURS, OCCLUDED_ROIS, SpotConfig
from mevqa.spot.intervals import combine, drop_shoulders, local_threshold, segment, split_long
from mevqa.spot.plot import MotionMark, plot_motion
from mevqa.spot.signals import detect_blinks, roi_motion


@dataclass
class SpottedInterval:
    """One spotted expression in the original clip's 0-based inclusive frame numbers.

    ``score`` is the rise of the strongest region divided by its threshold (>= 1 when reported);
    ``rois`` gives each contributing region's rise in pixels of the aligned face crop.
    """

    onset: int
    apex: int
    offset: int
    kind: str
    score: float
    rois: dict[str, float] = field(default_factory=dict)

    def to_dict(self) -> dict:
        return {"onset": int(self.onset), "apex": int(self.apex), "offset": int(self.offset), "kind": self.kind,
                "score": round(float(self.score), 3), "rois": {k: round(float(v), 3) for k, v in self.rois.items()}}


@dataclass
class SpotResult:
    """Spotted intervals plus the curves they came from (analysis frames, possibly subsampled).

    ``signals`` maps each region to its low-passed motion (pixels of the aligned crop) against the
    window reference; ``combined`` is, per frame, the rise above the local baseline of the region that
    is strongest relative to its threshold, and ``threshold`` that region's threshold (both pixels), so
    ``combined > threshold`` wherever some region triggers. ``fps`` and ``n_frames`` are the clip's.
    """

    intervals: list[SpottedInterval]
    times: np.ndarray
    signals: dict[str, np.ndarray]
    combined: np.ndarray
    threshold: np.ndarray
    fps: float
    n_frames: int
    clip: str
    analysis_fps: float = 0.0
    blinks: list[tuple[int, int]] = field(default_factory=list)  # clip frames (start, end) inclusive

    def to_dict(self) -> dict:
        """The stable JSON contract of ``mevqa spot --json`` (plus ``rois`` inside each interval)."""
        return {"clip": self.clip, "fps": float(self.fps), "n_frames": int(self.n_frames),
                "intervals": [iv.to_dict() for iv in self.intervals]}

    def to_json(self, **kw) -> str:
        return json.dumps(self.to_dict(), **kw)

    def plot(self, ax=None, *, rois: bool = False):
        """The motion plot (:func:`mevqa.spot.plot.plot_motion`, as the app draws it): curve, threshold,
        numbered intervals, blinks; ``rois`` adds each region's curve. Returns the figure."""
        marks = [MotionMark(k + 1, iv.onset / self.fps, iv.apex / self.fps, iv.offset / self.fps, iv.kind)
                 for k, iv in enumerate(self.intervals)]
        fig = plot_motion(times=self.times, motion=self.combined, threshold=self.threshold, marks=marks,
                          duration=max(self.n_frames - 1, 1) / self.fps,
                          bars=[(b0 / self.fps, (b1 + 1) / self.fps) for b0, b1 in self.blinks], bar_label="blink",
                          unit=getattr(self, "unit", None) or "px, aligned face crop",
                          title=f"{Path(self.clip).name}: {len(self.intervals)} interval(s)", ax=ax)
        if rois:
            ax = ax or fig.axes[0]
            lines = [ax.plot(self.times, s, lw=0.6, alpha=0.5, label=name)[0] for name, s in self.signals.items()]
            ax.add_artist(ax.get_legend())
            ax.legend(handles=lines, loc="upper left", bbox_to_anchor=(1.01, 1.0), fontsize=6, frameon=False)
            fig.tight_layout()
        return fig

def spot(front: FrontEnd, *, config: SpotConfig = SpotConfig(), progress=None, pair_cache=None) -> SpotResult:
    """Spot micro- and macro-expressions in a tracked, aligned clip.

    Steps: per-region motion against the frames ``lag_seconds`` back and ahead (:func:`roi_motion`);
    low-pass; the smaller of the two; the rise above the local minimum within +-``baseline_seconds``;
    a per-frame threshold from the local flow noise (:func:`local_threshold`), at least ``min_rise``;
    blinks, lid leak and occluded regions taken off (:func:`_visible`); prominent peaks of the brows' curve
    and the rest's (:func:`segment`), combined (:func:`combine`), shoulders dropped (:func:`drop_shoulders`); longer than
    ``macro_max_seconds`` split or dropped; micro or macro by duration. ``progress`` is an optional
    callable ``(done, total)`` called while the flow runs; ``pair_cache`` (a bound
    :class:`mevqa.motion.stream.PairCache`) lets a live stream's windows reuse the motion of frame pairs
    measured before (:func:`roi_motion`).
    """
    cfg = config
    faces = front.faces
    fps = front.fps
    n = len(faces)
    iod = front.interocular_px
    names = list(cfg.rois)
    # The lid rule needs the upper-lid windows even when they are not detection regions.
    aux = sorted({LID_NEIGHBOURS[r] for r in names if r in LID_NEIGHBOURS} - set(names))
    back, ahead = roi_motion(faces.gray, faces.landmarks, fps, config=cfg, rois=names + aux, iod=iod,
                             progress=progress, cache=pair_cache)
    # Motion against the frame lag_seconds back and against the frame as far ahead; the smaller of
    # the two is the face's departure from both: an expression shorter than the lag rises and falls
    # in it with its own shape, on a neutral face at either end.
    lag = max(1, round(cfg.lag_seconds * fps))
    x_all = np.minimum(lowpass(back, fps, cfg.lowpass_hz), lowpass(ahead, fps, cfg.lowpass_hz))
    half = max(1, round(cfg.baseline_seconds * fps))
    d_all = x_all - local_baseline(x_all, half)
    k = len(names)
    x, d = x_all[:k], d_all[:k]
    lid_rise = dict(zip(names + aux, d_all))
    # One threshold per frame for all regions, from the local flow noise (clip-independent).
    # The flow error is measured on motions over a full lag: ahead of the frame within the first lag
    # (where "back" reaches only to frame 0), behind it elsewhere; so a clip's start reads as its middle.
    full_lag = np.where(np.arange(n) >= min(lag, n - 1), back[:k], ahead[:k])
    thr = local_threshold(full_lag, fps, cutoff_hz=cfg.noise_hz, seconds=cfg.noise_seconds, k=cfg.noise_k,
                          floor=cfg.min_rise * iod, rises=d if cfg.rise_k > 0 else None, k_rise=cfg.rise_k)

    blinks = detect_blinks(faces.landmarks, fps, max_seconds=cfg.blink_max_seconds,
                           drop=cfg.blink_drop) if cfg.suppress_blinks else []
    in_blink = np.zeros(n, bool)
    margin = max(1, round(GAUSS_3DB / cfg.lowpass_hz * fps * 2))  # the low-pass spreads a blink
    for a, b in blinks:
        in_blink[max(0, a - margin):b + margin + 1] = True

    # Widened by occlusion_margin_seconds: the occluder moves in and out for a few frames before the
    # front end sees the region covered, and that motion is the occluder's too.
    reach = max(0, round(cfg.occlusion_margin_seconds * fps))
    covered = {names.index(roi): ndimage.binary_dilation(np.asarray(mask, bool), iterations=reach) if reach else
               np.asarray(mask, bool) for region, mask in (getattr(front, "occlusion", None) or {}).items()
               if len(mask) == n for roi in OCCLUDED_ROIS.get(region, ()) if roi in names}
    rise = _visible(d, names, lid_rise, in_blink, covered, cfg)
    # The face's motion is its most moving region's: an expression moves a few regions, and a
    # region's rise is measured against its own neighbourhood in time, so a slow plateau (a held
    # smile) sinks to zero in the middle and a brief action during it stands out on its own.
    lead = np.argmax(rise, axis=0)
    combined = rise[lead, np.arange(n)]
    threshold = thr

    intervals = []
    min_len = cfg.min_seconds * fps
    opts = dict(min_height=cfg.min_height, min_prominence=cfg.min_prominence,
                relative_prominence=cfg.relative_prominence, edge=cfg.edge,
                reach_seconds=cfg.macro_max_seconds / 2, calibrate_edges=cfg.calibrate_edges)
    halves = [[r for r, name in enumerate(names) if (name in BROW_ROIS) == brow] for brow in (True, False)]
    parts = []
    for rows in halves:
        found = segment(rise[rows].max(axis=0), thr, fps, **opts) if rows else []
        parts.append([replace(sg, rows=tuple(rows)) for sg in found])
    segments = combine(*parts, combined, nested_score=cfg.nested_score, nested_max=cfg.micro_max_seconds * fps)
    if cfg.shoulder_seconds > 0:
        segments = drop_shoulders(segments, max_len=cfg.micro_max_seconds * fps, max_gap=cfg.shoulder_seconds * fps)
    for sg in segments:
        pieces = [(sg.onset, sg.offset)]
        if (sg.offset - sg.onset) / fps > cfg.macro_max_seconds:
            if cfg.long_policy == "drop":
                continue
            pieces = split_long(sg.onset, sg.offset, combined, cfg.macro_max_seconds * fps, max(1, round(0.25 * fps)))
        for a, b in pieces:
            if b - a < min_len:
                continue
            lo, hi = int(math.floor(a)), int(math.ceil(b))
            apex = sg.apex if lo <= sg.apex <= hi else lo + int(np.argmax(combined[lo:hi + 1]))
            score = float(combined[apex] / thr[apex])
            # The regions that moved with it: those of its part of the face rising at least
            # member_fraction as much as the part's lead region.
            peak = rise[:, lo:hi + 1].max(axis=1)
            top = max(peak[r] for r in sg.rows)
            contrib = {names[r]: float(peak[r]) for r in sg.rows if peak[r] >= cfg.member_fraction * top and peak[r] > 0}
            intervals.append(_to_clip(front, a, apex, b, score, contrib, cfg))
    intervals.sort(key=lambda iv: iv.onset)

    to_px = {name: x[r].astype(np.float32) for r, name in enumerate(names)}
    clip = front.clip
    return SpotResult(intervals, np.arange(n) * front.step / clip.fps, to_px, combined.astype(np.float32),
                      threshold.astype(np.float32), float(clip.fps), int(clip.n_frames), clip.source,
                      analysis_fps=float(fps),
                      blinks=[(int(front.to_clip(a)), int(front.to_clip(b))) for a, b in blinks])


def _visible(d: np.ndarray, names: list[str], lid_rise: dict, in_blink: np.ndarray, covered: dict,
             cfg: SpotConfig) -> np.ndarray:
    """What each region's rise ``d`` (R, T) may add to the face's motion.

    A blink explains the lid windows while it lasts; a region the front end sees covered (a hand over
    the mouth) shows the occluder, not the face; in the brow and lower-lid windows the part of the
    upper lid's rise that leaks into them is taken off, so a blink alone rises nowhere while a brow
    raise during a blink still does.
    """
    rise = d.copy()
    if cfg.suppress_blinks:
        for r, name in enumerate(names):
            if name in BLINK_ROIS:
                rise[r, in_blink] = 0.0
            lid = LID_NEIGHBOURS.get(name)
            if lid is not None:
                rise[r] -= cfg.lid_leak * np.maximum(lid_rise[lid], 0.0)
    for r, mask in covered.items():
        rise[r, mask] = 0.0
    return np.maximum(rise, 0.0)


def _to_clip(front: FrontEnd, on: float, apex: int, off: float, score: float, rois: dict,
             cfg: SpotConfig) -> SpottedInterval:
    """Analysis positions (fractional) -> clip frames; kind by duration, (offset - onset + 1) / fps as
    in :func:`mevqa.megc.metrics.spotting_scores`."""
    last = front.clip.n_frames - 1
    onset = int(np.clip(round(on * front.step), 0, last))
    # An interval still open at the last analysed frame runs to the clip's last frame (a subsampled
    # clip has up to step - 1 frames after it).
    offset = last if off >= front.n - 1 else int(np.clip(round(off * front.step), onset, last))
    apex_c = int(np.clip(apex * front.step, onset, offset))
    kind = "micro" if (offset - onset + 1) / front.clip.fps <= cfg.micro_max_seconds else "macro"
    return SpottedInterval(onset, apex_c, offset, kind, float(score), dict(sorted(rois.items(), key=lambda kv: -kv[1])))


def spot_clip(clip: Clip, *, config: SpotConfig = SpotConfig(), frontend: FrontEndConfig = FrontEndConfig(),
              progress=None) -> SpotResult:
    """Track, align and spot one clip (see :func:`spot`)."""
    return spot(run_frontend(clip, config=frontend), config=config, progress=progress)
