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
   class balance by weighted sampling or loss weights; gradient accumulation; tqdm progress; a JSONL
   loss log; a checkpoint every ``save_every`` steps (adapter, trainable weights, optimizer,
   scheduler, RNG states, step and sample-stream position).
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
slice of every step's samples (``batch_size`` is per process), the main process computes the evidence
cache first, writes the log, checkpoints (each process adds its RNG state) and evaluates.
"""
from __future__ import annotations

import contextlib
import json
import math
import os
import random
import re
import shutil
import time
import warnings
from dataclasses import asdict, dataclass, field, fields, replace
from pathlib import Path
from typing import Any, Callable, Sequence

__all__ = ["ConfigError", "LoRAConfig", "DataConfig", "SplitConfig", "TrainConfig", "TrainResult",
           "SampleStream", "VisionCache", "load_config", "train", "main_train", "latest_checkpoint", "answer_loss"]

TINY_MODELS = {"tiny": "qwen2_5_vl", "tiny-qwen2.5": "qwen2_5_vl", "tiny-qwen3": "qwen3_vl"}
BALANCE_MODES = ("sampler", "loss", "none")
SCHEDULERS = ("cosine", "linear", "constant")
QUESTION_KINDS = ("coarse", "fine", "au_list", "au_presence", "au_side", "analysis")
IGNORE_INDEX = -100


class ConfigError(ValueError):
    """A training config that cannot work; the one-line message names the key."""


# ----------------------------------------------------------------------------------------------
# configuration


@dataclass
class LoRAConfig:
    """LoRA settings. ``target_modules`` is a PEFT regex; None means the language model's q/k/v/o and
    gate/up/down projections (:func:`mevqa.vlm.model.lora_target_modules`), plus the vision blocks
    with ``vision`` and the patch merger with ``merger``. ``modules_to_save`` are trained in full
    and saved with the adapter: keep it empty for real checkpoints (a pretrained lm_head needs no
    retraining and would add 0.5-1 GB to the adapter); the tiny test model has a random lm_head and
    lists it (the field notes in ARCHITECTURE.md)."""

    r: int = 16
    alpha: int = 32
    dropout: float = 0.05
    target_modules: str | None = None
    vision: bool = False
    merger: bool = False
    modules_to_save: list[str] = field(default_factory=list)


@dataclass
class DataConfig:
    """Where samples come from.

    ``sheet`` / ``frames_root``: coding sheet(s) and the folder(s) their clips' frames live under
    (one frames_root per sheet, or one for all). ``layout``: the sheets' dataset ("casme2", "samm",
    "casme3", "smic"; auto-detected when null). ``megc_files``: MEGC2025 training JSONL whose
    questions and answers are used (joined to the sheets' clips); empty: questions are generated
    in the MEGC templates from the sheets' labels (seed ``qa_seed``). ``question_kinds``: keep only
    these kinds (coarse, fine, au_list, au_presence, au_side, analysis; empty: all).
    ``synthetic``: instead of sheets, write (once) a synthetic set of ``layout`` (default casme2)
    under RUN_DIR/synthetic-LAYOUT with ``synthetic_subjects`` x ``synthetic_clips`` clips.
    ``coded_interval``: Evidence on the sheet's onset/apex/offset (true) or the spotter's (false).
    The Evidence cache lives in ``$MEVQA_CACHE`` (default ~/.cache/mevqa).
    """

    sheet: list[str] = field(default_factory=list)
    frames_root: list[str] = field(default_factory=list)
    layout: str | None = None
    megc_files: list[str] = field(default_factory=list)
    question_kinds: list[str] = field(default_factory=list)
    synthetic: bool = False
    synthetic_subjects: int = 4
    synthetic_clips: int = 3
    qa_seed: int = 0
    coded_interval: bool = True


@dataclass
class SplitConfig:
    """Subject-independent split. ``test_subjects`` ("casme2/sub01", or "sub01" with one dataset) or
    ``loso_fold`` (index into the leave-one-subject-out folds, in order of first appearance) or, with
    neither, ``test_fraction`` of each dataset's subjects drawn with ``seed``; test_fraction 0 trains
    on every subject and skips the held-out evaluation."""

    test_subjects: list[str] = field(default_factory=list)
    loso_fold: int | None = None
    test_fraction: float = 0.2
    seed: int = 0


@dataclass
class TrainConfig:
    """Every knob of a fine-tuning run (YAML sections ``data``, ``split``, ``lora``; the rest top level).

    ``model``: hub id or folder ("tiny" builds the tiny random test model in the run dir).
    ``run_dir``: checkpoints, loss log, evaluation; ``adapter_dir``: the final adapter (default
    RUN_DIR/adapter). ``load_in_4bit``: QLoRA (NF4, double quantisation, bitsandbytes).
    ``epochs`` or, when > 0, ``max_steps`` (optimizer steps) set the length; one step is
    ``batch_size`` x ``grad_accum`` samples per process. ``balance``: "sampler" (class-balanced
    sampling with replacement), "loss" (per-sample loss weights) or "none". ``cache_vision``: run the
    frozen vision tower once per clip and reuse its output every epoch (exact: it has no dropout and
    no trainable weight; ignored when LoRA touches the vision side). ``bf16``: bfloat16
    weights and autocast on a GPU that supports it (CPU always fp32). ``save_every``: checkpoint
    period in steps (the last step always saves); ``keep_checkpoints`` newest kept. ``resume``:
    continue from the latest checkpoint in run_dir (refused when the config changed).
    ``eval_max_questions``: cap on held-out questions (0: all).
    """

    model: str = "Qwen/Qwen2.5-VL-3B-Instruct"
    run_dir: str = "runs/mevqa-lora"
    adapter_dir: str | None = None
    data: DataConfig = field(default_factory=DataConfig)
    split: SplitConfig = field(default_factory=SplitConfig)
    lora: LoRAConfig = field(default_factory=LoRAConfig)
    load_in_4bit: bool = False
    lr: float = 1e-4
    weight_decay: float = 0.0
    warmup_steps: int = 10
    scheduler: str = "cosine"
    epochs: float = 3.0
    max_steps: int = 0
    batch_size: int = 1
    grad_accum: int = 8
    max_grad_norm: float = 1.0
    gradient_checkpointing: bool = True
    cache_vision: bool = True
    balance: str = "sampler"
    bf16: bool = True
    save_every: int = 100
    keep_checkpoints: int = 2
    resume: bool = True
    seed: int = 0
    eval_at_end: bool = True
    eval_max_questions: int = 0
    device: str = "auto"

    def __post_init__(self) -> None:
        self.validate()

    # -- checks ------------------------------------------------------------------------------
    def validate(self) -> "TrainConfig":
        """Coerce YAML scalars to the declared types and check ranges; ConfigError on the first problem."""
        for section, obj in (("", self), ("data.", self.data), ("split.", self.split), ("lora.", self.lora)):
            for f in fields(obj):
                if f.name in ("data", "split", "lora"):
                    continue
                setattr(obj, f.name, _coerce(getattr(obj, f.name), f.type, section + f.name))
        checks = [
            (bool(self.model.strip()), "model must be a hub id, a folder or 'tiny'"),
            (self.lr > 0, f"lr must be > 0, got {self.lr}"),
            (self.weight_decay >= 0, f"weight_decay must be >= 0, got {self.weight_decay}"),
            (self.warmup_steps >= 0, f"warmup_steps must be >= 0, got {self.warmup_steps}"),
            (self.scheduler in SCHEDULERS, f"scheduler must be one of {', '.join(SCHEDULERS)}, got {self.scheduler!r}"),
            (self.epochs > 0 or self.max_steps > 0, "set epochs > 0 or max_steps > 0"),
            (self.max_steps >= 0, f"max_steps must be >= 0, got {self.max_steps}"),
            (self.batch_size >= 1, f"batch_size must be >= 1, got {self.batch_size}"),
            (self.grad_accum >= 1, f"grad_accum must be >= 1, got {self.grad_accum}"),
            (self.max_grad_norm >= 0, f"max_grad_norm must be >= 0 (0: no clipping), got {self.max_grad_norm}"),
            (self.balance in BALANCE_MODES, f"balance must be one of {', '.join(BALANCE_MODES)}, got {self.balance!r}"),
            (self.save_every >= 1, f"save_every must be >= 1, got {self.save_every}"),
            (self.keep_checkpoints >= 1, f"keep_checkpoints must be >= 1, got {self.keep_checkpoints}"),
            (self.eval_max_questions >= 0, f"eval_max_questions must be >= 0, got {self.eval_max_questions}"),
            (self.device.split(":")[0] in ("auto", "cpu", "cuda"), f"device must be auto, cpu or cuda[:N], got {self.device!r}"),
            (self.lora.r >= 1, f"lora.r must be >= 1, got {self.lora.r}"),
            (self.lora.alpha > 0, f"lora.alpha must be > 0, got {self.lora.alpha}"),
            (0 <= self.lora.dropout < 1, f"lora.dropout must be in [0, 1), got {self.lora.dropout}"),
            (0 <= self.split.test_fraction < 1, f"split.test_fraction must be in [0, 1), got {self.split.test_fraction}"),
            (self.split.loso_fold is None or self.split.loso_fold >= 0,
             f"split.loso_fold must be >= 0, got {self.split.loso_fold}"),
            (not (self.split.loso_fold is not None and self.split.test_subjects),
             "give split.test_subjects or split.loso_fold, not both"),
            (not (self.data.synthetic and self.data.sheet), "give data.sheet or data.synthetic, not both"),
            (self.data.synthetic_subjects >= 2, f"data.synthetic_subjects must be >= 2, got {self.data.synthetic_subjects}"),
            (self.data.synthetic_clips >= 1, f"data.synthetic_clips must be >= 1, got {self.data.synthetic_clips}"),
        ]
        for ok, message in checks:
            if not ok:
                raise ConfigError(message)
        bad = [k for k in self.data.question_kinds if k not in QUESTION_KINDS]
        if bad:
            raise ConfigError(f"data.question_kinds: unknown kind {bad[0]!r} (known: {', '.join(QUESTION_KINDS)})")
        if self.lora.target_modules is not None:
            try:
                re.compile(self.lora.target_modules)
            except re.error as exc:
                raise ConfigError(f"lora.target_modules is not a valid regex: {exc}") from None
        return self

    # -- (de)serialisation ---------------------------------------------------------------------
    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, values: dict) -> "TrainConfig":
        """Build from nested dicts (a parsed YAML file); unknown keys are refused, not ignored."""
        if not isinstance(values, dict):
            raise ConfigError("a training config must be a mapping of keys to values")
        nested = {"data": DataConfig, "split": SplitConfig, "lora": LoRAConfig}
        _check_keys(cls, values, "")
        kwargs: dict[str, Any] = {}
        for key, value in values.items():
            if key in nested:
                if value is None:
                    value = {}
                if not isinstance(value, dict):
                    raise ConfigError(f"{key} must be a section (key: value lines), got {value!r}")
                _check_keys(nested[key], value, key + ".")
                kwargs[key] = nested[key](**value)
            else:
                kwargs[key] = value
        return cls(**kwargs)

    @classmethod
    def from_yaml(cls, path: str | os.PathLike, overrides: Sequence[str] = ()) -> "TrainConfig":
        return load_config(path, overrides)

    def save_yaml(self, path: str | os.PathLike) -> Path:
        import yaml

        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(yaml.safe_dump(self.to_dict(), sort_keys=False), encoding="utf-8")
        return path

    @property
    def adapter_path(self) -> Path:
        return Path(self.adapter_dir) if self.adapter_dir else Path(self.run_dir) / "adapter"


def _check_keys(cls, values: dict, where: str) -> None:
    known = [f.name for f in fields(cls)]
    for key in values:
        if key not in known:
            raise ConfigError(f"unknown config key '{where}{key}' (known{' in ' + where[:-1] if where else ''}: "
                              f"{', '.join(known)})")


def _coerce(value, annotation: str, name: str):
    """A YAML value as the field's declared type (annotations are strings: this module uses
    ``from __future__ import annotations``). Numbers written as strings ("1e-4") are parsed."""
    ann = str(annotation).replace(" ", "")
    optional = ann.endswith("|None")
    base = ann[: -len("|None")] if optional else ann
    if value is None:
        if optional:
            return None
        raise ConfigError(f"{name} must not be empty")
    try:
        if base == "bool":
            if isinstance(value, bool):
                return value
            if isinstance(value, str) and value.lower() in ("true", "false", "yes", "no", "1", "0"):
                return value.lower() in ("true", "yes", "1")
            raise ValueError
        if base == "int":
            if isinstance(value, bool) or (isinstance(value, float) and not value.is_integer()):
                raise ValueError
            return int(value)
        if base == "float":
            if isinstance(value, bool):
                raise ValueError
            return float(value)
        if base == "str":
            if isinstance(value, (dict, list)):
                raise ValueError
            return str(value)
        if base == "list[str]":
            if isinstance(value, (str, int, float)) and not isinstance(value, bool):
                return [str(value)] if str(value) else []
            if isinstance(value, (list, tuple)) and all(isinstance(v, (str, int, float)) for v in value):
                return [str(v) for v in value]
            raise ValueError
    except (TypeError, ValueError):
        raise ConfigError(f"{name} must be {base.replace('list[str]', 'a list of strings')}"
                          f"{' or null' if optional else ''}, got {value!r}") from None
    return value


def _set_dotted(values: dict, dotted: str, value) -> None:
    parts = dotted.split(".")
    cur = values
    for part in parts[:-1]:
        nxt = cur.get(part)
        if nxt is None:
            nxt = cur[part] = {}
        if not isinstance(nxt, dict):
            raise ConfigError(f"override {dotted}: {part} is not a section")
        cur = nxt
    cur[parts[-1]] = value


def load_config(path: str | os.PathLike | None, overrides: Sequence[str] = ()) -> TrainConfig:
    """A :class:`TrainConfig` from a YAML file (or defaults when ``path`` is None) plus ``key=value``
    overrides with dotted keys (``lora.r=8``, ``split.test_subjects=[sub01,sub02]``); values are read
    as YAML scalars. Relative paths in the file stay relative to the working directory."""
    import yaml

    values: dict = {}
    if path is not None:
        p = Path(path)
        if not p.is_file():
            raise ConfigError(f"config file not found: {p}")
        try:
            values = yaml.safe_load(p.read_text(encoding="utf-8")) or {}
        except yaml.YAMLError as exc:
            raise ConfigError(f"{p}: not valid YAML ({str(exc).splitlines()[0]})") from None
        if not isinstance(values, dict):
            raise ConfigError(f"{p}: the top level must be a mapping of keys to values")
    for item in overrides:
        if "=" not in item:
            raise ConfigError(f"override {item!r} is not key=value")
        key, raw = item.split("=", 1)
        key = key.strip()
        if not key:
            raise ConfigError(f"override {item!r} has no key")
        try:
            value = yaml.safe_load(raw) if raw.strip() else ""
        except yaml.YAMLError:
            value = raw
        _set_dotted(values, key, value)
    return TrainConfig.from_dict(values)


# ----------------------------------------------------------------------------------------------
# the order samples are drawn in


class SampleStream:
    """The sequence of sample indices a run trains on: epoch ``e`` is a permutation (or, with
    ``weights``, a class-balanced draw with replacement) from a generator seeded with (seed, e).

    Step ``s`` of process ``r`` takes, for micro-batch ``j``, the stream positions
    ``s*G + (j*W + r)*B ... + B`` (G = B*accum*W samples a step). Being a pure function of the seed
    and the step, it needs no state of its own to resume: the checkpoint's step is the position.
    """

    def __init__(self, n: int, *, weights=None, seed: int = 0) -> None:
        import torch

        if n < 1:
            raise ValueError("no samples to draw from")
        self.n = int(n)
        self.weights = None if weights is None else torch.as_tensor(weights, dtype=torch.double)
        self.seed = int(seed)
        self._cache: dict[int, list[int]] = {}

    def epoch(self, e: int) -> list[int]:
        import torch

        if e not in self._cache:
            g = torch.Generator().manual_seed(self.seed * 1_000_003 + e)
            if self.weights is None:
                order = torch.randperm(self.n, generator=g)
            else:
                order = torch.multinomial(self.weights, self.n, replacement=True, generator=g)
            if len(self._cache) > 2:
                self._cache.pop(min(self._cache))
            self._cache[e] = order.tolist()
        return self._cache[e]

    def take(self, start: int, count: int) -> list[int]:
        """Indices at stream positions [start, start + count)."""
        return [self.epoch(p // self.n)[p % self.n] for p in range(start, start + count)]

    def batch(self, step: int, micro: int, rank: int = 0, *, batch_size: int, grad_accum: int, world: int = 1) -> list[int]:
        per_step = batch_size * grad_accum * world
        return self.take(step * per_step + (micro * world + rank) * batch_size, batch_size)

    def position(self, step: int, *, batch_size: int, grad_accum: int, world: int = 1) -> dict:
        """Where the stream stands after ``step`` steps: epoch, position in the epoch, samples drawn."""
        drawn = step * batch_size * grad_accum * world
        return {"samples_drawn": drawn, "epoch": drawn // self.n, "position_in_epoch": drawn % self.n}


# ----------------------------------------------------------------------------------------------
# frozen vision features


class VisionCache:
    """The frozen vision tower's output per clip, computed on first use and reused every epoch.

    Every question about a clip shows the same keyframes and flow map, and the vision tower is
    frozen (no LoRA, no dropout), so its output never changes during training: running it once per
    clip instead of once per sample is exact and saves most of the vision compute (four 224x224
    images are 1024 patches through a 32-block ViT on Qwen2.5-VL-7B). The features (pooled
    embeddings, and Qwen3-VL's deepstack features) are kept on the training device, about 2 MB a
    clip for a 7B model, and fed back through transformers' ``mm_encoder_outputs`` argument.
    """

    def __init__(self, model, device, autocast=contextlib.nullcontext) -> None:
        self.model = model          # the unwrapped (PEFT) model: get_image_features reaches the base
        self.device = device
        self.autocast = autocast
        self.store: dict[str, Any] = {}

    def _features(self, key: str, encoding: dict):
        import torch

        if key not in self.store:
            with torch.no_grad(), self.autocast():
                out = self.model.get_image_features(encoding["pixel_values"].to(self.device),
                                                    encoding["image_grid_thw"].to(self.device))
            kept = {"pooler_output": tuple(t.detach() for t in out.pooler_output)}
            if getattr(out, "deepstack_features", None) is not None:
                kept["deepstack_features"] = [tuple(t.detach() for t in layer) for layer in out.deepstack_features]
            self.store[key] = type(out)(**kept)
        return self.store[key]

    def apply(self, batch: dict, keys: Sequence[str], encodings: Sequence[dict]) -> dict:
        """``batch`` with ``pixel_values`` replaced by the clips' cached features (images only)."""
        if "pixel_values" not in batch or "pixel_values_videos" in batch:
            return batch
        outs = [self._features(k, e) for k, e in zip(keys, encodings)]
        kept = {"pooler_output": tuple(t for o in outs for t in o.pooler_output)}
        if "deepstack_features" in outs[0]:
            kept["deepstack_features"] = [tuple(t for o in outs for t in o.deepstack_features[layer])
                                          for layer in range(len(outs[0].deepstack_features))]
        out = {k: v for k, v in batch.items() if k != "pixel_values"}
        out["mm_encoder_outputs"] = {"image": type(outs[0])(**kept)}
        return out


def _to_device(batch: dict, device) -> dict:
    return {k: v.to(device, non_blocking=True) if hasattr(v, "to") and not isinstance(v, dict) else v
            for k, v in batch.items()}


# ----------------------------------------------------------------------------------------------
# loss


def answer_loss(model, batch: dict):
    """Mean over samples of the mean cross-entropy of each sample's answer tokens, times its weight.

    Only the positions that predict answer tokens get logits (``logits_to_keep``): the prompt is
    several hundred tokens and Qwen's vocabulary 150k, so projecting it all would cost gigabytes.
    Per-sample means keep a one-word answer worth as much as a 30-token analysis sentence.
    """
    import torch
    import torch.nn.functional as F

    labels = batch["labels"]
    inputs = {k: v for k, v in batch.items() if k not in ("labels", "index", "weight")}
    supervised = labels != IGNORE_INDEX
    if not bool(supervised.any()):
        raise ValueError("a batch with no answer tokens (all labels -100)")
    length = labels.shape[1]
    first = int(supervised.float().argmax(dim=1)[supervised.any(dim=1)].min())
    keep = length - first + 1  # positions first-1 .. length-1 predict tokens first .. length
    out = model(**inputs, logits_to_keep=keep, use_cache=False)
    logits = out.logits[:, :-1].float()
    targets = labels[:, length - keep + 1:]
    ce = F.cross_entropy(logits.reshape(-1, logits.shape[-1]), targets.reshape(-1), ignore_index=IGNORE_INDEX,
                         reduction="none").view_as(targets)
    mask = (targets != IGNORE_INDEX).to(ce.dtype)
    per_sample = (ce * mask).sum(dim=1) / mask.sum(dim=1).clamp(min=1.0)
    weight = batch.get("weight")
    if weight is None:
        weight = torch.ones_like(per_sample)
    return (per_sample * weight.to(per_sample)).mean()


# ----------------------------------------------------------------------------------------------
# data assembly


@dataclass
class _Data:
    train_items: list
    test_items: list
    evidence: dict
    train_subjects: list[str]
    test_subjects: list[str]
    split_text: str
    sources: list[str]
    n_clips: int
    skipped: list[str]


def _resolve_model(cfg: TrainConfig, run_dir: Path) -> str:
    """The model path or id; "tiny" builds the tiny random model in the run dir (once)."""
    if cfg.model in TINY_MODELS:
        from mevqa.testing.tiny_model import build_tiny_model

        folder = run_dir / f"tiny-model-{TINY_MODELS[cfg.model]}"
        if not (folder / "config.json").is_file():
            build_tiny_model(folder, family=TINY_MODELS[cfg.model])
        return str(folder)
    return cfg.model


def _sheets(cfg: TrainConfig, run_dir: Path) -> list[tuple[Path, Path | None]]:
    """(sheet, frames root) pairs; a synthetic set is written first when asked for."""
    d = cfg.data
    if d.synthetic:
        from mevqa.testing.synthset import make_synthetic_dataset, sheet_path

        layout = d.layout or "casme2"
        root = run_dir / f"synthetic-{layout}"
        sheet = sheet_path(root, layout)
        if not sheet.is_file():
            make_synthetic_dataset(root, layout=layout, n_subjects=d.synthetic_subjects,
                                   clips_per_subject=d.synthetic_clips, seed=d.qa_seed)
        return [(sheet, root)]
    if not d.sheet:
        raise ConfigError("no training data: set data.sheet and data.frames_root (or data.synthetic=true)")
    if not d.frames_root:
        raise ConfigError("data.frames_root is missing: the folder the sheet's clip folders live under")
    if len(d.frames_root) not in (1, len(d.sheet)):
        raise ConfigError(f"data.frames_root: give one folder, or one per sheet ({len(d.sheet)})")
    roots = d.frames_root * len(d.sheet) if len(d.frames_root) == 1 else d.frames_root
    out = []
    for sheet, root in zip(d.sheet, roots):
        if not Path(sheet).is_file():
            raise ConfigError(f"data.sheet: coding sheet not found: {sheet}")
        if not Path(root).is_dir():
            raise ConfigError(f"data.frames_root: folder not found: {root}")
        out.append((Path(sheet), Path(root)))
    return out


def _split(clips: list, cfg: SplitConfig):
    """(train clips, test clips, text) by subject; never one subject on both sides."""
    from mevqa.io.splits import SplitError, assert_subject_disjoint, holdout_split, loso_folds

    try:
        if cfg.loso_fold is not None:
            folds = loso_folds(clips)
            if cfg.loso_fold >= len(folds):
                raise ConfigError(f"split.loso_fold {cfg.loso_fold} is out of range: the data has {len(folds)} "
                                  f"subjects (folds 0-{len(folds) - 1})")
            fold = folds[cfg.loso_fold]
            train_idx, test_idx = fold.train_idx, fold.test_idx
            text = f"LOSO fold {cfg.loso_fold} of {len(folds)} (held out: {fold.held_out[0]}/{fold.held_out[1]})"
        elif cfg.test_subjects:
            sp = holdout_split(clips, test_subjects=cfg.test_subjects)
            train_idx, test_idx = sp.train_idx, sp.test_idx
            text = "held-out subjects " + ", ".join(f"{d}/{s}" for d, s in sp.test_subjects)
        elif cfg.test_fraction > 0:
            sp = holdout_split(clips, test_fraction=cfg.test_fraction, seed=cfg.seed)
            train_idx, test_idx = sp.train_idx, sp.test_idx
            text = (f"held-out subjects (test_fraction {cfg.test_fraction:g}, seed {cfg.seed}) "
                    + ", ".join(f"{d}/{s}" for d, s in sp.test_subjects))
        else:
            train_idx, test_idx, text = tuple(range(len(clips))), (), "none: every subject trains (no held-out evaluation)"
    except SplitError as exc:
        raise ConfigError(f"split: {exc}") from None
    train, test = [clips[i] for i in train_idx], [clips[i] for i in test_idx]
    assert_subject_disjoint(train, test)
    if not train:
        raise ConfigError("split: no subject is left to train on")
    return train, test, text


def _subjects(items) -> list[str]:
    from mevqa.io.splits import subject_id

    return sorted({"/".join(subject_id(it)) for it in items})


def _prepare_data(cfg: TrainConfig, run_dir: Path, *, progress: bool) -> _Data:
    from tqdm.auto import tqdm

    from mevqa.train.dataset import DatasetError, clip_evidence, clip_key, qa_from_megc, qa_from_sheet
    from mevqa.io.megc import read_megc_jsonl
    from mevqa.io.sheets import load_sheet
    from mevqa.io.splits import assert_subject_disjoint

    # 1. clips from the coding sheets, joined to their frame folders
    clips, skipped, sources = [], [], []
    for sheet, root in _sheets(cfg, run_dir):
        got = load_sheet(sheet, cfg.data.layout, root)
        sources.append(f"{sheet} (frames under {root}; {len(got)} clips)")
        skipped += got.missing_frames + got.problems
        clips += [c for c in got if c.frames_dir is not None]
    if not clips:
        raise ConfigError("none of the sheets' clips has a frame folder under data.frames_root"
                          + (f" (e.g. {skipped[0]})" if skipped else ""))

    # 2. questions and answers: the MEGC files' own, or generated from the labels
    if cfg.data.megc_files:
        records = []
        for f in cfg.data.megc_files:
            if not Path(f).is_file():
                raise ConfigError(f"data.megc_files: file not found: {f}")
            records += read_megc_jsonl(f)
        items, unmatched = qa_from_megc(records, clips, kinds=cfg.data.question_kinds)
        skipped += [f"{k}: no clip with frames in the sheets" for k in unmatched]
        sources += [f"questions: {f}" for f in cfg.data.megc_files]
    else:
        items = qa_from_sheet(clips, seed=cfg.data.qa_seed, kinds=cfg.data.question_kinds)
        sources.append(f"questions: generated in the MEGC2025 templates (seed {cfg.data.qa_seed})")
    if not items:
        raise ConfigError("no training questions: no clip has a usable label"
                          + (" matching the MEGC files" if cfg.data.megc_files else ""))

    # 3. the subject-independent split, over the clips that have questions
    keyed = {clip_key(c): c for c in clips}
    used = [keyed[k] for k in dict.fromkeys(it.key for it in items)]
    train_clips, test_clips, text = _split(used, cfg.split)
    test_keys = {clip_key(c) for c in test_clips}
    train_items = [it for it in items if it.key not in test_keys]
    test_items = [it for it in items if it.key in test_keys]
    assert_subject_disjoint(train_items, test_items)  # items carry their own subject spelling

    # 4. evidence per clip (cached on disk: a rerun reads it back)
    evidence = {}
    for c in tqdm(used, desc="evidence", disable=not progress, leave=False):
        try:
            evidence[clip_key(c)] = clip_evidence(c, use_coded_interval=cfg.data.coded_interval)
        except (DatasetError, ValueError) as exc:
            skipped.append(f"{clip_key(c)}: {exc}")
    train_items = [it for it in train_items if it.key in evidence]
    test_items = [it for it in test_items if it.key in evidence]
    if not train_items:
        raise ConfigError(f"no training clip could be read ({skipped[-1] if skipped else 'unknown reason'})")
    return _Data(train_items, test_items, evidence, _subjects(train_items), _subjects(test_items), text, sources,
                 len(used), skipped)


# ----------------------------------------------------------------------------------------------
# checkpoints


CHECKPOINTS = "checkpoints"
_STEP_DIR = re.compile(r"^step-(\d+)$")
# settings a resumed run must share with the run it continues (anything else may change)
_RESUME_KEYS = ("model", "data", "split", "lora", "load_in_4bit", "lr", "weight_decay", "warmup_steps", "scheduler",
                "epochs", "max_steps", "batch_size", "grad_accum", "max_grad_norm", "balance", "bf16", "seed")


def latest_checkpoint(run_dir: str | os.PathLike) -> Path | None:
    """The newest complete checkpoint (``RUN_DIR/checkpoints/step-N`` with its state.json), or None."""
    root = Path(run_dir) / CHECKPOINTS
    if not root.is_dir():
        return None
    found = [(int(m.group(1)), p) for p in root.iterdir()
             if (m := _STEP_DIR.match(p.name)) and (p / "state.json").is_file()]
    return max(found)[1] if found else None


def _rng_state() -> dict:
    import numpy as np
    import torch

    np_state = np.random.get_state()
    return {
        "python": json.dumps(random.getstate()),
        "numpy": json.dumps([np_state[0], np_state[1].tolist(), *np_state[2:]]),
        "torch": torch.get_rng_state(),
        "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else [],
    }


def _set_rng_state(state: dict) -> None:
    import numpy as np
    import torch

    py = json.loads(state["python"])
    random.setstate((py[0], tuple(py[1]), py[2]))
    npst = json.loads(state["numpy"])
    np.random.set_state((npst[0], np.asarray(npst[1], dtype=np.uint32), *npst[2:]))
    torch.set_rng_state(state["torch"])
    if state.get("cuda") and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def _trainable(model) -> dict:
    return {n: p for n, p in model.named_parameters() if p.requires_grad}


def _save_checkpoint(acc, model, optimizer, scheduler, run_dir: Path, step: int, state: dict, keep: int) -> Path:
    """Write RUN_DIR/checkpoints/step-N atomically (into a .tmp folder, renamed when complete)."""
    import torch
    from safetensors.torch import save_file

    root = run_dir / CHECKPOINTS
    final, tmp = root / f"step-{step:07d}", root / f"step-{step:07d}.tmp"
    if acc.is_main_process:
        shutil.rmtree(tmp, ignore_errors=True)
        tmp.mkdir(parents=True)
    acc.wait_for_everyone()
    unwrapped = acc.unwrap_model(model)
    if acc.is_main_process:
        # 1. the adapter in PEFT format: any checkpoint works with `mevqa ask --adapter`
        unwrapped.save_pretrained(tmp / "adapter")
        # 2. the exact trainable tensors, optimizer and scheduler: what resuming restores
        save_file({n: p.detach().cpu().contiguous() for n, p in _trainable(unwrapped).items()},
                  str(tmp / "trainable.safetensors"))
        torch.save(optimizer.state_dict(), tmp / "optimizer.pt")
        torch.save(scheduler.state_dict(), tmp / "scheduler.pt")
    # 3. every process's RNG (dropout masks), then the state file last: its presence marks completeness
    torch.save(_rng_state(), tmp / f"rng-{acc.process_index}.pt")
    acc.wait_for_everyone()
    if acc.is_main_process:
        (tmp / "state.json").write_text(json.dumps(state, indent=1), encoding="utf-8")
        shutil.rmtree(final, ignore_errors=True)
        tmp.rename(final)
        done = sorted((int(m.group(1)), p) for p in root.iterdir() if (m := _STEP_DIR.match(p.name)))
        for _, old in done[:-keep]:
            shutil.rmtree(old, ignore_errors=True)
    acc.wait_for_everyone()
    return final


def _load_checkpoint(acc, model, optimizer, scheduler, ckpt: Path) -> dict:
    import torch
    from safetensors.torch import load_file

    state = json.loads((ckpt / "state.json").read_text(encoding="utf-8"))
    tensors = load_file(str(ckpt / "trainable.safetensors"))
    params = _trainable(acc.unwrap_model(model))
    if set(tensors) != set(params):
        raise ConfigError(f"{ckpt}: its trainable weights do not match this model's LoRA layout; use a new run_dir")
    with torch.no_grad():
        for name, p in params.items():
            p.copy_(tensors[name].to(p.device, p.dtype))
    optimizer.load_state_dict(torch.load(ckpt / "optimizer.pt", map_location="cpu", weights_only=True))
    scheduler.load_state_dict(torch.load(ckpt / "scheduler.pt", weights_only=True))
    rng = ckpt / f"rng-{acc.process_index}.pt"
    _set_rng_state(torch.load(rng if rng.is_file() else ckpt / "rng-0.pt", weights_only=True))
    return state


def _resume_fingerprint(cfg: TrainConfig) -> dict:
    d = cfg.to_dict()
    return {k: d[k] for k in _RESUME_KEYS}


def _diff(a: dict, b: dict, prefix: str = "") -> list[str]:
    out = []
    for k in sorted(set(a) | set(b)):
        x, y = a.get(k), b.get(k)
        if isinstance(x, dict) and isinstance(y, dict):
            out += _diff(x, y, f"{prefix}{k}.")
        elif x != y:
            out.append(f"{prefix}{k}")
    return out


# ----------------------------------------------------------------------------------------------
# model


def _schedule(cfg: TrainConfig, total: int) -> Callable[[int], float]:
    warm = min(cfg.warmup_steps, max(total - 1, 0))

    def factor(step: int) -> float:
        if warm and step < warm:
            return (step + 1) / (warm + 1)
        if cfg.scheduler == "constant":
            return 1.0
        progress = (step - warm) / max(1, total - warm)
        if cfg.scheduler == "linear":
            return max(0.0, 1.0 - progress)
        return 0.5 * (1.0 + math.cos(math.pi * min(1.0, progress)))

    return factor


def _apply_lora(vlm, cfg: TrainConfig, compute_dtype) -> int:
    """Put LoRA on ``vlm.model`` (in place); returns the number of trainable parameters."""
    with warnings.catch_warnings():
        # transformers 5.x renames gradient checkpointing to "activation checkpointing" in v6 and says
        # so on every call (the field notes in ARCHITECTURE.md); nothing to act on here
        warnings.filterwarnings("ignore", message=r".*gradient_checkpointing.* is deprecated", category=FutureWarning)
        return _apply_lora_quiet(vlm, cfg, compute_dtype)


def _apply_lora_quiet(vlm, cfg: TrainConfig, compute_dtype) -> int:
    import torch
    from peft import LoraConfig, get_peft_model, prepare_model_for_kbit_training

    from mevqa.vlm.model import lora_target_modules

    model = vlm.model
    for conf in (model.config, getattr(model.config, "text_config", None)):
        if conf is not None:
            conf.use_cache = False  # no KV cache while training (and required with checkpointing)
    gc_kwargs = {"use_reentrant": False}  # non-reentrant: frozen inputs need no requires_grad hack
    if cfg.load_in_4bit:
        # QLoRA recipe: norms (and every other non-quantised tensor) to fp32, checkpointing on.
        model = prepare_model_for_kbit_training(model, use_gradient_checkpointing=cfg.gradient_checkpointing,
                                                gradient_checkpointing_kwargs=gc_kwargs)
        # ... but the frozen vision tower, embeddings and lm_head back to the compute dtype: fp32
        # copies of them cost 5+ GB on a 7B model and buy nothing, as they are not trained.
        with torch.no_grad():
            for _, p in model.named_parameters():
                if p.dtype == torch.float32 and p.ndim >= 2 and compute_dtype != torch.float32:
                    p.data = p.data.to(compute_dtype)
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


# ----------------------------------------------------------------------------------------------
# training


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


def _read_log(path: Path, upto: int | None = None) -> list[dict]:
    rows = []
    if path.is_file():
        for line in path.read_text(encoding="utf-8").splitlines():
            try:
                row = json.loads(line)
            except json.JSONDecodeError:
                continue  # a line torn by a crash
            if upto is None or row.get("step", 0) <= upto:
                rows.append(row)
    return rows


def train(config: TrainConfig, *, progress: bool = True,
          on_step: Callable[[int, float], None] | None = None) -> TrainResult:
    """Fine-tune ``config.model`` with LoRA and return what was produced (see the module docstring).

    ``on_step(step, loss)`` is called after every optimizer step (and its checkpoint, when one is
    due); an exception there stops the run as a crash would, which the tests use to check resuming.
    """
    import torch
    from accelerate import Accelerator
    from accelerate.utils import set_seed
    from tqdm.auto import tqdm

    from mevqa.train.dataset import VQADataset
    from mevqa.vlm.model import QwenVL

    cfg = config.validate()
    started = time.time()
    run_dir = Path(cfg.run_dir)

    # 1. processes, device and precision (accelerate: one process here, N under `accelerate launch`)
    cuda = torch.cuda.is_available() and cfg.device != "cpu"
    if cuda and ":" in cfg.device and "LOCAL_RANK" not in os.environ:
        torch.cuda.set_device(int(cfg.device.split(":")[1]))  # one process on a chosen GPU
    use_bf16 = bool(cfg.bf16 and cuda and torch.cuda.is_bf16_supported())
    acc = Accelerator(cpu=not cuda, mixed_precision="bf16" if use_bf16 else "no")
    main = acc.is_main_process
    show = progress and main
    if cfg.device.startswith("cuda") and not cuda:
        raise ConfigError(f"device {cfg.device!r} asked for but no CUDA GPU is available")
    ckpt = latest_checkpoint(run_dir)
    if ckpt is not None and not cfg.resume:
        raise ConfigError(f"{run_dir} already holds checkpoints; set resume=true to continue, or use a new run_dir")
    if ckpt is not None:
        saved = json.loads((ckpt / "state.json").read_text(encoding="utf-8"))
        changed = _diff(saved.get("fingerprint", {}), _resume_fingerprint(cfg))
        if changed:
            raise ConfigError(f"{run_dir} holds a run with other settings ({', '.join(changed[:4])} changed); "
                              "use a new run_dir, or the same settings to resume")
    if main:
        run_dir.mkdir(parents=True, exist_ok=True)
    set_seed(cfg.seed)

    # 2. data: clips, questions, the subject-independent split, evidence (main process first: it fills the cache)
    with acc.main_process_first():
        data = _prepare_data(cfg, run_dir, progress=show)
        model_path = _resolve_model(cfg, run_dir)

    # 3. the model (4-bit for QLoRA), then LoRA; the initial LoRA weights come from the seed
    dtype = "bf16" if use_bf16 else "fp32"
    vlm = QwenVL.from_pretrained(model_path, load_in_4bit=cfg.load_in_4bit, device=str(acc.device), dtype=dtype)
    torch.manual_seed(cfg.seed)
    n_trainable = _apply_lora(vlm, cfg, vlm.dtype)

    # 4. encode every training sample once (cached in memory for all epochs)
    train_set = VQADataset(data.train_items, data.evidence, vlm, loss_weights=cfg.balance == "loss", progress=show)
    world = acc.num_processes
    per_step = cfg.batch_size * cfg.grad_accum * world
    total = cfg.max_steps if cfg.max_steps > 0 else max(1, math.ceil(cfg.epochs * len(train_set) / per_step))
    stream = SampleStream(len(train_set), weights=train_set.balance if cfg.balance == "sampler" else None, seed=cfg.seed)

    # 5. optimizer and schedule over optimizer steps; accelerate wraps model and optimizer (DDP, autocast)
    params = [p for p in vlm.model.parameters() if p.requires_grad]
    optimizer = torch.optim.AdamW(params, lr=cfg.lr, weight_decay=cfg.weight_decay)
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, _schedule(cfg, total))
    model, optimizer = acc.prepare(vlm.model, optimizer)
    vision_trainable = any(p.requires_grad for n, p in vlm.model.named_parameters() if ".visual." in n)
    vision = VisionCache(vlm.model, acc.device, acc.autocast) if cfg.cache_vision and not vision_trainable else None

    # 6. resume: weights, optimizer, scheduler, RNG and step from the newest checkpoint
    start, resumed_from = 0, None
    log_path = run_dir / "log.jsonl"
    if ckpt is not None:
        state = _load_checkpoint(acc, model, optimizer, scheduler, ckpt)
        start = resumed_from = int(state["step"])
        if main:  # drop log rows after the checkpoint: those steps are redone
            rows = _read_log(log_path, upto=start)
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
        for micro in range(cfg.grad_accum):
            idx = stream.batch(step, micro, acc.process_index, batch_size=cfg.batch_size, grad_accum=cfg.grad_accum,
                               world=world)
            batch = train_set.collate([train_set[i] for i in idx])
            if vision is not None:
                batch = vision.apply(batch, [train_set.items[i].key for i in idx], [train_set.encodings[i] for i in idx])
            batch = _to_device(batch, acc.device)
            sync = micro == cfg.grad_accum - 1
            with contextlib.nullcontext() if sync else acc.no_sync(model):
                loss = answer_loss(model, batch)
                acc.backward(loss / cfg.grad_accum)
            loss_sum += loss.detach()
        grad_norm = acc.clip_grad_norm_(params, cfg.max_grad_norm) if cfg.max_grad_norm > 0 else None
        lr = scheduler.get_last_lr()[0]  # the rate this step used
        optimizer.step()
        scheduler.step()
        optimizer.zero_grad(set_to_none=True)
        step_loss = float(acc.reduce(loss_sum / cfg.grad_accum, reduction="mean"))
        done = step + 1
        step_times.append(time.time() - t0)
        if main:
            row = {"step": done, "loss": round(step_loss, 6), "lr": lr,
                   "grad_norm": None if grad_norm is None else round(float(grad_norm), 4),
                   **stream.position(done, batch_size=cfg.batch_size, grad_accum=cfg.grad_accum, world=world),
                   "seconds": round(step_times[-1], 3)}
            with log_path.open("a", encoding="utf-8") as fh:
                fh.write(json.dumps(row) + "\n")
        bar.update(1)
        bar.set_postfix(loss=f"{step_loss:.4f}", lr=f"{lr:.2e}")
        if done % cfg.save_every == 0 or done == total:
            state = {"step": done, "total_steps": total, "seed": cfg.seed, "world_size": world,
                     "sampler": {"seed": cfg.seed, "balance": cfg.balance, "n_samples": len(train_set),
                                 **stream.position(done, batch_size=cfg.batch_size, grad_accum=cfg.grad_accum,
                                                   world=world)},
                     "fingerprint": _resume_fingerprint(cfg), "loss": step_loss, "time": time.time()}
            _save_checkpoint(acc, model, optimizer, scheduler, run_dir, done, state, cfg.keep_checkpoints)
        if on_step is not None:
            on_step(done, step_loss)
    bar.close()

    # 8. the final adapter (PEFT format), evaluation on the held-out subjects, the model card
    unwrapped = acc.unwrap_model(model)
    unwrapped.eval()
    vlm.model = unwrapped
    adapter_dir = cfg.adapter_path
    metrics: dict = {}
    losses = [r["loss"] for r in _read_log(log_path)] if main else []
    if main:
        adapter_dir.mkdir(parents=True, exist_ok=True)
        unwrapped.save_pretrained(adapter_dir)
        vlm.config = replace(vlm.config, adapter=str(adapter_dir))  # so answers name the adapter
        if cfg.eval_at_end and data.test_items:
            metrics = _evaluate(vlm, data, cfg, run_dir / "eval", progress=show)
        _write_card(adapter_dir, cfg, model_path, data, train_set, total, losses, metrics, n_trainable)
        cfg.save_yaml(adapter_dir / "training_config.yaml")
    acc.wait_for_everyone()
    return TrainResult(run_dir, adapter_dir, total, losses, time.time() - started, len(train_set), len(data.test_items),
                       data.train_subjects, data.test_subjects, data.split_text, metrics, resumed_from, n_trainable,
                       (sum(step_times) / len(step_times)) if step_times else 0.0)


