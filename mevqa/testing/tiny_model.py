"""A tiny, randomly initialised Qwen-VL that loads through the real transformers path.

Tests, the CI and the benchmarks need a Qwen-VL they can load with ``from_pretrained`` without any
download. :func:`build_tiny_model` writes one to a folder in a few seconds on CPU:

* the real architecture (``Qwen2_5_VLForConditionalGeneration`` or ``Qwen3VLForConditionalGeneration``)
  at toy size: hidden 64, 2 decoder layers, vision depth 2, random weights;
* a byte-level BPE tokenizer trained locally with ``tokenizers`` on the MEGC2025 question/answer text
  (a built-in corpus when the shared data folder is absent), with Qwen's special tokens and chat
  template, saved as a ``Qwen2Tokenizer``;
* the image processor config (``Qwen2VLImageProcessor``, patch 14 for Qwen2.5-VL, 16 for Qwen3-VL),
  the video processor config and ``processor_class`` entries, so transformers' ``AutoProcessor``
  loads the folder where torchvision is installed, just as it loads a hub checkpoint;
* ``generation_config.json`` (stop on ``<|im_end|>``) and ``mevqa_tiny.json`` saying what built it.

The weights are random: the model's answers are noise. It exists to exercise loading, input
building, generation, streaming and LoRA training end to end.
"""
from __future__ import annotations

import glob
import json
import os
from pathlib import Path

FAMILIES = ("qwen2_5_vl", "qwen3_vl")
from mevqa.vlm.config import TINY_MARKER

# Qwen's special tokens in Qwen's order; the first one also pads. Vision placeholders must exist
# for the model config's image/video token ids.
SPECIAL_TOKENS = (
    "<|endoftext|>",
    "<|im_start|>",
    "<|im_end|>",
    "<|object_ref_start|>",
    "<|object_ref_end|>",
    "<|box_start|>",
    "<|box_end|>",
    "<|quad_start|>",
    "<|quad_end|>",
    "<|vision_start|>",
    "<|vision_end|>",
    "<|vision_pad|>",
    "<|image_pad|>",
    "<|video_pad|>",
)

# Qwen2.5-VL-Instruct's chat template (as shipped on the hub): a default system prompt when the
# conversation has none, one <|vision_start|><|image_pad|><|vision_end|> per image.
QWEN2_5_VL_CHAT_TEMPLATE = (
    "{% set image_count = namespace(value=0) %}{% set video_count = namespace(value=0) %}"
    "{% for message in messages %}{% if loop.first and message['role'] != 'system' %}"
    "<|im_start|>system\nYou are a helpful assistant.<|im_end|>\n{% endif %}"
    "<|im_start|>{{ message['role'] }}\n"
    "{% if message['content'] is string %}{{ message['content'] }}<|im_end|>\n"
    "{% else %}{% for content in message['content'] %}"
    "{% if content['type'] == 'image' or 'image' in content or 'image_url' in content %}"
    "{% set image_count.value = image_count.value + 1 %}"
    "{% if add_vision_id %}Picture {{ image_count.value }}: {% endif %}"
    "<|vision_start|><|image_pad|><|vision_end|>"
    "{% elif content['type'] == 'video' or 'video' in content %}"
    "{% set video_count.value = video_count.value + 1 %}"
    "{% if add_vision_id %}Video {{ video_count.value }}: {% endif %}"
    "<|vision_start|><|video_pad|><|vision_end|>"
    "{% elif 'text' in content %}{{ content['text'] }}{% endif %}{% endfor %}<|im_end|>\n"
    "{% endif %}{% endfor %}"
    "{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}"
)

