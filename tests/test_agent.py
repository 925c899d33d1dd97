"""Prompt building and the evidence-only backend, on hand-made Evidence (no video needed)."""
import numpy as np
import pytest

from mevqa.answer.agent import Agent, EvidenceBackend, focus_interval
from mevqa.evidence.builder import Evidence, IntervalEvidence, hidden_emotion_check
from mevqa.answer.prompt import build_messages, estimate_tokens, render_evidence
from mevqa.answer.questions import question_type

FPS = 30.0


def _iv(k, onset, apex, offset, kind, aus, emotions, score=1.0):
    img = np.full((32, 32, 3), 100 + k, np.uint8)
    return IntervalEvidence(k, onset, apex, offset, kind, score, FPS, aus, emotions,
                            images={"onset": img, "apex": img, "offset": img, "flow": img})


def _au(code, name, side, score=0.8, left=0.8, right=0.8):
    return {"code": code, "name": name, "side": side, "intensity": score, "score": score, "left": left, "right": right}


def _emo(fine, coarse, conf=0.7, rule="rule"):
    return {"fine": fine, "coarse": coarse, "confidence": conf, "rule": rule}


@pytest.fixture()
def ev():
    smile = _iv(1, 60, 75, 100, "macro", [_au("AU6", "cheek raiser", "both"), _au("AU12", "lip corner puller", "both")],
                [_emo("happiness", "positive")], score=2.0)
    frown = _iv(2, 80, 84, 88, "micro", [_au("AU4", "brow lowerer", "both", 0.6, left=0.7, right=0.4)],
                [_emo("anger", "negative", 0.5)], score=0.9)
    smirk = _iv(0, 20, 25, 31, "micro", [_au("AU14", "dimpler", "left", 0.5, left=0.6, right=0.1)],
                [_emo("contempt", "negative", 0.6)], score=1.2)
    ivs = [smirk, smile, frown]
    return Evidence("demo.mp4", "abc", FPS, 120, 640, 480, ivs, hidden_emotion_check(ivs, FPS),
                    {"times": [0, 1, 2, 3], "motion": [0, 1, 2, 0]}, [], {})


def test_hidden_emotion_check_flags_conflict_and_neutral_face(ev):
    kinds = {h.kind: h for h in ev.hidden}
    assert kinds["valence conflict"].interval == 2            # the frown inside the smile
    assert "anger" in kinds["valence conflict"].explanation and "happiness" in kinds["valence conflict"].explanation
    assert kinds["micro-expression on a neutral face"].interval == 0  # the smirk with nothing around it


def test_json_roundtrip_keeps_everything(ev):
    back = Evidence.from_json(ev.to_json(images=True))
    assert back.to_dict() == ev.to_dict()
    assert np.array_equal(back.intervals[1].images["flow"], ev.intervals[1].images["flow"])


def test_primary_is_strongest_micro(ev):
    assert ev.primary.index == 0


def test_evidence_text_cites_intervals_and_respects_budget(ev):
    text = render_evidence(ev, budget_tokens=400)
    assert "Interval #1 micro: 0.67-1.03 s" in text and "dimpler (AU14), left" in text
    assert "Hidden-emotion check" in text
    small = render_evidence(ev, budget_tokens=90)
    assert estimate_tokens(small) <= 90 + 40  # the focused interval and header always stay
    assert "left out for length" in small and "Interval #2" in small  # the main expression stays


def test_messages_hold_images_evidence_question_and_instruction(ev):
    msgs = build_messages(ev, "What is the coarse expression class?")
    assert [m["role"] for m in msgs] == ["system", "user"]
    user = msgs[1]["content"]
    assert sum(p["type"] == "image" for p in user) == 4  # onset, apex, offset, flow map
    text = user[-1]["text"]
    assert "Evidence for demo.mp4" in text and "negative, positive or surprise" in text.replace(" or ", " or ")
    train = build_messages(ev, "What is the coarse expression class?", answer="negative")
    assert train[:-1] == msgs or train[-1] == {"role": "assistant", "content": [{"type": "text", "text": "negative"}]}


def test_history_keeps_images_on_the_first_turn_only(ev):
    hist = [{"role": "user", "content": "Which action units are shown?"}, {"role": "assistant", "content": "dimpler"}]
    msgs = build_messages(ev, "And on which side?", history=hist)
    images = [sum(p["type"] == "image" for p in m["content"]) for m in msgs]
    assert images == [0, 4, 0, 0]


