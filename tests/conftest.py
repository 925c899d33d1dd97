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


@pytest.fixture(scope="module")
def launch_app():
    """``launch_app(**build_app options)`` -> the URL of the app running on a free local port; closed
    after the module's tests."""
    import socket

    from mevqa.apps import gradio_app as ui

    apps = []

    def launch(**build) -> str:
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
        app = ui.build_app(**build)
        app.launch(server_name="127.0.0.1", server_port=port, prevent_thread_lock=True, quiet=True,
                   **ui.launch_options())
        apps.append(app)
        return f"http://127.0.0.1:{port}/"

    yield launch
    for app in apps:
        app.close()
