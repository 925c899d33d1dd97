"""MEGC question templates, question kinds, answer normalisation, analysis sentences."""
import json
from pathlib import Path

import pytest

from mevqa.facs.codes import ACTION_UNITS
from mevqa.facs.labels import COARSE_CLASSES, FINE_CLASSES
from mevqa.answer.questions import (
    ANALYSIS_QUESTION, ANALYSIS_QUESTION_PLURAL, AU_LIST_QUESTION, AU_LIST_QUESTION_PLURAL,
    COARSE_QUESTION, FINE_QUESTION, MEGC_QUESTIONS, QuestionError, QuestionKind,
    analysis_sentence, answer_options, normalise_answer, parse_analysis_sentence,
    presence_question, question_type, side_question,
)

DATA = Path(__file__).parent / "data" / "megc2025"
ALL_FILES = ("me_vqa_casme2_train.jsonl", "me_vqa_samm_casme2_smic_train.jsonl",
             "me_vqa_samm_test_to_answer.jsonl", "me_vqa_casme3_test_to_answer.jsonl")


def _records(names=ALL_FILES):
    out = []
    for name in names:
        out += [json.loads(x) for x in (DATA / name).read_text().splitlines() if x.strip()]
    return out


RECORDS = _records()
TRAIN = [r for r in RECORDS if "id" in r]


def _expected_kind(q: str) -> str:
    if q == COARSE_QUESTION:
        return "coarse"
    if q == FINE_QUESTION:
        return "fine"
    if q in (AU_LIST_QUESTION, AU_LIST_QUESTION_PLURAL):
        return "au_list"
    if q in (ANALYSIS_QUESTION, ANALYSIS_QUESTION_PLURAL):
        return "analysis"
    if q.endswith("shown on the face?"):
        return "au_presence"
    if q.endswith("located on the left or right face?"):
        return "au_side"
    raise AssertionError(f"question outside the templates: {q}")


def test_every_question_in_the_files_is_a_known_template():
    for r in RECORDS:
        q = r["question"]
        kind = question_type(q)
        assert kind.kind == _expected_kind(q), q
        if kind.kind in ("au_presence", "au_side"):
            assert kind.au is not None and kind.au.name in q
            template = MEGC_QUESTIONS[kind.kind]
            assert template.format(au=kind.au.name) == q
        if kind.kind in ("au_list", "analysis"):
            assert kind.plural == (" are " in q)


def test_templates_are_the_file_strings():
    questions = {r["question"] for r in RECORDS}
    for key in ("coarse", "fine", "au_list", "au_list_plural", "analysis", "analysis_plural"):
        assert MEGC_QUESTIONS[key] in questions
    assert presence_question("AU12") == "Is the action unit lip corner puller shown on the face?"
    assert presence_question("lip corner puller") in questions
    assert side_question("upper lip raiser") in questions


def test_question_type_tolerates_case_and_spacing():
    assert question_type("  what IS the coarse   expression class ").kind == "coarse"
    assert question_type("What is the fine grained expression class?").kind == "fine"
    k = question_type("is the action unit LIP CORNER PULLER shown on the face")
    assert k.kind == "au_presence" and k.au == ACTION_UNITS["AU12"]


@pytest.mark.parametrize("q, kind, au, plural", [
    ("which action units are shown?", "au_list", None, True),
    ("What AU is active?", "au_list", None, False),
    ("List the AUs.", "au_list", None, True),
    ("is the lip corner puller on the left or right?", "au_side", "AU12", False),
    ("Which side is AU 4 on?", "au_side", "AU4", False),
    ("Is AU12 present?", "au_presence", "AU12", False),
    ("Does the face show a brow lowerer?", "au_presence", "AU4", False),
    ("Is it positive, negative or surprise?", "coarse", None, False),
    ("What is the valence of the expression?", "coarse", None, False),
    ("What emotion is shown?", "fine", None, False),
    ("Which AUs are active, and based on them what is the emotion?", "analysis", None, True),
    ("Describe what happens in this clip.", "open", None, False),
    ("", "open", None, False),
    ("Is the action unit wiggle shown on the face?", "open", None, False),
])
def test_free_phrasings(q, kind, au, plural):
    k = question_type(q)
    assert k.kind == kind
    assert (k.au.code if k.au else None) == au
    if kind in ("au_list", "analysis"):
        assert k.plural == plural


