"""Labelled onset/apex crops for recogniser training: coding sheets -> aligned crops (cached) -> batches.

Clips come from the coding-sheet importers (:func:`mevqa.io.sheets.load_sheet`), which give each
clip's subject, frame folder, onset/apex frame numbers and labels. A sheet with no apex for a clip
(CASME II writes "/") takes the frame that differs most from the onset before the offset. Clips with
no class in the chosen label set (CASME II "others" for MEGC's coarse classes), no frame folder or no
face are left out and listed.

Crops (four frames around the onset and four around the apex, :mod:`mevqa.recognize.crops`) are
cached on disk under ``$MEVQA_CACHE/recognizer`` (or ``data.crop_cache``), keyed by the folder, its
files' sizes and times, the coded frames and the crop size, so a second run or a second fold never
runs FaceMesh again.
"""
from __future__ import annotations

import hashlib
import json
import os
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from mevqa.facs.labels import FINE_CLASSES
from mevqa.io.sheets import LabelledClip, load_sheet
from mevqa.io.video import ClipError, list_frames
from mevqa.recognize.crops import APEX_OFFSETS, ONSET_OFFSETS, crops_from_folder, peak_apex
from mevqa.recognize.inputs import motion_input, onset_input
from mevqa.recognize.network import MMNetConfig
from mevqa.train.recognizer_config import COARSE_CLASSES, Augment, RecognizerConfigError, RecognizerTrainConfig

__all__ = ["CropBank", "clip_label", "class_list", "load_bank", "augment_pair", "make_batch", "crop_cache_dir"]

_CACHE_VERSION = 2
_CODED_ON, _CODED_AP = ONSET_OFFSETS.index(0), APEX_OFFSETS.index(0)  # the coded frames in the stacks


@dataclass
class CropBank:
    """Every usable clip's crops, (N, 4, S, S, 3) uint8 around onset and apex, with its label index and
    identity (``items``: dataset, subject, image_id, label)."""

    onset: np.ndarray
    apex: np.ndarray
    labels: np.ndarray
    items: list[dict]
    classes: tuple[str, ...]
    skipped: list[str] = field(default_factory=list)

    def __len__(self) -> int:
        return len(self.items)


def crop_cache_dir(cfg: RecognizerTrainConfig) -> Path:
    if cfg.data.crop_cache:
        return Path(cfg.data.crop_cache).expanduser()
    root = os.environ.get("MEVQA_CACHE") or os.path.join(os.environ.get("XDG_CACHE_HOME", "~/.cache"), "mevqa")
    return Path(root).expanduser() / "recognizer"


def clip_label(clip: LabelledClip, labels) -> str | None:
    """The class of a clip under ``labels`` ("coarse", "fine" or a list of class names), or None."""
    if labels == "coarse":
        return clip.coarse
    if labels == "fine":
        return clip.fine
    wanted = [str(x).lower() for x in labels]
    for cand in (clip.fine, (clip.emotion or "").lower(), clip.coarse):
        if cand and cand in wanted:
            return cand
    return None


def class_list(labels, present: set[str]) -> tuple[str, ...]:
    """Class order of a run: MEGC coarse order, FINE_CLASSES order of the present fine classes, or as given."""
    if labels == "coarse":
        return tuple(c for c in COARSE_CLASSES if c in present)
    if labels == "fine":
        return tuple(c for c in FINE_CLASSES if c in present)
    if isinstance(labels, (list, tuple)) and labels:
        return tuple(str(x).lower() for x in labels if str(x).lower() in present)
    raise RecognizerConfigError(f"data.labels must be coarse, fine or a list of classes, got {labels!r}")


def _sources(cfg: RecognizerTrainConfig, run_dir: Path) -> list[tuple[Path, Path | None, str | None]]:
    out = []
    for s in cfg.data.sheets:
        if not isinstance(s, dict) or "sheet" not in s:
            raise RecognizerConfigError("each data.sheets entry needs 'sheet' (and usually 'frames_root')")
        out.append((Path(s["sheet"]).expanduser(), Path(s["frames_root"]).expanduser() if s.get("frames_root") else None,
                    s.get("dataset")))
    if cfg.data.synthetic:
        # Deferred: the synthetic set is a developer fixture, reached only from the tiny configs.
        from mevqa.testing.synthset import make_synthetic_dataset, sheet_path

        root = Path(cfg.data.synthetic_root).expanduser() if cfg.data.synthetic_root else run_dir / "synthetic_data"
        sheet = sheet_path(root, cfg.data.layout)
        if not sheet.is_file():
            make_synthetic_dataset(root, layout=cfg.data.layout, n_subjects=cfg.data.synthetic_subjects,
                                   clips_per_subject=cfg.data.synthetic_clips, seed=cfg.data.synthetic_seed,
                                   seconds=cfg.data.synthetic_seconds)
        out.append((sheet, root, cfg.data.layout))
    return out


def _cache_key(folder: Path, onset: int, apex: int, size: int) -> str:
    files = list_frames(folder)
    stamp = [(f.name, f.stat().st_size, f.stat().st_mtime_ns) for f in (files[0], files[-1])] if files else []
    raw = json.dumps([_CACHE_VERSION, str(folder.resolve()), len(files), stamp, int(onset), int(apex), int(size)])
    return hashlib.sha1(raw.encode()).hexdigest()[:20]


