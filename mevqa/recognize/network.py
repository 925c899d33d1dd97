"""MMNet, the muscle-motion-guided micro-expression recogniser, in plain torch.

Li, Sui, Zhu & Zhao, "MMNet: Muscle motion-guided network for micro-expression recognition",
IJCAI 2022. Two branches:

- **Main branch** on the motion between the onset and apex frames (their difference, our optical
  flow, or both: :data:`INPUT_KINDS`): a stride-2 stem, then four Continuous Attention (CA) blocks.
  Each block's features are a 3x3-then-1x1 convolution path plus a 1x1 path; its spatial attention is
  a sigmoid of a 1x1 convolution over the channel-wise max and mean of those features, multiplied by
  the previous block's attention map max-pooled to this block's resolution, so attention narrows
  block by block onto the moving muscles. Full size: 224x224 in, 512x14x14 out.
- **Position Calibration** sub-branch: a shallow ViT (patch size 1) over the onset frame resized to
  the main branch's output grid (14x14); its token embeddings, laid back on the grid, are added to
  the motion features before pooling and classification, telling the classifier *where* on the face
  the motion is.

Weights are saved as safetensors beside a JSON config (:meth:`MMNet.save_pretrained`) and loaded
without executing code (:meth:`MMNet.from_pretrained`).
"""
from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from mevqa.recognize.config import INPUT_KINDS, MMNetConfig, RecognizerFormatError, input_channels, tiny_config

__all__ = ["INPUT_KINDS", "MMNetConfig", "MMNetOutput", "ContinuousAttentionBlock", "PositionCalibration",
           "MMNet", "input_channels", "tiny_config", "RecognizerFormatError"]

WEIGHTS_NAME = "model.safetensors"
CONFIG_NAME = "config.json"


