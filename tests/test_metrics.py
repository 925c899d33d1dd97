"""Metrics: classification, AU sets, text scores, spotting and STRS (values derived by hand)."""
from pathlib import Path

import pytest

from mevqa.megc.metrics import (
    PRF, Interval, MetricInputError, accuracy, au_set_scores, bleu_corpus4,
    bleu_sentence_smoothed, confusion_matrix, iou, match_intervals, per_class_scores,
    read_strs_csv, rouge1, rouge1_f1, rouge1_recall, spotting_scores, strs_scores, uar, uf1,
    vqa_scores,
)

DATA = Path(__file__).parent / "data" / "megc2025"


# ------------------------------------------------------------------ classification
def test_uf1_uar_by_hand():
    t = ["a", "a", "b", "c"]
    p = ["a", "b", "b", "b"]
    # a: TP1 FP0 FN1 -> F1 2/3, R 1/2; b: TP1 FP2 FN0 -> F1 2/4, R 1; c: TP0 FP0 FN1 -> F1 0, R 0
    assert uf1(t, p) == pytest.approx((2 / 3 + 1 / 2 + 0) / 3)
    assert uar(t, p) == pytest.approx((1 / 2 + 1 + 0) / 3)
    assert accuracy(t, p) == pytest.approx(2 / 4)


def test_lowercase_and_empty_predictions_count_as_wrong():
    t = ["Positive", "negative", "surprise"]
    p = ["POSITIVE ", "", None]
    # positive: TP1; negative: FN1; surprise: FN1 (empty answers are errors, not dropped)
    assert accuracy(t, p) == pytest.approx(1 / 3)
    assert uar(t, p) == pytest.approx(1 / 3)
    assert uf1(t, p) == pytest.approx(1 / 3)
    cm = confusion_matrix(t, p)
    assert cm.labels == ("negative", "positive", "surprise")
    assert cm.other == (1, 0, 1)


def test_labels_outside_truth_are_errors_not_classes():
    # default classes = those in the truth: "fear" is never a class here, only an error
    t = ["anger", "anger"]
    p = ["anger", "fear"]
    assert uf1(t, p) == pytest.approx(2 * 1 / (2 * 1 + 0 + 1))  # anger TP1 FP0 FN1 -> 2/3
    # with an explicit label list "fear" becomes a class with F1 0 (no support, one FP)
    assert uf1(t, p, labels=["anger", "fear"]) == pytest.approx((2 / 3 + 0) / 2)


def test_perfect_and_all_wrong():
    t = ["negative", "positive", "surprise", "negative"]
    assert uf1(t, t) == uar(t, t) == accuracy(t, t) == 1.0
    wrong = ["positive", "surprise", "negative", "positive"]
    assert uf1(t, wrong) == uar(t, wrong) == accuracy(t, wrong) == 0.0


def test_classification_input_errors():
    with pytest.raises(MetricInputError):
        uf1(["a"], ["a", "b"])
    with pytest.raises(MetricInputError):
        uar([], [])


def test_per_class_counts():
    s = per_class_scores(["x", "y", "y"], ["y", "y", ""])
    assert s["x"] == PRF(0, 0, 1)
    assert s["y"] == PRF(1, 1, 1)


# ------------------------------------------------------------------ AU sets
def test_au_set_scores_by_hand():
    truth = ["brow lowerer, lid tightener", "lip corner puller"]
    pred = ["AU4", "lip corner puller, wiggler"]
    s = au_set_scores(truth, pred)
    # brow lowerer TP1; lid tightener FN1; lip corner puller TP1; "wiggler" FP1 (unknown kept)
    assert s.micro == PRF(2, 1, 1)
    assert s.micro.f1 == pytest.approx(4 / 6)
    assert s.per_au["lid tightener"].f1 == 0.0
    assert s.per_au["wiggler"] == PRF(0, 1, 0)
    # macro over AUs in truth: brow lowerer 1, lid tightener 0, lip corner puller 1 (its FP
    # "wiggler" is a separate AU) -> 2/3
    assert s.macro_f1 == pytest.approx((1 + 0 + 1) / 3)
    assert s.exact == 0.0
    assert au_set_scores(["dimpler"], [["AU14"]]).exact == 1.0
    assert au_set_scores(["dimpler"], [""]).micro == PRF(0, 0, 1)


