"""The ``mevqa`` command line.

Each subcommand is a thin layer over the library: it parses arguments, calls one function, and prints
either a readable summary or (``--json``) the stable JSON contract of ARCHITECTURE.md. Errors are one
line on stderr and a non-zero exit; ``--debug`` shows the traceback instead.
"""
from __future__ import annotations

import json
import logging
import os
import socket
import sys
import warnings
from pathlib import Path

from mevqa.apps.cli_args import EPILOG, build_parser  # noqa: F401  (EPILOG: re-exported for the README)
from mevqa.apps.cli_long import au_long, evidence_long, is_long, spot_long
from mevqa.apps.net import check_port
from mevqa.io.native import quiet_native_stderr

# MediaPipe, TensorFlow Lite and FFmpeg (through OpenCV) log to stderr natively; keep the terminal for our
# own lines (MEVQA_VERBOSE=1 shows them). Set before any of them is imported.
if not os.environ.get("MEVQA_VERBOSE"):
    for _k, _v in (("GLOG_minloglevel", "2"), ("TF_CPP_MIN_LOG_LEVEL", "3"), ("OPENCV_LOG_LEVEL", "ERROR"),
                   ("OPENCV_FFMPEG_LOGLEVEL", "-8")):
        os.environ.setdefault(_k, _v)


def load_clip(path: str, fps: float | None = None):
    """A clip from a path, or the built-in demo clip for 'demo'."""
    from mevqa.io.video import Clip

    if path == "demo":
        from mevqa.io.demo import demo_clip

        return demo_clip()
    with quiet_native_stderr():
        return Clip.load(path, fps=fps)


def _print_json(obj) -> None:
    print(json.dumps(obj, indent=2, ensure_ascii=False))


def _size(text: str) -> tuple[int, int]:
    parts = text.lower().replace(" ", "").split("x")
    if len(parts) != 2 or not all(p.isdigit() and int(p) > 0 for p in parts):
        raise ValueError(f"--size {text!r}: give WIDTHxHEIGHT in pixels, e.g. 640x480")
    return int(parts[0]), int(parts[1])


def _check_writable(path: str) -> Path:
    """Fail before a long computation when its output file cannot be written."""
    p = Path(path).expanduser()
    folder = p.parent if str(p.parent) else Path(".")
    if not folder.is_dir():
        raise FileNotFoundError(f"{path}: the folder {folder} does not exist")
    if not os.access(folder, os.W_OK) or (p.exists() and not os.access(p, os.W_OK)):
        raise PermissionError(f"{path}: cannot write there")
    return p


def _cmd_synth(a) -> None:
    from mevqa.testing.synth import main_synth, write_demo

    w, h = _size(a.size)
    if a.demo:  # renders the demo again: demo.mp4 + demo.json, as shipped in mevqa/assets/
        print(write_demo(a.out_dir))
        return
    main_synth(a.out_dir, n=a.n, seed=a.seed, fmt=a.format, fps=tuple(a.fps), photo=a.photo, width=w, height=h)


def _cmd_spot(a) -> None:
    from mevqa.spot.spotter import spot_clip

    from mevqa.evidence.builder import EvidenceConfig
    from mevqa.evidence.select import clip_intervals

    plot = _check_writable(a.plot) if a.plot else None  # before the computation, not after it
    if is_long(a.clip, a.fps):
        if plot:
            raise ValueError("--plot draws clips up to the in-memory limit; a long video's intervals print as text or --json")
        return spot_long(a)
    res = spot_clip(load_clip(a.clip, a.fps))
    # The clip's intervals as the evidence (ask, eval, the app) numbers them: one definition.
    limit = EvidenceConfig().max_intervals
    left_out = len(res.intervals) - len(kept := clip_intervals(res.intervals, max_intervals=limit))
    res.intervals = kept
    if plot:
        from mevqa.apps.views import spot_figure  # matplotlib: only when a plot is asked for

        spot_figure(res).savefig(plot, dpi=120, bbox_inches="tight")
    if a.json:
        _print_json({**res.to_dict(), "left_out": left_out})
        return
    print(f"{res.clip}: {res.n_frames} frames at {res.fps:g} fps, {len(res.intervals)} interval(s)")
    for k, iv in enumerate(res.intervals, 1):
        print(f"  #{k:<2d} {iv.kind:5s} onset {iv.onset:5d}  apex {iv.apex:5d}  offset {iv.offset:5d}  "
              f"({iv.onset / res.fps:.2f}-{iv.offset / res.fps:.2f} s)  score {iv.score:.2f}")
    if left_out:
        print(f"  ({left_out} weaker detection(s) left out: the evidence keeps the strongest {limit})")


