"""MEGC2025 ME-VQA JSONL files: read, group by clip, write back unchanged.

Two record layouts exist (MEGC2025 release):

- training (``me_vqa_casme2_train.jsonl``, ``me_vqa_samm_casme2_smic_train.jsonl``)::

    {"id": "casme2_sub01_EP02_01f_1", "dataset": "casme2", "image_id": "sub01_EP02_01f",
     "subject": "sub01", "filename": "EP02_01f", "question": "...", "answer": "positive"}

  written with ``json.dumps`` default separators (", ", ": ");
- test (``me_vqa_samm_test_to_answer.jsonl``, ``me_vqa_casme3_test_to_answer.jsonl``)::

    {"video_id":"samm_test_SAMM-1_1","video":"SAMM-1","question":"...","answer":""}

  written compactly (",", ":").

A record keeps the keys it was read with, in order, plus any unknown keys, and is written back
in the same layout, so a filled-in test file differs from the original only in its answers.
"""
from __future__ import annotations

import json
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Iterable, Mapping

__all__ = ["MegcFormatError", "MegcRecord", "read_megc_jsonl", "write_megc_jsonl",
           "clip_key", "group_by_clip"]

_KNOWN = ("id", "dataset", "image_id", "subject", "filename", "video_id", "video",
          "question", "answer")
_TRAIN_ORDER = ("id", "dataset", "image_id", "subject", "filename", "question", "answer")
_TEST_ORDER = ("video_id", "video", "question", "answer")


# Fields that name a clip, a subject or a dataset: they become path components under --clips.
_NAME_KEYS = ("dataset", "image_id", "subject", "filename", "video")


def _is_name(value: str) -> bool:
    """One plain path component (or empty: the field is then unused): not "." or "..", no separator or NUL."""
    return value.strip() not in (".", "..") and not any(c in value for c in "/\\\0")


class MegcFormatError(ValueError):
    """A MEGC JSONL line or record that cannot be read."""


@dataclass(frozen=True)
class MegcRecord:
    """One question about one clip. Training records fill ``id``, ``dataset``, ``image_id``,
    ``subject``, ``filename``; test records fill ``video_id`` and ``video``. Values are kept as
    read (subjects stay strings such as "sub01" or "6"). ``extra`` holds unknown keys;
    ``key_order`` the keys as read; ``compact`` whether the source used compact separators."""

    question: str
    answer: str = ""
    id: str | None = None
    dataset: str | None = None
    image_id: str | None = None
    subject: str | None = None
    filename: str | None = None
    video_id: str | None = None
    video: str | None = None
    extra: dict = field(default_factory=dict, hash=False)  # keeps records hashable
    key_order: tuple[str, ...] = ()
    compact: bool = False

    @classmethod
    def from_dict(cls, d: Mapping, *, compact: bool = False) -> "MegcRecord":
        """Build a record from a parsed JSON object (``question`` required)."""
        if not isinstance(d, Mapping):
            raise MegcFormatError(f"a MEGC record must be a JSON object, got {type(d).__name__}")
        if not isinstance(d.get("question"), str):
            raise MegcFormatError("record has no 'question' string")
        answer = d.get("answer", "")
        if answer is None:
            answer = ""
        if not isinstance(answer, str):
            raise MegcFormatError(f"'answer' must be a string, got {type(answer).__name__}")
        known = {k: d[k] for k in _KNOWN if k in d and k not in ("question", "answer") and d[k] is not None}
        for k, v in known.items():
            # a number id would be written back as a string and never match again on resume
            if not isinstance(v, str):
                raise MegcFormatError(f"{k!r} must be a string, got {type(v).__name__} {json.dumps(v)[:40]}")
            if k in _NAME_KEYS and not _is_name(v):
                raise MegcFormatError(f"{k!r} {v[:80]!r} is not a clip or folder name (no '/', '\\', '..' "
                                      "or absolute paths: clips are looked up inside --clips only)")
        extra = {k: v for k, v in d.items() if k not in _KNOWN}
        return cls(question=d["question"], answer=answer, extra=extra,
                   key_order=tuple(d.keys()), compact=compact, **known)

    @property
    def is_test(self) -> bool:
        """True for test-layout records (video/video_id, no training keys)."""
        return self.image_id is None and (self.video is not None or self.video_id is not None)

    @property
    def record_id(self) -> str | None:
        """``id`` (training) or ``video_id`` (test)."""
        return self.id if self.id is not None else self.video_id

    def to_dict(self) -> dict:
        """The record as a dict, keys in the order they were read (new records: the official
        training or test order), unknown keys included."""
        values = {k: getattr(self, k) for k in _KNOWN}
        values.update(self.extra)
        if self.key_order:
            order = list(self.key_order)
        else:
            order = list(_TEST_ORDER if self.is_test else _TRAIN_ORDER)
            order += [k for k in _KNOWN if k not in order and values.get(k) is not None]
            order += [k for k in self.extra if k not in order]
        out = {k: values.get(k) for k in order}
        # keys set after reading (e.g. a new extra key) are appended, never lost
        for k, v in self.extra.items():
            out.setdefault(k, v)
        return out

    def with_answer(self, answer: str) -> "MegcRecord":
        """A copy with ``answer`` replaced."""
        if not isinstance(answer, str):
            raise MegcFormatError(f"answer must be a string, got {type(answer).__name__}")
        return replace(self, answer=answer)


