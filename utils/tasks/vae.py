"""Task ``vae``: the Gaussian mel VAE, trained and measured as a codec.

Training (``python -m utils.train vae --data DIR --out RUN [--set beta=0.5 ...]``): the same
data, crops and augmentation as the codec task, loss = the negative ELBO of
:meth:`utils.models.vae.MelVAE.loss` (Gaussian log-mel likelihood + β·KL, with optional KL
annealing and free bits); validation = log-mel L1 of the posterior mean, the KL rate in bit/s
and the active units; ``best.pt`` has the lowest validation negative ELBO.

Evaluation (``python -m utils.evaluate vae CHECKPOINT DATA_DIR``): each clip is encoded, its
posterior mean decoded and inverted with Griffin-Lim, and scored like the codec (PESQ-WB,
log-mel L1, STOI); the bit rate is the measured KL of the clips in bit/s (bits-back coding:
see ``docs/metrics.md`` and notebook 03), so VAE and VQ-VAE points share one plot.

Notebook: notebooks/03_vae_vs_vqvae.ipynb
"""

from __future__ import annotations

import argparse
import dataclasses
import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor, nn

from utils import options, scoring
from utils.audio import log_mel
from utils.errors import OptionError
from utils.models.vae import MODEL_KIND, MelVAE, VAEConfig
from utils.tasks import codec as codec_task  # its data helpers, looked up at call time
from utils.tasks.codec import Augment
from utils.training import Task, TrainConfig, override, train

__all__ = ["SUMMARY", "TRAIN_DEFAULTS", "VAETask", "validate", "add_train_arguments",
           "train_command", "add_eval_arguments", "evaluate_command"]

#: One line for ``--help``.
SUMMARY = "Gaussian mel VAE with the codec's trunk (rate = KL in bits/s)"

#: The VAE's defaults of the shared training settings (those of the codec).
TRAIN_DEFAULTS = dict(steps=4000, batch_size=32, lr=1e-3, weight_decay=1e-4, warmup=200,
                      min_lr_ratio=0.1, grad_clip=1.0, log_every=25, val_every=500,
                      save_every=250)


@torch.no_grad()
def validate(model: MelVAE, feats: Sequence[Tensor], device: torch.device | str | None = None
             ) -> dict[str, Any]:
    """Posterior-mean log-mel L1, negative ELBO, KL rate and active units on whole clips.

    Notebook: notebooks/03_vae_vs_vqvae.ipynb

    Returns:
        ``val_l1``, ``val_loss`` (negative ELBO per element at the full β), ``val_kl``
        (nats per latent frame), ``val_rate_bps`` and ``val_active`` (active latent units).
    """
    device = device or next(model.parameters()).device
    was = model.training
    model.eval()
    l1 = loss = kl = 0.0
    elements = frames = 0
    mus = []
    try:
        for f in feats:
            x = f.to(device)[None]
            recon, out = model(x)
            value, stats = model.loss(x, recon, out)
            n = x.numel()
            l1 += stats["recon_l1"] * n
            loss += float(value) * n
            elements += n
            kl += stats["kl_nats_per_frame"] * out.mu.shape[1]
            frames += out.mu.shape[1]
            mus.append(out.mu[0].cpu())
    finally:
        model.train(was)
    kl_frame = kl / max(frames, 1)
    return {"val_l1": l1 / max(elements, 1), "val_loss": loss / max(elements, 1),
            "val_kl": kl_frame, "val_rate_bps": model.rate_bps(kl_frame),
            "val_active": int(model.active_units(torch.cat(mus)).sum()) if mus else 0}


