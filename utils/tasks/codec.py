"""Task ``codec``: the mel VQ-VAE speech codec, trained and measured.

Training (``python -m utils.train codec --data DIR [--data DIR ...] --out RUN``): the log-mel of
every good clip of each folder's train split, random crops of ``--crop-frames`` frames, loss =
masked L1 between input and reconstructed log-mel + the quantizer's commitment loss;
validation = log-mel L1 of whole validation clips at the depths of ``--val-depths`` (default:
the ≤ 1300 bps depth and all stages), codebook usage and perplexity; ``best.pt`` has the
lowest mean validation L1.

Evaluation (``python -m utils.evaluate codec CHECKPOINT DATA_DIR``): every .wav/.flac under
DATA_DIR is encoded to indices (the bit stream), decoded and inverted with Griffin-Lim, then
scored against the original by :mod:`utils.scoring` (in time by construction: delay 0):
PESQ-WB, ViSQOL, log-mel L1, STOI (with its caveat), DNSMOS (``docs/metrics.md``), each with a
95 % interval, the bits actually sent per second and the usage of the transmitted codes.
``--max-bitrate`` picks the deepest residual stage that fits the budget. Anchors on the same clips:
``--baseline griffinlim`` (Griffin-Lim on the TRUE mel, the ceiling of any mel model),
``--baseline codec2`` (Debian's ``codec2``: ``c2enc``/``c2dec``) and ``--baseline opus``
(``opus-tools``, constant bit rate), each at its measured delay (:mod:`utils.baselines`);
with a baseline, CHECKPOINT may be ``-``. Unreadable files are skipped and
counted; a run in which no file could be read fails.

Notebook: notebooks/02_vq_vae.ipynb
"""

from __future__ import annotations

import argparse
import dataclasses
import math
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor, nn

from utils import options
from utils.audio import FEATURES, log_mel, mel_spectrogram, mel_to_audio
from utils.baselines import (
    CODEC2_MODES,
    OPUS_KBPS_RANGE,
    codec2_delay,
    codec2_roundtrip,
    opus_delay,
    opus_roundtrip,
)
from utils.data.speech_commands import SpeechCommands
from utils.errors import OptionError
from utils.metrics import METRICS
from utils.models.vqvae import MODEL_KIND, MelVQVAE, VQVAEConfig
from utils.noise import generated_noise, load_noise
from utils.reconstruction import CLASSICAL_SPEC, reconstruction
from utils.scoring import (
    Output,
    add_clip_scoring_arguments,
    clip_files,
    jsonable,
    metrics_of,
    report_scores,
    score_files,
)
from utils.training import Task, TrainConfig, override, train
from utils.vq.bits import codebook_usage

#: The per-clip scores a ladder row keeps.
SCORE_KEYS = set(METRICS) | {f"{m}_original" for m in METRICS if m.startswith("dnsmos_")}

__all__ = [
    "SUMMARY",
    "TRAIN_DEFAULTS",
    "CodecTask",
    "load_log_mels",
    "make_batch",
    "torch_log_mel",
    "load_waveforms",
    "load_noise",
    "generated_noise",
    "Augment",
    "make_audio_batch",
    "validate",
    "add_data_arguments",
    "add_train_arguments",
    "train_command",
    "add_eval_arguments",
    "evaluate_command",
]

#: ``--opus-kbps``: the rates the Opus encoder can hold.
OPUS_KBPS = options.Number(float, *OPUS_KBPS_RANGE)

#: One line for ``--help``.
SUMMARY = "mel VQ-VAE speech codec (residual VQ, one model for every bit rate)"

#: The codec's defaults of the shared training settings.
TRAIN_DEFAULTS = dict(steps=4000, batch_size=32, lr=1e-3, weight_decay=1e-4, warmup=200,
                      min_lr_ratio=0.1, grad_clip=1.0, log_every=25, val_every=500,
                      save_every=250)


# --------------------------------------------------------------------------------------------
# Data and batches
# --------------------------------------------------------------------------------------------


