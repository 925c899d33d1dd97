"""Coding-sheet importers for the micro-expression datasets MEGC2025 draws on.

Layouts handled, as the datasets distribute them:

- CASME II ``CASME2-coding-*.xlsx`` (Yan et al. 2014): header on the first row: Subject,
  Filename, [Unnamed], OnsetFrame, ApexFrame, OffsetFrame, [Unnamed], Action Units, Estimated
  Emotion. Subjects are numbers (1 -> folder ``sub01``); ApexFrame is "/" for a few clips.
  Frames: ``CASME2_RAW_selected/sub01/EP02_01f/img46.jpg``. 200 fps.
- SAMM ``SAMM_Micro_FACS_Codes_v2.xlsx`` (Davison et al. 2018): a notes block of title rows,
  then Subject, Filename, Inducement Code, Onset Frame, Apex Frame, Offset Frame, Duration,
  Type, Action Units, Estimated Emotion, Objective Classes, Notes. Subjects "006"; frames
  ``SAMM/006/006_1_2/006_1_2_0001.jpg`` (folder ``006/006_1_2``). 200 fps.
- CAS(ME)^3 part A ``cas(me)3_part_A_ME_label_JpgIndex_v2.xlsx`` (Li et al. 2022), sheet
  "label": Subject (``spNO.1``), Filename (``a``), Onset, Apex, Offset, AU, Objective class,
  emotion. Frames ``spNO.1/a/color/<n>.jpg`` (folders sometimes spelled ``spNo.1``). 30 fps.
- SMIC-HS (Li et al. 2013): csv or xlsx of subject, filename, onset, offset, emotion
  (negative / positive / surprise; no AUs, no apex). Frames ``HS/s1/micro/negative/s1_ne_01``.
  100 fps.

The header row is found by its column names (spacing and case do not matter); AU strings are
parsed with laterality by :func:`mevqa.facs.codes.parse_au_string`; emotions are mapped to the MEGC
fine/coarse labels (a dataset label with no MEGC fine class, such as CASME II "others", gives
``fine=None``). Subjects and file names are stored in the MEGC2025 spelling (CASME II "sub01",
SAMM "6", SMIC "s01" / "s01_ne_01"), so generated questions match the official files.
"""
from __future__ import annotations

import csv
import re
from dataclasses import dataclass, field
from pathlib import Path

import openpyxl

from mevqa.facs.codes import AUOccurrence, FacsError, parse_au_string
from mevqa.facs.labels import FINE_TO_COARSE
from mevqa.io.sheet_frames import find_frames
from mevqa.io.splits import normalise_dataset, normalise_subject

__all__ = ["SheetError", "LabelledClip", "SheetClips", "DATASET_FPS", "load_sheet",
           "read_casme2", "read_samm", "read_casme3", "read_smic", "map_emotion"]


class SheetError(ValueError):
    """A coding sheet that cannot be read."""


#: Recording frame rates (frames per second) of the datasets.
DATASET_FPS: dict[str, float] = {"casme2": 200.0, "samm": 200.0, "casme3": 30.0, "smic": 100.0}


@dataclass
class LabelledClip:
    """One coded micro-expression clip.

    ``subject`` and ``filename`` use the MEGC2025 spelling; frame numbers are as in the sheet
    (None when unknown, e.g. clips rebuilt from MEGC question files); ``emotion`` is the label as written
    in the sheet, ``fine``/``coarse`` its MEGC mapping (None when it has none); ``aus`` keep
    laterality; ``frames_dir`` is the frame folder when a root was given and it exists.
    """

    dataset: str
    subject: str
    filename: str
    onset: int | None
    apex: int | None
    offset: int | None
    aus: list[AUOccurrence] = field(default_factory=list)
    fine: str | None = None
    coarse: str | None = None
    frames_dir: Path | None = None
    fps: float | None = None
    emotion: str | None = None
    source_row: int | None = None

    @property
    def image_id(self) -> str:
        """The clip id as MEGC2025 writes it (CASME II ``sub01_EP02_01f``, SAMM ``006_1_2``,
        SMIC ``s01_ne_01``). CAS(ME)^3 videos hold several clips, so the onset is appended
        there (``spNO.1_a_123``); MEGC2025 has no training file for it to copy."""
        if self.dataset == "casme2":
            return f"{self.subject}_{self.filename}"
        if self.dataset in ("samm", "smic"):
            return self.filename
        if self.dataset == "casme3":
            return f"{self.subject}_{self.filename}_{self.onset}"
        return f"{self.subject}_{self.filename}"


