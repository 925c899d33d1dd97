"""Subject-independent splits: leave-one-subject-out folds and hold-out splits by subject.

Micro-expression recognition is evaluated subject-independently (LOSO is the MEGC 2019+
composite protocol): a person's clips must never be on both sides of a split. Subjects are
compared after normalising their spelling *within* a dataset ("6", "006" and "sub06" are one
SAMM subject), and never across datasets (CASME II sub01 and SAMM 006 are different people).

Items are anything with ``.dataset`` and ``.subject`` attributes (MegcRecord, LabelledClip) or
dicts with those keys.
"""
from __future__ import annotations

import random
import re
from dataclasses import dataclass
from typing import Iterable, Mapping, Sequence

__all__ = ["SplitError", "SubjectLeakageError", "normalise_dataset", "normalise_subject",
           "subject_id", "Fold", "Split", "loso_folds", "holdout_split", "assert_subject_disjoint"]


class SplitError(ValueError):
    """Items or options a split cannot use."""


class SubjectLeakageError(SplitError):
    """A subject appears on both sides of a split."""


_DATASET_ALIASES = {
    "casme2": "casme2", "casmeii": "casme2", "casme 2": "casme2", "casme ii": "casme2",
    "samm": "samm", "sammlv": "samm_lv", "samm lv": "samm_lv", "samm long videos": "samm_lv",
    "smic": "smic", "smic hs": "smic", "smichs": "smic", "smic e hs": "smic",
    "casme3": "casme3", "cas(me)3": "casme3", "cas(me)^3": "casme3", "casme^3": "casme3",
    "cas me 3": "casme3", "casmeiii": "casme3",
    "casme": "casme", "cas(me)2": "casme_sq", "cas(me)^2": "casme_sq", "casme^2": "casme_sq",
}


def normalise_dataset(name: str | None) -> str:
    """Canonical dataset id: "CASME II" -> "casme2", "CAS(ME)^3" -> "casme3", "SAMM" -> "samm",
    "SMIC-HS" -> "smic". Unknown names are lower-cased and stripped."""
    if name is None or str(name).strip() == "":
        raise SplitError("item has no dataset: give each item a dataset name (e.g. 'casme2')")
    key = " ".join(re.sub(r"[-_]", " ", str(name).lower()).split())
    return _DATASET_ALIASES.get(key, _DATASET_ALIASES.get(key.replace(" ", ""), key.replace(" ", "")))


def _number(subject: str) -> int | None:
    m = re.fullmatch(r"(?:sub|subject|sp\s*no\.?|s)?\s*0*(\d+)", subject.strip().lower())
    return int(m.group(1)) if m else None


def normalise_subject(dataset: str, subject) -> str:
    """A subject id in the MEGC2025 spelling for its dataset.

    casme2: 1, "1", "01", "sub1", "sub01" -> "sub01"; samm: 6, "006", "6", "sub06" -> "6";
    smic: 1, "s1", "s01" -> "s01"; casme3: 1, "spNO.1", "spNo.1" -> "spNO.1". Other datasets:
    numeric ids lose prefixes and leading zeros, others are lower-cased.
    """
    ds = normalise_dataset(dataset)
    if subject is None or str(subject).strip() == "":
        raise SplitError(f"item of dataset {ds!r} has no subject")
    if isinstance(subject, float) and subject.is_integer():
        subject = int(subject)
    s = str(subject).strip()
    n = _number(s)
    if n is None:
        return s.lower()
    if ds == "casme2":
        return f"sub{n:02d}"
    if ds == "smic":
        return f"s{n:02d}"
    if ds == "casme3":
        return f"spNO.{n}"
    return str(n)


def subject_id(item) -> tuple[str, str]:
    """(dataset, normalised subject) for an item."""
    if isinstance(item, Mapping):
        dataset, subject = item.get("dataset"), item.get("subject")
    else:
        dataset, subject = getattr(item, "dataset", None), getattr(item, "subject", None)
    ds = normalise_dataset(dataset)
    return ds, normalise_subject(ds, subject)


@dataclass(frozen=True)
class Fold:
    """One LOSO fold: indices into the items, and the held-out (dataset, subject)."""

    train_idx: tuple[int, ...]
    test_idx: tuple[int, ...]
    held_out: tuple[str, str]


