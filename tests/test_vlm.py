"""The Qwen-VL layer on tiny random Qwen2.5-VL and Qwen3-VL models built locally (no download).

Everything loads through the real transformers / peft / bitsandbytes code paths; only the weights
are random, so the tests check plumbing (shapes, masks, equality of paths), never answer quality.
"""
import json
import os

os.environ.setdefault("HF_HUB_OFFLINE", "1")

import numpy as np
import pytest
import torch

from mevqa.vlm.config import VLMConfig, VLMConfigError
from mevqa.vlm.model import IGNORE_INDEX, ModelLoadError, QwenVL, lora_target_modules
from mevqa.vlm.processing import (
    InputError,
    VLProcessor,
    frame_patches_to_video,
    parse_messages,
    patchify_video,
    torchvision_available,
)
from mevqa.testing.tiny_model import SPECIAL_TOKENS, TINY_MARKER, build_tiny_model, main_tiny_model

FAMILIES = ["qwen2_5_vl", "qwen3_vl"]
QUESTION = "What is the coarse expression class?"


@pytest.fixture(scope="session")
def tiny_dirs(tmp_path_factory):
    root = tmp_path_factory.mktemp("tiny_vlm")
    return {fam: build_tiny_model(root / fam, family=fam, seed=0) for fam in FAMILIES}


@pytest.fixture(scope="module")
def models(tiny_dirs):
    return {fam: QwenVL.from_pretrained(str(path), device="cpu") for fam, path in tiny_dirs.items()}


@pytest.fixture(scope="module")
def face():
    """The public-domain astronaut photo (a real face) as RGB uint8."""
    import cv2
    from pathlib import Path

    import mevqa

    path = Path(mevqa.__file__).parent / "assets" / "astronaut.png"
    bgr = cv2.imread(str(path))
    assert bgr is not None, path
    return np.ascontiguousarray(bgr[:, :, ::-1])


def two_image_messages(face):
    # two keyframes of different sizes: apex crop and a downscaled onset
    return [
        {"role": "system", "content": "You are an expert in facial micro-expressions."},
        {"role": "user", "content": [
            {"type": "image", "image": face[40:240, 140:340]},
            {"type": "image", "image": face[::4, ::4]},
            {"type": "text", "text": QUESTION},
        ]},
    ]


# -- the tiny model -----------------------------------------------------------------------------


@pytest.mark.parametrize("family", FAMILIES)
def test_tiny_model_folder_loads_with_transformers(tiny_dirs, family):
    from transformers import AutoConfig, AutoTokenizer

    path = tiny_dirs[family]
    for name in ("config.json", "model.safetensors", "tokenizer.json", "preprocessor_config.json",
                 "video_preprocessor_config.json", "generation_config.json", "chat_template.jinja", TINY_MARKER):
        assert (path / name).is_file(), name
    cfg = AutoConfig.from_pretrained(path)
    tok = AutoTokenizer.from_pretrained(path)
    assert cfg.model_type == family
    assert cfg.image_token_id == tok.convert_tokens_to_ids("<|image_pad|>")
    assert cfg.video_token_id == tok.convert_tokens_to_ids("<|video_pad|>")
    assert cfg.text_config.hidden_size == 64 and cfg.text_config.num_hidden_layers == 2
    assert cfg.vision_config.depth == 2
    assert cfg.vision_config.patch_size == (14 if family == "qwen2_5_vl" else 16)
    assert sum(cfg.text_config.rope_parameters["mrope_section"]) == 16 // 2  # head_dim / 2
    # every special token is one token, and MEGC answers round-trip through the tokenizer
    for token in SPECIAL_TOKENS:
        assert len(tok(token)["input_ids"]) == 1, token
    answer = "The action unit present is: lip corner puller. Therefore, the fine-grained expression class is happiness"
    assert tok.decode(tok(answer)["input_ids"]) == answer
    assert len(tok(answer)["input_ids"]) < len(answer) // 2  # merges learnt from the MEGC vocabulary


