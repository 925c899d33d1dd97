"""The model card: README.md in the adapter folder, saying what the adapter was trained on and how it scored."""
from __future__ import annotations

import os
from collections import Counter
from pathlib import Path

from mevqa.train.config import TINY_MODELS, TrainConfig
from mevqa.train.data import TrainData

__all__ = ["write_card", "fmt"]


def fmt(x) -> str:
    return "n/a" if x is None else f"{x:.3f}"


def write_card(adapter_dir: Path, cfg: TrainConfig, model_path: str, data: TrainData, train_set, total: int,
                losses: list[float], metrics: dict, n_trainable: int) -> None:
    """README.md in the adapter folder (replacing PEFT's template): data, split, settings, metrics."""
    base = cfg.model if cfg.model not in TINY_MODELS else model_path
    kinds = Counter(it.kind for it in data.train_items)
    classes = Counter(it.label for it in data.train_items if it.kind in ("coarse", "fine"))
    lines = [
        "---", f"base_model: {base}", "library_name: peft", "tags: [mevqa, micro-expression, lora, qwen-vl]", "---", "",
        f"# mevqa LoRA adapter for {base}", "",
        "Answers MEGC2025 ME-VQA questions about facial micro-expressions from three keyframes (onset, apex,",
        "offset), the onset-to-apex optical-flow map and mevqa's measured evidence (action units, FACS emotion",
        "candidates), all rendered by `mevqa.answer.prompt.build_messages`, the prompt the agent uses at inference.", "",
        "```", f"mevqa ask CLIP \"What is the coarse expression class?\" --model {base} --adapter {adapter_dir}", "```", "",
        "## Data", "",
        *[f"- {s}" for s in data.sources],
        f"- {data.n_clips} clips with questions; {len(data.train_items)} training questions "
        f"({', '.join(f'{k} {v}' for k, v in kinds.most_common())}), {len(data.test_items)} held-out questions",
        f"- training classes (coarse/fine questions): {', '.join(f'{k} {v}' for k, v in classes.most_common()) or 'none'}",
        f"- evidence on the {'coded onset/apex/offset of the coding sheet' if cfg.data.coded_interval else 'spotted interval'}",
        *([f"- {len(data.skipped)} clips or records skipped, e.g. {data.skipped[0]}"] if data.skipped else []), "",
        "## Split (subject-independent)", "",
        f"- {data.split_text}",
        f"- training subjects ({len(data.train_subjects)}): {', '.join(data.train_subjects)}",
        f"- held-out subjects ({len(data.test_subjects)}): {', '.join(data.test_subjects) or 'none'}",
        "- checked with `assert_subject_disjoint` before training: no subject is on both sides", "",
        "## Settings", "",
        f"- LoRA r {cfg.lora.r}, alpha {cfg.lora.alpha}, dropout {cfg.lora.dropout}; targets "
        f"`{cfg.lora.target_modules or 'language model q/k/v/o + gate/up/down'}`"
        f"{'; vision blocks' if cfg.lora.vision else ''}{'; merger' if cfg.lora.merger else ''}"
        f"{'; fully trained: ' + ', '.join(cfg.lora.modules_to_save) if cfg.lora.modules_to_save else ''}; "
        f"vision tower {'adapted' if cfg.lora.vision else 'frozen'}; {n_trainable:,} trainable parameters",
        f"- {'QLoRA: 4-bit NF4 base (bitsandbytes)' if cfg.load_in_4bit else 'LoRA on a full-precision base'}; "
        f"{'bf16' if cfg.bf16 else 'fp32'} on GPU, {'bf16' if cfg.cpu_bf16 else 'fp32'} on CPU",
        f"- {total} optimizer steps of {cfg.batch_size} x {cfg.grad_accum} samples per process; lr {cfg.lr:g} "
        f"({cfg.scheduler}, {cfg.warmup_steps} warmup steps), weight decay {cfg.weight_decay:g}, "
        f"grad clip {cfg.max_grad_norm:g}; class balance: {cfg.balance}; seed {cfg.seed}",
        "- loss: cross-entropy on the answer tokens and `<|im_end|>` only, averaged per sample",
        f"- training loss {fmt(losses[0] if losses else None)} -> {fmt(losses[-1] if losses else None)}", "",
        "## Held-out metrics", "",
    ]
    if metrics:
        lines += ["UF1 = macro F1, UAR = mean per-class recall, over the classes present in the held-out answers;",
                  "BLEU = mean sentence BLEU-4 with smoothing (NLTK method 1) and sacreBLEU corpus BLEU-4; ROUGE-1",
                  "recall and F1 (rouge-score), all answers lower-cased. The evidence-only backend answers the same",
                  "questions from the same evidence without a model.", "",
                  "| | coarse UF1 | coarse UAR | fine UF1 | fine UAR | BLEU (sent.) | BLEU (corpus) | ROUGE-1 R | ROUGE-1 F1 |",
                  "|---|---|---|---|---|---|---|---|---|"]
        for name, key in (("adapter", "adapter"), ("evidence-only", "baseline")):
            m = metrics[key]
            lines.append(f"| {name} | {fmt(m['coarse_uf1'])} | {fmt(m['coarse_uar'])} | {fmt(m['fine_uf1'])} | "
                         f"{fmt(m['fine_uar'])} | {fmt(m['bleu_sentence_smoothed'])} | {fmt(m['bleu_corpus4'])} | "
                         f"{fmt(m['rouge1_recall'])} | {fmt(m['rouge1_f1'])} |")
        lines += ["", f"{metrics['adapter']['n']} held-out questions; predictions in `{cfg.run_dir}/eval/predictions.jsonl`."]
    else:
        lines.append("Not evaluated: " + ("no held-out subject." if not data.test_items else "eval_at_end is false."))
    lines += ["", "## Limitations", "",
              "Micro-expression datasets are small (tens of subjects); scores on a few held-out subjects vary a lot",
              "between folds. The adapter reads emotions from facial movements: it does not detect lies or intentions.", ""]
    path = adapter_dir / "README.md"
    tmp = path.with_name(f".README.md.tmp-{os.getpid()}")
    tmp.write_text("\n".join(lines), encoding="utf-8")
    os.replace(tmp, path)  # a kill mid-write leaves PEFT's template, never half a card
