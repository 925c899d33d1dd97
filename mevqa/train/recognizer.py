"""Subject-independent training of the MMNet recogniser (``mevqa train`` with a ``recognizer:`` config).

Protocol. Leave-one-subject-out (one fold per subject, :func:`mevqa.io.splits.loso_folds`) or one
hold-out split by subject (:func:`mevqa.io.splits.holdout_split`); every fold is checked with
:func:`mevqa.io.splits.assert_subject_disjoint` before it trains, so a split that would put a person
on both sides is refused. No other protocol exists: clip-level random splits overstate micro-expression
accuracy because a subject's clips look alike.

Training follows MMNet (Li et al., IJCAI 2022): AdamW, learning rate 8e-4 decayed exponentially per
epoch, batch 32, onset/apex jitter, flip, random crop and colour jitter
(:func:`mevqa.train.recognizer_data.augment_pair`), and a class-weighted cross-entropy (inverse class
frequency in the fold's training clips, mean 1; the field's answer to its imbalance; a MEGC2024
entry used fixed weights such as [1, 3, 9, 9], which ``class_weights: [1, 3, 9, 9]`` reproduces).

Checkpoints and resume. Each fold keeps ``folds/<name>/checkpoint.pt`` (weights, optimizer and
scheduler state, the epoch; read back with ``weights_only=True``) every ``save_every`` epochs, and a
finished fold its ``result.json``. Every random draw of an epoch comes from generators seeded by
(seed, fold, epoch), so a run stopped after any checkpoint and started again ends bit-identical to one
that never stopped. A run folder refuses a resume with a different config (except ``epochs``, which
may grow, and the run-time keys ``device``, ``threads``, ``save_every``, ``split.max_folds``).

Outputs: ``report.json``/``report.md`` (per-fold and pooled accuracy, UF1, UAR, per class) and, with
``final_model: true``, ``recognizer/`` (safetensors + JSON) trained on every clip, which
``--recognizer RUN`` loads.
"""
from __future__ import annotations

import json
import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import numpy as np
import torch
import torch.nn.functional as F

from mevqa.io.splits import assert_subject_disjoint, holdout_split, loso_folds
from mevqa.recognize.network import MMNet, MMNetConfig
from mevqa.recognize.predict import predict_batch
from mevqa.train.recognizer_config import RecognizerConfigError, RecognizerTrainConfig, load_recognizer_config, network_config
from mevqa.train.recognizer_data import CropBank, load_bank, make_batch
from mevqa.train.recognizer_report import build_report, write_report

__all__ = ["RecognizerRun", "class_weights", "plan_folds", "train_fold", "train_recognizer", "main_train_recognizer"]

_RUNTIME_KEYS = ("epochs", "device", "threads", "save_every", "run_dir")


@dataclass
class RecognizerRun:
    run_dir: Path
    report: dict
    model_dir: Path | None
    complete: bool


def class_weights(labels: np.ndarray, n_classes: int, spec) -> torch.Tensor | None:
    """Loss weights: "balanced" = inverse frequency scaled to mean 1 over the classes present;
    "none" = unweighted; a list = fixed weights in class order."""
    if spec in (None, "none", False):
        return None
    if spec == "balanced":
        counts = np.bincount(labels, minlength=n_classes).astype(np.float64)
        w = np.where(counts > 0, counts.sum() / np.maximum(counts, 1), 0.0)
        w = w / w[counts > 0].mean()
        return torch.tensor(w, dtype=torch.float32)
    if isinstance(spec, (list, tuple)) and len(spec) == n_classes:
        return torch.tensor([float(x) for x in spec], dtype=torch.float32)
    raise RecognizerConfigError(f"class_weights must be balanced, none or a list of {n_classes} numbers, got {spec!r}")


def plan_folds(bank: CropBank, cfg: RecognizerTrainConfig) -> list[dict]:
    """Subject-disjoint folds: [{name, train, test, held_out}], checked for leakage."""
    items = bank.items
    if cfg.split.protocol == "loso":
        folds = [{"name": f"{d}_{s}", "train": list(f.train_idx), "test": list(f.test_idx), "held_out": [f"{d}/{s}"]}
                 for f in loso_folds(items) for d, s in [f.held_out]]
        if len(folds) < 2:
            raise RecognizerConfigError("leave-one-subject-out needs clips of at least two subjects")
    else:
        sp = holdout_split(items, test_subjects=cfg.split.test_subjects or None,
                           test_fraction=cfg.split.test_fraction, seed=cfg.seed)
        folds = [{"name": "holdout", "train": list(sp.train_idx), "test": list(sp.test_idx),
                  "held_out": [f"{d}/{s}" for d, s in sp.test_subjects]}]
    for f in folds:
        if not f["train"] or not f["test"]:
            raise RecognizerConfigError(f"fold {f['name']} has an empty side")
        assert_subject_disjoint([items[i] for i in f["train"]], [items[i] for i in f["test"]])
    return folds[: cfg.split.max_folds] if cfg.split.max_folds else folds


