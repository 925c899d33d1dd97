"""Shared fixtures: the real test video and small clips made from it."""
import os
from pathlib import Path

import pytest

os.environ.setdefault("GLOG_minloglevel", "2")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("MPLBACKEND", "Agg")

DATA = Path(__file__).parent / "data"
REAL_VIDEO = DATA / "pexels_woman_emotions.mp4"


@pytest.fixture(scope="session")
def real_video() -> Path:
    return REAL_VIDEO


@pytest.fixture(scope="session")
def real_clip():
    from mevqa.io.video import Clip

    return Clip.load(REAL_VIDEO)


@pytest.fixture(scope="session")
def real_short(real_clip):
    """The first 2 s of the real video (sad face, no hand): quick front-end tests."""
    from mevqa.io.video import Clip

    return Clip(real_clip.frames[:48].copy(), real_clip.fps, "real_short.mp4")
