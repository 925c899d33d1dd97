"""A synthetic micro-expression dataset laid out exactly like a CASME II or SAMM release.

:func:`make_synthetic_dataset` renders short clips with :func:`mevqa.testing.synth.make_clip` (one expression
per clip, with known action units, side and emotion) and writes them the way the real datasets ship,
so every importer and the whole training pipeline can run end to end without the licensed data:

CASME II (Yan et al., PLoS ONE 2014)::

    ROOT/CASME2-coding-20140508.xlsx          header on row 1: Subject, Filename, (blank), OnsetFrame,
                                              ApexFrame, OffsetFrame, (blank), Action Units, Estimated Emotion
    ROOT/CASME2_RAW_selected/sub01/EP02_01f/img46.jpg, img47.jpg, ...

SAMM (Davison et al., IEEE T-AFFC 2018)::

    ROOT/SAMM_Micro_FACS_Codes_v2.xlsx        13 title/notes rows, then Subject, Filename, Inducement Code,
                                              Onset Frame, Apex Frame, Offset Frame, Duration, Type,
                                              Action Units, Estimated Emotion, Objective Classes, Notes
    ROOT/SAMM/006/006_1_2/006_1_2_4967.jpg, ...

As in the releases, frame files are numbered from where the clip was cut out of its recording (a
CASME II folder may start at ``img46``), and the sheet's onset/apex/offset are those file numbers, not
0-based indices: readers must map them through the folder's numbering, and the synthetic set makes
sure they do. Subjects are written as the sheets write them (CASME II ``1`` for folder ``sub01``,
SAMM ``006``); AU strings as the coders write them (``12``, ``4+7``, ``L14``, ``R12``); emotions in each
dataset's own spelling (CASME II ``happiness``/``others``, SAMM ``Happiness``/``Other``). Clips whose
label has no MEGC class ("others") are included, as in the real sheets.

Frame rate: both datasets are 200 fps, and the folders are written at 200 fps (frame-folder naming
tells :meth:`mevqa.io.video.Clip.load` the rate). Clips are kept short (1 s, 200 frames) and small
(320x240, inter-ocular distance about 50 px) so that a 9-clip set renders in about ten seconds; the
micro-expression itself is 0.28-0.45 s, 2-3.5 px at its apex. ``ROOT/synthetic_ground_truth.json``
lists every clip with its 0-based event frames next to the sheet's numbers.

The "Objective Classes" column of the SAMM stand-in is a rough AU grouping (I happiness-like AU6/12,
II brow raise AU1/2, III brow lowering AU4/7, IV dimpler/chin AU14/15/17, V nose/upper lip AU9/10,
VII other); mevqa never reads it when an estimated emotion is present.
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np

__all__ = ["LAYOUTS", "SHEET_NAMES", "FRAME_DIRS", "SyntheticSetError", "make_synthetic_dataset", "sheet_path"]

LAYOUTS = ("casme2", "samm")
SHEET_NAMES = {"casme2": "CASME2-coding-20140508.xlsx", "samm": "SAMM_Micro_FACS_Codes_v2.xlsx"}
FRAME_DIRS = {"casme2": "CASME2_RAW_selected", "samm": "SAMM"}
FPS = 200.0  # both datasets are recorded at 200 fps

# Labels cycled through clip by clip (in each dataset's own spelling), most frequent first, so even a
# small set has the classes of the real one and its imbalance (disgust/anger lead; "others" rows have
# no MEGC class and get no questions).
_LABELS = {
    "casme2": ("disgust", "happiness", "repression", "surprise", "disgust", "others", "repression", "happiness"),
    "samm": ("Anger", "Happiness", "Contempt", "Surprise", "Anger", "Other", "Disgust", "Sadness", "Fear"),
}
# Emotion -> AU combinations the synthesiser can render (CASME II coding criteria, Yan et al. 2014
# Table 3, and EMFACS for SAMM's anger/contempt/fear/sadness).
_EMOTION_AUS = {
    "happiness": (("AU6", "AU12"), ("AU12",)),
    "disgust": (("AU9",), ("AU10",), ("AU4", "AU7")),
    "repression": (("AU14",), ("AU15",), ("AU17",)),
    "surprise": (("AU1", "AU2"),),
    "anger": (("AU4", "AU7"), ("AU4",)),
    "contempt": (("AU14",), ("AU12",)),
    "sadness": (("AU1", "AU4", "AU15"), ("AU15",)),
    "fear": (("AU1", "AU2", "AU4", "AU20"), ("AU1", "AU4", "AU20")),
    "others": (("AU4",), ("AU1",), ("AU7",)),
}
_ALWAYS_ONE_SIDED = ("contempt",)
_MIDLINE = ("AU17", "AU25", "AU26")
_SAMM_SUBJECTS = (6, 7, 9, 10, 11, 12, 13, 14, 15, 16, 17, 18, 19, 20, 21, 22, 23, 24, 25, 26, 28, 30, 31,
                  32, 33, 34, 35, 36, 37)
_OBJECTIVE_CLASS = {"AU6": 1, "AU12": 1, "AU1": 2, "AU2": 2, "AU4": 3, "AU7": 3, "AU14": 4, "AU15": 4,
                    "AU17": 4, "AU9": 5, "AU10": 5}


class SyntheticSetError(ValueError):
    """Arguments :func:`make_synthetic_dataset` cannot use (one line)."""


@dataclass
class _ClipSpec:
    subject: int
    filename: str
    label: str
    aus: tuple[str, ...]
    side: str
    first: int            # file number of the folder's first frame
    onset: int            # 0-based indices in the clip
    apex: int
    offset: int
    amplitude: float
    seed: int

    def numbers(self) -> tuple[int, int, int]:
        """Onset, apex, offset as the sheet writes them (file numbers)."""
        return self.first + self.onset, self.first + self.apex, self.first + self.offset


def sheet_path(root: str | Path, layout: str) -> Path:
    """Where :func:`make_synthetic_dataset` puts the coding sheet of ``layout`` under ``root``."""
    return Path(root) / SHEET_NAMES[_check_layout(layout)]


def _check_layout(layout: str) -> str:
    key = str(layout).lower().replace(" ", "").replace("-", "").replace("_", "")
    key = {"casmeii": "casme2"}.get(key, key)
    if key not in LAYOUTS:
        raise SyntheticSetError(f"layout must be one of {', '.join(LAYOUTS)}, got {layout!r}")
    return key


def _fine_key(label: str) -> str:
    """A sheet label as a key of _EMOTION_AUS: lower case, SAMM "Other" -> "others"."""
    key = label.lower()
    return "others" if key in ("other", "others") else key


def _au_string(aus: tuple[str, ...], side: str) -> str | int:
    """AUs as a coder writes them: "4+7", "L14", "R12"; a single plain AU as a number cell (12)."""
    prefix = {"left": "L", "right": "R", "both": ""}[side]
    parts = [("" if code in _MIDLINE else prefix) + code[2:] for code in aus]
    text = "+".join(parts)
    return int(text) if text.isdigit() else text


def _plan(layout: str, n_subjects: int, clips_per_subject: int, seed: int, n_frames: int) -> list[_ClipSpec]:
    """Who, which label, which AUs and when, for every clip; all from one seeded generator."""
    rng = np.random.default_rng(np.random.SeedSequence([int(seed), 2014 if layout == "casme2" else 2018]))
    labels = _LABELS[layout]
    specs, k = [], 0
    subjects = list(range(1, n_subjects + 1)) if layout == "casme2" else list(_SAMM_SUBJECTS[:n_subjects])
    for subject in subjects:
        episodes = rng.permutation(np.arange(1, 20))[:clips_per_subject]
        for j in range(clips_per_subject):
            label = labels[(k + seed) % len(labels)]
            fine = _fine_key(label)
            options = _EMOTION_AUS[fine]
            aus = options[int(rng.integers(len(options)))]
            lateral = not any(a in _MIDLINE for a in aus)
            if lateral and (fine in _ALWAYS_ONE_SIDED or rng.random() < (0.5 if fine == "repression" else 0.15)):
                side = str(rng.choice(["left", "right"]))
            else:
                side = "both"
            # one micro-expression: 0.28-0.45 s, apex 35-55% of the way, neutral on both sides
            length = int(rng.integers(int(0.28 * FPS), int(0.45 * FPS) + 1))
            onset = int(rng.integers(int(0.12 * n_frames), int(0.22 * n_frames) + 1))
            offset = min(onset + length - 1, n_frames - 1 - int(0.05 * n_frames))
            apex = onset + int(round(rng.uniform(0.35, 0.55) * (offset - onset)))
            if layout == "casme2":
                filename = f"EP{int(episodes[j]):02d}_{int(rng.integers(1, 10)):02d}{'f' if rng.random() < 0.4 else ''}"
                first = int(rng.integers(1, 150))
            else:
                filename = f"{subject:03d}_{int(rng.integers(1, 8))}_{j + 1}"
                first = int(rng.integers(1000, 6000))
            specs.append(_ClipSpec(subject, filename, label, tuple(aus), side, first, onset, apex, offset,
                                   round(float(rng.uniform(2.0, 3.5)), 2), int(seed) * 10_000 + k))
            k += 1
    return specs


def _write_casme2_sheet(path: Path, specs: list[_ClipSpec]) -> None:
    import openpyxl

    wb = openpyxl.Workbook()
    ws = wb.active
    ws.title = "Sheet1"
    # the release leaves the header cells of columns 3 and 7 empty (pandas shows "Unnamed: 2"/"Unnamed: 6")
    ws.append(["Subject", "Filename", None, "OnsetFrame", "ApexFrame", "OffsetFrame", None, "Action Units",
               "Estimated Emotion"])
    for s in specs:
        onset, apex, offset = s.numbers()
        ws.append([s.subject, s.filename, None, onset, apex, offset, None, _au_string(s.aus, s.side), s.label])
    wb.save(path)


def _write_samm_sheet(path: Path, specs: list[_ClipSpec]) -> None:
    import openpyxl

    wb = openpyxl.Workbook()
    ws = wb.active
    ws.title = "FACS_Movement_Only"
    title_rows = [
        ["SAMM Micro-Movement FACS Codes (synthetic stand-in written by mevqa.testing.synthset)"],
        ["Version 2"],
        [],
        ["Notes:"],
        ["Onset, Apex and Offset Frame are the numbers in the image file names of each clip folder."],
        ["Duration is the number of frames from onset to offset at 200 fps."],
        ["Type: Micro - 1/2 second or less; Macro - more than 1/2 second."],
        ["Action Units: L/R prefixes give the side; A-E suffixes the intensity when coded."],
        ["Estimated Emotion is the coders' estimate; Objective Classes group the movements by AU."],
        ["Every clip here is rendered from one face photo: synthetic data, not people."],
        [],
        [],
        [],
    ]
    for row in title_rows:
        ws.append(row)
    ws.append(["Subject", "Filename", "Inducement Code", "Onset Frame", "Apex Frame", "Offset Frame", "Duration",
               "Type", "Action Units", "Estimated Emotion", "Objective Classes", "Notes"])
    for s in specs:
        onset, apex, offset = s.numbers()
        objective = 7 if s.label == "Other" else _OBJECTIVE_CLASS.get(s.aus[0], 6)
        inducement = int(s.filename.split("_")[1])
        ws.append([f"{s.subject:03d}", s.filename, inducement, onset, apex, offset, offset - onset + 1,
                   "Micro - 1/2", str(_au_string(s.aus, s.side)), s.label, objective, None])
    wb.save(path)


def make_synthetic_dataset(root: str | Path, *, layout: str = "casme2", n_subjects: int = 3,
                           clips_per_subject: int = 3, seed: int = 0, seconds: float = 1.0, width: int = 320,
                           height: int = 240, progress=None) -> Path:
    """Write a synthetic CASME II- or SAMM-style dataset under ``root``; returns ``root``.

    The coding sheet is ``sheet_path(root, layout)`` and the frames root is ``root`` itself, so
    ``load_sheet(sheet_path(root, layout), frames_root=root)`` reads it back with every clip joined
    to its folder. The same arguments give the same files. ``progress(i, n)`` is called per clip.
    """
    from mevqa.testing.synth import SynthConfig, SynthEvent, make_clip
    from mevqa.io.video import write_clip

    # 1. check the arguments (one line each)
    layout = _check_layout(layout)
    for name, value, lo, hi in (("n_subjects", n_subjects, 1, 26 if layout == "casme2" else len(_SAMM_SUBJECTS)),
                                ("clips_per_subject", clips_per_subject, 1, 19)):
        if not isinstance(value, (int, np.integer)) or not lo <= value <= hi:
            raise SyntheticSetError(f"{name} must be an integer {lo}-{hi}, got {value!r}")
    if not 0.6 <= float(seconds) <= 10:
        raise SyntheticSetError(f"seconds must be within 0.6-10 (room for a 0.45 s expression), got {seconds!r}")
    root = Path(root).expanduser()
    root.mkdir(parents=True, exist_ok=True)
    n_frames = int(round(float(seconds) * FPS))

    # 2. plan every clip, then render and write its frame folder
    specs = _plan(layout, int(n_subjects), int(clips_per_subject), int(seed), n_frames)
    frames_root = root / FRAME_DIRS[layout]
    truth = []
    for i, s in enumerate(specs):
        fine = _fine_key(s.label)
        cfg = SynthConfig(width=width, height=height, fps=FPS, seconds=float(seconds), blinks=False, drift=True,
                          noise=1.5, flicker=0.005, seed=s.seed)
        event = SynthEvent(s.onset, s.apex, s.offset, "micro", s.aus, s.side, s.amplitude, fine)
        clip, gt = make_clip(cfg, events=[event], name=s.filename)
        if layout == "casme2":
            folder, pattern = frames_root / f"sub{s.subject:02d}" / s.filename, "img{n}.jpg"
        else:
            folder, pattern = frames_root / f"{s.subject:03d}" / s.filename, s.filename + "_{n:04d}.jpg"
        write_clip(clip.frames, folder, fps=FPS, pattern=pattern, start=s.first)
        onset, apex, offset = s.numbers()
        truth.append({"subject": s.subject, "filename": s.filename, "folder": str(folder.relative_to(root)),
                      "first_frame_number": s.first, "n_frames": n_frames, "fps": FPS,
                      "onset": onset, "apex": apex, "offset": offset,
                      "onset_index": s.onset, "apex_index": s.apex, "offset_index": s.offset,
                      "aus": list(s.aus), "side": s.side, "au_string": str(_au_string(s.aus, s.side)),
                      "emotion": s.label, "amplitude_px": gt["events"][0]["amplitude"]})
        if progress is not None:
            progress(i + 1, len(specs))

    # 3. the coding sheet, as the dataset's owners ship it, and the ground truth beside it
    (_write_casme2_sheet if layout == "casme2" else _write_samm_sheet)(sheet_path(root, layout), specs)
    (root / "synthetic_ground_truth.json").write_text(json.dumps(
        {"layout": layout, "seed": int(seed), "fps": FPS, "seconds": float(seconds), "width": width,
         "height": height, "sheet": SHEET_NAMES[layout], "frames_root": FRAME_DIRS[layout], "clips": truth},
        indent=1) + "\n", encoding="utf-8")
    return root
