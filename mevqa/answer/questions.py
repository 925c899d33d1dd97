"""MEGC2025 ME-VQA question templates: the single source of their wording, kinds and answer forms.

The templates below are copied from the MEGC2025 ME-VQA files (training and test JSONL, 2025).
Per clip the official files ask, in this order: coarse class, fine class, the AU list (singular
"What is the action unit?" when one AU is coded, plural otherwise), at most one left/right question
(only for an AU coded on one side), one presence question whose answer is "yes", one whose answer
is "no", and the analysis question, whose answer is one of two exact sentences::

    The action unit present is: lip corner puller. Therefore, the fine-grained expression class is
    happiness, and the coarse expression class is positive.
    The action units present are: brow lowerer, lid tightener. Therefore, the fine-grained
    expression class is anger, and the coarse expression class is negative.

(each on one line). SMIC clips only get the coarse question. MEGC2026 ME-VQA-v2 asks the analysis
question as one of three paraphrases (:data:`ANALYSIS_QUESTIONS_V2`); other requests for an analysis
("analyse the expression in detail") are the analysis kind too, answered with the same sentence.
"""
from __future__ import annotations

import re
from dataclasses import dataclass

from mevqa.facs.codes import ACTION_UNITS, AU_ALIASES, ActionUnit, FacsError, au_by_name
from mevqa.facs.labels import COARSE_CLASSES, FINE_CLASSES, FINE_TO_COARSE

__all__ = [
    "QuestionError", "QuestionKind", "KINDS", "MEGC_QUESTIONS",
    "COARSE_QUESTION", "FINE_QUESTION", "AU_LIST_QUESTION", "AU_LIST_QUESTION_PLURAL",
    "PRESENCE_TEMPLATE", "SIDE_TEMPLATE", "ANALYSIS_QUESTION", "ANALYSIS_QUESTION_PLURAL", "ANALYSIS_QUESTIONS_V2",
    "presence_question", "side_question", "au_list_question", "analysis_question",
    "question_type", "answer_options", "normalise_answer", "analysis_sentence",
    "parse_analysis_sentence", "find_au_names",
]


class QuestionError(ValueError):
    """A question or answer this module cannot handle."""


# -- Templates (exact strings from the MEGC2025 files) -----------------------------------------------
COARSE_QUESTION = "What is the coarse expression class?"
FINE_QUESTION = "What is the fine-grained expression class?"
AU_LIST_QUESTION = "What is the action unit?"
AU_LIST_QUESTION_PLURAL = "What are the action units?"
PRESENCE_TEMPLATE = "Is the action unit {au} shown on the face?"
SIDE_TEMPLATE = "Is the action unit {au} located on the left or right face?"
ANALYSIS_QUESTION = ("What is the action unit present, and based on it, what is the fine-grained "
                     "expression and the coarse expression class?")
ANALYSIS_QUESTION_PLURAL = ("What are the action units present, and based on them, what is the "
                            "fine-grained expression and the coarse expression class?")
#: MEGC2026 ME-VQA-v2 test files: question 5 is one of these (same answer as the analysis question).
ANALYSIS_QUESTIONS_V2 = ("Please analyse the micro-expression shown in this video in detail.",
                         "Provide a detailed analysis of the micro-expression observed in this clip.",
                         "Provide a comprehensive analysis of the facial micro-expression shown in this clip.")
_ANALYSIS_SINGULAR = ("The action unit present is: {aus}. Therefore, the fine-grained expression "
                      "class is {fine}, and the coarse expression class is {coarse}.")
_ANALYSIS_PLURAL = ("The action units present are: {aus}. Therefore, the fine-grained expression "
                    "class is {fine}, and the coarse expression class is {coarse}.")

#: All fixed MEGC question strings by name; the AU ones are ``str.format`` templates with ``{au}``.
MEGC_QUESTIONS: dict[str, str] = {
    "coarse": COARSE_QUESTION,
    "fine": FINE_QUESTION,
    "au_list": AU_LIST_QUESTION,
    "au_list_plural": AU_LIST_QUESTION_PLURAL,
    "au_presence": PRESENCE_TEMPLATE,
    "au_side": SIDE_TEMPLATE,
    "analysis": ANALYSIS_QUESTION,
    "analysis_plural": ANALYSIS_QUESTION_PLURAL,
}

