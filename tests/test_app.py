"""The Gradio app end to end: gradio_client drives a live server, Playwright drives Debian's chromium.

One server (evidence-only backend, demo clip on start) serves every test in this module; it runs in
a thread on a free port of 127.0.0.1.
"""
from __future__ import annotations

import inspect
import os
import tempfile
import time
import zipfile
from pathlib import Path

import numpy as np
import pytest

gr = pytest.importorskip("gradio")
gradio_client = pytest.importorskip("gradio_client")
from gradio_client import Client, handle_file  # noqa: E402

from mevqa.apps import gradio_app as ui  # noqa: E402
from mevqa.io.video import ClipError, write_clip  # noqa: E402

CHROMIUM = Path("/usr/bin/chromium")
EVIDENCE_ONLY = "evidence-only"


@pytest.fixture(scope="module")
def server(launch_app):
    return launch_app()


@pytest.fixture(scope="module")
def short_mp4(real_clip, tmp_path_factory) -> Path:
    """The first 2 s of the real video, as an mp4 a user would upload."""
    return write_clip(real_clip.frames[:48], tmp_path_factory.mktemp("up") / "short.mp4", fps=real_clip.fps)


@pytest.fixture(scope="module")
def bad_files(tmp_path_factory) -> dict[str, Path]:
    d = tmp_path_factory.mktemp("bad")
    corrupt = d / "corrupt.mp4"
    corrupt.write_bytes(b"\x00\x00\x00\x18ftypmp42 definitely not a video " * 64)
    text = d / "notes.txt"
    text.write_text("hello")
    rng = np.random.default_rng(0)
    noface = write_clip(rng.integers(0, 255, (24, 120, 160, 3), dtype=np.uint8), d / "noface.mp4", fps=12.0)
    slip = d / "slip.zip"
    with zipfile.ZipFile(slip, "w") as zf:
        zf.writestr("../../evil.jpg", b"x")
    return {"corrupt": corrupt, "text": text, "noface": noface, "slip": slip}


def _answer(history) -> str:
    return ui._text_of(history[-1]["content"])


# -- unit: uploads ----------------------------------------------------------------------------------
def test_zip_guards(tmp_path, real_clip):
    frames = tmp_path / "frames"
    write_clip(real_clip.frames[:12], frames, fps=real_clip.fps)  # img1.jpg ... (CASME II naming)
    good = tmp_path / "good.zip"
    with zipfile.ZipFile(good, "w") as zf:
        for f in sorted(frames.iterdir()):
            zf.write(f, f"clip/{f.name}")
        zf.writestr("clip/readme.sh", "rm -rf /")        # not an image: never written
        zf.writestr("__MACOSX/clip/._img1.jpg", b"junk")   # archive junk: ignored
    clip = ui.load_upload(good, fps=24.0)
    assert clip.n_frames == 12 and clip.fps == 24.0 and clip.source == "good.zip"
    assert not [p for p in Path(tempfile.gettempdir()).glob("mevqa-zip-*")], "unpacked frames left behind"

    slip = tmp_path / "slip.zip"
    with zipfile.ZipFile(slip, "w") as zf:
        zf.writestr("../outside.jpg", b"x")
    with pytest.raises(ui.UploadError, match="unsafe path"):
        ui.extract_frames_zip(slip, tmp_path / "x")
    assert not (tmp_path / "outside.jpg").exists()

    bomb = tmp_path / "bomb.zip"  # 64 MB of zeros compresses to ~64 KB
    with zipfile.ZipFile(bomb, "w", zipfile.ZIP_DEFLATED) as zf:
        zf.writestr("img1.bmp", bytes(64 * 2**20))
    with pytest.raises(ui.UploadError, match="unpacks to more than"):
        ui.extract_frames_zip(bomb, tmp_path / "y", max_unpacked_mb=16)

    with pytest.raises(ui.UploadError, match="upload limit"):
        ui.check_upload(good, max_mb=0.001)
    with pytest.raises(ui.UploadError, match="not a video"):
        ui.check_upload(__file__)
    with pytest.raises(ClipError):
        ui.load_upload(slip)


