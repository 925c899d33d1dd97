#!/usr/bin/env bash
# One prepared check for one GPU (an H200: under 8 minutes): real-size Qwen2.5-VL-3B, Qwen2.5-VL-7B and
# Qwen3-VL-4B with random weights from bench/configs/*.json, bf16; `mevqa ask` and `mevqa eval` on 3
# synthetic clips; 20 LoRA and 20 QLoRA steps of the 7B with the shipped configs, end evaluation included.
# Prints step time, peak GPU memory and generation tokens/s (bench/gpu_check.py says what each means).
#
#   bash bench/gpu_check.sh                 # on the GPU box
#   bash bench/gpu_check.sh --dry-run       # the same script on a CPU with the tiny models (in the tests)
#   bash bench/gpu_check.sh --out /scratch/check --steps 20
#
# The GPU box has torch, torchvision, transformers, peft and accelerate but no package index. mevqa's
# other dependencies travel with the repository as wheels in bench/wheels/ (not committed), made on a
# machine with an index, for the box's Python (here 3.11) and platform:
#
#   pip download -d bench/wheels --only-binary=:all: --python-version 3.11 --platform manylinux_2_28_x86_64 \
#       --platform manylinux2014_x86_64 setuptools wheel $(python -c "import tomllib; print(' '.join(d for d in \
#       tomllib.load(open('pyproject.toml', 'rb'))['project']['dependencies'] if not d.startswith(('torch', \
#       'transformers', 'peft', 'accelerate'))))")
#   pip wheel --no-deps -w bench/wheels rouge-score    # published as an sdist only: build its wheel here
#
# This script installs them with --no-index from that folder when mevqa is not importable yet.
set -euo pipefail
cd "$(dirname "$0")/.."
WHEELS="${MEVQA_WHEELS:-bench/wheels}"
if ! python -c "import mevqa, mediapipe, cv2, bitsandbytes" >/dev/null 2>&1; then
  if [ -d "$WHEELS" ]; then
    echo "installing mevqa's dependencies from $WHEELS (no index)"
    python -m pip install --no-index --find-links "$WHEELS" -e . --no-build-isolation
  else
    echo "gpu_check: mevqa or its dependencies are missing and $WHEELS does not exist (see the header of $0)" >&2
    exit 2
  fi
fi
exec python bench/gpu_check.py "$@"
