"""Noise for augmentation and speech enhancement: real recordings, generated noise, mixing.

One home for the noise the collection adds to speech:

* **real** background recordings (``load_noise``), each cut in time into a training part
  (the first 80 %) and a test part (the rest), so no test noise is ever heard in training;
* **generated** noise (``generated_noise``): white, pink (1/f), brown (1/f²) and mains hum
  (50 or 60 Hz and its harmonics), and **babble** (``babble``), a sum of other speakers' clips;
* **mixing at a chosen SNR** (``mix_at_snr``) and a **mixture that is a pure function of
  (seed, index)** (``make_mixture``), so a training batch, a validation set and the fixed
  test set are reproducible bit for bit without storing them.

Notebook: notebooks/07_speech_enhancement.ipynb
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path
from typing import NamedTuple

import torch
from torch import Tensor

from utils.audio import SR, load
from utils.data.files import find_audio

__all__ = ["GENERATED_KINDS", "NOISE_KINDS", "load_noise", "generated_noise", "babble",
           "mix_at_snr", "Mixture", "make_mixture"]

#: Noise made by :func:`generated_noise` (no file needed).
GENERATED_KINDS = ("white", "pink", "brown", "hum")
#: Every kind :func:`make_mixture` can draw: generated, babble, and real recordings.
NOISE_KINDS = (*GENERATED_KINDS, "babble", "real")


def load_noise(folders: Sequence[str | Path], part: str = "train",
               train_share: float = 0.8) -> list[Tensor]:
    """Real background noise, each recording cut in time: the first ``train_share`` for
    training (``part="train"``), the rest for testing (``part="test"``).

    Notebook: notebooks/07_speech_enhancement.ipynb

    Args:
        folders: Folders searched for audio files (resampled to 16 kHz, mono).
        part: ``"train"`` or ``"test"``.
        train_share: Share of each recording, from its start, that is training noise.

    Returns:
        One float32 tensor per recording.
    """
    if part not in ("train", "test"):
        raise ValueError(f"part must be 'train' or 'test', got {part!r}")
    out = []
    for folder in folders:
        for f in find_audio(folder, None):
            y = load(f, SR)
            cut = int(train_share * len(y))
            out.append(torch.from_numpy(y[:cut] if part == "train" else y[cut:]).float())
    return out


def generated_noise(kind: str, n: int, gen: torch.Generator) -> Tensor:
    """White, pink (1/f power), brown (1/f² power) noise or mains hum of ``n`` samples, unit RMS.

    Hum: a 50 or 60 Hz fundamental with its first harmonics at random levels and phases, plus
    a little white noise, as picked up from power lines.

    Notebook: notebooks/07_speech_enhancement.ipynb

    Args:
        kind: One of :data:`GENERATED_KINDS`.
        n: Samples (at 16 kHz).
        gen: Random generator (the only source of randomness).
    """
    if kind not in GENERATED_KINDS:
        raise ValueError(f"kind must be one of {GENERATED_KINDS}, got {kind!r}")
    white = torch.randn(n, generator=gen)
    if kind == "white":
        x = white
    elif kind == "hum":
        f0 = 50.0 if float(torch.rand(1, generator=gen)) < 0.5 else 60.0
        t = torch.arange(n) / SR
        x = 0.02 * white
        for h in range(1, 8):
            level = float(torch.rand(1, generator=gen)) / h
            phase = 2 * math.pi * float(torch.rand(1, generator=gen))
            x = x + level * torch.sin(2 * math.pi * f0 * h * t + phase)
    else:
        spec = torch.fft.rfft(white)
        f = torch.arange(spec.shape[0]).clamp_min(1).float()
        spec = spec / (f.sqrt() if kind == "pink" else f)
        x = torch.fft.irfft(spec, n)
    return x / x.pow(2).mean().sqrt().clamp_min(1e-8)


def babble(clips: Sequence[Tensor], n: int, gen: torch.Generator, *, talkers: int = 4,
           exclude: int | None = None) -> Tensor:
    """Babble: ``talkers`` other clips, each at a random offset and level, summed, unit RMS.

    Notebook: notebooks/07_speech_enhancement.ipynb

    Args:
        clips: Speech clips to draw the talkers from.
        n: Samples of the result.
        gen: Random generator.
        talkers: Number of overlapping talkers.
        exclude: Index of the target clip, never used as a talker.
    """
    choices = [i for i in range(len(clips)) if i != exclude]
    if not choices:
        raise ValueError("babble needs at least one clip besides the target")
    x = torch.zeros(n)
    for _ in range(talkers):
        c = clips[choices[int(torch.randint(len(choices), (1,), generator=gen))]]
        start = int(torch.randint(-len(c) // 2, n, (1,), generator=gen))
        lo, hi = max(start, 0), min(start + len(c), n)
        if hi > lo:
            piece = c[lo - start : hi - start]
            x[lo:hi] += piece / piece.pow(2).mean().sqrt().clamp_min(1e-8) * (
                0.5 + float(torch.rand(1, generator=gen)))
    return x / x.pow(2).mean().sqrt().clamp_min(1e-8)


def mix_at_snr(clean: Tensor, noise: Tensor, snr_db: float, *, peak: float = 0.95
               ) -> tuple[Tensor, Tensor]:
    """``clean + g·noise`` with ``g`` chosen so that the SNR is ``snr_db``; both scaled down
    together if the mixture would clip.

    The SNR is the energy ratio over the whole clip: ``10 log10(Σ s² / Σ (g n)²)``.

    Notebook: notebooks/07_speech_enhancement.ipynb

    Returns:
        ``(noisy, clean)``, the clean target scaled like the mixture.
    """
    if clean.shape != noise.shape:
        raise ValueError(f"clean {tuple(clean.shape)} and noise {tuple(noise.shape)} differ")
    e_s = clean.pow(2).sum()
    e_n = noise.pow(2).sum().clamp_min(1e-12)
    g = torch.sqrt(e_s / (e_n * 10 ** (snr_db / 10)))
    noisy = clean + g * noise
    top = float(noisy.abs().max())
    scale = peak / top if top > peak else 1.0
    return noisy * scale, clean * scale


class Mixture(NamedTuple):
    """One noisy example.

    Notebook: notebooks/07_speech_enhancement.ipynb

    Attributes:
        noisy: The mixture.
        clean: The clean target (scaled like the mixture).
        snr_db: The SNR it was mixed at.
        kind: The kind of noise (one of :data:`NOISE_KINDS`).
        clip: Index of the clean clip.
    """

    noisy: Tensor
    clean: Tensor
    snr_db: float
    kind: str
    clip: int


def make_mixture(seed: int, index: int, clips: Sequence[Tensor], real: Sequence[Tensor] = (),
                 *, kinds: Sequence[str] = NOISE_KINDS, snr_db: float | tuple[float, float] =
                 (-5.0, 10.0), clip: int | None = None) -> Mixture:
    """The ``index``-th mixture of stream ``seed``: a pure function of its arguments.

    Draws (with a generator seeded by ``seed`` and ``index`` only) a clean clip (unless
    given), a noise kind (``"real"`` only when ``real`` recordings are given; ``"babble"`` from
    the other clips), a noise segment and an SNR uniform in the range (or the given value).

    Notebook: notebooks/07_speech_enhancement.ipynb

    Args:
        seed: The stream (e.g. the training seed, or a fixed test seed).
        index: Position in the stream.
        clips: Clean clips of one length.
        real: Real noise recordings (each at least as long as a clip, or repeated to be).
        kinds: Noise kinds to draw from.
        snr_db: A fixed SNR or a ``(low, high)`` range.
        clip: Use this clean clip instead of drawing one.
    """
    g = torch.Generator().manual_seed(int(seed) * 1_000_003 + int(index))
    usable = [k for k in kinds if k != "real" or len(real)]
    if not usable:
        raise ValueError("no usable noise kind (\"real\" needs recordings)")
    i = int(torch.randint(len(clips), (1,), generator=g)) if clip is None else clip
    clean = clips[i]
    n = clean.shape[-1]
    kind = usable[int(torch.randint(len(usable), (1,), generator=g))]
    if kind == "real":
        rec = real[int(torch.randint(len(real), (1,), generator=g))]
        if len(rec) < n:
            rec = rec.repeat(n // len(rec) + 1)
        start = int(torch.randint(len(rec) - n + 1, (1,), generator=g))
        noise = rec[start : start + n]
        noise = noise / noise.pow(2).mean().sqrt().clamp_min(1e-8)
    elif kind == "babble":
        noise = babble(clips, n, g, exclude=i)
    else:
        noise = generated_noise(kind, n, g)
    if isinstance(snr_db, tuple):
        lo, hi = snr_db
        snr = lo + (hi - lo) * float(torch.rand(1, generator=g))
    else:
        snr = float(snr_db)
    noisy, target = mix_at_snr(clean, noise, snr)
    return Mixture(noisy, target, snr, kind, i)

