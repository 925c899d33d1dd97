"""Qwen-VL layer: loading (``model``), input building (``processing``), settings (``config``) and a
tiny random test model (``tiny``).

    >>> from mevqa.vlm import QwenVL
    >>> vlm = QwenVL.from_pretrained("Qwen/Qwen2.5-VL-3B-Instruct", adapter="runs/lora", load_in_4bit=True)
    >>> vlm.generate([{"role": "user", "content": [{"type": "image", "image": rgb},
    ...                                            {"type": "text", "text": "What is the coarse expression class?"}]}])

Names are imported lazily so that ``import mevqa.vlm`` (or reading a ``VLMConfig``) does not pull in
torch and transformers.
"""
from __future__ import annotations

from importlib import import_module

_EXPORTS = {
    "VLMConfig": "config",
    "VLMConfigError": "config",
    "QwenVL": "model",
    "ModelLoadError": "model",
    "TrainingEncodingError": "model",
    "lora_target_modules": "model",
    "VLProcessor": "processing",
    "InputError": "processing",
    "torchvision_available": "processing",
    "build_tiny_model": "tiny",
    "main_tiny_model": "tiny",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str):
    if name in _EXPORTS:
        return getattr(import_module(f".{_EXPORTS[name]}", __name__), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
