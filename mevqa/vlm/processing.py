"""Chat messages with images (and optionally video) -> Qwen-VL model inputs, with or without torchvision.

Qwen-VL takes a token sequence in which every image is a run of ``<|image_pad|>`` tokens, one per
merged 2x2 group of vision patches, plus the flattened patches themselves (``pixel_values``), each
image's patch grid (``image_grid_thw``) and a per-token modality map (``mm_token_type_ids``: 0 text,
1 image, 2 video) that the model needs to build its 3-D rotary positions.

transformers builds all this in ``Qwen2_5_VLProcessor`` / ``Qwen3VLProcessor``, but in 5.x these
cannot even be constructed without torchvision (the video processor is checked at construction),
and no CPU torchvision wheel works with the pinned CPU torch. :class:`VLProcessor` therefore has two
backends that produce the same tensors:

* ``"transformers"``: the standard ``AutoProcessor``, used wherever torchvision imports (GPU boxes);
* ``"numpy"``: the chat template, then ``Qwen2VLImageProcessorPil`` (PIL/numpy) for images, a numpy
  patchifier for video that reproduces HF's patch order, and the same ``<|image_pad|>`` expansion
  and modality map as ``ProcessorMixin.__call__``.

Messages follow the transformers chat format::

    [{"role": "system", "content": "You are ..."},
     {"role": "user", "content": [{"type": "image", "image": rgb_uint8_hxwx3},
                                  {"type": "text", "text": "What is the coarse expression class?"}]}]

and a video item is ``{"type": "video", "video": rgb_uint8_txhxwx3, "fps": 2.0}`` where ``fps`` is the
rate of the frames given (it sets Qwen2.5-VL's temporal positions and Qwen3-VL's timestamps).
"""
from __future__ import annotations

import importlib.util
import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from mevqa.vlm.patches import frame_patches_to_video, patchify_video, qwen3_timestamps  # noqa: F401  (re-exported)

FAMILY_OF_MODEL_TYPE = {
    "qwen2_vl": "qwen2_vl",
    "qwen2_5_vl": "qwen2_5_vl",
    "qwen3_vl": "qwen3_vl",
    "qwen3_vl_moe": "qwen3_vl",
}
FAMILY_NAMES = {"qwen2_vl": "Qwen2-VL", "qwen2_5_vl": "Qwen2.5-VL", "qwen3_vl": "Qwen3-VL"}
ROLES = ("system", "user", "assistant")
IMAGE_TOKEN = "<|image_pad|>"
VIDEO_TOKEN = "<|video_pad|>"
VISION_START = "<|vision_start|>"
VISION_END = "<|vision_end|>"
RESERVED_TOKENS = (IMAGE_TOKEN, VIDEO_TOKEN, VISION_START, VISION_END, "<|im_start|>", "<|im_end|>")
MIN_IMAGE_SIDE = 8
MAX_ASPECT = 200  # Qwen's smart_resize refuses more extreme aspect ratios


class InputError(ValueError):
    """Messages or images that cannot be turned into model inputs; the message says what to fix."""


def torchvision_available() -> bool:
    """True where torchvision is installed and imports with this torch."""
    if importlib.util.find_spec("torchvision") is None:
        return False
    try:  # a torchvision built for another torch is installed but fails to import
        import torchvision  # noqa: F401
    except Exception:
        return False
    return True


# ----------------------------------------------------------------------------------------------
# message checking


def _as_rgb(array: Any, what: str) -> np.ndarray:
    """A user image as contiguous uint8 HxWx3; PIL images and grey HxW arrays are converted."""
    if hasattr(array, "convert") and hasattr(array, "size"):  # PIL.Image
        array = np.asarray(array.convert("RGB"))
    if not isinstance(array, np.ndarray):
        raise InputError(f"{what} must be a numpy RGB uint8 array (H, W, 3), got {type(array).__name__}")
    if array.ndim == 2:
        array = np.repeat(array[:, :, None], 3, axis=2)
    if array.ndim != 3 or array.shape[2] != 3:
        raise InputError(f"{what} must have shape (H, W, 3), got {tuple(array.shape)}")
    if array.dtype != np.uint8:
        raise InputError(f"{what} must be uint8 (0-255), got {array.dtype}; convert with (x * 255).astype(np.uint8)")
    h, w = array.shape[:2]
    if min(h, w) < MIN_IMAGE_SIDE:
        raise InputError(f"{what} is {w}x{h} pixels; each side must be at least {MIN_IMAGE_SIDE}")
    if max(h, w) / min(h, w) > MAX_ASPECT:
        raise InputError(f"{what} is {w}x{h} pixels; the aspect ratio must be below {MAX_ASPECT}")
    return np.ascontiguousarray(array)