def test_launch_contract_and_fallback():
    # `mevqa app` calls launch() with these keyword names.
    assert list(inspect.signature(ui.launch).parameters) == [
        "model", "adapter", "load_in_4bit", "load_in_8bit", "host", "port"]
    assert inspect.signature(ui.launch).parameters["host"].default == "127.0.0.1"
    agent = ui.make_agent(adapter="/no/such/adapter")  # a bad model setup still gives a working app
    assert agent.notice and EVIDENCE_ONLY in agent.backend_name
    assert "Notice" in ui.backend_text(agent) and EVIDENCE_ONLY in ui.backend_text(agent)
    assert "not a lie detector" in ui.RESPONSIBLE_USE


def test_cancel_stops_the_analysis_worker(real_clip):
    """Cancel (or a newer clip) stops compute_evidence at its next progress report, not at the end."""
    from mevqa.io.video import Clip
    from mevqa.apps.uploads import AnalysisCancelled, evidence_stream

    clip = Clip(real_clip.frames[100:220].copy(), real_clip.fps, "cancel_me.mp4")
    t0 = time.perf_counter()
    seen = []
    with pytest.raises(AnalysisCancelled):
        for item in evidence_stream(clip, cache=False, stop=lambda: len(seen) >= 2):
            seen.append(item)
    assert time.perf_counter() - t0 < 10 and all(isinstance(x, tuple) for x in seen)
    s = ui.Session()
    gen = s.start_analysis("a.mp4")
    assert not s.stopped(gen) and s.cancel() and s.stopped(gen) and s.analysing is None
    newer = s.start_analysis("b.mp4")
    assert not s.stopped(newer) and s.stopped(gen)


# -- end to end through gradio_client ----------------------------------------------------------------
def test_client_upload_ask_and_sessions(server, short_mp4):
    a, b = Client(server, verbose=False), Client(server, verbose=False)
    t0 = time.perf_counter()
    out = a.predict(handle_file(str(short_mp4)), 0, api_name="/analyse")
    first_evidence_s = time.perf_counter() - t0
    status, table = out[0], out[2]
    assert "short.mp4" in status and "analysed" in status, status
    assert table["headers"] == ui.AU_HEADERS
    print(f"\nupload -> evidence through the app: {first_evidence_s:.2f} s")

    hist = a.predict(ui.SUGGESTIONS[0], api_name="/ask")  # the session's chat, with the answer
    assert len(hist) == 2
    ans = _answer(hist)
    assert EVIDENCE_ONLY not in ans and ans.split()[0].lower().strip(".") in ("negative", "positive", "surprise"), ans
    assert "Based on #" in ans  # cites the interval and its times

    hist = a.predict("What happened at 1.2 s?", api_name="/ask")  # multi-turn: the session keeps the chat
    assert len(hist) == 4 and "Based on #" in _answer(hist)

    # A second session has its own evidence: the demo clip (4 s), while session a keeps its 2 s clip.
    out_b = b.predict(api_name="/use_demo")
    assert "demo" in out_b[0] and "analysed" in out_b[0]
    hist_b = b.predict("Summarise what you see.", api_name="/ask")
    hist_a = a.predict("Summarise what you see.", api_name="/ask")
    assert "4.0 s" in _answer(hist_b) and "2.0 s" in _answer(hist_a)


def test_bad_uploads_are_reported_and_the_app_keeps_serving(server, bad_files):
    c = Client(server, verbose=False)
    good = c.predict(api_name="/use_demo")[0]
    assert "analysed" in good
    expected = {"corrupt": "cannot decode", "text": "not a video", "noface": "no face", "slip": "unsafe path"}
    for name, needle in expected.items():
        status = c.predict(handle_file(str(bad_files[name])), 0, api_name="/analyse")[0]
        assert status.startswith("**Could not use this clip:**") and needle in status, (name, status)
        assert "Traceback" not in status and "/tmp" not in status
    # The demo's evidence is still there and still answers.
    hist = c.predict("What is the fine-grained expression class?", api_name="/ask")
    assert "Based on #" in _answer(hist)
    # A fresh session without any clip gets told what to do, not an error.
    hist = Client(server, verbose=False).predict("Which action units are shown?", api_name="/ask")
    assert "No clip analysed yet" in _answer(hist)


# -- the browser ---------------------------------------------------------------------------------------
BROWSER_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                "--disable-component-update"]


