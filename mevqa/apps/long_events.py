"""Views of a long video's streamed events, shared by the command line and the app.

:func:`mevqa.evidence.stream.spot_stream` keeps no image of a long video (memory bounded by a window):
its intervals carry source frame numbers and the transforms of their aligned keyframes. Here those
keyframes are re-read by seeking (:func:`mevqa.evidence.stream.keyframes`), the onset-to-apex flow map is
computed from the two crops (one DIS flow on 224 px crops, a few milliseconds), and the events are put
into words (one line each) and into the JSON the CLI prints. The AUs of one onset/apex pair of a long
video are measured on just the frames around them (:func:`aus_between`), as ``mevqa au`` does for a clip.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

from mevqa.evidence.result import IntervalEvidence
from mevqa.evidence.stream import StreamEvidence, keyframes
from mevqa.motion.flow import dense_flow, flow_to_rgb, remove_head_motion

#: Frames read on each side of an onset/apex pair for :func:`aus_between` (the aligner smooths over
#: +-0.45 s, so the pair's own frames are aligned as in a whole clip).
AU_PAD_SECONDS = 0.5
#: The longest onset-to-apex span :func:`aus_between` reads into memory (the in-memory clip limit).
AU_MAX_SPAN_SECONDS = 120.0


def reading(iv: IntervalEvidence) -> str:
    return iv.top_emotion["fine"] if iv.top_emotion else "no FACS rule matched"


def au_words(iv: IntervalEvidence) -> str:
    """``AU6, AU12(l)``: the present AUs, with the side when only one side moved."""
    return ", ".join(f"{a['code']}{'(' + a['side'][0] + ')' if a.get('side') not in (None, '', 'both') else ''}"
                     for a in iv.aus) or "no AU"


def event_line(iv: IntervalEvidence) -> str:
    """One line per event: number, time span, kind, AUs, reading (what ``mevqa watch`` prints, numbered)."""
    return (f"#{iv.index + 1:<3d} {iv.t_onset:7.2f}-{iv.t_offset:.2f} s  {iv.kind:5s}  {au_words(iv)}  "
            f"-> {reading(iv)}")


def event_images(source, iv: IntervalEvidence) -> dict[str, np.ndarray]:
    """Onset, apex and offset crops re-read from ``source``, and the onset-to-apex flow map.

    The flow is the onset-to-apex flow of the aligned crops less the head motion the alignment left
    (:func:`mevqa.motion.flow.remove_head_motion`, fitted at the onset's rigid points the interval kept),
    as in a short clip's flow map; an interval that kept no rigid points (made before they were) shows
    the plain flow."""
    images = keyframes(source, iv)
    if "onset" in images and "apex" in images:
        flow = dense_flow(images["onset"], images["apex"])
        head = (iv.keyframes or {}).get("onset", {}).get("head")
        if head is not None:
            flow = remove_head_motion(flow, np.asarray(head, np.float32))
        images["flow"] = flow_to_rgb(flow)
    return images


def stream_json(res: StreamEvidence) -> dict:
    """``mevqa evidence --json`` of a long video: its intervals (source frame numbers) and counts."""
    return {"clip": res.source, "fps": res.fps, "analysis_fps": round(res.analysis_fps, 3), "n_frames": res.n_frames,
            "duration": round(res.duration, 3), "intervals": [iv.to_dict() for iv in res.intervals],
            "windows": res.windows, "failed_windows": res.failed_windows, "lost_frames": res.lost_frames,
            "notes": list(res.notes), "streamed": True}


def stream_text(res: StreamEvidence) -> str:
    """``mevqa evidence`` of a long video: a header and one line per interval (AUs, reading)."""
    micro = sum(iv.kind == "micro" for iv in res.intervals)
    lines = [f"{Path(res.source).name}: {res.duration:.1f} s, {res.n_frames} frames at {res.fps:g} fps "
             f"(long video, read as a stream in {res.windows} window(s)); {micro} micro- and "
             f"{len(res.intervals) - micro} macro-expression interval(s)"]
    lines += [f"  {event_line(iv)}  (frames {iv.onset}-{iv.apex}-{iv.offset})" for iv in res.intervals]
    lines += [f"  ({note})" for note in res.notes]
    return "\n".join(lines)


def save_event_images(source, res: StreamEvidence, out_dir) -> list[Path]:
    """Keyframes and flow maps of every interval as PNG files (``interval1_apex.png``, ...)."""
    import cv2  # noqa: PLC0415 - with the writes only

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    written = []
    for iv in res.intervals:
        for name, img in event_images(source, iv).items():
            p = out / f"interval{iv.index + 1}_{name}.png"
            if not cv2.imwrite(str(p), cv2.cvtColor(img, cv2.COLOR_RGB2BGR)):
                raise OSError(f"cannot write {p} (full disk or no permission?)")
            written.append(p)
    return written


def aus_between(source, onset: int, apex: int, *, fps: float | None = None):
    """The AUs of a long video between two source frames (an :class:`~mevqa.au.results.AUResult` with
    ``onset``/``apex`` in source frames), measured on the frames around them only."""
    from mevqa.au.detector import detect_aus_clip  # noqa: PLC0415 - MediaPipe
    from mevqa.io.stream import iter_frames, probe  # noqa: PLC0415
    from mevqa.io.video import Clip, frame_number, list_frames  # noqa: PLC0415

    info = probe(source, fps=fps)
    if not 0 <= onset <= apex:
        raise ValueError(f"--onset {onset} / --apex {apex}: give 0 <= onset <= apex")
    if (apex - onset) / info.fps > AU_MAX_SPAN_SECONDS:
        raise ValueError(f"onset to apex is {(apex - onset) / info.fps:.0f} s; at most {AU_MAX_SPAN_SECONDS:g} s")
    pad = int(round(AU_PAD_SECONDS * info.fps))
    start = onset  # a video's frames are 0-based; a frame folder's are its own numbers (img46.jpg -> 46)
    if Path(str(source)).is_dir():
        numbered = [frame_number(f.name) for f in list_frames(Path(source))]
        start = next((i for i, n in enumerate(numbered) if n >= onset), len(numbered))
    frames, numbers, after = [], [], 0
    for number, frame in iter_frames(source, start=max(0, start - pad), fps=info.fps):
        after += number > apex
        if after > pad:
            break
        frames.append(frame)
        numbers.append(number)
    if onset not in numbers or apex not in numbers:
        raise ValueError(f"{source}: no frames {onset} and {apex} in the video ({info.n_frames} frames)")
    clip = Clip(np.stack(frames), info.fps, str(source), np.asarray(numbers))
    res = detect_aus_clip(clip, onset=numbers.index(onset), apex=numbers.index(apex))
    res.onset, res.apex = int(numbers[res.onset]), int(numbers[res.apex])
    res.clip = str(source)
    return res