@pytest.mark.parametrize("question,expected", [
    ("What is the coarse expression class?", "positive"),
    ("What is the fine-grained expression class?", "happiness"),
    ("What are the action units?", "cheek raiser, lip corner puller"),
    ("Is the action unit lip corner puller shown on the face?", "yes"),
    ("Is the action unit dimpler shown on the face?", "no"),
    ("Is the action unit lip corner puller located on the left or right face?", "left"),
    ("What are the action units present, and based on them, what is the fine-grained expression and the coarse "
     "expression class?", "The action units present are: cheek raiser, lip corner puller. Therefore, the "
                          "fine-grained expression class is happiness, and the coarse expression class is positive."),
    ("Provide a detailed analysis of the micro-expression observed in this clip.",
     "The action units present are: cheek raiser, lip corner puller. Therefore, the "
     "fine-grained expression class is happiness, and the coarse expression class is positive."),
])
def test_evidence_backend_answers_megc_questions_from_the_main_expression(ev, question, expected):
    # The main expression is the smile (#2): spotting score 2.0 x (1 + 0.8 + 0.8) beats the smirk's 1.2 x 1.5.
    ans = Agent().ask(ev, question)
    assert ans.text == expected
    assert ans.backend.startswith("evidence-only")
    assert ans.cited.startswith("#2 macro")


def test_named_interval_and_notes_for_what_the_main_expression_lacks(ev):
    a = Agent()
    first = a.ask(ev, "What is the fine-grained expression class of interval 1?")
    assert first.text == "contempt" and first.cited.startswith("#1 micro")
    no = a.ask(ev, "Is the action unit dimpler shown on the face?")
    assert no.text == "no" and "#1 (0.67-1.03 s)" in no.note          # measured elsewhere, said so
    side = a.ask(ev, "Is the action unit dimpler located on the left or right face?")
    assert side.text == "left" and "not measured in #2" in side.note   # its side in #1, said so
    both = a.ask(ev, "Is the action unit lip corner puller located on the left or right face?")
    assert "both sides" in both.note


def test_bilateral_au_side_is_the_stronger_side(ev):
    ans = Agent().ask(ev, "What happened in interval 3? Is the brow lowerer on the left or right?")
    assert question_type("Is the action unit brow lowerer located on the left or right face?").kind == "au_side"
    side = EvidenceBackend().answer(ev, "Is the action unit brow lowerer located on the left or right face? interval 3")
    assert side.text == "left"  # left 0.7 > right 0.4
    assert ans.text


def test_open_questions_are_grounded(ev):
    a = Agent()
    at = a.ask(ev, "What happened at 2.7 s?").text
    assert "2.67" in at and "brow lowerer" in at
    hide = a.ask(ev, "Is she hiding something?").text
    assert "anger" in hide and "not proof" in hide
    assert focus_interval(ev, "what happened at 0.8 s?").index == 0


def test_streaming_ends_with_the_full_answer(ev):
    parts = list(Agent().stream(ev, "What is the fine-grained expression class?"))
    assert len(parts) > 1 and parts[-1].startswith("happiness") and "evidence-only" in parts[-1]


def test_no_interval_answers_honestly():
    empty = Evidence("still.mp4", "x", FPS, 60, 640, 480, [], [], {"times": [], "motion": []}, [], {})
    a = Agent()
    assert "no facial expression" in a.ask(empty, "what is going on?").text
    coarse = a.ask(empty, "What is the coarse expression class?")
    assert coarse.text == "negative" and "most frequent label" in coarse.note


def test_empty_question_and_adapter_without_model():
    with pytest.raises(ValueError, match="empty"):
        Agent().ask(Evidence("a", "x", FPS, 1, 1, 1, [], [], {}, [], {}), "  ")
    with pytest.raises(ValueError, match="--adapter needs --model"):
        Agent.from_args(adapter="somewhere")


def test_micro_over_a_moving_face_is_not_called_neutral():
    smirk = _iv(0, 60, 65, 70, "micro", [_au("AU14", "dimpler", "left")], [_emo("contempt", "negative")])
    t = [i / FPS for i in range(120)]
    busy = {"times": t, "motion": [5.0] * 120, "threshold": [1.0] * 120}
    calm = {"times": t, "motion": [0.2] * 55 + [5.0] * 20 + [0.2] * 45, "threshold": [1.0] * 120}
    assert hidden_emotion_check([smirk], FPS, curve=busy) == []
    assert [h.kind for h in hidden_emotion_check([smirk], FPS, curve=calm)] == ["micro-expression on a neutral face"]
