"""The evidence cache: computed once per clip content and settings, kept in memory and on disk, privately.

- **Key**: a SHA-256 over every frame's pixels, the frame shape, frame rate, frame numbers and the decoder
  settings (:func:`clip_key`), plus the evidence settings and a hash of the analysis code itself, so two
  clips differing in one frame never share an entry and an entry made by other code is never reused.
- **Integrity**: each disk entry carries an HMAC-SHA256 of its content under a per-user secret
  (``.secret`` in the cache folder, mode 0600); an entry that fails the check, or names another key,
  is ignored and recomputed.
- **Privacy**: folders are created 0700 and files 0600; entries hold **no face images**: keyframe crops
  are re-cut from the clip on load with the stored alignment transforms (:func:`load`), so the cache
  keeps numbers and flow maps only. The disk cache is bounded (``$MEVQA_CACHE_MAX_MB``, default 256 MB):
  least recently used entries go first. :func:`clear` empties it.
- **Memory**: up to :data:`MEMORY_ITEMS` entries, and a hit is a copy that carries the caller's clip name,
  never the name of whoever analysed the same bytes first.

The disk copy lives in ``$MEVQA_CACHE`` or ``~/.cache/mevqa/evidence``.
"""
from __future__ import annotations

import copy
import hashlib
import hmac
import json
import os
import secrets
from collections import OrderedDict
from functools import lru_cache
from pathlib import Path

import cv2
import numpy as np

from mevqa.evidence.result import EVIDENCE_VERSION, Evidence
from mevqa.io.video import Clip

_ANALYSIS_PACKAGES = ("io", "face", "motion", "spot", "au", "facs", "evidence")
MEMORY_ITEMS = 32  # evidence kept in memory (a long-running app must not grow without bound)
DEFAULT_MAX_MB = 256.0
_FACE_IMAGES = ("onset", "apex", "offset")  # face crops: never written to disk
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


def clip_key(clip: Clip) -> str:
    """SHA-256 (32 hex digits) over every frame's pixels and the decoding settings of ``clip``.

    About 0.3 s for 472 frames of 640x360 on one core: small beside the analysis it saves.
    """
    h = hashlib.sha256()
    frames = np.ascontiguousarray(clip.frames)
    meta = {k: v for k, v in (clip.meta or {}).items() if isinstance(v, (str, int, float, bool, list, tuple, type(None)))}
    h.update(json.dumps({"shape": frames.shape, "dtype": str(frames.dtype), "fps": round(float(clip.fps), 6),
                         "meta": meta}, sort_keys=True, default=str).encode())
    h.update(np.asarray(clip.frame_numbers, np.int64).tobytes())
    for f in frames:  # frame by frame: no second copy of the clip in memory
        h.update(memoryview(f).cast("B"))
    return h.hexdigest()[:32]


def cache_dir() -> Path:
    root = os.environ.get("MEVQA_CACHE") or os.path.join(os.environ.get("XDG_CACHE_HOME", "~/.cache"), "mevqa")
    return Path(root).expanduser() / "evidence"


def _private_dir() -> Path:
    d = cache_dir()
    d.mkdir(parents=True, exist_ok=True, mode=0o700)
    if d.stat().st_mode & 0o077:
        os.chmod(d, 0o700)  # an older, world-readable cache folder becomes private
    return d