class SheetClips(list):
    """A list of :class:`LabelledClip` with what went wrong attached: ``missing_frames`` (clips
    whose frame folder was not found under the given root) and ``problems`` (rows skipped or
    labels/AUs that could not be read, each with its sheet row number)."""

    def __init__(self, clips=(), *, missing_frames=None, problems=None):
        super().__init__(clips)
        self.missing_frames: list[str] = list(missing_frames or [])
        self.problems: list[str] = list(problems or [])


# --------------------------------------------------------------------------------------------
# Emotion labels
# --------------------------------------------------------------------------------------------
_FINE_FROM_SHEET = {
    "happiness": "happiness", "happy": "happiness", "disgust": "disgust", "disgusted": "disgust",
    "repression": "repression", "surprise": "surprise", "surprised": "surprise",
    "sadness": "sadness", "sad": "sadness", "fear": "fear", "anger": "anger", "angry": "anger",
    "contempt": "contempt",
}
_COARSE_FROM_SHEET = {"negative": "negative", "ne": "negative", "positive": "positive",
                      "po": "positive", "surprise": "surprise", "sur": "surprise"}
_NO_MEGC_CLASS = {"others", "other", "neutral", "none", "", "nan"}


def map_emotion(dataset: str, label) -> tuple[str | None, str | None]:
    """(fine, coarse) in MEGC labels for a dataset's emotion label.

    SMIC labels are coarse only (fine None). "others"/"other" have no MEGC class: (None, None).
    Raises :class:`SheetError` for a label it does not know.
    """
    ds = normalise_dataset(dataset)
    key = " ".join(str(label if label is not None else "").lower().split())
    if key in _NO_MEGC_CLASS:
        return None, None
    if ds == "smic":
        if key in _COARSE_FROM_SHEET:
            return None, _COARSE_FROM_SHEET[key]
        raise SheetError(f"unknown SMIC emotion {label!r} (expected negative, positive or surprise)")
    if key in _FINE_FROM_SHEET:
        fine = _FINE_FROM_SHEET[key]
        return fine, FINE_TO_COARSE[fine]
    if key in ("negative", "positive"):
        return None, key
    raise SheetError(f"unknown {ds} emotion {label!r}")


# --------------------------------------------------------------------------------------------
# Reading rows
# --------------------------------------------------------------------------------------------
def _norm_header(v) -> str:
    return re.sub(r"[^a-z0-9]", "", str(v if v is not None else "").lower())


# Column name variants (after removing spaces/punctuation, lower case), best first.
_COLUMNS: dict[str, tuple[str, ...]] = {
    "subject": ("subject", "sub", "subjects", "participant", "subjectid"),
    "filename": ("filename", "file", "filenames", "seq", "video", "clip", "episode", "sample"),
    "onset": ("onsetframe", "onset", "onsetf", "startframe", "start"),
    "apex": ("apexframe", "apex", "apexf"),
    "offset": ("offsetframe", "offset", "offsetf", "endframe", "end"),
    "aus": ("actionunits", "actionunit", "au", "aus", "facs", "facscode", "facscodes"),
    "emotion": ("estimatedemotion", "estimatedemotions", "emotion", "emotions", "emotionlabel",
                "label", "class", "emotionclass", "category"),
}


