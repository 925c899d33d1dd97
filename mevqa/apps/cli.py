"""The ``mevqa`` command line.

Each subcommand is a thin layer over the library: it parses arguments, calls one function, and prints
either a readable summary or (``--json``) the stable JSON contract of ARCHITECTURE.md. Errors are one
line on stderr and a non-zero exit; ``--debug`` shows the traceback instead.
"""
from __future__ import annotations

import argparse
import json
import os
import sys

EPILOG = """examples:
  mevqa synth demo/ --n 4                 synthetic clips with ground truth (mp4 + json)
  mevqa spot clip.mp4 --json              onset/apex/offset of each micro- and macro-expression
  mevqa au clip.mp4 --onset 12 --apex 20  action units between two frames
  mevqa evidence clip.mp4                 everything the answerer will see, as text
  mevqa ask clip.mp4 "Which action units are shown?"
  mevqa eval questions.jsonl --clips DIR --out pred.jsonl
  mevqa app                               the chat app on http://127.0.0.1:7860 (built-in demo clip)

Frame folders (CASME II img46.jpg, SAMM 006_1_2_0001.jpg, CAS(ME)^3 1.jpg) work wherever a CLIP is asked
for; give --fps when the dataset cannot be told from the file names.
"""


def _add_clip(p: argparse.ArgumentParser) -> None:
    p.add_argument("clip", help="video file (mp4, avi, mov, mkv, webm) or a folder of frames; 'demo' for the built-in clip")
    p.add_argument("--fps", type=float, default=None, help="frame rate (overrides the file's; needed for unknown frame folders)")


def _add_model(p: argparse.ArgumentParser) -> None:
    p.add_argument("--model", default=None, help="Qwen-VL hub id or local folder (default: the evidence-only backend)")
    p.add_argument("--adapter", default=None, help="LoRA adapter folder (PEFT format) to put on --model")
    p.add_argument("--load-in-4bit", action="store_true", help="quantise the model to 4 bits (bitsandbytes)")
    p.add_argument("--load-in-8bit", action="store_true", help="quantise the model to 8 bits (bitsandbytes)")


def build_parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(
        prog="mevqa", formatter_class=argparse.RawDescriptionHelpFormatter, epilog=EPILOG,
        description="Answer questions about facial micro-expressions in video: an optical-flow spotter finds "
                    "onset/apex/offset, an action-unit detector measures which muscles moved and on which side, "
                    "and Qwen-VL (or the evidence-only backend) answers.")
    ap.add_argument("--debug", action="store_true", help="show tracebacks instead of one-line errors")
    sub = ap.add_subparsers(dest="command", metavar="COMMAND")

    p = sub.add_parser("synth", help="write synthetic micro-expression clips with JSON ground truth")
    p.add_argument("out_dir")
    p.add_argument("--n", type=int, default=8, help="number of clips (default 8)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--format", choices=("mp4", "folder"), default="mp4", help="mp4 files or CASME II-style frame folders")
    p.add_argument("--fps", type=float, nargs="+", default=[30.0, 200.0], help="frame rates to mix (default 30 200)")
    p.add_argument("--photo", default=None, help="face photo to animate (default: the bundled public-domain portrait)")
    p.add_argument("--size", default="640x480", help="WIDTHxHEIGHT (default 640x480)")
    p.add_argument("--demo", action="store_true", help="write only the built-in demo clip")

    p = sub.add_parser("spot", help="find micro- and macro-expressions (onset, apex, offset)")
    _add_clip(p)
    p.add_argument("--json", action="store_true", help="print the JSON contract")
    p.add_argument("--plot", default=None, metavar="PNG", help="save the motion curve with the intervals")

    p = sub.add_parser("au", help="action units between onset and apex")
    _add_clip(p)
    p.add_argument("--onset", type=int, default=None, help="onset frame (0-based); with --apex")
    p.add_argument("--apex", type=int, default=None, help="apex frame (0-based); without both, spot first")
    p.add_argument("--json", action="store_true")

    p = sub.add_parser("evidence", help="all the evidence for a clip (intervals, AUs, emotions, hidden-emotion check)")
    _add_clip(p)
    p.add_argument("--json", action="store_true")
    p.add_argument("--out", default=None, metavar="DIR", help="also save keyframes and flow maps as PNG here")

    p = sub.add_parser("ask", help="ask a question about a clip")
    _add_clip(p)
    p.add_argument("question")
    _add_model(p)
    p.add_argument("--samples", type=int, default=1, help="self-consistency: sample N answers and vote")
    p.add_argument("--json", action="store_true", help="the answer with the evidence used")

    p = sub.add_parser("eval", help="batch VQA in the MEGC2025 format, with the challenge's metrics")
    p.add_argument("questions", nargs="?", help="MEGC question file (.jsonl)")
    p.add_argument("--clips", help="root folder where each record's clip resolves")
    p.add_argument("--pattern", default=None,
                   help="where a clip lives under --clips, e.g. '{dataset}/{subject}/{filename}' or '{video}.mp4'")
    _add_model(p)
    p.add_argument("--out", help="predictions file (.jsonl), written as it goes; resumes if it exists")
    p.add_argument("--gt", default=None, help="ground truth (.jsonl) to score against")
    p.add_argument("--score", default=None, metavar="PRED", help="only score this prediction file against --gt")
    p.add_argument("--report", default=None, metavar="DIR", help="write report.json, report.md and plots here")
    p.add_argument("--fps", type=float, default=None, help="frame rate for frame folders")
    p.add_argument("--strs", default=None, metavar="CSV", help="STRS mode: spot and recognise long videos; write CSV")

    p = sub.add_parser("train", help="LoRA fine-tuning of Qwen-VL (see train/configs)")
    p.add_argument("config", help="YAML config")
    p.add_argument("overrides", nargs="*", help="key=value overrides, e.g. lora.r=16 max_steps=200")

    p = sub.add_parser("app", help="the Gradio chat app")
    _add_model(p)
    p.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1: this machine only)")
    p.add_argument("--port", type=int, default=7860)

    p = sub.add_parser("tiny-model", help="build a tiny random Qwen-VL with a local tokenizer (tests, smoke runs)")
    p.add_argument("out_dir")
    p.add_argument("--family", choices=("qwen2_5_vl", "qwen3_vl"), default="qwen2_5_vl")

    p = sub.add_parser("data", help="dataset tools")
    dsub = p.add_subparsers(dest="data_command", metavar="ACTION")
    d = dsub.add_parser("summary", help="counts per class, AU and subject of MEGC files or coding sheets")
    d.add_argument("files", nargs="+")
    return ap