def test_tiny_model_is_deterministic_per_seed(tiny_dirs, tmp_path):
    from safetensors.torch import load_file

    again = load_file(build_tiny_model(tmp_path / "a", family="qwen2_5_vl", seed=0) / "model.safetensors")
    first = load_file(tiny_dirs["qwen2_5_vl"] / "model.safetensors")
    other = load_file(build_tiny_model(tmp_path / "b", family="qwen2_5_vl", seed=1) / "model.safetensors")
    key = "model.layers.0.self_attn.q_proj.weight"  # saved in the hub checkpoint layout
    assert all(torch.equal(first[k], again[k]) for k in first)
    assert not torch.equal(first[key], other[key])


def test_main_tiny_model_prints_path(tmp_path, capsys):
    assert main_tiny_model(tmp_path / "cli", family="qwen3_vl") == 0
    assert capsys.readouterr().out.strip() == str(tmp_path / "cli")
    assert json.loads((tmp_path / "cli" / TINY_MARKER).read_text())["family"] == "qwen3_vl"


def test_tiny_model_unknown_family(tmp_path):
    with pytest.raises(ValueError, match="unknown family"):
        build_tiny_model(tmp_path, family="llava")


# -- config -------------------------------------------------------------------------------------


def test_config_defaults_and_validation():
    cfg = VLMConfig()
    assert cfg.model == "Qwen/Qwen2.5-VL-3B-Instruct" and cfg.n_frames == 3 and cfg.max_pixels == 224 * 224
    assert cfg.attn_implementation is None and cfg.quantization is None
    assert VLMConfig.from_dict(cfg.to_dict()) == cfg
    with pytest.raises(VLMConfigError, match="not both"):
        VLMConfig(load_in_4bit=True, load_in_8bit=True)
    with pytest.raises(VLMConfigError, match="unknown VLM setting"):
        VLMConfig.from_dict({"max_pixel": 10})
    with pytest.raises(VLMConfigError, match="device"):
        VLMConfig(device="tpu")
    with pytest.raises(VLMConfigError, match="min_pixels"):
        VLMConfig(min_pixels=1000, max_pixels=10)


# -- processing ---------------------------------------------------------------------------------


@pytest.mark.parametrize("family", FAMILIES)
def test_numpy_processor_matches_transformers_processor_call(models, face, family):
    """Our numpy path against the real ``Qwen*VLProcessor.__call__`` on images.

    The processor class cannot be constructed without torchvision (its video processor is checked),
    so it is created without ``__init__`` and given the tokenizer and image processor; the code that
    runs (template expansion, tokenising, modality map, image processing) is transformers' own.
    """
    from transformers import Qwen2_5_VLProcessor, Qwen3VLProcessor

    proc = models[family].processor
    messages = two_image_messages(face)
    ours = proc(messages)
    cls = Qwen2_5_VLProcessor if family == "qwen2_5_vl" else Qwen3VLProcessor
    hf = cls.__new__(cls)
    hf.tokenizer, hf.image_processor, hf.chat_template = proc.tokenizer, proc.image_processor, proc.chat_template
    hf.image_token, hf.video_token = "<|image_pad|>", "<|video_pad|>"
    hf.image_token_id, hf.video_token_id = proc.image_token_id, proc.video_token_id
    images = [item["image"] for item in messages[1]["content"] if item["type"] == "image"]
    ref = hf(text=[proc.render(messages)], images=images, images_kwargs={"size": proc._size()}, return_tensors="pt")
    assert set(ref) == set(ours)
    for key in ref:
        if key == "pixel_values":  # ours follow the torchvision processor's fused rescale+normalise (bit for
            # bit, test_standard_processor_matches_on_keyframes_and_flow_map); PIL's order rounds the last bit
            assert torch.allclose(ref[key], ours[key], rtol=0, atol=1e-6), key
        else:
            assert torch.equal(ref[key], ours[key]), key
    # visual token count = patches / merge^2, summed over both images
    expected = sum(proc.tokens_per_image(*img.shape[:2]) for img in images)
    assert proc.n_visual_tokens(ours) == expected == int((ours["mm_token_type_ids"] == 1).sum())