def load_log_mels(folders: Sequence[str | Path], split: str) -> tuple[list[Tensor], list[str]]:
    """Log-mels of every good clip of ``split`` in each folder (bad files skipped, reported).

    Notebook: notebooks/02_vq_vae.ipynb

    Args:
        folders: Speech Commands-layout folders.
        split: ``"train"``, ``"validation"`` or ``"testing"``.

    Returns:
        ``(features [n_mels, T] per clip, one line of report per folder)``.
    """
    feats: list[Tensor] = []
    report = []
    for folder in folders:
        ds = SpeechCommands(folder, split=split, length=None, transform=log_mel, cache=False)
        feats += [ds[i][0].float() for i in range(len(ds))]
        report.append(f"{folder} [{split}]: {len(ds)} clips, {len(ds.failed)} skipped")
    return feats, report


def make_batch(
    feats: Sequence[Tensor], step: int, *, batch_size: int, crop: int, seed: int,
    rank: int = 0, world: int = 1, floor: float = math.log10(FEATURES.log_floor),
) -> tuple[Tensor, Tensor]:
    """The batch of ``step``: a pure function of (seed, step), so resuming is exact.

    Clips are visited in a fresh permutation each pass over the data; each gets a random crop
    of ``crop`` frames (shorter clips are padded with the log floor and masked). Under DDP,
    rank ``r`` takes items ``r, r + world, ...`` of the global batch.

    Notebook: notebooks/02_vq_vae.ipynb

    Returns:
        ``(log-mel [b, n_mels, crop], mask [b, 1, crop])``.
    """
    n = len(feats)
    per_pass = max(1, n // batch_size)
    epoch, pos = divmod(step, per_pass)
    g = torch.Generator().manual_seed(seed * 1_000_003 + epoch)
    perm = torch.randperm(n, generator=g)
    idx = perm[pos * batch_size : (pos + 1) * batch_size]
    if len(idx) < batch_size:  # fewer clips than a batch: wrap around
        idx = perm[torch.arange(pos * batch_size, (pos + 1) * batch_size) % n]
    g_crop = torch.Generator().manual_seed(seed * 7_919 + step)
    starts = torch.rand(batch_size, generator=g_crop)
    n_mels = feats[0].shape[0]
    x = torch.full((batch_size, n_mels, crop), floor)
    mask = torch.zeros(batch_size, 1, crop)
    for j, i in enumerate(idx.tolist()):
        f = feats[i]
        t = f.shape[1]
        s = int(starts[j] * max(0, t - crop + 1))
        piece = f[:, s : s + crop]
        x[j, :, : piece.shape[1]] = piece
        mask[j, :, : piece.shape[1]] = 1.0
    return x[rank::world], mask[rank::world]


# --------------------------------------------------------------------------------------------
# Augmented training: waveforms, real and generated noise, gain; the log-mel in torch
# --------------------------------------------------------------------------------------------


def torch_log_mel(y: Tensor, cfg=FEATURES) -> Tensor:
    """The collection's log-mel (:func:`utils.audio.log_mel`) of a batch ``[B, samples]``.

    Same STFT (periodic Hann window, centred frames, zero padding), the same filterbank and the
    same floor as the NumPy version, so features made on the fly during training equal those
    the evaluation computes.

    Notebook: notebooks/02_vq_vae.ipynb

    Returns:
        ``[B, n_mels, 1 + samples // hop]`` in log10 units.
    """
    from utils.audio import mel_filterbank

    window = torch.hann_window(cfg.n_fft, periodic=True, device=y.device)
    spec = torch.stft(y, cfg.n_fft, cfg.hop_length, window=window, center=True,
                      pad_mode="constant", return_complex=True).abs() ** cfg.power
    fb = torch.from_numpy(np.array(mel_filterbank(cfg))).to(y.device)
    return torch.log10((fb @ spec).clamp_min(cfg.log_floor))


def load_waveforms(folders: Sequence[str | Path], split: str) -> tuple[list[Tensor], list[str]]:
    """Waveforms (16 kHz, float32) of every good clip of ``split`` in each folder.

    Notebook: notebooks/02_vq_vae.ipynb

    Returns:
        ``(waveforms, one line of report per folder)``.
    """
    waves: list[Tensor] = []
    report = []
    for folder in folders:
        ds = SpeechCommands(folder, split=split, length=None, cache=False)
        waves += [ds[i][0].float() for i in range(len(ds))]
        report.append(f"{folder} [{split}]: {len(ds)} clips, {len(ds.failed)} skipped")
    return waves, report


@dataclasses.dataclass(frozen=True)
class Augment:
    """How training clips are altered; the altered clip is both input and target.

    Notebook: notebooks/02_vq_vae.ipynb

    Attributes:
        gain_db: Range of a random gain (dB); the result never exceeds full scale.
        noise_prob: Share of clips that get noise.
        snr_db: Range of the signal-to-noise ratio of that noise (dB).
        real_noise_share: Share of noisy clips whose noise is a real recording (when given).
    """

    gain_db: tuple[float, float] = (-18.0, 6.0)
    noise_prob: float = 0.5
    snr_db: tuple[float, float] = (5.0, 35.0)
    real_noise_share: float = 0.6

    def __post_init__(self) -> None:
        if self.gain_db[0] > self.gain_db[1] or self.snr_db[0] > self.snr_db[1]:
            raise OptionError("--augment", "ranges must be (low, high)")
        if not 0 <= self.noise_prob <= 1 or not 0 <= self.real_noise_share <= 1:
            raise OptionError("--augment", "probabilities must be in [0, 1]")


def make_audio_batch(
    waves: Sequence[Tensor], step: int, *, batch_size: int, crop: int, seed: int,
    augment: Augment | None = None, noise: Sequence[Tensor] = (), rank: int = 0, world: int = 1,
) -> tuple[Tensor, Tensor]:
    """The augmented batch of ``step``: a pure function of (seed, step), like :func:`make_batch`.

    Each clip gets a random crop of ``crop`` frames, a random gain and, for a share of clips,
    real or generated noise at a random SNR; then the log-mel is computed (in torch).

    Notebook: notebooks/02_vq_vae.ipynb

    Returns:
        ``(log-mel [b, n_mels, crop], mask [b, 1, crop])``.
    """
    hop = FEATURES.hop_length
    samples = (crop - 1) * hop
    n = len(waves)
    per_pass = max(1, n // batch_size)
    epoch, pos = divmod(step, per_pass)
    perm = torch.randperm(n, generator=torch.Generator().manual_seed(seed * 1_000_003 + epoch))
    idx = perm[torch.arange(pos * batch_size, (pos + 1) * batch_size) % n]
    g = torch.Generator().manual_seed(seed * 7_919 + step)
    y = torch.zeros(batch_size, samples)
    mask = torch.zeros(batch_size, 1, crop)
    for j, i in enumerate(idx.tolist()):
        w = waves[i]
        start = int(torch.rand(1, generator=g) * max(0, len(w) - samples + 1))
        piece = w[start : start + samples]
        y[j, : len(piece)] = piece
        mask[j, :, : min(crop, 1 + len(piece) // hop)] = 1.0
        if augment is None:
            continue
        u = torch.rand(5, generator=g)
        if u[0] < augment.noise_prob:
            lo, hi = augment.snr_db
            snr = lo + (hi - lo) * float(u[1])
            if noise and u[2] < augment.real_noise_share:
                rec = noise[int(u[3] * len(noise))]
                s = int(torch.rand(1, generator=g) * max(1, len(rec) - samples))
                nz = rec[s : s + samples]
                nz = torch.nn.functional.pad(nz, (0, samples - len(nz)))
                nz = nz / nz.pow(2).mean().sqrt().clamp_min(1e-8)
            else:
                nz = generated_noise(("white", "pink", "brown")[int(u[3] * 3)], samples, g)
            rms = y[j, : len(piece)].pow(2).mean().sqrt().clamp_min(1e-6)
            y[j, : len(piece)] += nz[: len(piece)] * rms / 10 ** (snr / 20)
        lo, hi = augment.gain_db
        gain = 10 ** ((lo + (hi - lo) * float(u[4])) / 20)
        y[j] = y[j] * min(gain, 0.99 / float(y[j].abs().max().clamp_min(1e-6)))
    x = torch_log_mel(y)[..., :crop]
    return x[rank::world], mask[rank::world]


@torch.no_grad()
def validate(model: MelVQVAE, feats: Sequence[Tensor], depths: Sequence[int],
             device: torch.device | str | None = None) -> dict[str, Any]:
    """Mean log-mel L1 of whole validation clips at each depth, and codebook usage.

    Notebook: notebooks/02_vq_vae.ipynb

    Args:
        model: The codec.
        feats: Validation log-mels ``[n_mels, T]`` (on any device).
        depths: Residual depths to measure.
        device: Where to compute (default: the model's device).

    Returns:
        ``val_l1@d``, ``val_used@d``, ``val_ppl@d`` per depth and their mean L1 ``val_score``.
    """
    device = device or next(model.parameters()).device
    was = model.training
    model.eval()
    out: dict[str, Any] = {}
    try:
        for d in depths:
            model.quantizer.reset_usage()
            tot = cnt = 0.0
            for f in feats:
                f = f.to(device)
                y, _ = model(f[None], n_q=d)
                tot += float((y[0] - f).abs().sum())
                cnt += f.numel()
            out[f"val_l1@{d}"] = tot / max(cnt, 1)
            usage = model.quantizer.usage()
            out[f"val_used@{d}"] = [round(u["used_fraction"], 4) for u in usage[:d]]
            out[f"val_ppl@{d}"] = [round(u["perplexity"], 1) for u in usage[:d]]
        out["val_score"] = sum(out[f"val_l1@{d}"] for d in depths) / len(depths)
    finally:
        model.quantizer.reset_usage()
        model.train(was)
    return out


class CodecTask(Task):
    """The codec for the training loop: log-mel crops in, masked L1 + commitment out.

    Notebook: notebooks/02_vq_vae.ipynb

    Args:
        data: Speech Commands-layout folders (their train and validation splits are used).
        config: The model's configuration.
        crop_frames: Training crop in mel frames.
        val_depths: Residual depths validated (default: ≤ 1300 bps and all stages).
        augment: Alter training clips (gain, noise); ``None``: train on the clips as they are.
        noise: Folders of real background noise for ``augment`` (their first 80 % in time).
        init: Start from this codec checkpoint's weights (same configuration) instead of a
            random initialisation.
    """

    name = "codec"
    kind = MODEL_KIND
    best_metric = "val_score"
    best_mode = "min"

    def __init__(self, data: Sequence[str | Path], config: VQVAEConfig | None = None, *,
                 crop_frames: int = 64, val_depths: Sequence[int] | None = None,
                 augment: Augment | None = None, noise: Sequence[str | Path] = (),
                 init: str | Path | None = None) -> None:
        self.config = config or VQVAEConfig()
        missing_noise = [str(d) for d in noise if not Path(d).is_dir()]
        if missing_noise:
            raise OptionError("--noise", f"no such folder: {', '.join(missing_noise)}")
        if noise and augment is None:
            raise OptionError("--noise", "needs --augment")
        if init is not None and not Path(init).is_file():
            raise OptionError("--init", f"no such checkpoint: {init}")
        self.augment = augment
        self.noise_dirs = [str(d) for d in noise]
        self.init = None if init is None else str(init)
        self.train_waves: list[Tensor] = []
        self.noise: list[Tensor] = []
        if crop_frames < 1:
            raise OptionError("--crop-frames", f"must be at least 1, got {crop_frames}")
        bad = [d for d in (val_depths or []) if not 1 <= d <= self.config.num_quantizers]
        if bad:
            raise OptionError("--val-depths", f"{bad} outside 1..{self.config.num_quantizers}")
        missing = [str(d) for d in data if not Path(d).is_dir()]
        if not data or missing:
            raise OptionError("--data", f"no such folder: {', '.join(missing) or '(none given)'}")
        self.data = [str(d) for d in data]
        self.crop_frames = crop_frames
        self.val_depths = list(val_depths) if val_depths else None
        self.train_feats: list[Tensor] = []
        self.val_feats: list[Tensor] = []

    def load_data(self) -> list[str]:  # noqa: D102
        if self.augment is None:
            self.train_feats, report = load_log_mels(self.data, "train")
            n_train = len(self.train_feats)
        else:
            self.train_waves, report = load_waveforms(self.data, "train")
            self.noise = load_noise(self.noise_dirs, "train")
            n_train = len(self.train_waves)
            report.append(f"augmentation {self.augment}; {len(self.noise)} real noise "
                          f"recording(s) (first 80 %)")
        self.val_feats, vreport = load_log_mels(self.data, "validation")
        if not n_train:
            raise OptionError("--data", f"no usable training clip in {', '.join(self.data)}")
        return report + vreport

    def build_model(self) -> MelVQVAE:  # noqa: D102
        if self.init is None:
            return MelVQVAE(self.config)
        model = MelVQVAE.from_checkpoint(self.init)
        if model.config != self.config:
            raise OptionError("--init", f"{self.init} has another configuration than --set gives")
        return model

    def batch(self, step: int, *, seed: int, batch_size: int, rank: int = 0,
              world: int = 1) -> tuple[Tensor, Tensor]:  # noqa: D102
        if self.augment is not None:
            return make_audio_batch(self.train_waves, step, batch_size=batch_size,
                                    crop=self.crop_frames, seed=seed, augment=self.augment,
                                    noise=self.noise, rank=rank, world=world)
        return make_batch(self.train_feats, step, batch_size=batch_size, crop=self.crop_frames,
                          seed=seed, rank=rank, world=world)

    def loss(self, model: nn.Module, batch: tuple[Tensor, ...]
             ) -> tuple[Tensor, dict[str, Any]]:  # noqa: D102
        x, mask = batch
        y, vq = model(x)
        recon = ((y - x).abs() * mask).sum() / (mask.sum() * x.shape[1]).clamp_min(1)
        stats = {"recon_l1": float(recon.detach()),
                 "commitment": float(vq.commitment_loss.detach()),
                 "depth": int(vq.indices.shape[-1]),
                 "perplexity": [round(float(p), 1) for p in vq.perplexity[:4]]}
        return recon + vq.loss, stats

    def validate(self, model: nn.Module, device: torch.device) -> dict[str, Any]:  # noqa: D102
        if not self.val_feats:
            return {}
        depths = self.val_depths or sorted({model.depth_for_bitrate(1300),
                                            self.config.num_quantizers})
        return validate(model, self.val_feats, depths, device)

    def checkpoint(self, model: nn.Module) -> dict[str, Any]:  # noqa: D102
        return model.checkpoint(task=self.name, data=self.data, crop_frames=self.crop_frames,
                                augment=None if self.augment is None
                                else dataclasses.asdict(self.augment),
                                noise=self.noise_dirs, init=self.init)


# --------------------------------------------------------------------------------------------
# Command lines
# --------------------------------------------------------------------------------------------


def add_data_arguments(p: argparse.ArgumentParser) -> None:
    """The data options shared by the mel tasks (``codec``, ``vae``): folders, crop, augmentation.

    Notebook: notebooks/02_vq_vae.ipynb
    """
    p.add_argument("--data", action="append", required=True,
                   help="Speech Commands-layout folder (repeatable); its train split is used")
    p.add_argument("--crop-frames", type=options.COUNT,
                   default=64, help="training crop in mel frames")
    p.add_argument("--augment", action="store_true",
                   help="random gain and noise on training clips (input = target)")
    p.add_argument("--noise", action="append", default=[],
                   help="folder of real background noise for --augment (repeatable)")


def add_train_arguments(p: argparse.ArgumentParser) -> None:
    """The codec's options of ``python -m utils.train codec``.

    Notebook: notebooks/02_vq_vae.ipynb
    """
    add_data_arguments(p)
    p.add_argument("--val-depths", type=options.COUNT, nargs="*", default=None,
                   help="residual depths validated (default: 1300 bps and all stages)")
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                   help="model hyper-parameter override, e.g. --set channels=128")
    p.add_argument("--init", default=None,
                   help="start from this codec checkpoint's weights (fine-tuning)")


def train_command(args: argparse.Namespace, cfg: TrainConfig) -> dict[str, Any]:
    """Run ``python -m utils.train codec``: every option is checked before the data loads.

    Notebook: notebooks/02_vq_vae.ipynb

    Returns:
        The final record (last log line and validation, step, elapsed time).
    """
    config = override(VQVAEConfig(), args.set)
    if args.init is not None and not args.set and Path(args.init).is_file():
        config = MelVQVAE.from_checkpoint(args.init).config  # the checkpoint's own configuration
    task = CodecTask(args.data, config, crop_frames=args.crop_frames, val_depths=args.val_depths,
                     augment=Augment() if args.augment else None, noise=args.noise,
                     init=args.init)
    return train(task, cfg).last


def add_eval_arguments(p: argparse.ArgumentParser) -> None:
    """The codec's options of ``python -m utils.evaluate codec``.

    Notebook: notebooks/02_vq_vae.ipynb
    """
    p.add_argument("checkpoint", help="model checkpoint (.pt), or '-' with --baseline")
    add_clip_scoring_arguments(p, None)
    p.add_argument("--max-bitrate", type=options.BITRATE,
                   default=None, help="bit budget in bits/s")
    p.add_argument("--depth", type=options.COUNT,
                   default=None, help="residual stages (overrides budget)")
    p.add_argument("--ladder", action="store_true",
                   help="every depth (250 bps steps for the shipped codec) up to --max-bitrate "
                        "or all stages, in one pass over the clips")
    p.add_argument("--baseline", choices=["griffinlim", "codec2", "opus"], default=None)
    p.add_argument("--codec2-mode", default="1300", choices=list(CODEC2_MODES))
    p.add_argument("--opus-kbps", type=OPUS_KBPS, default=6.0,
                   help="Opus constant bit rate in kbps (6 … 256)")
    p.add_argument("--opus-vbr", action="store_true",
                   help="Opus in its default variable-rate mode (--opus-kbps is then a target; "
                        "the bits it sent are reported)")
    p.add_argument("--gl-iters", type=options.COUNT, default=32, help="Griffin-Lim iterations")
    p.add_argument("--vocoder", default="griffinlim", metavar="gl:N|pghi:N|melgl:N|CKPT",
                   help="how the decoded mel becomes a waveform (utils.reconstruction): "
                        "griffinlim (the default: --gl-iters of fast Griffin-Lim), gl:N, "
                        "pghi:N (PGHI's phase + N Griffin-Lim iterations), melgl:N (the same, "
                        "re-estimating the magnitude from the mel), or a vocoder or Deep "
                        "Griffin-Lim checkpoint")


def _check_eval_options(a: argparse.Namespace) -> list[Path]:
    """Every option of the evaluation, checked before anything loads; the files to score."""
    if a.ladder and (a.baseline is not None or a.depth is not None):
        raise OptionError("--ladder", "measures a codec checkpoint at every depth: "
                                      "not with --baseline or --depth")
    if a.baseline is None and a.checkpoint == "-":
        raise OptionError("checkpoint", "'-' needs --baseline")
    vocoder = getattr(a, "vocoder", "griffinlim")
    if vocoder != "griffinlim":
        if a.baseline is not None and a.baseline != "griffinlim":
            raise OptionError("--vocoder", f"does not apply to --baseline {a.baseline}")
        if not CLASSICAL_SPEC.match(vocoder) and not Path(vocoder).is_file():
            raise OptionError("--vocoder", f"{vocoder}: expected gl:N, pghi:N, melgl:N or a "
                                           "checkpoint file, and there is no such file")
    return clip_files(a)


def evaluate_command(a: argparse.Namespace) -> dict[str, Any]:
    """Run ``python -m utils.evaluate codec``: prints a table; returns the summary.

    Every system is scored by :func:`utils.scoring.score_files` at its known delay (0 for the
    codec and Griffin-Lim; measured for Codec 2 and Opus) and reports the bits it produced.

    Notebook: notebooks/02_vq_vae.ipynb

    Returns:
        The summary (every score with its 95 % interval, ``bitrate_bps`` (nominal) and
        ``bitrate_bps_measured``, ``n_clips``, ``n_failed``, ...); ``n_clips == 0`` means
        that no file could be used.
    """
    from utils.distributed import resolve_device

    files = _check_eval_options(a)
    device = resolve_device(a.device)
    info: dict[str, Any] = {}
    counts = None
    vocoder = getattr(a, "vocoder", "griffinlim")
    spec = f"gl:{a.gl_iters}" if vocoder == "griffinlim" else vocoder
    rebuild = reconstruction(spec, option="--vocoder", map_location=str(device))
    if vocoder != "griffinlim":
        info["vocoder"] = (vocoder if CLASSICAL_SPEC.match(vocoder)
                           else Path(os.path.relpath(vocoder)).as_posix())
    if a.baseline == "griffinlim" and vocoder != "griffinlim":
        system, bitrate = f"{rebuild.name} on the true mel", None

        def rec(y: np.ndarray) -> np.ndarray:
            return rebuild(log_mel(y), len(y))
    elif a.baseline == "griffinlim":
        system, bitrate = f"Griffin-Lim {a.gl_iters} it. on the true mel", None

        def rec(y: np.ndarray) -> np.ndarray:
            return mel_to_audio(mel_spectrogram(y), n_iter=a.gl_iters, length=len(y))
    elif a.baseline == "codec2":
        bits, seconds = CODEC2_MODES[a.codec2_mode]
        system, bitrate = f"Codec 2 {a.codec2_mode}", bits / seconds
        info["delay_samples"] = codec2_delay(a.codec2_mode)

        def rec(y: np.ndarray) -> np.ndarray:
            return codec2_roundtrip(y, a.codec2_mode)
    elif a.baseline == "opus":
        mode = "" if a.opus_vbr else " --hard-cbr"
        system, bitrate = f"Opus --speech{mode} {a.opus_kbps:g} kbps", 1000.0 * a.opus_kbps
        info["delay_samples"] = opus_delay(float(a.opus_kbps), not a.opus_vbr)

        def rec(y: np.ndarray) -> np.ndarray:
            return opus_roundtrip(y, a.opus_kbps, cbr=not a.opus_vbr)
    else:
        model = MelVQVAE.from_checkpoint(a.checkpoint, map_location=device)
        if a.depth is not None and a.depth > model.config.num_quantizers:
            raise OptionError("--depth", f"the model has {model.config.num_quantizers} stages")
        ladder = None
        if a.depth is not None:
            depth = a.depth
        elif a.max_bitrate is not None:
            try:
                depth = model.depth_for_bitrate(a.max_bitrate)
            except ValueError as exc:
                raise OptionError("--max-bitrate", str(exc)) from None
        else:
            depth = model.config.num_quantizers
        bitrate = model.bitrate_bps(depth)
        system = f"mel VQ-VAE, {depth} stage(s)" + (
            f", {rebuild.name}" if vocoder != "griffinlim" else "")
        info["depth"] = depth
        counts = torch.zeros(depth, model.config.num_codes)
        bits_per_index = math.log2(model.config.num_codes)
        if a.ladder:
            ladder = list(range(1, depth + 1))

        def rec(y: np.ndarray) -> Output | dict[int, Output]:
            idx = model.encode_audio(y, depth).cpu()  # the bit stream; its codes are counted
            for s in range(depth):
                counts[s] += torch.bincount(idx[..., s].flatten(), minlength=counts.shape[1])

            def decode(d: int) -> Output:
                audio = model.decode_audio(idx[..., :d], len(y), n_iter=a.gl_iters,
                                           vocoder=None if vocoder == "griffinlim" else rebuild)
                return Output(audio, bits=idx[..., :d].numel() * bits_per_index, delay=0)

            if ladder is None:
                return decode(depth)
            # one encoding; the first d stages of it are the stream at d × 250 bps
            return {d: decode(d) for d in ladder}

    res = score_files(files, rec, metrics=metrics_of(a), root=a.data_dir,
                      dnsmos_originals=a.dnsmos_originals,
                      progress=not a.no_progress)
    if a.baseline is None and ladder is not None:
        info["ladder"] = [
            {"depth": d, "bitrate_bps": model.bitrate_bps(d),
             "bitrate_bps_measured": round(r.get("bitrate_bps", math.nan), 1),
             **jsonable({k: v for k, v in r.items() if k in SCORE_KEYS or k.endswith("_ci95")},
                        4)}
            for d, r in res.get("by_key", {}).items()]
    if counts is not None:
        info.update(codebook_usage(counts))
    summary = report_scores(a, res, system, bitrate, **info)
    if bitrate is not None:
        print(f"bit rate      {bitrate:.0f} bps nominal, "
              f"{res.get('bitrate_bps', math.nan):.0f} bps measured")
    if "codebook_used_fraction" in info:
        print(f"codes used    {info['codebook_used_fraction'][:6]} (first stages)")
    if "ladder" in info:
        print("\nladder (one encoding, the first d stages decoded)")
        print("depth  bit rate  PESQ-WB  ViSQOL  log-mel L1")
        for r in info["ladder"]:
            print(f"{r['depth']:5d} {r['bitrate_bps']:7.0f}   {r['pesq_wb'] or math.nan:7.3f}  "
                  f"{r.get('visqol') or math.nan:6.3f}  {r['logmel_l1'] or math.nan:9.4f}")
    return summary
