"""The ``mevqa`` argument parser: every subcommand with examples, every argument with help text.

Kept apart from :mod:`mevqa.apps.cli` (which runs the commands) so that ``mevqa --help`` imports nothing
heavy and the help texts can be read in one place.
"""
from __future__ import annotations

import argparse

from mevqa.apps.watch import WATCH_EXAMPLES, add_arguments as add_watch_arguments
from mevqa.io.formats import VIDEO_EXTENSIONS

VIDEO_TYPES = ", ".join(e.lstrip(".") for e in VIDEO_EXTENSIONS)  # the same list the app accepts

EPILOG = """examples:
  mevqa synth demo/ --n 4                 synthetic clips with ground truth (mp4 + json)
  mevqa spot clip.mp4 --json              onset/apex/offset of each micro- and macro-expression
  mevqa au clip.mp4 --onset 12 --apex 20  action units between two frames
  mevqa evidence clip.mp4                 everything the answerer will see, as text
  mevqa ask clip.mp4 "Which action units are shown?"
  mevqa eval questions.jsonl --clips DIR --out pred.jsonl
  mevqa app                               the chat app on http://127.0.0.1:7860 (built-in demo clip)

Frame folders (CASME II img46.jpg, SAMM 006_1_2_0001.jpg, CAS(ME)^3 1.jpg) work wherever a CLIP is asked
for; give --fps when the dataset cannot be told from the file names. Add --debug (before or after the
command) for a traceback instead of a one-line error.
"""

EXAMPLES = {
    "synth": """examples:
  mevqa synth demo/                      8 mp4 clips (30 and 200 fps) with demo/synth_000.json ... and index.json
  mevqa synth frames/ --format folder    frame folders instead (img1.jpg... at 200 fps, 1.jpg... at 30 fps)
  mevqa synth big/ --n 50 --seed 3 --size 320x240
  mevqa synth out/ --demo                the built-in demo clip again (demo.mp4 + demo.json)""",
    "spot": """examples:
  mevqa spot clip.mp4                    one line per interval, numbered as ask and the app number them
  mevqa spot clip.mp4 --json             the JSON contract (clip, fps, n_frames, intervals)
  mevqa spot CASME2/sub01/EP02_01f --plot motion.png
  mevqa spot demo""",
    "au": """examples:
  mevqa au clip.mp4                      AUs of the clip's main expression (spotted first)
  mevqa au clip.mp4 --onset 12 --apex 20 AUs between two frames (0-based)
  mevqa au clip.mp4 --json
  mevqa au interview.mp4                 a video over 2 minutes: read as a stream, frame numbers the file's""",
    "evidence": """examples:
  mevqa evidence clip.mp4                the evidence block the answerer reads
  mevqa evidence clip.mp4 --json         intervals, AUs, emotions, hidden-emotion check, motion curve
  mevqa evidence clip.mp4 --out shots/   also keyframes, flow maps and the motion plot as PNG
  mevqa evidence interview.mp4 --json    a video over 2 minutes: read as a stream, one entry per interval""",
    "ask": """examples:
  mevqa ask clip.mp4 "What is the coarse expression class?"
  mevqa ask clip.mp4 "Is the lip corner puller on the left or right?" --json
  mevqa ask clip.mp4 "Which action units are shown?" --model Qwen/Qwen2.5-VL-3B-Instruct --samples 5
  mevqa ask clip.mp4 "What happened at 1.2 s?" --model ./qwen --adapter runs/lora""",
    "eval": """how clips are found:
  each question record names its clip (dataset, subject, video/filename); the clip is looked up under
  --clips with --pattern if given (several separated by "|"), otherwise with the MEGC layouts
  {dataset}/{subject}/{filename}, {subject}/{filename}, {filename}, ... (any video type added); as a
  last resort, the one file or folder anywhere under --clips named like the clip. A clip that is not
  found, or cannot be read, fails its questions: they are listed in PRED.jsonl.failed.jsonl, the
  summary line counts them, and the command exits with status 1.

examples:
  mevqa eval me_vqa_test.jsonl --clips /data/megc --out pred.jsonl
  mevqa eval q.jsonl --clips /data --pattern '{dataset}/{subject}/{filename}' --out pred.jsonl --gt gt.jsonl
  mevqa eval --score pred.jsonl --gt gt.jsonl --report report/
  mevqa eval --strs strs.csv --clips /data/long_videos --gt spots.csv""",
    "train": """examples:
  mevqa train train/configs/tiny.yaml                 a smoke run on the tiny model
  mevqa train my.yaml lora.r=16 max_steps=200         override config keys""",
    "app": """examples:
  mevqa app                                   the evidence-only backend on http://127.0.0.1:7860
  mevqa app --model Qwen/Qwen2.5-VL-3B-Instruct --load-in-4bit
  mevqa app --host 0.0.0.0 --port 8080        reachable from other machines (think before you do this)""",
    "tiny-model": """examples:
  mevqa tiny-model /tmp/tiny && mevqa ask demo "What is it?" --model /tmp/tiny""",
    "cache": """examples:
  mevqa cache info                  where the evidence cache is, its entries and size
  mevqa cache clear                 remove every entry (app uploads are never written there)""",
    "data": """examples:
  mevqa data summary me_vqa_train.jsonl me_vqa_test.jsonl
  mevqa data summary CASME2-coding.xlsx""",
    "watch": WATCH_EXAMPLES,
}