def _clip_crops(clip: LabelledClip, size: int, cache: Path) -> tuple[np.ndarray, np.ndarray]:
    apex = clip.apex
    if apex is None:
        if clip.offset is None:
            raise ClipError("no apex and no offset coded")
        apex = peak_apex(clip.frames_dir, clip.onset, clip.offset)
    path = cache / f"{_cache_key(clip.frames_dir, clip.onset, apex, size)}.npz"
    if path.is_file():
        try:
            with np.load(path) as z:
                return z["onset"], z["apex"]
        except (OSError, ValueError, KeyError):
            pass  # a damaged cache file is recomputed
    pc = crops_from_folder(clip.frames_dir, clip.onset, apex, size=size)
    cache.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp.npz")
    np.savez_compressed(tmp, onset=pc.onset, apex=pc.apex)
    os.replace(tmp, path)
    return pc.onset, pc.apex


def load_bank(cfg: RecognizerTrainConfig, run_dir: Path, *, size: int, progress=None) -> CropBank:
    """Read every sheet, label the clips and crop them (cached). ``progress(i, n)`` per clip."""
    clips, skipped = [], []
    for sheet, root, dataset in _sources(cfg, run_dir):
        found = load_sheet(sheet, dataset, root)
        skipped += list(found.problems) + list(found.missing_frames)
        clips += [c for c in found if c.frames_dir is not None]
    labelled = []
    for c in clips:
        lab = clip_label(c, cfg.data.labels)
        if lab is None:
            skipped.append(f"{c.dataset} {c.subject}/{c.filename}: label {c.emotion!r} is not one of the classes")
        else:
            labelled.append((c, lab))
    classes = class_list(cfg.data.labels, {lab for _, lab in labelled})
    labelled = [(c, lab) for c, lab in labelled if lab in classes]
    if len(classes) < 2:
        raise RecognizerConfigError(f"the data have fewer than two classes ({', '.join(classes) or 'none'})")
    cache = crop_cache_dir(cfg)
    ons, aps, labels, items = [], [], [], []
    for i, (c, lab) in enumerate(labelled):
        try:
            o, a = _clip_crops(c, size, cache)
        except (ClipError, ValueError) as err:
            skipped.append(f"{c.dataset} {c.subject}/{c.filename}: {str(err).splitlines()[0]}")
            continue
        ons.append(o)
        aps.append(a)
        labels.append(classes.index(lab))
        items.append({"dataset": c.dataset, "subject": c.subject, "image_id": c.image_id, "label": lab})
        if progress is not None:
            progress(i + 1, len(labelled))
    if not items:
        raise RecognizerConfigError("no usable clips (see the skipped list: labels, frame folders, faces)")
    return CropBank(np.stack(ons), np.stack(aps), np.array(labels, np.int64), items, classes, skipped)


# ----------------------------------------------------------------------------------------------
# augmentation and batches


def augment_pair(onset: np.ndarray, apex: np.ndarray, rng: np.random.Generator, aug: Augment) -> tuple[np.ndarray, np.ndarray]:
    """One training pair from the (4, S, S, 3) stacks: frame jitter, then the same random crop, flip and
    colour change on both frames (so they stay aligned and their difference stays muscle motion).
    Every random number is drawn whatever the options, so switching one off leaves the others' draws."""
    j, k = rng.integers(4), rng.integers(4)
    pad = int(aug.crop_padding)
    dx, dy = rng.integers(0, 2 * pad + 1, size=2)
    flip = rng.random() < 0.5
    gain, contrast, sat = 1.0 + rng.uniform(-aug.colour, aug.colour, size=3)
    if not aug.jitter_frames:
        j, k = _CODED_ON, _CODED_AP
    on, ap = onset[j].astype(np.float32), apex[k].astype(np.float32)
    s = on.shape[0]
    if pad > 0:
        on = np.pad(on, ((pad, pad), (pad, pad), (0, 0)), mode="edge")[dy:dy + s, dx:dx + s]
        ap = np.pad(ap, ((pad, pad), (pad, pad), (0, 0)), mode="edge")[dy:dy + s, dx:dx + s]
    if aug.flip and flip:
        on, ap = on[:, ::-1], ap[:, ::-1]
    if aug.colour > 0:
        mean = on.mean()
        out = []
        for x in (on, ap):
            grey = x.mean(axis=2, keepdims=True)
            x = grey + (x - grey) * sat
            out.append(np.clip(((x - mean) * contrast + mean) * gain, 0, 255))
        on, ap = out
    return np.ascontiguousarray(on).astype(np.uint8), np.ascontiguousarray(ap).astype(np.uint8)


def make_batch(bank: CropBank, idx, net: MMNetConfig, *, rng: np.random.Generator | None = None,
               aug: Augment | None = None) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(motion, onset, labels) arrays for the clips ``idx``; augmented when ``rng`` and ``aug`` are given,
    else the coded onset and apex frames."""
    motion, onsets = [], []
    for i in idx:
        if rng is not None and aug is not None:
            on, ap = augment_pair(bank.onset[i], bank.apex[i], rng, aug)
        else:
            on, ap = bank.onset[i][_CODED_ON], bank.apex[i][_CODED_AP]
        motion.append(motion_input(on, ap, kind=net.input, flow_scale=net.flow_scale))
        onsets.append(onset_input(on))
    return np.stack(motion), np.stack(onsets), bank.labels[np.asarray(idx)]
