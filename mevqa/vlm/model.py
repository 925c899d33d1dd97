"""Qwen-VL loading, prompting and training-time encoding through transformers' own classes.

:class:`QwenVL` wraps a Qwen2-VL / Qwen2.5-VL / Qwen3-VL checkpoint (hub id or local folder), an
optional PEFT (LoRA) adapter and optional bitsandbytes 4/8-bit quantisation, together with the
:class:`~mevqa.vlm.processing.VLProcessor` that turns chat messages into model inputs. Inference
(:meth:`QwenVL.generate`, :meth:`QwenVL.stream`) and LoRA training (:meth:`QwenVL.encode_for_training`,
:meth:`QwenVL.collate`) share that one encoding, so a model is trained on exactly what it is later
shown. Nothing here runs remote code: ``trust_remote_code`` is always False.
"""
from __future__ import annotations

import threading
from dataclasses import replace
from pathlib import Path
from typing import Any, Iterator, Sequence

import torch

from mevqa.vlm.config import VLMConfig
from mevqa.vlm.processing import (
    FAMILY_NAMES,
    FAMILY_OF_MODEL_TYPE,
    InputError,
    VLProcessor,
    _check_text,
    parse_messages,
)
from mevqa.vlm.sources import (  # noqa: F401  (re-exported: callers import these from mevqa.vlm.model)
    DTYPE_NAMES,
    ModelLoadError,
    check_adapter,
    check_model_source,
    display_name,
    lora_target_modules,
    one_line,
    resolve_device,
    resolve_dtype,
)

# model_type in config.json -> the transformers class that loads it
MODEL_CLASSES = {
    "qwen2_vl": "Qwen2VLForConditionalGeneration",
    "qwen2_5_vl": "Qwen2_5_VLForConditionalGeneration",
    "qwen3_vl": "Qwen3VLForConditionalGeneration",
    "qwen3_vl_moe": "Qwen3VLMoeForConditionalGeneration",
}
IGNORE_INDEX = -100  # label value the loss skips (torch CrossEntropyLoss default)


class TrainingEncodingError(ValueError):
    """A conversation whose prompt does not tokenise as a prefix of prompt + answer (a template issue)."""



