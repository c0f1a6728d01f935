"""A mel-spectrogram VQ-VAE codec: log-mel → encoder → residual VQ → decoder → log-mel.

The model works on the collection's log-mel (:data:`utils.audio.FEATURES`: 80 bands, hop 256
at 16 kHz, ``log10(max(M, 1e-5))``), treats mel bands as channels and convolves over time,
so any clip length works (it is padded to a multiple of the downsampling factor and the
output cropped back). The bit rate is a parameter of the configuration::

    bit rate = (frames per second / downsample) × Σ_stages log2(codebook size)

e.g. 62.5 / 2 × 5 × 8 = 1250 bps with 5 stages of 256 codes, 6000 bps with 24 stages. One
trained model serves every depth of the ladder thanks to quantizer dropout
(:class:`utils.vq.ResidualVQ`). Audio comes back through the same filterbank inversion and
Griffin-Lim as everything else (:func:`utils.audio.log_mel_to_audio`).

Compared with the 2022 seed: the quantizer sees channel-last vectors (one D-dimensional vector
per latent frame, not whole channel maps), the target is the log-mel (not raw power), the
output is a log-mel so it can never be a negative power, and there is no dead codebook loss.

Notebook: notebooks/02_vq_vae.ipynb
"""

from __future__ import annotations

import os
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
import torch
from torch import Tensor, nn

from utils.audio import FEATURES, FeatureConfig, log_mel, log_mel_to_audio
from utils.checkpoint import FORMAT_VERSION, CheckpointError, load_checkpoint
from utils.vq.quantizers import ResidualVQ, VQOutput

__all__ = ["VQVAEConfig", "MelVQVAE", "MODEL_KIND", "ENCODERS", "build_encoder",
           "build_decoder", "CodecEncoder", "CodecDecoder", "export_codec"]

#: The encoders a :class:`VQVAEConfig` can name.
ENCODERS = ("conv", "cbhg", "inception")

#: Written into checkpoints; a checkpoint of another kind is refused with a clear error.
MODEL_KIND = "mel-vqvae"


@dataclass(frozen=True)
class VQVAEConfig:
    """Hyper-parameters of :class:`MelVQVAE` (stored in every checkpoint).

    Notebook: notebooks/02_vq_vae.ipynb

    Attributes:
        n_mels: Mel bands of the input (must match the feature configuration).
        channels: Width of the convolutional trunk.
        latent_dim: Dimension D of each quantized vector.
        downsample_log2: Number of stride-2 stages: the latent frame rate is
            62.5 / 2**downsample_log2 frames per second.
        res_blocks: Residual blocks before and after the resampling stages.
        num_codes: Codebook size K of every residual stage.
        num_quantizers: Maximum number of residual stages.
        quantizer_dropout: Train every depth 1..num_quantizers (one model, many bit rates).
        decay: EMA decay of the codebooks.
        beta: Commitment weight.
        dead_code_threshold: Dead-code restart threshold relative to N/K.
        mel_mean: Input normalisation mean (log10 units).
        mel_std: Input normalisation standard deviation (log10 units).
        log_floor: log10 of the feature floor; outputs are clamped to it.
        encoder: ``"conv"`` (the plain convolutional encoder), ``"cbhg"`` or ``"inception"``
            (the front-ends of :mod:`utils.models.encoders`), at the same latent rate.
        encoder_channels: Width of the encoder alone (``None``: ``channels``), to match the
            parameter counts of different encoders in front of one decoder.
    """

    n_mels: int = 80
    channels: int = 192
    latent_dim: int = 64
    downsample_log2: int = 1
    res_blocks: int = 2
    num_codes: int = 256
    num_quantizers: int = 24
    quantizer_dropout: bool = True
    decay: float = 0.99
    beta: float = 0.25
    dead_code_threshold: float = 0.05
    mel_mean: float = -2.5
    mel_std: float = 1.2
    log_floor: float = -5.0
    encoder: str = "conv"
    encoder_channels: int | None = None

    def __post_init__(self) -> None:
        if self.encoder_channels is not None and self.encoder_channels < 2:
            raise ValueError(f"encoder_channels must be at least 2, got {self.encoder_channels}")
        if self.encoder not in ENCODERS:
            raise ValueError(f"encoder must be one of {ENCODERS}, got {self.encoder!r}")
        at_least = {"n_mels": 1, "channels": 1, "latent_dim": 1, "downsample_log2": 0,
                    "res_blocks": 0, "num_codes": 2, "num_quantizers": 1}
        for name, low in at_least.items():
            if getattr(self, name) < low:
                raise ValueError(f"{name} must be at least {low}, got {getattr(self, name)}")
        if not 0 < self.decay < 1:
            raise ValueError(f"decay must be in (0, 1), got {self.decay}")
        if self.beta < 0 or self.dead_code_threshold < 0:
            raise ValueError("beta and dead_code_threshold must not be negative")
        if not self.mel_std > 0:
            raise ValueError(f"mel_std must be positive, got {self.mel_std}")


