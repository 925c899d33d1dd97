"""FACS tables, AU strings, MEGC label sets and emotion rules."""
import json
import re
from collections import Counter, defaultdict
from pathlib import Path

import pytest

from mevqa.facs.codes import (
    ACTION_UNITS, MEGC_AU_NAMES, AUOccurrence, AUStringError, FacsError, UnknownActionUnitError, UnknownLabelError,
    au_by_name, au_name, format_au_string, normalise_au_code, parse_au_string,
)
from mevqa.facs.emotions import MEGC_TRAIN_AU_FINE_COUNTS, emotion_candidates
from mevqa.facs.labels import COARSE_CLASSES, FINE_CLASSES, FINE_TO_COARSE, valence

DATA = Path(__file__).parent / "data" / "megc2025"
TRAIN_FILES = ("me_vqa_casme2_train.jsonl", "me_vqa_samm_casme2_smic_train.jsonl")


def _train_clips():
    """{(dataset, image_id): {question: answer}} over both training files."""
    clips = {}
    for name in TRAIN_FILES:
        for line in (DATA / name).read_text().splitlines():
            if line.strip():
                r = json.loads(line)
                clips.setdefault((r["dataset"], r["image_id"]), {})[r["question"]] = r["answer"]
    return clips


CLIPS = _train_clips()


# ------------------------------------------------------------------ action units
def test_required_aus_present_with_facs_names():
    for n in (1, 2, 4, 5, 6, 7, 9, 10, 11, 12, 14, 15, 16, 17, 18, 20, 23, 24, 25, 26, 27, 38, 39, 43, 45):
        au = ACTION_UNITS[f"AU{n}"]
        assert au.number == n and au.code == f"AU{n}"
    assert au_name("AU12") == "lip corner puller"
    assert au_name(4) == "brow lowerer"
    assert au_name("au45") == "blink"
    # head/eye/misc codes named the MEGC way
    assert au_by_name("tilt right").code == "AU56"
    assert au_by_name("eyes left").code == "AU61"
    assert au_by_name("neck tightener").code == "AU21"
    assert au_by_name("jaw clencher").code == "AU31"


def test_every_megc_answer_au_name_is_spelled_exactly():
    seen = set()
    for qa in CLIPS.values():
        for q, a in qa.items():
            if q in ("What is the action unit?", "What are the action units?"):
                seen.update(a.split(", "))
            m = re.match(r"Is the action unit (.*) (shown|located)", q)
            if m:
                seen.add(m.group(1))
    assert len(seen) == 25
    assert seen == set(MEGC_AU_NAMES)
    for name in seen:
        au = au_by_name(name)
        assert au.name == name  # canonical name is the MEGC spelling, not an alias


def test_au_list_order_in_megc_answers_is_mostly_facs_order():
    # The official lists follow the coding sheet, mostly ascending AU numbers; this checks the
    # numbers we assign agree with that order on the large majority of multi-AU answers.
    ordered = total = 0
    for qa in CLIPS.values():
        a = qa.get("What are the action units?")
        if a:
            nums = [au_by_name(n).number for n in a.split(", ")]
            total += 1
            ordered += nums == sorted(nums)
    assert total == 128 and ordered == 126  # two lists follow sheet order that is not ascending


def test_normalise_au_code_variants_and_errors():
    for v in ("au4", "4", "AU04", "AU 4", 4, 4.0):
        assert normalise_au_code(v) == "AU4"
    with pytest.raises(UnknownActionUnitError):
        normalise_au_code("AU3")  # FACS has no AU3
    with pytest.raises(UnknownActionUnitError):
        normalise_au_code("brow")
    with pytest.raises(ValueError):
        au_by_name("eyebrow wiggle")


def test_aliases_resolve_to_canonical():
    assert au_by_name("Nostril Dilator").name == "nostril dilater"
    assert au_by_name("eyes closed").name == "eye closure"
    assert au_by_name("head tilt right").name == "tilt right"
    assert au_by_name("AU12").name == "lip corner puller"