# ----------------------------------------------------------------------------------------------
# evaluation and the model card


def _evaluate(vlm, data: _Data, cfg: TrainConfig, out_dir: Path, *, progress: bool) -> dict:
    """Answer every held-out question with the trained adapter through the agent, and score."""
    from tqdm.auto import tqdm

    from mevqa.answer.agent import Agent, EvidenceBackend, VLMBackend
    from mevqa.megc.metrics import vqa_scores

    items = data.test_items[: cfg.eval_max_questions] if cfg.eval_max_questions else data.test_items
    agent, baseline = Agent(VLMBackend(vlm)), Agent(EvidenceBackend())
    rows, preds, base = [], [], []
    for it in tqdm(items, desc="eval", disable=not progress, leave=False):
        ev = data.evidence[it.key]
        ans = agent.ask(ev, it.question)
        preds.append(ans.text)
        base.append(baseline.ask(ev, it.question).text)
        rows.append({"id": it.id, "dataset": it.dataset, "subject": it.subject, "image_id": it.image_id,
                     "question": it.question, "answer": it.answer, "prediction": ans.text, "raw": ans.raw,
                     "evidence_only": base[-1]})
    questions, refs = [it.question for it in items], [it.answer for it in items]

    def scores(p: list[str]) -> dict:
        s = vqa_scores(questions, refs, p).to_dict()
        return {k: s[k] for k in ("n", "coarse_uf1", "coarse_uar", "fine_uf1", "fine_uar", "presence_accuracy",
                                  "side_accuracy", "analysis_exact", "bleu_sentence_smoothed", "bleu_corpus4",
                                  "rouge1_recall", "rouge1_f1", "counts")}

    metrics = {"adapter": scores(preds), "baseline": scores(base), "test_subjects": data.test_subjects}
    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / "predictions.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    (out_dir / "metrics.json").write_text(json.dumps(metrics, indent=1) + "\n", encoding="utf-8")
    return metrics


