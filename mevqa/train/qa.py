"""Question/answer generation in the MEGC2025 ME-VQA templates, and data summaries.

What the official training files do per clip (checked on all 278 CASME II and SAMM clips and
164 SMIC clips of the MEGC2025 release):

1. ``What is the coarse expression class?`` (SMIC clips stop here: they have no fine label);
2. ``What is the fine-grained expression class?``;
3. ``What is the action unit?`` when one AU is coded, else ``What are the action units?``; the
   answer lists the AU names in coding-sheet order, comma separated;
4. at most one ``Is the action unit X located on the left or right face?``, only when an AU is
   coded on one side (X drawn among those);
5. ``Is the action unit X shown on the face?`` with X drawn among the clip's AUs (answer "yes");
6. the same with X drawn from the 25-name MEGC AU vocabulary minus the clip's AUs ("no");
7. the analysis question (singular/plural like 3) answered with the exact analysis sentence.

MEGC2026 ME-VQA-v2 asks step 7 as one of three paraphrases (``ANALYSIS_QUESTIONS_V2``, same answer):
``style="megc2026"`` draws one of them, ``style="mixed"`` draws the 2025 question or a paraphrase
with equal chance, so a model trained on the mix meets both wordings.

Ids are ``<dataset>_<image_id>_<n>`` with n counting from 1.
"""
from __future__ import annotations

import random
from collections import Counter
from typing import Iterable, Mapping, Sequence

from mevqa.facs.codes import MEGC_AU_NAMES, AUOccurrence, FacsError, au_by_name
from mevqa.answer.questions import (
    ANALYSIS_QUESTIONS_V2, COARSE_QUESTION, FINE_QUESTION, analysis_question, analysis_sentence, au_list_question,
    presence_question, question_type, side_question,
)
from mevqa.io.megc import MegcRecord, clip_key, read_megc_jsonl
from mevqa.io.sheets import LabelledClip, load_sheet

__all__ = ["QAError", "generate_qa", "clip_from_records", "summary", "summarise_files", "format_summary"]


class QAError(ValueError):
    """A clip or record set that QA generation or summary cannot use."""


def _rng(rng):
    if rng is None or isinstance(rng, int):
        return random.Random(rng)
    if hasattr(rng, "choice") and hasattr(rng, "random") and not hasattr(rng, "integers"):
        return rng  # random.Random
    if hasattr(rng, "integers"):  # numpy Generator
        return _NumpyAdapter(rng)
    raise QAError(f"rng must be a random.Random, a numpy Generator, an int seed or None, got {rng!r}")


class _NumpyAdapter:
    def __init__(self, gen):
        self.gen = gen

    def choice(self, seq):
        return seq[int(self.gen.integers(len(seq)))]

    def random(self) -> float:
        return float(self.gen.random())


def _unique_aus(aus: Iterable[AUOccurrence]) -> list[AUOccurrence]:
    seen: dict[str, AUOccurrence] = {}
    for occ in aus:
        if occ.code in seen:
            old = seen[occ.code]
            side = old.side if old.side == occ.side else "both"
            seen[occ.code] = AUOccurrence(occ.code, side, old.intensity, old.uncertain)
        else:
            seen[occ.code] = occ
    return list(seen.values())


