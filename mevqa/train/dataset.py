"""Training samples for LoRA fine-tuning: coded clips -> Evidence -> prompts -> cached encodings.

For each clip the pipeline computes the same :class:`~mevqa.evidence.builder.Evidence` the answering agent
uses (keyframes, flow map, action units, FACS emotion candidates) and, for each question about it,
renders the chat with the one prompt builder (:func:`mevqa.answer.prompt.build_messages` with
``answer=``), then encodes it with :meth:`QwenVL.encode_for_training` (labels only on the answer and
its ``<|im_end|>``). What a model is trained on is therefore exactly what ``mevqa ask`` shows it.

Intervals. The datasets' coders marked onset, apex and offset; training uses those frames rather than
the spotter's guesses (:func:`coded_evidence`), so a sample never teaches an answer about frames the
spotter happened to pick instead of the expression that was labelled. The spotter still runs on the
clip, for the motion curve and for the interval's motion score (that of the spotted interval that
overlaps the coded one best, 0 when the spotter missed it), so the prompt's numbers look like those
seen at inference. A sheet without an apex (CASME II writes "/" for a few clips; SMIC has none) takes
the frame of strongest motion between onset and offset. Clips with no coded onset fall back to
:func:`mevqa.evidence.builder.compute_evidence` (the spotter decides, as at test time).

Caching. Evidence is computed once per clip and stored on disk (``$MEVQA_CACHE`` or
``~/.cache/mevqa/evidence``) under the clip's content hash, the evidence settings and the coded
frames; a second epoch or a second run reads it back and never recomputes optical flow. Encodings are
cached in memory by :class:`VQADataset`; the pixel tensors of one clip's questions are shared, so
memory grows with clips, not questions (about 5 MB a clip at the default 4 images of 224x224).

Class balance. MEGC labels are badly imbalanced (CASME II: disgust 63 clips, fear 2). Each sample has
a balance label (``coarse:negative``, ``fine:disgust``, ``au_presence:yes``; AU-list and analysis
questions use their clip's fine class), and :func:`balance_weights` gives every class of a question
kind the same total weight while each kind keeps its share; the trainer uses these as sampling
weights or as loss weights.
"""
from __future__ import annotations

import random
from collections import Counter
from dataclasses import dataclass
from typing import Iterable, Mapping, Sequence

import numpy as np
import torch

from mevqa.evidence.builder import Evidence, EvidenceConfig, compute_evidence
from mevqa.answer.prompt import PromptConfig, build_messages
from mevqa.answer.questions import question_type
from mevqa.io.video import Clip
from mevqa.io.megc import MegcRecord
from mevqa.train.qa import generate_qa
from mevqa.io.sheets import DATASET_FPS, LabelledClip
from mevqa.io.splits import normalise_dataset, normalise_subject

__all__ = ["DatasetError", "QAItem", "clip_key", "sheet_interval", "coded_evidence", "clip_evidence",
           "qa_from_sheet", "qa_from_megc", "balance_label", "balance_weights", "VQADataset",
           ]



class DatasetError(ValueError):
    """Clips or records that cannot become training samples (one line)."""


def clip_key(item) -> str:
    """``dataset/image_id``: the clip a LabelledClip, QAItem or MEGC record is about."""
    if isinstance(item, LabelledClip):
        return f"{item.dataset}/{item.image_id}"
    return f"{normalise_dataset(item.dataset)}/{item.image_id}"


@dataclass(frozen=True)
class QAItem:
    """One question about one clip, with its answer and its class for balancing."""

    key: str          # dataset/image_id of the clip
    dataset: str
    subject: str
    image_id: str
    question: str
    answer: str
    kind: str         # mevqa.answer.questions kind
    label: str        # balance class, e.g. "fine:disgust"
    id: str | None = None


# ----------------------------------------------------------------------------------------------
# intervals and evidence


def sheet_interval(lc: LabelledClip, clip: Clip) -> tuple[int | None, int | None, int | None]:
    """The coded onset/apex/offset as 0-based indices of ``clip``.

    Sheets give frame *numbers* (a CASME II folder may start at img46, where onset 46 is index 0);
    they are looked up in the folder's own numbering. Unknown values stay None; an offset of 0 or
    before the onset (a few CASME II rows) is treated as unknown. A number outside the folder is a
    :class:`DatasetError`.
    """
    numbers = np.asarray(clip.frame_numbers)

    def index(value: int | None, what: str) -> int | None:
        if value is None:
            return None
        hits = np.flatnonzero(numbers == int(value))
        if len(hits) == 0:
            raise DatasetError(f"{lc.dataset} {lc.subject}/{lc.filename}: {what} frame {value} is not in its folder "
                               f"(frames {int(numbers[0])}-{int(numbers[-1])})")
        return int(hits[0])

    onset = index(lc.onset, "onset")
    offset = lc.offset if lc.offset is not None and lc.onset is not None and lc.offset > lc.onset else None
    offset = index(offset, "offset")
    apex = lc.apex if lc.apex is not None and lc.onset is not None and lc.onset <= lc.apex else None
    if apex is not None and offset is not None and lc.offset is not None and apex > lc.offset:
        apex = None
    return onset, index(apex, "apex"), offset


