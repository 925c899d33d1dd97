"""The MMNet configuration (no torch import: ``mevqa train`` reads configs before the training stack).

Defaults are the full size of Li et al., IJCAI 2022 (224x224 in, 512x14x14 motion features);
:func:`tiny_config` is a CPU-sized network for smoke runs and tests.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass, fields

__all__ = ["INPUT_KINDS", "MMNetConfig", "input_channels", "tiny_config", "RecognizerFormatError"]

INPUT_KINDS = ("diff", "flow", "both")


class RecognizerFormatError(ValueError):
    """A saved recogniser that cannot be loaded (one line)."""


def input_channels(kind: str) -> int:
    """Channels of the motion input: RGB difference 3, flow (dx, dy) 2, both 5."""
    if kind not in INPUT_KINDS:
        raise ValueError(f"input must be one of {', '.join(INPUT_KINDS)}, got {kind!r}")
    return {"diff": 3, "flow": 2, "both": 5}[kind]


@dataclass
class MMNetConfig:
    """Network shape. The defaults are the paper's full size (224x224 in, 512x14x14 motion features,
    a 3-block ViT of width 512 and 4 heads); :func:`tiny_config` is a CPU-sized one."""

    classes: tuple[str, ...] = ("negative", "positive", "surprise")
    input: str = "diff"
    image_size: int = 224
    stem_channels: int = 180          # the paper's 90*2 stem
    widths: tuple[int, ...] = (128, 256, 512, 512)
    strides: tuple[int, ...] = (2, 2, 2, 1)   # 112 -> 56 -> 28 -> 14 -> 14
    vit_depth: int = 3
    vit_heads: int = 4
    vit_mlp_ratio: float = 2.0
    vit_drop_path: float = 0.3
    dropout: float = 0.5
    flow_scale: float = 2.0           # flow input is pixels / flow_scale (micro-motion is ~1-3 px at 224)

    def __post_init__(self) -> None:
        self.classes = tuple(str(c) for c in self.classes)
        self.widths, self.strides = tuple(int(w) for w in self.widths), tuple(int(s) for s in self.strides)
        input_channels(self.input)
        if len(self.classes) < 2:
            raise ValueError("a recogniser needs at least two classes")
        if len(self.widths) != 4 or len(self.strides) != 4:
            raise ValueError("MMNet has four CA blocks: give four widths and four strides")
        if self.image_size % self.total_stride:
            raise ValueError(f"image_size {self.image_size} is not divisible by the total stride {self.total_stride}")
        if self.widths[-1] % self.vit_heads:
            raise ValueError(f"the last width {self.widths[-1]} must be divisible by vit_heads {self.vit_heads}")

    @property
    def total_stride(self) -> int:
        s = 2
        for x in self.strides:
            s *= x
        return s

    @property
    def grid(self) -> int:
        """Side of the motion feature map (14 at full size)."""
        return self.image_size // self.total_stride

    def to_dict(self) -> dict:
        d = asdict(self)
        d["classes"], d["widths"], d["strides"] = list(self.classes), list(self.widths), list(self.strides)
        return d

    @classmethod
    def from_dict(cls, d: dict) -> "MMNetConfig":
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(d) - known)
        if unknown:
            raise RecognizerFormatError(f"unknown MMNet config key(s): {', '.join(unknown)}")
        return cls(**d)


def tiny_config(**overrides) -> MMNetConfig:
    """A CPU-sized MMNet: 64x64 in, 64x4x4 motion features, a 2-block ViT of width 64."""
    base = dict(image_size=64, stem_channels=16, widths=(16, 32, 64, 64), strides=(2, 2, 2, 1),
                vit_depth=2, vit_heads=4, vit_drop_path=0.1, dropout=0.3)
    base.update(overrides)
    return MMNetConfig(**base)