def generate_qa(clip: LabelledClip, *, rng=None,
                absent_pool: Sequence[str] = MEGC_AU_NAMES, style: str = "megc2025") -> list[dict]:
    """Questions and answers for one clip, as in the official MEGC2025 training files.

    Returns dicts with the training keys (id, dataset, image_id, subject, filename, question,
    answer) in the official order. A clip without a coarse label (e.g. CASME II "others") gets
    no questions; one without a fine label (SMIC) gets only the coarse question; one without
    AUs gets the coarse and fine questions. ``rng`` (random.Random, numpy Generator or int seed)
    draws the side, "yes" and "no" AUs; ``absent_pool`` is the vocabulary of "no" AUs; ``style``
    ("megc2025", "megc2026", "mixed") words the analysis question (see the module docstring).
    """
    if style not in ("megc2025", "megc2026", "mixed"):
        raise QAError(f"unknown question style {style!r} (megc2025, megc2026 or mixed)")
    r = _rng(rng)
    if clip.coarse is None:
        return []
    image_id = clip.image_id
    base = {"dataset": clip.dataset, "image_id": image_id, "subject": clip.subject,
            "filename": clip.filename}
    qa: list[tuple[str, str]] = [(COARSE_QUESTION, clip.coarse)]
    if clip.fine is not None:
        qa.append((FINE_QUESTION, clip.fine))
        aus = _unique_aus(clip.aus)
        if aus:
            names = [occ.name for occ in aus]
            qa.append((au_list_question(len(names)), ", ".join(names)))
            lateral = [occ for occ in aus if occ.side in ("left", "right")]
            if lateral:
                occ = r.choice(lateral)
                qa.append((side_question(occ.au), occ.side))
            qa.append((presence_question(r.choice(names)), "yes"))
            pool = [n for n in absent_pool if n not in names]
            if pool:
                qa.append((presence_question(r.choice(pool)), "no"))
            question = analysis_question(len(names))
            if style == "megc2026" or (style == "mixed" and r.random() < 0.5):
                question = r.choice(ANALYSIS_QUESTIONS_V2)
            qa.append((question, analysis_sentence(names, clip.fine, clip.coarse)))
    return [{"id": f"{clip.dataset}_{image_id}_{i}", **base, "question": q, "answer": a}
            for i, (q, a) in enumerate(qa, start=1)]


def _get(rec, key):
    return rec.get(key) if isinstance(rec, Mapping) else getattr(rec, key, None)


def clip_from_records(records: Sequence[MegcRecord | Mapping]) -> LabelledClip:
    """Rebuild the labels of one clip from its answered MEGC records.

    AUs come from the AU-list answer (sheet order), the side of the AU asked in a left/right
    question from its answer (other AUs are "both": the files do not say), fine and coarse from
    their answers. Frame numbers are unknown (None).
    """
    if not records:
        raise QAError("no records given for the clip")
    keys = {clip_key(r) for r in records}
    if len(keys) != 1:
        raise QAError(f"records belong to {len(keys)} clips, expected one: {sorted(keys)[:3]}")
    first = records[0]
    fine = coarse = None
    au_names: list[str] = []
    sides: dict[str, str] = {}
    for rec in records:
        kind = question_type(_get(rec, "question"))
        answer = _get(rec, "answer") or ""
        if kind.kind == "coarse":
            coarse = answer or None
        elif kind.kind == "fine":
            fine = answer or None
        elif kind.kind == "au_list" and answer:
            au_names = [a.strip() for a in answer.split(",") if a.strip()]
        elif kind.kind == "au_side" and kind.au is not None and answer in ("left", "right"):
            sides[kind.au.code] = answer
    try:
        aus = [AUOccurrence(au_by_name(n).code) for n in au_names]
    except FacsError as err:
        raise QAError(f"clip {keys.pop()}: {err}") from None
    aus = [AUOccurrence(a.code, sides.get(a.code, "both")) for a in aus]
    return LabelledClip(dataset=str(_get(first, "dataset") or ""), subject=str(_get(first, "subject") or ""),
                        filename=str(_get(first, "filename") or ""), onset=None, apex=None, offset=None,
                        aus=aus, fine=fine, coarse=coarse)