class VAETask(Task):
    """The VAE for the training loop: log-mel crops in, negative ELBO out.

    Notebook: notebooks/03_vae_vs_vqvae.ipynb

    Args:
        data: Speech Commands-layout folders (train and validation splits used).
        config: The model's configuration.
        crop_frames: Training crop in mel frames.
        augment: Alter training clips (gain, noise), as for the codec.
        noise: Folders of real background noise for ``augment``.
    """

    name = "vae"
    kind = MODEL_KIND
    best_metric = "val_loss"
    best_mode = "min"

    def __init__(self, data: Sequence[str | Path], config: VAEConfig | None = None, *,
                 crop_frames: int = 64, augment: Augment | None = None,
                 noise: Sequence[str | Path] = ()) -> None:
        self.config = config or VAEConfig()
        if crop_frames < 1:
            raise OptionError("--crop-frames", f"must be at least 1, got {crop_frames}")
        missing = [str(d) for d in [*data, *noise] if not Path(d).is_dir()]
        if not data or missing:
            raise OptionError("--data", f"no such folder: {', '.join(missing) or '(none given)'}")
        if noise and augment is None:
            raise OptionError("--noise", "needs --augment")
        self.data = [str(d) for d in data]
        self.crop_frames = crop_frames
        self.augment = augment
        self.noise_dirs = [str(d) for d in noise]
        self.train_feats: list[Tensor] = []
        self.train_waves: list[Tensor] = []
        self.noise: list[Tensor] = []
        self.val_feats: list[Tensor] = []

    def load_data(self) -> list[str]:  # noqa: D102
        if self.augment is None:
            self.train_feats, report = codec_task.load_log_mels(self.data, "train")
        else:
            self.train_waves, report = codec_task.load_waveforms(self.data, "train")
            self.noise = codec_task.load_noise(self.noise_dirs, "train")
        self.val_feats, vreport = codec_task.load_log_mels(self.data, "validation")
        if not (self.train_feats or self.train_waves):
            raise OptionError("--data", f"no usable training clip in {', '.join(self.data)}")
        return report + vreport

    def build_model(self) -> MelVAE:  # noqa: D102
        return MelVAE(self.config)

    def batch(self, step: int, *, seed: int, batch_size: int, rank: int = 0,
              world: int = 1) -> tuple[Tensor, Tensor, Tensor]:  # noqa: D102
        if self.augment is not None:
            x, mask = codec_task.make_audio_batch(self.train_waves, step, batch_size=batch_size,
                                       crop=self.crop_frames, seed=seed, augment=self.augment,
                                       noise=self.noise, rank=rank, world=world)
        else:
            x, mask = codec_task.make_batch(self.train_feats, step, batch_size=batch_size,
                                 crop=self.crop_frames, seed=seed, rank=rank, world=world)
        return x, mask, torch.tensor(step)  # the step drives KL annealing

    def loss(self, model: nn.Module, batch: tuple[Tensor, ...]
             ) -> tuple[Tensor, dict[str, Any]]:  # noqa: D102
        x, mask, step = batch
        core = model.module if hasattr(model, "module") else model  # DDP wraps the model
        recon, out = model(x)
        return core.loss(x, recon, out, mask, int(step))

    def validate(self, model: nn.Module, device: torch.device) -> dict[str, Any]:  # noqa: D102
        return validate(model, self.val_feats, device) if self.val_feats else {}

    def checkpoint(self, model: nn.Module) -> dict[str, Any]:  # noqa: D102
        return model.checkpoint(task=self.name, data=self.data, crop_frames=self.crop_frames,
                                augment=None if self.augment is None
                                else dataclasses.asdict(self.augment), noise=self.noise_dirs)


# --------------------------------------------------------------------------------------------
# Command lines
# --------------------------------------------------------------------------------------------


def add_train_arguments(p: argparse.ArgumentParser) -> None:
    """The VAE's options of ``python -m utils.train vae``.

    Notebook: notebooks/03_vae_vs_vqvae.ipynb
    """
    codec_task.add_data_arguments(p)
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                   help="model hyper-parameter, e.g. --set beta=0.5 --set free_bits=0.1")


def train_command(args: argparse.Namespace, cfg: TrainConfig) -> dict[str, Any]:
    """Run ``python -m utils.train vae``: every option is checked before the data loads.

    Notebook: notebooks/03_vae_vs_vqvae.ipynb

    Returns:
        The final record (last log line and validation, step, elapsed time).
    """
    config = override(VAEConfig(), args.set)
    task = VAETask(args.data, config, crop_frames=args.crop_frames,
                   augment=Augment() if args.augment else None, noise=args.noise)
    return train(task, cfg).last


def add_eval_arguments(p: argparse.ArgumentParser) -> None:
    """The VAE's options of ``python -m utils.evaluate vae``.

    Notebook: notebooks/03_vae_vs_vqvae.ipynb
    """
    scoring.add_clip_scoring_arguments(p, "VAE")
    p.add_argument("--gl-iters", type=options.COUNT, default=32, help="Griffin-Lim iterations")
    p.add_argument("--sample", action="store_true",
                   help="decode a draw z ~ q(z|x), what the KL rate pays for (default: the mean)")


def evaluate_command(a: argparse.Namespace) -> dict[str, Any]:
    """Run ``python -m utils.evaluate vae``: prints a table; returns the summary.

    Notebook: notebooks/03_vae_vs_vqvae.ipynb

    Returns:
        The summary (``pesq_wb``, ``logmel_l1``, ``stoi``, ``bitrate_bps`` = the measured KL
        rate, ``n_clips``, ``n_failed``, ...).
    """
    from utils.distributed import resolve_device

    files = scoring.clip_files(a)
    device = resolve_device(a.device)
    model = MelVAE.from_checkpoint(a.checkpoint, map_location=device)
    kl = [0.0, 0]  # nats, latent frames

    def rec(y: np.ndarray) -> np.ndarray:
        x = torch.from_numpy(log_mel(y, model.features))[None].to(device)
        with torch.no_grad():
            _, out = model(x)
        kl[0] += float(out.kl.sum())
        kl[1] += out.kl.shape[1]
        return model.reconstruct(y, n_iter=a.gl_iters, sample=a.sample)

    res = scoring.score_files(files, rec, metrics=scoring.metrics_of(a), root=a.data_dir,
                              dnsmos_originals=a.dnsmos_originals,
                              progress=not a.no_progress)
    rate = model.rate_bps(kl[0] / kl[1]) if kl[1] else math.nan
    system = f"mel VAE (beta {model.config.beta:g}), " + (
        "posterior sample" if a.sample else "posterior mean")
    summary = scoring.report_scores(a, res, system, round(rate, 1))
    print(f"rate (KL)     {rate:.0f} bps")
    return summary