def _secret() -> bytes:
    p = _private_dir() / ".secret"
    try:
        fd = os.open(p, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        return p.read_bytes()
    with os.fdopen(fd, "wb") as f:
        f.write(secrets.token_bytes(32))
    return p.read_bytes()


def _mac(key: str, body: str) -> str:
    return hmac.new(_secret(), f"{key}\n{body}".encode(), hashlib.sha256).hexdigest()


# -- memory -----------------------------------------------------------------------------------------
def _remember(key: str, ev: Evidence) -> None:
    _memory[key] = ev
    _memory.move_to_end(key)
    while len(_memory) > MEMORY_ITEMS:
        _memory.popitem(last=False)


def _for_caller(ev: Evidence, source: str) -> Evidence:
    """A copy of a cached Evidence named after the caller's clip (images and numbers are shared, read-only)."""
    out = copy.copy(ev)
    out.clip = source
    return out


# -- disk -------------------------------------------------------------------------------------------
def _strip_faces(d: dict) -> dict:
    for iv in d.get("intervals", []):
        iv["images"] = {k: v for k, v in iv.get("images", {}).items() if k not in _FACE_IMAGES}
    return d


def _recut_faces(ev: Evidence, clip: Clip) -> None:
    """Re-cut the keyframe crops from the clip with the alignment transforms kept in the evidence."""
    size = int(ev.settings.get("crop", 224))
    for iv in ev.intervals:
        for name, kf in (iv.keyframes or {}).items():
            f = int(kf["frame"])
            if 0 <= f < clip.n_frames and name not in iv.images:
                m = np.asarray(kf["transform"], np.float32)
                iv.images[name] = cv2.warpAffine(clip.frames[f], m, (size, size), flags=cv2.INTER_LINEAR,
                                                 borderMode=cv2.BORDER_REPLICATE)


def load(key: str, clip: Clip) -> Evidence | None:
    """The cached Evidence for ``key`` (memory first, then a verified disk entry), or None."""
    if key in _memory:
        _memory.move_to_end(key)
        return _for_caller(_memory[key], clip.source)
    path = cache_dir() / f"{key}.json"
    try:
        entry = json.loads(path.read_text())
        if entry.get("key") != key or not hmac.compare_digest(entry.get("mac", ""), _mac(key, entry["body"])):
            return None  # edited, moved or foreign: recompute
        ev = Evidence.from_json(entry["body"])
        os.utime(path)  # least recently used goes first
    except (OSError, ValueError, KeyError, TypeError):
        return None  # missing, old or damaged: recompute
    _recut_faces(ev, clip)
    _remember(key, ev)
    return _for_caller(ev, clip.source)


def store(key: str, ev: Evidence, *, disk: bool = True) -> None:
    """Keep ``ev`` in memory, and (``disk``) on disk without face crops, privately and atomically; then evict."""
    _remember(key, ev)
    if not disk:
        return
    try:
        d = _private_dir()
        body = json.dumps(_strip_faces(ev.to_dict(images=True)), ensure_ascii=False)
        tmp = d / f"{key}.{os.getpid()}.tmp"  # one writer per process
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            json.dump({"key": key, "mac": _mac(key, body), "body": body}, f, ensure_ascii=False)
        os.replace(tmp, d / f"{key}.json")  # atomic: a crash never leaves half an entry
        evict()
    except OSError:
        pass  # a read-only home is no reason to fail


def _max_bytes() -> float:
    try:
        return float(os.environ.get("MEVQA_CACHE_MAX_MB", DEFAULT_MAX_MB)) * 2 ** 20
    except ValueError:
        return DEFAULT_MAX_MB * 2 ** 20


def evict(*, max_bytes: float | None = None) -> list[Path]:
    """Delete the least recently used entries until the disk cache fits ``max_bytes``; returns them."""
    limit = _max_bytes() if max_bytes is None else max_bytes
    entries = []
    for p in cache_dir().glob("*.json"):
        try:
            st = p.stat()
        except OSError:
            continue
        entries.append((st.st_mtime, st.st_size, p))
    total = sum(size for _, size, _ in entries)
    removed = []
    for _, size, p in sorted(entries):
        if total <= limit:
            break
        try:
            p.unlink()
            total -= size
            removed.append(p)
        except OSError:
            continue
    return removed


def clear() -> int:
    """Empty the memory and disk caches (the secret stays); returns the number of disk entries removed."""
    _memory.clear()
    n = 0
    for p in list(cache_dir().glob("*.json")) + list(cache_dir().glob("*.tmp")):
        try:
            p.unlink()
            n += p.suffix == ".json"
        except OSError:
            continue
    return n