@pytest.fixture(scope="module")
def other_mp4(real_clip, tmp_path_factory) -> Path:
    """Seconds 2-4 of the real video: a clip no other test analysed (so its analysis is not a cache hit)."""
    return write_clip(real_clip.frames[48:96], tmp_path_factory.mktemp("up2") / "other.mp4", fps=real_clip.fps)


def _chat_messages(page) -> list[tuple[str, str]]:
    """(role, text) of every message in the chat, top to bottom."""
    rows = page.locator("#chat [data-testid=user], #chat [data-testid=bot]")
    return [(rows.nth(k).get_attribute("data-testid"), rows.nth(k).inner_text().strip())
            for k in range(rows.count())]


@pytest.mark.browser
def test_browser_fast_questions_and_clip_switch(server, other_mp4, tmp_path):
    """Two questions typed fast both arrive, whole and in order; a question asked while a new clip is
    analysed waits, and is answered about the new clip, after a line marking the change."""
    if not CHROMIUM.exists():
        pytest.skip("Debian chromium missing: apt-get install -y chromium")
    sync_api = pytest.importorskip("playwright.sync_api")
    expect = sync_api.expect
    shot = Path(os.environ.get("MEVQA_APP_SCREENSHOT", tmp_path / "app.png"))
    q1, q2, q3 = "Which action units are shown?", "What happened at 1.2 s?", "Summarise what you see."
    with sync_api.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=str(CHROMIUM), args=BROWSER_ARGS)
        try:
            page = browser.new_page(viewport={"width": 1440, "height": 1100})
            page.goto(server)
            status = page.locator("#status")
            # The demo clip is analysed on start, without any upload.
            expect(status).to_contain_text("demo.mp4 analysed", timeout=40_000)
            expect(page.locator("#motion-plot img")).to_be_visible(timeout=10_000)
            box = page.locator("#question textarea")
            # Typed as fast as Playwright types: Enter, then the next question straight away.
            box.press_sequentially(q1 + "\n" + q2 + "\n", delay=0)
            page.locator("#ask-button").click()  # an extra click on an empty box asks nothing
            page.locator("#ask-button").click()
            expect(page.locator("#chat [data-testid=bot]")).to_have_count(2, timeout=30_000)
            page.wait_for_timeout(1500)  # the answers stream in word by word
            msgs = _chat_messages(page)
            assert [m for m in msgs if m[0] == "user"] == [("user", q1), ("user", q2)], msgs
            assert [r for r, _ in msgs] == ["user", "bot", "user", "bot"], msgs
            assert "Based on #" in msgs[1][1] and EVIDENCE_ONLY not in msgs[1][1], msgs
            assert box.input_value() == ""
            # Ask reached with the keyboard (no pointer) takes the box too.
            box.fill("Is this person hiding an emotion?")
            page.locator("#ask-button").focus()
            page.keyboard.press("Space")
            expect(page.locator("#chat [data-testid=bot]")).to_have_count(3, timeout=30_000)
            assert _chat_messages(page)[4] == ("user", "Is this person hiding an emotion?")

            # A new clip, and a question while it is analysed: it waits, then is answered about the new clip.
            page.locator("#upload input[type=file]").set_input_files(str(other_mp4))
            expect(status).to_contain_text("other.mp4", timeout=10_000)
            box.fill(q3)
            box.press("Enter")
            expect(page.locator("#chat")).to_contain_text("Waiting", timeout=5_000)
            expect(status).to_contain_text("other.mp4 analysed", timeout=60_000)
            expect(page.locator("#chat")).to_contain_text("New clip: other.mp4", timeout=10_000)
            expect(page.locator("#chat [data-testid=bot]")).to_have_count(5, timeout=30_000)
            page.wait_for_timeout(1500)
            msgs = _chat_messages(page)
            texts = [t for _, t in msgs]
            boundary = next(k for k, t in enumerate(texts) if "New clip: other.mp4" in t)
            asked = texts.index(q3)
            assert boundary < asked, msgs
            assert "2.0 s" in texts[asked + 1] and "4.0 s" not in texts[asked + 1], msgs  # other.mp4 is 2 s long
            page.screenshot(path=str(shot), full_page=True)
        finally:
            browser.close()
    assert shot.stat().st_size > 10_000
    print(f"\nscreenshot: {shot}")
