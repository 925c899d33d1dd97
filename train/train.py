#!/usr/bin/env python
"""Fine-tune Qwen-VL with LoRA for micro-expression VQA: the same entry as ``mevqa train``.

    python train/train.py train/configs/tiny.yaml                       # smoke run, CPU, about a minute
    python train/train.py train/configs/qwen2_5_vl_7b_lora.yaml lora.r=32 max_steps=500
    accelerate launch train/train.py train/configs/qwen2_5_vl_7b_lora.yaml   # several GPUs, no code change

Everything lives in :mod:`mevqa.train` (entry: :func:`mevqa.train.trainer.main_train`); this file only hands
its arguments to the ``mevqa`` command line, so errors are the same one line (``--debug`` for a traceback). ``train/`` is deliberately not a
package (no ``__init__.py``): nothing should ``import train``.
"""
import sys

from mevqa.apps.cli import main

if __name__ == "__main__":
    args = sys.argv[1:]
    debug = [a for a in args if a == "--debug"]
    sys.exit(main(debug + ["train"] + [a for a in args if a != "--debug"]))
