"""How well one word classifier does on one set: accuracy, mean cross-entropy, confusion matrix.

Notebook: notebooks/06_complex_networks.ipynb
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn

__all__ = ["evaluate"]


@contextlib.contextmanager
def _threads(n: int | None) -> Iterator[None]:
    """Run with ``n`` torch intra-op threads, restoring the previous number afterwards."""
    before = torch.get_num_threads()
    if n is not None:
        torch.set_num_threads(n)
    try:
        yield
    finally:
        torch.set_num_threads(before)


@torch.no_grad()
def _predict(model: nn.Module, x: Tensor, batch_size: int) -> Tensor:
    """Logits on the CPU; the inputs go to the model's device batch by batch."""
    model.eval()
    device = next(model.parameters(), torch.empty(0)).device
    return torch.cat([model(x[i : i + batch_size].to(device)).float().cpu()
                      for i in range(0, len(x), batch_size)])


def evaluate(model: nn.Module, x: Tensor, y: Tensor, *, num_classes: int | None = None,
             batch_size: int = 64, threads: int | None = None) -> dict[str, Any]:
    """Accuracy, mean cross-entropy and confusion matrix of a classifier (eval mode).

    Notebook: notebooks/06_complex_networks.ipynb

    Args:
        model: The classifier (its input: complex features or magnitudes, see
            :func:`model_input`).
        x: Inputs ``[N, ...]``.
        y: Labels ``[N]``.
        num_classes: Size of the confusion matrix (default: the logits' width).
        batch_size: Evaluation batch size.
        threads: torch threads for the call (``None``: unchanged).

    Returns:
        ``{"accuracy", "loss", "confusion", "predictions", "n"}``; ``confusion[i, j]`` counts
        items of class ``i`` predicted as ``j`` (int64 array).
    """
    with _threads(threads):
        logits = _predict(model, x, batch_size)
    n_cls = num_classes or logits.shape[1]
    pred = logits.argmax(1)
    confusion = np.zeros((n_cls, n_cls), dtype=np.int64)
    np.add.at(confusion, (y.numpy(), pred.numpy()), 1)
    return {
        "accuracy": float((pred == y).float().mean()),
        "loss": float(F.cross_entropy(logits, y)),
        "confusion": confusion,
        "predictions": pred,
        "n": int(len(y)),
    }
