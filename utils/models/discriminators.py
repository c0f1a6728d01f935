"""Discriminators for adversarial vocoder training, and the losses they give.

Every fast feed-forward vocoder that beats Griffin-Lim trains against discriminators
(HiFi-GAN, Kong et al. 2020; UnivNet, Jang et al. 2021; Vocos): a network that tells real
waveforms from generated ones, whose judgement becomes a loss for the generator. Two kinds,
small here so that they train on a CPU:

* :class:`PeriodDiscriminator` (HiFi-GAN's multi-period discriminator, one period each): the
  waveform folded into a ``[T/p, p]`` image, 2-D convolutions along the folded time axis only,
  so it sees every ``p``-th sample: periodic structure (pitch) a spectrogram loss averages away;
* :class:`ResolutionDiscriminator` (UnivNet's multi-resolution discriminator, one STFT each):
  2-D convolutions over a log-magnitude spectrogram at one resolution.

Losses (least squares, as in HiFi-GAN): the discriminator wants 1 on real and 0 on generated,
``Σ (D(y) − 1)² + D(ŷ)²``; the generator wants ``Σ (D(ŷ) − 1)²``, plus **feature matching**,
the L1 distance between the discriminators' hidden activations on real and generated audio.

Notebook: notebooks/08_vocoders.ipynb
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor, nn
from torch.nn import functional as F

__all__ = ["PERIODS", "RESOLUTIONS", "PeriodDiscriminator", "ResolutionDiscriminator",
           "Discriminators", "discriminator_loss", "generator_adversarial_loss",
           "feature_matching_loss"]

#: Periods of the multi-period discriminator (HiFi-GAN's primes).
PERIODS = (2, 3, 5, 7, 11)
#: (n_fft, hop) of the multi-resolution discriminator.
RESOLUTIONS = ((512, 128), (1024, 256), (2048, 512))


class PeriodDiscriminator(nn.Module):
    """One period of the multi-period discriminator: ``[B, samples]`` → (score map, features).

    Notebook: notebooks/08_vocoders.ipynb
    """

    def __init__(self, period: int, channels: Sequence[int] = (16, 32, 64, 64)) -> None:
        super().__init__()
        self.period = period
        sizes = [1, *channels]
        self.convs = nn.ModuleList(
            nn.Conv2d(a, b, (5, 1), stride=(3, 1) if i < len(channels) - 1 else 1,
                      padding=(2, 0))
            for i, (a, b) in enumerate(zip(sizes, sizes[1:], strict=False)))
        self.out = nn.Conv2d(sizes[-1], 1, (3, 1), padding=(1, 0))

    def forward(self, y: Tensor) -> tuple[Tensor, list[Tensor]]:  # noqa: D102
        b, t = y.shape
        pad = (-t) % self.period
        if pad:
            y = F.pad(y, (0, pad), mode="reflect")
        h = y.view(b, 1, -1, self.period)
        features = []
        for conv in self.convs:
            h = F.leaky_relu(conv(h), 0.1)
            features.append(h)
        return self.out(h), features


class ResolutionDiscriminator(nn.Module):
    """One resolution of the multi-resolution discriminator on ``log(|STFT| + 1e-5)``.

    Notebook: notebooks/08_vocoders.ipynb
    """

    def __init__(self, n_fft: int, hop: int, channels: int = 16, layers: int = 4) -> None:
        super().__init__()
        self.n_fft, self.hop = n_fft, hop
        self.register_buffer("window", torch.hann_window(n_fft), persistent=False)
        sizes = [1] + [channels] * layers
        self.convs = nn.ModuleList(
            nn.Conv2d(a, b, (3, 9), stride=(1, 2), padding=(1, 4))
            for i, (a, b) in enumerate(zip(sizes, sizes[1:], strict=False)))
        self.out = nn.Conv2d(channels, 1, (3, 3), padding=1)

    def forward(self, y: Tensor) -> tuple[Tensor, list[Tensor]]:  # noqa: D102
        S = torch.stft(y, self.n_fft, self.hop, window=self.window, return_complex=True)
        h = torch.log(S.abs() + 1e-5)[:, None].transpose(-1, -2)    # [B, 1, frames, bins]
        features = []
        for conv in self.convs:
            h = F.leaky_relu(conv(h), 0.1)
            features.append(h)
        return self.out(h), features


class Discriminators(nn.Module):
    """The sub-discriminators chosen (``"mpd"``, ``"mrd"`` or both), run together.

    Notebook: notebooks/08_vocoders.ipynb

    Args:
        kinds: Which families to include.
    """

    def __init__(self, kinds: Sequence[str] = ("mpd", "mrd")) -> None:
        super().__init__()
        unknown = set(kinds) - {"mpd", "mrd"}
        if unknown or not kinds:
            raise ValueError(f"kinds must be a non-empty subset of ('mpd', 'mrd'), got {kinds}")
        subs: list[nn.Module] = []
        if "mpd" in kinds:
            subs += [PeriodDiscriminator(p) for p in PERIODS]
        if "mrd" in kinds:
            subs += [ResolutionDiscriminator(n, h) for n, h in RESOLUTIONS]
        self.subs = nn.ModuleList(subs)

    def forward(self, y: Tensor) -> list[tuple[Tensor, list[Tensor]]]:  # noqa: D102
        return [d(y) for d in self.subs]


def discriminator_loss(real: list[tuple[Tensor, list[Tensor]]],
                       fake: list[tuple[Tensor, list[Tensor]]]) -> Tensor:
    """``mean over discriminators of E(D(y) − 1)² + E D(ŷ)²`` (ŷ detached by the caller).

    Notebook: notebooks/08_vocoders.ipynb
    """
    terms = [((r - 1) ** 2).mean() + (f**2).mean() for (r, _), (f, _) in zip(real, fake,
                                                                              strict=True)]
    return torch.stack(terms).mean()


def generator_adversarial_loss(fake: list[tuple[Tensor, list[Tensor]]]) -> Tensor:
    """``mean over discriminators of E(D(ŷ) − 1)²``.

    Notebook: notebooks/08_vocoders.ipynb
    """
    return torch.stack([((f - 1) ** 2).mean() for f, _ in fake]).mean()


def feature_matching_loss(real: list[tuple[Tensor, list[Tensor]]],
                          fake: list[tuple[Tensor, list[Tensor]]]) -> Tensor:
    """Mean L1 between hidden activations on real (detached) and generated audio.

    Notebook: notebooks/08_vocoders.ipynb
    """
    terms = [(fr.detach() - ff).abs().mean()
             for (_, feats_r), (_, feats_f) in zip(real, fake, strict=True)
             for fr, ff in zip(feats_r, feats_f, strict=True)]
    return torch.stack(terms).mean()