def coded_evidence(clip: Clip, onset: int, apex: int | None, offset: int | None, *,
                   config: EvidenceConfig = EvidenceConfig(), cache: bool = True) -> Evidence:
    """Evidence for one clip whose expression was coded at ``onset``/``apex``/``offset`` (0-based).

    One interval (the coded one), with the action units, emotion candidates, keyframes and flow map
    measured on those frames (see :func:`mevqa.evidence.builder.compute_evidence`, cached the same way).
    """
    try:
        return compute_evidence(clip, config=config, coded=(onset, apex, offset), cache=cache)
    except ValueError as e:
        if "outside the clip" in str(e):
            raise DatasetError(str(e)) from None
        raise


def clip_evidence(lc: LabelledClip, *, config: EvidenceConfig = EvidenceConfig(), cache: bool = True,
                  use_coded_interval: bool = True) -> Evidence:
    """The Evidence of a sheet clip: on its coded interval when the sheet gives an onset, else spotted."""
    if lc.frames_dir is None:
        raise DatasetError(f"{lc.dataset} {lc.subject}/{lc.filename}: no frame folder (give frames_root)")
    fps = lc.fps or DATASET_FPS.get(lc.dataset)
    clip = Clip.load(lc.frames_dir, fps=fps)
    if use_coded_interval and lc.onset is not None:
        onset, apex, offset = sheet_interval(lc, clip)
        return coded_evidence(clip, onset, apex, offset, config=config, cache=cache)
    return compute_evidence(clip, config=config, cache=cache)


# ----------------------------------------------------------------------------------------------
# questions and answers


def balance_label(kind: str, answer: str, fine: str | None = None) -> str:
    """The class a sample counts toward for balancing: ``kind:answer`` for the one-word kinds; AU
    lists and analysis sentences count toward their clip's fine class (their answers are nearly all
    distinct, but the imbalance that matters is the emotion's)."""
    if kind in ("coarse", "fine", "au_presence", "au_side"):
        return f"{kind}:{answer.strip().lower()}"
    if kind in ("au_list", "analysis"):
        return f"{kind}:{fine or 'unknown'}"
    return kind


def balance_weights(labels: Sequence[str]) -> list[float]:
    """Per-sample weights, mean 1: within each question kind every class gets the same total weight,
    and each kind keeps its share of the data (so yes/no questions are not drowned or inflated)."""
    counts = Counter(labels)
    kinds = Counter(label.split(":", 1)[0] for label in labels)
    classes = Counter(label.split(":", 1)[0] for label in counts)
    return [kinds[label.split(":", 1)[0]] / (classes[label.split(":", 1)[0]] * counts[label]) for label in labels]


def _item(dataset: str, subject: str, image_id: str, question: str, answer: str, fine: str | None,
          rid: str | None) -> QAItem:
    kind = question_type(question).kind
    return QAItem(f"{dataset}/{image_id}", dataset, subject, image_id, question, answer, kind,
                  balance_label(kind, answer, fine), rid)


def qa_from_sheet(clips: Iterable[LabelledClip], *, seed: int = 0, kinds: Sequence[str] = ()) -> list[QAItem]:
    """MEGC-style questions for every clip (:func:`mevqa.train.qa.generate_qa`), seeded per clip so the
    same clip always gets the same questions whatever else is in the set; ``kinds`` keeps only those
    question kinds (empty: all)."""
    items = []
    for lc in clips:
        rng = random.Random(f"{seed}:{lc.dataset}:{lc.image_id}")
        for rec in generate_qa(lc, rng=rng, style="mixed"):  # MEGC2025 and ME-VQA-v2 analysis wordings
            item = _item(lc.dataset, lc.subject, lc.image_id, rec["question"], rec["answer"], lc.fine, rec["id"])
            if not kinds or item.kind in kinds:
                items.append(item)
    return items


