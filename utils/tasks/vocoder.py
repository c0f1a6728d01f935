"""Task ``vocoder``: the phase-aware mel vocoder, trained and measured against Griffin-Lim.

Training (``python -m utils.train vocoder --data DIR --out RUN [--set head=complex]``):
random crops of the training waveforms; the input is their log-mel (the collection's features,
computed in torch), the target the waveform itself; loss = multi-resolution STFT loss +
``mel_weight`` × log-mel L1 of the resynthesis. Validation: log-mel L1 and the STFT loss on
whole validation clips; ``best.pt`` has the lowest log-mel L1.

Adversarial fine-tuning (``--adversarial mpd|mrd|both --init data/pretrained/vocoder.pt``): the
vocoder starts from a trained checkpoint and trains against discriminators
(:mod:`utils.models.discriminators`) attached to it as ``model.discriminators``; one optimizer
steps both at once (simultaneous gradient descent): the discriminators' loss sees the generated
audio detached, and the generator's adversarial and feature-matching losses see the
discriminators' weights detached (``torch.func.functional_call``), so each loss moves only its
own side. ``--adversarial none --init ...`` is the control: the same steps without them.

Evaluation (``python -m utils.evaluate vocoder CHECKPOINT DATA_DIR [--json]``, CHECKPOINT any
learned reconstruction: a vocoder or a Deep Griffin-Lim): each clip is resynthesised from its
true log-mel and scored like the codec (``utils.scoring.score_files``,
delay 0: the vocoder is in time by construction), so the numbers sit next to Griffin-Lim's
(``python -m utils.evaluate codec - DATA_DIR --baseline griffinlim``).

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
from torch.func import functional_call

from utils import options, scoring
from utils.audio import FEATURES, log_mel
from utils.errors import OptionError
from utils.models.discriminators import (
    Discriminators,
    discriminator_loss,
    feature_matching_loss,
    generator_adversarial_loss,
)
from utils.models.vocoder import MODEL_KIND, MelVocoder, VocoderConfig, multi_resolution_stft_loss
from utils.tasks import codec as codec_task
from utils.training import Task, TrainConfig, override, train

__all__ = ["SUMMARY", "TRAIN_DEFAULTS", "ADVERSARIAL", "VocoderTask", "make_wave_batch",
           "add_train_arguments", "train_command", "add_eval_arguments", "evaluate_command"]

#: One line for ``--help``.
SUMMARY = "phase-aware mel vocoder: log-mel → complex STFT → waveform (vs Griffin-Lim)"

#: ``--adversarial`` → the discriminator families it trains against.
ADVERSARIAL: dict[str, tuple[str, ...]] = {"none": (), "mpd": ("mpd",), "mrd": ("mrd",),
                                           "both": ("mpd", "mrd")}

#: The vocoder's defaults of the shared training settings.
TRAIN_DEFAULTS = dict(steps=6000, batch_size=16, lr=1e-3, weight_decay=1e-4, warmup=200,
                      min_lr_ratio=0.05, grad_clip=5.0, log_every=50, val_every=500,
                      save_every=250)


def make_wave_batch(waves: Sequence[Tensor], step: int, *, batch_size: int, crop: int,
                    seed: int, rank: int = 0, world: int = 1) -> tuple[Tensor, Tensor]:
    """The batch of ``step``: random crops of ``(crop - 1) · hop`` samples and their log-mels.

    A pure function of (seed, step), so resuming is exact. Shorter clips are zero-padded.

    Notebook: notebooks/08_vocoders.ipynb

    Returns:
        ``(waveforms [b, samples], log-mel [b, n_mels, crop])``.
    """
    samples = (crop - 1) * FEATURES.hop_length
    g = torch.Generator().manual_seed(seed * 1_000_003 + step)
    idx = torch.randint(len(waves), (batch_size,), generator=g)
    starts = torch.rand(batch_size, generator=g)
    y = torch.zeros(batch_size, samples)
    for j, i in enumerate(idx.tolist()):
        w = waves[i]
        s = int(starts[j] * max(0, len(w) - samples + 1))
        piece = w[s : s + samples]
        y[j, : len(piece)] = piece
    x = codec_task.torch_log_mel(y)[..., :crop]
    return y[rank::world], x[rank::world]


class VocoderTask(Task):
    """The vocoder for the training loop: log-mel in, waveform out, STFT and mel losses.

    Notebook: notebooks/08_vocoders.ipynb

    Args:
        data: Speech Commands-layout folders (train and validation splits used).
        config: The model's configuration.
        crop_frames: Training crop in mel frames (64 ≈ 1 s).
        mel_weight: Weight of the log-mel L1 term.
    """

    name = "vocoder"
    kind = MODEL_KIND
    best_metric = "val_logmel_l1"
    best_mode = "min"

    def __init__(self, data: Sequence[str | Path], config: VocoderConfig | None = None, *,
                 crop_frames: int = 64, mel_weight: float = 2.5, adversarial: str = "none",
                 init: str | None = None, adv_weight: float = 0.3,
                 fm_weight: float = 10.0) -> None:
        missing = [str(d) for d in data if not Path(d).is_dir()]
        if not data or missing:
            raise OptionError("--data", f"no such folder: {', '.join(missing) or '(none given)'}")
        if crop_frames < 8:
            raise OptionError("--crop-frames", f"must be at least 8, got {crop_frames}")
        for flag, value in (("--mel-weight", mel_weight), ("--adv-weight", adv_weight),
                            ("--fm-weight", fm_weight)):
            if not np.isfinite(value) or value < 0:
                raise OptionError(flag, f"must be finite and non-negative, got {value}")
        if adversarial not in ADVERSARIAL:
            raise OptionError("--adversarial", f"must be one of {tuple(ADVERSARIAL)}")
        if init is not None and not Path(init).is_file():
            raise OptionError("--init", f"{init}: checkpoint file not found")
        self.adversarial, self.init = adversarial, init
        self.adv_weight, self.fm_weight = adv_weight, fm_weight
        self.config = config or VocoderConfig()
        self.data = [str(d) for d in data]
        self.crop_frames = crop_frames
        self.mel_weight = mel_weight
        self.train_waves: list[Tensor] = []
        self.val_waves: list[Tensor] = []

    def load_data(self) -> list[str]:  # noqa: D102
        self.train_waves, report = codec_task.load_waveforms(self.data, "train")
        val, vreport = codec_task.load_waveforms(self.data, "validation")
        self.val_waves = val[:: max(1, len(val) // 48)][:48]
        if not self.train_waves:
            raise OptionError("--data", f"no usable training clip in {', '.join(self.data)}")
        return report + vreport

    def build_model(self) -> MelVocoder:  # noqa: D102
        model = MelVocoder(self.config)
        if self.init is not None:
            start = MelVocoder.from_checkpoint(self.init)
            if start.config != self.config:
                raise OptionError("--init", f"{self.init}: its settings differ from --set's")
            model.load_state_dict(start.state_dict())
        if self.adversarial != "none":
            model.discriminators = Discriminators(ADVERSARIAL[self.adversarial])
        return model

    def batch(self, step: int, *, seed: int, batch_size: int, rank: int = 0,
              world: int = 1) -> tuple[Tensor, Tensor]:  # noqa: D102
        return make_wave_batch(self.train_waves, step, batch_size=batch_size,
                               crop=self.crop_frames, seed=seed, rank=rank, world=world)

    def loss(self, model: nn.Module, batch: tuple[Tensor, ...]
             ) -> tuple[Tensor, dict[str, Any]]:  # noqa: D102
        y, x = batch
        y_hat = model(x, y.shape[-1])
        stft_loss, parts = multi_resolution_stft_loss(y_hat, y)
        mel_l1 = (codec_task.torch_log_mel(y_hat)[..., : x.shape[-1]] - x).abs().mean()
        total = stft_loss + self.mel_weight * mel_l1
        stats = {**parts, "mel_l1": float(mel_l1.detach())}
        D = getattr(getattr(model, "module", model), "discriminators", None)
        if D is None:
            return total, stats
        real = D(y)
        d_loss = discriminator_loss(real, D(y_hat.detach()))     # moves the discriminators
        frozen = {**{k: v.detach() for k, v in D.named_parameters()}, **dict(D.named_buffers())}
        fake = functional_call(D, frozen, (y_hat,))               # moves the generator only
        adv = generator_adversarial_loss(fake)
        fm = feature_matching_loss(real, fake)
        total = total + self.adv_weight * adv + self.fm_weight * fm + d_loss
        return total, {**stats, "adv": float(adv.detach()), "fm": float(fm.detach()),
                       "d_loss": float(d_loss.detach())}

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
                y_hat = model(x, y.shape[-1])
                l1.append(float((codec_task.torch_log_mel(y_hat) - x).abs().mean()))
                stft.append(float(multi_resolution_stft_loss(y_hat, y)[0]))
        finally:
            model.train(was)
        return {"val_logmel_l1": float(np.mean(l1)), "val_stft_loss": float(np.mean(stft))}

    def checkpoint(self, model: nn.Module) -> dict[str, Any]:  # noqa: D102
        return model.checkpoint(task=self.name, data=self.data, crop_frames=self.crop_frames,
                                mel_weight=self.mel_weight, adversarial=self.adversarial,
                                init=self.init, adv_weight=self.adv_weight,
                                fm_weight=self.fm_weight)


# --------------------------------------------------------------------------------------------
# Command lines
# --------------------------------------------------------------------------------------------


def add_train_arguments(p: argparse.ArgumentParser) -> None:
    """The vocoder's options of ``python -m utils.train vocoder``.

    Notebook: notebooks/08_vocoders.ipynb
    """
    p.add_argument("--data", action="append", required=True,
                   help="Speech Commands-layout folder (repeatable)")
    p.add_argument("--crop-frames", type=options.COUNT,
                   default=64, help="training crop in mel frames")
    p.add_argument("--mel-weight", type=options.WEIGHT,
                   default=2.5, help="weight of the log-mel L1")
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                   help="model hyper-parameter, e.g. --set head=complex --set channels=128")
    p.add_argument("--adversarial", choices=list(ADVERSARIAL), default="none",
                   help="train against discriminators: multi-period (mpd), multi-resolution "
                        "(mrd) or both, with feature matching")
    p.add_argument("--init", default=None, metavar="CHECKPOINT",
                   help="start from this vocoder's weights (fine-tuning)")
    p.add_argument("--adv-weight", type=options.WEIGHT, default=0.3,
                   help="weight of the generator's adversarial loss")
    p.add_argument("--fm-weight", type=options.WEIGHT, default=10.0,
                   help="weight of the feature-matching loss")


def train_command(args: argparse.Namespace, cfg: TrainConfig) -> dict[str, Any]:
    """Run ``python -m utils.train vocoder``: every option is checked before the data loads.

    Notebook: notebooks/08_vocoders.ipynb

    Returns:
        The final record.
    """
    config = override(VocoderConfig(), args.set)
    task = VocoderTask(args.data, config, crop_frames=args.crop_frames,
                       mel_weight=args.mel_weight, adversarial=args.adversarial, init=args.init,
                       adv_weight=args.adv_weight, fm_weight=args.fm_weight)
    return train(task, cfg).last


def add_eval_arguments(p: argparse.ArgumentParser) -> None:
    """The vocoder's options of ``python -m utils.evaluate vocoder``.

    Notebook: notebooks/08_vocoders.ipynb
    """
    scoring.add_clip_scoring_arguments(p, "vocoder")


def evaluate_command(a: argparse.Namespace) -> dict[str, Any]:
    """Run ``python -m utils.evaluate vocoder``: resynthesis from the true mel, scored.

    Notebook: notebooks/08_vocoders.ipynb

    Returns:
        The summary (``pesq_wb``, ``logmel_l1``, ``stoi``, ``n_clips``, ``n_failed``, ...).
    """
    from utils.distributed import resolve_device
    from utils.reconstruction import reconstruction

    files = scoring.clip_files(a)
    device = resolve_device(a.device)
    # any learned reconstruction: a mel vocoder, or a Deep Griffin-Lim (told apart by kind)
    rebuild = reconstruction(a.checkpoint, option="checkpoint", map_location=str(device))
    model = rebuild.model

    def rec(y: np.ndarray) -> np.ndarray:
        return rebuild(log_mel(y, model.features), len(y))

    res = scoring.score_files(files, rec, metrics=scoring.metrics_of(a), root=a.data_dir,
                              dnsmos_originals=a.dnsmos_originals,
                              progress=not a.no_progress)
    if isinstance(model, MelVocoder):
        system = (f"mel vocoder ({model.config.head} head, {model.num_parameters():,} "
                  "parameters), true mel")
    else:  # a Deep Griffin-Lim
        system = (f"Deep Griffin-Lim ({model.config.kind} denoiser, "
                  f"{model.num_parameters():,} parameters, {model.config.iterations} it.), "
                  "true mel")
    return scoring.report_scores(a, res, system)
