"""Spoken-word classification on the complex STFT: complex networks against their real twins.

The question this module lets us measure: does a complex network that sees the **phase** of the
STFT classify spoken words better than a parameter-matched real network that sees only the
magnitude? Everything needed is here, used alike by the command line, the tests and the notebook:

* **Features** (:func:`complex_features`): the clip is resampled to 8 kHz, centred on its energy
  in a 1 s window and peak-normalised (:func:`prepare_clip`), then ``X = STFT(y)`` with a
  256-point Hann window and a 128-sample hop (32 ms / 16 ms: ``[1, 129, 63]`` complex64 per
  clip, 31 Hz bins up to 4 kHz). Why these numbers: the hop is half the window, so the Hann
  windows overlap-add to a constant and the STFT is exactly invertible (the features carry the
  whole signal, phase included); the telephone band (0-4 kHz) keeps the words intelligible and
  halves the input of the 16 kHz / 16 ms alternative (``[1, 129, 126]``), which keeps training
  of all the shipped checkpoints within minutes on one CPU thread. (A check with one seed of
  each LeNet, 8 epochs: test accuracy 81 / 84 % (complex / real) at 16 kHz against 78 / 84 % at
  8 kHz, but 4 / 7 % against 21 / 41 % on the real recordings of one speaker
  (``one_speaker_words``, see ``data/README.md``); presumably the synthetic voices' top
  octave is the least like a microphone's.)
  The magnitude is compressed with a power law that **keeps the phase** (:func:`compress`)::

      F = |X|^c · e^{i∠X},   c = 0.3

  which maps the ~60 dB dynamic range of speech to ~18 "dB" (like a log) but, unlike a log, is
  exactly invertible, zero at zero, and acts on the modulus only. A complex model gets ``F``; its
  real twin gets the compressed magnitude ``|F| = |X|^c`` (:func:`magnitude_features`), so the
  two differ exactly by the phase.
* **Models** (:func:`build_model`): :class:`~utils.models.complex_cnn.ComplexLeNet` and a small
  :class:`~utils.models.complex_cnn.ComplexVGG`, and their real twins with the parameter count
  matched (:func:`~utils.models.complex_cnn.matched_width_scale`).
* **Training** (:class:`WordsTask` in the collection's one loop, :func:`utils.training.train`):
  AdamW, linear warm-up + cosine learning rate, random time shifts by whole STFT frames (an
  exact time shift of the signal), every batch a pure function of (seed, step); ``best.pt``
  holds the weights of the best validation accuracy.
* **Evaluation** (:func:`evaluate`): accuracy, loss and confusion matrix; on a folder of other
  recordings whose words are a subset of the classes (:func:`evaluate_checkpoints`).
* **Checkpoints** (:func:`save_model` / :func:`load_model`): ``kind = "spoken-words"`` dicts with
  the config, the history and the weights stored as float16 (half the size; the accuracies in
  ``data/pretrained/README.md`` are measured on the stored weights).

Command lines (the first trains every combination, keeps each run in ``OUT/runs/``, saves
``OUT/words_<arch>_<kind>_s<seed>.pt`` and prints the test table; the second measures saved
classifiers on any folder)::

    python -m utils.train words --arch lenet vgg --kind complex real ri --seeds 0 1 2 \\
        --epochs 10 --out data/pretrained/
    python -m utils.evaluate words data/pretrained/words_*.pt data/speech_words --split testing

Notebook: notebooks/06_complex_networks.ipynb
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import json
import math
from collections.abc import Iterator, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, NamedTuple

import librosa
import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from utils.audio import FeatureConfig, stft
from utils.checkpoint import (
    FORMAT_VERSION,
    CheckpointError,
    load_checkpoint,
    save_atomic,
    writable_folder,
)
from utils.data import SpeechCommands
from utils.errors import OptionError
from utils.models.complex_cnn import (
    ComplexLeNet,
    ComplexVGG,
    RealLeNet,
    RealVGG,
    count_parameters,
    matched_width_scale,
)
from utils.training import Task, TrainConfig, train

__all__ = [
    "KIND",
    "ARCHS",
    "KINDS",
    "DEFAULT_LR",
    "SUMMARY",
    "TRAIN_DEFAULTS",
    "WordFeatures",
    "WORD_FEATURES",
    "WordData",
    "WordsConfig",
    "WordsTask",
    "prepare_clip",
    "compress",
    "decompress",
    "complex_features",
    "magnitude_features",
    "model_input",
    "load_words",
    "build_model",
    "shift_frames",
    "evaluate",
    "save_model",
    "load_model",
    "evaluate_checkpoints",
    "summarize",
    "run_records",
    "checkpoint_name",
    "add_train_arguments",
    "train_command",
    "add_eval_arguments",
    "evaluate_command",
]

#: Checkpoint kind of the spoken-word classifiers.
KIND = "spoken-words"
#: Architectures of the command line.
ARCHS = ("lenet", "vgg")
#: Default peak learning rate per architecture (LeNet has no batch norm and learns slower).
DEFAULT_LR = {"lenet": 1e-2, "vgg": 5e-3}
#: ``"complex"``: complex model on the compressed complex STFT; ``"real"``: its real twin on the
#: compressed magnitude; ``"ri"``: the same real twin on the stacked real and imaginary parts
#: (two channels), the control that sees the phase with real arithmetic.
KINDS = ("complex", "real", "ri")
#: Real input channels of each real kind.
REAL_IN_CHANNELS = {"real": 1, "ri": 2}

#: One line for ``--help``.
SUMMARY = "spoken words from the complex STFT: complex LeNet / VGG against real twins"

#: The word classifiers' defaults of the shared training settings (the schedule's length and
#: the log / validation / save intervals are set per epoch by :func:`train_command`).
TRAIN_DEFAULTS = dict(batch_size=32, lr=None, weight_decay=1e-2, warmup=None, min_lr_ratio=0.0,
                      grad_clip=5.0, log_every=None, val_every=None, save_every=None, threads=1)
#: Shared options this task does not take (``--epochs`` and ``--seeds`` replace them).
TRAIN_SKIP = ("steps", "seed")


# --------------------------------------------------------------------------------------------
# Features
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class WordFeatures:
    """Feature parameters of the word classifiers (stored in every checkpoint).

    Notebook: notebooks/06_complex_networks.ipynb

    Attributes:
        sr: Sample rate of the features in Hz (clips are resampled to it).
        length: Samples per clip after centring, at ``sr`` (8000 = 1 s).
        n_fft: FFT size and Hann window length (256 = 32 ms at 8 kHz).
        hop_length: Hop in samples (128 = 16 ms; half the window, so the STFT is invertible).
        exponent: Power-law compression of the modulus, ``|X|^exponent``; the phase is kept.
    """

    sr: int = 8000
    length: int = 8000
    n_fft: int = 256
    hop_length: int = 128
    exponent: float = 0.3

    @property
    def stft_config(self) -> FeatureConfig:
        """The :class:`utils.audio.FeatureConfig` of the STFT (for ``stft`` / ``istft``)."""
        return FeatureConfig(sr=self.sr, n_fft=self.n_fft, hop_length=self.hop_length)

    @property
    def shape(self) -> tuple[int, int, int]:
        """Feature shape ``(1, bins, frames)`` of one clip."""
        return (1, self.n_fft // 2 + 1, 1 + self.length // self.hop_length)


#: The features of the shipped checkpoints: ``[1, 129, 63]`` per 1 s clip.
WORD_FEATURES = WordFeatures()


def prepare_clip(y: np.ndarray, length: int = WORD_FEATURES.length) -> np.ndarray:
    """Centre a clip on its energy in a window of ``length`` samples and peak-normalise it to 1.

    The bundled words sit in the middle of their 1 s clips, real recordings anywhere: centring
    on the energy centroid ``Σ t·y(t)² / Σ y(t)²`` makes both alike. Samples outside the window
    are dropped, missing ones are zeros. A silent clip stays silent.

    Notebook: notebooks/06_complex_networks.ipynb

    Args:
        y: Mono waveform of any length.
        length: Output length in samples.

    Returns:
        float32 waveform of ``length`` samples with peak 1 (or all zeros).
    """
    y = np.asarray(y, dtype=np.float32)
    if y.ndim != 1:
        raise ValueError(f"expected a mono waveform (samples,), got shape {y.shape}")
    energy = y.astype(np.float64) ** 2
    total = float(energy.sum())
    centre = (float(np.arange(y.size) @ energy) / total) if total > 0 else (y.size - 1) / 2
    start = int(round(centre)) - length // 2
    out = np.zeros(length, dtype=np.float32)
    lo, hi = max(start, 0), min(start + length, y.size)
    if hi > lo:
        out[lo - start : hi - start] = y[lo:hi]
    peak = float(np.max(np.abs(out)))
    return out / peak if peak > 0 else out


def compress(X: np.ndarray | Tensor, exponent: float = WORD_FEATURES.exponent):
    """Power-law compression of the modulus that keeps the phase: ``|X|^c · e^{i∠X}``.

    Computed as ``X · |X|^(c-1)`` (0 where ``X = 0``), so no angle is ever formed.

    Notebook: notebooks/06_complex_networks.ipynb

    Args:
        X: Complex array or tensor (NumPy or torch).
        exponent: ``c`` in (0, 1]; 1 is the identity.

    Returns:
        The compressed array/tensor, same type, shape and dtype.
    """
    if isinstance(X, Tensor):
        mag = X.abs()
        gain = torch.where(mag > 0, mag.clamp_min(1e-30) ** (exponent - 1), torch.zeros_like(mag))
        return X * gain
    X = np.asarray(X)
    mag = np.abs(X)
    with np.errstate(divide="ignore"):
        gain = np.where(mag > 0, np.maximum(mag, 1e-30) ** (exponent - 1), 0.0)
    return (X * gain).astype(X.dtype, copy=False)


def decompress(Fc: np.ndarray | Tensor, exponent: float = WORD_FEATURES.exponent):
    """Inverse of :func:`compress`: ``|F|^(1/c) · e^{i∠F}``.

    Notebook: notebooks/06_complex_networks.ipynb

    Args:
        Fc: Compressed complex array or tensor.
        exponent: The ``c`` used by :func:`compress`.

    Returns:
        The complex STFT, same type as the input.
    """
    return compress(Fc, 1.0 / exponent)


def complex_features(y: np.ndarray, cfg: WordFeatures = WORD_FEATURES,
                     sr: int | None = None) -> np.ndarray:
    """Compressed complex STFT of a clip: the input of the complex models.

    Resample to ``cfg.sr`` (if ``sr`` differs) → :func:`prepare_clip` (centre on the energy,
    peak 1) → STFT (Hann, ``cfg.n_fft``, ``cfg.hop_length``) → :func:`compress`.

    Notebook: notebooks/06_complex_networks.ipynb

    Args:
        y: Mono waveform (any length).
        cfg: Feature parameters.
        sr: Sample rate of ``y`` (default ``cfg.sr``: no resampling).

    Returns:
        complex64 array of shape ``cfg.shape`` = ``(1, 129, 63)`` by default.
    """
    y = np.asarray(y, dtype=np.float32)
    if sr is not None and sr != cfg.sr:
        y = librosa.resample(y, orig_sr=sr, target_sr=cfg.sr, res_type="soxr_hq")
    X = stft(prepare_clip(y, cfg.length), cfg.stft_config)
    return compress(X.astype(np.complex64), cfg.exponent)[None]


def magnitude_features(y: np.ndarray, cfg: WordFeatures = WORD_FEATURES,
                       sr: int | None = None) -> np.ndarray:
    """Compressed magnitude ``|X|^c`` of a clip: the input of the real twins.

    Notebook: notebooks/06_complex_networks.ipynb

    Args:
        y: Mono waveform.
        cfg: Feature parameters.
        sr: Sample rate of ``y`` (default ``cfg.sr``).

    Returns:
        float32 array of shape ``cfg.shape``.
    """
    return np.abs(complex_features(y, cfg, sr)).astype(np.float32)


def model_input(features: Tensor, kind: str) -> Tensor:
    """The input a model of ``kind`` gets from complex features: themselves, their modulus, or
    their real and imaginary parts stacked as two channels.

    Notebook: notebooks/06_complex_networks.ipynb

    Args:
        features: Complex features ``[B, 1, F, T]`` (:func:`complex_features`).
        kind: ``"complex"``, ``"real"`` or ``"ri"``.

    Returns:
        ``features`` for ``"complex"``; ``features.abs()`` ``[B, 1, F, T]`` for ``"real"``;
        ``[Re, Im]`` ``[B, 2, F, T]`` for ``"ri"`` (float32).
    """
    if kind not in KINDS:
        raise ValueError(f"kind must be one of {KINDS}, got {kind!r}")
    if not features.is_complex():
        raise TypeError(f"expected complex features, got {features.dtype}")
    if kind == "complex":
        return features
    if kind == "real":
        return features.abs()
    return torch.cat([features.real, features.imag], dim=1)


class WordData(NamedTuple):
    """Features and labels of one split, held in memory.

    Notebook: notebooks/06_complex_networks.ipynb

    Attributes:
        x: Complex features ``[N, 1, F, T]`` (complex64).
        y: Label indices ``[N]`` (int64) into ``words``.
        words: Class names.
        files: Source file of every item.
        failed: ``(file, reason)`` of every file that could not be used (skipped).
    """

    x: Tensor
    y: Tensor
    words: list[str]
    files: list[Path]
    failed: list[tuple[Path, str]] = []


def load_words(
    root: str | Path,
    split: str | None = "train",
    *,
    words: Sequence[str] | None = None,
    classes: Sequence[str] | None = None,
    cfg: WordFeatures = WORD_FEATURES,
) -> WordData:
    """Load a Speech Commands-layout folder as complex features (unreadable files are skipped).

    Notebook: notebooks/06_complex_networks.ipynb

    Args:
        root: Dataset folder (e.g. ``data/speech_words``).
        split: ``"train"``, ``"validation"``, ``"testing"`` or ``None`` (every clip).
        words: Word folders to read (default: all).
        classes: Class list the labels index into (default: ``words`` as read). Use the model's
            classes to evaluate on a folder holding only some of them.
        cfg: Feature parameters.

    Returns:
        A :class:`WordData`.
    """
    ds = SpeechCommands(root, words=words, split=split, sr=cfg.sr, length=None,
                        transform=lambda y: complex_features(y, cfg), cache=False)
    names = list(classes) if classes is not None else list(ds.words)
    missing = [w for w in ds.words if w not in names]
    if missing:
        raise ValueError(f"{root}: word(s) {missing} are not among the classes {names}")
    if len(ds) == 0:
        raise ValueError(f"{root}: no usable clip in split {split!r}")
    x = torch.stack([ds[i][0] for i in range(len(ds))])
    y = torch.tensor([names.index(ds.words[label]) for label in ds.labels], dtype=torch.int64)
    return WordData(x, y, names, list(ds.files), list(ds.failed))


# --------------------------------------------------------------------------------------------
# Models
# --------------------------------------------------------------------------------------------


def _complex_template(arch: str, num_classes: int, width: float, vgg: str,
                      dropout: float) -> nn.Module:
    if arch == "lenet":
        return ComplexLeNet(1, num_classes, width)
    if arch == "vgg":
        return ComplexVGG(vgg, 1, num_classes, width, batch_norm=True, dropout=dropout)
    raise ValueError(f"arch must be one of {ARCHS}, got {arch!r}")


def build_model(
    arch: str,
    kind: str,
    num_classes: int,
    width: float,
    *,
    vgg: str = "vgg11",
    dropout: float = 0.25,
    width_scale: float | None = None,
) -> nn.Module:
    """A word classifier: complex LeNet / VGG on complex features, or a real twin of it.

    The real twin has one real input channel (the compressed magnitude, ``"real"``) or two (the
    real and imaginary parts, ``"ri"``) and every other width
    multiplied by the ``width_scale`` that matches its parameter count to the complex model's
    (searched when ``None``; store it to rebuild the same model). The complex model is built
    on the ``meta`` device for that search, so the random state is not touched.

    Notebook: notebooks/06_complex_networks.ipynb

    Args:
        arch: ``"lenet"`` or ``"vgg"``.
        kind: ``"complex"``, ``"real"`` or ``"ri"``.
        num_classes: Number of words.
        width: LeNet width multiplier, or VGG first-block width.
        vgg: VGG configuration (``"vgg11"``, ...).
        dropout: Classifier dropout of the VGGs.
        width_scale: Real twin channel multiplier (``None``: matched search).

    Returns:
        The model (with ``model.width_scale`` set for real twins).
    """
    if kind not in KINDS:
        raise ValueError(f"kind must be one of {KINDS}, got {kind!r}")
    if kind == "complex":
        return _complex_template(arch, num_classes, width, vgg, dropout)
    in_channels = REAL_IN_CHANNELS[kind]
    if width_scale is None:
        with torch.device("meta"):
            template = _complex_template(arch, num_classes, width, vgg, dropout)
        width_scale = matched_width_scale(template, in_channels=in_channels)
    if arch == "lenet":
        model = RealLeNet(in_channels, num_classes, width, width_scale=width_scale)
    else:
        model = RealVGG(vgg, in_channels, num_classes, width, batch_norm=True, dropout=dropout,
                        width_scale=width_scale)
    model.width_scale = width_scale
    return model


# --------------------------------------------------------------------------------------------
# Batches and evaluation
# --------------------------------------------------------------------------------------------


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


# --------------------------------------------------------------------------------------------
# The task of the training loop
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class WordsConfig:
    """Configuration of a word classifier (stored in every checkpoint).

    Notebook: notebooks/06_complex_networks.ipynb

    Attributes:
        arch: ``"lenet"`` or ``"vgg"``.
        kind: ``"complex"`` (complex model on the complex features), ``"real"`` (its real
            twin on their modulus) or ``"ri"`` (the twin on their real and imaginary parts).
        words: The class names, in label order.
        width: LeNet width multiplier, or VGG first-block width.
        vgg: VGG configuration (``"vgg11"``, ...).
        dropout: Classifier dropout of the VGGs.
        width_scale: Channel multiplier of a real twin that matches the complex model's
            parameter count (``None``: searched by :class:`WordsTask`).
    """

    arch: str = "lenet"
    kind: str = "complex"
    words: tuple[str, ...] = ()
    width: float = 0.5
    vgg: str = "vgg11"
    dropout: float = 0.25
    width_scale: float | None = None

    def __post_init__(self) -> None:
        if self.arch not in ARCHS:
            raise OptionError("--arch", f"must be one of {ARCHS}, got {self.arch!r}")
        if self.kind not in KINDS:
            raise OptionError("--kind", f"must be one of {KINDS}, got {self.kind!r}")
        if not self.width > 0:
            raise OptionError(f"--{self.arch}-width", f"must be positive, got {self.width}")
        if not 0 <= self.dropout < 1:
            raise OptionError("--dropout", f"must be in [0, 1), got {self.dropout}")
        object.__setattr__(self, "words", tuple(self.words))

    def build(self) -> nn.Module:
        """The model of this configuration (:func:`build_model`).

        Notebook: notebooks/06_complex_networks.ipynb
        """
        return build_model(self.arch, self.kind, len(self.words), self.width, vgg=self.vgg,
                           dropout=self.dropout, width_scale=self.width_scale)


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


# --------------------------------------------------------------------------------------------
# Checkpoints
# --------------------------------------------------------------------------------------------


def _pack(state: dict[str, Tensor]) -> tuple[dict[str, Tensor], list[str]]:
    """float16 copies of the floating tensors; complex ones as (..., 2) float16 (view_as_real)."""
    packed, complex_keys = {}, []
    for k, v in state.items():
        if v.is_complex():
            packed[k] = torch.view_as_real(v.detach()).to(torch.float16).clone()
            complex_keys.append(k)
        elif v.is_floating_point():
            packed[k] = v.detach().to(torch.float16).clone()
        else:
            packed[k] = v.detach().clone()
    return packed, complex_keys


def _unpack(packed: dict[str, Tensor], complex_keys: Sequence[str]) -> dict[str, Tensor]:
    state = {}
    for k, v in packed.items():
        if k in complex_keys:
            state[k] = torch.view_as_complex(v.float().contiguous())
        elif v.is_floating_point():
            state[k] = v.float()
        else:
            state[k] = v
    return state


def save_model(model: nn.Module, config: WordsConfig | dict[str, Any], path: str | Path,
               history: dict[str, Any] | None = None) -> Path:
    """Save a word classifier atomically as a ``kind = "spoken-words"`` checkpoint.

    The weights are stored as float16 (complex ones as float16 (Re, Im) pairs): half the size,
    and the accuracy of the stored model is what :func:`load_model` gives back.

    Notebook: notebooks/06_complex_networks.ipynb

    Args:
        model: The trained model.
        config: The :class:`WordsConfig`, or a dict of its fields plus any training settings
            worth keeping (JSON-like values only).
        path: Destination ``.pt`` file.
        history: Training history (:func:`train`), lists of floats.

    Returns:
        The path written.
    """
    packed, complex_keys = _pack(model.state_dict())
    hist = {k: v for k, v in (history or {}).items() if isinstance(v, (int, float, list))}
    if isinstance(config, WordsConfig):
        config = {**asdict(config), "words": list(config.words)}
    config = {"num_classes": len(config["words"]), **config}
    ckpt = {
        "kind": KIND,
        "format_version": FORMAT_VERSION,
        "config": config,
        "complex_keys": complex_keys,
        "storage_dtype": "float16",
        "history": hist,
        "model": packed,
    }
    return save_atomic(ckpt, path)


def load_model(path: str | Path) -> tuple[nn.Module, dict[str, Any]]:
    """Load a word classifier saved by :func:`save_model` (``weights_only=True``), in eval mode.

    Notebook: notebooks/06_complex_networks.ipynb

    Args:
        path: Checkpoint file.

    Returns:
        ``(model, checkpoint)``; ``checkpoint["config"]`` has ``kind``, ``words``, ...

    Raises:
        CheckpointError: Missing or broken file, or a checkpoint of another kind (e.g. a
            ``"mel-vqvae"``), with the reason.
    """
    ckpt = load_checkpoint(path, KIND)
    cfg = ckpt["config"]
    try:
        fields = {f.name for f in dataclasses.fields(WordsConfig)}
        config = WordsConfig(**{k: v for k, v in cfg.items() if k in fields})
        if cfg.get("num_classes", len(config.words)) != len(config.words):
            raise ValueError(f"{cfg['num_classes']} classes but {len(config.words)} words")
        model = config.build()
        state = ckpt["model"]
        if ckpt.get("storage_dtype") == "float16":
            state = _unpack(state, ckpt.get("complex_keys", []))
        model.load_state_dict(state)
    except (KeyError, ValueError, RuntimeError, TypeError) as exc:
        raise CheckpointError(path, f"config and weights do not build a model ({exc})") from None
    model.eval()
    return model, ckpt


def checkpoint_name(arch: str, kind: str, seed: int) -> str:
    """File name of a shipped checkpoint: ``words_<arch>_<kind>_s<seed>.pt``.

    Notebook: notebooks/06_complex_networks.ipynb
    """
    return f"words_{arch}_{kind}_s{seed}.pt"


def evaluate_checkpoints(
    paths: Sequence[str | Path],
    data: WordData,
    *,
    threads: int | None = 1,
) -> list[dict[str, Any]]:
    """Evaluate saved word classifiers on one set of complex features.

    The data's classes must be the checkpoints' words (load them with ``classes=words``); a
    folder holding only some of the words (real recordings of three of them) is fine:
    predictions are still over all the classes.

    Notebook: notebooks/06_complex_networks.ipynb

    Args:
        paths: Checkpoint files.
        data: Features and labels (:func:`load_words`).
        threads: torch threads during the evaluation.

    Returns:
        One record per checkpoint: ``file``, ``arch``, ``kind``, ``seed``, ``params``,
        ``accuracy``, ``loss``, ``confusion``, ``best_epoch``.
    """
    out = []
    for path in paths:
        model, ckpt = load_model(path)
        cfg = ckpt["config"]
        if list(cfg["words"]) != list(data.words):
            raise ValueError(f"{path}: classes {cfg['words']} differ from the data's {data.words}")
        r = evaluate(model, model_input(data.x, cfg["kind"]), data.y,
                     num_classes=len(data.words), threads=threads)
        out.append({"file": Path(path).name, "arch": cfg["arch"], "kind": cfg["kind"],
                    "seed": cfg.get("seed"), "params": count_parameters(model),
                    "accuracy": r["accuracy"], "loss": r["loss"], "confusion": r["confusion"],
                    "best_epoch": ckpt.get("history", {}).get("best_epoch")})
    return out


def summarize(records: Sequence[dict[str, Any]], key: str = "accuracy") -> list[dict[str, Any]]:
    """Mean ± standard deviation (over seeds) of ``key`` per (arch, kind), in first-seen order.

    Notebook: notebooks/06_complex_networks.ipynb

    Args:
        records: Output of :func:`evaluate_checkpoints`.
        key: The measure to aggregate.

    Returns:
        Rows ``{"arch", "kind", "params", "seeds", "mean", "std"}`` (std with ddof=1; 0 for
        one seed).
    """
    groups: dict[tuple[str, str], list[dict[str, Any]]] = {}
    for r in records:
        groups.setdefault((r["arch"], r["kind"]), []).append(r)
    rows = []
    for (arch, kind), rs in groups.items():
        vals = np.array([r[key] for r in rs], dtype=np.float64)
        rows.append({"arch": arch, "kind": kind, "params": rs[0]["params"], "seeds": len(rs),
                     "mean": float(vals.mean()),
                     "std": float(vals.std(ddof=1)) if len(vals) > 1 else 0.0})
    return rows


# --------------------------------------------------------------------------------------------
# Command lines
# --------------------------------------------------------------------------------------------


def add_train_arguments(p: argparse.ArgumentParser) -> None:
    """The options of ``python -m utils.train words``.

    Notebook: notebooks/06_complex_networks.ipynb
    """
    g = p.add_argument_group("words")
    g.add_argument("--arch", nargs="+", choices=ARCHS, default=["lenet"])
    g.add_argument("--kind", nargs="+", choices=KINDS, default=list(KINDS))
    g.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2])
    g.add_argument("--epochs", type=int, default=10)
    g.add_argument("--data", default="data/speech_words",
                   help="Speech Commands-layout folder with train/validation/testing lists")
    g.add_argument("--lenet-width", type=float, default=0.5, help="ComplexLeNet width")
    g.add_argument("--vgg-width", type=float, default=4, help="ComplexVGG first-block width")
    g.add_argument("--vgg", default="vgg11", help="VGG configuration")
    g.add_argument("--dropout", type=float, default=0.25, help="VGG classifier dropout")
    g.add_argument("--max-shift", type=int, default=6, help="random time shift, frames")
    g.add_argument("--real-dir", default=None,
                   help="folder of real recordings to evaluate too, e.g. "
                        "../shared/speech/one_speaker_words")


def _fmt(rows: list[dict[str, Any]]) -> list[str]:
    return [f"{r['arch']:6s} {r['kind']:8s} {r['params']:8d} {r['seeds']:5d} "
            f"{100 * r['mean']:6.1f} ± {100 * r['std']:4.1f} %" for r in rows]


def run_records(log: str | Path) -> list[dict[str, Any]]:
    """The records of a whole run from its ``log.jsonl``, across every ``--resume``.

    A resume continues from the step of ``last.pt``, so records the log holds for later steps
    (written before an interruption, then done again) are dropped at each ``resume`` event;
    a record logged twice for one step (training or validation) keeps its last copy. The result
    is what one uninterrupted run would have logged: every step once, in order.

    Notebook: notebooks/06_complex_networks.ipynb

    Args:
        log: The run's ``log.jsonl`` (a missing file gives no records).

    Returns:
        Training and validation records, ordered by step (training before validation).
    """
    path = Path(log)
    if not path.is_file():
        return []
    kept: dict[tuple[int, bool], dict[str, Any]] = {}
    for line in path.read_text().splitlines():
        if not line.strip():
            continue
        try:
            r = json.loads(line)
        except json.JSONDecodeError:  # a line cut short by a crash
            continue
        if not isinstance(r, dict) or not isinstance(r.get("step"), int):
            continue
        if r.get("event") == "resume":
            kept = {k: v for k, v in kept.items() if k[0] <= r["step"]}
        elif "event" not in r:
            kept[(r["step"], "loss" not in r)] = r
    return [kept[k] for k in sorted(kept)]


def _history(records: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """The per-epoch history stored with an exported classifier, from the run's log."""
    val = [r for r in records if "val_accuracy" in r]
    steps = [r for r in records if "loss" in r]
    best = max(val, key=lambda r: r["val_accuracy"], default=None)
    return {"train_step": [r["step"] for r in steps],
            "train_loss": [r["loss"] for r in steps], "lr": [r["lr"] for r in steps],
            "val_step": [r["step"] for r in val],
            "val_loss": [r["val_loss"] for r in val],
            "val_accuracy": [r["val_accuracy"] for r in val],
            "best_step": best["step"] if best else 0,
            "best_val_accuracy": best["val_accuracy"] if best else math.nan}


