"""The evidence cache: computed once per clip content and settings, kept in memory and on disk.

Keys combine the clip's content hash (:meth:`mevqa.io.video.Clip.content_hash`), the evidence settings
and a hash of the analysis code itself, so an entry made by other code or other settings is never reused.
The disk copy lives in ``$MEVQA_CACHE`` or ``~/.cache/mevqa/evidence``.
"""
from __future__ import annotations

import hashlib
import os
from collections import OrderedDict
from functools import lru_cache
from pathlib import Path

from mevqa.evidence.result import EVIDENCE_VERSION, Evidence

_ANALYSIS_PACKAGES = ("io", "face", "motion", "spot", "au", "facs", "evidence")
MEMORY_ITEMS = 32  # evidence kept in memory (a long-running app must not grow without bound)
_memory: "OrderedDict[str, Evidence]" = OrderedDict()


@lru_cache(maxsize=1)
def _code_version() -> str:
    """A hash of the analysis code itself: a cache entry made by other code is never reused."""
    h = hashlib.sha1()
    here = Path(__file__).parent.parent
    for name in _ANALYSIS_PACKAGES:
        for p in sorted((here / name).glob("*.py")):
            h.update(p.read_bytes())
    return h.hexdigest()[:8]


def settings_key(config) -> str:
    return hashlib.sha1(f"{EVIDENCE_VERSION}{_code_version()}{config!r}".encode()).hexdigest()[:10]


_settings_key = settings_key  # older private name


def cache_dir() -> Path:
    root = os.environ.get("MEVQA_CACHE") or os.path.join(os.environ.get("XDG_CACHE_HOME", "~/.cache"), "mevqa")
    return Path(root).expanduser() / "evidence"


def _remember(key: str, ev: Evidence) -> None:
    _memory[key] = ev
    _memory.move_to_end(key)
    while len(_memory) > MEMORY_ITEMS:
        _memory.popitem(last=False)


def load(key: str, *, source: str) -> Evidence | None:
    """The cached Evidence for ``key`` (memory first, then disk), or None; ``source`` names the clip."""
    if key in _memory:
        _memory.move_to_end(key)
        return _memory[key]
    path = cache_dir() / f"{key}.json"
    if path.exists():
        try:
            ev = Evidence.from_json(path.read_text())
            ev.clip = source
            _remember(key, ev)
            return ev
        except (ValueError, KeyError, TypeError):
            pass  # an old or damaged cache entry: recompute
    return None


def store(key: str, ev: Evidence) -> None:
    """Keep ``ev`` in memory and write it to disk atomically (a read-only home is no reason to fail)."""
    _remember(key, ev)
    path = cache_dir() / f"{key}.json"
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(f".{os.getpid()}.tmp")  # one writer per process
        tmp.write_text(ev.to_json(images=True))
        tmp.replace(path)  # atomic: a crash never leaves half a cache entry
    except OSError:
        pass
