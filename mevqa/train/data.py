"""Training data: clips from coding sheets (or a synthetic set), questions, the subject-independent split,
and Evidence per clip, computed in shards across processes.

Evidence is the expensive part (optical flow and landmarks on every frame). Each process computes its
own share of the clips (every ``world``-th clip from its ``rank``), which the on-disk Evidence cache
keeps; after one barrier every process reads the rest back from that cache. No process idles while
another computes them all, so a long first pass on CASME II + SAMM no longer nears the collective
time-out. (Across machines the cache folder, ``$MEVQA_CACHE``, must be shared.)
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Sequence

from tqdm.auto import tqdm

from mevqa.io.megc import read_megc_jsonl
from mevqa.io.sheets import load_sheet
from mevqa.io.splits import SplitError, assert_subject_disjoint, holdout_split, loso_folds, subject_id
from mevqa.train.atomic import atomic_dir
from mevqa.train.config import TINY_MODELS, ConfigError, SplitConfig, TrainConfig
from mevqa.train.dataset import DatasetError, clip_evidence, clip_key, qa_from_megc, qa_from_sheet
from mevqa.vlm.config import TINY_MARKER

__all__ = ["TrainData", "resolve_model", "sheets", "split_clips", "prepare_data", "shard"]

SYNTHETIC_DONE = "synthetic_ground_truth.json"  # written last by the synthetic set: its presence marks completeness


@dataclass
class TrainData:
    train_items: list
    test_items: list
    evidence: dict
    train_subjects: list[str]
    test_subjects: list[str]
    split_text: str
    sources: list[str]
    n_clips: int
    skipped: list[str]


def shard(items: Sequence, rank: int, world: int) -> list:
    """This process's share: every ``world``-th item from ``rank`` (balanced, and stable across reruns)."""
    return list(items[rank::world])


def resolve_model(cfg: TrainConfig, run_dir: Path) -> str:
    """The model path or id; "tiny" builds the tiny random model in the run dir (once, atomically)."""
    if cfg.model not in TINY_MODELS:
        return cfg.model
    folder = run_dir / f"tiny-model-{TINY_MODELS[cfg.model]}"
    if not (folder / TINY_MARKER).is_file():  # the marker is written last: without it the folder is partial
        # the tiny-config path is the one product path allowed to build a fixture (deferred: tests-only code)
        from mevqa.testing.tiny_model import build_tiny_model

        with atomic_dir(folder, "the tiny model") as tmp:
            build_tiny_model(tmp, family=TINY_MODELS[cfg.model])
    return str(folder)


def sheets(cfg: TrainConfig, run_dir: Path) -> list[tuple[Path, Path | None]]:
    """(sheet, frames root) pairs; a synthetic set is written first (once, atomically) when asked for."""
    d = cfg.data
    if d.synthetic:
        # the tiny-config path is the one product path allowed to build a fixture (deferred: tests-only code)
        from mevqa.testing.synthset import make_synthetic_dataset, sheet_path

        layout = d.layout or "casme2"
        root = run_dir / f"synthetic-{layout}"
        if not ((root / SYNTHETIC_DONE).is_file() and sheet_path(root, layout).is_file()):
            with atomic_dir(root, "the synthetic data set") as tmp:
                make_synthetic_dataset(tmp, layout=layout, n_subjects=d.synthetic_subjects,
                                       clips_per_subject=d.synthetic_clips, seed=d.qa_seed)
                # the ground truth records folders relative to the root, so the rename keeps it valid
        return [(sheet_path(root, layout), root)]
    if not d.sheet:
        raise ConfigError("no training data: set data.sheet and data.frames_root (or data.synthetic=true)")
    if not d.frames_root:
        raise ConfigError("data.frames_root is missing: the folder the sheet's clip folders live under")
    if len(d.frames_root) not in (1, len(d.sheet)):
        raise ConfigError(f"data.frames_root: give one folder, or one per sheet ({len(d.sheet)})")
    roots = d.frames_root * len(d.sheet) if len(d.frames_root) == 1 else d.frames_root
    out = []
    for sheet, root in zip(d.sheet, roots):
        if not Path(sheet).is_file():
            raise ConfigError(f"data.sheet: coding sheet not found: {sheet}")
        if not Path(root).is_dir():
            raise ConfigError(f"data.frames_root: folder not found: {root}")
        out.append((Path(sheet), Path(root)))
    return out


