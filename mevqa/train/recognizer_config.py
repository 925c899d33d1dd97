"""Configuration of a recogniser training run (a YAML file with a top-level ``recognizer:`` section).

``mevqa train CONFIG`` sends a config with a ``recognizer:`` section here and any other config to the
VLM trainer. Every key is checked (an unknown key is an error naming the known ones); ``key=value``
overrides use dotted keys below ``recognizer`` (``epochs=5``, ``split.protocol=holdout``).

Defaults follow MMNet (Li et al., IJCAI 2022): AdamW at 8e-4 with exponential decay, batch 32,
70 epochs, 224x224 input, leave-one-subject-out. ``lr_gamma`` is per epoch (0.987 takes 8e-4 to about
3.2e-4 over 70 epochs).
"""
from __future__ import annotations

import os
from dataclasses import asdict, dataclass, field, fields
from typing import Sequence

from mevqa.recognize.config import MMNetConfig, tiny_config
from mevqa.train.config import read_yaml_mapping

__all__ = ["RecognizerConfigError", "RecognizerData", "RecognizerSplit", "Augment", "RecognizerTrainConfig",
           "is_recognizer_config", "load_recognizer_config", "network_config", "COARSE_CLASSES"]

COARSE_CLASSES = ("negative", "positive", "surprise")


class RecognizerConfigError(ValueError):
    """A recogniser config that cannot be used (one line)."""


@dataclass
class RecognizerData:
    """Where labelled clips come from: coding sheets (``sheets``: a list of {sheet, frames_root,
    dataset}) and/or a synthetic CASME II- or SAMM-style set written into the run folder."""

    sheets: list = field(default_factory=list)
    synthetic: bool = False
    layout: str = "casme2"
    synthetic_subjects: int = 4
    synthetic_clips: int = 6
    synthetic_seconds: float = 0.6
    synthetic_seed: int = 0
    synthetic_root: str | None = None  # where the synthetic set is written (default RUN/synthetic_data)
    labels: object = "coarse"          # "coarse", "fine", or a list of classes (fine names or sheet labels)
    crop_cache: str | None = None      # default $MEVQA_CACHE/recognizer (or ~/.cache/mevqa/recognizer)


@dataclass
class RecognizerSplit:
    """``loso``: one fold per subject (``max_folds`` caps how many run, for smoke tests); ``holdout``:
    one split by subject (``test_subjects`` or ``test_fraction``). Both are subject-disjoint by
    construction and checked again before training."""

    protocol: str = "loso"
    test_subjects: list = field(default_factory=list)
    test_fraction: float = 0.2
    max_folds: int | None = None


@dataclass
class Augment:
    """Training augmentation (MMNet): onset/apex drawn among the four frames around the coded ones,
    horizontal flip, random crop after ``crop_padding`` px of padding, colour jitter of +-``colour``."""

    jitter_frames: bool = True
    flip: bool = True
    crop_padding: int = 4
    colour: float = 0.2


@dataclass
class RecognizerTrainConfig:
    run_dir: str = "runs/recognizer"
    data: RecognizerData = field(default_factory=RecognizerData)
    split: RecognizerSplit = field(default_factory=RecognizerSplit)
    augment: Augment = field(default_factory=Augment)
    network: dict = field(default_factory=dict)   # "size: full|tiny" plus any MMNetConfig field
    epochs: int = 70
    batch_size: int = 32
    lr: float = 8e-4
    lr_gamma: float = 0.987
    weight_decay: float = 0.05
    class_weights: object = "balanced"  # "balanced" (inverse frequency, mean 1), "none", or a list
    final_model: bool = True            # after the folds, train on every clip and save RUN/recognizer/
    save_every: int = 1                 # epochs between checkpoints
    seed: int = 0
    device: str = "auto"
    threads: int | None = None

    def to_dict(self) -> dict:
        return asdict(self)


_SECTIONS = {"data": RecognizerData, "split": RecognizerSplit, "augment": Augment}


def _check(cls, values: dict, where: str) -> dict:
    known = [f.name for f in fields(cls)]
    for key in values:
        if key not in known:
            raise RecognizerConfigError(f"unknown recognizer config key '{where}{key}' (known: {', '.join(known)})")
    return values


def _from_dict(values: dict) -> RecognizerTrainConfig:
    _check(RecognizerTrainConfig, values, "")
    kw = {}
    for key, value in values.items():
        if key in _SECTIONS:
            if not isinstance(value, dict):
                raise RecognizerConfigError(f"recognizer.{key} must be a mapping")
            kw[key] = _SECTIONS[key](**_check(_SECTIONS[key], value, f"{key}."))
        else:
            kw[key] = value
    cfg = RecognizerTrainConfig(**kw)
    for name in ("epochs", "batch_size", "save_every"):
        if not isinstance(getattr(cfg, name), int) or getattr(cfg, name) < 1:
            raise RecognizerConfigError(f"{name} must be a positive integer, got {getattr(cfg, name)!r}")
    cfg.lr, cfg.lr_gamma, cfg.weight_decay = float(cfg.lr), float(cfg.lr_gamma), float(cfg.weight_decay)
    if cfg.split.protocol not in ("loso", "holdout"):
        raise RecognizerConfigError(f"split.protocol must be loso or holdout (subject-independent), got "
                                    f"{cfg.split.protocol!r}")
    if not cfg.data.synthetic and not cfg.data.sheets:
        raise RecognizerConfigError("no data: give data.sheets (coding sheet + frames root) or data.synthetic: true")
    network_config(cfg, classes=("a", "b"))  # fail early on a bad network section
    return cfg


def network_config(cfg: RecognizerTrainConfig, *, classes: Sequence[str]) -> MMNetConfig:
    """The MMNetConfig of a run: ``network.size`` (full or tiny) plus the section's other fields."""
    net = dict(cfg.network or {})
    size = net.pop("size", "full")
    try:
        if size == "tiny":
            return tiny_config(classes=tuple(classes), **net)
        if size == "full":
            return MMNetConfig(classes=tuple(classes), **net)
    except TypeError as err:
        raise RecognizerConfigError(f"network: {err}") from None
    except ValueError as err:
        raise RecognizerConfigError(f"network: {err}") from None
    raise RecognizerConfigError(f"network.size must be full or tiny, got {size!r}")


def _read_yaml(path) -> dict:
    return read_yaml_mapping(path, error=RecognizerConfigError)


def is_recognizer_config(path: str | os.PathLike) -> bool:
    """True when the YAML file has a top-level ``recognizer:`` section."""
    try:
        return isinstance(_read_yaml(path).get("recognizer"), dict)
    except RecognizerConfigError:
        return False


def load_recognizer_config(path: str | os.PathLike | None, overrides: Sequence[str] = ()) -> RecognizerTrainConfig:
    """The config of ``path``'s ``recognizer:`` section plus dotted ``key=value`` overrides."""
    import yaml

    values = {}
    if path is not None:
        doc = _read_yaml(path)
        values = doc.get("recognizer")
        if not isinstance(values, dict):
            raise RecognizerConfigError(f"{path}: no 'recognizer:' section")
    for item in overrides:
        key, sep, raw = item.partition("=")
        key = key.strip().removeprefix("recognizer.")
        if not sep or not key:
            raise RecognizerConfigError(f"override {item!r} is not key=value")
        cur = values
        parts = key.split(".")
        for part in parts[:-1]:
            cur = cur.setdefault(part, {})
            if not isinstance(cur, dict):
                raise RecognizerConfigError(f"override {item!r}: {part} is not a section")
        cur[parts[-1]] = yaml.safe_load(raw) if raw.strip() else ""
    return _from_dict(values)
