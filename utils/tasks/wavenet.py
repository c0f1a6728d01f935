"""Task ``wavenet``: a small mel-conditioned WaveNet through the shared training loop.

Training (``python -m utils.train wavenet --data DIR --out RUN``): random crops of the training
waveforms; the target is each sample's 8-bit μ-law class, the input the classes before it
(teacher forcing) and the crop's log-mel; loss = cross-entropy (reported in nats and bits per
sample). Validation: the same on fixed crops of the validation clips. Generation is sample by
sample (:meth:`utils.models.wavenet.WaveNet.generate`); notebook 08 and
``benchmarks/vocoder_compare.py`` measure its speed and quality.

Notebook: notebooks/08_vocoders.ipynb
"""

from __future__ import annotations

import argparse
import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn

from utils import options
from utils.audio import FEATURES
from utils.errors import OptionError
from utils.models.wavenet import MODEL_KIND, WaveNet, WaveNetConfig, mu_law_encode
from utils.tasks import codec as codec_task
from utils.training import Task, TrainConfig, override, train

__all__ = ["SUMMARY", "TRAIN_DEFAULTS", "WaveNetTask", "make_crops", "add_train_arguments",
           "train_command", "add_eval_arguments", "evaluate_command"]

#: One line for ``--help``.
SUMMARY = "small mel-conditioned WaveNet (8-bit μ-law softmax, incremental generation)"

#: The WaveNet's defaults of the shared training settings.
TRAIN_DEFAULTS = dict(steps=3000, batch_size=4, lr=2e-3, weight_decay=0.0, warmup=100,
                      min_lr_ratio=0.05, grad_clip=1.0, log_every=50, val_every=500,
                      save_every=250)


def make_crops(waves: Sequence[Tensor], gen: torch.Generator, n: int, samples: int
               ) -> tuple[Tensor, Tensor]:
    """``n`` random crops of ``samples`` samples (placed on voiced parts: the crop with the
    larger energy of two draws) and their log-mels.

    Notebook: notebooks/08_vocoders.ipynb

    Returns:
        ``(waveforms [n, samples], log-mel [n, n_mels, 1 + samples // hop])``.
    """
    out = torch.zeros(n, samples)
    for j in range(n):
        best = None
        for _ in range(2):
            w = waves[int(torch.randint(len(waves), (1,), generator=gen))]
            s = int(torch.rand(1, generator=gen) * max(0, len(w) - samples + 1))
            piece = w[s : s + samples]
            if best is None or piece.pow(2).sum() > best.pow(2).sum():
                best = piece
        out[j, : len(best)] = best
    return out, codec_task.torch_log_mel(out)


class WaveNetTask(Task):
    """The WaveNet for the training loop: μ-law classes and log-mel in, cross-entropy out.

    Notebook: notebooks/08_vocoders.ipynb

    Args:
        data: Speech Commands-layout folders (train and validation splits used).
        config: The model's configuration.
        samples: Samples per training crop.
    """

    name = "wavenet"
    kind = MODEL_KIND
    best_metric = "val_bits"
    best_mode = "min"

    def __init__(self, data: Sequence[str | Path], config: WaveNetConfig | None = None, *,
                 samples: int = 2048) -> None:
        missing = [str(d) for d in data if not Path(d).is_dir()]
        if not data or missing:
            raise OptionError("--data", f"no such folder: {', '.join(missing) or '(none given)'}")
        if samples < FEATURES.hop_length:
            raise OptionError("--samples", f"must be at least {FEATURES.hop_length}, got "
                                           f"{samples}")
        self.config = config or WaveNetConfig()
        self.data = [str(d) for d in data]
        self.samples = samples
        self.train_waves: list[Tensor] = []
        self.val: tuple[Tensor, Tensor] | None = None

    def load_data(self) -> list[str]:  # noqa: D102
        self.train_waves, report = codec_task.load_waveforms(self.data, "train")
        val, vreport = codec_task.load_waveforms(self.data, "validation")
        if not self.train_waves:
            raise OptionError("--data", f"no usable training clip in {', '.join(self.data)}")
        if val:
            self.val = make_crops(val, torch.Generator().manual_seed(12345), 16, self.samples)
        return report + vreport

    def build_model(self) -> WaveNet:  # noqa: D102
        return WaveNet(self.config)

    def batch(self, step: int, *, seed: int, batch_size: int, rank: int = 0,
              world: int = 1) -> tuple[Tensor, Tensor]:  # noqa: D102
        g = torch.Generator().manual_seed(seed * 1_000_003 + step)
        y, x = make_crops(self.train_waves, g, batch_size, self.samples)
        return y[rank::world], x[rank::world]

    def _nll(self, model: nn.Module, y: Tensor, x: Tensor) -> Tensor:
        q = mu_law_encode(y, self.config.quantization)
        logits = model(WaveNet.shift(q, self.config.quantization), x)
        return nn.functional.cross_entropy(logits, q)

    def loss(self, model: nn.Module, batch: tuple[Tensor, ...]
             ) -> tuple[Tensor, dict[str, Any]]:  # noqa: D102
        nll = self._nll(model, *batch)
        return nll, {"bits_per_sample": float(nll.detach()) / math.log(2)}

    @torch.no_grad()
    def validate(self, model: nn.Module, device: torch.device) -> dict[str, Any]:  # noqa: D102
        if self.val is None:
            return {}
        was = model.training
        model.eval()
        try:
            nll = float(self._nll(model, self.val[0].to(device), self.val[1].to(device)))
        finally:
            model.train(was)
        return {"val_nll": nll, "val_bits": nll / math.log(2)}

    def checkpoint(self, model: nn.Module) -> dict[str, Any]:  # noqa: D102
        return model.checkpoint(task=self.name, data=self.data, samples=self.samples)