# Qwen3-VL-Instruct's template without the tool-calling branches: no default system prompt.
QWEN3_VL_CHAT_TEMPLATE = (
    "{%- set image_count = namespace(value=0) -%}{%- set video_count = namespace(value=0) -%}"
    "{%- macro render_content(content) -%}"
    "{%- if content is string -%}{{- content -}}"
    "{%- else -%}{%- for item in content -%}"
    "{%- if item['type'] == 'image' or 'image' in item or 'image_url' in item -%}"
    "{%- set image_count.value = image_count.value + 1 -%}"
    "{%- if add_vision_id -%}Picture {{ image_count.value }}: {% endif -%}"
    "<|vision_start|><|image_pad|><|vision_end|>"
    "{%- elif item['type'] == 'video' or 'video' in item -%}"
    "{%- set video_count.value = video_count.value + 1 -%}"
    "{%- if add_vision_id -%}Video {{ video_count.value }}: {% endif -%}"
    "<|vision_start|><|video_pad|><|vision_end|>"
    "{%- elif 'text' in item -%}{{- item['text'] -}}{%- endif -%}"
    "{%- endfor -%}{%- endif -%}"
    "{%- endmacro -%}"
    "{%- for message in messages -%}"
    "{{- '<|im_start|>' + message['role'] + '\n' -}}{{- render_content(message['content']) -}}"
    "{{- '<|im_end|>\n' -}}"
    "{%- endfor -%}"
    "{%- if add_generation_prompt -%}{{- '<|im_start|>assistant\n' -}}{%- endif -%}"
)

CHAT_TEMPLATES = {"qwen2_5_vl": QWEN2_5_VL_CHAT_TEMPLATE, "qwen3_vl": QWEN3_VL_CHAT_TEMPLATE}
PROCESSOR_CLASSES = {"qwen2_5_vl": "Qwen2_5_VLProcessor", "qwen3_vl": "Qwen3VLProcessor"}
VIDEO_PROCESSOR_CLASSES = {"qwen2_5_vl": "Qwen2VLVideoProcessor", "qwen3_vl": "Qwen3VLVideoProcessor"}

# Built-in corpus: the MEGC2025 answer vocabulary and question templates, so the tokenizer has
# sensible merges even where /work/shared is absent (a user's machine, the CI).
AU_NAMES = (
    "lid tightener", "brow lowerer", "lip corner puller", "chin raiser", "inner brow raiser", "dimpler",
    "outer brow raiser", "upper lip raiser", "lip corner depressor", "upper lid raiser", "nose wrinkler",
    "cheek raiser", "eye closure", "lip stretcher", "jaw drop", "lips part", "lip pressor", "jaw clencher",
    "neck tightener", "eyes left", "nostril compress", "tilt right", "lip tightener", "nostril dilater",
    "lower lip depressor",
)
FINE_LABELS = ("anger", "contempt", "disgust", "fear", "happiness", "repression", "sadness", "surprise", "others")
COARSE_OF_FINE = {
    "anger": "negative", "contempt": "negative", "disgust": "negative", "fear": "negative",
    "sadness": "negative", "repression": "negative", "happiness": "positive", "surprise": "surprise",
    "others": "others",
}
BUILTIN_SENTENCES = (
    "You are a helpful assistant.",
    "You are an expert in facial micro-expressions and the Facial Action Coding System.",
    "The frames show the onset, the apex and the offset of a facial micro-expression.",
    "The last image is the optical flow from onset to apex with head motion removed.",
    "Answer with one word.", "Answer with the action unit names, comma separated.",
    "Which side of the face moved?", "The left brow moved up slightly.",
    "Evidence: a micro-expression was spotted from frame 12 to frame 31 with apex at frame 20.",
    "Detected action units: AU4 brow lowerer (both sides, intensity 0.4), AU7 lid tightener (left).",
    "yes", "no", "left", "right", "both", "positive", "negative", "surprise",
)
# The MEGC2025 files kept with the tests (a source checkout); MEVQA_MEGC_DIR points elsewhere.
MEGC_DIR = Path(os.environ.get("MEVQA_MEGC_DIR", Path(__file__).resolve().parents[2] / "tests" / "data" / "megc2025"))


class TinyModelError(ValueError):
    """The tiny model cannot be built as asked (unknown family, unwritable folder)."""


def builtin_corpus() -> list[str]:
    """MEGC question templates filled with the known labels and AU names, plus a few sentences."""
    lines = list(BUILTIN_SENTENCES)
    lines += ["What is the coarse expression class?", "What is the fine-grained expression class?",
              "What is the action unit?", "What are the action units?"]
    for au in AU_NAMES:
        lines.append(f"Is the action unit {au} shown on the face?")
        lines.append(f"Is the action unit {au} located on the left or right face?")
    for fine, coarse in COARSE_OF_FINE.items():
        au = AU_NAMES[len(fine) % len(AU_NAMES)]
        lines.append(
            f"The action unit present is: {au}. Therefore, the fine-grained expression class is {fine}, "
            f"and the coarse expression class is {coarse}."
        )
    lines += list(AU_NAMES) + list(FINE_LABELS)
    return lines