def train_command(args: argparse.Namespace, cfg: TrainConfig) -> dict[str, Any]:
    """Run ``python -m utils.train words``: every (arch, kind, seed) through the one loop.

    Each run lives in ``OUT/runs/<name>/`` (``last.pt``, ``best.pt``, ``log.jsonl``; resumable);
    its best weights are exported as ``OUT/<name>.pt`` in float16 and measured as stored.

    Notebook: notebooks/06_complex_networks.ipynb

    Returns:
        ``{"test": rows, "real": rows, "epochs", "seeds"}`` (rows of :func:`summarize`).
    """
    # every option, before the data loads
    if args.epochs < 1:
        raise OptionError("--epochs", f"must be at least 1, got {args.epochs}")
    for arch in args.arch:  # builds (and so checks) each configuration
        WordsConfig(arch, args.kind[0], (), args.lenet_width if arch == "lenet"
                    else args.vgg_width, args.vgg, args.dropout)
    if args.max_shift < 0:
        raise OptionError("--max-shift", f"must not be negative, got {args.max_shift}")
    for option, folder in (("--data", args.data), ("--real-dir", args.real_dir)):
        if folder is not None and not Path(folder).is_dir():
            raise OptionError(option, f"no such folder: {folder}")
    out = writable_folder(cfg.out)

    train_set = load_words(args.data, "train")
    words = train_set.words
    val_set = load_words(args.data, "validation", classes=words)
    test_set = load_words(args.data, "testing", classes=words)
    real_set = None
    if args.real_dir is not None:
        shared = [d.name for d in sorted(Path(args.real_dir).iterdir())
                  if d.is_dir() and d.name in words]
        if shared:
            real_set = load_words(args.real_dir, None, words=shared, classes=words)

    saved: list[Path] = []
    for arch in args.arch:
        for kind in args.kind:
            for seed in args.seeds:
                width = args.lenet_width if arch == "lenet" else args.vgg_width
                config = WordsConfig(arch, kind, tuple(words), width, args.vgg, args.dropout)
                task = WordsTask(config, train_set, val_set, max_shift=args.max_shift)
                per_epoch = task.steps_per_epoch(cfg.batch_size)
                steps = args.epochs * per_epoch
                name = checkpoint_name(arch, kind, seed).removesuffix(".pt")
                run = dataclasses.replace(
                    cfg, out=str(out / "runs" / name), steps=steps, seed=seed,
                    lr=args.lr if args.lr is not None else DEFAULT_LR[arch],
                    warmup=args.warmup if args.warmup is not None else round(0.05 * steps),
                    log_every=args.log_every or per_epoch, val_every=args.val_every or per_epoch,
                    save_every=args.save_every or per_epoch)
                result = train(task, run)
                model, _ = load_model(Path(run.out) / "best.pt")
                # the whole run's log: a resumed run extends the history, never replaces it
                # (less the extra records of a stop at --stop-at / --max-minutes)
                records = [r for r in run_records(Path(run.out) / "log.jsonl")
                           if r["step"] == steps
                           or r["step"] % (run.log_every if "loss" in r else run.val_every) == 0]
                history = {**_history(records), "epochs": args.epochs, "steps": steps,
                           "seconds": round(result.elapsed_s, 1)}
                info = {"seed": seed, "epochs": args.epochs, "batch_size": run.batch_size,
                        "lr": run.lr, "weight_decay": run.weight_decay,
                        "max_shift": args.max_shift, "data": Path(args.data).name,
                        "features": asdict(WORD_FEATURES)}
                path = save_model(model, {**task.model_config(), **info},
                                  out / checkpoint_name(arch, kind, seed), history)
                saved.append(path)
                print(f"{path.name}: {count_parameters(model)} params, best step "
                      f"{history['best_step']}/{steps}, val {history['best_val_accuracy']:.3f}, "
                      f"{history['seconds']:.1f} s", flush=True)

    # measure the checkpoints as stored (float16 weights), not the models in memory
    rows = summarize(evaluate_checkpoints(saved, test_set, threads=cfg.threads))
    print("\ntest split (mean ± std over seeds)\narch   kind       params seeds  accuracy")
    print("\n".join(_fmt(rows)))
    result_rows: dict[str, Any] = {"test": rows, "epochs": args.epochs, "seeds": args.seeds}
    if real_set is not None:
        real_rows = summarize(evaluate_checkpoints(saved, real_set, threads=cfg.threads))
        print(f"\nreal recordings ({len(real_set.y)} clips, {len(words)}-way predictions)")
        print("\n".join(_fmt(real_rows)))
        result_rows["real"] = real_rows
    return result_rows


