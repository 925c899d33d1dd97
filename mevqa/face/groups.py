"""Named landmark groups of MediaPipe's 478-point face mesh (FaceMesh and the Face Landmarker share it).

Left and right are always the **subject's own**: ``left_brow`` is the brow the person would call their
left, which is on the right of an unmirrored image. MEGC's "left or right face" questions use that
convention too.
"""
from __future__ import annotations

import numpy as np

# -- named landmark groups (MediaPipe face-mesh indices; subject's own left/right) ------------
# MediaPipe numbers the subject's right eye 33..133 (image left) and the left eye 263..362.
LANDMARK_GROUPS: dict[str, tuple[int, ...]] = {
    "right_brow": (70, 63, 105, 66, 107, 46, 53, 52, 65, 55),
    "left_brow": (300, 293, 334, 296, 336, 276, 283, 282, 295, 285),
    "right_inner_brow": (107, 66, 55, 65),
    "left_inner_brow": (336, 296, 285, 295),
    "right_outer_brow": (70, 63, 46, 53),
    "left_outer_brow": (300, 293, 276, 283),
    "glabella": (9, 8, 151),
    "right_eye": (33, 7, 163, 144, 145, 153, 154, 155, 133, 173, 157, 158, 159, 160, 161, 246),
    "left_eye": (263, 249, 390, 373, 374, 380, 381, 382, 362, 398, 384, 385, 386, 387, 388, 466),
    "right_upper_lid": (246, 161, 160, 159, 158, 157, 173),
    "left_upper_lid": (466, 388, 387, 386, 385, 384, 398),
    "right_lower_lid": (7, 163, 144, 145, 153, 154, 155),
    "left_lower_lid": (249, 390, 373, 374, 380, 381, 382),
    "right_eye_corners": (33, 133),
    "left_eye_corners": (263, 362),
    "inner_eye_corners": (133, 362),
    "nose_ridge": (168, 6, 197, 195, 5),
    "right_nose_wing": (129, 98, 64, 48),
    "left_nose_wing": (358, 327, 294, 278),
    "right_cheek": (205, 50, 187, 123, 117),
    "left_cheek": (425, 280, 411, 352, 346),
    "right_mouth_corner": (61, 76, 62, 146),
    "left_mouth_corner": (291, 306, 292, 375),
    "upper_lip": (0, 37, 267, 13, 82, 312),
    "lower_lip": (17, 84, 314, 14, 87, 317),
    "chin": (152, 175, 199, 200, 18),
}
#: Regions that do not move with facial expressions: head motion is measured on them.
RIGID_GROUPS = ("nose_ridge", "inner_eye_corners")
#: Face oval, used for masks (from MediaPipe's FACEMESH_FACE_OVAL, in drawing order).
FACE_OVAL = (10, 338, 297, 332, 284, 251, 389, 356, 454, 323, 361, 288, 397, 365, 379, 378, 400, 377,
             152, 148, 176, 149, 150, 136, 172, 58, 132, 93, 234, 127, 162, 21, 54, 103, 67, 109)


def group_points(landmarks: np.ndarray, name: str) -> np.ndarray:
    """Landmarks of a named group: (..., k, 2) from (..., 478, 2)."""
    return landmarks[..., list(LANDMARK_GROUPS[name]), :]


def group_centre(landmarks: np.ndarray, name: str) -> np.ndarray:
    return group_points(landmarks, name).mean(axis=-2)


def eye_centres(landmarks: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(right, left) eye centres as the mean of each eye's two corners: stable through blinks."""
    return group_centre(landmarks, "right_eye_corners"), group_centre(landmarks, "left_eye_corners")


def interocular(landmarks: np.ndarray) -> np.ndarray:
    r, left = eye_centres(landmarks)
    return np.linalg.norm(left - r, axis=-1)