# ------------------------------------------------------------------ AU strings
@pytest.mark.parametrize("text, expected", [
    ("4+7", [("AU4", "both"), ("AU7", "both")]),
    ("R12", [("AU12", "right")]),
    ("L14", [("AU14", "left")]),
    ("12+L10", [("AU12", "both"), ("AU10", "left")]),
    ("AU4+AU7", [("AU4", "both"), ("AU7", "both")]),
    ("AU4 + AU7", [("AU4", "both"), ("AU7", "both")]),
    ("L2+R2", [("AU2", "both")]),          # both sides coded separately -> bilateral
    ("12?", [("AU12", "both")]),
    ("4/7", [("AU4", "both"), ("AU7", "both")]),
    ("R4B", [("AU4", "right")]),
    ("A1", [("AU1", "both")]),
    ("l12a", [("AU12", "left")]),
    ("1+2+L4", [("AU1", "both"), ("AU2", "both"), ("AU4", "left")]),
    (12, [("AU12", "both")]),
    (12.0, [("AU12", "both")]),
    ("", []),
    (None, []),
    ("-", []),
])
def test_parse_au_string(text, expected):
    got = [(o.code, o.side) for o in parse_au_string(text)]
    assert got == expected


def test_parse_au_string_flags_intensity_and_uncertainty():
    (occ,) = parse_au_string("R4B")
    assert occ.intensity == "B" and not occ.uncertain
    (occ,) = parse_au_string("12?")
    assert occ.uncertain
    assert all(o.uncertain for o in parse_au_string("4/7"))
    assert format_au_string(parse_au_string("4+L10+R12B")) == "4+L10+R12B"


@pytest.mark.parametrize("bad", ["4+X", "12Z", "LR4", "4.5", "AU99", "T14"])
def test_parse_au_string_rejects_unknown_tokens(bad):
    with pytest.raises(FacsError) as err:
        parse_au_string(bad)
    assert isinstance(err.value, ValueError)
    assert "\n" not in str(err.value)


def test_au_occurrence_validates_side():
    with pytest.raises(AUStringError):
        AUOccurrence("AU4", "middle")


# ------------------------------------------------------------------ label sets
def test_label_sets():
    assert COARSE_CLASSES == ("negative", "positive", "surprise")
    assert set(FINE_TO_COARSE) == set(FINE_CLASSES)
    assert set(FINE_TO_COARSE.values()) == set(COARSE_CLASSES)
    assert valence("happiness") == "positive"
    assert valence("repression") == "negative"
    assert valence("Surprise") == "surprise"
    with pytest.raises(UnknownLabelError):
        valence("others")


def test_fine_classes_are_exactly_those_in_the_files():
    fine = {qa["What is the fine-grained expression class?"] for qa in CLIPS.values()
            if "What is the fine-grained expression class?" in qa}
    coarse = {qa["What is the coarse expression class?"] for qa in CLIPS.values()}
    assert fine == set(FINE_CLASSES)
    assert coarse == set(COARSE_CLASSES)


def test_every_train_clip_agrees_with_fine_to_coarse_and_its_analysis_sentence():
    n_checked = 0
    for (dataset, image_id), qa in CLIPS.items():
        coarse = qa["What is the coarse expression class?"]
        assert coarse in COARSE_CLASSES
        fine = qa.get("What is the fine-grained expression class?")
        if fine is None:
            assert dataset == "smic" and len(qa) == 1
            continue
        assert FINE_TO_COARSE[fine] == coarse, (dataset, image_id)
        analysis = [a for q, a in qa.items() if q.startswith("What is the action unit present")
                    or q.startswith("What are the action units present")]
        assert len(analysis) == 1
        m = re.search(r"fine-grained expression class is (\w+), and the coarse expression class is (\w+)\.$",
                      analysis[0])
        assert m and m.group(1) == fine and m.group(2) == coarse
        n_checked += 1
    assert n_checked == 278


def test_train_au_fine_table_matches_the_files():
    table = defaultdict(Counter)
    for (dataset, _), qa in CLIPS.items():
        fine = qa.get("What is the fine-grained expression class?")
        aus = qa.get("What is the action unit?") or qa.get("What are the action units?")
        if fine and aus:
            for name in aus.split(", "):
                table[name][fine] += 1
    assert {k: dict(v) for k, v in table.items()} == MEGC_TRAIN_AU_FINE_COUNTS


# ------------------------------------------------------------------ emotion rules
def _top(aus, **kw):
    return emotion_candidates(aus, **kw)[0]


def test_happiness_rules():
    full = _top([("AU6", "both", 1.0), ("AU12", "both", 1.0)])
    assert full.fine == "happiness" and full.coarse == "positive"
    assert set(full.aus) == {"AU6", "AU12"}
    alone = _top(["AU12"])
    assert alone.fine == "happiness" and alone.confidence < full.confidence


def test_surprise_rules():
    full = _top(["AU1", "AU2", "AU5"])
    brows = _top(["AU1", "AU2"])
    jaw = _top(["AU1", "AU2", ("AU26", "both", 1.0)])
    assert full.fine == brows.fine == jaw.fine == "surprise"
    assert brows.confidence < full.confidence


