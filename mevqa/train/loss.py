"""The training loss: cross-entropy on the answer tokens only, averaged per sample."""
from __future__ import annotations

import torch
import torch.nn.functional as F

__all__ = ["IGNORE_INDEX", "answer_loss", "to_device"]

IGNORE_INDEX = -100


def answer_loss(model, batch: dict):
    """Mean over samples of the mean cross-entropy of each sample's answer tokens, times its weight.

    Only the positions that predict answer tokens get logits (``logits_to_keep``): the prompt is
    several hundred tokens and Qwen's vocabulary 150k, so projecting it all would cost gigabytes.
    Per-sample means keep a one-word answer worth as much as a 30-token analysis sentence.
    """
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


def to_device(batch: dict, device) -> dict:
    return {k: v.to(device, non_blocking=True) if hasattr(v, "to") and not isinstance(v, dict) else v
            for k, v in batch.items()}
