"""Frozen vision features computed once per distinct image set and reused every epoch."""
from __future__ import annotations

import contextlib
import hashlib
from typing import Any, Sequence

import torch

__all__ = ["VisionCache", "content_key"]


def content_key(encoding: dict) -> str:
    """A digest of the images themselves (pixel values and patch grids), not of the clip they came from.

    Two questions about one clip can show different images (the agent focuses each question on its
    own interval), so a per-clip key could hand one question another's features; a content key cannot.
    The digest is memoised on the encoding dict (the dataset keeps its encodings for the whole run).
    """
    cached = encoding.get("_content_key")
    if cached is not None:
        return cached
    h = hashlib.blake2b(digest_size=16)
    for name in ("pixel_values", "image_grid_thw"):
        t = encoding[name].detach().cpu().contiguous()
        h.update(f"{name}:{t.dtype}:{tuple(t.shape)};".encode())
        h.update(t.reshape(-1).view(torch.uint8).numpy().tobytes())  # raw bytes, any dtype
    key = h.hexdigest()
    encoding["_content_key"] = key
    return key


class VisionCache:
    """The frozen vision tower's output per distinct image set, computed on first use and reused.

    The vision tower is frozen (no LoRA, no dropout), so its output for given pixels never changes
    during training: running it once per image set instead of once per sample is exact and saves
    most of the vision compute (four 224x224 images are 1024 patches through a 32-block ViT on
    Qwen2.5-VL-7B). Entries are keyed by :func:`content_key`. The features (pooled embeddings, and
    Qwen3-VL's deepstack features) stay on the training device, about 2 MB an image set for a 7B
    model, and are fed back through transformers' ``mm_encoder_outputs`` argument.
    """

    def __init__(self, model, device, autocast=contextlib.nullcontext) -> None:
        self.model = model          # the unwrapped (PEFT) model: get_image_features reaches the base
        self.device = device
        self.autocast = autocast
        self.store: dict[str, Any] = {}

    def _features(self, encoding: dict):
        key = content_key(encoding)
        if key not in self.store:
            with torch.no_grad(), self.autocast():
                out = self.model.get_image_features(encoding["pixel_values"].to(self.device),
                                                    encoding["image_grid_thw"].to(self.device))
            kept = {"pooler_output": tuple(t.detach() for t in out.pooler_output)}
            if getattr(out, "deepstack_features", None) is not None:
                kept["deepstack_features"] = [tuple(t.detach() for t in layer) for layer in out.deepstack_features]
            self.store[key] = type(out)(**kept)
        return self.store[key]

    def apply(self, batch: dict, encodings: Sequence[dict]) -> dict:
        """``batch`` with ``pixel_values`` replaced by the cached features of each sample's images."""
        if "pixel_values" not in batch or "pixel_values_videos" in batch:
            return batch
        outs = [self._features(e) for e in encodings]
        kept = {"pooler_output": tuple(t for o in outs for t in o.pooler_output)}
        if "deepstack_features" in outs[0]:
            kept["deepstack_features"] = [tuple(t for o in outs for t in o.deepstack_features[layer])
                                          for layer in range(len(outs[0].deepstack_features))]
        out = {k: v for k, v in batch.items() if k != "pixel_values"}
        out["mm_encoder_outputs"] = {"image": type(outs[0])(**kept)}
        return out