def _fmt(x) -> str:
    return "n/a" if x is None else f"{x:.3f}"


def _write_card(adapter_dir: Path, cfg: TrainConfig, model_path: str, data: _Data, train_set, total: int,
                losses: list[float], metrics: dict, n_trainable: int) -> None:
    """README.md in the adapter folder (replacing PEFT's template): data, split, settings, metrics."""
    from collections import Counter

    base = cfg.model if cfg.model not in TINY_MODELS else model_path
    kinds = Counter(it.kind for it in data.train_items)
    classes = Counter(it.label for it in data.train_items if it.kind in ("coarse", "fine"))
    lines = [
        "---", f"base_model: {base}", "library_name: peft", "tags: [mevqa, micro-expression, lora, qwen-vl]", "---", "",
        f"# mevqa LoRA adapter for {base}", "",
        "Answers MEGC2025 ME-VQA questions about facial micro-expressions from three keyframes (onset, apex,",
        "offset), the onset-to-apex optical-flow map and mevqa's measured evidence (action units, FACS emotion",
        "candidates), all rendered by `mevqa.answer.prompt.build_messages`, the prompt the agent uses at inference.", "",
        "```", f"mevqa ask CLIP \"What is the coarse expression class?\" --model {base} --adapter {adapter_dir}", "```", "",
        "## Data", "",
        *[f"- {s}" for s in data.sources],
        f"- {data.n_clips} clips with questions; {len(data.train_items)} training questions "
        f"({', '.join(f'{k} {v}' for k, v in kinds.most_common())}), {len(data.test_items)} held-out questions",
        f"- training classes (coarse/fine questions): {', '.join(f'{k} {v}' for k, v in classes.most_common()) or 'none'}",
        f"- evidence on the {'coded onset/apex/offset of the coding sheet' if cfg.data.coded_interval else 'spotted interval'}",
        *([f"- {len(data.skipped)} clips or records skipped, e.g. {data.skipped[0]}"] if data.skipped else []), "",
        "## Split (subject-independent)", "",
        f"- {data.split_text}",
        f"- training subjects ({len(data.train_subjects)}): {', '.join(data.train_subjects)}",
        f"- held-out subjects ({len(data.test_subjects)}): {', '.join(data.test_subjects) or 'none'}",
        "- checked with `assert_subject_disjoint` before training: no subject is on both sides", "",
        "## Settings", "",
        f"- LoRA r {cfg.lora.r}, alpha {cfg.lora.alpha}, dropout {cfg.lora.dropout}; targets "
        f"`{cfg.lora.target_modules or 'language model q/k/v/o + gate/up/down'}`"
        f"{'; vision blocks' if cfg.lora.vision else ''}{'; merger' if cfg.lora.merger else ''}"
        f"{'; fully trained: ' + ', '.join(cfg.lora.modules_to_save) if cfg.lora.modules_to_save else ''}; "
        f"vision tower {'adapted' if cfg.lora.vision else 'frozen'}; {n_trainable:,} trainable parameters",
        f"- {'QLoRA: 4-bit NF4 base (bitsandbytes)' if cfg.load_in_4bit else 'LoRA on a full-precision base'}; "
        f"{'bf16' if cfg.bf16 else 'fp32'} on GPU, fp32 on CPU",
        f"- {total} optimizer steps of {cfg.batch_size} x {cfg.grad_accum} samples per process; lr {cfg.lr:g} "
        f"({cfg.scheduler}, {cfg.warmup_steps} warmup steps), weight decay {cfg.weight_decay:g}, "
        f"grad clip {cfg.max_grad_norm:g}; class balance: {cfg.balance}; seed {cfg.seed}",
        "- loss: cross-entropy on the answer tokens and `<|im_end|>` only, averaged per sample",
        f"- training loss {_fmt(losses[0] if losses else None)} -> {_fmt(losses[-1] if losses else None)}", "",
        "## Held-out metrics", "",
    ]
    if metrics:
        lines += ["UF1 = macro F1, UAR = mean per-class recall, over the classes present in the held-out answers;",
                  "BLEU = mean sentence BLEU-4 with smoothing (NLTK method 1) and sacreBLEU corpus BLEU-4; ROUGE-1",
                  "recall and F1 (rouge-score), all answers lower-cased. The evidence-only backend answers the same",
                  "questions from the same evidence without a model.", "",
                  "| | coarse UF1 | coarse UAR | fine UF1 | fine UAR | BLEU (sent.) | BLEU (corpus) | ROUGE-1 R | ROUGE-1 F1 |",
                  "|---|---|---|---|---|---|---|---|---|"]
        for name, key in (("adapter", "adapter"), ("evidence-only", "baseline")):
            m = metrics[key]
            lines.append(f"| {name} | {_fmt(m['coarse_uf1'])} | {_fmt(m['coarse_uar'])} | {_fmt(m['fine_uf1'])} | "
                         f"{_fmt(m['fine_uar'])} | {_fmt(m['bleu_sentence_smoothed'])} | {_fmt(m['bleu_corpus4'])} | "
                         f"{_fmt(m['rouge1_recall'])} | {_fmt(m['rouge1_f1'])} |")
        lines += ["", f"{metrics['adapter']['n']} held-out questions; predictions in `{cfg.run_dir}/eval/predictions.jsonl`."]
    else:
        lines.append("Not evaluated: " + ("no held-out subject." if not data.test_items else "eval_at_end is false."))
    lines += ["", "## Limitations", "",
              "Micro-expression datasets are small (tens of subjects); scores on a few held-out subjects vary a lot",
              "between folds. The adapter reads emotions from facial movements: it does not detect lies or intentions.", ""]
    (adapter_dir / "README.md").write_text("\n".join(lines), encoding="utf-8")