def test_question_type_rejects_non_strings():
    with pytest.raises(QuestionError):
        question_type(None)


def test_answer_options():
    assert answer_options("coarse") == "negative, positive or surprise"
    assert answer_options(COARSE_QUESTION) == "negative, positive or surprise"
    fine = answer_options(QuestionKind("fine"))
    assert all(label in fine for label in FINE_CLASSES)
    assert answer_options("au_presence") == "yes or no"
    assert answer_options("au_side") == "left or right"
    assert answer_options("analysis").startswith("The action unit present is:")


# ------------------------------------------------------------------ analysis sentences
def test_analysis_sentence_reproduces_every_official_answer():
    n = 0
    for r in TRAIN:
        if question_type(r["question"]).kind != "analysis":
            continue
        aus, fine, coarse = parse_analysis_sentence(r["answer"])
        assert analysis_sentence(aus, fine, coarse) == r["answer"]
        n += 1
    assert n == 278


def test_analysis_sentence_forms():
    assert analysis_sentence(["AU12"], "happiness", "positive") == (
        "The action unit present is: lip corner puller. Therefore, the fine-grained expression "
        "class is happiness, and the coarse expression class is positive.")
    assert analysis_sentence(["brow lowerer", "AU7"], "anger", "negative") == (
        "The action units present are: brow lowerer, lid tightener. Therefore, the fine-grained "
        "expression class is anger, and the coarse expression class is negative.")
    with pytest.raises(QuestionError):
        analysis_sentence([], "anger", "negative")
    with pytest.raises(QuestionError):
        analysis_sentence(["AU4"], "others", "negative")


# ------------------------------------------------------------------ normalise_answer
@pytest.mark.parametrize("kind, text, expected", [
    ("coarse", "Positive.", "positive"),
    ("coarse", "The expression is negative", "negative"),
    ("coarse", "I think happiness", "positive"),      # fine label mapped to its coarse class
    ("coarse", "no idea", ""),
    ("coarse", None, ""),
    ("fine", "The person looks happy", "happiness"),
    ("fine", "It is not happiness but disgust", "disgust"),
    ("fine", "Sad.", "sadness"),
    ("fine", "others", ""),
    ("au_presence", "Yes, it is.", "yes"),
    ("au_presence", "No.", "no"),
    ("au_presence", "It is not present", "no"),
    ("au_presence", "maybe", ""),
    ("au_side", "It is on the right side", "right"),
    ("au_side", "Left", "left"),
    ("au_side", "both", ""),
    ("au_list", "AU4, AU7", "brow lowerer, lid tightener"),
    ("au_list", "Brow Lowerer and lid tightener", "brow lowerer, lid tightener"),
    ("au_list", "lip corner puller (AU12)", "lip corner puller"),
    ("au_list", "", ""),
    ("open", "  some  text ", "some text"),
])
def test_normalise_answer(kind, text, expected):
    assert normalise_answer(kind, text) == expected


def test_normalise_answer_by_question_text():
    assert normalise_answer(COARSE_QUESTION, "SURPRISE!") == "surprise"
    assert normalise_answer("Is the action unit dimpler located on the left or right face?",
                            "right") == "right"


def test_normalise_analysis_rebuilds_the_official_sentence():
    free = ("the action units present are: AU4 and AU7. therefore the fine-grained expression "
            "class is anger and the coarse expression class is negative")
    assert normalise_answer(ANALYSIS_QUESTION_PLURAL, free) == analysis_sentence(
        ["AU4", "AU7"], "anger", "negative")
    # coarse missing: filled from the fine class
    partial = "Lip corner puller. Fine-grained: happiness"
    assert normalise_answer("analysis", partial) == analysis_sentence(["AU12"], "happiness", "positive")
    # nothing usable: the text itself (whitespace collapsed), so text metrics still see it
    assert normalise_answer("analysis", "I  cannot tell") == "I cannot tell"


def test_labels_round_trip_through_normalise():
    for label in COARSE_CLASSES:
        assert normalise_answer("coarse", label.upper()) == label
    for label in FINE_CLASSES:
        assert normalise_answer("fine", f"The class is {label}.") == label
