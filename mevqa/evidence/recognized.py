"""The learned recogniser's reading as evidence (``--recognizer PATH``).

For every interval of an :class:`~mevqa.evidence.result.Evidence`, a trained MMNet
(:class:`mevqa.recognize.predict.Recognizer`) reads the interval's onset and apex frames and its
class distribution joins the interval as ``recognizer`` (label, confidence, probabilities, where its
attention peaked, the model folder), with the attention heat map over the aligned onset crop as the
``attention`` image. It is one more cue beside the FACS rules (``emotions``), never a replacement:
the text names it as a learned reading, with its confidence, so a reader (or the VLM) can weigh it.
"""
from __future__ import annotations

from mevqa.io.video import Clip
from mevqa.recognize.predict import Recognizer

__all__ = ["add_recognizer_reading"]


def add_recognizer_reading(ev, clip: Clip, recognizer: Recognizer | str, *, attention_image: bool = True):
    """Add the recogniser's reading to every interval of ``ev`` (in place; returns ``ev``). An interval
    whose frames show no face keeps an empty reading with the reason."""
    rec = recognizer if isinstance(recognizer, Recognizer) else Recognizer.load(recognizer)
    for iv in ev.intervals:
        try:
            reading = rec.read(clip, int(iv.onset), int(iv.apex))
        except ValueError as err:  # no face on the onset/apex frames, frames outside the clip
            iv.recognizer = {"error": str(err).splitlines()[0], "source": rec.source}
            continue
        iv.recognizer = reading.to_dict()
        if attention_image:
            iv.images["attention"] = rec.heatmap(reading)
    return ev