def test_video_patchifier_reproduces_image_patches_and_temporal_order(models, face):
    proc = models["qwen2_5_vl"].processor
    img = face[::3, ::3]
    size = proc._size()
    single = proc.image_processor([img], size=size, input_data_format="channels_last", return_tensors="np")
    _, gh, gw = single["image_grid_thw"][0]
    # a "video" of the same frame twice is the image (HF repeats an image along the temporal patch)
    frames = proc.image_processor([img, img], size=size, input_data_format="channels_last", return_tensors="np")
    video = frame_patches_to_video(frames["pixel_values"], (gh, gw), 2, channels=3, patch_size=14, merge_size=2,
                                   temporal_patch_size=2)
    assert np.array_equal(video, single["pixel_values"])
    # distinct frames: in each patch, the temporal slot t holds frame t's pixels
    x = np.stack([np.full((3, 28, 56), t, np.float32) for t in range(3)])  # 3 frames -> padded to 4
    patches, grid = patchify_video(x, 14, 2, 2)
    assert grid == (2, 2, 4)
    per = patches.reshape(2, 8, 3, 2, 14, 14)  # (gt, patches, C, tps, ps, ps)
    assert (per[0, :, :, 0] == 0).all() and (per[0, :, :, 1] == 1).all()
    assert (per[1, :, :, 0] == 2).all() and (per[1, :, :, 1] == 2).all()  # last frame repeated


@pytest.mark.parametrize("family", FAMILIES)
def test_video_input_encodes_and_generates(models, face, family):
    vlm = models[family]
    clip = np.stack([face[::4, ::4]] * 5)
    messages = [{"role": "user", "content": [{"type": "video", "video": clip, "fps": 10.0},
                                             {"type": "text", "text": QUESTION}]}]
    enc = vlm.encode(messages)
    t, h, w = enc["video_grid_thw"][0].tolist()
    assert t == 3  # 5 frames padded to 6, two per temporal patch
    assert vlm.n_visual_tokens(enc) == t * h * w // 4 == int((enc["mm_token_type_ids"] == 2).sum())
    assert enc["pixel_values_videos"].shape[0] == t * h * w
    text = vlm.tokenizer.decode(enc["input_ids"][0])
    if family == "qwen3_vl":
        # frames 0..4 at 10 fps, padded to 6: patches average (0, .1), (.2, .3), (.4, .4) seconds
        assert text.count(" seconds>") == 3 and "<0.4 seconds>" in text
    else:
        assert torch.allclose(enc["second_per_grid_ts"], torch.tensor([0.2]))
    assert isinstance(vlm.generate(messages, max_new_tokens=3), str)


@pytest.mark.skipif(not torchvision_available(), reason="torchvision is not installed: AutoProcessor path unavailable")
@pytest.mark.parametrize("family", FAMILIES)
def test_transformers_backend_matches_numpy_backend(tiny_dirs, face, family):
    # sizes that need no resize (multiples of 28/32 within max_pixels) so PIL and torchvision agree
    side = 28 * 6 if family == "qwen2_5_vl" else 32 * 6
    img = np.ascontiguousarray(face[:side, :side])
    messages = [{"role": "user", "content": [{"type": "image", "image": img}, {"type": "text", "text": QUESTION}]}]
    a = VLProcessor.from_pretrained(str(tiny_dirs[family]), family=family, backend="numpy")(messages)
    b = VLProcessor.from_pretrained(str(tiny_dirs[family]), family=family, backend="transformers")(messages)
    for key in ("input_ids", "attention_mask", "mm_token_type_ids", "image_grid_thw"):
        assert torch.equal(a[key], b[key]), key
    assert torch.allclose(a["pixel_values"], b["pixel_values"], atol=1e-5)


