#!/usr/bin/env python
"""One prepared check of the GPU paths on one GPU (bench/gpu_check.sh runs it; --dry-run: CPU, tiny models).

For Qwen2.5-VL-3B, Qwen2.5-VL-7B and Qwen3-VL-4B at their published sizes (bench/configs/*.json) with
random weights (the GPU box reaches no hub), in bf16:

1. ``mevqa ask`` and ``mevqa eval`` on 3 synthetic clips, through the command line's entry (in this
   process) and the standard processor (AutoProcessor wherever torchvision imports); wall seconds per
   command, model load included, and the peak GPU memory of the two;
2. generation speed: one keyframes + flow-map prompt, 64 new tokens forced (random weights would stop
   anywhere), tokens/s over the whole ``generate`` call (prefill included) and peak GPU memory;
3. 20 LoRA and 20 QLoRA steps of the 7B with the shipped configs' settings (train/configs/
   qwen2_5_vl_7b_{lora,qlora}.yaml: batch 1 x grad_accum 8, gradient checkpointing, r 16), on a
   synthetic CASME II-style set, end-of-run held-out evaluation included; s/step and peak memory.

It prints one table (model, stage, s/step or s, peak GiB, tokens/s) and writes OUT/gpu_check.json.
The dry run does the same on the CPU with the tiny models, 2 steps, grad_accum 1 and bf16 on the CPU
(``cpu_bf16``: the GPU's precision path), in well under a minute.
"""
from __future__ import annotations

import argparse
import gc
import json
import os
import shutil
import sys
import time
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
MODELS = {"qwen2_5_vl_3b": "qwen2_5_vl", "qwen2_5_vl_7b": "qwen2_5_vl", "qwen3_vl_4b": "qwen3_vl"}
QUESTION = "What is the coarse expression class?"
GIB = 1024 ** 3


def _peak_reset() -> None:
    gc.collect()
    if torch.cuda.is_available():
        torch.cuda.empty_cache()
        torch.cuda.reset_peak_memory_stats()


def _peak() -> float | None:
    return torch.cuda.max_memory_allocated() / GIB if torch.cuda.is_available() else None


def build_models(out: Path, *, dry: bool) -> dict[str, Path]:
    from mevqa.testing.tiny_model import build_random_model, build_tiny_model
    from mevqa.vlm.config import TINY_MARKER

    folders = {}
    for name, family in MODELS.items():
        folder = out / "models" / (f"tiny-{family}" if dry else name)
        if not (folder / TINY_MARKER).is_file():  # the marker is written last
            t0 = time.time()
            if dry:
                build_tiny_model(folder, family=family)
            else:
                build_random_model(folder, ROOT / "bench" / "configs" / f"{name}.json", device="cuda")
            print(f"built {folder} in {time.time() - t0:.1f} s", flush=True)
        folders[name] = folder
    return folders


def _mevqa(*args: str) -> float:
    """Run a ``mevqa`` command in this process (the command line's own entry, without a new interpreter)."""
    from mevqa.apps.cli import main as mevqa_main

    t0 = time.time()
    rc = mevqa_main(list(args))
    if rc != 0:
        raise SystemExit(f"mevqa {' '.join(args[:2])} failed (rc {rc})")
    return time.time() - t0


def make_clips(out: Path) -> tuple[Path, list[str]]:
    clips = out / "clips"
    if not (clips / "index.json").is_file():
        _mevqa("synth", str(clips), "--n", "3", "--format", "mp4")
    names = sorted(p.stem for p in clips.glob("*.mp4"))[:3]
    questions = out / "questions.jsonl"
    questions.write_text("".join(json.dumps({"video_id": f"check_{n}", "video": n, "question": QUESTION, "answer": ""})
                                 + "\n" for n in names), encoding="utf-8")
    return clips, names


def generation_speed(folder: Path, clip: Path, *, dry: bool, new_tokens: int) -> dict:
    from transformers import GenerationConfig

    from mevqa.answer.prompt import build_messages
    from mevqa.evidence.builder import compute_evidence
    from mevqa.io.video import Clip
    from mevqa.vlm.model import QwenVL

    _peak_reset()
    vlm = QwenVL.from_pretrained(str(folder), device="cpu" if dry else "cuda", dtype="bf16")
    messages = build_messages(compute_evidence(Clip.load(clip)), QUESTION)
    inputs = vlm.encode(messages)
    gen = GenerationConfig(max_new_tokens=new_tokens, min_new_tokens=new_tokens, do_sample=False,
                           eos_token_id=vlm.stop_ids, pad_token_id=vlm.pad_id)
    with torch.inference_mode():
        vlm.model.generate(**inputs, generation_config=GenerationConfig(max_new_tokens=2, do_sample=False,
                                                                        pad_token_id=vlm.pad_id))  # warm-up
        if torch.cuda.is_available():
            torch.cuda.synchronize()
        t0 = time.time()
        out = vlm.model.generate(**inputs, generation_config=gen)
        if torch.cuda.is_available():
            torch.cuda.synchronize()
        seconds = time.time() - t0
    n = int(out.shape[1] - inputs["input_ids"].shape[1])
    row = {"prompt_tokens": int(inputs["input_ids"].shape[1]), "visual_tokens": vlm.n_visual_tokens(inputs),
           "new_tokens": n, "tokens_per_s": n / seconds, "peak_gib": _peak(), "backend": vlm.processor.backend,
           "dtype": str(vlm.dtype)}
    del vlm, out
    _peak_reset()
    return row