def megc_corpus(folder: Path = MEGC_DIR, limit: int = 4000) -> list[str]:
    """Distinct questions and answers from the MEGC2025 JSONL files, if the folder exists."""
    texts: set[str] = set()
    for path in sorted(glob.glob(str(Path(folder) / "*.jsonl"))):
        with open(path, encoding="utf-8") as fh:
            for line in fh:
                try:
                    row = json.loads(line)
                except json.JSONDecodeError:
                    continue  # a damaged line must not stop a test-model build
                for key in ("question", "answer"):
                    if isinstance(row.get(key), str) and row[key].strip():
                        texts.add(row[key].strip())
                if len(texts) >= limit:
                    return sorted(texts)
    return sorted(texts)


def train_tokenizer(corpus: list[str], vocab_size: int = 1024):
    """Train a byte-level BPE with Qwen2's pre-tokenizer and wrap it as a ``Qwen2Tokenizer``.

    The pre-tokenizer must be the one ``Qwen2Tokenizer`` rebuilds on load (Qwen's split regex, then
    byte-level), or the learned merges would not apply the same way after ``from_pretrained``.
    """
    from tokenizers import Regex, Tokenizer, models, normalizers, pre_tokenizers, trainers
    from transformers import Qwen2Tokenizer
    from transformers.models.qwen2.tokenization_qwen2 import PRETOKENIZE_REGEX

    # 1. learn merges on the corpus, starting from all 256 byte symbols (every input is encodable)
    bpe = Tokenizer(models.BPE())
    bpe.normalizer = normalizers.NFC()
    bpe.pre_tokenizer = pre_tokenizers.Sequence([
        pre_tokenizers.Split(Regex(PRETOKENIZE_REGEX), behavior="isolated", invert=False),
        pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False),
    ])
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        special_tokens=[SPECIAL_TOKENS[0]],
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    bpe.train_from_iterator(corpus, trainer)
    state = json.loads(bpe.to_str())
    vocab: dict[str, int] = dict(state["model"]["vocab"])
    merges = [tuple(m) if isinstance(m, list) else tuple(m.split(" ")) for m in state["model"]["merges"]]

    # 2. append the remaining special tokens at fixed ids after the learned vocabulary, like Qwen
    for token in SPECIAL_TOKENS:
        vocab.setdefault(token, len(vocab))

    # 3. wrap as the tokenizer class real Qwen-VL checkpoints use
    tokenizer = Qwen2Tokenizer(
        vocab=vocab,
        merges=merges,
        eos_token="<|im_end|>",
        pad_token="<|endoftext|>",
        unk_token=None,
        extra_special_tokens=list(SPECIAL_TOKENS[1:]),
    )
    return tokenizer


def _model_config(family: str, token_ids: dict[str, int], vocab_size: int):
    """Toy-size config with the traps of the field notes in ARCHITECTURE.md handled (rope_parameters, mrope)."""
    ids = dict(
        image_token_id=token_ids["<|image_pad|>"],
        video_token_id=token_ids["<|video_pad|>"],
        vision_start_token_id=token_ids["<|vision_start|>"],
        vision_end_token_id=token_ids["<|vision_end|>"],
    )
    text = dict(
        vocab_size=vocab_size,
        hidden_size=64,
        intermediate_size=128,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=2,
        max_position_embeddings=4096,
        bos_token_id=None,
        eos_token_id=token_ids["<|im_end|>"],
        pad_token_id=token_ids["<|endoftext|>"],
        tie_word_embeddings=False,
    )
    if family == "qwen2_5_vl":
        from transformers import Qwen2_5_VLConfig

        # head_dim = 64 / 4 = 16, so mrope_section (t, h, w) must sum to 8
        text["rope_parameters"] = {"rope_type": "default", "rope_theta": 1_000_000.0, "mrope_section": [2, 3, 3]}
        vision = dict(
            depth=2, hidden_size=64, intermediate_size=128, num_heads=4, out_hidden_size=64,
            patch_size=14, spatial_merge_size=2, temporal_patch_size=2, window_size=112,
            fullatt_block_indexes=[1], tokens_per_second=2,
        )
        return Qwen2_5_VLConfig(text_config=text, vision_config=vision, tie_word_embeddings=False, **ids)
    from transformers import Qwen3VLConfig

    text["head_dim"] = 16
    text["rope_parameters"] = {
        "rope_type": "default", "rope_theta": 5_000_000.0, "mrope_section": [2, 3, 3], "mrope_interleaved": True,
    }
    # Qwen3-VL: patch 16, learned position embedding grid, deepstack taps on vision layers
    vision = dict(
        depth=2, hidden_size=64, intermediate_size=128, num_heads=4, out_hidden_size=64,
        patch_size=16, spatial_merge_size=2, temporal_patch_size=2, num_position_embeddings=256,
        deepstack_visual_indexes=[0],
    )
    return Qwen3VLConfig(text_config=text, vision_config=vision, tie_word_embeddings=False, **ids)