def split_clips(clips: list, cfg: SplitConfig):
    """(train clips, test clips, text) by subject; never one subject on both sides."""
    try:
        if cfg.loso_fold is not None:
            folds = loso_folds(clips)
            if cfg.loso_fold >= len(folds):
                raise ConfigError(f"split.loso_fold {cfg.loso_fold} is out of range: the data has {len(folds)} "
                                  f"subjects (folds 0-{len(folds) - 1})")
            fold = folds[cfg.loso_fold]
            train_idx, test_idx = fold.train_idx, fold.test_idx
            text = f"LOSO fold {cfg.loso_fold} of {len(folds)} (held out: {fold.held_out[0]}/{fold.held_out[1]})"
        elif cfg.test_subjects:
            sp = holdout_split(clips, test_subjects=cfg.test_subjects)
            train_idx, test_idx = sp.train_idx, sp.test_idx
            text = "held-out subjects " + ", ".join(f"{d}/{s}" for d, s in sp.test_subjects)
        elif cfg.test_fraction > 0:
            sp = holdout_split(clips, test_fraction=cfg.test_fraction, seed=cfg.seed)
            train_idx, test_idx = sp.train_idx, sp.test_idx
            text = (f"held-out subjects (test_fraction {cfg.test_fraction:g}, seed {cfg.seed}) "
                    + ", ".join(f"{d}/{s}" for d, s in sp.test_subjects))
        else:
            train_idx, test_idx, text = tuple(range(len(clips))), (), "none: every subject trains (no held-out evaluation)"
    except SplitError as exc:
        raise ConfigError(f"split: {exc}") from None
    train, test = [clips[i] for i in train_idx], [clips[i] for i in test_idx]
    assert_subject_disjoint(train, test)
    if not train:
        raise ConfigError("split: no subject is left to train on")
    return train, test, text


def _subjects(items) -> list[str]:
    return sorted({"/".join(subject_id(it)) for it in items})


def prepare_data(cfg: TrainConfig, run_dir: Path, *, progress: bool, rank: int = 0, world: int = 1,
                 barrier: Callable[[], None] = lambda: None,
                 gather: Callable[[list], list] = lambda x: x) -> TrainData:
    """Clips, questions, split and evidence for a run. With ``world`` > 1 every process calls this:
    evidence is computed in shards (:func:`shard`), ``barrier`` waits for all shards, ``gather``
    (``accelerate.utils.gather_object``) pools the clips that failed, and each process then reads
    every other clip's evidence from the disk cache. Run the synthetic set and tiny model first on
    the main process (:func:`sheets`, :func:`resolve_model`), as the trainer does."""
    # 1. clips from the coding sheets, joined to their frame folders
    clips, skipped, sources = [], [], []
    for sheet, root in sheets(cfg, run_dir):
        got = load_sheet(sheet, cfg.data.layout, root)
        sources.append(f"{sheet} (frames under {root}; {len(got)} clips)")
        skipped += got.missing_frames + got.problems
        clips += [c for c in got if c.frames_dir is not None]
    if not clips:
        raise ConfigError("none of the sheets' clips has a frame folder under data.frames_root"
                          + (f" (e.g. {skipped[0]})" if skipped else ""))

    # 2. questions and answers: the MEGC files' own, or generated from the labels
    if cfg.data.megc_files:
        records = []
        for f in cfg.data.megc_files:
            if not Path(f).is_file():
                raise ConfigError(f"data.megc_files: file not found: {f}")
            records += read_megc_jsonl(f)
        items, unmatched = qa_from_megc(records, clips, kinds=cfg.data.question_kinds)
        skipped += [f"{k}: no clip with frames in the sheets" for k in unmatched]
        sources += [f"questions: {f}" for f in cfg.data.megc_files]
    else:
        items = qa_from_sheet(clips, seed=cfg.data.qa_seed, kinds=cfg.data.question_kinds)
        sources.append(f"questions: generated in the MEGC2025 templates (seed {cfg.data.qa_seed})")
    if not items:
        raise ConfigError("no training questions: no clip has a usable label"
                          + (" matching the MEGC files" if cfg.data.megc_files else ""))

    # 3. the subject-independent split, over the clips that have questions
    keyed = {clip_key(c): c for c in clips}
    used = [keyed[k] for k in dict.fromkeys(it.key for it in items)]
    train_clips, test_clips, text = split_clips(used, cfg.split)
    test_keys = {clip_key(c) for c in test_clips}
    train_items = [it for it in items if it.key not in test_keys]
    test_items = [it for it in items if it.key in test_keys]
    assert_subject_disjoint(train_items, test_items)  # items carry their own subject spelling

    # 4. evidence per clip, this process's shard first (cached on disk: the others and a rerun read it back)
    evidence, failed = {}, []
    for c in tqdm(shard(used, rank, world), desc="evidence", disable=not progress, leave=False):
        try:
            evidence[clip_key(c)] = clip_evidence(c, use_coded_interval=cfg.data.coded_interval)
        except (DatasetError, ValueError) as exc:
            failed.append(f"{clip_key(c)}: {exc}")
    if world > 1:
        barrier()  # every shard is in the cache now
        failed = gather(failed)
        bad = {f.split(": ", 1)[0] for f in failed}
        for c in used:
            if clip_key(c) not in evidence and clip_key(c) not in bad:
                evidence[clip_key(c)] = clip_evidence(c, use_coded_interval=cfg.data.coded_interval)
        evidence = {clip_key(c): evidence[clip_key(c)] for c in used if clip_key(c) in evidence}  # clip order
    skipped += failed
    train_items = [it for it in train_items if it.key in evidence]
    test_items = [it for it in test_items if it.key in evidence]
    if not train_items:
        raise ConfigError(f"no training clip could be read ({skipped[-1] if skipped else 'unknown reason'})")
    return TrainData(train_items, test_items, evidence, _subjects(train_items), _subjects(test_items), text, sources,
                 len(used), skipped)
