"""The evidence cache cannot be poisoned or leak: full-content keys, verified entries, private files, bounded size,
no face crops on disk, and a memory hit carries the caller's clip name (issue 18 items 1-2)."""
import json
import os
import stat

import numpy as np
import pytest

from mevqa.evidence import cache
from mevqa.evidence.builder import compute_evidence
from mevqa.io.video import Clip


@pytest.fixture()
def private_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("MEVQA_CACHE", str(tmp_path / "c"))
    cache._memory.clear()
    yield tmp_path / "c" / "evidence"
    cache._memory.clear()


@pytest.fixture(scope="module")
def short_clip(real_clip):
    return Clip(real_clip.frames[:36].copy(), real_clip.fps, "alice_private_interview.mp4")


def test_clips_differing_in_one_frame_never_share_a_key(short_clip):
    other = short_clip.frames.copy()
    other[17, 100, 200, 1] ^= 1  # one channel of one pixel in a frame the old 16-frame sample skipped
    twin = Clip(other, short_clip.fps, short_clip.source)
    assert cache.clip_key(twin) != cache.clip_key(short_clip)
    assert cache.clip_key(Clip(short_clip.frames.copy(), short_clip.fps, "x.mp4")) == cache.clip_key(short_clip)
    assert cache.clip_key(Clip(short_clip.frames, short_clip.fps * 2, "x.mp4")) != cache.clip_key(short_clip)
    decoded = Clip(short_clip.frames, short_clip.fps, "x.mp4", meta={"decoder": "opencv"})
    assert cache.clip_key(decoded) != cache.clip_key(short_clip)


def test_entries_are_private_verified_and_hold_no_face_crops(private_cache, short_clip):
    ev = compute_evidence(short_clip)
    files = list(private_cache.glob("*.json"))
    assert len(files) == 1
    assert stat.S_IMODE(private_cache.stat().st_mode) == 0o700
    assert stat.S_IMODE(files[0].stat().st_mode) == 0o600
    assert stat.S_IMODE((private_cache / ".secret").stat().st_mode) == 0o600
    body = json.loads(json.loads(files[0].read_text())["body"])
    for iv in body["intervals"]:
        assert not set(iv.get("images", {})) & {"onset", "apex", "offset"}
    # A disk hit re-cuts the very same crops from the clip.
    cache._memory.clear()
    again = compute_evidence(short_clip)
    for a, b in zip(ev.intervals, again.intervals):
        assert set(a.images) == set(b.images)
        for k in ("onset", "apex", "offset"):
            assert np.array_equal(a.images[k], b.images[k])
    # An edited entry is not trusted: it is recomputed, not answered from.
    entry = json.loads(files[0].read_text())
    assert '"code": "AU' in entry["body"]
    entry["body"] = entry["body"].replace('"code": "AU', '"code": "INJECTED-AU')
    files[0].write_text(json.dumps(entry))
    cache._memory.clear()
    assert cache.load(files[0].stem, short_clip) is None
    fresh = compute_evidence(short_clip)
    assert all("INJECTED" not in a["code"] for iv in fresh.intervals for a in iv.aus)


def test_memory_hits_carry_the_callers_name(private_cache, short_clip):
    first = compute_evidence(short_clip)
    bob = compute_evidence(Clip(short_clip.frames, short_clip.fps, "bob.mp4"))
    assert first.clip == "alice_private_interview.mp4" and bob.clip == "bob.mp4"
    assert first.clip == "alice_private_interview.mp4"  # the first caller's object is not renamed


def test_disk_cache_is_bounded_least_recently_used_first(private_cache):
    private_cache.mkdir(parents=True)
    for i in range(5):
        p = private_cache / f"k{i}.json"
        p.write_bytes(b"x" * 1000)
        os.utime(p, (1000 + i, 1000 + i))
    removed = cache.evict(max_bytes=2500)
    assert sorted(p.name for p in removed) == ["k0.json", "k1.json", "k2.json"]
    assert cache.clear() == 2 and not list(private_cache.glob("*.json"))
