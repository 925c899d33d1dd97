"""Quiet native libraries: what C/C++ code (FFmpeg, decord, MediaPipe's TensorFlow Lite and absl) writes
straight to file descriptor 2 reads as errors to a command-line user, before or instead of our one line."""
from __future__ import annotations

import contextlib
import os
import sys


@contextlib.contextmanager
def quiet_native_stderr():
    """Send file descriptor 2 to /dev/null inside the block; Python exceptions still raise.

    Set MEVQA_VERBOSE=1 to see the native lines (decoder warnings, MediaPipe's graph start-up).
    """
    if os.environ.get("MEVQA_VERBOSE"):
        yield
        return
    sys.stderr.flush()
    try:
        saved = os.dup(2)
    except OSError:  # no real stderr (embedded use): nothing to silence
        yield
        return
    try:
        with open(os.devnull, "w") as null:
            os.dup2(null.fileno(), 2)
        yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)
