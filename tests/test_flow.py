"""Optical flow, head-motion removal, flow maps and strain on known motion."""
import cv2
import numpy as np
import pytest

from mevqa.motion.flow import (FlowError, dense_flow, flow_sequence, flow_to_rgb, head_motion, optical_strain,
                        remove_head_motion, sample_points)
from mevqa.motion.head import head_flow


@pytest.fixture(scope="module")
def face_crop(real_short):
    from mevqa.face.landmarks import align_faces, track_face

    al = align_faces(real_short.frames[:2], track_face(Clip_(real_short)), fps=real_short.fps)
    return al.gray[0]


def Clip_(c):
    from mevqa.io.video import Clip
    return Clip(c.frames[:2], c.fps)


def _shift(img, dx, dy):
    return cv2.warpAffine(img, np.float32([[1, 0, dx], [0, 1, dy]]), img.shape[::-1], flags=cv2.INTER_CUBIC,
                          borderMode=cv2.BORDER_REFLECT)


@pytest.mark.parametrize("method", ["dis", "farneback", "tvl1"])
def test_flow_recovers_a_subpixel_shift(face_crop, method):
    moved = _shift(face_crop, 0.7, -0.4)
    f = dense_flow(face_crop, moved, method=method)
    mid = f[60:160, 60:160].reshape(-1, 2)
    assert np.allclose(np.median(mid, axis=0), [0.7, -0.4], atol=0.15)


def test_unknown_method_is_a_clear_error(face_crop):
    with pytest.raises(FlowError, match="unknown flow method"):
        dense_flow(face_crop, face_crop, method="magic")


def test_head_motion_is_removed_but_local_motion_kept(face_crop):
    h, w = face_crop.shape
    flow = np.zeros((h, w, 2), np.float32)
    flow[...] = (1.5, -0.5)                # the whole head moves
    flow[150:170, 60:90] += (0.0, -1.0)    # plus a local lift (a mouth corner)
    rigid = np.array([[112, 90], [112, 110], [95, 75], [129, 75]], float)
    m = head_motion(flow, rigid)
    assert np.allclose(m, [[1, 0, 1.5], [0, 1, -0.5]], atol=1e-4)
    clean = remove_head_motion(flow, rigid)
    assert np.allclose(clean[100, 112], 0, atol=1e-4)
    assert np.allclose(sample_points(clean, np.array([[75, 160]]), radius=3)[0], (0, -1), atol=1e-4)


def test_head_motion_removes_roll_and_ignores_a_moved_rigid_point(face_crop):
    """A 1 degree roll about the crop centre plus a shift, one of six rigid points pulled by an expression."""
    h, w = face_crop.shape
    m = cv2.getRotationMatrix2D((w / 2, h / 2), 1.0, 1.01).astype(float)
    m[:, 2] += (0.4, -0.3)
    flow = head_flow(m, (h, w))
    flow[85:96, 105:120] += (0.0, 1.2)  # the glabella pulled down
    rigid = np.array([[112, 90], [112, 110], [95, 75], [129, 75], [60, 80], [164, 80]], float)
    assert np.allclose(head_motion(flow, rigid, radius=2), m, atol=1e-3)
    clean = remove_head_motion(flow, rigid, radius=2)
    assert np.abs(clean[150:200, 20:200]).max() < 1e-2  # the chin, far from the points, is clean too


def test_flow_sequence_against_a_reference(face_crop):
    crops = np.stack([_shift(face_crop, 0.5 * i, 0) for i in range(4)])
    seq = flow_sequence(crops, reference=0)
    assert seq.shape == (4, *face_crop.shape, 2)
    med = [np.median(seq[i, 60:160, 60:160, 0]) for i in range(4)]
    assert np.allclose(med, [0, 0.5, 1.0, 1.5], atol=0.15)


def test_flow_map_uses_a_fixed_scale():
    f = np.zeros((4, 4, 2), np.float32)
    f[0, 0] = (3, 0)     # at the scale: full brightness
    f[0, 1] = (1.5, 0)   # half
    f[0, 2] = (30, 0)    # saturates, does not rescale the others
    rgb = flow_to_rgb(f, max_magnitude=3.0)
    v = rgb.max(axis=-1).astype(int)
    assert v[0, 0] == 255 and abs(v[0, 1] - 127) <= 2 and v[0, 2] == 255 and v[1, 1] == 0
    # Direction shows as hue: right and up differ in colour.
    up = flow_to_rgb(np.array([[[0, -3]]], np.float32))[0, 0]
    right = flow_to_rgb(np.array([[[3, 0]]], np.float32))[0, 0]
    assert not np.array_equal(up, right)


def test_strain_is_zero_for_translation_and_positive_for_stretch():
    yy, xx = np.mgrid[0:32, 0:32].astype(np.float32)
    shift = np.dstack([np.ones_like(xx), np.zeros_like(xx)])
    stretch = np.dstack([0.1 * xx, np.zeros_like(xx)])
    assert np.allclose(optical_strain(shift), 0)
    assert np.allclose(optical_strain(stretch)[5:-5, 5:-5], 0.1, atol=1e-4)