def _cmd_au(a) -> None:
    from mevqa.au.detector import detect_aus_clip

    if (a.onset is None) != (a.apex is None):
        raise ValueError("give both --onset and --apex, or neither (then the clip's main expression is used)")
    if is_long(a.clip, a.fps):
        return au_long(a)
    clip = load_clip(a.clip, a.fps)
    onset, apex = a.onset, a.apex
    if onset is None:  # the clip's main expression, as ask and eval choose it (mevqa.evidence.select)
        from mevqa.evidence.builder import compute_evidence
        from mevqa.evidence.select import main_interval

        main = main_interval(compute_evidence(clip))
        if main is None:
            raise ValueError(f"{clip.source}: no expression interval was spotted; give --onset and --apex")
        onset, apex = main.onset, main.apex
        print(f"main expression #{main.index + 1}: {main.t_onset:.2f}-{main.t_offset:.2f} s "
              f"(onset {onset}, apex {apex})", file=sys.stderr)
    res = detect_aus_clip(clip, onset=onset, apex=apex)
    if a.json:
        _print_json(res.to_dict())
    else:
        from mevqa.apps.views import au_table_text

        print(au_table_text(res))


def _with_recognizer(ev, clip, path):
    """--recognizer PATH: a trained MMNet's reading joins each interval (evidence.recognized)."""
    if not path:
        return ev
    from mevqa.evidence.recognized import add_recognizer_reading  # torch: only when asked for

    return add_recognizer_reading(ev, clip, path)


def _cmd_evidence(a) -> None:
    from mevqa.evidence.builder import compute_evidence

    if is_long(a.clip, a.fps):
        return evidence_long(a)
    clip = load_clip(a.clip, a.fps)
    ev = _with_recognizer(compute_evidence(clip), clip, a.recognizer)
    if a.out:
        written = ev.save_images(a.out)
        print(f"wrote {len(written)} PNG files (keyframes, flow maps, motion.png) to {a.out}", file=sys.stderr)
    if a.json:
        _print_json(ev.to_dict())
    else:
        print(ev.to_text())


def _hub_reachable(timeout: float = 2.0) -> bool:
    from urllib.parse import urlparse

    url = urlparse(os.environ.get("HF_ENDPOINT") or "https://huggingface.co")
    try:
        with socket.create_connection((url.hostname, url.port or (443 if url.scheme == "https" else 80)), timeout):
            return True
    except OSError:
        return False


def _prepare_model(a) -> None:
    """Before loading a hub id with the hub out of reach: load from the local cache only (offline mode), or
    say at once that it is not there, instead of the hub client's 25 s of retries before the same error."""
    model = getattr(a, "model", None)
    hub_id = bool(model) and model.count("/") == 1 and not model.startswith((".", "/", "~"))
    if not hub_id or Path(model).expanduser().exists() or os.environ.get("HF_HUB_OFFLINE") or _hub_reachable():
        return
    os.environ["HF_HUB_OFFLINE"] = "1"  # read by huggingface_hub and transformers when they are imported
    from huggingface_hub import try_to_load_from_cache

    if a.command != "app" and not isinstance(try_to_load_from_cache(model, "config.json"), str):
        raise OSError(f"cannot load {model!r}: the Hugging Face hub cannot be reached and the model is not in "
                      "the local cache (download it while online, or give a local folder)")


def _quiet_libraries(a) -> None:
    """Library notices that are noise on the terminal (``--debug`` keeps them)."""
    if not getattr(a, "load_in_4bit", False):
        # bitsandbytes logs "pip install kernels" for its CPU 4-bit kernel on import, used or not.
        logging.getLogger("bitsandbytes.backends.cpu.ops").setLevel(logging.ERROR)
    # 8-bit on a float32 model: one "inputs will be cast to float16" line per layer per call, by design.
    logging.getLogger("bitsandbytes.autograd._functions").setLevel(logging.ERROR)
    if not sys.warnoptions:  # python -W ... or PYTHONWARNINGS: the user asked for them
        warnings.filterwarnings("ignore", category=FutureWarning)
        warnings.filterwarnings("ignore", category=DeprecationWarning)


