"""Qwen-VL layer: visual tokens and latency for keyframes-as-images vs Qwen video input.

    python bench/bench_vlm.py [--repeats 5] [--skip-gpu]

CPU part (always): builds the tiny random Qwen2.5-VL and Qwen3-VL (mevqa.testing.tiny_model), takes a
micro-expression-sized window of the real test video, and for each way of showing it to the model
prints the visual-token count, the prompt length, the input-building time and the per-question
latency (prefill + 8 greedy tokens), medians of ``--repeats`` runs. Visual-token counts are those of
the real checkpoints (same patch and merge sizes); the tiny model's latencies only compare the
variants with each other.

GPU part (only where ``torch.cuda.is_available()``): builds a Qwen2.5-VL-7B-sized model from its
config values (written below, nothing downloaded) with random bf16 weights, saves it, then loads it
through ``QwenVL.from_pretrained`` in bf16 and in 4-bit NF4 and prints load time, visual tokens,
prefill and per-token decode latency and peak GPU memory. Random weights do not change these costs.
"""
from __future__ import annotations

import argparse
import gc
import os
import shutil
import statistics
import tempfile
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")

import cv2  # noqa: E402
import numpy as np  # noqa: E402
import torch  # noqa: E402

from mevqa.vlm.model import QwenVL  # noqa: E402
from mevqa.testing.tiny_model import build_tiny_model  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
VIDEO_CANDIDATES = (ROOT / "tests" / "data" / "pexels_woman_emotions.mp4",
                    Path(__file__).resolve().parents[1] / "tests" / "data" / "pexels_woman_emotions.mp4")
QUESTION = "What is the coarse expression class?"
NEW_TOKENS = 8


def _median_time(fn, repeats: int, sync=lambda: None) -> float:
    """Median wall time of ``fn`` over ``repeats`` runs."""
    return _median_times(fn, repeats, sync)[0]


def _median_times(fn, repeats: int, sync=lambda: None) -> tuple[float, float]:
    """Median wall time and median CPU time of this process (all threads) over ``repeats`` runs.

    On a shared machine the wall time swings with other processes' load; the CPU time does not.
    """
    wall, cpu = [], []
    for _ in range(repeats):
        sync()
        t, c = time.perf_counter(), time.process_time()
        fn()
        sync()
        wall.append(time.perf_counter() - t)
        cpu.append(time.process_time() - c)
    return statistics.median(wall), statistics.median(cpu)


def load_window(n_frames: int = 16) -> tuple[list[np.ndarray], float]:
    """``n_frames`` consecutive RGB frames (square face-centred crop) of the real video, and its fps.

    16 frames at 24 fps is 0.67 s: about the length of a micro-expression (onset to offset <= 0.5 s)
    with a little margin, the span the spotter would hand over.
    """
    path = next((p for p in VIDEO_CANDIDATES if p.exists()), None)
    frames: list[np.ndarray] = []
    fps = 24.0
    if path is not None:
        cap = cv2.VideoCapture(str(path))
        fps = cap.get(cv2.CAP_PROP_FPS) or fps
        cap.set(cv2.CAP_PROP_POS_FRAMES, 48)
        while len(frames) < n_frames:
            ok, bgr = cap.read()
            if not ok:
                break
            h, w = bgr.shape[:2]
            side = min(h, w)
            x0 = (w - side) // 2
            frames.append(np.ascontiguousarray(bgr[:side, x0:x0 + side, ::-1]))
        cap.release()
    if len(frames) < n_frames:  # no video here: the packaged face photo, slightly shifted per frame
        img = cv2.imread(str(ROOT / "mevqa" / "assets" / "astronaut.png"))[:, :, ::-1]
        frames = [np.ascontiguousarray(np.roll(img, i, axis=0)) for i in range(n_frames)]
    return frames, float(fps)