def _as_video(array: Any, what: str) -> np.ndarray:
    if isinstance(array, (list, tuple)):
        array = np.stack([_as_rgb(f, f"{what} frame {i}") for i, f in enumerate(array)]) if array else None
    if not isinstance(array, np.ndarray) or array.ndim != 4 or array.shape[-1] != 3 or len(array) == 0:
        shape = getattr(array, "shape", None)
        raise InputError(f"{what} must be a non-empty uint8 array (T, H, W, 3), got shape {shape}")
    _as_rgb(array[0], f"{what} frame 0")  # size, dtype and aspect checks
    return np.ascontiguousarray(array)


@dataclass
class ParsedMessages:
    """Messages with the media taken out: ``template`` holds only strings and media markers."""

    template: list[dict]
    images: list[np.ndarray]
    videos: list[np.ndarray]
    video_fps: list[float]


def parse_messages(messages: Sequence[dict]) -> ParsedMessages:
    """Check chat messages and split them into template-ready dicts and the media, in order."""
    if not isinstance(messages, (list, tuple)) or not messages:
        raise InputError("messages must be a non-empty list of {'role': ..., 'content': ...} dicts")
    template: list[dict] = []
    images: list[np.ndarray] = []
    videos: list[np.ndarray] = []
    video_fps: list[float] = []
    for i, message in enumerate(messages):
        if not isinstance(message, dict) or "role" not in message or "content" not in message:
            raise InputError(f"message {i} must be a dict with 'role' and 'content'")
        role = message["role"]
        if role not in ROLES:
            raise InputError(f"message {i} has role {role!r}; use one of {', '.join(ROLES)}")
        content = message["content"]
        if isinstance(content, str):
            _check_text(content, i)
            template.append({"role": role, "content": content})
            continue
        if not isinstance(content, (list, tuple)):
            raise InputError(f"message {i} content must be a string or a list of text/image/video items")
        items = []
        for j, item in enumerate(content):
            kind = item.get("type") if isinstance(item, dict) else None
            if kind == "text":
                text = item.get("text")
                if not isinstance(text, str):
                    raise InputError(f"message {i} item {j}: a text item needs a string 'text'")
                _check_text(text, i)
                items.append({"type": "text", "text": text})
            elif kind == "image":
                images.append(_as_rgb(item.get("image"), f"message {i} item {j} image"))
                items.append({"type": "image"})
            elif kind == "video":
                videos.append(_as_video(item.get("video"), f"message {i} item {j} video"))
                fps = float(item.get("fps", 2.0))
                if not fps > 0:
                    raise InputError(f"message {i} item {j}: video fps must be > 0, got {fps}")
                video_fps.append(fps)
                items.append({"type": "video"})
            else:
                raise InputError(f"message {i} item {j}: type must be 'text', 'image' or 'video', got {kind!r}")
        template.append({"role": role, "content": items})
    return ParsedMessages(template, images, videos, video_fps)


def _check_text(text: str, index: int) -> None:
    # A literal placeholder in user text would shift every image after it onto the wrong tokens.
    for token in RESERVED_TOKENS:
        if token in text:
            raise InputError(f"message {index} text contains the reserved token {token}; remove it")


# ----------------------------------------------------------------------------------------------
# the processor


