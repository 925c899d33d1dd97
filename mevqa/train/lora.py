"""The model side of a run: LoRA (and the QLoRA recipe) on a loaded Qwen-VL, and the LR schedule.

QLoRA (Dettmers et al., 2023, "QLoRA: Efficient Finetuning of Quantized LLMs"): a 4-bit NF4 base with
double quantisation, LoRA adapters trained on top, gradient checkpointing. PEFT's
``prepare_model_for_kbit_training`` upcasts every non-4-bit tensor to fp32 for stability; here all of
them go back to the compute dtype, norms and biases included. Training ran under accelerate's
autocast either way, but generation after training (the held-out evaluation) runs without it, and a
norm left in fp32 turns the hidden states fp32 before a bf16 ``lm_head`` or vision layer: "self and
mat2 must have the same dtype". Qwen's RMSNorm computes its variance in fp32 whatever the weight's
dtype, so bf16 norm weights are the same arithmetic the bf16 LoRA run uses.
"""
from __future__ import annotations

import warnings

import torch
from peft import LoraConfig, get_peft_model, prepare_model_for_kbit_training
from transformers import get_scheduler

from mevqa.train.config import ConfigError, TrainConfig
from mevqa.vlm.model import lora_target_modules

__all__ = ["apply_lora", "cast_frozen_to", "build_scheduler"]

# our scheduler names -> transformers' (with warmup)
_SCHEDULES = {"cosine": "cosine", "linear": "linear", "constant": "constant_with_warmup"}


def cast_frozen_to(model, dtype: torch.dtype) -> int:
    """Cast every floating-point parameter that is not quantised to ``dtype``; returns how many.

    4-bit weights are uint8 (bitsandbytes ``Params4bit``) and are left alone, and so are buffers (the
    rotary ``inv_freq`` must stay fp32). Run before LoRA is added, so the adapters keep PEFT's dtype.
    """
    n = 0
    if dtype == torch.float32:
        return n
    with torch.no_grad():
        for t in model.parameters():
            if t.dtype == torch.float32:
                t.data = t.data.to(dtype)
                n += 1
    return n


def build_scheduler(optimizer, cfg: TrainConfig, total: int):
    """transformers' schedule (cosine, linear or constant, each after ``warmup_steps`` of linear warmup)."""
    warm = min(cfg.warmup_steps, max(total - 1, 0))
    return get_scheduler(_SCHEDULES[cfg.scheduler], optimizer, num_warmup_steps=warm, num_training_steps=total)


def apply_lora(vlm, cfg: TrainConfig, compute_dtype) -> int:
    """Put LoRA on ``vlm.model`` (in place); returns the number of trainable parameters."""
    with warnings.catch_warnings():
        # transformers 5.x renames gradient checkpointing to "activation checkpointing" in v6 and says
        # so on every call (the field notes in ARCHITECTURE.md); nothing to act on here
        warnings.filterwarnings("ignore", message=r".*gradient_checkpointing.* is deprecated", category=FutureWarning)
        return _apply_lora_quiet(vlm, cfg, compute_dtype)


def _apply_lora_quiet(vlm, cfg: TrainConfig, compute_dtype) -> int:
    model = vlm.model
    for conf in (model.config, getattr(model.config, "text_config", None)):
        if conf is not None:
            conf.use_cache = False  # no KV cache while training (and required with checkpointing)
    gc_kwargs = {"use_reentrant": False}  # non-reentrant: frozen inputs need no requires_grad hack
    if cfg.load_in_4bit:
        # QLoRA recipe: norms (and every other non-quantised tensor) to fp32, checkpointing on.
        model = prepare_model_for_kbit_training(model, use_gradient_checkpointing=cfg.gradient_checkpointing,
                                                gradient_checkpointing_kwargs=gc_kwargs)
        # ... but every non-quantised tensor back to the compute dtype (the module docstring says why)
        cast_frozen_to(model, compute_dtype)
    elif cfg.gradient_checkpointing:
        model.gradient_checkpointing_enable(gradient_checkpointing_kwargs=gc_kwargs)
    targets = cfg.lora.target_modules or lora_target_modules(vlm.family, language=True, mlp=True,
                                                             vision=cfg.lora.vision, merger=cfg.lora.merger)
    lora = LoraConfig(r=cfg.lora.r, lora_alpha=cfg.lora.alpha, lora_dropout=cfg.lora.dropout, target_modules=targets,
                      modules_to_save=list(cfg.lora.modules_to_save) or None, bias="none", task_type="CAUSAL_LM")
    try:
        vlm.model = get_peft_model(model, lora)
    except ValueError as exc:
        raise ConfigError(f"lora.target_modules matches nothing usable in {cfg.model}: "
                          f"{str(exc).splitlines()[0]}") from None
    return sum(p.numel() for p in vlm.model.parameters() if p.requires_grad)