def variants(frames: list[np.ndarray], fps: float) -> dict[str, list[dict]]:
    """The ways of showing one spotted interval to the model, as chat messages."""
    onset, apex, offset = frames[0], frames[len(frames) // 2], frames[-1]
    # stand-in for the onset->apex flow map: an image of the same size costs the same tokens
    flow_like = np.ascontiguousarray(np.clip(np.abs(apex.astype(np.int16) - onset.astype(np.int16)) * 4, 0, 255)
                                     .astype(np.uint8))

    def user(items):
        return [{"role": "user", "content": items + [{"type": "text", "text": QUESTION}]}]

    def video(clip, rate):
        return {"type": "video", "video": np.stack(clip), "fps": rate}

    step = max(1, len(frames) // 8)
    return {
        "3 keyframes as images": user([{"type": "image", "image": f} for f in (onset, apex, offset)]),
        "3 keyframes + flow map": user([{"type": "image", "image": f} for f in (onset, apex, offset, flow_like)]),
        "video of 3 keyframes": user([video([onset, apex, offset], 2.0)]),
        "video, 8 frames of window": user([video(frames[::step][:8], fps / step)]),
        f"video, all {len(frames)} frames": user([video(frames, fps)]),
    }


def bench_cpu(repeats: int) -> Path:
    frames, fps = load_window()
    tmp = Path(tempfile.mkdtemp(prefix="mevqa_bench_vlm_"))
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    print(f"CPU, {torch.get_num_threads()} threads, {os.cpu_count()} cores, load average {load:.1f}; window of "
          f"{len(frames)} frames {frames[0].shape[1]}x{frames[0].shape[0]} at {fps:.0f} fps; max_pixels 224*224; "
          f"medians of {repeats}; 'cpu' columns are process CPU time (stable under load), others wall time")
    for family in ("qwen2_5_vl", "qwen3_vl"):
        t = time.perf_counter()
        path = build_tiny_model(tmp / family, family=family)
        t_build = time.perf_counter() - t
        t = time.perf_counter()
        vlm = QwenVL.from_pretrained(str(path), device="cpu")
        t_load = time.perf_counter() - t
        print(f"\n{vlm.describe()}: tiny model built in {t_build:.2f} s, loaded in {t_load:.2f} s")
        print(f"  {'input':28s} {'visual tok':>10s} {'prompt tok':>10s} {'build ms':>9s} {'prefill ms':>10s} "
              f"{'question ms':>11s} {'question cpu ms':>15s}")
        for name, messages in variants(frames, fps).items():
            enc = vlm.encode(messages)
            n_vis, n_all = vlm.n_visual_tokens(enc), int(enc["input_ids"].shape[1])
            t_enc = _median_time(lambda: vlm.encode(messages), repeats)

            @torch.inference_mode()
            def prefill():
                vlm.model(**enc)

            @torch.inference_mode()
            def question():
                vlm.model.generate(**vlm.encode(messages), max_new_tokens=NEW_TOKENS, min_new_tokens=NEW_TOKENS,
                                   do_sample=False, pad_token_id=vlm.pad_id, eos_token_id=vlm.stop_ids)

            t_pre = _median_time(prefill, repeats)
            t_q, c_q = _median_times(question, repeats)
            print(f"  {name:28s} {n_vis:10d} {n_all:10d} {t_enc * 1e3:9.1f} {t_pre * 1e3:10.1f} {t_q * 1e3:11.1f} "
                  f"{c_q * 1e3:15.1f}")
        del vlm
    return tmp


# -- GPU: Qwen2.5-VL-7B architecture with random weights -----------------------------------------

def qwen2_5_vl_7b_config(token_ids: dict[str, int]):
    """Qwen2.5-VL-7B-Instruct's architecture (values from its config.json), special ids of our tokenizer."""
    from transformers import Qwen2_5_VLConfig

    text = dict(
        vocab_size=152064, hidden_size=3584, intermediate_size=18944, num_hidden_layers=28,
        num_attention_heads=28, num_key_value_heads=4, hidden_act="silu", max_position_embeddings=128000,
        rms_norm_eps=1e-6, use_sliding_window=False, sliding_window=32768, max_window_layers=28,
        rope_parameters={"rope_type": "default", "rope_theta": 1_000_000.0, "mrope_section": [16, 24, 24]},
        bos_token_id=None, eos_token_id=token_ids["<|im_end|>"], pad_token_id=token_ids["<|endoftext|>"],
        tie_word_embeddings=False,
    )
    vision = dict(
        depth=32, hidden_size=1280, intermediate_size=3420, num_heads=16, hidden_act="silu", in_channels=3,
        out_hidden_size=3584, patch_size=14, spatial_merge_size=2, temporal_patch_size=2, window_size=112,
        fullatt_block_indexes=[7, 15, 23, 31], tokens_per_second=2,
    )
    return Qwen2_5_VLConfig(
        text_config=text, vision_config=vision, tie_word_embeddings=False,
        image_token_id=token_ids["<|image_pad|>"], video_token_id=token_ids["<|video_pad|>"],
        vision_start_token_id=token_ids["<|vision_start|>"], vision_end_token_id=token_ids["<|vision_end|>"],
    )


def bench_gpu(tiny_root: Path, repeats: int) -> None:
    from transformers import AutoTokenizer, GenerationConfig, Qwen2_5_VLForConditionalGeneration

    tiny = tiny_root / "qwen2_5_vl"
    tok = AutoTokenizer.from_pretrained(tiny)
    ids = {t: tok.convert_tokens_to_ids(t) for t in
           ("<|im_end|>", "<|endoftext|>", "<|image_pad|>", "<|video_pad|>", "<|vision_start|>", "<|vision_end|>")}
    out = Path(tempfile.mkdtemp(prefix="mevqa_qwen7b_"))
    sync = torch.cuda.synchronize
    print(f"\nGPU: {torch.cuda.get_device_name(0)}; Qwen2.5-VL-7B architecture, random weights")

    # 1. random bf16 weights straight on the GPU, then saved like a checkpoint (so loading is real)
    t = time.perf_counter()
    with torch.device("cuda"):
        model = Qwen2_5_VLForConditionalGeneration._from_config(qwen2_5_vl_7b_config(ids), dtype=torch.bfloat16)
    sync()
    n_params = sum(p.numel() for p in model.parameters())
    print(f"  random init: {n_params / 1e9:.2f} B parameters in {time.perf_counter() - t:.1f} s")
    model.generation_config = GenerationConfig(eos_token_id=[ids["<|im_end|>"], ids["<|endoftext|>"]],
                                               pad_token_id=ids["<|endoftext|>"], do_sample=False)
    t = time.perf_counter()
    model.save_pretrained(out)
    print(f"  saved {sum(f.stat().st_size for f in out.glob('*.safetensors')) / 2**30:.1f} GiB "
          f"in {time.perf_counter() - t:.1f} s")
    del model
    gc.collect()
    torch.cuda.empty_cache()
    for name in ("tokenizer.json", "tokenizer_config.json", "chat_template.jinja", "preprocessor_config.json",
                 "video_preprocessor_config.json"):
        if (tiny / name).exists():
            shutil.copy(tiny / name, out / name)

    frames, fps = load_window()
    cases = variants(frames, fps)
    print(f"  {'mode':6s} {'load s':>7s} {'input':28s} {'visual tok':>10s} {'prefill ms':>10s} "
          f"{'decode ms/tok':>13s} {'peak GiB':>9s}")
    for mode in ("bf16", "4-bit"):
        torch.cuda.reset_peak_memory_stats()
        t = time.perf_counter()
        vlm = QwenVL.from_pretrained(str(out), device="cuda", load_in_4bit=(mode == "4-bit"))
        sync()
        t_load = time.perf_counter() - t
        for name in ("3 keyframes as images", "3 keyframes + flow map", "video, 8 frames of window",
                     f"video, all {len(frames)} frames"):
            enc = vlm.encode(cases[name])

            @torch.inference_mode()
            def gen(n):
                vlm.model.generate(**enc, max_new_tokens=n, min_new_tokens=n, do_sample=False,
                                   pad_token_id=vlm.pad_id, eos_token_id=vlm.stop_ids)

            gen(2)  # warm-up (kernels, allocator)
            t_pre = _median_time(lambda: gen(1), repeats, sync)
            t_33 = _median_time(lambda: gen(33), max(3, repeats // 3), sync)
            peak = torch.cuda.max_memory_allocated() / 2**30
            print(f"  {mode:6s} {t_load:7.1f} {name:28s} {vlm.n_visual_tokens(enc):10d} {t_pre * 1e3:10.1f} "
                  f"{(t_33 - t_pre) / 32 * 1e3:13.2f} {peak:9.1f}")
        del vlm
        gc.collect()
        torch.cuda.empty_cache()
    shutil.rmtree(out, ignore_errors=True)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--skip-gpu", action="store_true", help="only the CPU part")
    args = ap.parse_args()
    tiny_root = bench_cpu(args.repeats)
    if args.skip_gpu:
        print("\nGPU part skipped (--skip-gpu).")
    elif not torch.cuda.is_available():
        print("\nGPU part skipped: no CUDA GPU here (it builds a random Qwen2.5-VL-7B and times bf16 and 4-bit).")
    else:
        bench_gpu(tiny_root, args.repeats)
    shutil.rmtree(tiny_root, ignore_errors=True)


if __name__ == "__main__":
    main()