class QwenVL:
    """A loaded Qwen-VL (+ optional LoRA adapter) with its input processor.

    Attributes used by the training code: ``model`` (the transformers or PEFT model), ``tokenizer``,
    ``processor`` (:class:`VLProcessor`), ``family`` ("qwen2_5_vl", "qwen3_vl", ...), ``device``,
    ``dtype``, ``config`` (:class:`VLMConfig`).
    """

    def __init__(self, model, processor: VLProcessor, *, family: str, device: torch.device, dtype: torch.dtype,
                 config: VLMConfig, name: str | None = None) -> None:
        self.model = model
        self.processor = processor
        self.tokenizer = processor.tokenizer
        self.family = family
        self.device = device
        self.dtype = dtype
        self.config = config
        self.name = name or config.model
        im_end = self.tokenizer.convert_tokens_to_ids("<|im_end|>")
        self.im_end_id = im_end
        stops = [im_end]
        eos = getattr(getattr(model, "generation_config", None), "eos_token_id", None)
        for token_id in eos if isinstance(eos, (list, tuple)) else [eos]:
            if token_id is not None and token_id not in stops:
                stops.append(int(token_id))
        self.stop_ids = stops
        self.pad_id = self.tokenizer.pad_token_id if self.tokenizer.pad_token_id is not None else stops[-1]

    # -- loading ------------------------------------------------------------------------------

    @classmethod
    def from_pretrained(cls, model: str | None = None, *, adapter: str | None = None, load_in_4bit: bool = False,
                        load_in_8bit: bool = False, device: str = "auto", dtype: str = "auto",
                        config: VLMConfig | None = None) -> "QwenVL":
        """Load a Qwen-VL checkpoint (hub id or folder), optionally quantised and with a LoRA adapter.

        ``config`` supplies every other setting (pixel limits, generation defaults); the keyword
        arguments override it where given (an adapter, 4/8-bit, a device or dtype other than auto).
        Any failure is a :class:`ModelLoadError` with a one-line message.
        """
        # 1. one config holding every setting; explicit arguments win over the config's values
        base = config or VLMConfig()
        cfg = replace(
            base,
            model=model or base.model,
            adapter=adapter if adapter is not None else base.adapter,
            load_in_4bit=load_in_4bit or base.load_in_4bit,
            load_in_8bit=load_in_8bit or base.load_in_8bit,
            device=device if device != "auto" else base.device,
            dtype=dtype if dtype != "auto" else base.dtype,
        )
        source = str(Path(cfg.model).expanduser()) if Path(cfg.model).expanduser().exists() else cfg.model

        # 2. the model's config: is it there, and is it a Qwen-VL? (the adapter is checked now too,
        #    so a broken adapter fails before gigabytes of weights are read)
        check_model_source(cfg.model)
        if cfg.adapter:
            check_adapter(cfg.adapter)
        from transformers import AutoConfig

        try:
            hf_config = AutoConfig.from_pretrained(source, trust_remote_code=False)
        except Exception as exc:
            raise ModelLoadError(
                f"cannot load {cfg.model!r}: not a local model folder and not fetchable from the hub "
                f"(offline or not cached?): {one_line(exc)}"
            ) from exc
        model_type = getattr(hf_config, "model_type", None)
        if model_type not in MODEL_CLASSES:
            raise ModelLoadError(
                f"{cfg.model} is a {model_type!r} model, not Qwen-VL (supported: {', '.join(MODEL_CLASSES)})"
            )
        family = FAMILY_OF_MODEL_TYPE[model_type]

        # 3. where and in what precision
        dev = resolve_device(cfg.device)
        torch_dtype = resolve_dtype(cfg.dtype, dev)
        load_kwargs: dict[str, Any] = {"dtype": torch_dtype, "device_map": {"": str(dev)}, "trust_remote_code": False}
        if cfg.attn_implementation:
            load_kwargs["attn_implementation"] = cfg.attn_implementation
        if cfg.load_in_4bit or cfg.load_in_8bit:
            load_kwargs["quantization_config"] = cls._quantization_config(cfg, torch_dtype)

        # 4. weights through transformers' own class for this model type
        import transformers

        model_cls = getattr(transformers, MODEL_CLASSES[model_type])
        try:
            hf_model = model_cls.from_pretrained(source, **load_kwargs)
        except Exception as exc:
            raise ModelLoadError(f"cannot load the weights of {cfg.model}: {one_line(exc)}") from exc

        # 5. the LoRA adapter, through PEFT
        if cfg.adapter:
            from peft import PeftModel

            try:
                hf_model = PeftModel.from_pretrained(hf_model, str(Path(cfg.adapter).expanduser()), is_trainable=False)
            except Exception as exc:
                raise ModelLoadError(f"cannot apply adapter {cfg.adapter}: {one_line(exc)}") from exc
        hf_model.eval()
        if cfg.seed is not None:
            # seeded once here, not per call: repeated samples for self-consistency must differ
            torch.manual_seed(cfg.seed)

        # 6. the processor (tokenizer, image processor, chat template) from the base model
        try:
            processor = VLProcessor.from_pretrained(
                source, family=family, min_pixels=cfg.min_pixels, max_pixels=cfg.max_pixels,
                backend=cfg.processor_backend,
            )
        except Exception as exc:
            raise ModelLoadError(f"cannot load the processor of {cfg.model}: {one_line(exc)}") from exc
        return cls(hf_model, processor, family=family, device=dev, dtype=torch_dtype, config=cfg,
                   name=display_name(cfg.model))

    @staticmethod
    def _quantization_config(cfg: VLMConfig, compute_dtype: torch.dtype):
        """bitsandbytes settings: NF4 + double quantisation for 4-bit (QLoRA), LLM.int8 for 8-bit."""
        try:
            import bitsandbytes  # noqa: F401
            from transformers import BitsAndBytesConfig
        except Exception as exc:
            raise ModelLoadError(f"4/8-bit loading needs bitsandbytes: {one_line(exc)}") from exc
        # lm_head stays full precision (as in QLoRA); the vision tower too unless asked otherwise
        skip = ["lm_head"] if cfg.quantize_vision else ["lm_head", "model.visual"]
        if cfg.load_in_4bit:
            return BitsAndBytesConfig(
                load_in_4bit=True, bnb_4bit_quant_type="nf4", bnb_4bit_use_double_quant=True,
                bnb_4bit_compute_dtype=compute_dtype, llm_int8_skip_modules=skip,
            )
        return BitsAndBytesConfig(load_in_8bit=True, llm_int8_skip_modules=skip)

    def save_pretrained(self, out_dir: str | Path) -> Path:
        """Save the model (only the adapter when it is a PEFT model), tokenizer and image processor."""
        out = Path(out_dir)
        out.mkdir(parents=True, exist_ok=True)
        self.model.save_pretrained(out)
        self.tokenizer.save_pretrained(out)
        self.processor.image_processor.save_pretrained(out)
        return out

    # -- inputs -------------------------------------------------------------------------------

    def _to_device(self, encoded: dict) -> dict:
        return {k: v.to(self.device) if isinstance(v, torch.Tensor) else v for k, v in encoded.items()}

    def encode(self, messages: Sequence[dict]) -> dict:
        """Model inputs for a conversation, ending with the assistant's turn to speak."""
        return self._to_device(self.processor(messages, add_generation_prompt=True))

    def n_visual_tokens(self, encoded: dict) -> int:
        """Image and video placeholder tokens in ``encoded`` (the bulk of a VQA prompt's length)."""
        return self.processor.n_visual_tokens(encoded)

    def encode_for_training(self, messages: Sequence[dict], answer: str) -> dict:
        """One supervised example: the conversation plus ``answer`` as the assistant's reply.

        Returns ``input_ids``, ``attention_mask``, ``mm_token_type_ids``, ``labels`` (batch of one) and
        the pixel tensors. ``labels`` is -100 everywhere except the answer's tokens and the closing
        ``<|im_end|>``, so the loss teaches the answer and when to stop, never the prompt. The prompt
        (rendered with the generation prompt, as at inference) must tokenise to an exact prefix of the
        full conversation, or the mask would be misplaced; otherwise :class:`TrainingEncodingError`.
        """
        if not isinstance(answer, str) or not answer.strip():
            raise InputError("answer must be a non-empty string")
        _check_text(answer, len(messages))
        # 1. render prompt (as inference sees it) and prompt + answer with the same media
        parsed = parse_messages(messages)
        prompt_text = self.processor._render(parsed.template, True)
        full_text = self.processor._render(parsed.template + [{"role": "assistant", "content": answer}], False)
        prompt, full = self.processor.encode_texts([prompt_text, full_text], parsed)
        p_ids, f_ids = prompt["input_ids"][0], full["input_ids"][0]
        n = len(p_ids)
        # 2. the prompt must be an exact token prefix, or the label mask would cut in the wrong place
        if len(f_ids) <= n or not torch.equal(f_ids[:n], p_ids):
            raise TrainingEncodingError(
                "the prompt's tokens are not a prefix of prompt + answer; the chat template renders the "
                "assistant turn differently from the generation prompt"
            )
        # 3. supervise the answer and the first <|im_end|> after it; the template's trailing newline is not
        ends = (f_ids[n:] == self.im_end_id).nonzero()
        if len(ends) == 0:
            raise TrainingEncodingError("the rendered answer has no closing <|im_end|>; check the chat template")
        stop = n + int(ends[0]) + 1
        labels = torch.full_like(full["input_ids"], IGNORE_INDEX)
        labels[0, n:stop] = full["input_ids"][0, n:stop]
        out = dict(full)
        out["labels"] = labels
        return out

    def collate(self, examples: Sequence[dict]) -> dict:
        """Batch :meth:`encode_for_training` outputs: pad right (pad id, mask 0, labels -100), concatenate pixels."""
        if not examples:
            raise InputError("collate needs at least one example")
        width = max(int(e["input_ids"].shape[-1]) for e in examples)
        pads = {"input_ids": self.pad_id, "attention_mask": 0, "labels": IGNORE_INDEX, "mm_token_type_ids": 0}
        batch: dict[str, torch.Tensor] = {}
        for key, value in pads.items():
            if not all(key in e for e in examples):
                continue
            rows = []
            for e in examples:
                row = e[key].reshape(-1)
                rows.append(torch.cat([row, row.new_full((width - len(row),), value)]))
            batch[key] = torch.stack(rows)
        # vision tensors are flat over all images of the batch, in order
        for key in ("pixel_values", "image_grid_thw", "pixel_values_videos", "video_grid_thw", "second_per_grid_ts"):
            parts = [e[key] for e in examples if key in e]
            if parts:
                batch[key] = torch.cat(parts, dim=0)
        return batch

    # -- generation ---------------------------------------------------------------------------

    def _generation_config(self, max_new_tokens: int | None, do_sample: bool, temperature: float | None,
                           num_return_sequences: int = 1):
        from transformers import GenerationConfig

        base = getattr(self.model, "generation_config", None)
        settings: dict[str, Any] = {
            "max_new_tokens": int(max_new_tokens or self.config.max_new_tokens),
            "do_sample": bool(do_sample),
            "eos_token_id": self.stop_ids,
            "pad_token_id": self.pad_id,
            "num_return_sequences": num_return_sequences,
            # Qwen's checkpoints ship a mild repetition penalty; keep it, it is part of their recipe
            "repetition_penalty": getattr(base, "repetition_penalty", 1.0) or 1.0,
        }
        if do_sample:
            # every sampling knob explicit: transformers 5 fills unset fields from the checkpoint's
            # generation_config.json, and Qwen2.5-VL-7B-Instruct ships top_k=1 (and top_p=0.001), which
            # turns sampling into greedy decoding and N "samples" into N copies of one answer
            settings.update(temperature=float(temperature or self.config.temperature), top_p=float(self.config.top_p),
                            top_k=int(self.config.top_k))
        return GenerationConfig(**settings)

    def _decode(self, ids: torch.Tensor) -> str:
        return self.tokenizer.decode(ids, skip_special_tokens=True).strip()

    @torch.inference_mode()
    def generate(self, messages: Sequence[dict], *, max_new_tokens: int | None = None, do_sample: bool = False,
                 temperature: float | None = None) -> str:
        """The assistant's reply to ``messages`` (greedy unless ``do_sample``)."""
        inputs = self.encode(messages)
        out = self.model.generate(**inputs, generation_config=self._generation_config(max_new_tokens, do_sample, temperature))
        return self._decode(out[0, inputs["input_ids"].shape[1]:])

    @torch.inference_mode()
    def sample(self, messages: Sequence[dict], n: int | None = None, *, max_new_tokens: int | None = None,
               temperature: float | None = None) -> list[str]:
        """``n`` sampled replies (default ``config.n_samples``) for self-consistency voting, one prefill."""
        n = int(n or self.config.n_samples)
        if n < 1:
            raise InputError(f"n must be at least 1, got {n}")
        inputs = self.encode(messages)
        gen = self._generation_config(max_new_tokens, True, temperature, num_return_sequences=n)
        out = self.model.generate(**inputs, generation_config=gen)
        start = inputs["input_ids"].shape[1]
        return [self._decode(row[start:]) for row in out]

    def stream(self, messages: Sequence[dict], *, max_new_tokens: int | None = None, do_sample: bool = False,
               temperature: float | None = None) -> Iterator[str]:
        """Yield the reply piece by piece as it is generated; the pieces join to :meth:`generate`'s text.

        Generation runs in a thread feeding transformers' ``TextIteratorStreamer``; an error in that
        thread is raised here once the stream ends.
        """
        from transformers import TextIteratorStreamer

        inputs = self.encode(messages)
        gen = self._generation_config(max_new_tokens, do_sample, temperature)
        streamer = TextIteratorStreamer(self.tokenizer, skip_prompt=True, skip_special_tokens=True)
        errors: list[BaseException] = []

        def run() -> None:
            try:
                with torch.inference_mode():
                    self.model.generate(**inputs, generation_config=gen, streamer=streamer)
            except BaseException as exc:  # surfaced in the caller's thread below
                errors.append(exc)
                streamer.end()

        thread = threading.Thread(target=run, name="qwenvl-stream", daemon=True)
        thread.start()
        # Match generate()'s strip(): drop leading whitespace, and hold trailing whitespace back until
        # more text follows it, so "".join(stream(...)) == generate(...).
        started, held = False, ""
        for piece in streamer:
            if not started:
                piece = piece.lstrip()
                if not piece:
                    continue
                started = True
            text = held + piece
            body = text.rstrip()
            held = text[len(body):]
            if body:
                yield body
        thread.join()
        if errors:
            raise errors[0]

    # -- reporting ----------------------------------------------------------------------------

    def describe(self) -> str:
        """One line, e.g. "Qwen2.5-VL tiny-local + adapter lora-v1, 4-bit, cpu fp32, numpy processor"."""
        parts = [f"{FAMILY_NAMES.get(self.family, self.family)} {self.name}"]
        if self.config.adapter:
            parts[0] += f" + adapter {Path(self.config.adapter).name}"
        if self.config.quantization:
            parts.append(self.config.quantization)
        parts.append(f"{self.device.type} {DTYPE_NAMES.get(self.dtype, str(self.dtype))}")
        parts.append(f"{self.processor.backend} processor")
        return ", ".join(parts)

    def __repr__(self) -> str:
        return f"QwenVL({self.describe()})"