def _image_processor(family: str):
    """The numpy/PIL image processor with the family's patch size and normalisation."""
    from transformers.models.qwen2_vl.image_processing_pil_qwen2_vl import Qwen2VLImageProcessorPil

    if family == "qwen2_5_vl":
        return Qwen2VLImageProcessorPil(min_pixels=56 * 56, max_pixels=28 * 28 * 1280, patch_size=14)
    return Qwen2VLImageProcessorPil(
        min_pixels=32 * 32 * 4, max_pixels=32 * 32 * 1280, patch_size=16,
        image_mean=[0.5, 0.5, 0.5], image_std=[0.5, 0.5, 0.5],
    )


def _video_processor_dict(family: str, image_processor) -> dict:
    """The video processor config, written as JSON: its class needs torchvision to be constructed."""
    return {
        "video_processor_type": VIDEO_PROCESSOR_CLASSES[family],
        "processor_class": PROCESSOR_CLASSES[family],
        "do_convert_rgb": True, "do_normalize": True, "do_rescale": True, "do_resize": True,
        "do_sample_frames": False,
        "image_mean": list(image_processor.image_mean), "image_std": list(image_processor.image_std),
        "merge_size": 2, "patch_size": int(image_processor.patch_size), "temporal_patch_size": 2,
        "resample": 3, "rescale_factor": 1 / 255,
        "size": {"shortest_edge": 128 * 28 * 28 if family == "qwen2_5_vl" else 128 * 32 * 32,
                 "longest_edge": 28 * 28 * 768 if family == "qwen2_5_vl" else 32 * 32 * 768},
    }


def _patch_json(path: Path, **updates) -> None:
    data = json.loads(path.read_text(encoding="utf-8")) if path.exists() else {}
    data.update(updates)
    path.write_text(json.dumps(data, indent=2, sort_keys=True) + "\n", encoding="utf-8")