# ------------------------------------------------------------------ text scores
def test_bleu_variants_are_different_and_named():
    refs = ["the action unit present is: dimpler.", "positive"]
    # a one-word exact answer under smoothed sentence BLEU-4: p1 = 1, p2..p4 smoothed to 0.1
    # -> exp(mean(log [1, .1, .1, .1])) = 0.1 ** 0.75
    assert bleu_sentence_smoothed(["positive"], ["Positive"]) == pytest.approx(0.1 ** 0.75)
    assert bleu_sentence_smoothed(refs, refs) == pytest.approx((1.0 + 0.1 ** 0.75) / 2)
    assert bleu_corpus4(refs, refs) == pytest.approx(1.0)
    assert bleu_sentence_smoothed(["positive"], [""]) == 0.0
    assert bleu_corpus4(["a b c d e"], [""]) == 0.0


def test_rouge1_recall_and_f1():
    # ref tokens {brow, lowerer, lid, tightener}; hyp {brow, lowerer}: R 2/4, P 1, F1 2/3
    r = rouge1(["brow lowerer, lid tightener"], ["Brow lowerer"])
    assert r.recall == pytest.approx(0.5)
    assert r.precision == pytest.approx(1.0)
    assert r.f1 == pytest.approx(2 / 3)
    assert rouge1_recall(["yes", "no"], ["yes", ""]) == pytest.approx(0.5)
    assert rouge1_f1(["yes"], ["yes"]) == pytest.approx(1.0)


# ------------------------------------------------------------------ spotting
def test_iou_inclusive_frames():
    assert iou((0, 9), (0, 9)) == 1.0
    # [0,9] and [5,14]: overlap 5..9 = 5 frames, union 0..14 = 15 -> 1/3
    assert iou((0, 9), (5, 14)) == pytest.approx(1 / 3)
    assert iou((0, 4), (5, 9)) == 0.0
    assert iou(Interval(3, 3), Interval(3, 3)) == 1.0


def test_iou_exactly_half_counts():
    # [0,9] vs [0,4]: overlap 5, union 10 -> IoU exactly 0.5 -> TP
    m = match_intervals([(0, 4)], [(0, 9)])
    assert len(m.tp) == 1 and m.tp[0][2] == 0.5
    # [0,9] vs [0,3]: 4/10 -> below threshold -> FP + FN
    m = match_intervals([(0, 3)], [(0, 9)])
    assert m.counts == PRF(0, 1, 1)


def test_duplicate_predictions_are_false_positives():
    m = match_intervals([(0, 9), (1, 9), (0, 9)], [(0, 9)])
    assert m.counts == PRF(1, 2, 0)
    assert m.tp[0][:2] == (0, 0)  # ties go to the earlier prediction


def test_best_iou_gets_the_ground_truth():
    # pred 0 overlaps gt 0 with IoU 10/12; pred 1 matches it exactly; pred 0 also hits gt 1
    m = match_intervals([(0, 11), (0, 9)], [(0, 9), (6, 11)])
    # pred1-gt0 IoU 1.0 first; pred0-gt1: overlap 6..11 = 6, union 12 -> 0.5 -> TP
    assert sorted((i, j) for i, j, _ in m.tp) == [(0, 1), (1, 0)]
    assert m.counts == PRF(2, 0, 0)


def test_empty_predictions_and_empty_truth():
    assert match_intervals([], [(0, 9), (20, 29)]).counts == PRF(0, 0, 2)
    assert match_intervals([(0, 9)], []).counts == PRF(0, 1, 0)
    s = spotting_scores({}, {"v": [(0, 9)]})
    assert (s.overall.precision, s.overall.recall, s.overall.f1) == (0.0, 0.0, 0.0)
    s = spotting_scores({"v": [(0, 9)]}, {})
    assert s.overall == PRF(0, 1, 0)


def test_spotting_pools_over_videos_and_kinds():
    gt = {"v1": [Interval(0, 9, "micro"), Interval(100, 199, "macro")],
          "v2": [Interval(50, 59, "micro")]}
    pred = {"v1": [Interval(0, 9, "micro"), Interval(100, 189, "macro"), Interval(300, 310, "micro")],
            "v2": [Interval(50, 59, "macro")],   # right place, wrong kind
            "v3": [Interval(0, 5, "micro")]}     # a video with no ground truth
    s = spotting_scores(pred, gt)
    # micro: v1 TP1 FP1; v2 FN1 (its only micro gt unmatched); v3 FP1 -> TP1 FP2 FN1
    assert s.micro == PRF(1, 2, 1)
    # macro: v1 [100,189] vs [100,199] IoU 90/100 TP; v2 macro pred has no macro gt -> FP
    assert s.macro == PRF(1, 1, 0)
    assert s.overall == PRF(2, 3, 1) and s.overall_mode == "sum_of_kinds"
    assert s.overall.f1 == pytest.approx(2 * 2 / (2 * 2 + 3 + 1))
    d = s.to_dict()
    assert d["overall"]["tp"] == 2 and d["n_videos"] == 3


