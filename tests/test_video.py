"""Clip loading: formats, frame folders as datasets ship them, sampling, and one-line errors."""
import numpy as np
import pytest

from mevqa.io.video import Clip, ClipError, ClipLimits, frame_number, guess_dataset, write_clip


def test_real_video_loads_with_its_fps(real_clip):
    assert real_clip.n_frames == 472
    assert real_clip.size == (640, 360)
    assert abs(real_clip.fps - 23.976) < 0.01
    assert real_clip.frames.dtype == np.uint8 and real_clip.frames.shape[-1] == 3


def test_decord_and_opencv_decode_the_same_frames(real_video):
    a = Clip.load(real_video, backend="decord")
    b = Clip.load(real_video, backend="opencv")
    assert a.meta["decoder"] == "decord" and b.meta["decoder"] == "opencv"
    assert a.n_frames == b.n_frames
    assert np.abs(a.frames[::50].astype(int) - b.frames[::50]).mean() < 1.0


def test_uniform_and_keyframe_sampling_reuse_decoded_frames(real_clip):
    idx = real_clip.uniform_indices(8)
    assert len(idx) == 8 and idx[0] == 0 and idx[-1] == real_clip.n_frames - 1
    assert np.all(np.diff(idx) > 0)
    frames = real_clip.sample([0, 10, 471])
    assert np.array_equal(frames[1], real_clip.frames[10])
    assert len(real_clip.uniform_indices(1000)) == real_clip.n_frames  # never repeats


def _frames(n=6, w=96, h=80, seed=0):
    rng = np.random.default_rng(seed)
    return rng.integers(0, 255, (n, h, w, 3), dtype=np.uint8)


@pytest.mark.parametrize("pattern,dataset,fps", [
    ("img{n}.jpg", "casme2", 200.0),
    ("006_1_2_{n:04d}.jpg", "samm", 200.0),
    ("{n}.jpg", "casme3", 30.0),
])
def test_frame_folders_in_dataset_layouts(tmp_path, pattern, dataset, fps):
    # Start at 46 like CASME II's img46.jpg: numeric, not lexical, order (img100 after img99).
    write_clip(_frames(60), tmp_path / "clip", fps=fps, pattern=pattern, start=46)
    clip = Clip.load(tmp_path / "clip")
    assert clip.n_frames == 60
    assert clip.fps == fps
    assert clip.meta["dataset"] == dataset
    assert clip.frame_numbers[0] == 46 and clip.frame_numbers[-1] == 105


def test_frame_number_and_dataset_guess():
    assert frame_number("img46.jpg") == 46
    assert frame_number("006_1_2_0001.jpg") == 1
    assert guess_dataset(["img1", "img2"]) == "casme2"
    assert guess_dataset(["frame_a"]) is None


def test_video_roundtrip_mp4_and_avi(tmp_path):
    frames = np.zeros((10, 120, 160, 3), np.uint8)
    frames[:, 40:80, 60:100] = 200
    for ext in ("mp4", "avi"):
        p = write_clip(frames, tmp_path / f"c.{ext}", fps=25)
        c = Clip.load(p)
        assert c.n_frames == 10 and c.fps == pytest.approx(25) and c.size == (160, 120)


def test_content_hash_tells_clips_apart():
    a = Clip(_frames(seed=1), 30.0)
    b = Clip(_frames(seed=2), 30.0)
    assert a.content_hash() == Clip(a.frames.copy(), 30.0).content_hash()
    assert a.content_hash() != b.content_hash()
    assert a.content_hash() != Clip(a.frames, 25.0).content_hash()


def test_subsampling_keeps_source_numbering():
    c = Clip(_frames(20), 200.0).subsampled(4)
    assert c.n_frames == 5 and c.fps == 50.0
    assert list(c.frame_numbers) == [0, 4, 8, 12, 16]


def _one_line(excinfo):
    msg = str(excinfo.value)
    assert "\n" not in msg and len(msg) < 300
    return msg


def test_missing_file(tmp_path):
    with pytest.raises(ClipError) as e:
        Clip.load(tmp_path / "nope.mp4")
    assert "no such file" in _one_line(e)


def test_not_a_video(tmp_path):
    p = tmp_path / "notes.txt"
    p.write_text("hello")
    with pytest.raises(ClipError) as e:
        Clip.load(p)
    assert "not a video" in _one_line(e)


def test_garbage_with_video_extension(tmp_path):
    p = tmp_path / "fake.mp4"
    p.write_bytes(b"\x00\x01garbage" * 100)
    with pytest.raises(ClipError) as e:
        Clip.load(p)
    assert "cannot decode" in _one_line(e)


@pytest.mark.parametrize("keep", [0.3, 0.9])
def test_truncated_video_is_refused_in_one_line(tmp_path, real_video, keep):
    data = real_video.read_bytes()  # its index (moov) comes first: a cut file still opens and decodes part
    p = tmp_path / "cut.mp4"
    p.write_bytes(data[: int(len(data) * keep)])
    with pytest.raises(ClipError, match=r"truncated or damaged: only \d+ of its 472 frames decode") as e:
        Clip.load(p)
    assert "\n" not in str(e.value)


def test_empty_file(tmp_path):
    p = tmp_path / "empty.mp4"
    p.write_bytes(b"")
    with pytest.raises(ClipError, match="empty"):
        Clip.load(p)


