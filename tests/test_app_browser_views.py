"""The app's Long video and Webcam tabs in Debian's chromium (headless, a fake camera playing the real
video), driven by Playwright as tests/test_app.py does; screenshots of both go to $MEVQA_SHOTS (default:
the test's temporary folder)."""
from __future__ import annotations

import os
from pathlib import Path

import cv2
import numpy as np
import pytest

pytest.importorskip("gradio")
from mevqa.io.stream import iter_frames  # noqa: E402
from mevqa.io.video import write_clip  # noqa: E402

CHROMIUM = Path("/usr/bin/chromium")
BROWSER_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                "--disable-component-update", "--use-fake-device-for-media-stream", "--use-fake-ui-for-media-stream"]


@pytest.fixture(scope="module")
def server(launch_app):
    # short streaming windows, so a 6 s "long" video is analysed in a few windows within seconds
    return launch_app(demo_on_start=False, long_options=dict(window_seconds=4.0, overlap_seconds=2.0))


@pytest.fixture(scope="module")
def repeated_mp4(real_clip, tmp_path_factory) -> Path:
    """Seconds 10-13 of the real video (laughing), twice: a 6 s video."""
    part = real_clip.frames[240:312]
    return write_clip(np.concatenate([part] * 2), tmp_path_factory.mktemp("long") / "repeated.mp4", fps=real_clip.fps)


@pytest.fixture(scope="module")
def camera_file(real_video, tmp_path_factory) -> Path:
    """Seconds 8-16 of the real video at 12 fps as a y4m file, the fake camera's picture (it loops)."""
    path = tmp_path_factory.mktemp("cam") / "face.y4m"
    with open(path, "wb") as out:
        out.write(b"YUV4MPEG2 W640 H360 F12:1 Ip A1:1 C420jpeg\n")
        for n, frame in iter_frames(real_video, step=2, start=8 * 24):
            if n >= 16 * 24:
                break
            out.write(b"FRAME\n" + cv2.cvtColor(frame, cv2.COLOR_RGB2YUV_I420).tobytes())
    return path


def _shots(tmp_path) -> Path:
    d = Path(os.environ.get("MEVQA_SHOTS", tmp_path))
    d.mkdir(parents=True, exist_ok=True)
    return d


@pytest.mark.browser
def test_browser_long_video_and_webcam(server, repeated_mp4, camera_file, tmp_path):
    if not CHROMIUM.exists():
        pytest.skip("Debian chromium missing: apt-get install -y chromium")
    sync_api = pytest.importorskip("playwright.sync_api")
    expect = sync_api.expect
    shots = _shots(tmp_path)
    with sync_api.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=str(CHROMIUM),
                                    args=BROWSER_ARGS + [f"--use-file-for-fake-video-capture={camera_file}"])
        try:
            page = browser.new_page(viewport={"width": 1440, "height": 1100})
            errors: list[str] = []
            page.on("pageerror", lambda e: errors.append(str(e)))
            page.goto(server)
            # -- long video: upload, progress, timeline, an event's keyframes, zoom, a question
            page.get_by_role("tab", name="Long video").click()
            status = page.locator("#long-status")
            page.locator("#long-upload input[type=file]").set_input_files(str(repeated_mp4))
            expect(status).to_contain_text("repeated.mp4 analysed", timeout=90_000)
            expect(page.locator("#timeline img")).to_be_visible(timeout=10_000)
            expect(page.locator("#event-frames img").first).to_be_visible(timeout=10_000)
            n_tiles = page.locator("#event-frames img").count()
            assert n_tiles >= 4, n_tiles  # onset, apex, offset, flow map (+ key)
            page.locator("#event input").click()
            options = page.get_by_role("option")
            assert options.count() >= 1
            last = options.last.inner_text().split()[0]  # "#5"
            options.last.click()
            expect(page.locator("#event-text")).to_contain_text(f"{last} ", timeout=10_000)
            expect(page.locator("#timeline")).not_to_contain_text("processing", timeout=10_000)
            before = page.locator("#timeline img").get_attribute("src")
            page.locator("#zoom-from input").fill("2")
            page.locator("#zoom-to input").fill("6")
            page.locator("#zoom").click()
            expect(page.locator("#timeline img")).not_to_have_attribute("src", before, timeout=10_000)
            expect(page.locator("#timeline")).not_to_contain_text("processing", timeout=10_000)
            page.locator("#timeline").screenshot(path=str(shots / "long_timeline_zoomed.png"))
            page.get_by_role("button", name="How many expression events appear in this video?").click()
            expect(page.locator("#long-chat [data-testid=bot]").last).to_contain_text("Based on", timeout=10_000)
            page.screenshot(path=str(shots / "long_video.png"), full_page=True)
            # bad input: one line, and the result on screen stays
            bad = tmp_path / "notes.txt"
            bad.write_text("not a video")
            page.locator("#long-upload").get_by_label("Clear").click()
            page.locator("#long-upload input[type=file]").set_input_files(str(bad))
            expect(status).to_contain_text("Could not use this video: notes.txt: not a video", timeout=10_000)
            assert "Traceback" not in status.inner_text()
            expect(page.locator("#timeline img")).to_be_visible()

            # -- webcam: the fake camera plays the real video; frames arrive, events are listed
            page.get_by_role("tab", name="Webcam (live)").click()
            page.get_by_text("Click to Access Webcam").click()
            page.get_by_role("button", name="capture photo").click()  # the Record button
            live = page.locator("#live-status")
            expect(live).to_contain_text("frames received", timeout=20_000)
            expect(live).to_contain_text("window(s) analysed", timeout=40_000)
            page.wait_for_timeout(3_000)
            text = live.inner_text()
            assert "stopped:" not in text.lower(), text
            page.screenshot(path=str(shots / "webcam.png"), full_page=True)
            assert not errors, errors
        finally:
            browser.close()
    for name in ("long_video.png", "webcam.png"):
        assert (shots / name).stat().st_size > 10_000