def read_megc_jsonl(path: str | Path) -> list[MegcRecord]:
    """Read a MEGC ME-VQA JSONL file (training or test layout). Blank lines are skipped.

    Raises :class:`MegcFormatError` naming the file and line for a bad line.
    """
    path = Path(path)
    if not path.is_file():
        raise MegcFormatError(f"MEGC question file not found: {path}")
    records = []
    with path.open("rb") as fh:
        for lineno, raw in enumerate(fh, start=1):
            try:
                line = raw.decode("utf-8-sig" if lineno == 1 else "utf-8")
            except UnicodeDecodeError as err:
                raise MegcFormatError(f"{path}:{lineno}: not valid UTF-8 (byte 0x{raw[err.start]:02x} at column "
                                      f"{err.start + 1})") from None
            text = line.strip()
            if not text:
                continue
            try:
                obj = json.loads(text)
            except json.JSONDecodeError as err:
                raise MegcFormatError(f"{path}:{lineno}: not valid JSON ({err.msg} at column {err.colno})") from None
            try:
                # test files are written with compact separators; keep that on write-back
                compact = json.dumps(obj, separators=(",", ":")) == text
                records.append(MegcRecord.from_dict(obj, compact=compact))
            except MegcFormatError as err:
                raise MegcFormatError(f"{path}:{lineno}: {err}") from None
    return records


def write_megc_jsonl(records: Iterable[MegcRecord | Mapping], path: str | Path, *,
                     compact: bool | None = None) -> Path:
    """Write records as JSONL, one object per line, keys in their original order.

    ``compact=None`` keeps the layout the records were read with (test files are compact);
    True/False forces it. Non-ASCII text is escaped as ``json.dumps`` does by default.
    """
    path = Path(path)
    lines = []
    for i, rec in enumerate(records):
        if not isinstance(rec, MegcRecord):
            try:
                rec = MegcRecord.from_dict(rec)
            except MegcFormatError as err:
                raise MegcFormatError(f"record {i}: {err}") from None
        use_compact = rec.compact if compact is None else compact
        seps = (",", ":") if use_compact else (", ", ": ")
        lines.append(json.dumps(rec.to_dict(), separators=seps))
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(line + "\n" for line in lines), encoding="utf-8")
    return path


def clip_key(record: MegcRecord | Mapping) -> str:
    """The clip a record asks about: ``image_id`` (training) or ``video`` (test).

    These are unique across the MEGC2025 files (CASME II ``sub01_EP02_01f``, SAMM ``006_1_2``,
    SMIC ``s01_ne_01``, test ``SAMM-1`` / ``CAS-1``).
    """
    get = record.get if isinstance(record, Mapping) else (lambda k: getattr(record, k, None))
    for key in ("image_id", "video"):
        value = get(key)
        if value not in (None, ""):
            return str(value)
    vid = get("video_id")
    if vid:
        # "samm_test_SAMM-1_3" -> "samm_test_SAMM-1": drop the question number
        return str(vid).rsplit("_", 1)[0]
    raise MegcFormatError("record has neither image_id nor video: cannot tell which clip it is about")


def group_by_clip(records: Iterable[MegcRecord | Mapping]) -> dict[str, list]:
    """Records grouped by :func:`clip_key`, clips and questions in file order."""
    groups: dict[str, list] = {}
    for rec in records:
        groups.setdefault(clip_key(rec), []).append(rec)
    return groups