KINDS = ("coarse", "fine", "au_list", "au_presence", "au_side", "analysis", "open")


def presence_question(au: str | ActionUnit) -> str:
    """``Is the action unit <name> shown on the face?`` for an AU name, alias or code."""
    return PRESENCE_TEMPLATE.format(au=_au_obj(au).name)


def side_question(au: str | ActionUnit) -> str:
    """``Is the action unit <name> located on the left or right face?``."""
    return SIDE_TEMPLATE.format(au=_au_obj(au).name)


def au_list_question(n_aus: int) -> str:
    """The AU-list question in the form the official files use for ``n_aus`` AUs."""
    return AU_LIST_QUESTION if n_aus == 1 else AU_LIST_QUESTION_PLURAL


def analysis_question(n_aus: int) -> str:
    """The analysis question in the form the official files use for ``n_aus`` AUs."""
    return ANALYSIS_QUESTION if n_aus == 1 else ANALYSIS_QUESTION_PLURAL


def _au_obj(au) -> ActionUnit:
    if isinstance(au, ActionUnit):
        return au
    try:
        return au_by_name(au)
    except FacsError as err:
        raise QuestionError(str(err)) from None


# -- Finding AU mentions in free text ----------------------------------------------------------------
def _norm(text: str) -> str:
    text = str(text).lower().replace("-", " ").replace("_", " ").replace("\u2019", "'")
    return " ".join(text.split())


# Longest names first so "upper lip raiser" wins over a shorter overlap.
_NAME_TO_CODE: dict[str, str] = {au.name: code for code, au in ACTION_UNITS.items()}
_NAME_TO_CODE.update({_norm(k): v for k, v in AU_ALIASES.items() if k not in ("smile", "frown")})
_NAME_RE = re.compile(
    r"(?<![a-z])(" + "|".join(re.escape(n) for n in sorted(_NAME_TO_CODE, key=len, reverse=True))
    + r")(?![a-z])"
)
_CODE_IN_TEXT_RE = re.compile(r"(?<![a-z0-9])(?:au|action unit)\s*0*(\d{1,2})(?![0-9])")


def _au_mentions(text: str) -> list[tuple[int, str]]:
    """(position, AU code) for every AU name, alias or code in ``text``, in reading order."""
    t = _norm(text)
    found = [(m.start(), _NAME_TO_CODE[m.group(1)]) for m in _NAME_RE.finditer(t)]
    for m in _CODE_IN_TEXT_RE.finditer(t):
        code = f"AU{int(m.group(1))}"
        if code in ACTION_UNITS:
            found.append((m.start(), code))
    return sorted(found)


def find_au_names(text: str) -> list[str]:
    """Canonical names of the AUs mentioned in ``text`` (names, aliases or codes like "AU12"),
    in order of first mention, without repeats."""
    out: list[str] = []
    for _, code in _au_mentions(text):
        name = ACTION_UNITS[code].name
        if name not in out:
            out.append(name)
    return out


# -- Question kinds ----------------------------------------------------------------------------------
@dataclass(frozen=True)
class QuestionKind:
    """What a question asks: ``kind`` in :data:`KINDS`, the AU it names (presence/side), and
    whether it is phrased in the plural (AU list / analysis)."""

    kind: str
    au: ActionUnit | None = None
    plural: bool = False


_EXACT: dict[str, QuestionKind] = {
    _norm(COARSE_QUESTION): QuestionKind("coarse"),
    _norm(FINE_QUESTION): QuestionKind("fine"),
    _norm(AU_LIST_QUESTION): QuestionKind("au_list", plural=False),
    _norm(AU_LIST_QUESTION_PLURAL): QuestionKind("au_list", plural=True),
    _norm(ANALYSIS_QUESTION): QuestionKind("analysis", plural=False),
    _norm(ANALYSIS_QUESTION_PLURAL): QuestionKind("analysis", plural=True),
    **{_norm(q): QuestionKind("analysis") for q in ANALYSIS_QUESTIONS_V2},
}
# Other wordings of a request for an analysis: an analysis word and the expression or face.
_ANALYSE_WORDS = re.compile(r"\b(analy[sz]e|analy[sz]is|interpret|in detail|detailed|comprehensive)\b")
_EXPRESSION_WORDS = re.compile(r"\b(micro expressions?|expressions?|face|facial|clip|video)\b")
_PRESENCE_RE = re.compile(r"^is the action unit (.+?) shown on the face\??$")
_SIDE_RE = re.compile(r"^is the action unit (.+?) located on the left or right face\??$")