def test_bad_messages_raise_input_errors(face):
    with pytest.raises(InputError, match="uint8"):
        parse_messages([{"role": "user", "content": [{"type": "image", "image": face.astype(np.float32)}]}])
    with pytest.raises(InputError, match="reserved token"):
        parse_messages([{"role": "user", "content": "look at <|image_pad|> this"}])
    with pytest.raises(InputError, match="role"):
        parse_messages([{"role": "robot", "content": "hi"}])
    with pytest.raises(InputError, match="at least"):
        parse_messages([{"role": "user", "content": [{"type": "image", "image": face[:4, :4]}]}])
    assert issubclass(InputError, ValueError)


# -- model: inference ---------------------------------------------------------------------------


@pytest.mark.parametrize("family", FAMILIES)
def test_generate_two_images_and_stream_matches(models, face, family):
    vlm = models[family]
    messages = two_image_messages(face)
    enc = vlm.encode(messages)
    assert enc["image_grid_thw"].shape == (2, 3)
    assert vlm.n_visual_tokens(enc) == int(enc["image_grid_thw"].prod(-1).sum()) // 4
    text = vlm.generate(messages, max_new_tokens=10)
    assert isinstance(text, str) and text == vlm.generate(messages, max_new_tokens=10)  # greedy is repeatable
    pieces = list(vlm.stream(messages, max_new_tokens=10))
    assert "".join(pieces) == text
    samples = vlm.sample(messages, 3, max_new_tokens=6)
    assert len(samples) == 3 and all(isinstance(s, str) for s in samples)


def test_describe_and_attributes(models):
    vlm = models["qwen2_5_vl"]
    assert vlm.describe().startswith("Qwen2.5-VL tiny-local, cpu fp32")
    assert models["qwen3_vl"].describe().startswith("Qwen3-VL tiny-local")
    assert vlm.family == "qwen2_5_vl" and vlm.device == torch.device("cpu") and vlm.dtype == torch.float32
    assert vlm.tokenizer is vlm.processor.tokenizer
    assert vlm.model.training is False


