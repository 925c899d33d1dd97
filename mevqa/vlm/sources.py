"""Where a Qwen-VL comes from and how it runs: model folder and adapter checks, device and dtype choice,
LoRA target names, display names. Plain checks with one-line :class:`ModelLoadError` messages, so a
bad path fails before gigabytes of weights are read.
"""
from __future__ import annotations

import json
from pathlib import Path

import torch

from mevqa.vlm.config import TINY_MARKER
from mevqa.vlm.processing import FAMILY_NAMES, FAMILY_OF_MODEL_TYPE

__all__ = ["ModelLoadError", "DTYPE_NAMES", "resolve_device", "resolve_dtype", "lora_target_modules",
           "check_model_source", "check_adapter", "display_name", "one_line"]

DTYPE_NAMES = {torch.float32: "fp32", torch.bfloat16: "bf16", torch.float16: "fp16"}
_DTYPES = {
    "float32": torch.float32, "fp32": torch.float32, "bfloat16": torch.bfloat16, "bf16": torch.bfloat16,
    "float16": torch.float16, "fp16": torch.float16,
}




class ModelLoadError(ValueError):
    """A model or adapter that cannot be loaded; the one-line message says which and why."""



def one_line(exc: BaseException, limit: int = 240) -> str:
    text = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    return text if len(text) <= limit else text[: limit - 3] + "..."


def resolve_device(device: str = "auto") -> torch.device:
    """"auto" -> cuda when available, else cpu; anything else as given."""
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    dev = torch.device(device)
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise ModelLoadError(f"device {device!r} asked for but no CUDA GPU is available; use device='cpu'")
    return dev


def resolve_dtype(dtype: str, device: torch.device) -> torch.dtype:
    """"auto" -> bf16 on a GPU that supports it, else fp32 (CPU, older GPUs); fp16 only when asked for.

    Never fp16 by default: Qwen2/2.5 activations overflow fp16's range (inf/nan logits), while
    bf16 keeps fp32's exponent range. fp32 on a GPU without bf16 is slower but correct.
    """
    if dtype == "auto":
        if device.type == "cuda" and torch.cuda.is_bf16_supported():
            return torch.bfloat16
        return torch.float32
    if dtype not in _DTYPES:
        raise ModelLoadError(f"dtype must be auto, fp32, bf16 or fp16, got {dtype!r}")
    return _DTYPES[dtype]


def lora_target_modules(family: str, *, language: bool = True, mlp: bool = True, vision: bool = False,
                        merger: bool = False) -> str:
    """PEFT ``target_modules`` regex for a Qwen-VL family (see the field notes in ARCHITECTURE.md).

    ``language``: q/k/v/o projections of the language model; ``mlp``: its gate/up/down projections;
    ``vision``: the vision blocks' ``attn.qkv``/``attn.proj``; ``merger``: the patch merger MLP
    (``mlp.0``/``mlp.2`` on Qwen2/2.5-VL, ``linear_fc1``/``linear_fc2`` on Qwen3-VL).
    """
    family = FAMILY_OF_MODEL_TYPE.get(family, family)
    if family not in FAMILY_NAMES:
        raise ValueError(f"unknown Qwen-VL family {family!r}; known: {', '.join(FAMILY_NAMES)}")
    parts = []
    lm = []
    if language:
        lm.append(r"self_attn\.(q_proj|k_proj|v_proj|o_proj)")
    if mlp:
        lm.append(r"mlp\.(gate_proj|up_proj|down_proj)")
    if lm:
        parts.append(r".*language_model\.layers\.\d+\.(" + "|".join(lm) + ")")
    if vision:
        parts.append(r".*visual\.blocks\.\d+\.attn\.(qkv|proj)")
    if merger:
        parts.append(r".*visual\.merger\.linear_fc(1|2)" if family == "qwen3_vl" else r".*visual\.merger\.mlp\.(0|2)")
    if not parts:
        raise ValueError("choose at least one of language, mlp, vision, merger")
    return "(" + ")|(".join(parts) + ")"


def _looks_like_path(name: str) -> bool:
    # Hub ids are "owner/name" (one slash, no leading dot or slash); anything else is a path.
    return name.startswith(("/", "./", "../", "~", "\\")) or name.count("/") > 1 or "\\" in name or name in (".", "..")


def check_model_source(model: str) -> None:
    """Fail early, with one line, on a folder that is not there or holds no model."""
    path = Path(model).expanduser()
    if path.exists():
        if not path.is_dir():
            raise ModelLoadError(f"{model} is a file; give the model folder (the one holding config.json)")
        if not (path / "config.json").is_file():
            raise ModelLoadError(f"no config.json in {model}: not a transformers model folder")
    elif _looks_like_path(model):
        raise ModelLoadError(f"model folder {model} does not exist")


def check_adapter(adapter: str) -> dict:
    """The adapter's parsed adapter_config.json, or ModelLoadError saying what is wrong."""
    path = Path(adapter).expanduser()
    if not path.is_dir():
        raise ModelLoadError(f"adapter folder {adapter} does not exist")
    cfg = path / "adapter_config.json"
    if not cfg.is_file():
        raise ModelLoadError(f"no adapter_config.json in {adapter}: not a PEFT adapter folder")
    try:
        data = json.loads(cfg.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise ModelLoadError(f"{cfg} is not valid JSON ({one_line(exc)}); re-save the adapter") from exc
    if not isinstance(data, dict) or "peft_type" not in data:
        raise ModelLoadError(f"{cfg} has no peft_type: not a PEFT adapter config")
    if not any((path / n).is_file() for n in ("adapter_model.safetensors", "adapter_model.bin")):
        raise ModelLoadError(f"no adapter_model.safetensors in {adapter}: the adapter weights are missing")
    return data



def display_name(model: str) -> str:
    """Hub ids as they are; local folders by name, the tiny test model as "tiny-local"."""
    path = Path(model).expanduser()
    if path.is_dir():
        marker = path / TINY_MARKER
        if marker.is_file():
            try:
                return json.loads(marker.read_text(encoding="utf-8")).get("name", "tiny-local")
            except (json.JSONDecodeError, OSError):
                return "tiny-local"
        return path.resolve().name
    return model
