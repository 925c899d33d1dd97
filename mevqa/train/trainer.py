"""LoRA / QLoRA fine-tuning of Qwen-VL on micro-expression VQA, subject-independent, resumable.

``mevqa train CONFIG.yaml [key=value ...]`` (or ``python train/train.py ...``, or the same under
``accelerate launch`` for several GPUs) runs :func:`train` with a :class:`TrainConfig`:

1. **Data.** Coding sheets (CASME II, SAMM, ...) joined to their frame folders, or a synthetic set
   (:mod:`mevqa.testing.synthset`); questions from the MEGC2025 files or generated in the MEGC templates;
   Evidence per clip on its coded interval, cached on disk (:mod:`mevqa.train.dataset`).
2. **Split.** Held-out subjects, a LOSO fold, or a seeded fraction of subjects; checked with
   :func:`~mevqa.io.splits.assert_subject_disjoint` before anything trains, and refused otherwise.
3. **Model.** :class:`~mevqa.vlm.model.QwenVL` (optionally 4-bit NF4 for QLoRA, with
   ``prepare_model_for_kbit_training``), PEFT LoRA on the language model's attention and MLP
   projections; the vision tower stays frozen unless ``lora.vision``.
4. **Loop.** Labels only on the answer and its ``<|im_end|>`` (from ``encode_for_training``); loss
   computed on the answer positions only (``logits_to_keep``), so a 150k vocabulary is never
   projected over the prompt; the frozen vision tower runs once per clip (:class:`VisionCache`);
   class balance by weighted sampling or loss weights; gradient accumulation (accelerate's
   ``accumulate``); transformers' LR schedules; tqdm progress; a JSONL loss log; a checkpoint every
   ``save_every`` steps (accelerate's ``save_state``: adapter, trainable weights, optimizer,
   scheduler, RNG states; plus step and sample-stream position).
5. **Resume.** A run restarted with the same config continues from its latest checkpoint and ends
   where an uninterrupted run ends (bit for bit on CPU; on a GPU up to its nondeterministic kernels):
   the order samples are drawn in is a pure function of the seed and the step (:class:`SampleStream`),
   so the sampler's position is the step itself. A changed config is refused rather than mixed in.
6. **Result.** The adapter in PEFT format (``save_pretrained``) with a model card (README.md: data,
   split and held-out subjects, settings, metrics), usable as ``mevqa ask CLIP Q --model M --adapter
   DIR``; then evaluation on the held-out subjects through the same agent (coarse/fine UF1 and UAR,
   BLEU, ROUGE-1), beside the evidence-only backend on the same questions.

Multi-GPU: ``accelerate launch train/train.py CONFIG.yaml`` (or ``torchrun --nproc_per_node N -m
mevqa.apps.cli train CONFIG.yaml``) runs data-parallel with no code change: each process takes its own
slice of every step's samples (``batch_size`` is per process); evidence and the held-out evaluation
are computed in shards, each process its part (cached on disk, then gathered); the main process
writes the log, the checkpoints (each process adds its RNG state) and the card.

Where things live: :mod:`~mevqa.train.config` (settings, YAML), :mod:`~mevqa.train.data` (clips, split,
evidence), :mod:`~mevqa.train.dataset` (encoded samples), :mod:`~mevqa.train.sampling`,
:mod:`~mevqa.train.loss`, :mod:`~mevqa.train.vision_cache`, :mod:`~mevqa.train.lora` (LoRA/QLoRA,
schedule), :mod:`~mevqa.train.checkpoint`, :mod:`~mevqa.train.loop` (the run),
:mod:`~mevqa.train.evaluation`, :mod:`~mevqa.train.card`; this module is the command-line entry.
"""
from __future__ import annotations

import json
import os
from importlib import import_module
from pathlib import Path
from typing import Sequence

from mevqa.train.config import ConfigError, DataConfig, LoRAConfig, SplitConfig, TrainConfig, load_config
from mevqa.train.recognizer_config import is_recognizer_config

# Names from the training stack, imported on first use: torch, transformers' schedules and PEFT load
# bitsandbytes, which is slow and logs to stderr, and `mevqa train` checks the config before that.
_LAZY = {"TrainResult": "loop", "train": "loop", "latest_checkpoint": "checkpoint", "answer_loss": "loss",
         "SampleStream": "sampling", "VisionCache": "vision_cache", "split_clips": "data", "fmt": "card"}

__all__ = ["ConfigError", "LoRAConfig", "DataConfig", "SplitConfig", "TrainConfig", "load_config", "main_train",
           *_LAZY]


def __getattr__(name: str):
    if name in _LAZY:
        return getattr(import_module(f"mevqa.train.{_LAZY[name]}"), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def main_train(config_path: str | os.PathLike, overrides: Sequence[str] = ()):
    """``mevqa train CONFIG.yaml [key=value ...]``: load, train, print where things are."""
    if config_path is not None and is_recognizer_config(config_path):  # a `recognizer:` config trains MMNet
        return import_module("mevqa.train.recognizer").main_train_recognizer(config_path, overrides)
    cfg = load_config(config_path, overrides)
    from accelerate.state import PartialState  # the training stack, once the config is known to be valid

    from mevqa.train.card import fmt
    from mevqa.train.loop import train

    result = train(cfg)
    if PartialState().is_main_process:
        print(f"trained {result.steps} steps in {result.seconds:.1f} s ({result.step_seconds:.2f} s/step); "
              f"loss {fmt(result.first_loss)} -> {fmt(result.last_loss)}"
              + (f" (resumed at step {result.resumed_from})" if result.resumed_from else ""))
        print(f"split: {result.split}")
        if result.metrics:
            a, b = result.metrics["adapter"], result.metrics["baseline"]
            print(f"held-out ({a['n']} questions): coarse UF1 {fmt(a['coarse_uf1'])} UAR {fmt(a['coarse_uar'])}, "
                  f"fine UF1 {fmt(a['fine_uf1'])} UAR {fmt(a['fine_uar'])}; evidence-only: coarse UF1 "
                  f"{fmt(b['coarse_uf1'])}, fine UF1 {fmt(b['fine_uf1'])}")
        # The base model as the adapter records it (the tiny test model is a folder made in the run dir).
        peft_cfg = Path(result.adapter_dir) / "adapter_config.json"
        base = (json.loads(peft_cfg.read_text()).get("base_model_name_or_path") if peft_cfg.exists() else None) or cfg.model
        print(f"adapter: {result.adapter_dir}  (mevqa ask CLIP QUESTION --model {base} --adapter {result.adapter_dir})")
    return result