class VLProcessor:
    """Builds Qwen-VL inputs from chat messages (text + numpy images/videos).

    Use :meth:`from_pretrained` on a model folder or hub id. ``backend`` is ``"transformers"``
    (AutoProcessor; needs torchvision) or ``"numpy"``; both give ``input_ids``, ``attention_mask``,
    ``mm_token_type_ids``, ``pixel_values`` + ``image_grid_thw`` and for video
    ``pixel_values_videos`` + ``video_grid_thw`` (+ ``second_per_grid_ts`` on Qwen2.5-VL).
    """

    def __init__(self, tokenizer, image_processor, *, family: str, chat_template: str | None = None,
                 min_pixels: int = 56 * 56, max_pixels: int = 224 * 224, hf_processor=None) -> None:
        if family not in FAMILY_NAMES:
            raise InputError(f"unknown Qwen-VL family {family!r}; known: {', '.join(FAMILY_NAMES)}")
        self.tokenizer = tokenizer
        self.image_processor = image_processor
        self.family = family
        self.chat_template = chat_template or getattr(tokenizer, "chat_template", None)
        if not self.chat_template:
            raise InputError("the tokenizer has no chat template; give chat_template= or use an -Instruct checkpoint")
        self.min_pixels = int(min_pixels)
        self.max_pixels = int(max_pixels)
        self.hf_processor = hf_processor
        self.patch_size = int(image_processor.patch_size)
        self.merge_size = int(image_processor.merge_size)
        self.temporal_patch_size = int(image_processor.temporal_patch_size)
        self.image_token_id = tokenizer.convert_tokens_to_ids(IMAGE_TOKEN)
        self.video_token_id = tokenizer.convert_tokens_to_ids(VIDEO_TOKEN)
        if self.image_token_id is None or self.image_token_id == tokenizer.unk_token_id:
            raise InputError(f"the tokenizer has no {IMAGE_TOKEN} token: not a Qwen-VL tokenizer")

    @property
    def backend(self) -> str:
        """"transformers" (AutoProcessor) or "numpy"."""
        return "transformers" if self.hf_processor is not None else "numpy"

    @classmethod
    def from_pretrained(cls, path: str, *, family: str, min_pixels: int = 56 * 56, max_pixels: int = 224 * 224,
                        backend: str = "auto", tokenizer=None, **hub_kwargs) -> "VLProcessor":
        """Load tokenizer, image processor and chat template from a model folder or hub id.

        ``backend="auto"`` takes the standard ``AutoProcessor`` where torchvision works and the numpy
        path elsewhere. ``hub_kwargs`` (``revision``, ``cache_dir``, ``local_files_only``) pass through.
        """
        from transformers import AutoTokenizer
        from transformers.models.qwen2_vl.image_processing_pil_qwen2_vl import Qwen2VLImageProcessorPil

        if backend not in ("auto", "transformers", "numpy"):
            raise InputError(f"backend must be auto, transformers or numpy, got {backend!r}")
        if backend == "transformers" and not torchvision_available():
            raise InputError("backend='transformers' needs torchvision; use backend='numpy' (same tensors)")
        use_hf = backend == "transformers" or (backend == "auto" and torchvision_available())
        hf_processor = None
        if use_hf:
            from transformers import AutoProcessor

            hf_processor = AutoProcessor.from_pretrained(path, trust_remote_code=False, **hub_kwargs)
            tokenizer = hf_processor.tokenizer
            image_processor = hf_processor.image_processor
        else:
            tokenizer = tokenizer or AutoTokenizer.from_pretrained(path, trust_remote_code=False, **hub_kwargs)
            image_processor = Qwen2VLImageProcessorPil.from_pretrained(path, **hub_kwargs)
        # one template for both paths: the processor's file, as AutoProcessor reads it, else the tokenizer's
        chat_template = processor_chat_template(path, **hub_kwargs) or tokenizer.chat_template
        return cls(tokenizer, image_processor, family=family, chat_template=chat_template,
                   min_pixels=min_pixels, max_pixels=max_pixels, hf_processor=hf_processor)

    # -- text ---------------------------------------------------------------------------------

    def render(self, messages: Sequence[dict], *, add_generation_prompt: bool = True) -> str:
        """The chat-template text with one ``<|vision_start|><|image_pad|><|vision_end|>`` per image."""
        parsed = messages if isinstance(messages, ParsedMessages) else parse_messages(messages)
        return self._render(parsed.template, add_generation_prompt)

    def _render(self, template_messages: list[dict], add_generation_prompt: bool) -> str:
        return self.tokenizer.apply_chat_template(
            template_messages, chat_template=self.chat_template, tokenize=False,
            add_generation_prompt=add_generation_prompt,
        )

    # -- encoding -----------------------------------------------------------------------------

    def __call__(self, messages: Sequence[dict], *, add_generation_prompt: bool = True) -> dict:
        """Model inputs (torch tensors, batch of one) for a conversation."""
        parsed = parse_messages(messages)
        text = self._render(parsed.template, add_generation_prompt)
        return self.encode_texts([text], parsed)[0]

    def encode_texts(self, texts: list[str], parsed: ParsedMessages) -> list[dict]:
        """Encode several renderings of the same conversation (prompt, prompt + answer) with the same media.

        The numpy backend processes the images once for all texts.
        """
        if self.hf_processor is not None:
            return [self._encode_hf(text, parsed) for text in texts]
        media, image_repl, video_repl = self._media_numpy(parsed)
        return [self._encode_numpy(text, media, image_repl, video_repl) for text in texts]

    def _size(self, n_frames: int = 1) -> dict:
        return {"shortest_edge": self.min_pixels, "longest_edge": self.max_pixels * n_frames}

    def _encode_hf(self, text: str, parsed: ParsedMessages) -> dict:
        from transformers.video_utils import VideoMetadata

        kwargs: dict[str, Any] = {"text": [text], "return_tensors": "pt"}
        if parsed.images:
            kwargs["images"] = list(parsed.images)
            kwargs["images_kwargs"] = {"size": self._size(), "input_data_format": "channels_last"}
        if parsed.videos:
            # frames arrive already chosen: no resampling; Qwen3-VL's size budget covers all frames
            n = max(len(v) for v in parsed.videos)
            kwargs["videos"] = list(parsed.videos)
            kwargs["videos_kwargs"] = {
                "size": self._size(n if self.family == "qwen3_vl" else 1),
                "do_sample_frames": False,
                "return_metadata": True,
                "video_metadata": [
                    VideoMetadata(total_num_frames=len(v), fps=fps, frames_indices=list(range(len(v))))
                    for v, fps in zip(parsed.videos, parsed.video_fps)
                ],
            }
        out = self.hf_processor(**kwargs)
        return {k: v for k, v in out.items() if k != "video_metadata"}

    def _pixels(self, images: list) -> dict:
        """Resized, patchified and normalised pixels, with the arithmetic of transformers' torchvision
        processor: rescale and normalise fused as ``(x - mean * 255) / (std * 255)`` in float32 (the PIL
        processor rescales first, then normalises, which rounds differently in the last bit), so both
        processor paths give bit-identical ``pixel_values``."""
        import torch

        ip = self.image_processor
        out = ip(images, size=self._size(), input_data_format="channels_last", do_rescale=False, do_normalize=False,
                 return_tensors="np")
        x = torch.from_numpy(np.ascontiguousarray(out["pixel_values"])).to(torch.float32)
        mean = torch.tensor(ip.image_mean) * (1.0 / ip.rescale_factor)
        std = torch.tensor(ip.image_std) * (1.0 / ip.rescale_factor)
        x = x.view(x.shape[0], len(mean), -1).sub_(mean[:, None]).div_(std[:, None]).view(x.shape[0], -1)
        return {"pixel_values": x.numpy(), "image_grid_thw": out["image_grid_thw"]}

    def _media_numpy(self, parsed: ParsedMessages) -> tuple[dict, list[str], list[str]]:
        """Pixel tensors and the placeholder expansion string for each image and video."""
        import torch

        media: dict[str, Any] = {}
        image_repl: list[str] = []
        video_repl: list[str] = []
        merge = self.merge_size ** 2
        # 1. images through the PIL image processor (resize, rescale, normalise, patchify)
        if parsed.images:
            out = self._pixels(list(parsed.images))
            media["pixel_values"] = torch.from_numpy(out["pixel_values"])
            media["image_grid_thw"] = torch.from_numpy(out["image_grid_thw"]).long()
            image_repl = [IMAGE_TOKEN * int(np.prod(g) // merge) for g in out["image_grid_thw"]]
        # 2. videos: each frame through the same image processor, regrouped into temporal patches
        if parsed.videos:
            all_patches, grids, seconds = [], [], []
            for frames, fps in zip(parsed.videos, parsed.video_fps):
                out = self._pixels(list(frames))
                _, gh, gw = (int(x) for x in out["image_grid_thw"][0])
                patches = frame_patches_to_video(
                    out["pixel_values"], (gh, gw), len(frames), channels=3, patch_size=self.patch_size,
                    merge_size=self.merge_size, temporal_patch_size=self.temporal_patch_size,
                )
                gt = -(-len(frames) // self.temporal_patch_size)
                all_patches.append(patches)
                grids.append([gt, gh, gw])
                seconds.append(self.temporal_patch_size / fps)
                per_frame = gh * gw // merge
                if self.family == "qwen3_vl":
                    # Qwen3-VL: a timestamp and its own vision_start/end around every temporal patch
                    video_repl.append("".join(
                        f"<{t:.1f} seconds>{VISION_START}{VIDEO_TOKEN * per_frame}{VISION_END}"
                        for t in qwen3_timestamps(len(frames), fps, self.temporal_patch_size)
                    ))
                else:
                    video_repl.append(VIDEO_TOKEN * (gt * per_frame))
            media["pixel_values_videos"] = torch.from_numpy(np.concatenate(all_patches, axis=0))
            media["video_grid_thw"] = torch.tensor(grids, dtype=torch.long)
            if self.family == "qwen2_5_vl":
                media["second_per_grid_ts"] = torch.tensor(seconds, dtype=torch.float32)
        return media, image_repl, video_repl

    def _encode_numpy(self, text: str, media: dict, image_repl: list[str], video_repl: list[str]) -> dict:
        import torch

        # 3. expand each placeholder in order (as ProcessorMixin.get_text_with_replacements does)
        images, videos = iter(image_repl), iter(video_repl)
        n_img, n_vid = text.count(IMAGE_TOKEN), text.count(VIDEO_TOKEN)
        if n_img != len(image_repl) or n_vid != len(video_repl):
            raise InputError(
                f"the chat template produced {n_img} image and {n_vid} video placeholders for "
                f"{len(image_repl)} images and {len(video_repl)} videos"
            )
        pattern = f"{re.escape(IMAGE_TOKEN)}|{re.escape(VIDEO_TOKEN)}"
        text = re.sub(pattern, lambda m: next(images) if m.group() == IMAGE_TOKEN else next(videos), text)
        # 4. tokenise and mark which tokens are image (1) or video (2) placeholders
        ids = self.tokenizer(text)["input_ids"]
        input_ids = torch.tensor([ids], dtype=torch.long)
        mm = torch.zeros_like(input_ids)
        mm[input_ids == self.image_token_id] = 1
        mm[input_ids == self.video_token_id] = 2
        out = {"input_ids": input_ids, "attention_mask": torch.ones_like(input_ids), "mm_token_type_ids": mm}
        out.update(media)
        return out

    # -- accounting ---------------------------------------------------------------------------

    def n_visual_tokens(self, encoded: dict) -> int:
        """Number of image + video placeholder tokens in an encoded input (all rows of a batch)."""
        ids = encoded["input_ids"]
        return int(((ids == self.image_token_id) | (ids == self.video_token_id)).sum())

    def tokens_per_image(self, height: int, width: int) -> int:
        """Visual tokens one image of this size costs at the current pixel limits."""
        from transformers.models.qwen2_vl.image_processing_pil_qwen2_vl import smart_resize

        h, w = smart_resize(height, width, factor=self.patch_size * self.merge_size,
                            min_pixels=self.min_pixels, max_pixels=self.max_pixels)
        return (h // self.patch_size) * (w // self.patch_size) // self.merge_size ** 2


def processor_chat_template(path: str, **hub_kwargs) -> str | None:
    """The processor's chat template, looked up as ``AutoProcessor`` does: ``chat_template.json`` (the
    legacy processor file), else ``chat_template.jinja``; None when the folder has neither.

    Qwen2.5-VL ships a processor template and a tokenizer template that differ; reading the same one
    on both processor paths keeps a GPU box (AutoProcessor) and a CPU box (numpy) on one prompt.
    """
    from transformers.utils import cached_file

    for name in ("chat_template.json", "chat_template.jinja"):
        try:
            found = cached_file(path, name, _raise_exceptions_for_missing_entries=False,
                                _raise_exceptions_for_connection_errors=False, **hub_kwargs)
        except OSError:
            found = None
        if found:
            text = Path(found).read_text(encoding="utf-8")
            return json.loads(text)["chat_template"] if name.endswith(".json") else text
    return None
