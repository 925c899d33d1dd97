"""What the AU detector reports: one :class:`AUActivation` per AU, gathered in an :class:`AUResult`."""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from mevqa.io.video import ClipError

#: The AUs this detector reports, in FACS order.
AU_CODES: tuple[str, ...] = ("AU1", "AU2", "AU4", "AU5", "AU6", "AU7", "AU9", "AU10", "AU12",
                             "AU14", "AU15", "AU17", "AU20", "AU25", "AU26", "AU43")
#: AUs on the face's midline: no side of their own.
MIDLINE_AUS = frozenset({"AU25", "AU26"})
SIDES = ("right", "left")  # order of the per-side arrays; subject's own sides


class AUError(ClipError):
    """AU detection cannot run on this input (one line for the user)."""


class NoIntervalError(AUError):
    """No onset/apex given and the spotter found no interval to analyse."""


@dataclass
class AUActivation:
    """One AU between onset and apex.

    ``left``/``right``: the evidence on each half of the face (subject's own sides) in units of the
    AU's threshold (1.0 = just present). ``score`` in [0, 1] (0.5 at the threshold); ``intensity``
    in [0, 1] (see :mod:`mevqa.au.rules`; :attr:`intensity_letter` gives FACS A-E). ``source`` says
    which measurement carried it ("flow", "geometry", "blendshape change", "blendshape state");
    ``withheld`` why it is not reported although measured (e.g. "mouth occluded"), else "".
    """

    code: str
    name: str
    side: str
    intensity: float
    score: float
    present: bool
    left: float = 0.0
    right: float = 0.0
    source: str = ""
    withheld: str = ""

    @property
    def intensity_letter(self) -> str | None:
        return intensity_letter(self.intensity) if self.present else None

    def to_dict(self) -> dict:
        return {"code": self.code, "name": self.name, "side": self.side,
                "intensity": round(float(self.intensity), 3), "score": round(float(self.score), 3),
                "present": bool(self.present)}


@dataclass
class AUResult:
    """AUs of one onset -> apex pair; onset/apex are the clip frames actually compared.

    ``flow`` (not exported) is the onset -> apex flow in aligned-crop pixels with head motion
    removed, for flow maps (:func:`mevqa.motion.flow.flow_to_rgb`). ``withheld`` maps AU codes not
    reported to the reason (an occluded region).
    """

    clip: str
    onset: int
    apex: int
    aus: list[AUActivation]
    flow: np.ndarray | None = field(default=None, repr=False)
    features: object | None = field(default=None, repr=False)
    withheld: dict = field(default_factory=dict)

    def present_aus(self) -> list[AUActivation]:
        """Present AUs, strongest first."""
        return sorted((a for a in self.aus if a.present), key=lambda a: -a.score)

    def __getitem__(self, code: str) -> AUActivation:
        for a in self.aus:
            if a.code == code:
                return a
        raise KeyError(code)

    def to_dict(self) -> dict:
        """The ``mevqa au --json`` contract (ARCHITECTURE.md)."""
        return {"clip": self.clip, "onset": int(self.onset), "apex": int(self.apex),
                "aus": [a.to_dict() for a in self.aus]}

    def to_rows(self) -> list[dict]:
        return [{**a.to_dict(), "intensity_letter": a.intensity_letter, "left": round(a.left, 2),
                 "right": round(a.right, 2), "source": a.source, "withheld": a.withheld} for a in self.aus]

    def to_markdown(self, *, only_present: bool = False) -> str:
        rows = [a for a in self.aus if a.present or not only_present]
        lines = [f"AUs of {self.clip}, onset {self.onset} -> apex {self.apex}",
                 "", "| AU | name | present | side | score | intensity | left | right | source |",
                 "|---|---|---|---|---|---|---|---|---|"]
        for a in rows:
            lines.append(f"| {a.code} | {a.name} | {'yes' if a.present else 'no'} | {a.side} | "
                         f"{a.score:.2f} | {a.intensity:.2f} {a.intensity_letter or ''} | "
                         f"{a.left:.2f} | {a.right:.2f} | {a.withheld or a.source} |")
        return "\n".join(lines)


def intensity_letter(intensity: float) -> str:
    """FACS intensity letter for an intensity in [0, 1]: A (trace) ... E (maximum), in fifths."""
    return "ABCDE"[min(4, max(0, int(float(intensity) * 5)))]