_AU_WORDS = re.compile(r"\b(action units?|aus?|facs|facial actions?|muscles?|muscle movements?)\b")
_PLURAL_WORDS = re.compile(r"\b(action units|aus|actions|muscles|movements|which are|what are|are)\b")
_YESNO_START = re.compile(r"^(is|are|does|do|did|was|were|has|have|can|could|was there|is there)\b")
_SIDE_WORDS = re.compile(r"\b(left or right|right or left|which side|what side|left side|right side|"
                         r"on the left|on the right|lateral|unilateral)\b")
_FINE_WORDS = re.compile(r"\b(fine grained|fine|specific emotion|which emotion|what emotion|"
                         r"emotion category|emotion class|basic emotion|emotion is|emotion does|"
                         r"what is the emotion|which of the emotions)\b")
_COARSE_WORDS = re.compile(r"\b(coarse|valence|positive|negative|broad class|broad category|"
                           r"positive or negative|polarity)\b")


def question_type(question: str) -> QuestionKind:
    """Classify a question into one of :data:`KINDS`.

    Exact MEGC templates are recognised whatever their case and spacing; free phrasings such as
    "which action units are shown?", "is the lip corner puller on the left or right?",
    "is AU12 present?", "is it positive, negative or surprise?" map to the same kinds. Anything
    that is not clearly one of them is "open".
    """
    if not isinstance(question, str):
        raise QuestionError(f"question must be a string, got {type(question).__name__}")
    q = _norm(question).rstrip(" ?.!")
    if not q:
        return QuestionKind("open")
    exact = _EXACT.get(q + "?") or _EXACT.get(q)
    if exact:
        return exact
    for regex, kind in ((_PRESENCE_RE, "au_presence"), (_SIDE_RE, "au_side")):
        m = regex.match(q + "?")
        if m:
            au = _find_one_au(m.group(1))
            if au is not None:
                return QuestionKind(kind, au=au)

    mentions = _au_mentions(q)
    codes = list(dict.fromkeys(code for _, code in mentions))
    mentions_au = bool(_AU_WORDS.search(q)) or bool(codes)
    mentions_fine = bool(_FINE_WORDS.search(q))
    mentions_coarse = bool(_COARSE_WORDS.search(q))
    plural = bool(_PLURAL_WORDS.search(q))

    if _ANALYSE_WORDS.search(q) and _EXPRESSION_WORDS.search(q) and not codes:
        return QuestionKind("analysis", plural=plural)
    # Analysis: asks for the AUs *and* the expression classes ("based on them", "therefore").
    if mentions_au and (mentions_fine or mentions_coarse or "expression" in q or "emotion" in q) and \
            re.search(r"\b(and|based on|therefore|then)\b", q) and not codes:
        return QuestionKind("analysis", plural=plural)
    # Side: names one AU and asks left/right.
    if _SIDE_WORDS.search(q) and len(codes) == 1:
        return QuestionKind("au_side", au=ACTION_UNITS[codes[0]])
    # Presence: a yes/no question naming exactly one AU.
    if len(codes) == 1 and _YESNO_START.search(q):
        return QuestionKind("au_presence", au=ACTION_UNITS[codes[0]])
    # AU list: asks which/what AUs (no specific AU named).
    if not codes and _AU_WORDS.search(q) and re.search(r"\b(which|what|list|name|tell|show|identify)\b", q):
        return QuestionKind("au_list", plural=plural)
    if not codes and not _AU_WORDS.search(q):
        if mentions_coarse and not re.search(r"\bfine\b", q):
            return QuestionKind("coarse")
        if mentions_fine:
            return QuestionKind("fine")
    return QuestionKind("open")


