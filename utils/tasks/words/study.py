"""The comparison of complex and real word classifiers: saved checkpoints measured on one set of
features, mean ± standard deviation over seeds per (arch, kind), and the history of a training
run read back from its log.

Notebook: notebooks/06_complex_networks.ipynb
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from utils.models.complex_cnn import count_parameters
from utils.tasks.words.checkpoints import load_model
from utils.tasks.words.evaluation import evaluate
from utils.tasks.words.features import WordData, model_input

__all__ = ["evaluate_checkpoints", "summarize", "run_records"]


def evaluate_checkpoints(
    paths: Sequence[str | Path],
    data: WordData,
    *,
    threads: int | None = 1,
) -> list[dict[str, Any]]:
    """Evaluate saved word classifiers on one set of complex features.

    The data's classes must be the checkpoints' words (load them with ``classes=words``); a
    folder holding only some of the words (real recordings of three of them) is fine:
    predictions are still over all the classes.

    Notebook: notebooks/06_complex_networks.ipynb

    Args:
        paths: Checkpoint files.
        data: Features and labels (:func:`load_words`).
        threads: torch threads during the evaluation.

    Returns:
        One record per checkpoint: ``file``, ``arch``, ``kind``, ``seed``, ``params``,
        ``accuracy``, ``loss``, ``confusion``, ``best_epoch``.
    """
    out = []
    for path in paths:
        model, ckpt = load_model(path)
        cfg = ckpt["config"]
        if list(cfg["words"]) != list(data.words):
            raise ValueError(f"{path}: classes {cfg['words']} differ from the data's {data.words}")
        r = evaluate(model, model_input(data.x, cfg["kind"]), data.y,
                     num_classes=len(data.words), threads=threads)
        out.append({"file": Path(path).name, "arch": cfg["arch"], "kind": cfg["kind"],
                    "seed": cfg.get("seed"), "params": count_parameters(model),
                    "accuracy": r["accuracy"], "loss": r["loss"], "confusion": r["confusion"],
                    "best_epoch": ckpt.get("history", {}).get("best_epoch")})
    return out


def summarize(records: Sequence[dict[str, Any]], key: str = "accuracy") -> list[dict[str, Any]]:
    """Mean ± standard deviation (over seeds) of ``key`` per (arch, kind), in first-seen order.

    Notebook: notebooks/06_complex_networks.ipynb

    Args:
        records: Output of :func:`evaluate_checkpoints`.
        key: The measure to aggregate.

    Returns:
        Rows ``{"arch", "kind", "params", "seeds", "mean", "std"}`` (std with ddof=1; 0 for
        one seed).
    """
    groups: dict[tuple[str, str], list[dict[str, Any]]] = {}
    for r in records:
        groups.setdefault((r["arch"], r["kind"]), []).append(r)
    rows = []
    for (arch, kind), rs in groups.items():
        vals = np.array([r[key] for r in rs], dtype=np.float64)
        rows.append({"arch": arch, "kind": kind, "params": rs[0]["params"], "seeds": len(rs),
                     "mean": float(vals.mean()),
                     "std": float(vals.std(ddof=1)) if len(vals) > 1 else 0.0})
    return rows


def _fmt(rows: list[dict[str, Any]]) -> list[str]:
    return [f"{r['arch']:6s} {r['kind']:8s} {r['params']:8d} {r['seeds']:5d} "
            f"{100 * r['mean']:6.1f} ± {100 * r['std']:4.1f} %" for r in rows]


def run_records(log: str | Path) -> list[dict[str, Any]]:
    """The records of a whole run from its ``log.jsonl``, across every ``--resume``.

    A resume continues from the step of ``last.pt``, so records the log holds for later steps
    (written before an interruption, then done again) are dropped at each ``resume`` event;
    a record logged twice for one step (training or validation) keeps its last copy. The result
    is what one uninterrupted run would have logged: every step once, in order.

    Notebook: notebooks/06_complex_networks.ipynb

    Args:
        log: The run's ``log.jsonl`` (a missing file gives no records).

    Returns:
        Training and validation records, ordered by step (training before validation).
    """
    path = Path(log)
    if not path.is_file():
        return []
    kept: dict[tuple[int, bool], dict[str, Any]] = {}
    for line in path.read_text().splitlines():
        if not line.strip():
            continue
        try:
            r = json.loads(line)
        except json.JSONDecodeError:  # a line cut short by a crash
            continue
        if not isinstance(r, dict) or not isinstance(r.get("step"), int):
            continue
        if r.get("event") == "resume":
            kept = {k: v for k, v in kept.items() if k[0] <= r["step"]}
        elif "event" not in r:
            kept[(r["step"], "loss" not in r)] = r
    return [kept[k] for k in sorted(kept)]


def _history(records: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """The per-epoch history stored with an exported classifier, from the run's log."""
    val = [r for r in records if "val_accuracy" in r]
    steps = [r for r in records if "loss" in r]
    best = max(val, key=lambda r: r["val_accuracy"], default=None)
    return {"train_step": [r["step"] for r in steps],
            "train_loss": [r["loss"] for r in steps], "lr": [r["lr"] for r in steps],
            "val_step": [r["step"] for r in val],
            "val_loss": [r["val_loss"] for r in val],
            "val_accuracy": [r["val_accuracy"] for r in val],
            "best_step": best["step"] if best else 0,
            "best_val_accuracy": best["val_accuracy"] if best else math.nan}