def _seed(*parts: int) -> int:
    return int(np.random.SeedSequence([int(p) for p in parts]).generate_state(1)[0])


def _batches(order: np.ndarray, size: int) -> list[np.ndarray]:
    chunks = [order[i:i + size] for i in range(0, len(order), size)]
    if len(chunks) > 1 and len(chunks[-1]) == 1:  # BatchNorm cannot train on one sample
        chunks[-2:] = [np.concatenate(chunks[-2:])]
    return chunks


def _save(path: Path, state: dict) -> None:
    tmp = path.with_suffix(".tmp")
    torch.save(state, tmp)
    os.replace(tmp, path)


def train_fold(bank: CropBank, train_idx: Sequence[int], net: MMNetConfig, cfg: RecognizerTrainConfig, *,
               fold: int, out_dir: Path, device: torch.device, stop_after: int | None = None) -> tuple[MMNet, int, float]:
    """Train one fold (resuming from ``out_dir/checkpoint.pt``); returns (model, epochs done, last loss).
    ``stop_after`` ends the call after that many epochs of *this* call (an interruption, for tests)."""
    torch.manual_seed(_seed(cfg.seed, fold, 10**6))
    model = MMNet(net).to(device)
    opt = torch.optim.AdamW(model.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
    sched = torch.optim.lr_scheduler.ExponentialLR(opt, gamma=cfg.lr_gamma)
    ckpt, start, loss_value = out_dir / "checkpoint.pt", 0, float("nan")
    if ckpt.is_file():
        state = torch.load(ckpt, map_location=device, weights_only=True)
        model.load_state_dict(state["model"])
        opt.load_state_dict(state["optimizer"])
        sched.load_state_dict(state["scheduler"])
        start, loss_value = int(state["epoch"]), float(state.get("loss", float("nan")))
    train_idx = np.asarray(train_idx)
    weight = class_weights(bank.labels[train_idx], len(net.classes), cfg.class_weights)
    weight = weight.to(device) if weight is not None else None
    ran = 0
    for epoch in range(start, cfg.epochs):
        if stop_after is not None and ran >= stop_after:
            return model, epoch, loss_value
        torch.manual_seed(_seed(cfg.seed, fold, epoch))  # dropout and drop-path draws
        rng = np.random.default_rng([cfg.seed, fold, epoch])
        model.train()
        losses = []
        for b in _batches(rng.permutation(train_idx), cfg.batch_size):
            motion, onset, y = make_batch(bank, b, net, rng=rng, aug=cfg.augment)
            out = model(torch.from_numpy(motion).to(device), torch.from_numpy(onset).to(device))
            loss = F.cross_entropy(out.logits, torch.from_numpy(y).to(device), weight=weight)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            losses.append(float(loss.detach()))
        sched.step()
        ran, loss_value = ran + 1, float(np.mean(losses))
        if (epoch + 1) % cfg.save_every == 0 or epoch + 1 == cfg.epochs:
            out_dir.mkdir(parents=True, exist_ok=True)
            _save(ckpt, {"model": model.state_dict(), "optimizer": opt.state_dict(), "scheduler": sched.state_dict(),
                         "epoch": epoch + 1, "loss": loss_value})
    return model, cfg.epochs, loss_value


def _evaluate(model: MMNet, bank: CropBank, idx: Sequence[int]) -> list[dict]:
    net = model.config
    out = []
    for s in range(0, len(idx), 64):
        chunk = list(idx[s:s + 64])
        motion, onset, _ = make_batch(bank, chunk, net)
        probs, _ = predict_batch(model, motion, onset)
        for i, p in zip(chunk, probs):
            it = bank.items[i]
            out.append({**it, "prediction": net.classes[int(np.argmax(p))],
                        "probabilities": {c: round(float(v), 5) for c, v in zip(net.classes, p)}})
    return out


def _fingerprint(cfg: RecognizerTrainConfig) -> dict:
    d = json.loads(json.dumps(cfg.to_dict(), default=str))
    for k in _RUNTIME_KEYS:
        d.pop(k, None)
    d["split"].pop("max_folds", None)
    d["data"].pop("crop_cache", None)
    return d


def _check_resume(run_dir: Path, cfg: RecognizerTrainConfig) -> None:
    p = run_dir / "run_config.json"
    fp = _fingerprint(cfg)
    if p.is_file():
        old = json.loads(p.read_text(encoding="utf-8"))
        if old != fp:
            diff = sorted(k for k in set(old) | set(fp) if old.get(k) != fp.get(k))
            raise RecognizerConfigError(f"{run_dir} holds a run with a different config ({', '.join(diff)}); "
                                        f"use a new run_dir")
    else:
        run_dir.mkdir(parents=True, exist_ok=True)
        p.write_text(json.dumps(fp, indent=1) + "\n", encoding="utf-8")


def _device(name: str) -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(name)


def train_recognizer(cfg: RecognizerTrainConfig, *, stop_after: int | None = None, verbose: bool = True) -> RecognizerRun:
    """Run every fold (resuming what a previous call left), write the report and the final model."""
    if cfg.threads:
        torch.set_num_threads(int(cfg.threads))
    run_dir, device = Path(cfg.run_dir), _device(cfg.device)
    _check_resume(run_dir, cfg)
    say = print if verbose else (lambda *a, **k: None)
    net0 = network_config(cfg, classes=("a", "b"))
    t0 = time.perf_counter()
    bank = load_bank(cfg, run_dir, size=net0.image_size)
    net = network_config(cfg, classes=bank.classes)
    say(f"recognizer: {len(bank)} clips, classes {', '.join(bank.classes)}, {len(bank.skipped)} skipped; "
        f"crops ready in {time.perf_counter() - t0:.1f} s")
    folds, results = plan_folds(bank, cfg), []
    for k, f in enumerate(folds):
        fdir = run_dir / "folds" / f["name"]
        res_path = fdir / "result.json"
        if res_path.is_file():
            res = json.loads(res_path.read_text(encoding="utf-8"))
            if res.get("epochs") == cfg.epochs:
                results.append(res)
                continue
        t1 = time.perf_counter()
        model, done, loss = train_fold(bank, f["train"], net, cfg, fold=k, out_dir=fdir, device=device,
                                       stop_after=stop_after)
        if done < cfg.epochs:
            say(f"fold {k + 1}/{len(folds)} stopped after epoch {done}; run again to resume")
            return RecognizerRun(run_dir, {}, None, False)
        res = {"fold": k + 1, "name": f["name"], "held_out": f["held_out"], "n_train": len(f["train"]),
               "epochs": cfg.epochs, "train_loss": loss, "train_seconds": round(time.perf_counter() - t1, 2),
               "items": _evaluate(model, bank, f["test"])}
        res_path.write_text(json.dumps(res, indent=1) + "\n", encoding="utf-8")
        results.append(res)
        fold_report = build_report([res], classes=bank.classes, protocol=cfg.split.protocol, config={})["folds"][0]
        say(f"fold {k + 1}/{len(folds)} held out {', '.join(f['held_out'])}: {fold_report['n']} clips, "
            f"accuracy {fold_report['accuracy']:.3f}, UF1 {fold_report['uf1']:.3f}, UAR {fold_report['uar']:.3f} "
            f"(train loss {loss:.3f}, {res['train_seconds']:.1f} s)")
    report = build_report(results, classes=bank.classes, protocol=cfg.split.protocol, config=cfg.to_dict(),
                          skipped=bank.skipped)
    model_dir = None
    if cfg.final_model:
        fdir = run_dir / "folds" / "all"
        model, done, _ = train_fold(bank, list(range(len(bank))), net, cfg, fold=len(folds) + 1000, out_dir=fdir,
                                    device=device, stop_after=stop_after)
        if done < cfg.epochs:
            say(f"final model stopped after epoch {done}; run again to resume")
            return RecognizerRun(run_dir, report, None, False)
        model_dir = model.cpu().save_pretrained(run_dir / "recognizer", extra={
            "trained_on_clips": len(bank), "subjects": sorted({f"{i['dataset']}/{i['subject']}" for i in bank.items}),
            "epochs": cfg.epochs, "protocol_scores": {"protocol": cfg.split.protocol,
                                                      **{k: report["pooled"].get(k) for k in ("accuracy", "uf1", "uar")}}})
    j, m = write_report(report, run_dir)
    p = report["pooled"]
    say(f"pooled ({cfg.split.protocol}, {report['n_folds']} folds, {report['n_clips']} clips): accuracy "
        f"{p['accuracy']:.3f}, UF1 {p['uf1']:.3f}, UAR {p['uar']:.3f} (chance UAR {report['chance_uar']:.3f})")
    say(f"report: {j} and {m}" + (f"; recogniser: {model_dir}" if model_dir else ""))
    return RecognizerRun(run_dir, report, model_dir, True)


def main_train_recognizer(config_path, overrides: Sequence[str] = ()) -> RecognizerRun:
    """``mevqa train CONFIG`` for a config with a ``recognizer:`` section."""
    return train_recognizer(load_recognizer_config(config_path, overrides))
