"""Training cost: step time, samples per second and peak memory of LoRA and QLoRA steps.

    python bench/bench_train.py            # GPU: a real-size Qwen2.5-VL-7B (random weights); CPU: the tiny model
    python bench/bench_train.py --steps 8 --keep /tmp/qwen7b-random   # keep the 16 GB random checkpoint

On a GPU the script writes a Qwen2.5-VL-7B with random weights (architecture from the public config:
28 layers, hidden 3584, 32-block ViT; no download), then runs :func:`mevqa.train.trainer.train` on it, once
as LoRA (bf16 base) and once as QLoRA (4-bit NF4 base), each in its own process so peak memory is
measured cleanly, on a synthetic CASME II-style set with the default prompt: 3 keyframes + 1 flow
map at 224x224 (64 visual tokens each) and the evidence text, batch 1, gradient checkpointing, LoRA
r 16 on the language model's attention and MLP. It prints step time (first two steps dropped as
warm-up), samples per second and peak GPU memory beside the the field notes in ARCHITECTURE.md reference figures (7B: LoRA
about 16 GB, QLoRA 6-10 GB plus vision activations).

Without a GPU it measures the tiny random model on CPU (the plumbing, not the cost of a real model)
and says that the GPU part was skipped; it still builds the 7B architecture on the meta device and
prints its parameter count, which checks the config written here.
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("GLOG_minloglevel", "2")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

REFERENCE = {"lora": "about 16 GB (the field notes in ARCHITECTURE.md: 7B LoRA)", "qlora": "6-10 GB plus vision activations (the field notes in ARCHITECTURE.md: 7B QLoRA)"}


def qwen25_vl_7b_config(token_ids: dict[str, int]):
    """Qwen2.5-VL-7B-Instruct's architecture (public config.json), with the given special-token ids."""
    from transformers import Qwen2_5_VLConfig

    text = dict(vocab_size=152064, hidden_size=3584, intermediate_size=18944, num_hidden_layers=28,
                num_attention_heads=28, num_key_value_heads=4, max_position_embeddings=128000, rms_norm_eps=1e-6,
                hidden_act="silu", sliding_window=32768, use_sliding_window=False, tie_word_embeddings=False,
                rope_parameters={"rope_type": "default", "rope_theta": 1_000_000.0, "mrope_section": [16, 24, 24]},
                bos_token_id=None, eos_token_id=token_ids["<|im_end|>"], pad_token_id=token_ids["<|endoftext|>"])
    vision = dict(depth=32, hidden_size=1280, intermediate_size=3420, num_heads=16, out_hidden_size=3584,
                  patch_size=14, spatial_merge_size=2, temporal_patch_size=2, window_size=112,
                  fullatt_block_indexes=[7, 15, 23, 31], tokens_per_second=2, hidden_act="silu", in_channels=3)
    return Qwen2_5_VLConfig(text_config=text, vision_config=vision, tie_word_embeddings=False,
                            image_token_id=token_ids["<|image_pad|>"], video_token_id=token_ids["<|video_pad|>"],
                            vision_start_token_id=token_ids["<|vision_start|>"],
                            vision_end_token_id=token_ids["<|vision_end|>"])


def _token_ids(folder: Path) -> dict[str, int]:
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(folder)
    names = ("<|im_end|>", "<|endoftext|>", "<|image_pad|>", "<|video_pad|>", "<|vision_start|>", "<|vision_end|>")
    return {n: tok.convert_tokens_to_ids(n) for n in names}


def count_7b_params() -> int:
    """Parameters of the 7B architecture, built on the meta device (no memory)."""
    import torch
    from transformers import Qwen2_5_VLForConditionalGeneration

    ids = {"<|im_end|>": 151645, "<|endoftext|>": 151643, "<|image_pad|>": 151655, "<|video_pad|>": 151656,
           "<|vision_start|>": 151652, "<|vision_end|>": 151653}
    with torch.device("meta"):
        model = Qwen2_5_VLForConditionalGeneration(qwen25_vl_7b_config(ids))
    return sum(p.numel() for p in model.parameters())


def write_random_7b(out: Path) -> Path:
    """A loadable Qwen2.5-VL-7B folder with random bf16 weights and the tiny model's tokenizer/processor."""
    import torch
    from transformers import Qwen2_5_VLForConditionalGeneration

    from mevqa.testing.tiny_model import build_tiny_model

    if (out / "config.json").is_file() and (out / "bench_random_7b.json").is_file():
        return out
    # 1. tokenizer, chat template and processor configs: the tiny model's (ids stay below the 152k vocab)
    build_tiny_model(out)
    for f in out.glob("model*.safetensors*"):
        f.unlink()
    # 2. the real-size architecture with random weights, made on the GPU in bf16, saved beside them
    cfg = qwen25_vl_7b_config(_token_ids(out))
    with torch.device("cuda"):
        model = Qwen2_5_VLForConditionalGeneration._from_config(cfg, dtype=torch.bfloat16)
    model.save_pretrained(out, max_shard_size="4GB")
    del model
    torch.cuda.empty_cache()
    (out / "bench_random_7b.json").write_text(json.dumps({"random_weights": True}) + "\n")
    return out


def make_data(root: Path) -> Path:
    from mevqa.testing.synthset import make_synthetic_dataset

    if not (root / "CASME2-coding-20140508.xlsx").is_file():
        make_synthetic_dataset(root, layout="casme2", n_subjects=2, clips_per_subject=3, seed=0)
    return root


