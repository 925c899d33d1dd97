"""``mevqa spot``, ``au`` and ``evidence`` on a video over the in-memory clip limits.

Such a video is read as a stream (:func:`mevqa.evidence.stream.spot_stream`: 30 s windows, memory bounded
by one window, up to ``MAX_STREAM_SECONDS``); the output keeps each command's format, with every frame
number the source's own. What differs, and why:

- ``spot``: every streamed interval (the JSON contract, plus ``"streamed": true``); no ``--plot`` (the
  motion curve of a whole long video is not kept).
- ``au``: ``--onset/--apex`` are read from the frames around them only; without them, the main
  expression of the streamed intervals (:func:`mevqa.evidence.select.main_interval`, as for a clip) is
  measured the same way, so the table and JSON are those of a clip.
- ``evidence``: one line (``--json``: one object) per interval with its AUs and reading; ``--out`` writes
  each interval's keyframes (re-read by seeking) and flow map. No hidden-emotion check or face-state
  reading (they read the whole clip's landmarks, which a stream does not keep) and no ``--recognizer``.
"""
from __future__ import annotations

import json
import os
import sys
from pathlib import Path


def is_long(path: str, fps: float | None) -> bool:
    """Over the in-memory clip limits (then the streaming front end reads it, window by window)."""
    from mevqa.io.decode import DEFAULT_LIMITS
    from mevqa.io.stream import probe

    if path == "demo":
        return False
    try:
        info = probe(path, fps=fps)
    except Exception:  # noqa: BLE001 - not probeable here: Clip.load gives the one-line reason
        return False
    return info.n_frames > DEFAULT_LIMITS.max_frames or info.duration > DEFAULT_LIMITS.max_seconds


def streamed(path, *, fps: float | None = None, **options):
    """:func:`mevqa.evidence.stream.spot_stream` with a progress bar on a terminal's stderr (frames read;
    none when stderr is a pipe or a log) and its notes printed there after it."""
    from tqdm import tqdm

    from mevqa.evidence.stream import spot_stream

    with tqdm(unit="frame", desc=Path(str(path)).name, file=sys.stderr, disable=not sys.stderr.isatty(),
              leave=False) as bar:
        def progress(done: int, total: int) -> None:
            bar.total = total or None
            bar.update(done - bar.n)

        res = spot_stream(path, fps=fps, progress=progress, **options)
    for note in res.notes:
        print(f"({note})", file=sys.stderr)
    return res


def _stream(a):
    return streamed(a.clip, fps=a.fps)


def _print_json(obj) -> None:
    print(json.dumps(obj, indent=2, ensure_ascii=False))


def spot_long(a) -> None:
    """``mevqa spot`` on a long video: every interval of the streamed spotter, same JSON contract."""
    res = _stream(a)
    ivs = [{"onset": iv.onset, "apex": iv.apex, "offset": iv.offset, "kind": iv.kind, "score": round(iv.score, 4)}
           for iv in res.intervals]
    if a.json:
        _print_json({"clip": res.source, "fps": res.fps, "n_frames": res.n_frames, "intervals": ivs, "streamed": True})
        return
    print(f"{res.source}: {res.n_frames} frames at {res.fps:g} fps, {len(ivs)} interval(s) (long video, read as a stream)")
    for k, iv in enumerate(ivs, 1):
        print(f"  #{k:<2d} {iv['kind']:5s} onset {iv['onset']:6d}  apex {iv['apex']:6d}  offset {iv['offset']:6d}  "
              f"({iv['onset'] / res.fps:.2f}-{iv['offset'] / res.fps:.2f} s)  score {iv['score']:.2f}")


def au_long(a) -> None:
    """``mevqa au`` on a long video (see the module docstring)."""
    from mevqa.apps.long_events import aus_between

    onset, apex = a.onset, a.apex
    if onset is None:
        from mevqa.evidence.select import main_interval

        res = _stream(a)
        main = main_interval(res)
        if main is None:
            raise ValueError(f"{a.clip}: no expression interval was spotted; give --onset and --apex")
        onset, apex = main.onset, main.apex
        print(f"main expression #{main.index + 1}: {main.t_onset:.2f}-{main.t_offset:.2f} s "
              f"(onset {onset}, apex {apex}; long video, read as a stream)", file=sys.stderr)
    res = aus_between(a.clip, onset, apex, fps=a.fps)
    if a.json:
        _print_json(res.to_dict())
    else:
        from mevqa.apps.views import au_table_text

        print(au_table_text(res))


def evidence_long(a) -> None:
    """``mevqa evidence`` on a long video (see the module docstring)."""
    from mevqa.apps.long_events import save_event_images, stream_json, stream_text

    if a.recognizer:
        raise ValueError("--recognizer reads clips up to the in-memory limit; a long video's evidence has no recogniser reading")
    if a.out:  # fail before minutes of streaming, not after
        out = Path(a.out).expanduser()
        out.mkdir(parents=True, exist_ok=True)
        if not os.access(out, os.W_OK):
            raise PermissionError(f"{a.out}: cannot write there")
    res = _stream(a)
    if a.out:
        written = save_event_images(a.clip, res, a.out)
        print(f"wrote {len(written)} PNG files (keyframes and flow maps) to {a.out}", file=sys.stderr)
    if a.json:
        _print_json(stream_json(res))
    else:
        print(stream_text(res))