class ResBlock(nn.Module):
    """Residual unit: GELU → dilated conv → GELU → 1×1 conv, added to the input.

    Notebook: notebooks/02_vq_vae.ipynb
    """

    def __init__(self, channels: int, dilation: int) -> None:
        super().__init__()
        self.net = nn.Sequential(
            nn.GELU(),
            nn.Conv1d(channels, channels, 3, padding=dilation, dilation=dilation),
            nn.GELU(),
            nn.Conv1d(channels, channels, 1),
        )

    def forward(self, x: Tensor) -> Tensor:  # noqa: D102
        return x + self.net(x)


def _stack(channels: int, n: int) -> list[nn.Module]:
    return [ResBlock(channels, 3**i) for i in range(n)]


def resolve_config(kind: type, config: Any, overrides: dict[str, Any],
                   features: FeatureConfig) -> Any:
    """``config`` (or the default ``kind()``) with keyword ``overrides`` applied, checked
    against the feature configuration (shared by the VQ-VAE and the VAE).

    Notebook: notebooks/02_vq_vae.ipynb
    """
    cfg = config or kind()
    if overrides:
        cfg = kind(**{**asdict(cfg), **overrides})
    if cfg.n_mels != features.n_mels:
        raise ValueError(f"n_mels {cfg.n_mels} != feature n_mels {features.n_mels}")
    return cfg