def test_config_pixel_limit_sets_visual_tokens(tiny_dirs, face):
    cfg = VLMConfig(model=str(tiny_dirs["qwen2_5_vl"]), max_pixels=112 * 112, device="cpu")
    vlm = QwenVL.from_pretrained(str(tiny_dirs["qwen2_5_vl"]), config=cfg)
    square = np.ascontiguousarray(face[:224, 100:324])
    enc = vlm.encode([{"role": "user", "content": [{"type": "image", "image": square}, {"type": "text", "text": "?"}]}])
    assert vlm.n_visual_tokens(enc) == (112 // 28) ** 2  # 112x112 -> 8x8 patches -> 4x4 merged tokens
    assert vlm.config.max_pixels == 112 * 112 and vlm.processor.max_pixels == 112 * 112


# -- model: training encoding -------------------------------------------------------------------


@pytest.mark.parametrize("family", FAMILIES)
def test_training_encoding_masks_all_but_answer(models, face, family):
    vlm = models[family]
    messages = two_image_messages(face)
    answer = "The action unit present is: lip corner puller. Therefore, the fine-grained expression class is happiness."
    ex = vlm.encode_for_training(messages, answer)
    ids, labels = ex["input_ids"][0], ex["labels"][0]
    prompt = vlm.encode(messages)["input_ids"][0]
    n = len(prompt)
    assert torch.equal(ids[:n], prompt)  # prompt is an exact prefix
    assert (labels[:n] == IGNORE_INDEX).all()
    supervised = labels != IGNORE_INDEX
    assert vlm.tokenizer.decode(ids[supervised]) == answer + "<|im_end|>"
    assert int(supervised.nonzero()[-1]) < len(ids) - 1  # the template's trailing newline is not taught
    assert ex["labels"][0, supervised].tolist() == ids[supervised].tolist()
    for key in ("attention_mask", "mm_token_type_ids", "pixel_values", "image_grid_thw"):
        assert key in ex
    # batch of two of different lengths: right padding, pad labels ignored, pixels concatenated
    short = vlm.encode_for_training([{"role": "user", "content": [{"type": "image", "image": face[::8, ::8]},
                                                                  {"type": "text", "text": QUESTION}]}], "positive")
    batch = vlm.collate([ex, short])
    width = max(len(ids), short["input_ids"].shape[1])
    assert batch["input_ids"].shape == batch["labels"].shape == batch["attention_mask"].shape == (2, width)
    pad = short["input_ids"].shape[1]
    assert (batch["attention_mask"][1, pad:] == 0).all() and (batch["labels"][1, pad:] == IGNORE_INDEX).all()
    assert batch["image_grid_thw"].shape == (3, 3)
    assert batch["pixel_values"].shape[0] == ex["pixel_values"].shape[0] + short["pixel_values"].shape[0]
    loss = vlm.model(**batch).loss
    assert torch.isfinite(loss)


def test_training_encoding_rejects_empty_answer(models, face):
    with pytest.raises(InputError):
        models["qwen2_5_vl"].encode_for_training(two_image_messages(face), "  ")


# -- model: loading errors ----------------------------------------------------------------------


def test_bad_model_sources_raise_model_load_error(tmp_path, monkeypatch):
    import huggingface_hub.constants

    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", True)
    (tmp_path / "empty").mkdir()
    (tmp_path / "file.bin").write_bytes(b"x")
    cases = {
        str(tmp_path / "missing"): "does not exist",
        str(tmp_path / "empty"): "no config.json",
        str(tmp_path / "file.bin"): "is a file",
        "nobody-mevqa/not-a-model-7B": "not fetchable",
    }
    for source, message in cases.items():
        with pytest.raises(ModelLoadError, match=message) as info:
            QwenVL.from_pretrained(source)
        assert "\n" not in str(info.value)


def test_non_qwen_model_raises(tmp_path):
    (tmp_path / "config.json").write_text(json.dumps({"model_type": "gpt2"}))
    with pytest.raises(ModelLoadError, match="not Qwen-VL"):
        QwenVL.from_pretrained(str(tmp_path))


def test_broken_adapters_raise_model_load_error(tiny_dirs, tmp_path):
    model = str(tiny_dirs["qwen2_5_vl"])
    garbage = tmp_path / "garbage"
    garbage.mkdir()
    (garbage / "adapter_config.json").write_text("{not json")
    (garbage / "adapter_model.safetensors").write_bytes(b"\0" * 16)
    wrong = tmp_path / "wrong"
    wrong.mkdir()
    (wrong / "adapter_config.json").write_text(json.dumps({"peft_type": "LORA", "r": "eight", "target_modules": 3}))
    (wrong / "adapter_model.safetensors").write_bytes(b"not safetensors")
    cases = {str(tmp_path / "nope"): "does not exist", str(garbage): "not valid JSON", str(wrong): "cannot apply adapter"}
    for adapter, message in cases.items():
        with pytest.raises(ModelLoadError, match=message) as info:
            QwenVL.from_pretrained(model, adapter=adapter)
        assert "\n" not in str(info.value)


def test_4bit_loads_and_generates_on_cpu(tiny_dirs, face):
    import bitsandbytes as bnb

    vlm = QwenVL.from_pretrained(str(tiny_dirs["qwen2_5_vl"]), load_in_4bit=True, device="cpu")
    assert ", 4-bit, cpu fp32" in vlm.describe()
    assert isinstance(vlm.model.model.language_model.layers[0].self_attn.q_proj, bnb.nn.Linear4bit)
    assert isinstance(vlm.model.model.visual.blocks[0].attn.qkv, torch.nn.Linear)  # vision kept full precision
    assert isinstance(vlm.generate(two_image_messages(face), max_new_tokens=4), str)


# -- LoRA ---------------------------------------------------------------------------------------


def test_lora_target_regex_matches_expected_modules(models):
    import re

    for family, vlm in models.items():
        names = [n for n, _ in vlm.model.named_modules()]
        lm = [n for n in names if re.fullmatch(lora_target_modules(family), n)]
        assert len(lm) == 2 * 7  # 2 layers x (q, k, v, o, gate, up, down)
        full = [n for n in names if re.fullmatch(lora_target_modules(family, vision=True, merger=True), n)]
        assert len(full) == len(lm) + 2 * 2 + 2  # + vision qkv/proj per block + merger fc1/fc2
        assert not any("lm_head" in n or "embed" in n for n in full)


@pytest.mark.slow  # a few LoRA steps plus the peft import: seconds on a busy 2-core machine
@pytest.mark.parametrize("family", FAMILIES)
def test_lora_trains_saves_and_reloads_with_identical_logits(tiny_dirs, face, tmp_path, family):
    from peft import LoraConfig, get_peft_model

    vlm = QwenVL.from_pretrained(str(tiny_dirs[family]), device="cpu")
    base_model = vlm.model
    def messages(img):  # two small keyframes keep the few training steps fast
        return [{"role": "user", "content": [{"type": "image", "image": img[::4, ::4]},
                                             {"type": "image", "image": img[::8, ::8]},
                                             {"type": "text", "text": QUESTION}]}]

    batch = vlm.collate([
        vlm.encode_for_training(messages(face), "positive"),
        vlm.encode_for_training(messages(face[:, ::-1].copy()), "negative"),
    ])
    with torch.no_grad():
        base_logits = base_model(**batch).logits.clone()
    # lm_head trains too: with a frozen random head the tiny model's loss barely moves (the field notes in ARCHITECTURE.md)
    lora = LoraConfig(r=4, lora_alpha=8, target_modules=lora_target_modules(family, vision=True, merger=True),
                      modules_to_save=["lm_head"])
    peft_model = get_peft_model(base_model, lora)
    opt = torch.optim.AdamW([p for p in peft_model.parameters() if p.requires_grad], lr=1e-2)
    peft_model.train()
    losses = []
    for _ in range(5):
        loss = peft_model(**batch).loss
        loss.backward()
        opt.step()
        opt.zero_grad()
        losses.append(loss.item())
    assert losses[-1] < losses[0] * 0.8
    peft_model.eval()
    with torch.no_grad():
        trained = peft_model(**batch).logits
    out = tmp_path / "adapter"
    peft_model.save_pretrained(out)

    reloaded = QwenVL.from_pretrained(str(tiny_dirs[family]), adapter=str(out), device="cpu")
    assert f"+ adapter {out.name}" in reloaded.describe()
    with torch.no_grad():
        again = reloaded.model(**batch).logits
    assert torch.allclose(trained, again, atol=1e-5)
    assert not torch.allclose(base_logits, again, atol=1e-3)
    assert isinstance(reloaded.generate(messages(face), max_new_tokens=3), str)  # PeftModel.generate path


# -- issue 16: sampling that samples, no fp16 by default, one chat template ------------------------


def test_samples_differ_when_the_checkpoint_ships_top_k_1(tiny_dirs, face, tmp_path):
    """Qwen2.5-VL-7B-Instruct's generation_config.json carries top_k=1 (and top_p=0.001); transformers 5
    fills unset sampling fields from it, which made every sample the greedy answer."""
    import json
    import shutil

    folder = tmp_path / "topk1"
    shutil.copytree(tiny_dirs["qwen2_5_vl"], folder)
    gen = json.loads((folder / "generation_config.json").read_text())
    gen.update(top_k=1, top_p=0.001, temperature=0.1, do_sample=True, repetition_penalty=1.05)
    (folder / "generation_config.json").write_text(json.dumps(gen))
    vlm = QwenVL.from_pretrained(str(folder), device="cpu", config=VLMConfig(model=str(folder), temperature=1.0,
                                                                            top_p=1.0, seed=0))
    assert vlm.model.generation_config.top_k == 1
    samples = vlm.sample(two_image_messages(face), 6, max_new_tokens=8)
    assert len(set(samples)) > 1, samples  # random tiny weights: sampling over the full vocabulary varies


def test_auto_dtype_never_picks_fp16(monkeypatch):
    from mevqa.vlm.sources import resolve_dtype

    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda *a, **k: False)
    assert resolve_dtype("auto", torch.device("cuda")) == torch.float32  # Qwen overflows fp16
    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda *a, **k: True)
    assert resolve_dtype("auto", torch.device("cuda")) == torch.bfloat16
    assert resolve_dtype("auto", torch.device("cpu")) == torch.float32
    assert resolve_dtype("fp16", torch.device("cuda")) == torch.float16  # only when asked for