def _rows_from_file(path: Path) -> list[tuple[str, list[list]]]:
    """[(sheet name, rows)] for an xlsx (every sheet) or a csv (one pseudo-sheet)."""
    suffix = path.suffix.lower()
    if suffix in (".csv", ".txt"):
        with path.open(newline="", encoding="utf-8-sig") as fh:
            sample = fh.read(4096)
            fh.seek(0)
            try:
                dialect = csv.Sniffer().sniff(sample, delimiters=",;\t")
            except csv.Error:
                dialect = csv.excel
            return [("csv", [list(r) for r in csv.reader(fh, dialect)])]
    if suffix in (".xlsx", ".xlsm"):
        try:
            wb = openpyxl.load_workbook(path, read_only=True, data_only=True)
        except Exception as err:  # openpyxl raises several types for a damaged file
            raise SheetError(f"{path}: cannot open as an Excel workbook ({err})") from None
        try:
            return [(ws.title, [list(r) for r in ws.iter_rows(values_only=True)]) for ws in wb.worksheets]
        finally:
            wb.close()
    if suffix == ".xls":
        raise SheetError(f"{path}: old .xls format; save it as .xlsx (openpyxl reads .xlsx only)")
    raise SheetError(f"{path}: unsupported sheet type {suffix!r} (use .xlsx or .csv)")


def _find_header(rows: list[list], max_scan: int = 60) -> tuple[int, dict[str, int]] | None:
    for r, row in enumerate(rows[:max_scan]):
        names = [_norm_header(v) for v in row]
        cols: dict[str, int] = {}
        for key, variants in _COLUMNS.items():
            for variant in variants:
                if variant in names:
                    cols[key] = names.index(variant)
                    break
        if {"subject", "filename", "onset"} <= cols.keys():
            if "emotion" not in cols and "objectiveclass" in names:
                cols["emotion"] = names.index("objectiveclass")
            return r, cols
    return None


def _int_or_none(v) -> int | None:
    if v is None:
        return None
    if isinstance(v, bool):
        return None
    if isinstance(v, (int, float)):
        return int(v) if float(v).is_integer() else None
    s = str(v).strip()
    if re.fullmatch(r"-?\d+(\.0+)?", s):
        return int(float(s))
    return None


def _text(v) -> str:
    if v is None:
        return ""
    if isinstance(v, float) and v.is_integer():
        v = int(v)
    return str(v).strip()


# --------------------------------------------------------------------------------------------
# Dataset detection
# --------------------------------------------------------------------------------------------
def _detect_dataset(path: Path, header: list, data: list[list], cols: dict[str, int],
                    header_row: int) -> str | None:
    names = {_norm_header(v) for v in header}
    subjects = [_text(r[cols["subject"]]) for r in data[:30] if len(r) > cols["subject"]]
    files = [_text(r[cols["filename"]]) for r in data[:30] if len(r) > cols["filename"]]
    if any(re.match(r"(?i)sp\s*no\.?\s*\d+", s) for s in subjects):
        return "casme3"
    if any(re.match(r"(?i)^EP\d+_", f) for f in files):
        return "casme2"
    if any(re.match(r"^\d{3}_\d+", f) for f in files) or "inducementcode" in names:
        return "samm"
    if any(re.match(r"(?i)^s\d+_(ne|po|sur)_", f) for f in files):
        return "smic"
    stem = path.name.lower()
    for pattern, ds in ((r"casme2|casme ii|casmeii", "casme2"), (r"samm", "samm"),
                        (r"cas\(me\)\^?3|casme3|part_a", "casme3"), (r"smic", "smic")):
        if re.search(pattern, stem):
            return ds
    if "objectiveclass" in names and "au" in names:
        return "casme3"
    if header_row > 0:
        return "samm"  # only SAMM ships title rows above the header
    return None


# --------------------------------------------------------------------------------------------
# Public readers
# --------------------------------------------------------------------------------------------
def _normalise_filename(dataset: str, subject: str, filename: str) -> str:
    if dataset == "smic":
        # MEGC writes SMIC clips with two-digit subjects: s1_ne_01 -> s01_ne_01
        return re.sub(r"(?i)^s\d+", subject, filename) if re.match(r"(?i)^s\d+_", filename) else filename
    return filename


