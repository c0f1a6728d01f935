"""Word classification as a task of the collection's one training loop (:class:`WordsTask`):
shifted feature batches, a pure function of (seed, step); cross-entropy; validation accuracy
picks ``best.pt``.

Notebook: notebooks/06_complex_networks.ipynb
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import asdict
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from utils.checkpoint import FORMAT_VERSION
from utils.errors import OptionError
from utils.tasks.words.checkpoints import KIND
from utils.tasks.words.classifiers import WordsConfig, build_model
from utils.tasks.words.evaluation import evaluate
from utils.tasks.words.features import WORD_FEATURES, WordData, WordFeatures, model_input
from utils.training import Task

__all__ = ["shift_frames", "WordsTask"]


def shift_frames(x: Tensor, max_shift: int, gen: torch.Generator) -> Tensor:
    """Roll every item by its own random number of frames in [-max_shift, max_shift].

    Notebook: notebooks/06_complex_networks.ipynb

    With the STFT phase measured from each frame's start (librosa), shifting the signal by
    ``k·hop`` samples shifts the frames by ``k``: the rolled features are those of a shifted
    clip, magnitude and phase (the clips have silence at both ends, so the wrap-around is mute).
    """
    if max_shift <= 0:
        return x
    shifts = torch.randint(-max_shift, max_shift + 1, (x.shape[0],), generator=gen)
    return torch.stack([torch.roll(xi, int(s), dims=-1) for xi, s in zip(x, shifts, strict=True)])


class WordsTask(Task):
    """Word classification for the training loop: shifted feature batches, cross-entropy.

    Notebook: notebooks/06_complex_networks.ipynb

    Args:
        config: The model's configuration (its ``words`` are the classes of the data).
        train_set: Training features and labels (:func:`load_words`).
        val_set: Validation features and labels (optional).
        max_shift: Largest random time shift of a training item, in frames (0: none).
        features: The feature settings the data was computed with (stored in checkpoints).
    """

    name = "words"
    kind = KIND
    best_metric = "val_accuracy"
    best_mode = "max"

    def __init__(self, config: WordsConfig, train_set: WordData, val_set: WordData | None = None,
                 *, max_shift: int = 6, features: WordFeatures = WORD_FEATURES) -> None:
        if max_shift < 0:
            raise OptionError("--max-shift", f"must not be negative, got {max_shift}")
        if list(config.words) != list(train_set.words):
            raise OptionError("words", f"{config.words} differ from the data's {train_set.words}")
        if config.kind != "complex" and config.width_scale is None:  # fix the twin's width once
            config = dataclasses.replace(config, width_scale=build_model(
                config.arch, config.kind, len(config.words), config.width, vgg=config.vgg,
                dropout=config.dropout).width_scale)
        self.config = config
        self.train_set = train_set
        self.val_set = val_set
        self.max_shift = max_shift
        self.features = features

    def load_data(self) -> list[str]:  # noqa: D102
        n_val = 0 if self.val_set is None else len(self.val_set.y)
        return [f"words: {len(self.train_set.y)} train / {n_val} validation clips, "
                f"{len(self.config.words)} classes"]

    def steps_per_epoch(self, batch_size: int) -> int:
        """Optimisation steps in one pass over the training set.

        Notebook: notebooks/06_complex_networks.ipynb
        """
        return math.ceil(len(self.train_set.y) / batch_size)

    def build_model(self) -> nn.Module:  # noqa: D102
        return self.config.build()

    def model_config(self) -> dict[str, Any]:  # noqa: D102
        return {**asdict(self.config), "words": list(self.config.words)}

    def batch(self, step: int, *, seed: int, batch_size: int, rank: int = 0,
              world: int = 1) -> tuple[Tensor, Tensor]:  # noqa: D102
        n = len(self.train_set.y)
        epoch, pos = divmod(step, self.steps_per_epoch(batch_size))
        perm = torch.randperm(n, generator=torch.Generator().manual_seed(seed * 1_000_003 + epoch))
        idx = perm[pos * batch_size : (pos + 1) * batch_size]
        gen = torch.Generator().manual_seed(seed * 7_919 + step)
        x = shift_frames(self.train_set.x[idx], self.max_shift, gen)
        x, y = model_input(x, self.config.kind), self.train_set.y[idx]
        return x[rank::world], y[rank::world]

    def loss(self, model: nn.Module, batch: tuple[Tensor, ...]
             ) -> tuple[Tensor, dict[str, Any]]:  # noqa: D102
        x, y = batch
        logits = model(x)
        accuracy = float((logits.detach().argmax(1) == y).float().mean())
        return F.cross_entropy(logits.float(), y), {"accuracy": accuracy}

    def validate(self, model: nn.Module, device: torch.device) -> dict[str, Any]:  # noqa: D102
        if self.val_set is None or len(self.val_set.y) == 0:
            return {}
        r = evaluate(model, model_input(self.val_set.x, self.config.kind), self.val_set.y)
        return {"val_loss": r["loss"], "val_accuracy": r["accuracy"]}

    def checkpoint(self, model: nn.Module) -> dict[str, Any]:  # noqa: D102
        return {"kind": KIND, "format_version": FORMAT_VERSION, "config": self.model_config(),
                "features": asdict(self.features), "model": model.state_dict()}
