"""Task ``degli``: Deep Griffin-Lim (a complex or a real denoiser), trained and measured.

Training (``python -m utils.train degli --data DIR --out RUN [--set kind=real]``): random
crops of the training waveforms; the input is the NNLS magnitude of their log-mel, PGHI's
phase on it (:func:`utils.models.degli.magnitude_and_phase`, what Griffin-Lim would start
from) and the mel itself, the target the waveform. The loss is the vocoder's
(multi-resolution STFT loss + ``mel_weight`` × log-mel L1), on the waveform of every learned
iteration, later ones weighted more (``k / Σk``): a phase is judged by how the sound it makes
fits, never against the true phase, whose global offset no magnitude can tell. ``best.pt``
has the lowest validation log-mel L1.

Evaluation (``python -m utils.evaluate degli CHECKPOINT DATA_DIR``): each clip resynthesised
from its true log-mel, scored by :func:`utils.scoring.score_files` (delay 0).

Notebook: notebooks/08_vocoders.ipynb
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor, nn

from utils import options, scoring
from utils.errors import OptionError
from utils.models.degli import MODEL_KIND, DeepGriffinLim, DeGLIConfig, magnitude_and_phase
from utils.models.vocoder import multi_resolution_stft_loss
from utils.phase import torch_istft
from utils.tasks import codec as codec_task
from utils.tasks.vocoder import evaluate_command as evaluate_learned
from utils.tasks.vocoder import make_wave_batch
from utils.training import Task, TrainConfig, override, train

__all__ = ["SUMMARY", "TRAIN_DEFAULTS", "DeGLITask", "add_train_arguments", "train_command",
           "add_eval_arguments", "evaluate_command"]

#: One line for ``--help``.
SUMMARY = "Deep Griffin-Lim: Griffin-Lim's projections + a complex (or real) denoiser"

#: Defaults of the shared training settings.
TRAIN_DEFAULTS = dict(steps=600, batch_size=8, lr=3e-4, weight_decay=0.0, warmup=50,
                      min_lr_ratio=0.05, grad_clip=5.0, log_every=25, val_every=150,
                      save_every=100)


def _start(x: Tensor) -> tuple[Tensor, Tensor]:
    """NNLS magnitudes and PGHI phases of a log-mel batch (NumPy, clip by clip)."""
    pairs = [magnitude_and_phase(m.numpy()) for m in x]
    return (torch.from_numpy(np.stack([a for a, _ in pairs])),
            torch.from_numpy(np.stack([p for _, p in pairs])))


class DeGLITask(Task):
    """Deep Griffin-Lim for the training loop.

    Notebook: notebooks/08_vocoders.ipynb

    Args:
        data: Speech Commands-layout folders (train and validation splits used).
        config: The model's configuration.
        crop_frames: Training crop in mel frames (32 ≈ 0.5 s).
        mel_weight: Weight of the log-mel L1 term.
    """

    name = "degli"
    kind = MODEL_KIND
    best_metric = "val_logmel_l1"
    best_mode = "min"

    def __init__(self, data: Sequence[str | Path], config: DeGLIConfig | None = None, *,
                 crop_frames: int = 32, mel_weight: float = 2.5) -> None:
        missing = [str(d) for d in data if not Path(d).is_dir()]
        if not data or missing:
            raise OptionError("--data", f"no such folder: {', '.join(missing) or '(none given)'}")
        if crop_frames < 8:
            raise OptionError("--crop-frames", f"must be at least 8, got {crop_frames}")
        if not np.isfinite(mel_weight) or mel_weight < 0:
            raise OptionError("--mel-weight", f"must be finite and ≥ 0, got {mel_weight}")
        self.config = config or DeGLIConfig()
        self.data = [str(d) for d in data]
        self.crop_frames = crop_frames
        self.mel_weight = mel_weight
        self.train_waves: list[Tensor] = []
        self.val_waves: list[Tensor] = []

    def load_data(self) -> list[str]:  # noqa: D102
        self.train_waves, report = codec_task.load_waveforms(self.data, "train")
        val, vreport = codec_task.load_waveforms(self.data, "validation")
        self.val_waves = val[:: max(1, len(val) // 24)][:24]
        if not self.train_waves:
            raise OptionError("--data", f"no usable training clip in {', '.join(self.data)}")
        return report + vreport

    def build_model(self) -> DeepGriffinLim:  # noqa: D102
        return DeepGriffinLim(self.config)

    def batch(self, step: int, *, seed: int, batch_size: int, rank: int = 0,
              world: int = 1) -> tuple[Tensor, ...]:  # noqa: D102
        y, x = make_wave_batch(self.train_waves, step, batch_size=batch_size,
                               crop=self.crop_frames, seed=seed, rank=rank, world=world)
        A, phase = _start(x)
        return y, x, A, phase

    def _wave_loss(self, y_hat: Tensor, y: Tensor, x: Tensor) -> tuple[Tensor, Tensor]:
        stft_loss, _ = multi_resolution_stft_loss(y_hat, y)
        mel_l1 = (codec_task.torch_log_mel(y_hat)[..., : x.shape[-1]] - x).abs().mean()
        return stft_loss + self.mel_weight * mel_l1, mel_l1

    def loss(self, model: nn.Module, batch: tuple[Tensor, ...]
             ) -> tuple[Tensor, dict[str, Any]]:  # noqa: D102
        y, x, A, phase = batch
        estimates = model(A, torch.polar(A, phase), torch.pow(10.0, x), y.shape[-1],
                          every=True)
        K = len(estimates)
        total, mel_l1 = 0.0, None
        for k, X in enumerate(estimates, 1):
            part, mel_l1 = self._wave_loss(torch_istft(X, length=y.shape[-1]), y, x)
            total = total + part * (k / (K * (K + 1) / 2))
        return total, {"mel_l1": float(mel_l1.detach())}

    @torch.no_grad()
    def validate(self, model: nn.Module, device: torch.device) -> dict[str, Any]:  # noqa: D102
        if not self.val_waves:
            return {}
        was = model.training
        model.eval()
        l1, stft = [], []
        try:
            for w in self.val_waves:
                y = w[None].to(device)
                x = codec_task.torch_log_mel(y)
                A, phase = _start(x.cpu())
                A, phase = A.to(device), phase.to(device)
                X = model(A, torch.polar(A, phase), torch.pow(10.0, x), y.shape[-1])
                y_hat = torch_istft(X, length=y.shape[-1])
                l1.append(float((codec_task.torch_log_mel(y_hat) - x).abs().mean()))
                stft.append(float(multi_resolution_stft_loss(y_hat, y)[0]))
        finally:
            model.train(was)
        return {"val_logmel_l1": float(np.mean(l1)), "val_stft_loss": float(np.mean(stft))}

    def checkpoint(self, model: nn.Module) -> dict[str, Any]:  # noqa: D102
        return model.checkpoint(task=self.name, data=self.data, crop_frames=self.crop_frames,
                                mel_weight=self.mel_weight)


# --------------------------------------------------------------------------------------------
# Command lines
# --------------------------------------------------------------------------------------------


def add_train_arguments(p: argparse.ArgumentParser) -> None:
    """The options of ``python -m utils.train degli``.

    Notebook: notebooks/08_vocoders.ipynb
    """
    p.add_argument("--data", action="append", required=True,
                   help="Speech Commands-layout folder (repeatable)")
    p.add_argument("--crop-frames", type=options.COUNT,
                   default=32, help="training crop in mel frames")
    p.add_argument("--mel-weight", type=options.WEIGHT,
                   default=2.5, help="weight of the log-mel L1")
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                   help="model hyper-parameter, e.g. --set kind=real --set iterations=4")


def train_command(args: argparse.Namespace, cfg: TrainConfig) -> dict[str, Any]:
    """Run ``python -m utils.train degli``: every option is checked before the data loads.

    Notebook: notebooks/08_vocoders.ipynb

    Returns:
        The final record.
    """
    config = override(DeGLIConfig(), args.set)
    task = DeGLITask(args.data, config, crop_frames=args.crop_frames,
                     mel_weight=args.mel_weight)
    return train(task, cfg).last


def add_eval_arguments(p: argparse.ArgumentParser) -> None:
    """The options of ``python -m utils.evaluate degli``.

    Notebook: notebooks/08_vocoders.ipynb
    """
    scoring.add_clip_scoring_arguments(p, "Deep Griffin-Lim")


def evaluate_command(a: argparse.Namespace) -> dict[str, Any]:
    """Run ``python -m utils.evaluate degli``: resynthesis from the true mel, scored.

    The same evaluation as ``python -m utils.evaluate vocoder``, which takes every learned
    reconstruction (:func:`utils.tasks.vocoder.evaluate_command`).

    Notebook: notebooks/08_vocoders.ipynb

    Returns:
        The summary.
    """
    return evaluate_learned(a)
