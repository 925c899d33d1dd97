"""The learned recogniser (MMNet): network shapes, safetensors round trip, inputs, subject-independent
folds, learning above chance on held-out synthetic subjects, and bit-exact resume."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from mevqa.io.splits import SubjectLeakageError
from mevqa.recognize.inputs import motion_input, onset_input
from mevqa.recognize.network import MMNet, MMNetConfig, RecognizerFormatError, tiny_config
from mevqa.train.recognizer import class_weights, plan_folds, train_recognizer
from mevqa.train.recognizer_config import RecognizerConfigError, load_recognizer_config
from mevqa.train.recognizer_data import CropBank, augment_pair

ROOT = Path(__file__).resolve().parents[1]
TINY = ROOT / "train" / "configs" / "recognizer_tiny.yaml"


def test_full_size_network_gives_512x14x14_and_a_14x14_attention_map():
    torch.manual_seed(0)
    net = MMNet(MMNetConfig()).eval()
    motion, onset = torch.randn(1, 3, 224, 224), torch.randn(1, 3, 224, 224)
    with torch.no_grad():
        feat, maps = net.features(motion, onset)
        out = net(motion, onset)
    assert feat.shape == (1, 512, 14, 14)
    assert [m.shape[-1] for m in maps] == [56, 28, 14, 14]
    assert out.logits.shape == (1, 3) and out.attention.shape == (1, 1, 14, 14)
    # continuous attention: each map is gated by the previous one, so it never exceeds its max-pooled parent
    parent = torch.nn.functional.adaptive_max_pool2d(maps[1], (14, 14))
    assert torch.all(maps[2] <= parent + 1e-6)


@pytest.mark.parametrize("kind,channels", [("diff", 3), ("flow", 2), ("both", 5)])
def test_input_kinds(kind, channels):
    rng = np.random.default_rng(0)
    a = rng.integers(0, 255, (64, 64, 3), dtype=np.uint8)
    b = np.roll(a, 1, axis=1)
    m = motion_input(a, b, kind=kind)
    assert m.shape == (channels, 64, 64) and m.dtype == np.float32
    assert onset_input(a).shape == (3, 64, 64)
    net = MMNet(tiny_config(input=kind)).eval()
    with torch.no_grad():
        out = net(torch.from_numpy(m)[None], torch.from_numpy(onset_input(a))[None])
    assert out.logits.shape == (1, 3)


def test_save_pretrained_is_safetensors_and_json_and_loads_identically(tmp_path):
    torch.manual_seed(1)
    net = MMNet(tiny_config(classes=("a", "b", "c", "d"), input="both")).eval()
    net.save_pretrained(tmp_path / "m", extra={"note": "test"})
    assert sorted(p.name for p in (tmp_path / "m").iterdir()) == ["config.json", "model.safetensors"]
    doc = json.loads((tmp_path / "m" / "config.json").read_text())
    assert doc["mmnet"]["classes"] == ["a", "b", "c", "d"] and doc["note"] == "test"
    back = MMNet.from_pretrained(tmp_path / "m")
    x, o = torch.randn(2, 5, 64, 64), torch.randn(2, 3, 64, 64)
    with torch.no_grad():
        assert torch.equal(net(x, o).logits, back(x, o).logits)
    (tmp_path / "m" / "config.json").write_text(json.dumps({"architecture": "other"}))
    with pytest.raises(RecognizerFormatError):
        MMNet.from_pretrained(tmp_path / "m")


def test_config_refuses_unknown_keys_and_non_subject_protocols(tmp_path):
    with pytest.raises(RecognizerConfigError, match="unknown"):
        load_recognizer_config(TINY, ["learning_rate=1"])
    with pytest.raises(RecognizerConfigError, match="subject-independent"):
        load_recognizer_config(TINY, ["split.protocol=random"])
    cfg = load_recognizer_config(TINY, ["epochs=3", "network.input=flow"])
    assert cfg.epochs == 3 and cfg.network["input"] == "flow" and cfg.split.protocol == "loso"


def _bank(subjects):
    n = len(subjects)
    return CropBank(np.zeros((n, 4, 8, 8, 3), np.uint8), np.zeros((n, 4, 8, 8, 3), np.uint8),
                    np.arange(n) % 2, [{"dataset": "casme2", "subject": s, "image_id": f"{s}_{i}", "label": "x"}
                                       for i, s in enumerate(subjects)], ("a", "b"))


def test_folds_are_subject_disjoint_and_a_leaky_holdout_is_refused():
    bank = _bank(["sub01", "1", "sub02", "02", "sub03"])  # "1" and "sub01" are one CASME II subject
    cfg = load_recognizer_config(TINY)
    folds = plan_folds(bank, cfg)
    assert [f["held_out"] for f in folds] == [["casme2/sub01"], ["casme2/sub02"], ["casme2/sub03"]]
    assert folds[0]["test"] == [0, 1]
    cfg = load_recognizer_config(TINY, ["split.protocol=holdout", "split.test_subjects=[sub02]"])
    (f,) = plan_folds(bank, cfg)
    assert f["test"] == [2, 3]
    from mevqa.io.splits import assert_subject_disjoint

    with pytest.raises(SubjectLeakageError):
        assert_subject_disjoint([bank.items[0]], [bank.items[1]])


def test_class_weights_balance_the_classes():
    w = class_weights(np.array([0, 0, 0, 1, 2, 2]), 3, "balanced").numpy()
    assert w[1] > w[2] > w[0] and abs(w.mean() - 1) < 1e-6
    assert class_weights(np.array([0, 1]), 2, "none") is None
    assert class_weights(np.array([0, 1]), 2, [1, 3]).tolist() == [1.0, 3.0]


def test_augmentation_keeps_the_pair_aligned():
    rng = np.random.default_rng(0)
    base = rng.integers(0, 255, (4, 32, 32, 3), dtype=np.uint8)
    from mevqa.train.recognizer_config import Augment

    for seed in range(5):
        on, ap = augment_pair(base, base.copy(), np.random.default_rng(seed), Augment(jitter_frames=False))
        assert np.array_equal(on, augment_pair(base, base, np.random.default_rng(seed), Augment(jitter_frames=False))[0])
        # same frame drawn for both -> identical after the shared crop, flip and colour change
        assert on.shape == (32, 32, 3)


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory):
    """A folder whose ``data`` (the tiny config's synthetic CASME II-style set) and ``crops`` (the crop
    cache) both tests share: rendered and cropped once."""
    return tmp_path_factory.mktemp("recognizer")


def _shared(root: Path) -> list[str]:
    return [f"data.synthetic_root={root / 'data'}", f"data.crop_cache={root / 'crops'}"]


@pytest.mark.slow
def test_tiny_loso_learns_above_chance_on_held_out_subjects(tiny_run):
    cfg = load_recognizer_config(TINY, [f"run_dir={tiny_run / 'loso'}", "final_model=false"] + _shared(tiny_run))
    run = train_recognizer(cfg, verbose=False)
    rep = run.report
    assert rep["n_folds"] == cfg.data.synthetic_subjects and rep["protocol"] == "loso"
    # every fold held out a subject the model never saw; pooled UAR above chance (1/3) by a margin
    assert rep["pooled"]["uar"] > rep["chance_uar"] + 0.15, rep["pooled"]
    assert (tiny_run / "loso" / "report.md").read_text().startswith("# Recogniser report")


@pytest.mark.slow
def test_resume_is_bit_exact(tiny_run):
    over = _shared(tiny_run) + ["split.protocol=holdout", "split.test_subjects=[sub01]", "epochs=4", "save_every=1"]
    whole = load_recognizer_config(TINY, over + [f"run_dir={tiny_run / 'whole'}", "final_model=true"])
    model_dir = train_recognizer(whole, verbose=False).model_dir
    assert MMNet.from_pretrained(model_dir).config.classes == ("negative", "positive", "surprise")
    parts = load_recognizer_config(TINY, over + [f"run_dir={tiny_run / 'parts'}", "final_model=false"])
    assert not train_recognizer(parts, stop_after=2, verbose=False).complete
    assert train_recognizer(parts, verbose=False).complete
    a = torch.load(tiny_run / "whole" / "folds" / "holdout" / "checkpoint.pt", weights_only=True)
    b = torch.load(tiny_run / "parts" / "folds" / "holdout" / "checkpoint.pt", weights_only=True)
    assert a["epoch"] == b["epoch"] == 4
    assert all(torch.equal(a["model"][k], b["model"][k]) for k in a["model"])
    ra = json.loads((tiny_run / "whole" / "report.json").read_text())
    rb = json.loads((tiny_run / "parts" / "report.json").read_text())
    assert ra["folds"][0]["items"] == rb["folds"][0]["items"]
    with pytest.raises(RecognizerConfigError, match="different config"):
        train_recognizer(load_recognizer_config(TINY, over + [f"run_dir={tiny_run / 'parts'}", "final_model=false",
                                                              "lr=1e-3"]),
                         verbose=False)


def test_recognizer_reading_joins_the_evidence_and_only_replaces_the_prior(tmp_path):
    from types import SimpleNamespace

    from mevqa.answer.readings import read_interval
    from mevqa.evidence.recognized import add_recognizer_reading
    from mevqa.evidence.result import IntervalEvidence
    from mevqa.evidence.text import _interval_block, _sections
    from mevqa.testing.synth import SynthConfig, SynthEvent, make_clip

    torch.manual_seed(0)
    MMNet(tiny_config()).save_pretrained(tmp_path / "run" / "recognizer")
    clip, _ = make_clip(SynthConfig(width=320, height=240, fps=30, seconds=1.0, blinks=False, seed=3),
                        events=[SynthEvent(6, 11, 16, "micro", ("AU12",), "both", 3.0)])
    iv = SimpleNamespace(onset=6, apex=11, images={})
    add_recognizer_reading(SimpleNamespace(intervals=[iv]), clip, tmp_path / "run")  # a run folder is accepted
    rec = iv.recognizer
    assert set(rec["probabilities"]) == {"negative", "positive", "surprise"}
    assert abs(sum(rec["probabilities"].values()) - 1) < 1e-3 and rec["label"] in rec["probabilities"]
    assert iv.images["attention"].shape == (64, 64, 3) and iv.images["attention"].dtype == np.uint8

    def interval(recognizer, aus=()):
        return IntervalEvidence(0, 6, 11, 16, "micro", 1.0, 30.0, list(aus), [], recognizer=recognizer)

    sure = {"label": "positive", "confidence": 0.8, "probabilities": {"negative": 0.1, "positive": 0.8, "surprise": 0.1}}
    text = _interval_block(interval(sure), _sections("evidence.txt"))
    assert "Learned recogniser" in text and "positive 0.80" in text
    r = read_interval(interval(sure))
    assert (r.fine, r.coarse, r.emotion_basis) == ("happiness", "positive", "recognizer") and "learned" in r.emotion_note()
    unsure = dict(sure, confidence=0.4)
    assert read_interval(interval(unsure)).emotion_basis == "prior"
    # a FACS rule reading is never overridden by the network
    au4 = {"code": "AU4", "name": "brow lowerer", "side": "both", "intensity": 1.0, "score": 1.0}
    iv4 = IntervalEvidence(0, 6, 11, 16, "micro", 1.0, 30.0, [au4],
                           [{"fine": "anger", "coarse": "negative", "confidence": 0.6, "rule": "AU4"}], recognizer=sure)
    assert read_interval(iv4).emotion_basis == "facs"
