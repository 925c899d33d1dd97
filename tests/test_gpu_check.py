"""bench/gpu_check.sh: the published configs it builds from, and its dry run on the CPU (tiny models).

The real run needs one GPU (an H200); the dry run goes through every stage of the same script: model
folders, `mevqa synth`, `mevqa ask`, `mevqa eval`, forced-length generation, LoRA and QLoRA steps with
the shipped 7B configs (bf16 on the CPU), end-of-run evaluation and the table.
"""
from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import pytest
import torch

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.parametrize("name, billions", [("qwen2_5_vl_3b", 3.75), ("qwen2_5_vl_7b", 8.29), ("qwen3_vl_4b", 4.44)])
def test_published_configs_give_the_published_sizes(name, billions):
    """The hub lists 3.75B, 8.29B and 4.44B parameters; built on the meta device (no memory)."""
    from transformers import AutoConfig, Qwen2_5_VLForConditionalGeneration, Qwen3VLForConditionalGeneration

    values = {k: v for k, v in json.loads((ROOT / "bench/configs" / f"{name}.json").read_text()).items()
              if not k.startswith("_")}
    cls = Qwen2_5_VLForConditionalGeneration if values["model_type"] == "qwen2_5_vl" else Qwen3VLForConditionalGeneration
    with torch.device("meta"):
        model = cls._from_config(AutoConfig.for_model(**values), dtype=torch.bfloat16)
    assert sum(p.numel() for p in model.parameters()) / 1e9 == pytest.approx(billions, abs=0.01)


def test_gpu_check_dry_run(tmp_path):
    env = {**os.environ, "MEVQA_CACHE": str(tmp_path / "cache")}
    proc = subprocess.run(["bash", str(ROOT / "bench/gpu_check.sh"), "--dry-run", "--out", str(tmp_path / "check")],
                          capture_output=True, text=True, cwd=ROOT, env=env, timeout=900)
    assert proc.returncode == 0, proc.stderr[-2000:]
    rows = json.loads((tmp_path / "check/gpu_check.json").read_text())["rows"]
    assert [r["stage"] for r in rows][-2:] == ["lora", "qlora"]
    for r in rows[:3]:
        assert r["new_tokens"] == 8 and r["tokens_per_s"] > 0 and r["dtype"] == "torch.bfloat16"
    for r in rows[3:]:
        assert r["steps"] == 2 and r["card"] and r["eval_questions"] >= 1 and 0 < r["loss_last"] < 20
    assert "| qwen2_5_vl_7b | qlora x2" in proc.stdout
