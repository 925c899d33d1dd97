"""Every knob of the Qwen-VL backend in one dataclass.

:class:`VLMConfig` is what the CLI flags, the app, the batch evaluator and the training YAML all fill
in, so a model is loaded and prompted the same way wherever it runs. It holds plain values only
(strings, numbers, booleans) so that it round-trips through JSON and YAML unchanged.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass, fields
from typing import Any

DEFAULT_MODEL = "Qwen/Qwen2.5-VL-3B-Instruct"
TINY_MARKER = "mevqa_tiny.json"  # written by the tiny test models (mevqa.testing); marks a random-weight model

DEVICES = ("auto", "cpu", "cuda", "mps")
DTYPES = ("auto", "float32", "fp32", "bfloat16", "bf16", "float16", "fp16")
VISUAL_INPUTS = ("keyframes", "video")
PROCESSOR_BACKENDS = ("auto", "transformers", "numpy")


class VLMConfigError(ValueError):
    """A Qwen-VL setting that cannot work; the message names the field and what it accepts."""


@dataclass
class VLMConfig:
    """Settings for loading and prompting a Qwen-VL model.

    Attributes:
        model: hub id (``Qwen/Qwen2.5-VL-7B-Instruct``) or a local folder made by ``save_pretrained``.
        adapter: folder of a PEFT (LoRA) adapter to put on top, or None.
        load_in_4bit: quantise the language model to 4-bit NF4 with double quantisation (bitsandbytes).
        load_in_8bit: quantise the language model to 8-bit (bitsandbytes). Not together with 4-bit.
        quantize_vision: also quantise the vision tower. Off by default: it is small next to the
            language model (about 0.7B of 7B) and micro-expressions live in fine visual detail.
        device: "auto" (cuda when available, else cpu), "cpu", "cuda", "cuda:1" or "mps".
        dtype: "auto" (bfloat16 on a GPU that supports it, float32 on CPU) or an explicit dtype.
        attn_implementation: passed to transformers ("sdpa", "flash_attention_2", "eager") or None
            to let transformers pick.
        n_frames: keyframes shown to the model per question (3: onset, apex, offset).
        visual_input: "keyframes" (each frame its own image) or "video" (Qwen's video input, which
            merges each pair of frames into one temporal patch). ``bench/bench_vlm.py`` measures both.
        max_pixels: largest area, in pixels, an image (or one video frame) is resized to. The default
            224*224 gives 64 visual tokens per keyframe on Qwen2.5-VL (patch 14, merge 2).
        min_pixels: smallest area an image is enlarged to.
        processor_backend: "auto" uses transformers' AutoProcessor where torchvision is installed and
            the numpy path elsewhere; "numpy" or "transformers" force one.
        max_new_tokens: generation budget; MEGC answers are at most about 40 tokens.
        temperature, top_p, top_k: sampling settings, used only when sampling, always passed explicitly
            (a checkpoint's own generation config never fills them in); top_k 0 means no top-k cut.
        n_samples: answers drawn per question for self-consistency (majority vote); 1 is greedy.
        seed: seed for sampling, or None for nondeterministic sampling.
    """

    model: str = DEFAULT_MODEL
    adapter: str | None = None
    load_in_4bit: bool = False
    load_in_8bit: bool = False
    quantize_vision: bool = False
    device: str = "auto"
    dtype: str = "auto"
    attn_implementation: str | None = None
    n_frames: int = 3
    visual_input: str = "keyframes"
    max_pixels: int = 224 * 224
    min_pixels: int = 56 * 56
    processor_backend: str = "auto"
    max_new_tokens: int = 64
    temperature: float = 0.7
    top_p: float = 0.9
    top_k: int = 0
    n_samples: int = 1
    seed: int | None = None

    def __post_init__(self) -> None:
        # Check every field here, so a typo in a YAML file fails at load time with the field's name
        # rather than deep inside transformers.
        if not isinstance(self.model, str) or not self.model.strip():
            raise VLMConfigError("model must be a hub id or a local folder, got an empty value")
        if self.load_in_4bit and self.load_in_8bit:
            raise VLMConfigError("choose one of load_in_4bit and load_in_8bit, not both")
        device_kind = str(self.device).split(":")[0]
        if device_kind not in DEVICES:
            raise VLMConfigError(f"device must be one of {', '.join(DEVICES)} (or cuda:N), got {self.device!r}")
        if self.dtype not in DTYPES:
            raise VLMConfigError(f"dtype must be one of {', '.join(DTYPES)}, got {self.dtype!r}")
        if self.visual_input not in VISUAL_INPUTS:
            raise VLMConfigError(f"visual_input must be one of {', '.join(VISUAL_INPUTS)}, got {self.visual_input!r}")
        if self.processor_backend not in PROCESSOR_BACKENDS:
            raise VLMConfigError(
                f"processor_backend must be one of {', '.join(PROCESSOR_BACKENDS)}, got {self.processor_backend!r}"
            )
        if int(self.n_frames) < 1:
            raise VLMConfigError(f"n_frames must be at least 1, got {self.n_frames}")
        if int(self.min_pixels) < 1 or int(self.max_pixels) < int(self.min_pixels):
            raise VLMConfigError(
                f"need 1 <= min_pixels <= max_pixels, got min_pixels={self.min_pixels} max_pixels={self.max_pixels}"
            )
        if int(self.max_new_tokens) < 1:
            raise VLMConfigError(f"max_new_tokens must be at least 1, got {self.max_new_tokens}")
        if not float(self.temperature) > 0:
            raise VLMConfigError(f"temperature must be > 0, got {self.temperature}")
        if not 0 < float(self.top_p) <= 1:
            raise VLMConfigError(f"top_p must be in (0, 1], got {self.top_p}")
        if int(self.top_k) < 0:
            raise VLMConfigError(f"top_k must be >= 0 (0: no top-k cut), got {self.top_k}")
        if int(self.n_samples) < 1:
            raise VLMConfigError(f"n_samples must be at least 1, got {self.n_samples}")

    @property
    def quantization(self) -> str | None:
        """"4-bit", "8-bit" or None."""
        return "4-bit" if self.load_in_4bit else "8-bit" if self.load_in_8bit else None

    def to_dict(self) -> dict[str, Any]:
        """Plain dict (JSON/YAML ready)."""
        return asdict(self)

    @classmethod
    def from_dict(cls, values: dict[str, Any]) -> "VLMConfig":
        """Build from a dict (a YAML section, say); unknown keys are refused, not silently dropped."""
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(values) - known)
        if unknown:
            raise VLMConfigError(f"unknown VLM setting(s): {', '.join(unknown)} (known: {', '.join(sorted(known))})")
        return cls(**values)
