"""Where a coding sheet's clip has its frames: the folder layouts the datasets' releases use (CASME II,
SAMM, CAS(ME)^3 part A, SMIC-HS), matched case-insensitively where releases disagree on case."""
from __future__ import annotations

import re
from pathlib import Path

__all__ = ["find_frames"]


def _int(v: str) -> int | None:
    # subjects here are already in MEGC spelling ("6", "01"): plain digits or nothing
    s = str(v).strip()
    return int(s) if s.isdigit() else None


def _child(parent: Path, name: str) -> Path | None:
    p = parent / name
    if p.is_dir():
        return p
    if parent.is_dir():  # CAS(ME)^3 mixes spNO/spNo: match case-insensitively
        low = name.lower()
        for c in parent.iterdir():
            if c.is_dir() and c.name.lower() == low:
                return c
    return None


def _walk(root: Path, parts: list[str]) -> Path | None:
    cur = root
    for part in parts:
        nxt = _child(cur, part)
        if nxt is None:
            return None
        cur = nxt
    return cur


def _frame_candidates(clip, raw_subject: str, raw_filename: str) -> list[list[str]]:
    ds = clip.dataset
    if ds == "casme2":
        return [[p, clip.subject, clip.filename] for p in ("", "CASME2_RAW_selected", "CASME2-RAW",
                                                           "CASME2_RAW", "Cropped")]
    if ds == "samm":
        n = _int(clip.subject)
        sub3 = f"{n:03d}" if n is not None else raw_subject
        return [[p, sub3, clip.filename] for p in ("", "SAMM")]
    if ds == "casme3":
        out = []
        for p in ("", "part_A", "data/part_A", "Part_A_ME_clip/frame"):
            out += [[p, clip.subject, clip.filename, "color"], [p, clip.subject, clip.filename]]
        return out
    if ds == "smic":
        n = _int(re.sub(r"(?i)^s", "", clip.subject))
        subs = list(dict.fromkeys([raw_subject, f"s{n}" if n is not None else raw_subject, clip.subject]))
        fnames = list(dict.fromkeys([raw_filename, clip.filename]))
        if n is not None:
            fnames.append(re.sub(r"(?i)^s\d+", f"s{n}", clip.filename))
        fnames = list(dict.fromkeys(fnames))
        out = []
        for p in ("", "HS", "SMIC/HS"):
            for s in subs:
                for f in fnames:
                    out += [[p, s, "micro", clip.coarse or "", f], [p, s, f]]
        return out
    return [[clip.subject, clip.filename]]


def find_frames(root: Path, clip, raw_subject: str, raw_filename: str) -> Path | None:
    """The frame folder of ``clip`` (a :class:`mevqa.io.sheets.LabelledClip`) under ``root``, or None."""
    for parts in _frame_candidates(clip, raw_subject, raw_filename):
        parts = [q for p in parts for q in p.split("/") if q]
        found = _walk(root, parts)
        if found is not None:
            return found
    return None