def build_encoder(kind: str, n_mels: int, channels: int, out_dim: int, downsample_log2: int,
                  res_blocks: int, *, matched: bool = False) -> nn.Module:
    """The encoder trunk named ``kind``: normalised log-mel ``[B, n_mels, T]`` →
    ``[B, out_dim, T / 2**downsample_log2]`` (shared by the VQ-VAE and the VAE).

    With ``matched=True`` (an explicit encoder width) the CBHG's bank and projection widths
    scale with ``channels`` (a third and two thirds of it, the ratios of the default 64 / 128
    at 192), so one width knob matches its parameter count to another encoder's.

    Notebook: notebooks/02_vq_vae.ipynb
    """
    from utils.models.encoders import CBHGEncoder, InceptionEncoder

    c = channels
    if kind == "cbhg":
        if matched:
            c += c % 2
            return CBHGEncoder(n_mels, c, out_dim, downsample_log2, bank_channels=max(1, c // 3),
                               projection_channels=max(1, 2 * c // 3))
        return CBHGEncoder(n_mels, c, out_dim, downsample_log2)
    if kind == "inception":
        return InceptionEncoder(n_mels, c, out_dim, downsample_log2)
    enc: list[nn.Module] = [nn.Conv1d(n_mels, c, 5, padding=2), *_stack(c, res_blocks)]
    for _ in range(downsample_log2):
        enc += [nn.GELU(), nn.Conv1d(c, c, 4, stride=2, padding=1)]
    enc += [*_stack(c, res_blocks), nn.GELU(), nn.Conv1d(c, out_dim, 1)]
    return nn.Sequential(*enc)


def build_decoder(n_mels: int, channels: int, latent_dim: int, downsample_log2: int,
                  res_blocks: int) -> nn.Module:
    """The decoder trunk: latents ``[B, latent_dim, T']`` → ``[B, n_mels, T' · 2**down]``
    (normalised log-mel; shared by the VQ-VAE and the VAE).

    Notebook: notebooks/02_vq_vae.ipynb
    """
    c = channels
    dec: list[nn.Module] = [nn.Conv1d(latent_dim, c, 3, padding=1), *_stack(c, res_blocks)]
    for _ in range(downsample_log2):
        dec += [nn.GELU(), nn.ConvTranspose1d(c, c, 4, stride=2, padding=1)]
    dec += [*_stack(c, res_blocks), nn.GELU(), nn.Conv1d(c, n_mels, 5, padding=2)]
    return nn.Sequential(*dec)


class MelLatentRate:
    """The latent frame rate of a mel autoencoder with ``config.downsample_log2`` stride-2
    stages (shared by :class:`MelVQVAE` and :class:`utils.models.vae.MelVAE`).

    Notebook: notebooks/02_vq_vae.ipynb
    """

    @property
    def factor(self) -> int:
        """Time downsampling factor between mel frames and latent frames."""
        return 2**self.config.downsample_log2

    @property
    def latent_fps(self) -> float:
        """Latent frames per second."""
        return self.features.frames_per_second / self.factor


class MelVQVAE(MelLatentRate, nn.Module):
    """VQ-VAE codec on log-mel spectrograms with a residual VQ bottleneck.

    Shapes: input log-mel ``[B, n_mels, T]`` → latent ``[B, T', D]`` (channel-last, one vector
    per latent frame, ``T' = ceil(T / 2**downsample_log2)``) → output ``[B, n_mels, T]``.

    Notebook: notebooks/02_vq_vae.ipynb

    Args:
        config: A :class:`VQVAEConfig` (or keyword overrides of the default).
        features: Feature configuration of the log-mel the model reads and writes.
    """

    def __init__(
        self, config: VQVAEConfig | None = None, features: FeatureConfig = FEATURES, **overrides
    ) -> None:
        super().__init__()
        cfg = resolve_config(VQVAEConfig, config, overrides, features)
        self.config = cfg
        self.features = features
        d = cfg.latent_dim
        self.encoder = build_encoder(cfg.encoder, cfg.n_mels, cfg.encoder_channels or cfg.channels,
                                     d, cfg.downsample_log2, cfg.res_blocks,
                                     matched=cfg.encoder_channels is not None)
        self.quantizer = ResidualVQ(
            d,
            cfg.num_codes,
            cfg.num_quantizers,
            quantizer_dropout=cfg.quantizer_dropout,
            decay=cfg.decay,
            beta=cfg.beta,
            dead_code_threshold=cfg.dead_code_threshold,
        )
        self.decoder = build_decoder(cfg.n_mels, cfg.channels, d, cfg.downsample_log2,
                                     cfg.res_blocks)

    # ------------------------------------------------------------------ rates and shapes

    @property
    def codebook_device(self) -> torch.device:
        """The device of the model's weights (where inputs are moved)."""
        return next(self.parameters()).device

    def bitrate_bps(self, n_q: int | None = None) -> float:
        """Bit rate in bits per second when ``n_q`` residual stages are sent (default all).

        Notebook: notebooks/02_vq_vae.ipynb
        """
        return self.quantizer.bitrate_bps(self.latent_fps, n_q)

    def depth_for_bitrate(self, max_bps: float) -> int:
        """Deepest number of stages whose bit rate is at most ``max_bps``.

        Notebook: notebooks/02_vq_vae.ipynb

        Raises:
            ValueError: If even one stage exceeds ``max_bps``.
        """
        depths = range(1, self.config.num_quantizers + 1)
        fits = [n for n in depths if self.bitrate_bps(n) <= max_bps]
        if not fits:
            raise ValueError(f"one stage needs {self.bitrate_bps(1):.0f} bps > {max_bps:.0f} bps")
        return max(fits)

    # ------------------------------------------------------------------ network

    def _pad(self, x: Tensor) -> tuple[Tensor, int]:
        t = x.shape[-1]
        pad = (-t) % self.factor
        if pad:
            x = nn.functional.pad(x, (0, pad), value=self.config.log_floor)
        return x, t

    def encode(self, logmel: Tensor) -> Tensor:
        """Continuous latents ``z_e`` ``[B, T', D]`` (channel-last) of a log-mel batch.

        Notebook: notebooks/02_vq_vae.ipynb
        """
        x, _ = self._pad(logmel)
        x = (x - self.config.mel_mean) / self.config.mel_std
        return self.encoder(x).transpose(1, 2).contiguous()

    def decode(self, z_q: Tensor, length: int | None = None) -> Tensor:
        """Log-mel ``[B, n_mels, T]`` from (quantized) latents ``[B, T', D]``.

        Notebook: notebooks/02_vq_vae.ipynb
        """
        y = self.decoder(z_q.transpose(1, 2)) * self.config.mel_std + self.config.mel_mean
        y = y.clamp_min(self.config.log_floor)
        return y if length is None else y[..., :length]

    def forward(self, logmel: Tensor, n_q: int | None = None) -> tuple[Tensor, VQOutput]:
        """Reconstruct a log-mel batch ``[B, n_mels, T]``.

        Notebook: notebooks/02_vq_vae.ipynb

        Args:
            logmel: Input log-mel.
            n_q: Residual stages used (``None``: random depth in training, all in eval).

        Returns:
            ``(reconstruction [B, n_mels, T], VQOutput)``.
        """
        if logmel.dim() != 3 or logmel.shape[1] != self.config.n_mels:
            raise ValueError(f"expected [B, {self.config.n_mels}, T], got {tuple(logmel.shape)}")
        z_e = self.encode(logmel)
        vq = self.quantizer(z_e, n_q)
        return self.decode(vq.quantized, logmel.shape[-1]), vq

    @torch.no_grad()
    def encode_indices(self, logmel: Tensor, n_q: int | None = None) -> Tensor:
        """The codec's bit stream: indices ``[B, T', n_q]``.

        Notebook: notebooks/02_vq_vae.ipynb
        """
        return self.quantizer.encode(self.encode(logmel), n_q)

    @torch.no_grad()
    def decode_indices(self, indices: Tensor, length: int | None = None) -> Tensor:
        """Log-mel from indices ``[B, T', n]`` (the first ``n`` stages).

        Notebook: notebooks/02_vq_vae.ipynb
        """
        return self.decode(self.quantizer.decode(indices), length)

    # ------------------------------------------------------------------ audio in, audio out

    @torch.no_grad()
    def encode_audio(self, y: np.ndarray, n_q: int | None = None) -> Tensor:
        """The codec's encoder: a waveform → indices ``[1, T', n_q]`` (what is transmitted).

        Notebook: notebooks/02_vq_vae.ipynb
        """
        x = torch.from_numpy(log_mel(y, self.features))[None]
        return self.encode_indices(x.to(self.codebook_device), n_q)

    def decode_audio(
        self, indices: Tensor, length: int, *, n_iter: int = 32, seed: int = 0,
        vocoder: Any = None,
    ) -> np.ndarray:
        """The codec's decoder: indices → log-mel → waveform.

        The log-mel becomes a waveform by filterbank inversion and Griffin-Lim (the default),
        or by any other reconstruction: anything with ``synthesize(logmel, length)``, such as
        ``utils.reconstruction.reconstruction("melgl:32")`` or a
        :class:`utils.models.vocoder.MelVocoder` (a model does not load other models, so a
        string such as ``"melgl:32"`` is turned into one by :mod:`utils.reconstruction`).

        Notebook: notebooks/02_vq_vae.ipynb

        Args:
            indices: ``[1, T', n]`` from :meth:`encode_audio` (the first ``n`` stages).
            length: Output length in samples.
            n_iter: Griffin-Lim iterations (without a vocoder).
            seed: Initial-phase seed (without a vocoder).
            vocoder: A reconstruction (see above), or ``None`` / ``"griffinlim"`` for
                Griffin-Lim with ``n_iter`` iterations.

        Raises:
            TypeError: ``vocoder`` is another string (a specification: resolve it with
                ``utils.reconstruction.reconstruction``).

        Returns:
            The waveform, float32.
        """
        frames = 1 + length // self.features.hop_length
        L_hat = self.decode_indices(indices.to(self.codebook_device), frames)[0].cpu().numpy()
        if isinstance(vocoder, str) and vocoder != "griffinlim":
            raise TypeError(f"vocoder={vocoder!r}: pass utils.reconstruction.reconstruction"
                            f"({vocoder!r}), the object that synthesizes")
        if vocoder is not None and vocoder != "griffinlim":
            return vocoder.synthesize(L_hat, length)
        return log_mel_to_audio(L_hat, self.features, n_iter=n_iter, length=length, seed=seed)

    def reconstruct(
        self, y: np.ndarray, n_q: int | None = None, *, n_iter: int = 32, seed: int = 0,
        vocoder: Any = None,
    ) -> np.ndarray:
        """Encode a waveform at depth ``n_q``, decode, and turn the mel into a waveform.

        Notebook: notebooks/02_vq_vae.ipynb

        Args:
            y: Mono waveform at the feature sample rate.
            n_q: Residual stages (bit rate :meth:`bitrate_bps`); default all.
            n_iter: Griffin-Lim iterations (without a vocoder).
            seed: Initial-phase seed.
            vocoder: A vocoder (see :meth:`decode_audio`); default Griffin-Lim.

        Returns:
            The reconstructed waveform, same length as ``y``.
        """
        return self.decode_audio(self.encode_audio(y, n_q), len(y), n_iter=n_iter, seed=seed,
                                 vocoder=vocoder)

    # ------------------------------------------------------------------ checkpoints

    def checkpoint(self, **extra) -> dict:
        """A checkpoint dict (kind, format, config, features, weights, plus ``extra``).

        Notebook: notebooks/02_vq_vae.ipynb
        """
        return {
            "kind": MODEL_KIND,
            "format_version": FORMAT_VERSION,
            "config": asdict(self.config),
            "features": asdict(self.features),
            "model": self.state_dict(),
            **extra,
        }

    @classmethod
    def from_checkpoint(cls, path: str | os.PathLike,
                        map_location: str | torch.device = "cpu") -> MelVQVAE:
        """Rebuild a model from a checkpoint file (loaded with ``weights_only=True``), in eval mode.

        Notebook: notebooks/02_vq_vae.ipynb

        Args:
            path: Checkpoint file.
            map_location: Device of the model.

        Raises:
            CheckpointError: Not a mel VQ-VAE checkpoint, feature settings other than the
                audio pipeline's (:data:`utils.audio.FEATURES`), or weights that do not fit.
        """
        ckpt = load_checkpoint(path, MODEL_KIND, map_location=map_location)
        try:
            features = FeatureConfig(**ckpt["features"])
        except (TypeError, KeyError) as exc:
            raise CheckpointError(path, f"feature settings unreadable ({exc})") from None
        differ = [f"{k} {v!r} (the audio pipeline uses {getattr(FEATURES, k)!r})"
                  for k, v in asdict(features).items() if getattr(FEATURES, k) != v]
        if differ:
            raise CheckpointError(path, "feature settings differ from the collection's: "
                                        + ", ".join(differ))
        try:
            model = cls(VQVAEConfig(**ckpt["config"]), features)
            model.load_state_dict(ckpt["model"])
        except (TypeError, ValueError, RuntimeError, KeyError) as exc:
            raise CheckpointError(path, f"weights do not fit this model ({exc})") from None
        model.to(map_location)
        model.eval()
        return model

    def num_parameters(self) -> int:
        """Number of trainable parameters.

        Notebook: notebooks/02_vq_vae.ipynb
        """
        return sum(p.numel() for p in self.parameters() if p.requires_grad)



# ---------------------------------------------------------------------------------- export


class CodecEncoder(nn.Module):
    """The transmitter: log-mel ``[B, n_mels, T]`` → indices ``[B, T', n_q]`` (T even).

    Notebook: notebooks/04_front_ends.ipynb
    """

    def __init__(self, model: MelVQVAE, n_q: int) -> None:
        super().__init__()
        self.model = model
        self.n_q = n_q

    def forward(self, logmel: Tensor) -> Tensor:  # noqa: D102
        return self.model.quantizer.encode(self.model.encode(logmel), self.n_q)


class CodecDecoder(nn.Module):
    """The receiver: indices ``[B, T', n]`` → log-mel ``[B, n_mels, T' · factor]``.

    Notebook: notebooks/04_front_ends.ipynb
    """

    def __init__(self, model: MelVQVAE) -> None:
        super().__init__()
        self.model = model

    def forward(self, indices: Tensor) -> Tensor:  # noqa: D102
        return self.model.decode(self.model.quantizer.decode(indices))


def export_codec(model: MelVQVAE, n_q: int, *, max_frames: int = 8192):
    """Export the codec's two halves with ``torch.export`` for any clip length.

    The results run without this package's Python code and save / load with
    ``torch.export.save`` / ``torch.export.load``; they give the same indices and log-mel as
    the model (the seed offered TorchScript; ``torch.export`` is its successor).

    Notebook: notebooks/04_front_ends.ipynb

    Args:
        model: The codec (exported as it is; put it in eval mode first).
        n_q: Residual stages the encoder sends.
        max_frames: Longest input in mel frames.

    Returns:
        ``(encoder, decoder)`` as ``torch.export.ExportedProgram``; call ``.module()`` to run.
        The encoder takes an even number (at least 4) of mel frames (pad with the log floor).
    """
    n_mels = model.config.n_mels
    half = torch.export.Dim("half_frames", min=2, max=max_frames // 2)
    latent = torch.export.Dim("latent_frames", min=1, max=max_frames // model.factor)
    x = torch.full((1, n_mels, 64), model.config.mel_mean)
    was = model.training
    model.eval()
    try:
        with torch.no_grad():  # so the quantizer's no_grad blocks leave no grad-mode nodes
            enc = torch.export.export(CodecEncoder(model, n_q), (x,),
                                      dynamic_shapes=({2: 2 * half},))
            idx = model.quantizer.encode(model.encode(x), n_q)
            dec = torch.export.export(CodecDecoder(model), (idx,),
                                      dynamic_shapes=({1: latent},))
    finally:
        model.train(was)
    return enc, dec