def test_both_processor_paths_read_the_processors_chat_template(tiny_dirs, tmp_path):
    """Qwen2.5-VL ships a tokenizer template and a processor template (chat_template.json) that differ;
    AutoProcessor reads the processor's, so the torchvision-free path must read the same one."""
    import json
    import shutil

    from mevqa.testing.tiny_model import QWEN2_5_VL_CHAT_TEMPLATE
    from mevqa.vlm.processing import processor_chat_template

    folder = tmp_path / "two_templates"
    shutil.copytree(tiny_dirs["qwen2_5_vl"], folder)
    processor_template = QWEN2_5_VL_CHAT_TEMPLATE.replace("You are a helpful assistant.", "PROCESSOR TEMPLATE")
    (folder / "chat_template.json").write_text(json.dumps({"chat_template": processor_template}))
    proc = VLProcessor.from_pretrained(str(folder), family="qwen2_5_vl", backend="numpy")
    assert proc.tokenizer.chat_template != processor_template
    assert proc.chat_template == processor_template == processor_chat_template(str(folder))
    assert "PROCESSOR TEMPLATE" in proc.render([{"role": "user", "content": "hi"}])
    if torchvision_available():  # the standard path reads the same file
        hf = VLProcessor.from_pretrained(str(folder), family="qwen2_5_vl", backend="transformers")
        assert hf.chat_template == processor_template


@pytest.mark.skipif(not torchvision_available(), reason="torchvision is not installed: AutoProcessor path unavailable")
@pytest.mark.parametrize("family", FAMILIES)
def test_standard_processor_matches_on_keyframes_and_flow_map(tiny_dirs, family):
    """Issue 16: the AutoProcessor path (every GPU user's) against the torchvision-free one on the real
    prompt: the demo clip's keyframes and flow map as ``build_messages`` renders them. Bit for bit."""
    from mevqa.answer.prompt import build_messages
    from mevqa.evidence.builder import compute_evidence
    from mevqa.io.demo import demo_clip

    messages = build_messages(compute_evidence(demo_clip()), QUESTION)
    a = VLProcessor.from_pretrained(str(tiny_dirs[family]), family=family, backend="numpy")(messages)
    b = VLProcessor.from_pretrained(str(tiny_dirs[family]), family=family, backend="transformers")(messages)
    assert set(a) == set(b) and int(a["image_grid_thw"].shape[0]) >= 4  # 3 keyframes + the flow map
    for key in a:
        assert a[key].dtype == b[key].dtype and torch.equal(a[key], b[key]), (
            key, float((a[key].double() - b[key].double()).abs().max()) if a[key].shape == b[key].shape else "shape")