def qa_from_megc(records: Iterable[MegcRecord | Mapping], clips: Iterable[LabelledClip], *,
                 kinds: Sequence[str] = ()) -> tuple[list[QAItem], list[str]]:
    """The MEGC files' own questions and answers, joined to sheet clips by dataset and image id.

    Returns (items, unmatched): ``unmatched`` lists the clip keys of records with no sheet clip (or
    no answer), which the caller reports. Test-layout records (no answers) are refused.
    """
    by_key = {clip_key(c): c for c in clips}
    items, unmatched = [], []
    for rec in records:
        get = rec.get if isinstance(rec, Mapping) else (lambda k, r=rec: getattr(r, k, None))
        if not get("image_id") or not get("dataset"):
            raise DatasetError("a MEGC record has no image_id/dataset: only training-layout files can be trained on")
        dataset = normalise_dataset(get("dataset"))
        key = f"{dataset}/{get('image_id')}"
        answer = (get("answer") or "").strip()
        lc = by_key.get(key)
        if lc is None or not answer:
            unmatched.append(key)
            continue
        subject = normalise_subject(dataset, get("subject") if get("subject") is not None else lc.subject)
        item = _item(dataset, subject, lc.image_id, get("question"), answer, lc.fine, get("id"))
        if not kinds or item.kind in kinds:
            items.append(item)
    return items, sorted(set(unmatched))


# ----------------------------------------------------------------------------------------------
# the torch dataset


class VQADataset(torch.utils.data.Dataset):
    """Encoded training samples, cached in memory (a ``torch.utils.data.Dataset``).

    ``items`` are :class:`QAItem`; ``evidence`` maps each item's ``key`` to its clip's Evidence;
    ``vlm`` is a :class:`mevqa.vlm.model.QwenVL`. Each sample is rendered with
    ``build_messages(evidence, question, answer=answer)`` (the interval the agent would focus on) and
    encoded once. ``self[i]`` is the encoding plus ``index``; :meth:`collate` pads a batch and adds
    ``index`` and ``weight`` (the loss weight: :func:`balance_weights` when ``loss_weights``, else 1).
    """

    def __init__(self, items: Sequence[QAItem], evidence: Mapping[str, Evidence], vlm, *,
                 prompt: PromptConfig = PromptConfig(), loss_weights: bool = False, progress: bool = False) -> None:
        from tqdm.auto import tqdm

        from mevqa.answer.agent import focus_interval

        self.items = list(items)
        self.vlm = vlm
        self.prompt = prompt
        missing = sorted({it.key for it in self.items if it.key not in evidence})
        if missing:
            raise DatasetError(f"no evidence for {len(missing)} clip(s), e.g. {missing[0]}")
        self.encodings: list[dict] = []
        shared: dict[str, dict] = {}
        for it in tqdm(self.items, desc="encoding", disable=not progress, leave=False):
            ev = evidence[it.key]
            # 1. the one prompt builder, with the answer as the assistant turn; the agent's own focus rule
            msgs = build_messages(ev, it.question, answer=it.answer, config=prompt,
                                  interval=focus_interval(ev, it.question))
            if msgs[-1]["role"] != "assistant":
                raise DatasetError("build_messages(answer=...) did not end with the assistant turn")
            # 2. encode: the prompt exactly as inference renders it, labels on answer + <|im_end|>
            enc = vlm.encode_for_training(msgs[:-1], it.answer)
            # 3. one copy of a clip's pixels for all its questions
            pix = {k: v for k, v in enc.items() if k in ("pixel_values", "image_grid_thw")}
            seen = shared.get(it.key)
            if seen is not None and all(k in seen and seen[k].shape == v.shape and torch.equal(seen[k], v)
                                        for k, v in pix.items()):
                enc.update(seen)
            else:
                shared.setdefault(it.key, pix)
            self.encodings.append(enc)
        self.labels = [it.label for it in self.items]
        self.balance = torch.tensor(balance_weights(self.labels), dtype=torch.float32) if self.items else torch.ones(0)
        self.loss_weights = self.balance if loss_weights else torch.ones(len(self.items))

    def __len__(self) -> int:
        return len(self.encodings)

    def __getitem__(self, i: int) -> dict:
        out = dict(self.encodings[i])
        out["index"] = i
        return out

    def collate(self, batch: Sequence[dict]) -> dict:
        """Pad and stack a list of ``self[i]`` (through ``vlm.collate``) and add index and weight."""
        idx = torch.tensor([int(b["index"]) for b in batch], dtype=torch.long)
        out = self.vlm.collate([{k: v for k, v in b.items() if k != "index"} for b in batch])
        out["index"] = idx
        out["weight"] = self.loss_weights[idx]
        return out

    def n_answer_tokens(self) -> list[int]:
        """Supervised tokens per sample (answer + <|im_end|>)."""
        return [int((e["labels"] != -100).sum()) for e in self.encodings]

    def class_counts(self) -> dict[str, int]:
        return dict(Counter(self.labels).most_common())

