"""Training configuration: the dataclasses of a fine-tuning run and their YAML + ``key=value`` loading.

A run is one :class:`TrainConfig` with sections :class:`DataConfig`, :class:`SplitConfig` and
:class:`LoRAConfig`, read from a YAML file plus dotted overrides (``lora.r=8``) by :func:`load_config`.
Why not transformers' ``HfArgumentParser``: it parses flat dataclasses from argv or a flat dict, while
these configs are nested YAML sections that must refuse unknown keys and fail with one line naming
the key; the coercion below does only that (YAML scalars to the declared field types).
"""
from __future__ import annotations

import os
import re
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any, Sequence

import yaml

__all__ = ["ConfigError", "LoRAConfig", "DataConfig", "SplitConfig", "TrainConfig", "load_config", "TINY_MODELS",
           "QUESTION_KINDS"]

TINY_MODELS = {"tiny": "qwen2_5_vl", "tiny-qwen2.5": "qwen2_5_vl", "tiny-qwen3": "qwen3_vl"}
BALANCE_MODES = ("sampler", "loss", "none")
SCHEDULERS = ("cosine", "linear", "constant")
QUESTION_KINDS = ("coarse", "fine", "au_list", "au_presence", "au_side", "analysis")


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
    frozen vision tower once per distinct image set (keyed by content) and reuse its output every
    epoch (exact: it has no dropout and no trainable weight; ignored when LoRA touches the vision
    side). ``bf16``: bfloat16 weights and autocast on a GPU that supports it (CPU fp32 unless
    ``cpu_bf16``: bf16 on the CPU too, slow, to check the GPU's precision path without a GPU).
    ``save_every``: checkpoint
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
    cpu_bf16: bool = False
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
        """Write the config as YAML atomically (a temp file renamed into place: a kill never leaves half)."""
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
        tmp.write_text(yaml.safe_dump(self.to_dict(), sort_keys=False), encoding="utf-8")
        os.replace(tmp, path)
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


def read_yaml_mapping(path: str | os.PathLike, *, error: type[ValueError] = ConfigError) -> dict:
    """A YAML config file's top-level mapping; a missing file, bad YAML or another top level is one ``error`` line."""
    p = Path(path)
    if not p.is_file():
        raise error(f"config file not found: {p}")
    try:
        values = yaml.safe_load(p.read_text(encoding="utf-8")) or {}
    except yaml.YAMLError as exc:
        raise error(f"{p}: not valid YAML ({str(exc).splitlines()[0]})") from None
    if not isinstance(values, dict):
        raise error(f"{p}: the top level must be a mapping of keys to values")
    return values


def load_config(path: str | os.PathLike | None, overrides: Sequence[str] = ()) -> TrainConfig:
    """A :class:`TrainConfig` from a YAML file (or defaults when ``path`` is None) plus ``key=value``
    overrides with dotted keys (``lora.r=8``, ``split.test_subjects=[sub01,sub02]``); values are read
    as YAML scalars. Relative paths in the file stay relative to the working directory."""
    values: dict = read_yaml_mapping(path) if path is not None else {}
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
