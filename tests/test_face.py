"""Face tracking, alignment and landmark groups on the real video."""
import cv2
import numpy as np
import pytest

from mevqa.face.landmarks import (LANDMARK_GROUPS, AlignConfig, FaceError, align_faces, eye_centres, group_centre,
                        track_face)
from mevqa.io.video import Clip


@pytest.fixture(scope="module")
def tracked(real_short):
    return track_face(real_short)


def test_tracks_every_frame_of_a_visible_face(tracked, real_short):
    assert tracked.landmarks.shape == (real_short.n_frames, 478, 2)
    assert tracked.lost_frames == []
    # The face sits in the middle of a 640x360 frame.
    c = tracked.landmarks[0].mean(axis=0)
    assert 200 < c[0] < 440 and 80 < c[1] < 300


def test_groups_use_the_subjects_own_left(tracked):
    lm = tracked.landmarks[0]
    # The subject's left side is on the image right in an unmirrored video.
    assert group_centre(lm, "left_brow")[0] > group_centre(lm, "right_brow")[0]
    assert group_centre(lm, "left_mouth_corner")[0] > group_centre(lm, "right_mouth_corner")[0]
    assert group_centre(lm, "left_brow")[1] < group_centre(lm, "left_eye")[1] < group_centre(lm, "left_cheek")[1]
    assert group_centre(lm, "chin")[1] > group_centre(lm, "lower_lip")[1] > group_centre(lm, "upper_lip")[1]
    assert all(max(ix) < 478 for ix in LANDMARK_GROUPS.values())


def test_alignment_puts_eyes_at_fixed_places(tracked, real_short):
    cfg = AlignConfig(size=160)
    al = align_faces(real_short, tracked, config=cfg)
    assert al.crops.shape == (real_short.n_frames, 160, 160, 3)
    r, left = eye_centres(al.landmarks)
    assert np.allclose(r.mean(0), [160 / 2 - cfg.eye_distance * 80, cfg.eye_y * 160], atol=3)
    assert np.allclose(left.mean(0), [160 / 2 + cfg.eye_distance * 80, cfg.eye_y * 160], atol=3)


def test_alignment_cancels_head_translation(real_short, tracked):
    # Shift the whole clip by a growing offset (a head moving 12 px): the aligned crops barely change.
    frames = real_short.frames[:12]
    moved = np.stack([cv2.warpAffine(f, np.float32([[1, 0, i], [0, 1, i / 2]]), (f.shape[1], f.shape[0]),
                                     borderMode=cv2.BORDER_REPLICATE) for i, f in enumerate(frames)])
    clip = Clip(moved, real_short.fps)
    al = align_faces(clip, track_face(clip), config=AlignConfig(smooth_seconds=0))
    r, _ = eye_centres(al.landmarks)
    assert np.ptp(r[:, 0]) < 1.5 and np.ptp(r[:, 1]) < 1.5


def test_lost_frames_are_recorded_and_filled(real_short):
    frames = real_short.frames[:10].copy()
    frames[4:6] = 0  # two black frames: no face
    tr = track_face(Clip(frames, real_short.fps))
    assert tr.lost_frames == [4, 5]
    # Interpolated landmarks sit between their neighbours.
    assert np.allclose(tr.landmarks[4], tr.landmarks[3] + (tr.landmarks[6] - tr.landmarks[3]) / 3, atol=1e-3)


def test_no_face_is_one_clear_error():
    rng = np.random.default_rng(0)
    noise = Clip(rng.integers(0, 255, (5, 240, 320, 3), dtype=np.uint8), 30.0, "noise.mp4")
    with pytest.raises(FaceError) as e:
        track_face(noise)
    assert "no face found" in str(e.value) and "\n" not in str(e.value)


def test_largest_of_two_faces_is_tracked(real_short):
    big = real_short.frames[0]
    small = cv2.resize(big, (320, 180))
    canvas = np.full((360, 960, 3), 40, np.uint8)
    canvas[:, :640] = big
    canvas[90:270, 640:960] = small
    tr = track_face(Clip(np.stack([canvas] * 3), 30.0))
    assert tr.landmarks[:, :, 0].mean() < 640  # the full-size face on the left, not the small copy
