"""The training run: processes and precision, data, model, the optimisation loop, checkpoints, the result.

One optimizer step is ``grad_accum`` micro-batches of ``batch_size`` samples per process, accumulated
under accelerate's ``accumulate`` (which also skips the gradient all-reduce on all but the last
micro-batch); the schedule is transformers' (:func:`mevqa.train.lora.build_scheduler`); checkpoints
are accelerate's ``save_state`` (:mod:`mevqa.train.checkpoint`). A resumed run ends where an
uninterrupted one ends, bit for bit on CPU: the samples are a pure function of seed and step
(:class:`~mevqa.train.sampling.SampleStream`) and the checkpoint restores every RNG.
"""
from __future__ import annotations

import json
import math
import os
import time
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Callable

import torch
from accelerate import Accelerator
from accelerate.state import AcceleratorState
from accelerate.utils import gather_object, set_seed
from tqdm.auto import tqdm

from mevqa.train.card import write_card
from mevqa.train.checkpoint import (config_diff, install_hooks, latest_checkpoint, load_checkpoint, read_log,
                                    resume_fingerprint, save_checkpoint)
from mevqa.train.config import ConfigError, TrainConfig
from mevqa.train.data import prepare_data, resolve_model, sheets
from mevqa.train.dataset import VQADataset
from mevqa.train.evaluation import evaluate
from mevqa.train.lora import apply_lora, build_scheduler
from mevqa.train.loss import answer_loss, to_device
from mevqa.train.sampling import SampleStream
from mevqa.train.vision_cache import VisionCache
from mevqa.vlm.model import QwenVL

__all__ = ["TrainResult", "train"]


@dataclass
class TrainResult:
    """What a run produced. ``losses``: one per optimizer step from step 1 (resumed steps included,
    read back from the log); ``metrics``: held-out scores of the adapter (and ``baseline``: the
    evidence-only backend on the same questions), empty when there is no held-out subject."""

    run_dir: Path
    adapter_dir: Path
    steps: int
    losses: list[float]
    seconds: float
    n_train: int
    n_test: int
    train_subjects: list[str]
    test_subjects: list[str]
    split: str
    metrics: dict = field(default_factory=dict)
    resumed_from: int | None = None
    trainable_params: int = 0
    step_seconds: float = 0.0

    @property
    def first_loss(self) -> float | None:
        return self.losses[0] if self.losses else None

    @property
    def last_loss(self) -> float | None:
        return self.losses[-1] if self.losses else None


def _precision(cfg: TrainConfig) -> tuple[bool, bool]:
    """(use CUDA, use bf16): bf16 on a GPU that supports it, on the CPU only when ``cpu_bf16``."""
    cuda = torch.cuda.is_available() and cfg.device != "cpu"
    if cfg.device.startswith("cuda") and not cuda:
        raise ConfigError(f"device {cfg.device!r} asked for but no CUDA GPU is available")
    return cuda, bool(cfg.bf16 and (torch.cuda.is_bf16_supported() if cuda else cfg.cpu_bf16))


def _check_resume(cfg: TrainConfig, run_dir: Path) -> Path | None:
    ckpt = latest_checkpoint(run_dir)
    if ckpt is not None and not cfg.resume:
        raise ConfigError(f"{run_dir} already holds checkpoints; set resume=true to continue, or use a new run_dir")
    if ckpt is not None:
        saved = json.loads((ckpt / "state.json").read_text(encoding="utf-8"))
        changed = config_diff(saved.get("fingerprint", {}), resume_fingerprint(cfg))
        if changed:
            raise ConfigError(f"{run_dir} holds a run with other settings ({', '.join(changed[:4])} changed); "
                              "use a new run_dir, or the same settings to resume")
    return ckpt


