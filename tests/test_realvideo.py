"""Metamorphic checks on the real video: transformations that must not change what a person reads.

The full suite (every transformation on the whole 20 s video, with agreement figures) is
``python bench/bench_realvideo.py``; these are the quick ones on short stretches. They use the bench's
own transformations and agreement measures, so test and bench measure the same thing.
"""
from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np
import pytest

from mevqa.io.video import Clip

_BENCH = Path(__file__).resolve().parents[1] / "bench" / "bench_realvideo.py"
_spec = importlib.util.spec_from_file_location("bench_realvideo", _BENCH)
br = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(br)


@pytest.fixture(scope="module")
def laugh(real_clip) -> Clip:
    """12-17 s: she laughs with broad smiles."""
    return br.excerpt(real_clip, 12.0, 17.0)


@pytest.fixture(scope="module")
def laugh_reading(laugh):
    return br.read(laugh, offset=12.0)


@pytest.fixture(scope="module")
def mirror_agreement(laugh, laugh_reading):
    mirrored = Clip(np.ascontiguousarray(laugh.frames[:, :, ::-1]), laugh.fps, "mirror.mp4")
    return br.agreement(laugh_reading["intervals"], br.read(mirrored, offset=12.0)["intervals"], mirrored=True)


def test_mirror_swaps_the_sides(mirror_agreement):
    assert mirror_agreement["laterality"] in (None, 1.0), mirror_agreement
    assert mirror_agreement["matched"] >= 1, mirror_agreement


@pytest.mark.xfail(reason="known weakness: on this 5 s stretch of continuous laughter the mirrored clip splits the "
                          "motion differently (on the whole video the mirror agrees at interval F1 0.90, bench/bench_realvideo.py)")
def test_mirror_keeps_the_intervals(mirror_agreement):
    assert mirror_agreement["f1"] >= 0.66, mirror_agreement


def test_heavy_compression_keeps_the_reading(laugh, laugh_reading):
    jpeg = Clip(np.stack([br._jpeg(f) for f in laugh.frames]), laugh.fps, "jpeg10.mp4")
    ag = br.agreement(laugh_reading["intervals"], br.read(jpeg, offset=12.0)["intervals"])
    assert ag["f1"] >= 0.66, ag


def test_laughing_reads_positive_with_lip_corner_puller(laugh_reading):
    ivs = laugh_reading["intervals"]
    assert ivs, "the laugh was not spotted"
    positive = [iv for iv in ivs if iv["coarse"] == "positive" and "AU12" in iv["aus"]]
    assert positive, ivs


def test_laughing_never_reads_contempt_or_disgust(laugh_reading):
    ivs = laugh_reading["intervals"]
    assert not [iv for iv in ivs if iv["fine"] in ("contempt", "disgust")], ivs


def test_an_event_reads_alike_in_a_short_and_a_long_excerpt(real_clip):
    """Clip independence: the laugh at 10-11.3 s peaks alike, against a threshold alike, in a 6 s and a
    10 s excerpt (the issue measured 51.6 px against 8.9 px, threshold 10.5 against 7.2 px)."""
    long_, short = br.read(br.excerpt(real_clip, 5.0, 15.0), offset=5.0), br.read(br.excerpt(real_clip, 9.0, 15.0), offset=9.0)
    (pl, tl), (ps, ts) = br.probe(long_, *br.PROBE), br.probe(short, *br.PROBE)
    assert 0.75 <= ps / pl <= 1.33, (pl, ps)
    assert 0.6 <= ts / tl <= 1.66, (tl, ts)


def test_the_laugh_onset_reads_happiness_despite_brow_spillover(real_clip):
    """9.5-12.5 s: she breaks into a laugh (lips apart, jaw open); the brows and lids move with it (H5 read
    AU1+AU4+AU15 there as sadness). No interval whose apex lies in the laugh reads negative, and the laugh
    itself reads positive with AU12."""
    r = br.read(br.excerpt(real_clip, 9.5, 12.5), offset=9.5)
    ivs = [iv for iv in r["intervals"] if iv["apex"] >= br.LAUGH_FROM]
    assert ivs, r["intervals"]
    assert not [iv for iv in ivs if iv["coarse"] == "negative"], ivs
    assert [iv for iv in ivs if iv["coarse"] == "positive" and "AU12" in iv["aus"]], ivs
