"""The spotter's options and its regions of interest (see :mod:`mevqa.spot.spotter` for the method)."""
from __future__ import annotations

from dataclasses import dataclass

from mevqa.motion.flow import FLOW_METHODS

#: Region of interest -> (landmark group of :data:`mevqa.face.landmarks.LANDMARK_GROUPS`, downward offset of the
#: window centre in inter-ocular units). The upper-lid windows cover the lid skin between brow and lid
#: margin (AU5 raises it, every blink drags it down); the brow windows sit a little above the brow's
#: centre line to keep clear of it, the lower-lid windows just below the lid margin, where the skin
#: moves with AU6/AU7.
ROIS: dict[str, tuple[str, float]] = {
    "right_inner_brow": ("right_inner_brow", -0.05),
    "left_inner_brow": ("left_inner_brow", -0.05),
    "right_outer_brow": ("right_outer_brow", -0.05),
    "left_outer_brow": ("left_outer_brow", -0.05),
    "right_upper_lid": ("right_upper_lid", -0.08),
    "left_upper_lid": ("left_upper_lid", -0.08),
    "right_lower_lid": ("right_lower_lid", 0.10),
    "left_lower_lid": ("left_lower_lid", 0.10),
    "right_nose_wing": ("right_nose_wing", 0.0),
    "left_nose_wing": ("left_nose_wing", 0.0),
    "right_cheek": ("right_cheek", 0.0),
    "left_cheek": ("left_cheek", 0.0),
    "right_mouth_corner": ("right_mouth_corner", 0.0),
    "left_mouth_corner": ("left_mouth_corner", 0.0),
    "upper_lip": ("upper_lip", 0.0),
    "lower_lip": ("lower_lip", 0.0),
    "chin": ("chin", 0.0),
}
#: The brows' regions: the brows and the upper-lid skin below them, which a brow lowering (AU4) drags
#: down and AU5 lifts. The rest (lower lids, nose, cheeks, mouth, chin) move together in a smile
#: (AU6 lifts the lower lids with the cheeks). Each part is segmented on its own
#: (:func:`mevqa.spot.intervals.combine`).
BROW_ROIS = ("right_inner_brow", "left_inner_brow", "right_outer_brow", "left_outer_brow",
             "right_upper_lid", "left_upper_lid")
#: Regions whose detections a blink explains (dropped while the eyes blink).
BLINK_ROIS = ("right_upper_lid", "left_upper_lid", "right_lower_lid", "left_lower_lid")
#: Face regions the front end may report occluded (:attr:`mevqa.motion.frontend.FrontEnd.occlusion`) -> the
#: ROIs they cover: a detection there whose apex is covered is the occluder moving, not the face.
OCCLUDED_ROIS = {"mouth": ("right_mouth_corner", "left_mouth_corner", "upper_lip", "lower_lip", "chin"),
                 "right eye": ("right_upper_lid", "right_lower_lid"), "left eye": ("left_upper_lid", "left_lower_lid")}
#: Regions next to the upper lid: a blink's lid motion leaks into their windows (about 0.1-0.17 of the
#: upper-lid window's rise in the brow windows, measured on synthetic blinks), so a detection there
#: must still clear the threshold after ``SpotConfig.lid_leak`` x the same-side upper-lid rise is
#: taken off. A brow raise during a blink survives; a blink alone does not.
LID_NEIGHBOURS = {"right_inner_brow": "right_upper_lid", "right_outer_brow": "right_upper_lid",
                  "right_lower_lid": "right_upper_lid", "left_inner_brow": "left_upper_lid",
                  "left_outer_brow": "left_upper_lid", "left_lower_lid": "left_upper_lid"}
# Eyelid landmarks (FaceMesh): three (upper, lower) lid-margin pairs and the two corners per eye.
_LIDS = {"right": (((159, 145), (158, 153), (160, 144)), (33, 133)),
         "left": (((386, 374), (385, 380), (387, 373)), (263, 362))}



