"""The order a run draws its training samples in: a pure function of the seed and the step.

Being stateless is what makes resuming exact: the checkpoint's step is the sampler's position, so a
resumed run draws the same samples as an uninterrupted one without saving any sampler state.
"""
from __future__ import annotations

import torch

__all__ = ["SampleStream"]


class SampleStream:
    """The sequence of sample indices a run trains on: epoch ``e`` is a permutation (or, with
    ``weights``, a class-balanced draw with replacement) from a generator seeded with (seed, e).

    Step ``s`` of process ``r`` takes, for micro-batch ``j``, the stream positions
    ``s*G + (j*W + r)*B ... + B`` (G = B*accum*W samples a step). Being a pure function of the seed
    and the step, it needs no state of its own to resume: the checkpoint's step is the position.
    """

    def __init__(self, n: int, *, weights=None, seed: int = 0) -> None:
        if n < 1:
            raise ValueError("no samples to draw from")
        self.n = int(n)
        self.weights = None if weights is None else torch.as_tensor(weights, dtype=torch.double)
        self.seed = int(seed)
        self._cache: dict[int, list[int]] = {}

    def epoch(self, e: int) -> list[int]:
        if e not in self._cache:
            g = torch.Generator().manual_seed(self.seed * 1_000_003 + e)
            if self.weights is None:
                order = torch.randperm(self.n, generator=g)
            else:
                order = torch.multinomial(self.weights, self.n, replacement=True, generator=g)
            if len(self._cache) > 2:
                self._cache.pop(min(self._cache))
            self._cache[e] = order.tolist()
        return self._cache[e]

    def take(self, start: int, count: int) -> list[int]:
        """Indices at stream positions [start, start + count)."""
        return [self.epoch(p // self.n)[p % self.n] for p in range(start, start + count)]

    def batch(self, step: int, micro: int, rank: int = 0, *, batch_size: int, grad_accum: int, world: int = 1) -> list[int]:
        per_step = batch_size * grad_accum * world
        return self.take(step * per_step + (micro * world + rank) * batch_size, batch_size)

    def position(self, step: int, *, batch_size: int, grad_accum: int, world: int = 1) -> dict:
        """Where the stream stands after ``step`` steps: epoch, position in the epoch, samples drawn."""
        drawn = step * batch_size * grad_accum * world
        return {"samples_drawn": drawn, "epoch": drawn // self.n, "position_in_epoch": drawn % self.n}
