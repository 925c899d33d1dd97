"""Files a run depends on, written so that a kill or a full disk never leaves a half-written one behind.

A folder is built under a temporary name beside its final place and renamed into place when complete
(``os.replace`` is atomic on one file system), so a run folder holds either the whole thing or
nothing and a rerun simply builds it again. A write that fails (full disk, no permission) becomes one
:class:`WriteError` line; the half-written files are released quietly first, because a zip writer
(openpyxl's, numpy's) left in the failing frames would otherwise retry its closing write at exit and
print an ``Exception ignored in: ZipFile.__del__`` traceback after the one-line error.
"""
from __future__ import annotations

import contextlib
import errno
import gc
import os
import shutil
import sys
import traceback
from pathlib import Path
from typing import Iterator

__all__ = ["WriteError", "atomic_dir", "writing", "release_quietly"]


class WriteError(OSError):
    """A file or folder a run needs could not be written (one line: what, where, why)."""


def release_quietly(exc: BaseException) -> None:
    """Drop the failing frames' locals (open writers among them) with their close errors silenced."""
    old = sys.unraisablehook
    sys.unraisablehook = lambda *_: None  # the write already failed; its writer's second failure adds nothing
    try:
        tb = exc.__traceback__
        if tb is not None:
            traceback.clear_frames(tb)
        gc.collect()
    finally:
        sys.unraisablehook = old


def _reason(exc: BaseException) -> str:
    if isinstance(exc, OSError) and exc.errno in (errno.ENOSPC, errno.EDQUOT, errno.EFBIG):
        return "no space left on the device (or the file size limit was reached)"
    text = str(getattr(exc, "strerror", None) or exc).strip().splitlines()
    first = text[0] if text else type(exc).__name__
    if "inline_container" in first or "PytorchStreamWriter" in first or "unexpected pos" in first:
        return "the write failed part way (full disk?)"  # torch's zip writer says only "[enforce fail ...]"
    return first


@contextlib.contextmanager
def writing(what: str, where: str | os.PathLike) -> Iterator[None]:
    """Turn a failed write inside the block into one :class:`WriteError` line naming ``what`` and ``where``."""
    try:
        yield
    except WriteError:
        raise
    except (OSError, RuntimeError) as exc:
        if isinstance(exc, RuntimeError) and not any(s in str(exc) for s in ("inline_container", "PytorchStreamWriter",
                                                                              "unexpected pos", "write")):
            raise  # not an I/O failure
        release_quietly(exc)
        raise WriteError(f"cannot write {what} to {where}: {_reason(exc)}") from None


@contextlib.contextmanager
def atomic_dir(final: str | os.PathLike, what: str) -> Iterator[Path]:
    """Yield a fresh temporary folder; on success it replaces ``final`` whole, on failure it is removed."""
    final = Path(final)
    final.parent.mkdir(parents=True, exist_ok=True)
    for stale in final.parent.glob(f".{final.name}.tmp-*"):  # left by a killed build (one writer per run dir)
        shutil.rmtree(stale, ignore_errors=True)
    tmp = final.with_name(f".{final.name}.tmp-{os.getpid()}")
    try:
        with writing(what, final):
            tmp.mkdir(parents=True)
            yield tmp
            if final.exists():
                shutil.rmtree(final)  # an incomplete folder from an older, killed run
            os.replace(tmp, final)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