def _find_one_au(text: str) -> ActionUnit | None:
    try:
        return au_by_name(text)
    except FacsError:
        codes = list(dict.fromkeys(code for _, code in _au_mentions(text)))
        return ACTION_UNITS[codes[0]] if len(codes) == 1 else None


def _as_kind(question_or_kind) -> QuestionKind:
    if isinstance(question_or_kind, QuestionKind):
        return question_or_kind
    if isinstance(question_or_kind, str) and question_or_kind in KINDS:
        return QuestionKind(question_or_kind)
    if isinstance(question_or_kind, str):
        return question_type(question_or_kind)
    raise QuestionError(f"expected a question, a kind name or a QuestionKind, got {question_or_kind!r}")


def answer_options(kind) -> str:
    """The answer options in words, for prompts: ``answer_options("coarse")`` ->
    ``"negative, positive or surprise"``. Accepts a kind name, a QuestionKind or a question."""
    k = _as_kind(kind)
    if k.kind == "coarse":
        return _or_list(COARSE_CLASSES)
    if k.kind == "fine":
        return _or_list(FINE_CLASSES)
    if k.kind == "au_presence":
        return "yes or no"
    if k.kind == "au_side":
        return "left or right"
    if k.kind == "au_list":
        return "action unit names in words, comma separated (e.g. brow lowerer, lid tightener)"
    if k.kind == "analysis":
        return analysis_sentence(["<action unit>"] if not k.plural else ["<action unit>", "<action unit>"],
                                 "<fine-grained class>", "<coarse class>", check=False)
    return "a short free-text answer"


def _or_list(items) -> str:
    items = list(items)
    return ", ".join(items[:-1]) + " or " + items[-1]


# -- Analysis sentences ------------------------------------------------------------------------------
def analysis_sentence(au_names, fine: str, coarse: str, *, check: bool = True) -> str:
    """The official analysis answer: singular form for one AU, plural form otherwise.

    ``au_names`` may hold names, aliases or codes; they are written in canonical MEGC spelling,
    in the given order. With ``check`` (default) the labels must be MEGC labels.
    """
    if isinstance(au_names, str):
        au_names = [a for a in au_names.split(",") if a.strip()]
    names = [_au_obj(a).name for a in au_names] if check else [str(a) for a in au_names]
    if not names:
        raise QuestionError("an analysis sentence needs at least one action unit")
    if check:
        if fine not in FINE_CLASSES:
            raise QuestionError(f"unknown fine-grained class {fine!r} (known: {', '.join(FINE_CLASSES)})")
        if coarse not in COARSE_CLASSES:
            raise QuestionError(f"unknown coarse class {coarse!r} (known: {', '.join(COARSE_CLASSES)})")
    template = _ANALYSIS_SINGULAR if len(names) == 1 else _ANALYSIS_PLURAL
    return template.format(aus=", ".join(names), fine=fine, coarse=coarse)


_ANALYSIS_RE = re.compile(
    r"action units? (?:present )?(?:is|are)\s*:?\s*(?P<aus>.*?)\s*\.?\s*therefore\s*,?"
    r"(?P<rest>.*)$", re.IGNORECASE | re.DOTALL)
_FINE_IN_TEXT = re.compile(r"fine[ -]grained (?:expression )?(?:class|emotion|expression)?\s*(?:is|:)\s*([a-z]+)")
_COARSE_IN_TEXT = re.compile(r"coarse (?:expression )?(?:class|emotion|expression)?\s*(?:is|:)\s*([a-z]+)")


def parse_analysis_sentence(text: str) -> tuple[list[str], str | None, str | None]:
    """(AU names, fine, coarse) from an analysis sentence, official or close to it.

    AU names come back in canonical spelling, in order; a label that cannot be found is None.
    """
    t = " ".join(str(text).split())
    low = t.lower()
    m = _ANALYSIS_RE.search(t)
    au_part, rest = (m.group("aus"), m.group("rest")) if m else (None, low)
    if au_part is None:
        # No "present is/are:" frame: take AUs from before the first label mention.
        cut = min([i for i in (low.find("fine"), low.find("coarse")) if i >= 0], default=len(low))
        au_part = t[:cut]
    aus = find_au_names(au_part)
    fine = coarse = None
    rest_l = _norm(rest)
    fm = _FINE_IN_TEXT.search(_norm(low))
    if fm:
        fine = _label_in(fm.group(1), "fine")
    cm = _COARSE_IN_TEXT.search(_norm(low))
    if cm:
        coarse = _label_in(cm.group(1), "coarse")
    if fine is None:
        fine = _first_label(rest_l, "fine")
    if coarse is None and fine is None:
        coarse = _first_label(rest_l, "coarse")
    return aus, fine, coarse