def test_anger_rules_and_support():
    a = _top(["AU4", "AU7"], dataset="samm")
    assert a.fine == "anger"
    supported = _top(["AU4", "AU7", "AU23"], dataset="samm")
    assert supported.fine == "anger" and supported.confidence > a.confidence
    alone = [c for c in emotion_candidates(["AU4"], dataset="samm") if c.fine == "anger"][0]
    assert alone.confidence < a.confidence


def test_casme_convention_reads_brow_lowerer_as_disgust():
    # MEGC train data: CASME II codes AU4(+AU7) as disgust in 53 of 56 clips
    assert _top(["AU4", "AU7"], dataset="casme2").fine == "disgust"
    assert _top(["AU4"], dataset="CASME II").fine == "disgust"


def test_disgust_contempt_sadness_fear_repression():
    assert _top(["AU9"]).fine == "disgust"
    assert _top(["AU10"]).fine == "disgust"
    assert _top([("AU12", "left", 0.9)]).fine == "contempt"
    assert _top([("AU14", "right", 0.9)]).fine == "contempt"
    assert _top(["AU1", "AU4", "AU15"]).fine == "sadness"
    weak_sad = [c for c in emotion_candidates(["AU15"]) if c.fine == "sadness"][0]
    assert weak_sad.confidence < _top(["AU1", "AU4", "AU15"]).confidence
    assert _top(["AU1", "AU2", "AU4", "AU5", "AU20"]).fine == "fear"
    assert _top(["AU17"], dataset="casme2").fine == "repression"
    assert _top(["AU15", "AU17"], dataset="casme2").fine == "repression"


def test_candidates_sorted_scored_and_use_scores():
    cands = emotion_candidates([("AU4", "both", 0.9), ("AU7", "both", 0.8), ("AU9", "both", 0.2)])
    confs = [c.confidence for c in cands]
    assert confs == sorted(confs, reverse=True)
    assert len({c.fine for c in cands}) == len(cands)
    assert all(0.0 <= c <= 1.0 for c in confs)
    low = _top([("AU6", "both", 0.3), ("AU12", "both", 0.3)])
    high = _top([("AU6", "both", 0.9), ("AU12", "both", 0.9)])
    assert low.confidence < high.confidence


def test_candidates_accept_dicts_objects_and_ignore_absent():
    dicts = [{"code": "AU6", "side": "both", "score": 0.9}, {"code": "AU12", "score": 0.9},
             {"code": "AU9", "score": 0.9, "present": False}]
    cands = emotion_candidates(dicts)
    assert cands[0].fine == "happiness"
    assert "disgust" not in {c.fine for c in cands}
    occs = parse_au_string("6+12")
    assert emotion_candidates(occs)[0].fine == "happiness"
    assert emotion_candidates([]) == []


def test_candidates_reject_bad_observations():
    with pytest.raises(ValueError):
        emotion_candidates([("AU12", "both", 1.5)])
    with pytest.raises(ValueError):
        emotion_candidates([("AU12", "top", 0.5)])


# ------------------------------------------------------------------ laughter and the crying grimace
LAUGH = [("AU12", "both", 0.9), ("AU25", "both", 1.0), ("AU26", "both", 1.0), ("AU10", "both", 0.9)]


def test_laughter_keeps_happiness_over_brow_and_lid_spillover():
    """A broad laugh (AU12+AU10 with lips apart) drags the brows and lids: the reading stays happiness and
    says which AUs it read as the laugh's spill-over; the brows alone do not make sadness, anger or fear."""
    from mevqa.facs.emotions import laughter

    spill = LAUGH + [("AU1", "both", 1.0), ("AU4", "both", 1.0), ("AU43", "right", 1.0), ("AU9", "left", 0.8)]
    cands = emotion_candidates(spill)
    top = cands[0]
    assert top.fine == "happiness" and top.coarse == "positive", cands
    assert "laughter spill-over" in top.rule and "AU4" in top.rule, top.rule
    sad = [c for c in cands if c.fine == "sadness"][0]
    assert "against: laughter" in sad.rule and sad.confidence < top.confidence
    assert laughter({c: (s, v) for c, s, v in spill}) > 0.8
    # a one-sided corner pull is no laugh, and AU15/AU20 make a crying mouth instead
    assert laughter({"AU12": ("left", 0.9), "AU25": ("both", 1.0), "AU10": ("both", 0.9)}) == 0.0
    assert laughter({c: (s, v) for c, s, v in LAUGH + [("AU20", "both", 0.9)]}) == 0.0