def test_single_image_is_not_a_clip(tmp_path):
    import cv2
    p = tmp_path / "face.jpg"
    cv2.imwrite(str(p), _frames(1)[0])
    with pytest.raises(ClipError, match="single image"):
        Clip.load(p)


def test_zero_frames_and_absurd_fps():
    with pytest.raises(ClipError, match="no frames"):
        Clip(np.zeros((0, 64, 64, 3), np.uint8), 30.0)
    with pytest.raises(ClipError, match="absurd"):
        Clip(_frames(), 5000.0)
    with pytest.raises(ClipError, match="missing frame rate"):
        Clip(_frames(), float("nan"))


def test_folder_errors(tmp_path):
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(ClipError, match="no image frames"):
        Clip.load(empty)
    gap = tmp_path / "gap"
    write_clip(_frames(5), gap, fps=30)
    (gap / "img3.jpg").unlink()
    with pytest.raises(ClipError, match="jump from 2 to 4"):
        Clip.load(gap)
    mixed = tmp_path / "mixed"
    write_clip(_frames(3), mixed, fps=30)
    write_clip(_frames(1, w=120), mixed, fps=30, start=4)
    with pytest.raises(ClipError, match="mixed frame sizes"):
        Clip.load(mixed)
    unknown = tmp_path / "unknown"
    write_clip(_frames(3), unknown, fps=30, pattern="frame_{n}.png")
    with pytest.raises(ClipError, match="pass --fps"):
        Clip.load(unknown)
    assert Clip.load(unknown, fps=30).n_frames == 3
    bad = tmp_path / "bad"
    write_clip(_frames(3), bad, fps=30)
    (bad / "img2.jpg").write_bytes(b"not a jpeg")
    with pytest.raises(ClipError, match="cannot read the image"):
        Clip.load(bad)


def test_limits(tmp_path, real_video):
    with pytest.raises(ClipError, match="over the limit"):
        Clip.load(real_video, limits=ClipLimits(max_frames=100))
    with pytest.raises(ClipError, match="over the limit of 5 s"):
        Clip.load(real_video, limits=ClipLimits(max_seconds=5))
    small = Clip.load(real_video, limits=ClipLimits(max_side=320))
    assert small.size == (320, 180)
    tiny = tmp_path / "tiny"
    write_clip(_frames(3, w=40, h=30), tiny, fps=30)
    with pytest.raises(ClipError, match="too small"):
        Clip.load(tiny)


@pytest.mark.parametrize("fps", [0, -1, float("nan"), float("inf")])
def test_a_given_frame_rate_that_is_not_one_is_named(real_video, fps):
    with pytest.raises(ClipError, match="is not a frame rate") as e:
        Clip.load(real_video, fps=fps)
    assert "\n" not in str(e.value) and "missing" not in str(e.value)


def test_single_frame_clips_are_refused(tmp_path):
    write_clip(_frames(1), tmp_path / "one", fps=30)
    with pytest.raises(ClipError, match="single frame"):
        Clip.load(tmp_path / "one")
    write_clip(_frames(1, w=160, h=120), tmp_path / "one.mp4", fps=30)
    with pytest.raises(ClipError, match="single frame"):
        Clip.load(tmp_path / "one.mp4")


def _no_decoding(monkeypatch):
    import cv2

    import mevqa.io.video as video

    def boom(*a, **k):
        raise AssertionError("decoded before the limits were checked")

    monkeypatch.setattr(video, "_decode_decord", boom)
    monkeypatch.setattr(video, "_decode_opencv", boom)
    monkeypatch.setattr(cv2, "imread", boom)


def test_limits_are_checked_from_the_header_before_decoding(monkeypatch, real_video, tmp_path):
    write_clip(_frames(5), tmp_path / "folder", fps=30)
    _no_decoding(monkeypatch)
    with pytest.raises(ClipError, match="over the limit of 5 s"):
        Clip.load(real_video, limits=ClipLimits(max_seconds=5))
    with pytest.raises(ClipError, match="over the limit of 100"):
        Clip.load(real_video, limits=ClipLimits(max_frames=100))
    with pytest.raises(ClipError, match="larger than 320 px a side"):
        Clip.load(real_video, limits=ClipLimits(max_source_side=320))
    with pytest.raises(ClipError, match="over the memory budget"):
        Clip.load(real_video, limits=ClipLimits(max_pixels=1e6))
    with pytest.raises(ClipError, match="larger than 64 px a side"):
        Clip.load(tmp_path / "folder", limits=ClipLimits(max_source_side=64))


@pytest.mark.parametrize("backend", ["decord", "opencv"])
def test_a_clip_over_the_pixel_budget_is_decoded_smaller(real_video, backend):
    clip = Clip.load(real_video, backend=backend, limits=ClipLimits(max_pixels=30e6))  # 472 x 640x360 = 109 M
    assert clip.n_frames == 472 and clip.size == (336, 189) and clip.meta["source_size"] == (640, 360)
    assert clip.n_frames * clip.size[0] * clip.size[1] <= 30e6


def test_frame_folder_over_the_pixel_budget_is_decoded_smaller(tmp_path):
    write_clip(_frames(10, w=400, h=300), tmp_path / "big", fps=30)
    clip = Clip.load(tmp_path / "big", limits=ClipLimits(max_pixels=10 * 320 * 240))
    assert clip.size == (320, 240) and clip.meta["source_size"] == (400, 300)