def add_eval_arguments(p: argparse.ArgumentParser) -> None:
    """The options of ``python -m utils.evaluate words``.

    Notebook: notebooks/06_complex_networks.ipynb
    """
    p.add_argument("checkpoints", nargs="+", help="word classifier checkpoints (.pt)")
    p.add_argument("data_dir", help="Speech Commands-layout folder")
    p.add_argument("--split", choices=["train", "validation", "testing"], default=None,
                   help="only the clips of this split (default: every clip)")
    p.add_argument("--words", nargs="+", default=None,
                   help="word folders to read (default: those among the models' classes)")
    p.add_argument("--threads", type=int, default=None, help="torch intra-op threads")
    p.add_argument("--json", action="store_true", help="end with one JSON line")


def evaluate_command(a: argparse.Namespace) -> dict[str, Any]:
    """Run ``python -m utils.evaluate words``: accuracy of each checkpoint, mean ± std.

    Notebook: notebooks/06_complex_networks.ipynb

    Returns:
        ``{"accuracy" (mean over checkpoints), "n_clips", "n_failed", "summary", "models"}``.
    """
    missing = [c for c in a.checkpoints if not Path(c).is_file()]
    if missing:
        raise OptionError(missing[0], "checkpoint file not found")
    if not Path(a.data_dir).is_dir():
        raise OptionError(a.data_dir, "no such folder")
    if a.threads is not None and a.threads < 1:
        raise OptionError("--threads", f"must be at least 1, got {a.threads}")
    classes = list(load_model(a.checkpoints[0])[1]["config"]["words"])
    folders = [d.name for d in sorted(Path(a.data_dir).iterdir()) if d.is_dir()]
    words = a.words or [w for w in folders if w in classes]
    if not words:
        raise OptionError(a.data_dir, f"no folder of the models' words {classes}")
    try:
        data = load_words(a.data_dir, a.split, words=words, classes=classes)
    except ValueError as exc:
        raise OptionError(a.data_dir, str(exc)) from None
    records = evaluate_checkpoints(a.checkpoints, data, threads=a.threads)
    rows = summarize(records)
    print(f"data   {a.data_dir}" + (f" [{a.split}]" if a.split else "")
          + f": {len(data.y)} clips, {len(data.failed)} unreadable")
    for path, reason in data.failed:
        print(f"  skipped {path}: {reason}")
    print("arch   kind       params seeds  accuracy")
    print("\n".join(_fmt(rows)))
    return {"accuracy": float(np.mean([r["accuracy"] for r in records])),
            "n_clips": len(data.y), "n_failed": len(data.failed), "summary": rows,
            "models": [{k: v for k, v in r.items() if k != "confusion"} for r in records]}
