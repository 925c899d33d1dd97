"""MediaPipe Face Landmarker front end: the bundle, blendshapes, head pose, side naming, dataset-style frames."""
import shutil

import cv2
import numpy as np
import pytest

from mevqa.face import landmarker
from mevqa.face.landmarker import BLENDSHAPE_NAMES, BUNDLE_SHA256, FaceError, bundle_path
from mevqa.face.landmarks import track_face
from mevqa.io.video import Clip


@pytest.fixture(scope="module")
def tracked(real_short):
    return track_face(real_short)


# -- the bundle --------------------------------------------------------------------------------
def test_packaged_bundle_is_checked(monkeypatch):
    monkeypatch.delenv("MEVQA_FACE_MODEL", raising=False)
    p = bundle_path()
    assert p.name == "face_landmarker.task" and p.parent.name == "assets"
    import hashlib
    assert hashlib.sha256(p.read_bytes()).hexdigest() == BUNDLE_SHA256


def test_missing_or_corrupt_bundle_is_one_clear_line(tmp_path, monkeypatch, real_short):
    monkeypatch.setenv("MEVQA_FACE_MODEL", str(tmp_path / "nope.task"))
    with pytest.raises(FaceError) as e:
        track_face(real_short)
    assert "MEVQA_FACE_MODEL" in str(e.value) and "missing" in str(e.value) and "\n" not in str(e.value)
    junk = tmp_path / "junk.task"
    junk.write_bytes(b"not a zip" * 100)
    monkeypatch.setenv("MEVQA_FACE_MODEL", str(junk))
    with pytest.raises(FaceError, match="not a Face Landmarker task bundle") as e:
        track_face(real_short)
    assert "\n" not in str(e.value)
    # The packaged bundle, damaged, fails its checksum.
    bad = tmp_path / "face_landmarker.task"
    shutil.copy(landmarker.BUNDLE_PATH, bad)
    with open(bad, "r+b") as f:
        f.seek(1000)
        f.write(b"\0" * 64)
    monkeypatch.delenv("MEVQA_FACE_MODEL")
    monkeypatch.setattr(landmarker, "BUNDLE_PATH", bad)
    with pytest.raises(FaceError, match="corrupt .*sha256"):
        bundle_path()


def test_model_option_and_env_point_elsewhere(tmp_path, monkeypatch, real_short):
    other = tmp_path / "copy.task"
    shutil.copy(landmarker.BUNDLE_PATH, other)
    monkeypatch.setenv("MEVQA_FACE_MODEL", str(other))
    assert bundle_path() == other
    tr = track_face(Clip(real_short.frames[:3], real_short.fps), model=other)
    assert tr.found.all()


# -- per-frame outputs -------------------------------------------------------------------------
def test_blendshapes_pose_and_found_per_frame(tracked, real_short):
    t = real_short.n_frames
    assert tracked.blendshapes.shape == (t, 52) and tracked.blendshape_names == BLENDSHAPE_NAMES
    assert np.isfinite(tracked.blendshapes).all() and (0 <= tracked.blendshapes).all() and (tracked.blendshapes <= 1).all()
    assert tracked.pose.shape == (t, 4, 4) and tracked.found.all() and tracked.warnings == []
    # The head sits about 20 cm in front of the camera's canonical frame, to the image right of centre.
    tz = tracked.translation[:, 2]
    assert (tz < -10).all() and (tracked.translation[:, 0] > 0).all()
    assert np.isfinite(tracked.angles).all() and (np.abs(tracked.angles) < 45).all()
    # The first 2 s are a crying face with the eyes squeezed: the model reads closed, squinting eyes.
    assert tracked.blendshape("eyeBlinkLeft").mean() > 0.3


def _lift_corner(frame, lm, index):
    """Warp one mouth corner up and outward by ~0.15 inter-ocular distances (a one-sided smile)."""
    cx, cy = lm[index]
    iod = np.linalg.norm(lm[33] - lm[263])
    h, w = frame.shape[:2]
    gy, gx = np.mgrid[0:h, 0:w].astype(np.float32)
    g = np.exp(-((gx - cx) ** 2 + (gy - cy) ** 2) / (2 * (0.2 * iod) ** 2))
    out = -1 if cx < lm[1][0] else 1
    return cv2.remap(frame, gx - out * 0.09 * iod * g, gy + 0.15 * iod * g, cv2.INTER_LINEAR,
                     borderMode=cv2.BORDER_REFLECT)


