"""Where each question's clip lives under ``--clips``: the release layouts, user patterns, a last-resort
search by name, and loading the clip found.

Every path is confined to ``--clips``: record fields are plain names (checked when the question file is
read, :func:`mevqa.io.megc.read_megc_jsonl`), and a layout that would still lead outside is skipped.
"""
from __future__ import annotations

import os
import string
from dataclasses import dataclass, field
from pathlib import Path
from typing import Sequence

from mevqa.io.megc import MegcRecord
from mevqa.io.sheets import DATASET_FPS
from mevqa.io.video import IMAGE_EXTENSIONS, VIDEO_EXTENSIONS, Clip, guess_dataset, list_frames
from mevqa.megc.records import record_dataset, record_fields

__all__ = ["DEFAULT_PATTERNS", "expand_pattern", "patterns_help", "ClipResolver", "folder_fps", "load_clip_for"]


# Tried in order; a layout whose fields a record lacks is skipped, and a layout without a file
# extension is also tried with each video extension (".mp4", ".avi", ...). The SAMM release numbers
# subject folders "006" while the MEGC files say subject "6", hence {subject:03d}.
DEFAULT_PATTERNS: tuple[str, ...] = (
    # test files: {"video": "SAMM-1"} / {"video": "CAS-1"}
    "{video}", "{dataset}/{video}", "{dataset}_test/{video}",
    # training files, a tree laid out like the JSONL (dataset/subject/clip)
    "{dataset}/{subject}/{filename}", "{subject}/{filename}", "{filename}", "{image_id}",
    # the datasets' own release layouts
    "CASME2_RAW_selected/{subject}/{filename}", "CASME2-RAW/{subject}/{filename}",
    "CASME2_RAW/{subject}/{filename}", "CASME2/{subject}/{filename}",
    "SAMM/{subject:03d}/{filename}", "{dataset}/{subject:03d}/{filename}", "{subject:03d}/{filename}",
    "SMIC/{subject}/{filename}",
)


class _NotApplicable(Exception):
    """A layout cannot be filled from this record (missing field, non-numeric subject for :03d)."""


class _PathFormatter(string.Formatter):
    def get_value(self, key, args, kwargs):
        value = kwargs.get(key)
        if value in (None, ""):
            raise _NotApplicable(key)
        return value

    def format_field(self, value, spec):
        if spec and spec[-1] in "dxob":  # numeric spec on a string field: "6" -> 006
            if not str(value).isdigit():
                raise _NotApplicable(spec)
            value = int(value)
        return super().format_field(value, spec)


_FMT = _PathFormatter()


def expand_pattern(pattern: str, fields: dict) -> str | None:
    """``pattern`` filled from ``fields``, or None where it does not apply to them."""
    try:
        return _FMT.format(pattern, **fields)
    except (_NotApplicable, ValueError, IndexError):
        return None


def _clip_at(p: Path) -> Path | None:
    """The clip a path names: a video file, a folder of frames, or a folder holding one video."""
    if p.is_file():
        return p if p.suffix.lower() in VIDEO_EXTENSIONS else None
    if not p.is_dir():
        return None
    videos = []
    for entry in os.scandir(p):
        ext = os.path.splitext(entry.name)[1].lower()
        if ext in IMAGE_EXTENSIONS:
            return p
        if ext in VIDEO_EXTENSIONS:
            videos.append(Path(entry.path))
    # an empty or odd folder is still "the clip": loading it says what is wrong with it
    return videos[0] if len(videos) == 1 else p


def _inside(rel: str) -> bool:
    """A filled layout stays under --clips: relative, and no ".." leads above it (checked on the text,
    so a dataset folder that is a symbolic link to elsewhere still works)."""
    norm = os.path.normpath(rel)
    return not os.path.isabs(rel) and norm != ".." and not norm.startswith(".." + os.sep)