@dataclass(frozen=True)
class SpotConfig:
    """Options of :func:`spot`. Times are in seconds, distances in inter-ocular units (IOD).

    The defaults follow the MEGC2022/2024 ROI-flow spotters (2 Hz low-pass at 30 fps, top 20-30% of
    the flow vectors per region, about +-1 s for the local baseline) and the MEGC durations (micro <=
    0.5 s, macro 0.5-4 s); references a fixed ``lag_seconds`` back and ahead replace their windows of
    200 frames, and the noise floor is local (see :mod:`mevqa.spot.spotter`).
    """

    # references: each frame against the frame this long before and the one this long after
    lag_seconds: float = 2.0         # longer than the rise and the fall of most expressions
    tail_step_seconds: float = 0.0   # the last lag frames are measured against the last frame this often
                                     # and interpolated between (0: every frame; live: 0.08; roi_motion)
    flow_method: str = "dis"         # see mevqa.motion.flow.FLOW_METHODS
    # regions
    rois: tuple[str, ...] = tuple(ROIS)
    roi_radius: float = 0.12         # half side of each square ROI window (IOD)
    rigid_radius: float = 0.05       # half side of the windows at the rigid landmarks (IOD)
    top_fraction: float = 0.25       # mean of the largest this-fraction flow magnitudes per ROI
    # detection
    lowpass_hz: float = 2.0          # cut-off of the Gaussian low-pass (same in Hz at any fps)
    baseline_seconds: float = 1.0    # the rise is measured above the minimum within +- this
    noise_seconds: float = 3.0       # the noise floor is estimated over this window around each frame
    noise_k: float = 6.0             # rise must exceed noise_k x the local flow noise (robust sigma) ...
    rise_k: float = 0.0              # ... and, if > 0, the regions' local median rise + rise_k robust sigmas ...
    min_rise: float = 0.003          # ... and this absolute floor (IOD; 0.23 px in the 224 crop)
    # intervals: the curve's prominent peaks (mevqa.spot.intervals.segment)
    min_height: float = 1.0          # a peak must reach this many thresholds ...
    min_prominence: float = 1.0      # a peak must stand out of its surroundings by this many thresholds ...
    relative_prominence: float = 0.5  # ... and by this part of its own height
    edge: float = 0.8                # bounds where the curve has fallen by this part of the prominence
    noise_hz: float = 5.0         # the flow noise is measured above this frequency
    calibrate_edges: bool = False    # move level crossings out to where a smooth rise began
    member_fraction: float = 0.5     # regions rising this much relative to the lead one are listed
    nested_score: float = 2.0        # a brief interval inside a longer one of the other face half stays
                                     # if it scores this much
    shoulder_seconds: float = 0.3    # a micro-long peak within this of a longer, stronger interval is its
                                     # shoulder, not an expression (0: keep them; intervals.drop_shoulders)
    min_seconds: float = 0.1         # shorter intervals are dropped
    micro_max_seconds: float = 0.5   # MEGC: a micro-expression lasts at most 0.5 s
    macro_max_seconds: float = 4.0   # MEGC: a macro-expression lasts 0.5-4 s
    long_policy: str = "split"       # longer intervals: "split" at their deepest valleys, or "drop"
    occlusion_margin_seconds: float = 0.25  # a covered region is left out this long before and after
    # blinks
    suppress_blinks: bool = True
    blink_max_seconds: float = 0.5   # eyes closed longer than this is not a blink
    blink_drop: float = 0.3          # upper-lid opening below (1 - drop) x its local level = closed
    lid_leak: float = 0.2            # part of the upper lid's rise taken off brow and lower-lid rises

    def __post_init__(self) -> None:
        if self.long_policy not in ("split", "drop"):
            raise ValueError(f"long_policy must be 'split' or 'drop', got {self.long_policy!r}")
        unknown = [r for r in self.rois if r not in ROIS]
        if unknown:
            raise ValueError(f"unknown ROI(s) {unknown}; choose from {list(ROIS)}")
        if self.flow_method not in FLOW_METHODS:
            raise ValueError(f"unknown flow method {self.flow_method!r}; choose from {', '.join(FLOW_METHODS)}")
        if not 0 < self.edge < 1:
            raise ValueError(f"edge must be in (0, 1), got {self.edge}")
        if not 0 < self.top_fraction <= 1:
            raise ValueError(f"top_fraction must be in (0, 1], got {self.top_fraction}")
        for name in ("lag_seconds", "noise_seconds", "lowpass_hz", "noise_hz", "baseline_seconds", "roi_radius"):
            if not getattr(self, name) > 0:
                raise ValueError(f"{name} must be positive, got {getattr(self, name)}")