@dataclass(frozen=True)
class Split:
    """A hold-out split: indices into the items, and the test (dataset, subject) pairs."""

    train_idx: tuple[int, ...]
    test_idx: tuple[int, ...]
    test_subjects: tuple[tuple[str, str], ...]


def _ids(items: Sequence) -> list[tuple[str, str]]:
    out = []
    for i, item in enumerate(items):
        try:
            out.append(subject_id(item))
        except SplitError as err:
            raise SplitError(f"item {i}: {err}") from None
    return out


def loso_folds(items: Sequence) -> list[Fold]:
    """Leave-one-subject-out folds, one per (dataset, subject), in order of first appearance."""
    ids = _ids(items)
    subjects = list(dict.fromkeys(ids))
    folds = []
    for held in subjects:
        test = tuple(i for i, s in enumerate(ids) if s == held)
        train = tuple(i for i, s in enumerate(ids) if s != held)
        folds.append(Fold(train, test, held))
    return folds


def _parse_subject(spec, datasets: set[str]) -> tuple[str, str]:
    if isinstance(spec, (tuple, list)) and len(spec) == 2:
        ds = normalise_dataset(spec[0])
        return ds, normalise_subject(ds, spec[1])
    text = str(spec)
    for sep in ("/", ":"):
        if sep in text:
            ds, subj = text.split(sep, 1)
            ds = normalise_dataset(ds)
            return ds, normalise_subject(ds, subj)
    if len(datasets) == 1:
        ds = next(iter(datasets))
        return ds, normalise_subject(ds, text)
    raise SplitError(f"test subject {spec!r} is ambiguous across datasets; write it as 'dataset/subject'")


def holdout_split(items: Sequence, *, test_subjects: Iterable | None = None,
                  test_fraction: float = 0.2, seed: int = 0) -> Split:
    """Split items by subject.

    ``test_subjects``: (dataset, subject) pairs or "dataset/subject" strings (a bare subject is
    accepted when all items come from one dataset). Without it, each dataset's subjects are
    shuffled with ``seed`` and taken into the test side until about ``test_fraction`` of that
    dataset's items are there (at least one subject per dataset with two or more subjects,
    never all of them).
    """
    ids = _ids(items)
    datasets = {d for d, _ in ids}
    if test_subjects is not None:
        chosen = {_parse_subject(s, datasets) for s in test_subjects}
        unknown = chosen - set(ids)
        if unknown:
            raise SplitError(f"test subject(s) not in the items: "
                             f"{', '.join(f'{d}/{s}' for d, s in sorted(unknown))}")
    else:
        if not 0.0 < test_fraction < 1.0:
            raise SplitError(f"test_fraction must be between 0 and 1, got {test_fraction}")
        rng = random.Random(seed)
        chosen = set()
        for ds in sorted(datasets):
            subj_counts: dict[str, int] = {}
            for d, s in ids:
                if d == ds:
                    subj_counts[s] = subj_counts.get(s, 0) + 1
            subjects = sorted(subj_counts)
            if len(subjects) < 2:
                continue  # a one-subject dataset stays on the training side
            rng.shuffle(subjects)
            target = test_fraction * sum(subj_counts.values())
            taken = 0
            for s in subjects[:-1]:  # never put every subject in the test side
                if taken >= target:
                    break
                chosen.add((ds, s))
                taken += subj_counts[s]
    test = tuple(i for i, s in enumerate(ids) if s in chosen)
    train = tuple(i for i, s in enumerate(ids) if s not in chosen)
    split = Split(train, test, tuple(sorted(chosen)))
    assert_subject_disjoint([items[i] for i in train], [items[i] for i in test])
    return split


def assert_subject_disjoint(train: Iterable, test: Iterable) -> None:
    """Raise :class:`SubjectLeakageError` if any (dataset, subject) is in both collections."""
    a = set(_ids(list(train)))
    b = set(_ids(list(test)))
    both = sorted(a & b)
    if both:
        shown = ", ".join(f"{d}/{s}" for d, s in both[:5]) + (" ..." if len(both) > 5 else "")
        raise SubjectLeakageError(f"{len(both)} subject(s) on both sides of the split: {shown}")
