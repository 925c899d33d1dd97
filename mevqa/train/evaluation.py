"""Held-out evaluation at the end of a run, shared across processes.

Each process answers its share of the held-out questions (:func:`mevqa.train.data.shard`) with the
trained adapter through the same agent ``mevqa ask`` uses, and beside it the evidence-only backend;
its rows go to ``RUN_DIR/eval/part-R.jsonl``. After one barrier the main process joins the parts in
question order and scores them (coarse/fine UF1 and UAR, BLEU, ROUGE-1): no process waits while
another answers every question, and a part on disk survives a crash of another process.
"""
from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Callable

from tqdm.auto import tqdm

from mevqa.answer.agent import Agent, EvidenceBackend, VLMBackend
from mevqa.megc.metrics import vqa_scores
from mevqa.train.config import TrainConfig
from mevqa.train.data import TrainData, shard

__all__ = ["evaluate"]

_KEYS = ("n", "coarse_uf1", "coarse_uar", "fine_uf1", "fine_uar", "presence_accuracy", "side_accuracy",
         "analysis_exact", "bleu_sentence_smoothed", "bleu_corpus4", "rouge1_recall", "rouge1_f1", "counts")


def _write_atomic(path: Path, text: str) -> None:
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    tmp.write_text(text, encoding="utf-8")
    os.replace(tmp, path)


def evaluate(vlm, data: TrainData, cfg: TrainConfig, out_dir: Path, *, progress: bool, rank: int = 0,
             world: int = 1, barrier: Callable[[], None] = lambda: None) -> dict:
    """Answer the held-out questions (this process's share) and, on rank 0, score them all.

    Returns the metrics on rank 0 and ``{}`` elsewhere.
    """
    items = data.test_items[: cfg.eval_max_questions] if cfg.eval_max_questions else data.test_items
    order = {id(it): i for i, it in enumerate(items)}
    agent, baseline = Agent(VLMBackend(vlm)), Agent(EvidenceBackend())
    out_dir.mkdir(parents=True, exist_ok=True)
    rows = []
    for it in tqdm(shard(items, rank, world), desc="eval", disable=not progress, leave=False):
        ev = data.evidence[it.key]
        ans = agent.ask(ev, it.question)
        rows.append({"n": order[id(it)], "id": it.id, "dataset": it.dataset, "subject": it.subject,
                     "image_id": it.image_id, "question": it.question, "answer": it.answer, "prediction": ans.text,
                     "raw": ans.raw, "evidence_only": baseline.ask(ev, it.question).text})
    _write_atomic(out_dir / f"part-{rank}.jsonl", "".join(json.dumps(r) + "\n" for r in rows))
    barrier()
    if rank != 0:
        return {}
    rows = []
    for r in range(world):
        part = out_dir / f"part-{r}.jsonl"
        rows += [json.loads(line) for line in part.read_text(encoding="utf-8").splitlines() if line.strip()]
        part.unlink()
    rows.sort(key=lambda row: row.pop("n"))
    questions, refs = [r["question"] for r in rows], [r["answer"] for r in rows]

    def scores(predictions: list[str]) -> dict:
        s = vqa_scores(questions, refs, predictions).to_dict()
        return {k: s[k] for k in _KEYS}

    metrics = {"adapter": scores([r["prediction"] for r in rows]),
               "baseline": scores([r["evidence_only"] for r in rows]), "test_subjects": data.test_subjects}
    _write_atomic(out_dir / "predictions.jsonl", "".join(json.dumps(r) + "\n" for r in rows))
    _write_atomic(out_dir / "metrics.json", json.dumps(metrics, indent=1) + "\n")
    return metrics