def synthetic_set(out: Path) -> Path:
    """One synthetic CASME II-style set (3 subjects x 1 clip) shared by the LoRA and QLoRA runs."""
    from mevqa.testing.synthset import make_synthetic_dataset, sheet_path

    root = out / "synthetic-casme2"
    if not (root / "synthetic_ground_truth.json").is_file():  # written last
        make_synthetic_dataset(root, layout="casme2", n_subjects=3, clips_per_subject=1, seed=0)
    return sheet_path(root, "casme2")


def train_steps(folder: Path, mode: str, out: Path, sheet: Path, *, dry: bool, steps: int) -> dict:
    from mevqa.train.config import load_config
    from mevqa.train.loop import train

    run_dir = out / f"train-{mode}"
    shutil.rmtree(run_dir, ignore_errors=True)
    overrides = [f"model={folder}", f"run_dir={run_dir}", f"data.sheet=[{sheet}]", f"data.frames_root=[{sheet.parent}]",
                 "data.megc_files=[]", "split.test_subjects=[casme2/sub03]", f"max_steps={steps}",
                 f"save_every={steps}", "eval_at_end=true", "resume=false"]
    if dry:  # the tiny model on the CPU, in bf16 like the GPU; fewer micro-batches and questions
        overrides += ["device=cpu", "cpu_bf16=true", "grad_accum=1", "gradient_checkpointing=false",
                      "data.question_kinds=[coarse,fine]"]
    cfg = load_config(ROOT / "train" / "configs" / f"qwen2_5_vl_7b_{mode}.yaml", overrides)
    _peak_reset()
    result = train(cfg, progress=False)
    row = {"steps": result.steps, "s_per_step": result.step_seconds, "peak_gib": _peak(),
           "loss_first": result.first_loss, "loss_last": result.last_loss, "grad_accum": cfg.grad_accum,
           "eval_questions": result.metrics.get("adapter", {}).get("n"),
           "card": (result.adapter_dir / "README.md").is_file(), "seconds": result.seconds}
    _peak_reset()
    return row


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--dry-run", action="store_true", help="CPU, tiny models, 2 steps: checks the script itself")
    p.add_argument("--out", default="runs/gpu_check", help="working folder (models, clips, runs, gpu_check.json)")
    p.add_argument("--steps", type=int, default=None, help="training steps per mode (default 20; dry run 2)")
    a = p.parse_args(argv)
    dry = a.dry_run
    if not dry and not torch.cuda.is_available():
        raise SystemExit("gpu_check: no CUDA GPU visible (use --dry-run to check the script on a CPU)")
    steps = a.steps or (2 if dry else 20)
    out = Path(a.out).resolve()
    out.mkdir(parents=True, exist_ok=True)
    os.environ.setdefault("MEVQA_CACHE", str(out / "cache"))
    t_all = time.time()
    print(f"torch {torch.__version__}, cuda {torch.cuda.is_available()}"
          + (f" ({torch.cuda.get_device_name()})" if torch.cuda.is_available() else ""), flush=True)
    folders = build_models(out, dry=dry)
    clips, names = make_clips(out)
    rows = []
    for name, folder in folders.items():
        _peak_reset()
        t_ask = _mevqa("ask", str(clips / f"{names[0]}.mp4"), QUESTION, "--model", str(folder))
        (out / f"eval-{name}.jsonl").unlink(missing_ok=True)  # eval resumes from an existing file
        t_eval = _mevqa("eval", str(out / "questions.jsonl"), "--clips", str(clips), "--pattern", "{video}.mp4",
                        "--model", str(folder), "--out", str(out / f"eval-{name}.jsonl"))
        peak_commands = _peak()
        gen = generation_speed(folder, clips / f"{names[0]}.mp4", dry=dry, new_tokens=8 if dry else 64)
        rows.append({"model": name, "stage": "ask / eval (3 clips) / generate", "seconds": [t_ask, t_eval],
                     "peak_gib_ask_eval": peak_commands, **gen})
        print(json.dumps(rows[-1]), flush=True)
    sheet = synthetic_set(out)
    for mode in ("lora", "qlora"):
        rows.append({"model": "qwen2_5_vl_7b", "stage": mode,
                     **train_steps(folders["qwen2_5_vl_7b"], mode, out, sheet, dry=dry, steps=steps)})
        print(json.dumps(rows[-1]), flush=True)

    print(f"\n| model | stage | s/step (train) or s (ask, eval) | peak GiB | tokens/s |\n|---|---|---|---|---|")
    for r in rows:
        peak = "n/a (CPU)" if r["peak_gib"] is None else f"{r['peak_gib']:.1f}"
        if "s_per_step" in r:
            print(f"| {r['model']} | {r['stage']} x{r['steps']} (accum {r['grad_accum']}, eval {r['eval_questions']} q) "
                  f"| {r['s_per_step']:.2f} | {peak} | |")
        else:
            if r["peak_gib_ask_eval"] is not None:
                peak = f"{r['peak_gib_ask_eval']:.1f} (ask, eval), {peak} (generate)"
            print(f"| {r['model']} | ask, eval | {r['seconds'][0]:.1f}, {r['seconds'][1]:.1f} | {peak} "
                  f"| {r['tokens_per_s']:.1f} ({r['new_tokens']} tokens, {r['prompt_tokens']}-token prompt, "
                  f"{r['backend']} processor) |")
    (out / "gpu_check.json").write_text(json.dumps({"dry_run": dry, "rows": rows}, indent=1) + "\n", encoding="utf-8")
    print(f"\ntotal {time.time() - t_all:.0f} s; {out / 'gpu_check.json'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