def patterns_help(patterns: Sequence[str] = DEFAULT_PATTERNS) -> str:
    return (" | ".join(patterns) + f" (each also with {'/'.join(VIDEO_EXTENSIONS)} added; last resort: "
            "the one file or folder anywhere under --clips named like the clip)")


@dataclass
class ClipResolver:
    """Finds each record's clip under ``root``: ``patterns`` (``--pattern``, several separated by
    "|") or :data:`DEFAULT_PATTERNS`; with the defaults, a unique file or folder named like the clip
    anywhere under ``root`` is the last resort (a layout nobody foresaw still works)."""

    root: Path
    patterns: tuple[str, ...] | None = None
    _index: dict | None = field(default=None, init=False, repr=False)

    @property
    def layouts(self) -> tuple[str, ...]:
        return self.patterns or DEFAULT_PATTERNS

    def bases(self, rec: MegcRecord) -> list[Path]:
        """The layouts filled from this record, in order (those it lacks fields for left out)."""
        fields = record_fields(rec)
        rels = (expand_pattern(pat, fields) for pat in self.layouts)
        return list(dict.fromkeys(self.root / r for r in rels if r and _inside(r)))

    def candidates(self, rec: MegcRecord) -> list[Path]:
        out = []
        for base in self.bases(rec):
            out.append(base)
            if base.suffix.lower() not in VIDEO_EXTENSIONS:
                out += [base.with_name(base.name + ext) for ext in VIDEO_EXTENSIONS]
        return out

    def resolve(self, rec: MegcRecord) -> tuple[Path | None, str]:
        """(path, "") or (None, why not)."""
        for p in self.candidates(rec):
            if (clip := _clip_at(p)) is not None:
                return clip, ""
        if self.patterns is None:
            names = [v for k, v in record_fields(rec).items() if k in ("filename", "image_id", "video")]
            found = list(dict.fromkeys(_clip_at(p) for n in names for p in self.by_name().get(n, [])))
            if len(found) == 1:
                return found[0], ""
            if len(found) > 1:
                return None, (f"{len(found)} clips named {names[0]!r} under {self.root} ({found[0]}, {found[1]}): "
                              "give --pattern")
        tried = ", ".join(str(p.relative_to(self.root)) for p in self.bases(rec))
        return None, (f"no clip found under {self.root} (tried {tried} and the same with video extensions)" if tried
                      else f"no layout fits this record ({', '.join(self.layouts)})")

    def by_name(self) -> dict[str, list[Path]]:
        # Built once, only when a layout fails: one walk of the tree, every video file by name and
        # stem, every folder by name.
        if self._index is None:
            index: dict[str, list[Path]] = {}
            for dirpath, dirnames, filenames in os.walk(self.root):
                dirnames[:] = sorted(d for d in dirnames if not d.startswith("."))
                for d in dirnames:
                    index.setdefault(d, []).append(Path(dirpath) / d)
                for f in sorted(filenames):
                    p = Path(dirpath) / f
                    if p.suffix.lower() in VIDEO_EXTENSIONS:
                        index.setdefault(p.stem, []).append(p)
                        index.setdefault(p.name, []).append(p)
            self._index = index
        return self._index


def folder_fps(path: Path, rec: MegcRecord | None, fps: float | None) -> float | None:
    """The frame rate to give a clip: ``fps`` for frame folders only (a video file knows its rate); a
    folder whose file names do not reveal its dataset gets the rate of the record's dataset."""
    if not path.is_dir():
        return None
    if fps is None and rec is not None:
        ds = record_dataset(rec)
        if ds in DATASET_FPS and guess_dataset([f.stem for f in list_frames(path)]) is None:
            return DATASET_FPS[ds]
    return fps


def load_clip_for(path: Path, rec: MegcRecord | None, fps: float | None):
    """Load a clip at the rate :func:`folder_fps` says."""
    return Clip.load(path) if not path.is_dir() else Clip.load(path, fps=folder_fps(path, rec, fps))