def _conv_bn(cin: int, cout: int, k: int, stride: int = 1) -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(cin, cout, k, stride, k // 2, bias=False), nn.BatchNorm2d(cout))


class ContinuousAttentionBlock(nn.Module):
    """A CA block: features = relu(3x3 -> 1x1 path + 1x1 path); attention = sigmoid(conv1x1([max, mean]))
    times the previous block's attention max-pooled to this resolution; output = features * attention."""

    def __init__(self, cin: int, cout: int, stride: int) -> None:
        super().__init__()
        self.path3 = nn.Sequential(_conv_bn(cin, cout, 3, stride), nn.ReLU(inplace=True), _conv_bn(cout, cout, 1))
        self.path1 = _conv_bn(cin, cout, 1, stride)
        self.attn = nn.Conv2d(2, 1, 1)

    def forward(self, x: torch.Tensor, previous: torch.Tensor | None) -> tuple[torch.Tensor, torch.Tensor]:
        feat = F.relu(self.path3(x) + self.path1(x))
        pooled = torch.cat([feat.amax(dim=1, keepdim=True), feat.mean(dim=1, keepdim=True)], dim=1)
        attn = torch.sigmoid(self.attn(pooled))
        if previous is not None:
            # continuous attention: the earlier (finer) map, max-pooled so a muscle seen anywhere in a
            # cell keeps its weight, gates this one
            attn = attn * F.adaptive_max_pool2d(previous, attn.shape[-2:])
        return feat * attn, attn


class _Mlp(nn.Module):
    def __init__(self, dim: int, hidden: int) -> None:
        super().__init__()
        self.fc1, self.fc2 = nn.Linear(dim, hidden), nn.Linear(hidden, dim)

    def forward(self, x):
        return self.fc2(F.gelu(self.fc1(x)))


class _VitBlock(nn.Module):
    def __init__(self, dim: int, heads: int, mlp_ratio: float, drop_path: float) -> None:
        super().__init__()
        self.norm1, self.norm2 = nn.LayerNorm(dim, eps=1e-6), nn.LayerNorm(dim, eps=1e-6)
        self.attn = nn.MultiheadAttention(dim, heads, bias=False, batch_first=True)
        self.mlp = _Mlp(dim, int(dim * mlp_ratio))
        self.drop_path = drop_path

    def _drop(self, x: torch.Tensor) -> torch.Tensor:
        """Stochastic depth (Huang et al., ECCV 2016): drop a sample's residual branch while training."""
        if not self.training or self.drop_path == 0.0:
            return x
        keep = torch.rand(x.shape[0], 1, 1, device=x.device) >= self.drop_path
        return x * keep / (1.0 - self.drop_path)

    def forward(self, x):
        h = self.norm1(x)
        x = x + self._drop(self.attn(h, h, h, need_weights=False)[0])
        return x + self._drop(self.mlp(self.norm2(x)))


class PositionCalibration(nn.Module):
    """The shallow ViT over the low-resolution onset frame: one token per grid cell (patch size 1),
    learned position embeddings; returns (B, dim, grid, grid) to add to the motion features."""

    def __init__(self, config: MMNetConfig) -> None:
        super().__init__()
        dim, g = config.widths[-1], config.grid
        self.grid = g
        self.embed = nn.Conv2d(3, dim, 1)
        self.pos = nn.Parameter(torch.zeros(1, g * g, dim))
        nn.init.trunc_normal_(self.pos, std=0.02)
        rates = torch.linspace(0, config.vit_drop_path, config.vit_depth).tolist()
        self.blocks = nn.ModuleList(_VitBlock(dim, config.vit_heads, config.vit_mlp_ratio, r) for r in rates)
        self.norm = nn.LayerNorm(dim, eps=1e-6)

    def forward(self, onset: torch.Tensor) -> torch.Tensor:
        small = F.interpolate(onset, size=(self.grid, self.grid), mode="area")
        tokens = self.embed(small).flatten(2).transpose(1, 2) + self.pos
        for blk in self.blocks:
            tokens = blk(tokens)
        b, n, d = tokens.shape
        return self.norm(tokens).transpose(1, 2).reshape(b, d, self.grid, self.grid)


@dataclass
class MMNetOutput:
    logits: torch.Tensor                  # (B, classes)
    attention: torch.Tensor               # (B, 1, grid, grid): the last CA block's attention map
    attentions: list = field(default_factory=list)  # every block's map, finest first


class MMNet(nn.Module):
    """MMNet (Li et al., IJCAI 2022). ``forward(motion, onset)``: motion (B, C, S, S) from
    :func:`mevqa.recognize.inputs.motion_input`, onset (B, 3, S, S) normalised RGB."""

    def __init__(self, config: MMNetConfig) -> None:
        super().__init__()
        self.config = config
        self.stem = nn.Sequential(_conv_bn(input_channels(config.input), config.stem_channels, 3, 2),
                                  nn.ReLU(inplace=True))
        chans = (config.stem_channels, *config.widths)
        self.blocks = nn.ModuleList(ContinuousAttentionBlock(chans[i], chans[i + 1], config.strides[i])
                                    for i in range(4))
        self.position = PositionCalibration(config)
        self.dropout = nn.Dropout(config.dropout)
        self.head = nn.Linear(config.widths[-1], len(config.classes))

    def features(self, motion: torch.Tensor, onset: torch.Tensor) -> tuple[torch.Tensor, list]:
        """Motion features plus the position embedding (B, 512, 14, 14 at full size), and the attention maps."""
        x, attn, maps = self.stem(motion), None, []
        for blk in self.blocks:
            x, attn = blk(x, attn)
            maps.append(attn)
        return x + self.position(onset), maps

    def forward(self, motion: torch.Tensor, onset: torch.Tensor) -> MMNetOutput:
        feat, maps = self.features(motion, onset)
        logits = self.head(self.dropout(feat.mean(dim=(2, 3))))
        return MMNetOutput(logits, maps[-1], maps)

    # -- saving and loading --------------------------------------------------------------------
    def save_pretrained(self, directory, *, extra: dict | None = None) -> Path:
        """Write ``model.safetensors`` and ``config.json`` (plus ``extra`` metadata) to ``directory``."""
        from safetensors.torch import save_file

        out = Path(directory)
        out.mkdir(parents=True, exist_ok=True)
        state = {k: v.detach().contiguous().cpu() for k, v in self.state_dict().items()}
        save_file(state, str(out / WEIGHTS_NAME), metadata={"format": "pt", "architecture": "mmnet"})
        doc = {"architecture": "mmnet", "mmnet": self.config.to_dict(), **(extra or {})}
        (out / CONFIG_NAME).write_text(json.dumps(doc, indent=1) + "\n", encoding="utf-8")
        return out

    @classmethod
    def read_config(cls, directory) -> tuple[MMNetConfig, dict]:
        """The network config and the whole JSON document of a saved recogniser."""
        p = Path(directory) / CONFIG_NAME
        if not p.is_file():
            raise RecognizerFormatError(f"{directory}: no {CONFIG_NAME} (not a saved recogniser)")
        try:
            doc = json.loads(p.read_text(encoding="utf-8"))
        except json.JSONDecodeError as err:
            raise RecognizerFormatError(f"{p}: not JSON ({err})") from None
        if doc.get("architecture") != "mmnet" or not isinstance(doc.get("mmnet"), dict):
            raise RecognizerFormatError(f"{p}: not an MMNet config")
        return MMNetConfig.from_dict(doc["mmnet"]), doc

    @classmethod
    def from_pretrained(cls, directory, *, map_location: str = "cpu") -> "MMNet":
        """Load a recogniser saved by :meth:`save_pretrained` (safetensors: no code runs on load)."""
        from safetensors.torch import load_file

        config, _ = cls.read_config(directory)
        w = Path(directory) / WEIGHTS_NAME
        if not w.is_file():
            raise RecognizerFormatError(f"{directory}: no {WEIGHTS_NAME}")
        model = cls(config)
        missing, unexpected = model.load_state_dict(load_file(str(w), device=map_location), strict=False)
        if missing or unexpected:
            raise RecognizerFormatError(f"{w}: weights do not fit the config "
                                        f"(missing {len(missing)}, unexpected {len(unexpected)})")
        return model.eval()
