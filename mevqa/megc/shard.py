"""Sharing a batch run over processes: this process's index and the number of processes, from a launcher's
environment (``accelerate launch``, ``torchrun``, any scheduler setting ``RANK``/``WORLD_SIZE``)."""
from __future__ import annotations

import os
from dataclasses import dataclass

from mevqa.megc.records import EvalError

__all__ = ["Shard"]


@dataclass(frozen=True)
class Shard:
    """This process's share of the work: clips ``i`` with ``i % count == index``."""

    index: int = 0
    count: int = 1

    @property
    def is_main(self) -> bool:
        return self.index == 0

    @classmethod
    def from_env(cls) -> "Shard":
        """accelerate's PartialState under a launcher (``accelerate launch``, torchrun: they set
        ``MASTER_ADDR``), else plain ``RANK``/``WORLD_SIZE`` (any scheduler, or by hand: no process
        group is formed, so processes may start at different times). A plain run is one process and
        does not import accelerate, which costs seconds."""
        try:
            world = int(os.environ.get("WORLD_SIZE", "1") or 1)
            index = int(os.environ.get("RANK", "0") or 0)
        except ValueError:
            raise EvalError(f"RANK={os.environ.get('RANK')!r} / WORLD_SIZE={os.environ.get('WORLD_SIZE')!r} "
                            "are not numbers") from None
        if world <= 1:
            return cls()
        count = world
        if os.environ.get("MASTER_ADDR"):
            try:
                # deferred: seconds to import, and only a launched multi-process run needs them
                import torch
                from accelerate import PartialState

                # without cpu=True, PartialState on a machine with no GPU ignores the launcher's
                # processes and reports one (accelerate 1.x)
                st = PartialState(cpu=not torch.cuda.is_available())
                if int(st.num_processes) == world:  # else trust the launcher: never let all do all
                    index, count = int(st.process_index), int(st.num_processes)
            except ImportError:
                pass
        if not 0 <= index < count:
            raise EvalError(f"process index {index} is outside 0..{count - 1}")
        return cls(index, count)