def test_without_laughter_brow_lowering_still_speaks_against_happiness():
    cands = emotion_candidates([("AU12", "both", 0.9), ("AU4", "both", 0.9)])
    happy = [c for c in cands if c.fine == "happiness"][0]
    assert "against: AU4" in happy.rule
    shut = _top([("AU12", "both", 0.9), ("AU10", "both", 0.9), ("AU43", "both", 0.9)])
    assert "against: AU43" in shut.rule  # a closed-mouth smile over shut eyes is no confident happiness


@pytest.mark.parametrize("aus", [
    ["AU1", "AU4", "AU12"],                 # smile-shaped mouth under sad, knit brows
    ["AU4", "AU12", "AU15"],                # corners pulled out and down under lowered brows
    ["AU4", "AU12", "AU17", "AU43"],        # chin raised, eyes squeezed shut
    ["AU4", "AU12", "AU20"],                # the grimace with lips stretched
])
def test_crying_grimace_reads_sadness_not_happiness(aus):
    """EMFACS sadness (1+4+15, 1+4+15+17; grimaces with 20): a lip corner puller under lowered brows with
    raised inner brows or a depressed / stretched mouth is crying, although a smile detector fires."""
    top = _top(aus)
    assert top.fine == "sadness" and top.coarse == "negative", emotion_candidates(aus)
    assert "crying grimace" in top.rule and top.confidence > 0


def test_every_reading_names_its_rule_and_confidence():
    for aus in (LAUGH, ["AU1", "AU4", "AU12"], ["AU6", "AU15"], ["AU9"], [("AU12", "left", 0.9)]):
        for c in emotion_candidates(aus):
            assert c.rule and 0.0 < c.confidence <= 1.0 and c.aus, c
    assert _top(["AU6", "AU15"]).fine == "sadness"


def test_raised_brows_over_shut_eyes_read_crying_not_surprise():
    """EMFACS surprise widens the eyes (AU5); inner brows raised over eyes held shut (AU43) is the crying face."""
    top = _top(["AU1", "AU2", "AU43"])
    assert top.fine == "sadness" and top.coarse == "negative", emotion_candidates(["AU1", "AU2", "AU43"])
    # brows alone are surprise only on an open face: under shut eyes the brows-only rules do not fire
    assert not [c for c in emotion_candidates(["AU1", "AU2", "AU43"]) if c.fine == "surprise"]
    assert _top(["AU1", "AU2"]).fine == "surprise"
    # the full prototype (with the jaw dropped) still fires, with the shut eyes named against it
    full = [c for c in emotion_candidates(["AU1", "AU2", "AU26", "AU43"]) if c.fine == "surprise"][0]
    assert "against: AU43" in full.rule
    tight = [c for c in emotion_candidates(["AU1", "AU2", "AU7"]) if c.fine == "surprise"][0]
    assert "against: AU7" in tight.rule


def test_laughter_accepts_a_one_sided_cheek_or_upper_lip():
    """The smile must be bilateral; the laugh's AU6 / AU10 may be stronger on one side (a turned head), and the
    knit brows it drags then do not make a crying grimace."""
    from mevqa.facs.emotions import laughter

    aus = [("AU12", "both", 0.8), ("AU25", "both", 1.0), ("AU10", "right", 0.9), ("AU6", "right", 0.6),
           ("AU1", "both", 1.0), ("AU4", "both", 0.9), ("AU43", "right", 0.9)]
    assert laughter({c: (s, v) for c, s, v in aus}) > 0.7
    top = _top(aus)
    assert top.fine == "happiness" and "laughter spill-over" in top.rule, emotion_candidates(aus)


def test_suppression_needs_closed_lips_and_a_squeezed_grimace_is_crying():
    """Repression's suppression (AU14/AU17/AU24) holds the mouth closed: with lips apart it does not fire. A lip
    corner puller under a raised chin and eyes squeezed shut is the crying grimace."""
    names = {c.rule.split(",")[0] for c in emotion_candidates(["AU17", "AU25", "AU12", "AU10"])}
    assert "AU14/AU17/AU24 (suppression)" not in names
    assert _top(["AU17"], dataset="casme2").fine == "repression"
    top = _top(["AU12", "AU17", "AU43", "AU26", "AU6"])
    assert top.fine == "sadness" and "crying grimace" in top.rule, emotion_candidates(["AU12", "AU17", "AU43", "AU26"])
