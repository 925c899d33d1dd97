"""Front-end speed: decode, Face Landmarker (landmarks + blendshapes + pose), alignment, flow; frames/s.

    python bench/bench_frontend.py [--repeats 3] [--no-hd] [--no-legacy]

Runs on the real 640x360 test video and on a 1280x720 copy of it (upscaled with bicubic interpolation,
written as mp4 and decoded like any file), and prints the median of ``--repeats`` runs for each stage and
for the whole front end (decode + landmarks + alignment + flow). Where the installed mediapipe still
has the legacy ``mediapipe.solutions`` FaceMesh (0.10.x), its landmark-only speed on the same frames is
printed beside it for comparison. Target (issue 12): the whole front end at 60 frames/s or more on
640x360 with 2 CPU cores.
"""
from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time
from pathlib import Path

os.environ.setdefault("GLOG_minloglevel", "2")

import cv2  # noqa: E402
import numpy as np  # noqa: E402

from mevqa.face.landmarks import align_faces, quiet_native_stderr, track_face  # noqa: E402
from mevqa.io.video import Clip  # noqa: E402
from mevqa.motion.flow import flow_sequence  # noqa: E402

REAL = Path(__file__).resolve().parents[1] / "tests" / "data" / "pexels_woman_emotions.mp4"


def _time(fn):
    t = time.perf_counter()
    out = fn()
    return time.perf_counter() - t, out


def _legacy_facemesh(frames: np.ndarray) -> bool:
    """Run the legacy FaceMesh (tracking mode, 2 faces, iris refinement) over the frames; False if absent."""
    import mediapipe as mp

    if not hasattr(mp, "solutions"):
        return False
    with quiet_native_stderr(), mp.solutions.face_mesh.FaceMesh(
            static_image_mode=False, max_num_faces=2, refine_landmarks=True) as mesh:
        for f in frames:
            mesh.process(np.ascontiguousarray(f))
    return True


def bench(path: Path, repeats: int, *, legacy: bool) -> dict:
    keys = ("decode", "landmarks (Face Landmarker)", "alignment", "flow (DIS medium)", "front end")
    rows = {k: [] for k in keys}
    legacy_rows = []
    n, found, size = 0, 0, (0, 0)
    for _ in range(repeats):
        t_dec, clip = _time(lambda: Clip.load(path))
        t_lm, track = _time(lambda: track_face(clip))
        t_al, faces = _time(lambda: align_faces(clip, track))
        t_fl, _ = _time(lambda: flow_sequence(faces.gray, reference=0))
        n, found, size = clip.n_frames, int(track.found.sum()), clip.size
        for k, t in zip(keys, (t_dec, t_lm, t_al, t_fl, t_dec + t_lm + t_al + t_fl)):
            rows[k].append(n / t)
        if legacy:
            t_leg, ok = _time(lambda: _legacy_facemesh(clip.frames))
            if ok:
                legacy_rows.append(n / t_leg)
    out = {"clip": f"{path.name} ({size[0]}x{size[1]}, {n} frames, face found in {found})",
           **{k: statistics.median(v) for k, v in rows.items()}}
    if legacy_rows:
        out["legacy FaceMesh landmarks"] = statistics.median(legacy_rows)
    return out


def upscaled_copy(path: Path, out: Path, size=(1280, 720)) -> Path:
    clip = Clip.load(path)
    frames = np.stack([cv2.resize(f, size, interpolation=cv2.INTER_CUBIC) for f in clip.frames])
    return Clip(frames, clip.fps, str(out)).save(out)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--no-hd", action="store_true", help="skip the 1280x720 copy")
    ap.add_argument("--no-legacy", action="store_true", help="skip the legacy FaceMesh comparison")
    a = ap.parse_args()
    import mediapipe as mp

    print(f"front-end frames/s, median of {a.repeats} (cores available: {os.cpu_count()}, "
          f"mediapipe {mp.__version__}, numpy {np.__version__})")
    with tempfile.TemporaryDirectory() as tmp:
        paths = [REAL] if a.no_hd else [REAL, upscaled_copy(REAL, Path(tmp) / "real_1280x720.mp4")]
        for p in paths:
            r = bench(p, a.repeats, legacy=not a.no_legacy)
            print(f"\n{r.pop('clip')}")
            for k, v in r.items():
                print(f"  {k:30s} {v:8.1f} frames/s")


if __name__ == "__main__":
    main()
