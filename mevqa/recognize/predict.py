"""A trained recogniser's reading of one onset/apex pair: class distribution and attention map.

The reading is one more cue beside the FACS rules: a class distribution from a network trained on
labelled clips of *other* people (subject-independent training), and where its last Continuous
Attention block looked, upsampled to the aligned crop for a heat map.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np
import torch

from mevqa.io.video import Clip
from mevqa.recognize.crops import PairCrops, crops_from_clip
from mevqa.recognize.inputs import motion_input, onset_input
from mevqa.recognize.network import MMNet

__all__ = ["RecognizerReading", "Recognizer", "predict_batch"]


@dataclass
class RecognizerReading:
    """Class probabilities (summing to 1), the top class, and the attention map (S, S) in [0, 1] over
    the aligned crop (``crop``, RGB uint8, the onset frame it was computed on)."""

    probabilities: dict[str, float]
    label: str
    attention: np.ndarray
    crop: np.ndarray | None = None
    source: str = ""
    meta: dict = field(default_factory=dict)

    @property
    def confidence(self) -> float:
        return self.probabilities[self.label]

    def to_dict(self) -> dict:
        """JSON-friendly: the distribution, the label and the attention map's peak cell (fraction of the crop)."""
        y, x = np.unravel_index(int(np.argmax(self.attention)), self.attention.shape)
        h, w = self.attention.shape
        return {"label": self.label, "confidence": round(self.confidence, 4),
                "probabilities": {k: round(v, 4) for k, v in self.probabilities.items()},
                "attention_peak": [round((x + 0.5) / w, 3), round((y + 0.5) / h, 3)], "source": self.source}


def predict_batch(model: MMNet, motion: np.ndarray, onset: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Softmax probabilities (B, K) and last attention maps (B, g, g) for stacked inputs, in eval mode."""
    model.eval()
    dev = next(model.parameters()).device
    with torch.no_grad():
        out = model(torch.from_numpy(motion).to(dev), torch.from_numpy(onset).to(dev))
    return torch.softmax(out.logits, dim=1).cpu().numpy(), out.attention[:, 0].cpu().numpy()


class Recognizer:
    """A saved MMNet (a run's ``recognizer/`` folder or any :meth:`MMNet.save_pretrained` folder)."""

    def __init__(self, model: MMNet, *, source: str = "") -> None:
        self.model = model.eval()
        self.config = model.config
        self.source = source

    @classmethod
    def load(cls, path: str | Path) -> "Recognizer":
        p = Path(path)
        if (p / "recognizer" / "config.json").is_file():  # a training run folder
            p = p / "recognizer"
        return cls(MMNet.from_pretrained(p), source=str(p))

    def read_crops(self, crops: PairCrops) -> RecognizerReading:
        onset, apex = crops.coded
        size = self.config.image_size
        if onset.shape[0] != size:
            onset = cv2.resize(onset, (size, size), interpolation=cv2.INTER_AREA)
            apex = cv2.resize(apex, (size, size), interpolation=cv2.INTER_AREA)
        motion = motion_input(onset, apex, kind=self.config.input, flow_scale=self.config.flow_scale)
        probs, attn = predict_batch(self.model, motion[None], onset_input(onset)[None])
        p = {c: float(v) for c, v in zip(self.config.classes, probs[0])}
        heat = cv2.resize(attn[0], (size, size), interpolation=cv2.INTER_CUBIC)
        heat = np.clip((heat - heat.min()) / max(float(np.ptp(heat)), 1e-8), 0, 1).astype(np.float32)
        return RecognizerReading(p, max(p, key=p.get), heat, onset, self.source)

    def read(self, clip: Clip, onset: int, apex: int) -> RecognizerReading:
        """Read a clip's expression between 0-based ``onset`` and ``apex`` frames."""
        return self.read_crops(crops_from_clip(clip, onset, apex, size=self.config.image_size))

    def heatmap(self, reading: RecognizerReading, *, alpha: float = 0.45) -> np.ndarray:
        """The attention map over the onset crop, as RGB uint8 (JET colours blended on the face)."""
        if reading.crop is None:
            raise ValueError("this reading has no crop to draw on")
        v = (reading.attention * 255).astype(np.uint8)
        colour = cv2.cvtColor(cv2.applyColorMap(v, cv2.COLORMAP_JET), cv2.COLOR_BGR2RGB)
        return cv2.addWeighted(reading.crop, 1 - alpha, colour, alpha, 0)
