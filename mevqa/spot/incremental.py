"""Spotting the windows of a live stream, each paying only for the frames it has not measured before.

The live cut (:mod:`mevqa.evidence.stream`) spots a window of the last few seconds every hop. Almost
all of the spotter's time is the optical flow of :func:`mevqa.spot.signals.roi_motion` (one flow per
frame against the frame ``lag_seconds`` back, and for the last ``lag`` frames one to the window's last
frame), and most of those pairs were measured by the window before. :func:`spot_window` binds a
:class:`mevqa.motion.stream.PairCache` to the window's stream frame numbers and passes it to the spotter
(:func:`mevqa.spot.spotter.spot`), so ``roi_motion`` looks up the pairs it has and computes the rest;
its result is what :func:`spot` gives on the same window without the cache
(``tests/test_stream_incremental.py``).
"""
from __future__ import annotations

from mevqa.motion.frontend import FrontEnd
from mevqa.motion.stream import PairCache
from mevqa.spot.config import SpotConfig
from mevqa.spot.spotter import SpotResult, spot


def spot_window(front: FrontEnd, numbers, cache: PairCache, *, config: SpotConfig = SpotConfig()) -> SpotResult:
    """:func:`spot` on a window of stream frames (``numbers``: their stream frame numbers, one per
    analysed frame of ``front``), with the pairs earlier windows measured taken from ``cache``."""
    if len(numbers) != front.n:
        raise ValueError(f"{len(numbers)} frame numbers for a window of {front.n} frames")
    cache.bind(numbers)
    return spot(front, config=config, pair_cache=cache)