def load_sheet(path: str | Path, dataset: str | None = None,
               frames_root: str | Path | None = None) -> SheetClips:
    """Read a dataset's coding sheet into :class:`LabelledClip` objects.

    ``dataset`` ("casme2", "samm", "casme3", "smic"; spellings like "CASME II" accepted) is
    auto-detected from the sheet when omitted. With ``frames_root`` each clip is joined to its
    frame folder; clips whose folder is missing keep ``frames_dir=None`` and are listed in the
    result's ``missing_frames``. Rows that cannot be used (no onset, unknown AU) are listed in
    ``problems``; empty rows are skipped silently.
    """
    path = Path(path)
    if not path.is_file():
        raise SheetError(f"coding sheet not found: {path}")
    sheets = _rows_from_file(path)
    found = None
    for name, rows in sheets:
        # CAS(ME)^3 keeps its table in a sheet named "label"; prefer it when present
        hdr = _find_header(rows)
        if hdr is not None and (found is None or name.lower() == "label"):
            found = (name, rows, hdr)
    if found is None:
        raise SheetError(f"{path}: no header row with Subject, Filename and Onset columns found")
    _, rows, (header_row, cols) = found
    data = rows[header_row + 1:]
    if dataset is None:
        dataset = _detect_dataset(path, rows[header_row], data, cols, header_row)
        if dataset is None:
            raise SheetError(f"{path}: cannot tell which dataset this sheet is; pass dataset= "
                             f"('casme2', 'samm', 'casme3' or 'smic')")
    ds = normalise_dataset(dataset)
    root = Path(frames_root) if frames_root is not None else None
    if root is not None and not root.is_dir():
        raise SheetError(f"frames root is not a folder: {root}")

    clips = SheetClips()
    for offset_row, row in enumerate(data, start=header_row + 2):  # 1-based sheet row numbers
        def cell(key):
            i = cols.get(key)
            return row[i] if i is not None and i < len(row) else None

        raw_subject, raw_filename = _text(cell("subject")), _text(cell("filename"))
        if not raw_subject and not raw_filename:
            continue  # blank or trailing rows
        where = f"{path.name} row {offset_row} ({raw_subject}/{raw_filename})"
        if not raw_subject or not raw_filename:
            clips.problems.append(f"{where}: missing subject or filename, row skipped")
            continue
        onset, offset = _int_or_none(cell("onset")), _int_or_none(cell("offset"))
        if onset is None:
            clips.problems.append(f"{where}: onset {cell('onset')!r} is not a frame number, row skipped")
            continue
        apex = _int_or_none(cell("apex"))  # CASME II writes "/" for an unknown apex
        try:
            subject = normalise_subject(ds, raw_subject)
        except ValueError as err:
            clips.problems.append(f"{where}: {err}, row skipped")
            continue
        filename = _normalise_filename(ds, subject, raw_filename)
        try:
            aus = parse_au_string(cell("aus")) if "aus" in cols else []
        except FacsError as err:
            clips.problems.append(f"{where}: {err}; AUs left empty")
            aus = []
        emotion_raw = cell("emotion")
        if emotion_raw is None and ds == "smic":
            m = re.search(r"_(ne|po|sur)_", raw_filename.lower())
            emotion_raw = m.group(1) if m else None
        try:
            fine, coarse = map_emotion(ds, emotion_raw)
        except SheetError as err:
            clips.problems.append(f"{where}: {err}; labels left empty")
            fine = coarse = None
        clip = LabelledClip(dataset=ds, subject=subject, filename=filename, onset=onset, apex=apex,
                            offset=offset, aus=aus, fine=fine, coarse=coarse,
                            fps=DATASET_FPS.get(ds), emotion=_text(emotion_raw) or None,
                            source_row=offset_row)
        if root is not None:
            clip.frames_dir = find_frames(root, clip, raw_subject, raw_filename)
            if clip.frames_dir is None:
                clips.missing_frames.append(f"{ds} {subject}/{filename}: no frame folder under {root}")
        clips.append(clip)
    return clips


def read_casme2(path, frames_root=None) -> SheetClips:
    """CASME II ``CASME2-coding-*.xlsx``."""
    return load_sheet(path, "casme2", frames_root)


def read_samm(path, frames_root=None) -> SheetClips:
    """SAMM ``SAMM_Micro_FACS_Codes_*.xlsx``."""
    return load_sheet(path, "samm", frames_root)


def read_casme3(path, frames_root=None) -> SheetClips:
    """CAS(ME)^3 part A ``cas(me)3_part_A_ME_label_JpgIndex_*.xlsx``."""
    return load_sheet(path, "casme3", frames_root)


def read_smic(path, frames_root=None) -> SheetClips:
    """SMIC-HS csv/xlsx of subject, filename, onset, offset, emotion."""
    return load_sheet(path, "smic", frames_root)