def add_train_arguments(p: argparse.ArgumentParser) -> None:
    """The WaveNet's options of ``python -m utils.train wavenet``.

    Notebook: notebooks/08_vocoders.ipynb
    """
    p.add_argument("--data", action="append", required=True,
                   help="Speech Commands-layout folder (repeatable)")
    p.add_argument("--samples", type=options.COUNT, default=2048, help="samples per training crop")
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                   help="model hyper-parameter, e.g. --set channels=32 --set stacks=1")


def train_command(args: argparse.Namespace, cfg: TrainConfig) -> dict[str, Any]:
    """Run ``python -m utils.train wavenet``: every option is checked before the data loads.

    Notebook: notebooks/08_vocoders.ipynb

    Returns:
        The final record.
    """
    config = override(WaveNetConfig(), args.set)
    return train(WaveNetTask(args.data, config, samples=args.samples), cfg).last


def add_eval_arguments(p: argparse.ArgumentParser) -> None:
    """The WaveNet's options of ``python -m utils.evaluate wavenet``.

    Notebook: notebooks/08_vocoders.ipynb
    """
    p.add_argument("checkpoint", help="WaveNet checkpoint (.pt)")
    p.add_argument("data_dir", help="Speech Commands-layout folder")
    p.add_argument("--split", choices=["train", "validation", "testing"], default="testing")
    p.add_argument("--crops", type=options.COUNT, default=16, help="fixed crops scored")
    p.add_argument("--json", action="store_true", help="end with one JSON line")


def evaluate_command(a: argparse.Namespace) -> dict[str, Any]:
    """Run ``python -m utils.evaluate wavenet``: teacher-forced bits per sample on fixed crops.

    Notebook: notebooks/08_vocoders.ipynb

    Returns:
        ``bits_per_sample``, ``n_clips``, ``n_failed``.
    """
    if not Path(a.checkpoint).is_file():
        raise OptionError(a.checkpoint, "checkpoint file not found")
    if not Path(a.data_dir).is_dir():
        raise OptionError(a.data_dir, "no such folder")
    model = WaveNet.from_checkpoint(a.checkpoint)
    ckpt = torch.load(a.checkpoint, weights_only=True, map_location="cpu")
    task = WaveNetTask([a.data_dir], model.config, samples=int(ckpt.get("samples", 2048)))
    waves, report = codec_task.load_waveforms([a.data_dir], a.split)
    if not waves:
        raise OptionError(a.data_dir, f"no usable clip in split {a.split!r}")
    y, x = make_crops(waves, torch.Generator().manual_seed(54321), a.crops, task.samples)
    with torch.no_grad():
        nll = float(task._nll(model, y, x))
    print(*report, sep="\n")
    print(f"teacher-forced cross-entropy: {nll / math.log(2):.3f} bits per sample "
          f"(8 for a uniform guess over 256 classes)")
    return {"system": "WaveNet", "bits_per_sample": round(nll / math.log(2), 4),
            "n_clips": a.crops, "n_failed": 0}
