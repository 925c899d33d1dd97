"""Learned recogniser (MMNet): the tiny LOSO run's figures, CPU forward time per clip, GPU step time.

    python bench/bench_recognizer.py [--repeats 20] [--no-train] [--threads N]

1. Trains ``train/configs/recognizer_tiny.yaml`` in a temporary folder (synthetic CASME II-style set,
   4 synthetic subjects, leave-one-subject-out) and prints per-fold and pooled accuracy, UF1 and UAR
   and the wall time. The synthetic subjects are all rendered from one photo: this is a plumbing and
   learnability figure, not a figure about real faces.
2. Per clip on CPU: aligned onset/apex crops (face landmarks on two frames, one shared alignment, flow
   registration) on the real test video, and the network's forward pass at batch 1 for the tiny and the
   full-size (224x224, 512x14x14) network, diff and flow inputs; median of ``--repeats``.
3. Cross-identity: the tiny run's final model (trained on clips rendered from the bundled photo) reads
   16 clips rendered by the same generator from a *different, real* face (the first frame of the real
   test video): positive (AU6+12, AU12), surprise (AU1+2), negative (AU4+7, AU9, AU10, AU14, AU15).
   Still our own motion model, so not a figure about real micro-expressions; it checks that what was
   learned is muscle motion rather than the one training face.
4. Where CUDA is available: one training step at batch 32, 224x224 (forward, backward, AdamW). Else it
   says no GPU was available.
"""
from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time
from pathlib import Path

os.environ.setdefault("GLOG_minloglevel", "2")

import cv2  # noqa: E402
import numpy as np  # noqa: E402
import torch  # noqa: E402
import torch.nn.functional as F  # noqa: E402

from mevqa.io.video import Clip  # noqa: E402
from mevqa.recognize.crops import crops_from_clip  # noqa: E402
from mevqa.recognize.inputs import motion_input, onset_input  # noqa: E402
from mevqa.recognize.network import MMNet, MMNetConfig, tiny_config  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
REAL = ROOT / "tests" / "data" / "pexels_woman_emotions.mp4"
TINY = ROOT / "train" / "configs" / "recognizer_tiny.yaml"


def _median_ms(fn, repeats: int) -> str:
    """Median wall and process-CPU milliseconds (on a shared machine the CPU time is the steadier figure)."""
    fn()  # warm-up
    wall, cpu = [], []
    for _ in range(repeats):
        t, c = time.perf_counter(), time.process_time()
        fn()
        wall.append(time.perf_counter() - t)
        cpu.append(time.process_time() - c)
    return f"{1000 * statistics.median(wall):.1f} ms wall, {1000 * statistics.median(cpu):.1f} ms CPU"


def bench_train(tmp: str) -> Path:
    from mevqa.train.recognizer import train_recognizer
    from mevqa.train.recognizer_config import load_recognizer_config

    cfg = load_recognizer_config(TINY, [f"run_dir={tmp}/run", f"data.crop_cache={tmp}/crops"])
    t = time.perf_counter()
    run = train_recognizer(cfg, verbose=True)
    wall = time.perf_counter() - t
    p = run.report["pooled"]
    print(f"tiny LOSO: {run.report['n_folds']} folds, {run.report['n_clips']} clips, pooled accuracy {p['accuracy']:.3f}, "
          f"UF1 {p['uf1']:.3f}, UAR {p['uar']:.3f} (chance UAR {run.report['chance_uar']:.3f}); "
          f"wall {wall:.1f} s including the synthetic set and the final model")
    return run.model_dir


