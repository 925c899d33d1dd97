"""LoRA fine-tuning on the tiny random Qwen-VL and a synthetic CASME II-style dataset.

What is checked: the synthetic set is laid out like the releases and reads back through the sheet
importer with the right frames; configs fail with one-line errors; balancing and the sample stream
are right; no split puts a subject on both sides; cached vision features are exact; a short run
drives the loss down and the saved adapter, reloaded the way ``mevqa ask --adapter`` loads it,
gives the trained answers (templates, label mask and visual inputs agree between training and
inference); a run that crashes resumes from its checkpoint and ends with the same weights and losses
as an uninterrupted one.
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module", autouse=True)
def evidence_cache(tmp_path_factory):
    """A private Evidence cache, so the tests neither read nor fill the user's; one torch thread,
    because the tiny model's ops are too small to share between threads and two threads on two busy
    cores wait on each other (steps measured 3x slower on a loaded 2-core machine)."""
    old, threads = os.environ.get("MEVQA_CACHE"), torch.get_num_threads()
    os.environ["MEVQA_CACHE"] = str(tmp_path_factory.mktemp("cache"))
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)
    if old is None:
        os.environ.pop("MEVQA_CACHE", None)
    else:
        os.environ["MEVQA_CACHE"] = old


@pytest.fixture(scope="module")
def tiny(tmp_path_factory) -> Path:
    from mevqa.testing.tiny_model import build_tiny_model

    return build_tiny_model(tmp_path_factory.mktemp("tiny"))


@pytest.fixture(scope="module")
def casme(tmp_path_factory) -> Path:
    """3 subjects x 2 clips, 0.8 s at 200 fps: sub01 disgust + happiness, sub02 repression + surprise,
    sub03 disgust + others (no MEGC class: no questions)."""
    from mevqa.testing.synthset import make_synthetic_dataset

    return make_synthetic_dataset(tmp_path_factory.mktemp("casme2"), layout="casme2", n_subjects=3,
                                  clips_per_subject=2, seconds=0.8, seed=0)


def _config(tiny: Path, casme: Path, run_dir: Path, **overrides):
    from mevqa.train.trainer import load_config

    base = [f"model={tiny}", f"run_dir={run_dir}", f"data.sheet={casme / 'CASME2-coding-20140508.xlsx'}",
            f"data.frames_root={casme}", "split.test_subjects=[sub03]", "lora.r=8", "lora.alpha=16",
            "lora.dropout=0.0", "lora.modules_to_save=[lm_head,embed_tokens]", "gradient_checkpointing=false",
            "device=cpu", "warmup_steps=2", "grad_accum=1", "eval_at_end=false"]
    return load_config(None, base + [f"{k}={v}" for k, v in overrides.items()])


# -- the synthetic dataset ---------------------------------------------------------------------


def test_synthetic_casme2_is_laid_out_like_the_release_and_reads_back(casme):
    import openpyxl

    from mevqa.train.dataset import sheet_interval
    from mevqa.io.sheets import load_sheet
    from mevqa.io.video import Clip

    truth = json.loads((casme / "synthetic_ground_truth.json").read_text())["clips"]
    ws = openpyxl.load_workbook(casme / "CASME2-coding-20140508.xlsx").active
    rows = list(ws.iter_rows(values_only=True))
    assert rows[0] == ("Subject", "Filename", None, "OnsetFrame", "ApexFrame", "OffsetFrame", None,
                       "Action Units", "Estimated Emotion")
    assert [r[0] for r in rows[1:]] == [1, 1, 2, 2, 3, 3]  # subjects as numbers, as CASME II writes them
    assert {r[8] for r in rows[1:]} == {"disgust", "happiness", "repression", "surprise", "others"}

    clips = load_sheet(casme / "CASME2-coding-20140508.xlsx", frames_root=casme)
    assert not clips.problems and not clips.missing_frames and len(clips) == 6
    for lc, gt in zip(clips, truth):
        folder = casme / "CASME2_RAW_selected" / f"sub{gt['subject']:02d}" / gt["filename"]
        assert lc.frames_dir == folder and (folder / f"img{gt['first_frame_number']}.jpg").is_file()
        assert lc.dataset == "casme2" and lc.subject == f"sub{gt['subject']:02d}"
        assert [a.code for a in lc.aus] == gt["aus"] and lc.onset == gt["onset"]
        clip = Clip.load(lc.frames_dir)  # 200 fps inferred from the img<N>.jpg naming
        assert clip.fps == 200.0 and clip.n_frames == 160
        # sheet frame numbers are file numbers; they map to the 0-based event frames of the render
        assert sheet_interval(lc, clip) == (gt["onset_index"], gt["apex_index"], gt["offset_index"])
    assert [c.fine for c in clips] == ["disgust", "happiness", "repression", "surprise", "disgust", None]


def test_synthetic_samm_has_title_rows_and_samm_folders(tmp_path):
    import openpyxl

    from mevqa.io.sheets import load_sheet
    from mevqa.testing.synthset import make_synthetic_dataset, sheet_path

    root = make_synthetic_dataset(tmp_path, layout="samm", n_subjects=2, clips_per_subject=1, seconds=0.6, seed=1)
    rows = list(openpyxl.load_workbook(sheet_path(root, "samm")).active.iter_rows(values_only=True))
    assert rows[13][:4] == ("Subject", "Filename", "Inducement Code", "Onset Frame")  # header below 13 title rows
    assert rows[14][0] == "006" and rows[15][0] == "007"
    clips = load_sheet(sheet_path(root, "samm"), frames_root=root)
    assert [c.dataset for c in clips] == ["samm", "samm"] and [c.subject for c in clips] == ["6", "7"]
    for c in clips:
        assert c.frames_dir == root / "SAMM" / f"{int(c.subject):03d}" / c.filename
        assert (c.frames_dir / f"{c.filename}_{c.onset:04d}.jpg").is_file()
        assert c.image_id == c.filename  # MEGC writes SAMM clips as 006_1_2


# -- configuration ---------------------------------------------------------------------------------


def test_config_errors_are_one_line_and_name_the_key(tmp_path):
    from mevqa.train.trainer import ConfigError, TrainConfig, load_config, train

    cfg = load_config(ROOT / "train/configs/tiny.yaml", ["lora.r=4", "lr=1e-3", "split.test_subjects=sub02"])
    assert cfg.lora.r == 4 and cfg.lr == 1e-3 and cfg.split.test_subjects == ["sub02"]
    cases = [
        (["lora.rank=4"], "unknown config key 'lora.rank'"),
        (["learning_rate=1"], "unknown config key 'learning_rate'"),
        (["lr=fast"], "lr must be float"),
        (["balance=oversample"], "balance must be one of sampler, loss, none"),
        (["split.loso_fold=0"], "give split.test_subjects or split.loso_fold, not both"),
        (["lora.target_modules=(q_proj"], "lora.target_modules is not a valid regex"),
    ]
    for overrides, message in cases:
        with pytest.raises(ConfigError) as err:
            load_config(ROOT / "train/configs/tiny.yaml", overrides)
        assert message in str(err.value) and "\n" not in str(err.value)
    with pytest.raises(ConfigError, match="config file not found"):
        load_config(tmp_path / "nope.yaml")
    with pytest.raises(ConfigError, match="no training data: set data.sheet"):
        train(TrainConfig(model="tiny", run_dir=str(tmp_path / "run")), progress=False)
    with pytest.raises(ConfigError, match="coding sheet not found"):
        train(load_config(None, [f"run_dir={tmp_path / 'run2'}", f"data.sheet={tmp_path / 'x.xlsx'}",
                                 f"data.frames_root={tmp_path}"]), progress=False)


def test_example_configs_load():
    from mevqa.train.trainer import load_config

    lora_configs = [p for p in (ROOT / "train/configs").glob("*.yaml") if not p.name.startswith("recognizer")]
    models = {load_config(p).model for p in lora_configs}
    assert {"tiny", "Qwen/Qwen2.5-VL-3B-Instruct", "Qwen/Qwen2.5-VL-7B-Instruct", "Qwen/Qwen3-VL-2B-Instruct",
            "Qwen/Qwen3-VL-4B-Instruct"} <= models
    qlora = [load_config(p) for p in (ROOT / "train/configs").glob("*qlora*.yaml")]
    assert qlora and all(c.load_in_4bit and not c.lora.modules_to_save for c in qlora)
    assert not (ROOT / "train" / "__init__.py").exists()  # no importable package named `train`


def test_cli_errors_are_one_line(tmp_path):
    proc = subprocess.run([sys.executable, str(ROOT / "train/train.py"), str(tmp_path / "missing.yaml")],
                          capture_output=True, text=True, cwd=tmp_path)
    assert proc.returncode == 2
    assert proc.stderr.strip() == f"mevqa train: error: config file not found: {tmp_path / 'missing.yaml'}"


# -- balance, sampling, splits ---------------------------------------------------------------------


def test_balance_weights_equalise_classes_within_a_kind():
    from mevqa.train.dataset import balance_weights

    labels = ["fine:disgust"] * 6 + ["fine:fear"] * 2 + ["au_presence:yes"] * 4 + ["au_presence:no"] * 4
    w = balance_weights(labels)
    assert sum(w) == pytest.approx(len(labels))
    assert sum(w[:6]) == pytest.approx(sum(w[6:8])) == pytest.approx(4.0)  # each fine class: half of 8
    assert w[8:] == pytest.approx([1.0] * 8)  # already balanced: untouched


def test_sample_stream_is_a_function_of_seed_and_step():
    from mevqa.train.trainer import SampleStream

    a, b = SampleStream(7, seed=3), SampleStream(7, seed=3)
    first = [a.batch(s, m, r, batch_size=2, grad_accum=2, world=2) for s in range(5) for m in range(2) for r in range(2)]
    assert first == [b.batch(s, m, r, batch_size=2, grad_accum=2, world=2)
                     for s in range(5) for m in range(2) for r in range(2)]
    flat = [i for batch in first for i in batch]
    assert sorted(flat[:7]) == list(range(7))  # epoch 0 is a permutation: every sample once
    assert b.position(5, batch_size=2, grad_accum=2, world=2) == {"samples_drawn": 40, "epoch": 5, "position_in_epoch": 5}
    w = SampleStream(4, weights=[1.0, 0.0, 0.0, 0.0], seed=0)
    assert set(w.take(0, 20)) == {0}  # weighted: draws follow the weights


def test_no_split_ever_puts_a_subject_on_both_sides(casme):
    from mevqa.train.dataset import QAItem, qa_from_megc, qa_from_sheet
    from mevqa.io.sheets import load_sheet
    from mevqa.io.splits import SubjectLeakageError, assert_subject_disjoint, subject_id
    from mevqa.train.trainer import ConfigError, SplitConfig, split_clips as _split

    clips = list(load_sheet(casme / "CASME2-coding-20140508.xlsx", frames_root=casme))
    configs = [SplitConfig(loso_fold=i) for i in range(3)] + [
        SplitConfig(test_subjects=["sub02"]), SplitConfig(test_subjects=["casme2/1", "casme2/3"]),
        SplitConfig(test_fraction=0.3, seed=5), SplitConfig(test_fraction=0.0)]
    for cfg in configs:
        train, test, _ = _split(clips, cfg)
        assert {subject_id(c) for c in train}.isdisjoint({subject_id(c) for c in test})
        assert len(train) + len(test) == len(clips)
    with pytest.raises(ConfigError, match="not in the items"):
        _split(clips, SplitConfig(test_subjects=["sub09"]))
    with pytest.raises(ConfigError, match="out of range"):
        _split(clips, SplitConfig(loso_fold=3))
    # MEGC records spell subjects their own way ("1", "sub1"): still one person, still one side
    records = [{"id": f"r{i}", "dataset": "CASME II", "image_id": c.image_id, "subject": s,
                "filename": c.filename, "question": "What is the coarse expression class?", "answer": "negative"}
               for i, (c, s) in enumerate(zip(clips, ["1", "sub1", "02", "sub02", "3", "sub03"]))]
    items, unmatched = qa_from_megc(records, clips)
    assert not unmatched and {it.subject for it in items} == {"sub01", "sub02", "sub03"}
    with pytest.raises(SubjectLeakageError):
        assert_subject_disjoint(items[:1], [QAItem("k", "casme2", "1", "x", "q", "a", "coarse", "coarse:a")])
    assert len(qa_from_sheet(clips)) > 0


# -- the model -----------------------------------------------------------------------------------


def _qwen_config(family: str):
    """A toy Qwen-VL config (no tokenizer needed): enough to run the vision tower and the LM."""
    from transformers import Qwen2_5_VLConfig, Qwen3VLConfig

    ids = dict(image_token_id=90, video_token_id=91, vision_start_token_id=92, vision_end_token_id=93)
    text = dict(vocab_size=128, hidden_size=64, intermediate_size=128, num_hidden_layers=2, num_attention_heads=4,
                num_key_value_heads=2, tie_word_embeddings=False)
    if family == "qwen2_5_vl":
        text["rope_parameters"] = {"rope_type": "default", "rope_theta": 1e6, "mrope_section": [2, 3, 3]}
        vision = dict(depth=2, hidden_size=64, intermediate_size=128, num_heads=4, out_hidden_size=64, patch_size=14,
                      window_size=112, fullatt_block_indexes=[1])
        return Qwen2_5_VLConfig(text_config=text, vision_config=vision, **ids), 14
    text.update(head_dim=16, rope_parameters={"rope_type": "default", "rope_theta": 5e6, "mrope_section": [2, 3, 3],
                                              "mrope_interleaved": True})
    vision = dict(depth=2, hidden_size=64, intermediate_size=128, num_heads=4, out_hidden_size=64, patch_size=16,
                  num_position_embeddings=256, deepstack_visual_indexes=[0])
    return Qwen3VLConfig(text_config=text, vision_config=vision, **ids), 16


@pytest.mark.parametrize("family", ["qwen2_5_vl", "qwen3_vl"])
def test_cached_vision_features_give_the_same_loss(family):
    import transformers

    from mevqa.train.trainer import VisionCache, answer_loss

    config, patch = _qwen_config(family)
    cls = transformers.Qwen2_5_VLForConditionalGeneration if family == "qwen2_5_vl" else transformers.Qwen3VLForConditionalGeneration
    torch.manual_seed(0)
    model = cls(config).eval()
    # two samples, each with two 4x4-patch images (4 merged tokens each), answers at the end
    encodings = []
    for k in range(2):
        ids = [5, 6] + [92] + [90] * 4 + [93, 92] + [90] * 4 + [93] + [7, 8, 9 + k, 10 + k, 11]
        labels = [-100] * (len(ids) - 3) + ids[-3:]
        encodings.append({"input_ids": torch.tensor([ids]), "attention_mask": torch.ones(1, len(ids), dtype=torch.long),
                          "mm_token_type_ids": torch.tensor([[1 if t == 90 else 0 for t in ids]]),
                          "labels": torch.tensor([labels]),
                          "pixel_values": torch.randn(32, 3 * 2 * patch * patch),
                          "image_grid_thw": torch.tensor([[1, 4, 4], [1, 4, 4]])})
    batch = {k: torch.cat([e[k] for e in encodings]) for k in encodings[0]}
    cache = VisionCache(model, torch.device("cpu"))
    cached = cache.apply(batch, encodings)
    assert "pixel_values" not in cached and len(cache.store) == 2  # keyed by the images, not by a clip name
    assert torch.allclose(answer_loss(model, batch), answer_loss(model, cached), atol=1e-6)


def test_training_lowers_the_loss_and_the_adapter_reproduces_the_answers(tiny, casme, tmp_path):
    from mevqa.answer.agent import Agent
    from mevqa.train.trainer import train

    # 8 samples (coarse + fine of 4 clips), full batch: 40 steps take about 8 s on 2 idle cores
    # no warmup: transformers' warmup starts at lr 0, and at lr 1e-2 the tiny model then plateaus near
    # loss 0.3 within 40 steps (measured), while from step 0 it reaches 0.01
    cfg = _config(tiny, casme, tmp_path / "run", **{"data.question_kinds": "[coarse,fine]", "lr": 1e-2,
                                                   "scheduler": "constant", "warmup_steps": 0, "max_steps": 40,
                                                   "batch_size": 8,
                                                   "balance": "none", "save_every": 20, "eval_at_end": "true"})
    result = train(cfg, progress=False)
    losses = result.losses
    assert result.steps == 40 and len(losses) == 40 and result.n_train == 8
    assert sum(losses[-4:]) / 4 < 0.05 * sum(losses[:4]) / 4, losses
    assert result.train_subjects == ["casme2/sub01", "casme2/sub02"] and result.test_subjects == ["casme2/sub03"]
    adapter = result.adapter_dir
    assert (adapter / "adapter_config.json").is_file() and (adapter / "adapter_model.safetensors").is_file()
    card = (adapter / "README.md").read_text()
    assert "held-out subjects (1): casme2/sub03" in card and "coarse UF1" in card
    assert result.metrics["adapter"]["n"] == 2 and "coarse_uf1" in result.metrics["adapter"]
    log = [json.loads(x) for x in (tmp_path / "run/log.jsonl").read_text().splitlines()]
    assert [r["step"] for r in log] == list(range(1, 41))

    # reloaded exactly as `mevqa ask --model TINY --adapter DIR` does, it gives the trained answers
    from mevqa.train.dataset import clip_evidence, qa_from_sheet
    from mevqa.io.sheets import load_sheet

    agent = Agent.from_args(model=str(tiny), adapter=str(adapter), fallback=False)
    clips = [c for c in load_sheet(casme / "CASME2-coding-20140508.xlsx", frames_root=casme) if c.subject != "sub03"]
    items = qa_from_sheet(clips, kinds=("coarse", "fine"))
    evidence = {c.image_id: clip_evidence(c) for c in clips}  # from the on-disk cache: no flow recomputed
    answers = [agent.ask(evidence[it.image_id], it.question).text for it in items]
    assert answers == [it.answer for it in items]
    assert len({a for a in answers}) >= 4  # not one memorised word: the answers depend on the clip


def test_a_crashed_run_resumes_and_matches_an_uninterrupted_one(tiny, casme, tmp_path):
    from safetensors.torch import load_file

    from mevqa.train.trainer import ConfigError, latest_checkpoint, train

    settings = {"data.question_kinds": "[coarse]", "lora.dropout": 0.1, "lr": 5e-3, "max_steps": 5,
                "batch_size": 1, "save_every": 2, "balance": "sampler"}
    whole = train(_config(tiny, casme, tmp_path / "whole", **settings), progress=False)

    class Crash(RuntimeError):
        pass

    def crash_after_3(step, loss):
        if step == 3:
            raise Crash("simulated crash")

    cfg = _config(tiny, casme, tmp_path / "crashed", **settings)
    with pytest.raises(Crash):
        train(cfg, progress=False, on_step=crash_after_3)
    assert latest_checkpoint(tmp_path / "crashed").name == "step-0000002"
    with pytest.raises(ConfigError, match="lr changed"):  # a changed config is not silently mixed in
        train(_config(tiny, casme, tmp_path / "crashed", **{**settings, "lr": 1e-3}), progress=False)
    resumed = train(cfg, progress=False)
    assert resumed.resumed_from == 2 and resumed.steps == whole.steps == 5
    assert resumed.losses == whole.losses  # the log holds every step once, equal to the uninterrupted run
    a = load_file(str(latest_checkpoint(tmp_path / "whole") / "trainable.safetensors"))
    b = load_file(str(latest_checkpoint(tmp_path / "crashed") / "trainable.safetensors"))
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
    state = json.loads((latest_checkpoint(tmp_path / "crashed") / "state.json").read_text())
    assert state["step"] == 5 and state["sampler"]["samples_drawn"] == 5


def test_qlora_trains_on_a_4bit_base_and_reloads(tiny, casme, tmp_path):
    import bitsandbytes as bnb

    from mevqa.answer.agent import Agent
    from mevqa.train.trainer import train

    # bitsandbytes quantises on CPU too (every Linear of the tiny model has in_features >= 64)
    cfg = _config(tiny, casme, tmp_path / "q", **{"data.question_kinds": "[coarse]", "load_in_4bit": "true",
                                                 "gradient_checkpointing": "true", "lora.modules_to_save": "[lm_head]",
                                                 "max_steps": 2, "batch_size": 2})
    result = train(cfg, progress=False)
    assert result.steps == 2 and all(0 < x < 20 for x in result.losses)
    agent = Agent.from_args(model=str(tiny), adapter=str(result.adapter_dir), load_in_4bit=True, fallback=False)
    layers = [m for m in agent.backend.vlm.model.modules() if isinstance(m, bnb.nn.Linear4bit)]
    assert len(layers) == 14  # 2 layers x (q, k, v, o, gate, up, down); vision tower and lm_head stay full


def test_qlora_in_bf16_finishes_with_the_held_out_evaluation(tiny, casme, tmp_path):
    """Issue 16: after prepare_model_for_kbit_training every non-4-bit tensor was fp32 and only 2-D ones
    went back to bf16; norms stayed fp32, and the end evaluation (generate, no autocast) raised
    "self and mat2 must have the same dtype". bf16 on the CPU (cpu_bf16) runs the GPU's precision path."""
    from mevqa.train.trainer import train

    cfg = _config(tiny, casme, tmp_path / "qb", **{"data.question_kinds": "[coarse]", "load_in_4bit": "true",
                                                  "cpu_bf16": "true", "eval_at_end": "true",
                                                  "gradient_checkpointing": "true", "lora.modules_to_save": "[lm_head]",
                                                  "max_steps": 2, "batch_size": 2})
    result = train(cfg, progress=False)
    assert result.steps == 2 and all(0 < x < 20 for x in result.losses)
    assert result.metrics["adapter"]["n"] == 1  # sub03's one coarse question, answered by the bf16 4-bit model
    assert (result.adapter_dir / "README.md").read_text().count("coarse UF1") == 1
    assert (result.adapter_dir / "training_config.yaml").is_file()
    assert "bf16 on CPU" in (result.adapter_dir / "README.md").read_text()