def test_spotting_kind_from_duration_and_agnostic_mode():
    # at 30 fps, 0.5 s = 15 frames: [0,14] (15 frames) is micro, [0,15] (16 frames) macro
    s = spotting_scores({"v": [(0, 14), (100, 130)]}, {"v": [(0, 14), (100, 130)]}, fps=30)
    assert s.micro == PRF(1, 0, 0) and s.macro == PRF(1, 0, 0)
    assert s.overall == PRF(2, 0, 0)
    # without fps and kinds: matched ignoring kinds, micro/macro unknown
    s = spotting_scores({"v": [(0, 14)]}, {"v": [(0, 14)]})
    assert s.overall_mode == "kind_agnostic" and s.overall == PRF(1, 0, 0)
    assert s.micro is None and s.macro is None


def test_interval_validation():
    with pytest.raises(MetricInputError):
        Interval(10, 5)
    with pytest.raises(MetricInputError):
        Interval(0, 5, "mega")
    with pytest.raises(MetricInputError):
        Interval("a", 5)
    assert Interval(-3, 2).length == 6  # negative onsets occur in real predictions


# ------------------------------------------------------------------ STRS
def _row(subject, video, onset, offset, emotion):
    return {"subject": subject, "video": video, "onset": onset, "offset": offset, "emotion": emotion}


def test_strs_perfect_and_all_wrong():
    gt = [_row(1, "v", 0, 9, "happiness"), _row(1, "v", 50, 59, "disgust")]
    s = strs_scores(gt, gt)
    assert s.strs == 1.0 and s.spotting == PRF(2, 0, 0) and s.recognition_uf1 == 1.0
    wrong_place = [_row(1, "v", 20, 29, "happiness")]
    s = strs_scores(wrong_place, gt)
    assert s.spotting == PRF(0, 1, 2) and s.strs == 0.0 and s.recognition == {}


def test_strs_by_hand():
    gt = [_row(1, "a", 0, 9, "happiness"), _row(1, "a", 100, 109, "disgust"),
          _row(2, "b", 0, 9, "disgust"), _row(2, "b", 40, 49, "surprise")]
    pred = [_row("01", "a", 0, 9, "happiness"),      # TP, right emotion ("01" == 1)
            _row(1, "a", 100, 109, "happiness"),     # TP, wrong emotion
            _row(2, "b", 0, 9, "disgust"),           # TP, right emotion
            _row(2, "b", 70, 79, "surprise")]        # FP; gt 40-49 is an FN
    s = strs_scores(pred, gt)
    assert s.spotting == PRF(3, 1, 1)
    spot_f1 = 2 * 3 / (2 * 3 + 1 + 1)                # 0.75
    # recognition on the 3 TPs: truth [happiness, disgust, disgust], pred [happiness,
    # happiness, disgust]; classes in TP truth: disgust (TP1 FN1 -> F1 2/3), happiness
    # (TP1 FP1 -> F1 2/3); surprise was never spotted so it is not a recognition class.
    assert s.labels == ("disgust", "happiness")
    assert s.recognition_uf1 == pytest.approx(2 / 3)
    assert s.strs == pytest.approx(spot_f1 * 2 / 3)


def test_strs_uar_is_mean_recall_not_mean_precision():
    # Reference script bug: its "UAR" is np.mean(precision_list). Truth [a, a, b, c], pred
    # [a, b, b, b]: recalls a 1/2, b 1, c 0 -> UAR 1/2; precisions 1, 1/3, 0 -> 4/9.
    gt = [_row(1, f"v{i}", 0, 9, e) for i, e in enumerate("aabc")]
    pred = [_row(1, f"v{i}", 0, 9, e) for i, e in enumerate("abbb")]
    s = strs_scores(pred, gt)
    assert s.recognition_uar == pytest.approx(0.5)
    assert s.recognition_uar != pytest.approx(4 / 9)