def train(config: TrainConfig, *, progress: bool = True,
          on_step: Callable[[int, float], None] | None = None) -> TrainResult:
    """Fine-tune ``config.model`` with LoRA and return what was produced (see :mod:`mevqa.train.trainer`).

    ``on_step(step, loss)`` is called after every optimizer step (and its checkpoint, when one is
    due); an exception there stops the run as a crash would, which the tests use to check resuming.
    """
    cfg = config.validate()
    started = time.time()
    run_dir = Path(cfg.run_dir)

    # 1. processes, device and precision (accelerate: one process here, N under `accelerate launch`)
    cuda, use_bf16 = _precision(cfg)
    if cuda and ":" in cfg.device and "LOCAL_RANK" not in os.environ:
        torch.cuda.set_device(int(cfg.device.split(":")[1]))  # one process on a chosen GPU
    # a second run in one process (tests, bench/gpu_check.py, a notebook) may want another precision;
    # accelerate keeps its state process-wide, so reset it (the distributed PartialState stays)
    AcceleratorState._reset_state()
    acc = Accelerator(cpu=not cuda, mixed_precision="bf16" if use_bf16 else "no",
                      gradient_accumulation_steps=cfg.grad_accum)
    main, world, rank = acc.is_main_process, acc.num_processes, acc.process_index
    show = progress and main
    ckpt = _check_resume(cfg, run_dir)
    if main:
        run_dir.mkdir(parents=True, exist_ok=True)
    set_seed(cfg.seed)

    # 2. data: the main process writes fixtures first (tiny model, synthetic set); evidence in shards
    with acc.main_process_first():
        model_path = resolve_model(cfg, run_dir)
        sheets(cfg, run_dir)
    data = prepare_data(cfg, run_dir, progress=show, rank=rank, world=world, barrier=acc.wait_for_everyone,
                        gather=gather_object)

    # 3. the model (4-bit for QLoRA), then LoRA; the initial LoRA weights come from the seed
    vlm = QwenVL.from_pretrained(model_path, load_in_4bit=cfg.load_in_4bit, device=str(acc.device),
                                 dtype="bf16" if use_bf16 else "fp32")
    torch.manual_seed(cfg.seed)
    n_trainable = apply_lora(vlm, cfg, vlm.dtype)

    # 4. encode every training sample once (cached in memory for all epochs)
    train_set = VQADataset(data.train_items, data.evidence, vlm, loss_weights=cfg.balance == "loss", progress=show)
    per_step = cfg.batch_size * cfg.grad_accum * world
    total = cfg.max_steps if cfg.max_steps > 0 else max(1, math.ceil(cfg.epochs * len(train_set) / per_step))
    stream = SampleStream(len(train_set), weights=train_set.balance if cfg.balance == "sampler" else None, seed=cfg.seed)

    # 5. optimizer and transformers' schedule over optimizer steps; accelerate wraps model and optimizer
    params = [p for p in vlm.model.parameters() if p.requires_grad]
    optimizer = torch.optim.AdamW(params, lr=cfg.lr, weight_decay=cfg.weight_decay)
    scheduler = build_scheduler(optimizer, cfg, total)
    model, optimizer = acc.prepare(vlm.model, optimizer)
    acc.register_for_checkpointing(scheduler)  # not prepared: accelerate would step it once per process
    install_hooks(acc, model)
    vision_trainable = any(p.requires_grad for n, p in vlm.model.named_parameters() if ".visual." in n)
    vision = VisionCache(vlm.model, acc.device, acc.autocast) if cfg.cache_vision and not vision_trainable else None

    # 6. resume: weights, optimizer, scheduler, RNG and step from the newest checkpoint
    start, resumed_from = 0, None
    log_path = run_dir / "log.jsonl"
    if ckpt is not None:
        state = load_checkpoint(acc, ckpt)
        start = resumed_from = int(state["step"])
        if main:  # drop log rows after the checkpoint: those steps are redone
            rows = read_log(log_path, upto=start)
            log_path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    elif main:
        log_path.write_text("", encoding="utf-8")
        cfg.save_yaml(run_dir / "config.yaml")
    acc.wait_for_everyone()

    # 7. the loop: grad_accum micro-batches per optimizer step, each process its own slice
    bar = tqdm(total=total, initial=start, desc="train", disable=not show, dynamic_ncols=True)
    step_times = []
    for step in range(start, total):
        t0 = time.time()
        model.train()
        loss_sum = torch.zeros((), device=acc.device)
        grad_norm = None
        lr = scheduler.get_last_lr()[0]  # the rate this step uses
        for micro in range(cfg.grad_accum):
            idx = stream.batch(step, micro, rank, batch_size=cfg.batch_size, grad_accum=cfg.grad_accum, world=world)
            batch = train_set.collate([train_set[i] for i in idx])
            if vision is not None:
                batch = vision.apply(batch, [train_set.encodings[i] for i in idx])
            with acc.accumulate(model):  # no all-reduce until the last micro-batch; divides the loss by grad_accum
                loss = answer_loss(model, to_device(batch, acc.device))
                acc.backward(loss)
                if acc.sync_gradients:
                    if cfg.max_grad_norm > 0:
                        grad_norm = acc.clip_grad_norm_(params, cfg.max_grad_norm)
                    optimizer.step()
                    scheduler.step()
                    optimizer.zero_grad(set_to_none=True)
            loss_sum += loss.detach()
        step_loss = float(acc.reduce(loss_sum / cfg.grad_accum, reduction="mean"))
        done = step + 1
        step_times.append(time.time() - t0)
        position = stream.position(done, batch_size=cfg.batch_size, grad_accum=cfg.grad_accum, world=world)
        if main:
            row = {"step": done, "loss": round(step_loss, 6), "lr": lr,
                   "grad_norm": None if grad_norm is None else round(float(grad_norm), 4), **position,
                   "seconds": round(step_times[-1], 3)}
            with log_path.open("a", encoding="utf-8") as fh:
                fh.write(json.dumps(row) + "\n")
        bar.update(1)
        bar.set_postfix(loss=f"{step_loss:.4f}", lr=f"{lr:.2e}")
        if done % cfg.save_every == 0 or done == total:
            state = {"step": done, "total_steps": total, "seed": cfg.seed, "world_size": world,
                     "sampler": {"seed": cfg.seed, "balance": cfg.balance, "n_samples": len(train_set), **position},
                     "fingerprint": resume_fingerprint(cfg), "loss": step_loss, "time": time.time()}
            save_checkpoint(acc, run_dir, done, state, cfg.keep_checkpoints)
        if on_step is not None:
            on_step(done, step_loss)
    bar.close()

    # 8. the final adapter (PEFT format), evaluation shared by all processes, the model card
    unwrapped = acc.unwrap_model(model)
    unwrapped.eval()
    vlm.model = unwrapped
    adapter_dir = cfg.adapter_path
    losses = [r["loss"] for r in read_log(log_path)] if main else []
    if main:
        adapter_dir.mkdir(parents=True, exist_ok=True)
        unwrapped.save_pretrained(adapter_dir)
    vlm.config = replace(vlm.config, adapter=str(adapter_dir))  # so answers name the adapter
    metrics: dict = {}
    if cfg.eval_at_end and data.test_items:
        metrics = evaluate(vlm, data, cfg, run_dir / "eval", progress=show, rank=rank, world=world,
                           barrier=acc.wait_for_everyone)
    if main:
        write_card(adapter_dir, cfg, model_path, data, train_set, total, losses, metrics, n_trainable)
        cfg.save_yaml(adapter_dir / "training_config.yaml")
    acc.wait_for_everyone()
    return TrainResult(run_dir, adapter_dir, total, losses, time.time() - started, len(train_set), len(data.test_items),
                       data.train_subjects, data.test_subjects, data.split_text, metrics, resumed_from, n_trainable,
                       (sum(step_times) / len(step_times)) if step_times else 0.0)