def test_blendshape_sides_are_the_subjects_own(real_clip):
    """Lifting the image-right mouth corner (the subject's left) raises mouthSmileLeft, and vice versa."""
    f = real_clip.frames[int(12.0 * real_clip.fps)]
    base = track_face(Clip(f[None], real_clip.fps))
    lm, b0 = base.landmarks[0], base.blendshapes[0]
    il, ir = BLENDSHAPE_NAMES.index("mouthSmileLeft"), BLENDSHAPE_NAMES.index("mouthSmileRight")
    subj_left = track_face(Clip(_lift_corner(f, lm, 291)[None], real_clip.fps)).blendshapes[0] - b0
    subj_right = track_face(Clip(_lift_corner(f, lm, 61)[None], real_clip.fps)).blendshapes[0] - b0
    assert lm[291, 0] > lm[61, 0]  # landmark 291 (left_mouth_corner) is on the image right
    assert subj_left[il] > subj_left[ir] + 0.1
    assert subj_right[ir] > subj_right[il] + 0.1


def test_mirrored_clip_flips_yaw_and_roll_not_pitch(tracked, real_short):
    mirrored = track_face(Clip(np.stack([cv2.flip(f, 1) for f in real_short.frames]), real_short.fps))
    a, m = tracked.angles, mirrored.angles
    assert np.median(np.abs(a[:, 0] + m[:, 0])) < 2 and np.median(np.abs(a[:, 0])) > 5  # yaw flips
    assert np.median(np.abs(a[:, 2] + m[:, 2])) < 2  # roll flips
    assert np.median(np.abs(a[:, 1] - m[:, 1])) < 2  # pitch stays
    # Mirroring swaps the sides of the one-sided scores too (eyes: the clearest asymmetry here).
    il, ir = BLENDSHAPE_NAMES.index("eyeBlinkLeft"), BLENDSHAPE_NAMES.index("eyeBlinkRight")
    d, dm = tracked.blendshapes[:, il] - tracked.blendshapes[:, ir], mirrored.blendshapes[:, il] - mirrored.blendshapes[:, ir]
    assert np.corrcoef(d, dm)[0, 1] < -0.5


def test_rotating_the_image_changes_roll_with_the_documented_sign(tracked, real_short):
    """Turning the image 10 degrees counter-clockwise tips the head towards the subject's right shoulder."""
    frames = real_short.frames[:12]
    h, w = frames.shape[1:3]
    rot = cv2.getRotationMatrix2D((w / 2, h / 2), 10, 1.0)
    turned = track_face(Clip(np.stack([cv2.warpAffine(f, rot, (w, h), borderMode=cv2.BORDER_REPLICATE)
                                       for f in frames]), real_short.fps))
    assert np.median(turned.roll - tracked.roll[:12]) == pytest.approx(-10, abs=2.5)


# -- dataset-style frames ----------------------------------------------------------------------
def test_tight_grayscale_crops_are_tracked(tracked, real_short):
    """Per-frame crops at the landmark box (like CASME II's "cropped"), grayscale (like SAMM)."""
    crops, ref = [], []
    for f, lm in zip(real_short.frames[:24], tracked.landmarks[:24]):
        (x0, y0), (x1, y1) = lm.min(0).astype(int), lm.max(0).astype(int)
        sx, sy = 192 / (x1 - x0), 224 / (y1 - y0)
        g = cv2.cvtColor(cv2.resize(f[y0:y1, x0:x1], (192, 224)), cv2.COLOR_RGB2GRAY)
        crops.append(cv2.cvtColor(g, cv2.COLOR_GRAY2RGB))
        ref.append((lm - (x0, y0)) * (sx, sy))
    tr = track_face(Clip(np.stack(crops), real_short.fps))
    assert tr.found.mean() >= 0.9
    err = np.linalg.norm(tr.landmarks - np.stack(ref), axis=-1)[tr.found]
    assert np.median(err) < 4  # pixels of a 192x224 crop


def test_high_frame_rate_timestamps(real_short):
    tr = track_face(Clip(real_short.frames[:10], 200.0))
    assert tr.found.all()
    tr = track_face(real_short.frames[:5], fps=1000.0)  # 1 ms apart: rounding must not repeat one
    assert tr.found.all()


def test_two_faces_are_warned_about(real_short):
    big = real_short.frames[0]
    canvas = np.full((360, 1280, 3), 40, np.uint8)
    canvas[:, :640] = big
    canvas[:, 640:] = cv2.flip(big, 1)
    tr = track_face(Clip(np.stack([canvas] * 3), 30.0))
    assert tr.multi_face_frames == [0, 1, 2]
    assert any("two faces" in w for w in tr.warnings)