def build_tiny_model(out_dir: str | os.PathLike, *, family: str = "qwen2_5_vl", seed: int = 0) -> Path:
    """Write a tiny random Qwen2.5-VL or Qwen3-VL (model, tokenizer, processor configs) to ``out_dir``.

    The folder loads with transformers' own classes (``from_pretrained``) and with
    :meth:`mevqa.vlm.model.QwenVL.from_pretrained`. The same ``seed`` gives the same weights.
    Returns the folder's path.
    """
    import torch
    from transformers import GenerationConfig, Qwen2_5_VLForConditionalGeneration, Qwen3VLForConditionalGeneration

    if family not in FAMILIES:
        raise TinyModelError(f"unknown family {family!r}: choose one of {', '.join(FAMILIES)}")
    out = Path(out_dir).expanduser()
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise TinyModelError(f"cannot create {out}: {exc.strerror or exc}") from None

    # 1. tokenizer on the MEGC vocabulary (shared data when present) with Qwen's special tokens
    tokenizer = train_tokenizer(builtin_corpus() + megc_corpus())
    tokenizer.chat_template = CHAT_TEMPLATES[family]
    token_ids = {t: tokenizer.convert_tokens_to_ids(t) for t in SPECIAL_TOKENS}
    vocab_size = -(-len(tokenizer) // 64) * 64  # padded to a multiple of 64, as Qwen pads its vocab

    # 2. random weights from a local generator, so the caller's global RNG state is left alone
    config = _model_config(family, token_ids, vocab_size)
    model_cls = Qwen2_5_VLForConditionalGeneration if family == "qwen2_5_vl" else Qwen3VLForConditionalGeneration
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = model_cls(config).eval()
    model.generation_config = GenerationConfig(
        eos_token_id=[token_ids["<|im_end|>"], token_ids["<|endoftext|>"]],
        pad_token_id=token_ids["<|endoftext|>"],
        do_sample=False,
    )

    # 3. save everything with the ecosystem's own save_pretrained
    model.save_pretrained(out)
    _save_processor(out, tokenizer, family, seed)
    return out


def _save_processor(out: Path, tokenizer, family: str, seed: int) -> None:
    """Tokenizer, image/video processor configs, chat template and the marker (written last)."""
    tokenizer.save_pretrained(out)
    image_processor = _image_processor(family)
    image_processor.save_pretrained(out)

    # 4. the pieces AutoProcessor looks for (it needs torchvision, so they are written as JSON)
    processor_class = PROCESSOR_CLASSES[family]
    (out / "video_preprocessor_config.json").write_text(
        json.dumps(_video_processor_dict(family, image_processor), indent=2, sort_keys=True) + "\n", encoding="utf-8"
    )
    _patch_json(out / "preprocessor_config.json", processor_class=processor_class)
    _patch_json(out / "tokenizer_config.json", processor_class=processor_class)
    _patch_json(out / "processor_config.json", processor_class=processor_class)
    if not (out / "chat_template.jinja").exists():
        (out / "chat_template.jinja").write_text(CHAT_TEMPLATES[family], encoding="utf-8")
    (out / TINY_MARKER).write_text(
        json.dumps({"built_by": "mevqa.testing.tiny_model", "family": family, "seed": seed, "name": "tiny-local"}, indent=2)
        + "\n",
        encoding="utf-8",
    )


def build_random_model(out_dir: str | os.PathLike, config_json: str | os.PathLike, *, dtype: str = "bfloat16",
                       device: str = "cpu", seed: int = 0) -> Path:
    """A real-size Qwen-VL with random weights from a published ``config.json`` (for GPU benchmarks
    where no hub is reachable): the architecture and sizes as published, the tiny model's tokenizer
    (its special-token ids are written into the config; ``vocab_size`` stays as published, so the
    embedding and lm_head keep their real size). Prompts tokenise into more, shorter tokens than with
    Qwen's own 151k vocabulary; visual tokens, the bulk of a prompt, are unchanged."""
    import torch
    from transformers import (AutoConfig, GenerationConfig, Qwen2_5_VLForConditionalGeneration,
                              Qwen3VLForConditionalGeneration)

    values = {k: v for k, v in json.loads(Path(config_json).read_text(encoding="utf-8")).items() if not k.startswith("_")}
    family = values.get("model_type")
    if family not in FAMILIES:
        raise TinyModelError(f"{config_json}: model_type {family!r} is not one of {', '.join(FAMILIES)}")
    out = Path(out_dir).expanduser()
    out.mkdir(parents=True, exist_ok=True)
    tokenizer = train_tokenizer(builtin_corpus() + megc_corpus())
    tokenizer.chat_template = CHAT_TEMPLATES[family]
    ids = {t: tokenizer.convert_tokens_to_ids(t) for t in SPECIAL_TOKENS}
    values.update(image_token_id=ids["<|image_pad|>"], video_token_id=ids["<|video_pad|>"],
                  vision_start_token_id=ids["<|vision_start|>"], vision_end_token_id=ids["<|vision_end|>"])
    values["text_config"].update(bos_token_id=None, eos_token_id=ids["<|im_end|>"], pad_token_id=ids["<|endoftext|>"])
    config = AutoConfig.for_model(**values)
    model_cls = Qwen2_5_VLForConditionalGeneration if family == "qwen2_5_vl" else Qwen3VLForConditionalGeneration
    with torch.random.fork_rng(devices=[]), torch.device(device):
        torch.manual_seed(seed)
        model = model_cls._from_config(config, dtype=getattr(torch, dtype)).eval()
    model.generation_config = GenerationConfig(eos_token_id=[ids["<|im_end|>"], ids["<|endoftext|>"]],
                                               pad_token_id=ids["<|endoftext|>"], do_sample=False)
    model.save_pretrained(out)
    del model
    _save_processor(out, tokenizer, family, seed)
    return out


def main_tiny_model(out_dir: str | os.PathLike, family: str = "qwen2_5_vl") -> int:
    """CLI body of ``mevqa tiny-model OUT_DIR [--family ...]``: build, print the folder, return 0."""
    path = build_tiny_model(out_dir, family=family)
    print(path)
    return 0