def test_strs_fn_is_keyed_on_the_true_emotion():
    # Reference script bug: its analysis FN counts TP spots whose *predicted* emotion equals the
    # class but were not correct, which never happens, so its FN total is always 0. Here a
    # spotted "anger" predicted as "fear" is an FN for anger (and an FP for no truth class).
    gt = [_row(1, "v", 0, 9, "anger"), _row(1, "w", 0, 9, "fear")]
    pred = [_row(1, "v", 0, 9, "fear"), _row(1, "w", 0, 9, "fear")]
    s = strs_scores(pred, gt)
    assert s.recognition["anger"] == PRF(0, 0, 1)
    assert s.recognition["fear"] == PRF(1, 1, 0)
    assert sum(c.fn for c in s.recognition.values()) == 1


def test_strs_one_prediction_hits_one_ground_truth_only():
    # Reference script: no break after a match, so a prediction with IoU >= 0.5 against two
    # ground truths counts two TPs. Pred [0,9] vs gts [0,9] (IoU 1.0) and [0,11] (IoU 10/12):
    # here 1 TP (the better match) and 1 FN.
    gt = [_row(1, "v", 0, 9, "anger"), _row(1, "v", 0, 11, "anger")]
    s = strs_scores([_row(1, "v", 0, 9, "anger")], gt)
    assert s.spotting == PRF(1, 0, 1)


def test_strs_counts_ground_truth_of_subjects_without_predictions():
    # Reference script iterates over the subjects in the *prediction* file only, so a subject
    # with no predictions contributes no FN there. Here it does.
    gt = [_row(1, "v", 0, 9, "anger"), _row(2, "w", 0, 9, "anger")]
    s = strs_scores([_row(1, "v", 0, 9, "anger")], gt)
    assert s.spotting == PRF(1, 0, 1)


def test_read_strs_csv_example_files():
    gt = read_strs_csv(DATA / "strs_example_gt.csv")
    pred = read_strs_csv(DATA / "strs_example_pred.csv")
    assert len(gt) == len(pred) == 244
    assert gt[0].subject == "1" and gt[0].video == "EP02_01f" and (gt[0].onset, gt[0].offset) == (45, 85)
    assert any(r.onset < 0 for r in pred)
    s = strs_scores(pred, gt)
    assert s.spotting.tp + s.spotting.fn == 244
    assert s.spotting.tp + s.spotting.fp == 244
    assert 0.0 < s.strs < 1.0
    assert s.strs == pytest.approx(s.spotting.f1 * s.recognition_uf1)
    assert "others" in s.labels
    assert set(s.to_dict()) >= {"strs", "spotting", "recognition_uf1", "recognition_uar"}


def test_read_strs_csv_errors(tmp_path):
    p = tmp_path / "bad.csv"
    p.write_text("subject,video,onset,offset,emotion\n1,EP01,10,x,happiness\n")
    with pytest.raises(MetricInputError, match=r"bad.csv:2"):
        read_strs_csv(p)
    p.write_text("subject,video,start,offset,emotion\n")
    with pytest.raises(MetricInputError, match="onset"):
        read_strs_csv(p)
    p.write_text("\ufeffSubject , Video,Onset,Offset,Emotion\n1,EP01,10,20,Happiness\n")
    (row,) = read_strs_csv(p)
    assert row.emotion == "happiness" and row.onset == 10


# ------------------------------------------------------------------ VQA in one call
def test_vqa_scores_splits_by_question_kind():
    qs = ["What is the coarse expression class?", "What is the coarse expression class?",
          "What is the fine-grained expression class?", "What are the action units?",
          "Is the action unit dimpler shown on the face?"]
    refs = ["negative", "positive", "anger", "brow lowerer, lid tightener", "yes"]
    preds = ["It is negative", "negative", "angry", "AU4, AU7", "Yes"]
    raw = vqa_scores(qs, refs, preds)
    assert raw.coarse_uf1 == 0.0  # "it is negative" is not the label until normalised
    s = vqa_scores(qs, refs, preds, normalise=True)
    # coarse after normalising: negative TP1 FP1 (F1 2/3), positive FN1 (F1 0)
    assert s.coarse_uf1 == pytest.approx(1 / 3)
    assert s.coarse_uar == pytest.approx(0.5)
    assert s.fine_uf1 == 1.0 and s.au_list.micro.f1 == 1.0 and s.presence_accuracy == 1.0
    assert s.side_accuracy is None and s.counts["coarse"] == 2
    assert 0.0 < s.bleu_sentence_smoothed <= 1.0 and 0.0 < s.rouge1_f1 <= 1.0
    assert s.to_dict()["au_list"]["micro"]["tp"] == 2
