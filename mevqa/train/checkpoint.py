"""Checkpoints: accelerate's ``save_state``/``load_state`` for the optimizer, schedule and every process's
RNG, with the model reduced to what training changes (the LoRA adapter and the trainable tensors).

``RUN_DIR/checkpoints/step-N`` holds ``adapter/`` (PEFT format: any checkpoint works with ``mevqa ask
--adapter``), ``trainable.safetensors`` (the exact tensors resuming restores), accelerate's
``optimizer.bin``, ``custom_checkpoint_0.pkl`` (the LR schedule) and ``random_states_R.pkl``, and
``state.json`` (step, sampler position, the config fingerprint). It is written under a temporary name
and renamed when complete; ``state.json`` last, so its presence marks a complete checkpoint. A failed
write (full disk) is one :class:`~mevqa.train.atomic.WriteError` line and leaves no partial step.
"""
from __future__ import annotations

import json
import os
import re
import shutil
from pathlib import Path

import torch
from safetensors.torch import load_file, save_file

from mevqa.train.atomic import writing
from mevqa.train.config import ConfigError, TrainConfig

__all__ = ["CHECKPOINTS", "latest_checkpoint", "install_hooks", "save_checkpoint", "load_checkpoint",
           "resume_fingerprint", "config_diff", "read_log"]

CHECKPOINTS = "checkpoints"
_STEP_DIR = re.compile(r"^step-(\d+)$")
# settings a resumed run must share with the run it continues (anything else may change)
_RESUME_KEYS = ("model", "data", "split", "lora", "load_in_4bit", "lr", "weight_decay", "warmup_steps", "scheduler",
                "epochs", "max_steps", "batch_size", "grad_accum", "max_grad_norm", "balance", "bf16", "cpu_bf16",
                "seed")


def latest_checkpoint(run_dir: str | os.PathLike) -> Path | None:
    """The newest complete checkpoint (``RUN_DIR/checkpoints/step-N`` with its state.json), or None."""
    root = Path(run_dir) / CHECKPOINTS
    if not root.is_dir():
        return None
    found = [(int(m.group(1)), p) for p in root.iterdir()
             if (m := _STEP_DIR.match(p.name)) and (p / "state.json").is_file()]
    return max(found)[1] if found else None


def _trainable(model) -> dict:
    return {n: p for n, p in model.named_parameters() if p.requires_grad}


def install_hooks(acc, model) -> None:
    """Make ``acc.save_state``/``load_state`` keep only the adapter and trainable tensors of ``model``
    (the frozen base is gigabytes and never changes), through accelerate's documented state hooks."""
    unwrapped = acc.unwrap_model(model)

    def save_hook(models, weights, output_dir):
        weights.clear()  # accelerate would write the whole base model otherwise
        if acc.is_main_process:
            out = Path(output_dir)
            unwrapped.save_pretrained(out / "adapter")
            save_file({n: p.detach().cpu().contiguous() for n, p in _trainable(unwrapped).items()},
                      str(out / "trainable.safetensors"))

    def load_hook(models, input_dir):
        models.clear()  # restored below from trainable.safetensors, not from a full state dict
        tensors = load_file(str(Path(input_dir) / "trainable.safetensors"))
        params = _trainable(unwrapped)
        if set(tensors) != set(params):
            raise ConfigError(f"{input_dir}: its trainable weights do not match this model's LoRA layout; "
                              "use a new run_dir")
        with torch.no_grad():
            for name, p in params.items():
                p.copy_(tensors[name].to(p.device, p.dtype))

    acc.register_save_state_pre_hook(save_hook)
    acc.register_load_state_pre_hook(load_hook)


def save_checkpoint(acc, run_dir: Path, step: int, state: dict, keep: int) -> Path:
    """Write RUN_DIR/checkpoints/step-N atomically (into a .tmp folder, renamed when complete)."""
    root = run_dir / CHECKPOINTS
    final, tmp = root / f"step-{step:07d}", root / f"step-{step:07d}.tmp"
    try:
        with writing(f"checkpoint step {step}", final):
            if acc.is_main_process:
                shutil.rmtree(tmp, ignore_errors=True)
                tmp.mkdir(parents=True)
            acc.wait_for_everyone()
            acc.save_state(str(tmp))  # optimizer, schedule, every process's RNG; the hook adds the adapter
            acc.wait_for_everyone()
            if acc.is_main_process:
                (tmp / "state.json").write_text(json.dumps(state, indent=1), encoding="utf-8")
                shutil.rmtree(final, ignore_errors=True)
                tmp.rename(final)
                done = sorted((int(m.group(1)), p) for p in root.iterdir() if (m := _STEP_DIR.match(p.name)))
                for _, old in done[:-keep]:
                    shutil.rmtree(old, ignore_errors=True)
    except OSError:
        if acc.is_main_process:
            shutil.rmtree(tmp, ignore_errors=True)  # free what the partial write took
        raise
    acc.wait_for_everyone()
    return final


def load_checkpoint(acc, ckpt: Path) -> dict:
    """Restore trainable weights, optimizer, schedule and RNG from ``ckpt``; returns its state.json."""
    state = json.loads((ckpt / "state.json").read_text(encoding="utf-8"))
    acc.load_state(str(ckpt))
    return state


def resume_fingerprint(cfg: TrainConfig) -> dict:
    d = cfg.to_dict()
    return {k: d[k] for k in _RESUME_KEYS}


def config_diff(a: dict, b: dict, prefix: str = "") -> list[str]:
    """Dotted names of the settings that differ between two fingerprints."""
    out = []
    for k in sorted(set(a) | set(b)):
        x, y = a.get(k), b.get(k)
        if isinstance(x, dict) and isinstance(y, dict):
            out += config_diff(x, y, f"{prefix}{k}.")
        elif x != y:
            out.append(f"{prefix}{k}")
    return out


def read_log(path: Path, upto: int | None = None) -> list[dict]:
    """Rows of the JSONL loss log (up to step ``upto``); a line torn by a crash is skipped."""
    rows = []
    if path.is_file():
        for line in path.read_text(encoding="utf-8").splitlines():
            try:
                row = json.loads(line)
            except json.JSONDecodeError:
                continue
            if upto is None or row.get("step", 0) <= upto:
                rows.append(row)
    return rows