def load_clip(path: str, fps: float | None = None):
    """A clip from a path, or the built-in demo clip for 'demo'."""
    from mevqa.io.video import Clip

    if path == "demo":
        from mevqa.io.demo import demo_clip

        return demo_clip()
    return Clip.load(path, fps=fps)


def _print_json(obj) -> None:
    print(json.dumps(obj, indent=2, ensure_ascii=False))


def _cmd_synth(a) -> None:
    from mevqa.testing.synth import main_synth, write_demo

    w, h = (int(v) for v in a.size.lower().split("x"))
    if a.demo:  # renders the demo again: demo.mp4 + demo.json, as shipped in mevqa/assets/
        print(write_demo(a.out_dir))
        return
    main_synth(a.out_dir, n=a.n, seed=a.seed, fmt=a.format, fps=tuple(a.fps), photo=a.photo, width=w, height=h)


def _cmd_spot(a) -> None:
    from mevqa.spot.spotter import spot_clip

    from mevqa.evidence.builder import EvidenceConfig
    from mevqa.evidence.select import clip_intervals

    res = spot_clip(load_clip(a.clip, a.fps))
    # The clip's intervals as the evidence (ask, eval, the app) numbers them: one definition.
    limit = EvidenceConfig().max_intervals
    left_out = len(res.intervals) - len(kept := clip_intervals(res.intervals, max_intervals=limit))
    res.intervals = kept
    if a.plot:
        res.plot().savefig(a.plot, dpi=120, bbox_inches="tight")
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
        print(res.to_markdown())


def _cmd_evidence(a) -> None:
    from mevqa.evidence.builder import compute_evidence

    ev = compute_evidence(load_clip(a.clip, a.fps))
    if a.out:
        for p in ev.save_images(a.out):
            print(f"wrote {p}", file=sys.stderr)
    if a.json:
        _print_json(ev.to_dict())
    else:
        print(ev.to_text())


def _make_agent(a):
    from mevqa.answer.agent import Agent

    return Agent.from_args(model=a.model, adapter=a.adapter, load_in_4bit=a.load_in_4bit,
                           load_in_8bit=a.load_in_8bit, fallback=False)


def _cmd_ask(a) -> None:
    from mevqa.evidence.builder import compute_evidence

    agent = _make_agent(a)
    ev = compute_evidence(load_clip(a.clip, a.fps))
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


def _cmd_eval(a) -> None:
    import mevqa.megc.command as evaluate

    evaluate.main(a)


def _cmd_train(a) -> None:
    from mevqa.train.trainer import main_train

    main_train(a.config, a.overrides)


def _cmd_app(a) -> None:
    from mevqa.apps.gradio_app import launch

    launch(model=a.model, adapter=a.adapter, load_in_4bit=a.load_in_4bit, load_in_8bit=a.load_in_8bit,
           host=a.host, port=a.port)


def _cmd_tiny(a) -> None:
    from mevqa.testing.tiny_model import main_tiny_model

    main_tiny_model(a.out_dir, family=a.family)


def _cmd_data(a) -> None:
    if a.data_command != "summary":
        raise ValueError("usage: mevqa data summary FILE...")
    from mevqa.train.qa import format_summary, summarise_files

    print(format_summary(summarise_files(a.files)))


COMMANDS = {"synth": _cmd_synth, "spot": _cmd_spot, "au": _cmd_au, "evidence": _cmd_evidence, "ask": _cmd_ask,
            "eval": _cmd_eval, "train": _cmd_train, "app": _cmd_app, "tiny-model": _cmd_tiny, "data": _cmd_data}


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    a = parser.parse_args(argv)
    if not a.command:
        parser.print_help()
        return 0
    # MediaPipe and TensorFlow Lite log to stderr through absl/glog; keep the terminal for our own lines.
    os.environ.setdefault("GLOG_minloglevel", "2")
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    try:
        COMMANDS[a.command](a)
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
    return 0


if __name__ == "__main__":
    sys.exit(main())