# ----------------------------------------------------------------------------------------------
# command line


def main_train(config_path: str | os.PathLike, overrides: Sequence[str] = ()) -> TrainResult:
    """``mevqa train CONFIG.yaml [key=value ...]``: load, train, print where things are."""
    cfg = load_config(config_path, overrides)
    result = train(cfg)
    import accelerate.state

    if accelerate.state.PartialState().is_main_process:
        print(f"trained {result.steps} steps in {result.seconds:.1f} s ({result.step_seconds:.2f} s/step); "
              f"loss {_fmt(result.first_loss)} -> {_fmt(result.last_loss)}"
              + (f" (resumed at step {result.resumed_from})" if result.resumed_from else ""))
        print(f"split: {result.split}")
        if result.metrics:
            a, b = result.metrics["adapter"], result.metrics["baseline"]
            print(f"held-out ({a['n']} questions): coarse UF1 {_fmt(a['coarse_uf1'])} UAR {_fmt(a['coarse_uar'])}, "
                  f"fine UF1 {_fmt(a['fine_uf1'])} UAR {_fmt(a['fine_uar'])}; evidence-only: coarse UF1 "
                  f"{_fmt(b['coarse_uf1'])}, fine UF1 {_fmt(b['fine_uf1'])}")
        print(f"adapter: {result.adapter_dir}  (mevqa ask CLIP QUESTION --model MODEL --adapter {result.adapter_dir})")
    return result