def _make_agent(a):
    from mevqa.answer.agent import Agent

    return Agent.from_args(model=a.model, adapter=a.adapter, load_in_4bit=a.load_in_4bit,
                           load_in_8bit=a.load_in_8bit, fallback=False)


def _cmd_ask(a) -> None:
    from mevqa.answer.agent import check_question
    from mevqa.evidence.builder import compute_evidence

    check_question(a.question)  # an empty or over-long question fails before any decoding
    from mevqa.apps.watch import answer_long

    text = answer_long(a.clip, a.question, fps=a.fps)  # long-video questions and long videos: streamed
    if text is not None:
        print(text)
        return
    agent = _make_agent(a)
    clip = load_clip(a.clip, a.fps)
    ev = _with_recognizer(compute_evidence(clip), clip, a.recognizer)
    ans = agent.ask(ev, a.question, samples=a.samples)
    if a.json:
        _print_json(ans.to_dict(include_evidence=True))
    else:
        if ans.text:
            print(ans.text)
            if ans.grounds():  # what it rests on and its caveats (a guess, a prior): always shown
                print(f"({ans.grounds()})", file=sys.stderr)
        else:  # keep stdout scriptable: an empty line means no scoreable answer
            print()
            raw = " ".join(ans.raw.split())[:200]
            print(f"({ans.note} The model said: {raw!r})", file=sys.stderr)
        print(f"[{ans.backend}]", file=sys.stderr)


def _cmd_eval(a) -> int:
    import mevqa.megc.command as evaluate

    code = evaluate.main(a) or 0
    if code == 0 and a.out and not (a.score or a.strs):
        # Failed clips are listed in the run's side file (the summary line counts them): not a success.
        from mevqa.megc.records import failed_path, read_failed

        if read_failed([failed_path(Path(a.out))]):
            code = 1
    return code


def _cmd_train(a) -> None:
    from mevqa.train.trainer import main_train

    main_train(a.config, a.overrides)


def _cmd_app(a) -> None:
    check_port(a.host, a.port)  # before Gradio's import (seconds) and before any URL is announced
    from mevqa.apps.gradio_app import launch

    launch(model=a.model, adapter=a.adapter, load_in_4bit=a.load_in_4bit, load_in_8bit=a.load_in_8bit,
           host=a.host, port=a.port)


def _cmd_tiny(a) -> None:
    from mevqa.testing.tiny_model import main_tiny_model

    main_tiny_model(a.out_dir, family=a.family)


def _cmd_watch(a) -> None:
    from mevqa.apps.watch import watch

    watch(a.source, realtime=a.realtime, fps=a.fps, max_seconds=a.max_seconds, as_json=a.json)


def _cmd_data(a) -> None:
    if a.data_command != "summary":
        raise ValueError("usage: mevqa data summary FILE...")
    from mevqa.train.qa import format_summary, summarise_files

    print(format_summary(summarise_files(a.files)))


def _cmd_cache(a) -> None:
    from mevqa.evidence import cache

    if a.cache_command == "clear":
        print(f"removed {cache.clear()} cached evidence entr(y/ies) from {cache.cache_dir()}")
    elif a.cache_command == "info":
        files = list(cache.cache_dir().glob("*.json"))
        size = sum(f.stat().st_size for f in files) / 1e6
        print(f"{cache.cache_dir()}: {len(files)} entr(y/ies), {size:.1f} MB (bounded by $MEVQA_CACHE_MAX_MB)")
    else:
        raise ValueError("usage: mevqa cache clear | mevqa cache info")


COMMANDS = {"cache": _cmd_cache, "synth": _cmd_synth, "spot": _cmd_spot, "au": _cmd_au, "evidence": _cmd_evidence, "ask": _cmd_ask,
            "eval": _cmd_eval, "train": _cmd_train, "app": _cmd_app, "tiny-model": _cmd_tiny, "data": _cmd_data,
            "watch": _cmd_watch}


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    a = parser.parse_args(argv)
    if not a.command:
        parser.print_help()
        return 0
    if not a.debug:
        _quiet_libraries(a)
    try:
        _prepare_model(a)
        code = COMMANDS[a.command](a)
    except KeyboardInterrupt:
        print("mevqa: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:
        return 0
    except (ValueError, FileNotFoundError, OSError, ImportError, RuntimeError) as e:
        if a.debug:
            raise
        msg = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        print(f"mevqa {a.command}: error: {msg}", file=sys.stderr)
        return 2
    return int(code or 0)


if __name__ == "__main__":
    sys.exit(main())