def run_mode(mode: str, model: str, data: Path, run_dir: Path, steps: int) -> dict:
    """One training run in this process; returns the measured figures."""
    import torch

    from mevqa.train.trainer import DataConfig, LoRAConfig, SplitConfig, TrainConfig, train

    tiny = model == "tiny"
    cfg = TrainConfig(
        model=model, run_dir=str(run_dir),
        data=DataConfig(sheet=[str(data / "CASME2-coding-20140508.xlsx")], frames_root=[str(data)]),
        split=SplitConfig(test_fraction=0.0),
        lora=LoRAConfig(r=8 if tiny else 16, alpha=16 if tiny else 32, dropout=0.05,
                        modules_to_save=["lm_head"] if tiny else []),
        load_in_4bit=mode == "qlora", lr=1e-4, warmup_steps=1, max_steps=steps, batch_size=1, grad_accum=1,
        gradient_checkpointing=not tiny, balance="none", save_every=10_000, eval_at_end=False,
        device="cpu" if tiny else "auto")
    if torch.cuda.is_available() and not tiny:
        torch.cuda.reset_peak_memory_stats()
    t0 = time.time()
    result = train(cfg, progress=False)
    wall = time.time() - t0
    rows = [json.loads(line) for line in (run_dir / "log.jsonl").read_text().splitlines() if line.strip()]
    times = [r["seconds"] for r in rows]
    timed = times[2:] if len(times) > 3 else times[1:] or times
    step = sum(timed) / len(timed)
    out = {"mode": mode, "model": "tiny (CPU)" if tiny else "Qwen2.5-VL-7B architecture, random weights",
           "steps": result.steps, "step_seconds": round(step, 4), "samples_per_second": round(1.0 / step, 3),
           "trainable_params": result.trainable_params, "loss_first": result.first_loss, "loss_last": result.last_loss,
           "wall_seconds_incl_load": round(wall, 1)}
    if torch.cuda.is_available() and not tiny:
        out["peak_gpu_gb"] = round(torch.cuda.max_memory_allocated() / 2**30, 2)
        out["peak_gpu_reserved_gb"] = round(torch.cuda.max_memory_reserved() / 2**30, 2)
        out["gpu"] = torch.cuda.get_device_name(0)
    return out


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--steps", type=int, default=6, help="optimizer steps per mode (default 6)")
    ap.add_argument("--keep", default=None, metavar="DIR", help="where to write (and keep) the random 7B checkpoint")
    ap.add_argument("--mode", choices=("lora", "qlora"), default=None, help=argparse.SUPPRESS)  # child process
    ap.add_argument("--model", default=None, help=argparse.SUPPRESS)
    ap.add_argument("--work", default=None, help=argparse.SUPPRESS)
    a = ap.parse_args()
    import torch

    # child: one mode, one JSON line
    if a.mode:
        work = Path(a.work)
        res = run_mode(a.mode, a.model, make_data(work / "data"), work / f"run-{a.mode}", a.steps)
        print("RESULT " + json.dumps(res), flush=True)
        return 0

    work = Path(tempfile.mkdtemp(prefix="mevqa-bench-train-"))
    os.environ.setdefault("MEVQA_CACHE", str(work / "cache"))
    try:
        if not torch.cuda.is_available():
            print(f"7B architecture check (meta device): {count_7b_params() / 1e9:.2f} B parameters")
            res = run_mode("lora", "tiny", make_data(work / "data"), work / "run-tiny", max(a.steps, 4))
            print(f"CPU, tiny random Qwen2.5-VL (hidden 64, 2 layers), LoRA r 8 + lm_head, batch 1: "
                  f"{res['step_seconds'] * 1000:.0f} ms/step, {res['samples_per_second']:.2f} samples/s "
                  f"(loss {res['loss_first']:.3f} -> {res['loss_last']:.3f} over {res['steps']} steps)")
            print("GPU part skipped: no CUDA device. On a GPU this bench measures LoRA and QLoRA on a real-size "
                  "Qwen2.5-VL-7B (reference: LoRA about 16 GB, QLoRA 6-10 GB).")
            return 0
        # 1. data and the random 7B checkpoint, once
        make_data(work / "data")
        model_dir = write_random_7b(Path(a.keep) if a.keep else work / "qwen2_5_vl_7b_random")
        print(f"random Qwen2.5-VL-7B at {model_dir} ({count_7b_params() / 1e9:.2f} B parameters)", flush=True)
        # 2. each mode in its own process: clean peak-memory figures, no state shared
        results = []
        for mode in ("lora", "qlora"):
            cmd = [sys.executable, __file__, "--mode", mode, "--model", str(model_dir), "--work", str(work),
                   "--steps", str(a.steps)]
            proc = subprocess.run(cmd, capture_output=True, text=True)
            line = next((x for x in proc.stdout.splitlines() if x.startswith("RESULT ")), None)
            if proc.returncode != 0 or line is None:
                tail = (proc.stderr or proc.stdout).strip().splitlines()[-5:]
                print(f"{mode}: failed ({proc.returncode}): " + " | ".join(tail))
                continue
            results.append(json.loads(line[len("RESULT "):]))
        # 3. the table, beside the reference figures
        print(f"\n{results[0]['gpu'] if results else 'GPU'}; batch 1, gradient checkpointing, LoRA r 16 (attention + MLP), "
              "prompt = 3 keyframes + 1 flow map at 224x224 + evidence text")
        print(f"{'mode':6s} {'step s':>8s} {'samples/s':>10s} {'peak GB':>8s} {'reserved':>9s}  reference")
        for r in results:
            print(f"{r['mode']:6s} {r['step_seconds']:8.3f} {r['samples_per_second']:10.2f} {r['peak_gpu_gb']:8.2f} "
                  f"{r['peak_gpu_reserved_gb']:9.2f}  {REFERENCE[r['mode']]}")
        print(json.dumps(results, indent=1))
        return 0 if len(results) == 2 else 1
    finally:
        if not a.keep:
            shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