def bench_cross_identity(model_dir: Path) -> None:
    from mevqa.megc.metrics import accuracy, uar, uf1
    from mevqa.recognize.predict import Recognizer
    from mevqa.testing.synth import SynthConfig, SynthEvent, make_clip

    rec = Recognizer.load(model_dir)
    photo = Clip.load(REAL).frames[0]
    specs = [("positive", ("AU6", "AU12")), ("positive", ("AU12",)), ("surprise", ("AU1", "AU2")),
             ("negative", ("AU4", "AU7")), ("negative", ("AU9",)), ("negative", ("AU14",)), ("negative", ("AU15",)),
             ("negative", ("AU10",))]
    y, p = [], []
    for seed in range(2):
        for k, (label, aus) in enumerate(specs):
            rng = np.random.default_rng([seed, k])
            onset = int(rng.integers(20, 30))
            apex = onset + int(rng.integers(25, 40))
            cfg = SynthConfig(width=320, height=240, fps=200, seconds=0.6, blinks=False, drift=True, noise=1.5,
                              flicker=0.005, seed=100 * seed + k, photo=photo)
            event = SynthEvent(onset, apex, apex + 30, "micro", aus, "both", float(rng.uniform(2, 3.5)))
            clip, _ = make_clip(cfg, events=[event])
            y.append(label)
            p.append(rec.read(clip, onset, apex).label)
    print(f"cross-identity (another face, same generator), {len(y)} clips: accuracy {accuracy(y, p):.3f}, "
          f"UF1 {uf1(y, p):.3f}, UAR {uar(y, p):.3f}")


def bench_cpu(repeats: int) -> None:
    clip = Clip.load(REAL)
    onset, apex = clip.n_frames // 3, clip.n_frames // 3 + 8
    ms = _median_ms(lambda: crops_from_clip(clip, onset, apex, size=224), max(3, repeats // 4))
    print(f"crops (onset/apex windows, 8 frames, {clip.size[0]}x{clip.size[1]} real video, 224 px): {ms} per clip "
          f"(load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs)")
    pc = crops_from_clip(clip, onset, apex, size=224)
    on, ap = pc.coded
    for name, cfg in (("tiny 64px", tiny_config()), ("full 224px", MMNetConfig())):
        for kind in ("diff", "flow"):
            c = MMNetConfig(**{**cfg.to_dict(), "input": kind})
            net = MMNet(c).eval()
            s = c.image_size
            a, b = (cv2.resize(x, (s, s), interpolation=cv2.INTER_AREA) for x in (on, ap))

            def run():
                m = torch.from_numpy(motion_input(a, b, kind=kind)[None])
                with torch.no_grad():
                    net(m, torch.from_numpy(onset_input(a)[None]))

            n_par = sum(p.numel() for p in net.parameters())
            print(f"forward {name} {kind:4s} ({n_par / 1e6:.2f} M params): {_median_ms(run, repeats)} per clip "
                  f"(input + network, batch 1, {torch.get_num_threads()} threads)")


def bench_gpu() -> None:
    if not torch.cuda.is_available():
        print("GPU step time: no GPU available here (torch.cuda.is_available() is False); not measured")
        return
    dev = torch.device("cuda")
    net = MMNet(MMNetConfig()).to(dev).train()
    opt = torch.optim.AdamW(net.parameters(), lr=8e-4)
    x, o = torch.randn(32, 3, 224, 224, device=dev), torch.randn(32, 3, 224, 224, device=dev)
    y = torch.randint(0, 3, (32,), device=dev)

    def step():
        loss = F.cross_entropy(net(x, o).logits, y)
        opt.zero_grad()
        loss.backward()
        opt.step()
        torch.cuda.synchronize()

    print(f"GPU step (batch 32, 224x224, {torch.cuda.get_device_name()}): {_median_ms(step, 20)}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeats", type=int, default=20)
    ap.add_argument("--no-train", action="store_true", help="skip the tiny LOSO training run")
    ap.add_argument("--threads", type=int, default=None, help="torch CPU threads (default: torch's choice)")
    a = ap.parse_args()
    if a.threads:
        torch.set_num_threads(a.threads)
    np.random.seed(0)
    torch.manual_seed(0)
    bench_cpu(a.repeats)
    if not a.no_train:
        with tempfile.TemporaryDirectory() as tmp:
            bench_cross_identity(bench_train(tmp))
    bench_gpu()


if __name__ == "__main__":
    main()
