"""The MEGC2025 ME-VQA label sets: coarse and fine expression classes and the fine -> coarse map.

Source: the MEGC2025 ME-VQA training files (every CASME II and SAMM clip's fine and coarse answers).
"""
from __future__ import annotations

from mevqa.facs.codes import UnknownLabelError, _key

__all__ = ["COARSE_CLASSES", "FINE_CLASSES", "FINE_TO_COARSE", "valence", "normalise_fine_label",
           "normalise_coarse_label"]

#: Answers to "What is the coarse expression class?".
COARSE_CLASSES: tuple[str, ...] = ("negative", "positive", "surprise")

#: Answers to "What is the fine-grained expression class?" found in the MEGC2025 training files
#: (CASME II: disgust, happiness, repression, surprise; SAMM: anger, contempt, disgust, fear,
#: happiness, sadness, surprise; SMIC clips carry no fine label). Nothing else is invented.
FINE_CLASSES: tuple[str, ...] = (
    "anger", "contempt", "disgust", "fear", "happiness", "repression", "sadness", "surprise",
)

#: Fine -> coarse exactly as every training clip pairs them (checked over all 278 CASME II and
#: SAMM clips: happiness -> positive, surprise -> surprise, the other six -> negative; note
#: repression is negative here, not "others" as in some 5-class CASME II protocols).
FINE_TO_COARSE: dict[str, str] = {
    "anger": "negative",
    "contempt": "negative",
    "disgust": "negative",
    "fear": "negative",
    "happiness": "positive",
    "repression": "negative",
    "sadness": "negative",
    "surprise": "surprise",
}

_FINE_SYNONYMS: dict[str, str] = {
    "angry": "anger", "anger": "anger", "annoyed": "anger", "annoyance": "anger",
    "contempt": "contempt", "contemptuous": "contempt", "scorn": "contempt",
    "disgust": "disgust", "disgusted": "disgust",
    "fear": "fear", "fearful": "fear", "afraid": "fear", "scared": "fear",
    "happiness": "happiness", "happy": "happiness", "happiest": "happiness", "joy": "happiness",
    "repression": "repression", "repressed": "repression", "repress": "repression",
    "sadness": "sadness", "sad": "sadness", "sorrow": "sadness",
    "surprise": "surprise", "surprised": "surprise",
}
_COARSE_SYNONYMS: dict[str, str] = {
    "negative": "negative", "positive": "positive", "surprise": "surprise", "surprised": "surprise",
}


def normalise_fine_label(label: str | None) -> str | None:
    """A fine label (or a common synonym such as "happy", "sad") in MEGC spelling, else None."""
    if label is None:
        return None
    return _FINE_SYNONYMS.get(_key(label))


def normalise_coarse_label(label: str | None) -> str | None:
    """A coarse label in MEGC spelling, else None."""
    if label is None:
        return None
    return _COARSE_SYNONYMS.get(_key(label))


def valence(fine: str) -> str:
    """The MEGC coarse class of a fine class: ``valence("contempt") == "negative"``."""
    label = normalise_fine_label(fine)
    if label is None:
        raise UnknownLabelError(f"unknown fine-grained class {fine!r} (known: {', '.join(FINE_CLASSES)})")
    return FINE_TO_COARSE[label]