# --------------------------------------------------------------------------------------------
# Summaries (for `mevqa data summary`)
# --------------------------------------------------------------------------------------------
def summary(records: Iterable) -> dict:
    """Counts over MEGC records (MegcRecord or dicts) or over LabelledClips.

    Keys: n_records, n_clips, datasets, subjects ("dataset/subject" -> clips), question_kinds,
    coarse, fine, aus (AU name -> clips listing it), sides, presence (yes/no), unanswered.
    Label and AU counts are per clip; question counts per record.
    """
    items = list(records)
    out = {"n_records": 0, "n_clips": 0, "datasets": Counter(), "subjects": Counter(),
           "question_kinds": Counter(), "coarse": Counter(), "fine": Counter(), "aus": Counter(),
           "sides": Counter(), "presence": Counter(), "unanswered": 0}
    if items and isinstance(items[0], LabelledClip):
        out["n_clips"] = len(items)
        for c in items:
            out["datasets"][c.dataset] += 1
            out["subjects"][f"{c.dataset}/{c.subject}"] += 1
            if c.coarse:
                out["coarse"][c.coarse] += 1
            if c.fine:
                out["fine"][c.fine] += 1
            for occ in _unique_aus(c.aus):
                out["aus"][occ.name] += 1
                out["sides"][occ.side] += 1
        return _plain(out)
    out["n_records"] = len(items)
    clips: dict[str, list] = {}
    for rec in items:
        clips.setdefault(clip_key(rec), []).append(rec)
    out["n_clips"] = len(clips)
    for key, recs in clips.items():
        first = recs[0]
        ds = _get(first, "dataset") or "test"
        out["datasets"][ds] += 1
        subject = _get(first, "subject")
        if subject is not None:
            out["subjects"][f"{ds}/{subject}"] += 1
        for rec in recs:
            kind = question_type(_get(rec, "question"))
            answer = (_get(rec, "answer") or "").strip()
            out["question_kinds"][kind.kind] += 1
            if not answer:
                out["unanswered"] += 1
                continue
            if kind.kind in ("coarse", "fine"):
                out[kind.kind][answer.lower()] += 1
            elif kind.kind == "au_list":
                for name in answer.split(","):
                    if name.strip():
                        out["aus"][name.strip().lower()] += 1
            elif kind.kind == "au_side":
                out["sides"][answer.lower()] += 1
            elif kind.kind == "au_presence":
                out["presence"][answer.lower()] += 1
    return _plain(out)


def summarise_files(paths: Iterable) -> dict:
    """:func:`summary` over files: MEGC JSONL question files (``.jsonl``) or coding sheets
    (``.xlsx``/``.csv``, read with :func:`~mevqa.io.sheets.load_sheet`). Mixing the two kinds
    in one call is refused (records and clips are counted differently). The result also has
    ``files`` (the paths) and, for sheets, ``problems`` and ``missing_frames``."""
    from pathlib import Path

    paths = [Path(p) for p in paths]
    if not paths:
        raise QAError("no files given: pass MEGC .jsonl files or coding sheets (.xlsx/.csv)")
    jsonl = [p for p in paths if p.suffix.lower() == ".jsonl"]
    if jsonl and len(jsonl) != len(paths):
        raise QAError("give either MEGC .jsonl files or coding sheets, not both in one summary")
    if jsonl:
        records = [r for p in paths for r in read_megc_jsonl(p)]
        out = summary(records)
    else:
        clips, problems = [], []
        for p in paths:
            got = load_sheet(p)
            clips += list(got)
            problems += got.problems
        out = summary(clips)
        out["problems"] = problems
    out["files"] = [str(p) for p in paths]
    return out


def _plain(out: dict) -> dict:
    return {k: (dict(v.most_common()) if isinstance(v, Counter) else v) for k, v in out.items()}


def format_summary(s: Mapping) -> str:
    """A readable multi-line text of :func:`summary`'s result."""
    lines = []
    if s.get("files"):
        lines.append("files: " + ", ".join(s["files"]))
    lines.append(f"records: {s.get('n_records', 0)}   clips: {s.get('n_clips', 0)}"
                 + (f"   unanswered: {s['unanswered']}" if s.get("unanswered") else ""))
    titles = [("datasets", "clips per dataset"), ("question_kinds", "questions per kind"),
              ("coarse", "coarse class (clips)"), ("fine", "fine class (clips)"),
              ("aus", "action units (clips)"), ("sides", "AU sides"),
              ("presence", "presence answers"), ("subjects", "clips per subject")]
    for key, title in titles:
        counts = s.get(key) or {}
        if not counts:
            continue
        lines.append("")
        lines.append(f"{title}:")
        if key == "subjects":
            lines.append(f"  {len(counts)} subjects, " + ", ".join(f"{k} {v}" for k, v in counts.items()))
            continue
        width = max(len(str(k)) for k in counts)
        for k, v in counts.items():
            lines.append(f"  {str(k):<{width}}  {v}")
    if s.get("problems"):
        lines.append("")
        lines.append(f"problems ({len(s['problems'])}):")
        lines += [f"  {p}" for p in s["problems"]]
    return "\n".join(lines)