def _positive_int(text: str) -> int:
    try:
        v = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a whole number: {text!r}") from None
    if v < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {v}")
    return v


def _add_clip(p: argparse.ArgumentParser) -> None:
    p.add_argument("clip", help=f"video file ({VIDEO_TYPES}) or a folder of frames; 'demo' for the built-in clip")
    p.add_argument("--fps", type=float, default=None,
                   help="frame rate (overrides the file's; needed for frame folders of unknown datasets)")


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
    # --debug is also accepted after the command; SUPPRESS keeps a value given before it.
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--debug", action="store_true", default=argparse.SUPPRESS,
                        help="show tracebacks instead of one-line errors")
    sub = ap.add_subparsers(dest="command", metavar="COMMAND")

    def command(name: str, help: str) -> argparse.ArgumentParser:
        return sub.add_parser(name, help=help, description=help[:1].upper() + help[1:] + ".",
                              epilog=EXAMPLES.get(name), parents=[common],
                              formatter_class=argparse.RawDescriptionHelpFormatter)

    p = command("synth", "write synthetic micro-expression clips with JSON ground truth")
    p.add_argument("out_dir", help="folder to write the clips, their .json ground truth and index.json into")
    p.add_argument("--n", type=_positive_int, default=8, help="number of clips (default 8)")
    p.add_argument("--seed", type=int, default=0, help="random seed; the same seed writes the same set (default 0)")
    p.add_argument("--format", choices=("mp4", "folder"), default="mp4",
                   help="mp4 files, or frame folders named so the rate can be read from them: img1.jpg... "
                        "(CASME II naming, 200 fps) for rates >= 100, 1.jpg... (CAS(ME)^3 naming, 30 fps) "
                        "otherwise; other rates need --fps when loaded (default mp4)")
    p.add_argument("--fps", type=float, nargs="+", default=[30.0, 200.0], help="frame rates to mix (default 30 200)")
    p.add_argument("--photo", default=None, help="face photo to animate (default: the bundled public-domain portrait)")
    p.add_argument("--size", default="640x480", metavar="WxH", help="frame size WIDTHxHEIGHT, e.g. 320x240 "
                                                                     "(default 640x480)")
    p.add_argument("--demo", action="store_true", help="write only the built-in demo clip (demo.mp4 + demo.json)")

    p = command("spot", "find micro- and macro-expressions (onset, apex, offset)")
    _add_clip(p)
    p.add_argument("--json", action="store_true", help="print the JSON contract instead of the summary")
    p.add_argument("--plot", default=None, metavar="PNG",
                   help="save the motion plot (curve, threshold, numbered intervals) as this PNG file")

    p = command("au", "action units between onset and apex")
    _add_clip(p)
    p.add_argument("--onset", type=int, default=None, help="onset frame (0-based); with --apex")
    p.add_argument("--apex", type=int, default=None,
                   help="apex frame (0-based); without both, the clip's main spotted expression is used")
    p.add_argument("--json", action="store_true", help="print the JSON contract (every AU, present or not)")

    p = command("evidence", "all the evidence for a clip (intervals, AUs, emotions, hidden-emotion check)")
    _add_clip(p)
    p.add_argument("--json", action="store_true", help="print the Evidence as JSON instead of the text block")
    p.add_argument("--out", default=None, metavar="DIR",
                   help="also save keyframes, flow maps and the motion plot as PNG files here")
    p.add_argument("--recognizer", default=None, metavar="PATH",
                   help="add a trained MMNet recogniser's reading per interval (a `mevqa train` run folder)")

    p = command("ask", "ask a question about a clip")
    _add_clip(p)
    p.add_argument("question", help="the question, in quotes, e.g. \"Which action units are shown?\"")
    _add_model(p)
    p.add_argument("--samples", type=_positive_int, default=1,
                   help="self-consistency: sample N answers and vote (N >= 1; default 1)")
    p.add_argument("--json", action="store_true", help="print the answer with the evidence it used, as JSON")
    p.add_argument("--recognizer", default=None, metavar="PATH",
                   help="add a trained MMNet recogniser's reading per interval (a `mevqa train` run folder)")

    p = command("eval", "batch VQA in the MEGC2025 format, with the challenge's metrics")
    p.add_argument("questions", nargs="?",
                   help="MEGC question file (.jsonl); with --strs, an optional CSV of subject,video to spot")
    p.add_argument("--clips", help="root folder under which each record's clip is found (see below)")
    p.add_argument("--pattern", default=None,
                   help="where a clip lives under --clips, e.g. '{dataset}/{subject}/{filename}' or '{video}.mp4'")
    _add_model(p)
    p.add_argument("--out", help="predictions file (.jsonl), written as it goes; resumes if it exists")
    p.add_argument("--gt", default=None, help="ground truth (.jsonl) to score against")
    p.add_argument("--score", default=None, metavar="PRED", help="only score this prediction file against --gt")
    p.add_argument("--report", default=None, metavar="DIR", help="write report.json, report.md and plots here")
    p.add_argument("--fps", type=float, default=None, help="frame rate for frame folders of unknown datasets")
    p.add_argument("--strs", default=None, metavar="CSV", help="STRS mode: spot and recognise long videos; write CSV")

    p = command("train", "LoRA fine-tuning of Qwen-VL, or the MMNet recogniser with a `recognizer:` config (see train/configs)")
    p.add_argument("config", help="YAML config")
    p.add_argument("overrides", nargs="*", help="key=value overrides, e.g. lora.r=16 max_steps=200")

    p = command("app", "the Gradio chat app")
    _add_model(p)
    p.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1: this machine only)")
    p.add_argument("--port", type=int, default=7860, help="port to listen on (default 7860)")

    p = command("watch", "print each expression of a webcam, a stream or a file as it is spotted")
    add_watch_arguments(p)

    p = command("tiny-model", "build a tiny random Qwen-VL with a local tokenizer (tests, smoke runs)")
    p.add_argument("out_dir", help="folder to write the model into (usable as --model)")
    p.add_argument("--family", choices=("qwen2_5_vl", "qwen3_vl"), default="qwen2_5_vl",
                   help="architecture to imitate (default qwen2_5_vl)")

    p = command("data", "dataset tools")
    dsub = p.add_subparsers(dest="data_command", metavar="ACTION", help="what to do (summary)")
    d = dsub.add_parser("summary", help="counts per class, AU and subject of MEGC files or coding sheets",
                        parents=[common], epilog=EXAMPLES["data"],
                        formatter_class=argparse.RawDescriptionHelpFormatter)
    d.add_argument("files", nargs="+", help="MEGC question files (.jsonl) or coding sheets (.xlsx, .csv); not both kinds at once")

    p = command("cache", "the evidence cache ($MEVQA_CACHE or ~/.cache/mevqa/evidence: private, size-bounded)")
    csub = p.add_subparsers(dest="cache_command", metavar="ACTION", help="what to do (clear, info)")
    csub.add_parser("clear", help="remove every cached evidence entry", parents=[common],
                    epilog="examples:\n  mevqa cache clear", formatter_class=argparse.RawDescriptionHelpFormatter)
    csub.add_parser("info", help="where the cache is, its entries and size", parents=[common],
                    epilog="examples:\n  mevqa cache info", formatter_class=argparse.RawDescriptionHelpFormatter)
    return ap
