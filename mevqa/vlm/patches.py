"""Qwen-VL's video patch layout in numpy, as transformers' ``Qwen2VLVideoProcessor`` builds it with torchvision.

The torchvision-free processor (:mod:`mevqa.vlm.processing`) sends each frame through the PIL image
processor and regroups the patches here, so both paths give the same tensors.
"""
from __future__ import annotations

import numpy as np

__all__ = ["patchify_video", "frame_patches_to_video", "qwen3_timestamps"]


def patchify_video(frames: np.ndarray, patch_size: int, merge_size: int, temporal_patch_size: int) -> tuple[np.ndarray, tuple[int, int, int]]:
    """Normalised frames (T, C, H, W) -> flat patches (grid_t*grid_h*grid_w, C*tps*ps*ps) in HF's order.

    The order is (t, h-block, w-block, h-in-block, w-in-block) over patches and (C, tps, ps, ps)
    inside a patch, as in ``Qwen2VLVideoProcessor.patchify``; T is padded to a multiple of the
    temporal patch by repeating the last frame, as HF does.
    """
    t, c, h, w = frames.shape
    if pad := -t % temporal_patch_size:
        frames = np.concatenate([frames, np.repeat(frames[-1:], pad, axis=0)], axis=0)
        t += pad
    gt, gh, gw = t // temporal_patch_size, h // patch_size, w // patch_size
    x = frames.reshape(gt, temporal_patch_size, c, gh // merge_size, merge_size, patch_size,
                       gw // merge_size, merge_size, patch_size)
    # -> (gt, gh/m, gw/m, m, m, C, tps, ps, ps)
    x = x.transpose(0, 3, 6, 4, 7, 2, 1, 5, 8)
    return np.ascontiguousarray(x.reshape(gt * gh * gw, c * temporal_patch_size * patch_size * patch_size)), (gt, gh, gw)


def frame_patches_to_video(image_patches: np.ndarray, grid_hw: tuple[int, int], n_frames: int, *,
                           channels: int, patch_size: int, merge_size: int, temporal_patch_size: int) -> np.ndarray:
    """Per-frame image patches (as the image processor emits them) -> video patches in HF's order.

    The image processor already resized, rescaled and normalised each frame and laid it out as
    (gh/m, gw/m, m, m, C, tps, ps, ps) with the frame repeated along tps; keeping one copy and
    regrouping frames in pairs gives exactly the video layout, with PIL's resize.
    """
    gh, gw = grid_hw
    per = image_patches.reshape(n_frames, gh // merge_size, gw // merge_size, merge_size, merge_size,
                                channels, temporal_patch_size, patch_size, patch_size)[:, :, :, :, :, :, 0]
    # back to (T, C, H, W) and through the one video patchifier, so both share a single definition
    frames = per.transpose(0, 5, 1, 3, 6, 2, 4, 7).reshape(n_frames, channels, gh * patch_size, gw * patch_size)
    patches, _ = patchify_video(frames, patch_size, merge_size, temporal_patch_size)
    return patches


def qwen3_timestamps(n_frames: int, fps: float, temporal_patch_size: int) -> list[float]:
    """Seconds shown before each temporal patch in Qwen3-VL prompts (mean time of its frames)."""
    idx = list(range(n_frames))
    if pad := -n_frames % temporal_patch_size:
        idx += [idx[-1]] * pad
    times = [i / fps for i in idx]
    return [(times[i] + times[i + temporal_patch_size - 1]) / 2 for i in range(0, len(times), temporal_patch_size)]