# -- Normalising free model output into the scoreable form -------------------------------------------
_FINE_WORDS_MAP = {
    "anger": "anger", "angry": "anger", "contempt": "contempt", "contemptuous": "contempt",
    "disgust": "disgust", "disgusted": "disgust", "fear": "fear", "fearful": "fear",
    "afraid": "fear", "scared": "fear", "happiness": "happiness", "happy": "happiness",
    "repression": "repression", "repressed": "repression", "sadness": "sadness", "sad": "sadness",
    "surprise": "surprise", "surprised": "surprise",
}
_COARSE_WORDS_MAP = {"negative": "negative", "positive": "positive", "surprise": "surprise",
                     "surprised": "surprise"}
_WORD_RE = re.compile(r"[a-z]+")


def _label_in(word: str, which: str) -> str | None:
    table = _FINE_WORDS_MAP if which == "fine" else _COARSE_WORDS_MAP
    return table.get(word)


def _first_label(text: str, which: str) -> str | None:
    """The first label word of the given set in ``text`` (negated mentions such as "not
    happiness" are skipped)."""
    table = _FINE_WORDS_MAP if which == "fine" else _COARSE_WORDS_MAP
    words = _WORD_RE.findall(text.lower())
    for i, w in enumerate(words):
        if w in table and not (i > 0 and words[i - 1] in ("not", "no", "isn", "without")):
            return table[w]
    return None


def _yes_no(text: str) -> str:
    words = _WORD_RE.findall(text.lower())
    for i, w in enumerate(words):
        if w in ("yes", "yeah", "yep", "true", "present", "shown", "visible", "active"):
            if i > 0 and words[i - 1] in ("not", "no", "isn", "is'nt"):
                return "no"
            return "yes"
        if w in ("no", "not", "false", "absent", "nope", "none", "isn"):
            return "no"
    return ""


def _left_right(text: str) -> str:
    words = _WORD_RE.findall(text.lower())
    for w in words:
        if w in ("left", "right"):
            return w
    return ""


def normalise_answer(question_or_kind, text: str | None) -> str:
    """Turn a model's free output into the form the MEGC answers use.

    - coarse / fine: the first label of that set in the text ("" if none; for coarse a fine label
      such as "happiness" is mapped through :data:`~mevqa.facs.labels.FINE_TO_COARSE`);
    - au_presence: "yes" / "no"; au_side: "left" / "right" ("" if neither);
    - au_list: canonical AU names (codes such as "AU12" accepted), comma separated, in order;
    - analysis: the exact official sentence rebuilt from the AUs and labels found (a missing
      coarse class is filled from the fine one); if no AU or no label is found, the text with
      its whitespace collapsed, so text scores (BLEU/ROUGE) still see what the model said;
    - open: the text, stripped.
    """
    k = _as_kind(question_or_kind)
    t = "" if text is None else " ".join(str(text).split())
    if k.kind == "coarse":
        label = _first_label(t, "coarse")
        if label is None:
            fine = _first_label(t, "fine")
            label = FINE_TO_COARSE.get(fine) if fine else None
        return label or ""
    if k.kind == "fine":
        return _first_label(t, "fine") or ""
    if k.kind == "au_presence":
        return _yes_no(t)
    if k.kind == "au_side":
        return _left_right(t)
    if k.kind == "au_list":
        return ", ".join(find_au_names(t))
    if k.kind == "analysis":
        aus, fine, coarse = parse_analysis_sentence(t)
        if coarse is None and fine is not None:
            coarse = FINE_TO_COARSE[fine]
        if aus and fine and coarse:
            return analysis_sentence(aus, fine, coarse)
        return t
    return t.strip()