def test_evidence_is_computed_in_shards_and_gathered(tiny, casme, tmp_path, monkeypatch):
    """Two processes, run one after the other here: each computes only its share of the clips (every
    second one), the barrier stands for the other's shard landing in the disk cache, and both end
    with every clip's evidence (before: rank 0 computed all while the others waited)."""
    import mevqa.train.data as data_mod

    calls: list[str] = []
    real = data_mod.clip_evidence

    def counted(lc, **kw):
        calls.append(lc.image_id)
        return real(lc, **kw)

    monkeypatch.setattr(data_mod, "clip_evidence", counted)
    cfg = _config(tiny, casme, tmp_path / "run")
    got = {}
    for rank in (1, 0):
        calls.clear()
        marks = []
        got[rank] = data_mod.prepare_data(cfg, tmp_path, progress=False, rank=rank, world=2,
                                          barrier=lambda: marks.append(len(calls)), gather=lambda x: x)
        n_clips = got[rank].n_clips
        assert marks == [len(data_mod.shard(range(n_clips), rank, 2))]  # only its share before the barrier
        assert len(calls) == n_clips  # then the rest, read back from the cache
    assert list(got[0].evidence) == list(got[1].evidence) and len(got[0].evidence) == got[0].n_clips
    assert [it.key for it in got[0].train_items] == [it.key for it in got[1].train_items]
