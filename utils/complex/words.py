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
  8 kHz, but 4 / 7 % against 21 / 41 % on the real recordings of ``default_real_dir()``;
  presumably the synthetic voices' top octave is the least like a microphone's.)
  The magnitude is compressed with a power law that **keeps the phase** (:func:`compress`)::

      F = |X|^c · e^{i∠X},   c = 0.3

  which maps the ~60 dB dynamic range of speech to ~18 "dB" (like a log) but, unlike a log, is
  exactly invertible, zero at zero, and acts on the modulus only. A complex model gets ``F``; its
  real twin gets the compressed magnitude ``|F| = |X|^c`` (:func:`magnitude_features`), so the
  two differ exactly by the phase.
* **Models** (:func:`build_model`): :class:`~utils.complex.models.ComplexLeNet` and a small
  :class:`~utils.complex.models.ComplexVGG`, and their real twins with the parameter count
  matched (:func:`~utils.complex.models.matched_width_scale`).
* **Training** (:func:`train`): AdamW, linear warm-up + cosine learning rate, random time
  shifts by whole STFT frames (an exact time shift of the signal), seeded; the weights of the best
  validation epoch are kept.
* **Evaluation** (:func:`evaluate`): accuracy, loss and confusion matrix; on a folder of other
  recordings whose words are a subset of the classes (:func:`evaluate_checkpoints`).
* **Checkpoints** (:func:`save_model` / :func:`load_model`): ``kind = "spoken-words"`` dicts with
  the config, the history and the weights stored as float16 (half the size; the accuracies in
  ``data/pretrained/README.md`` are measured on the stored weights).

Command line (trains, saves ``OUT/words_<arch>_<kind>_s<seed>.pt``, prints the test table)::

    python -m utils.complex.words --arch lenet vgg --kind complex real --seeds 0 1 2 \\
        --epochs 10 --out data/pretrained/

Notebook: notebooks/06_complex_networks.ipynb
"""

from __future__ import annotations

import argparse
import contextlib
import copy
import json
import math
import sys
import time
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
from utils.checkpoint import FORMAT_VERSION, CheckpointError, load_checkpoint, save_atomic
from utils.complex.models import (
    ComplexLeNet,
    ComplexVGG,
    RealLeNet,
    RealVGG,
    count_parameters,
    matched_width_scale,
)
from utils.data import SpeechCommands

__all__ = [
    "KIND",
    "ARCHS",
    "KINDS",
    "DEFAULT_LR",
    "WordFeatures",
    "WORD_FEATURES",
    "WordData",
    "prepare_clip",
    "compress",
    "decompress",
    "complex_features",
    "magnitude_features",
    "model_input",
    "load_words",
    "build_model",
    "train",
    "evaluate",
    "save_model",
    "load_model",
    "evaluate_checkpoints",
    "summarize",
    "checkpoint_name",
    "default_real_dir",
    "parse_args",
    "main",
]

#: Checkpoint kind of the spoken-word classifiers.
KIND = "spoken-words"
#: Architectures of the command line.
ARCHS = ("lenet", "vgg")
#: Default peak learning rate per architecture (LeNet has no batch norm and learns slower).
DEFAULT_LR = {"lenet": 1e-2, "vgg": 5e-3}
#: ``"complex"``: complex model on the compressed complex STFT; ``"real"``: its real twin on the
#: compressed magnitude.
KINDS = ("complex", "real")

_ROOT = Path(__file__).resolve().parents[2]


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
    """The input a model of ``kind`` gets from complex features: themselves, or their modulus.

    Notebook: notebooks/06_complex_networks.ipynb

    Args:
        features: Complex features ``[B, 1, F, T]`` (:func:`complex_features`).
        kind: ``"complex"`` or ``"real"``.

    Returns:
        ``features`` for ``"complex"``, ``features.abs()`` (float32) for ``"real"``.
    """
    if kind not in KINDS:
        raise ValueError(f"kind must be one of {KINDS}, got {kind!r}")
    if not features.is_complex():
        raise TypeError(f"expected complex features, got {features.dtype}")
    return features if kind == "complex" else features.abs()


class WordData(NamedTuple):
    """Features and labels of one split, held in memory.

    Notebook: notebooks/06_complex_networks.ipynb

    Attributes:
        x: Complex features ``[N, 1, F, T]`` (complex64).
        y: Label indices ``[N]`` (int64) into ``words``.
        words: Class names.
        files: Source file of every item.
    """

    x: Tensor
    y: Tensor
    words: list[str]
    files: list[Path]


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
    return WordData(x, y, names, list(ds.files))


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
    """A word classifier: complex LeNet / VGG on complex features, or its real twin on |F|.

    The real twin has one real input channel (the compressed magnitude) and every other width
    multiplied by the ``width_scale`` that matches its parameter count to the complex model's
    (searched when ``None``; store it to rebuild the same model). The complex model is built
    on the ``meta`` device for that search, so the random state is not touched.

    Notebook: notebooks/06_complex_networks.ipynb

    Args:
        arch: ``"lenet"`` or ``"vgg"``.
        kind: ``"complex"`` or ``"real"``.
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
    if width_scale is None:
        with torch.device("meta"):
            template = _complex_template(arch, num_classes, width, vgg, dropout)
        width_scale = matched_width_scale(template, in_channels=1)
    if arch == "lenet":
        model = RealLeNet(1, num_classes, width, width_scale=width_scale)
    else:
        model = RealVGG(vgg, 1, num_classes, width, batch_norm=True, dropout=dropout,
                        width_scale=width_scale)
    model.width_scale = width_scale
    return model


# --------------------------------------------------------------------------------------------
# Training and evaluation
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


def _shift_frames(x: Tensor, max_shift: int, gen: torch.Generator) -> Tensor:
    """Roll every item by its own random number of frames in [-max_shift, max_shift].

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
    model.eval()
    return torch.cat([model(x[i : i + batch_size]) for i in range(0, len(x), batch_size)])


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


def train(
    model: nn.Module,
    x_train: Tensor,
    y_train: Tensor,
    x_val: Tensor | None = None,
    y_val: Tensor | None = None,
    *,
    epochs: int = 10,
    batch_size: int = 32,
    lr: float = 5e-3,
    weight_decay: float = 1e-2,
    warmup: float = 0.05,
    max_shift: int = 6,
    grad_clip: float = 5.0,
    seed: int = 0,
    threads: int | None = 1,
    progress: bool = True,
) -> dict[str, Any]:
    """Train a classifier with AdamW and keep the weights of the best validation epoch.

    Linear warm-up over the first ``warmup`` fraction of the steps, then a cosine decay to 0.
    Each batch is shifted in time by whole frames (:func:`_shift_frames`). Batches and shifts
    come from a generator seeded with ``seed`` (initialise the model under the same seed for a
    fully reproducible run). Best = highest validation accuracy, ties broken by the lower
    validation loss; without validation data the last epoch is kept.

    ``threads=1`` by default: these small convolutions run as fast on one thread, and a second
    thread stalls when the machine is busy. The previous setting is restored on return.

    Notebook: notebooks/06_complex_networks.ipynb

    Args:
        model: The classifier; trained in place, ends with the best weights, in eval mode.
        x_train: Inputs ``[N, ...]`` (complex features or magnitudes, see :func:`model_input`).
        y_train: Labels ``[N]``.
        x_val: Validation inputs (optional).
        y_val: Validation labels.
        epochs: Passes over the training set.
        batch_size: Batch size.
        lr: Peak learning rate.
        weight_decay: AdamW weight decay.
        warmup: Fraction of the steps used for the linear warm-up.
        max_shift: Largest random time shift in frames (0 disables it).
        grad_clip: Clip the gradient norm to this value (``0`` disables it).
        seed: Seed of the batch order and shifts.
        threads: torch intra-op threads during training (``None``: unchanged).
        progress: Show a ``tqdm`` bar over the epochs.

    Returns:
        The history: ``step_loss`` (per step), ``train_loss``, ``train_accuracy``, ``val_loss``,
        ``val_accuracy`` and ``lr`` (per epoch), ``best_epoch`` (1-based; 0 = the initial
        weights), ``best_val_accuracy``, ``seconds``, ``steps``.
    """
    from tqdm.auto import tqdm

    if epochs < 1:
        raise ValueError(f"epochs must be >= 1, got {epochs}")
    if len(x_train) != len(y_train) or len(x_train) == 0:
        raise ValueError("x_train and y_train must be non-empty and of equal length")
    has_val = x_val is not None and y_val is not None
    gen = torch.Generator().manual_seed(seed)
    steps_per_epoch = math.ceil(len(x_train) / batch_size)
    total = epochs * steps_per_epoch
    n_warm = max(1, int(round(warmup * total)))

    def lr_factor(step: int) -> float:
        if step < n_warm:
            return (step + 1) / n_warm
        return 0.5 * (1.0 + math.cos(math.pi * (step - n_warm) / max(1, total - n_warm)))

    opt = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=weight_decay)
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lr_factor)
    hist: dict[str, Any] = {k: [] for k in ("step_loss", "train_loss", "train_accuracy",
                                            "val_loss", "val_accuracy", "lr")}
    best_key = (-1.0, 0.0)
    best_state = copy.deepcopy(model.state_dict())
    best_epoch = 0
    t0 = time.perf_counter()
    with _threads(threads):
        if has_val:  # the initial weights are a candidate too (the baseline of "best")
            r = evaluate(model, x_val, y_val)
            best_key = (r["accuracy"], -r["loss"])
        bar = tqdm(range(1, epochs + 1), desc="epochs", disable=not progress, leave=False)
        for epoch in bar:
            model.train()
            order = torch.randperm(len(x_train), generator=gen)
            losses, correct = [], 0
            for i in range(0, len(order), batch_size):
                idx = order[i : i + batch_size]
                xb = _shift_frames(x_train[idx], max_shift, gen)
                logits = model(xb)
                loss = F.cross_entropy(logits, y_train[idx])
                opt.zero_grad(set_to_none=True)
                loss.backward()
                if grad_clip:
                    nn.utils.clip_grad_norm_(model.parameters(), grad_clip)
                opt.step()
                sched.step()
                losses.append(loss.item())
                correct += int((logits.argmax(1) == y_train[idx]).sum())
            hist["step_loss"].extend(losses)
            hist["train_loss"].append(float(np.mean(losses)))
            hist["train_accuracy"].append(correct / len(x_train))
            hist["lr"].append(float(opt.param_groups[0]["lr"]))
            post = {"loss": f"{hist['train_loss'][-1]:.3f}"}
            if has_val:
                r = evaluate(model, x_val, y_val)
                hist["val_loss"].append(r["loss"])
                hist["val_accuracy"].append(r["accuracy"])
                post["val_acc"] = f"{r['accuracy']:.3f}"
                key = (r["accuracy"], -r["loss"])
                if key > best_key:
                    best_key, best_epoch = key, epoch
                    best_state = copy.deepcopy(model.state_dict())
            bar.set_postfix(post)
        if not has_val:
            best_epoch, best_state = epochs, copy.deepcopy(model.state_dict())
    model.load_state_dict(best_state)
    model.eval()
    hist.update(best_epoch=best_epoch, best_val_accuracy=best_key[0] if has_val else float("nan"),
                seconds=time.perf_counter() - t0, steps=total)
    return hist


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


def save_model(model: nn.Module, config: dict[str, Any], path: str | Path,
               history: dict[str, Any] | None = None) -> Path:
    """Save a word classifier atomically as a ``kind = "spoken-words"`` checkpoint.

    The weights are stored as float16 (complex ones as float16 (Re, Im) pairs): half the size,
    and the accuracy of the stored model is what :func:`load_model` gives back.

    Notebook: notebooks/06_complex_networks.ipynb

    Args:
        model: The trained model.
        config: Everything :func:`build_model` needs (``arch``, ``kind``, ``num_classes``,
            ``width``, ``vgg``, ``dropout``, ``width_scale``), plus ``words`` and any training
            settings worth keeping (JSON-like values only).
        path: Destination ``.pt`` file.
        history: Training history (:func:`train`), lists of floats.

    Returns:
        The path written.
    """
    packed, complex_keys = _pack(model.state_dict())
    hist = {k: v for k, v in (history or {}).items() if isinstance(v, (int, float, list))}
    ckpt = {
        "kind": KIND,
        "format_version": FORMAT_VERSION,
        "config": dict(config),
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
        ``(model, checkpoint)``; ``checkpoint["config"]`` has ``kind``, ``words``, ``features``.

    Raises:
        CheckpointError: Missing or broken file, or a checkpoint of another kind (e.g. a
            ``"mel-vqvae"``), with the reason.
    """
    ckpt = load_checkpoint(path, KIND)
    cfg = ckpt["config"]
    try:
        model = build_model(cfg["arch"], cfg["kind"], cfg["num_classes"], cfg["width"],
                            vgg=cfg.get("vgg", "vgg11"), dropout=cfg.get("dropout", 0.25),
                            width_scale=cfg.get("width_scale"))
        model.load_state_dict(_unpack(ckpt["model"], ckpt.get("complex_keys", [])))
    except (KeyError, ValueError, RuntimeError, TypeError) as exc:
        raise CheckpointError(path, f"config and weights do not build a model ({exc})") from None
    model.eval()
    return model, ckpt


def checkpoint_name(arch: str, kind: str, seed: int) -> str:
    """File name of a shipped checkpoint: ``words_<arch>_<kind>_s<seed>.pt``.

    Notebook: notebooks/06_complex_networks.ipynb
    """
    return f"words_{arch}_{kind}_s{seed}.pt"


def default_real_dir() -> Path | None:
    """``../shared/speech/one_speaker_words`` next to the repository, if present (else ``None``).

    Notebook: notebooks/06_complex_networks.ipynb
    """
    d = _ROOT.parent / "shared" / "speech" / "one_speaker_words"
    return d if d.is_dir() else None


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
# Command line
# --------------------------------------------------------------------------------------------


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """Arguments of ``python -m utils.complex.words``.

    Notebook: notebooks/06_complex_networks.ipynb
    """
    p = argparse.ArgumentParser(
        prog="python -m utils.complex.words",
        description="Train spoken-word classifiers (complex models and their real twins) on "
                    "the compressed complex STFT, save checkpoints, print the test accuracy.")
    p.add_argument("--arch", nargs="+", choices=ARCHS, default=["lenet"])
    p.add_argument("--kind", nargs="+", choices=KINDS, default=list(KINDS))
    p.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2])
    p.add_argument("--epochs", type=int, default=10)
    p.add_argument("--out", required=True, help="folder of the checkpoints")
    p.add_argument("--data", default=str(_ROOT / "data" / "speech_words"),
                   help="Speech Commands-layout folder with train/validation/testing lists")
    p.add_argument("--lenet-width", type=float, default=0.5, help="ComplexLeNet width")
    p.add_argument("--vgg-width", type=float, default=4, help="ComplexVGG first-block width")
    p.add_argument("--vgg", default="vgg11", help="VGG configuration")
    p.add_argument("--dropout", type=float, default=0.25, help="VGG classifier dropout")
    p.add_argument("--batch-size", type=int, default=32)
    p.add_argument("--lr", type=float, default=None,
                   help=f"peak learning rate (default per architecture: {DEFAULT_LR})")
    p.add_argument("--weight-decay", type=float, default=1e-2)
    p.add_argument("--max-shift", type=int, default=6, help="random time shift, frames")
    p.add_argument("--threads", type=int, default=1, help="torch intra-op threads")
    p.add_argument("--real-dir", default=None,
                   help="folder of real recordings to evaluate too (default: "
                        "../shared/speech/one_speaker_words if present; 'none' to skip)")
    p.add_argument("--no-progress", action="store_true")
    return p.parse_args(argv)


def _fmt(rows: list[dict[str, Any]]) -> list[str]:
    return [f"{r['arch']:6s} {r['kind']:8s} {r['params']:8d} {r['seeds']:5d} "
            f"{100 * r['mean']:6.1f} ± {100 * r['std']:4.1f} %" for r in rows]


def main(argv: list[str] | None = None) -> int:
    """Train, save and evaluate; prints a table and a final JSON line.

    Notebook: notebooks/06_complex_networks.ipynb
    """
    args = parse_args(argv)
    out = Path(args.out)
    cfg = WORD_FEATURES
    t_load = time.perf_counter()
    train_set = load_words(args.data, "train", cfg=cfg)
    words = train_set.words
    val_set = load_words(args.data, "validation", classes=words, cfg=cfg)
    test_set = load_words(args.data, "testing", classes=words, cfg=cfg)
    real_dir = (default_real_dir() if args.real_dir is None
                else None if args.real_dir.lower() == "none" else Path(args.real_dir))
    real_set = None
    if real_dir is not None:
        shared = [d.name for d in sorted(Path(real_dir).iterdir())
                  if d.is_dir() and d.name in words]
        if shared:
            real_set = load_words(real_dir, None, words=shared, classes=words, cfg=cfg)
    print(f"data: {len(train_set.y)} train / {len(val_set.y)} validation / {len(test_set.y)} "
          f"test clips, {len(words)} words; real: "
          f"{len(real_set.y) if real_set is not None else 0} clips "
          f"({time.perf_counter() - t_load:.1f} s)", flush=True)

    saved: list[Path] = []
    for arch in args.arch:
        width = args.lenet_width if arch == "lenet" else args.vgg_width
        for kind in args.kind:
            for seed in args.seeds:
                lr = args.lr if args.lr is not None else DEFAULT_LR[arch]
                torch.manual_seed(seed)
                model = build_model(arch, kind, len(words), width, vgg=args.vgg,
                                    dropout=args.dropout)
                hist = train(model, model_input(train_set.x, kind), train_set.y,
                             model_input(val_set.x, kind), val_set.y, epochs=args.epochs,
                             batch_size=args.batch_size, lr=lr,
                             weight_decay=args.weight_decay, max_shift=args.max_shift,
                             seed=seed, threads=args.threads, progress=not args.no_progress)
                config = {"arch": arch, "kind": kind, "num_classes": len(words),
                          "width": width, "vgg": args.vgg, "dropout": args.dropout,
                          "width_scale": getattr(model, "width_scale", None),
                          "words": list(words), "features": asdict(cfg), "seed": seed,
                          "epochs": args.epochs, "batch_size": args.batch_size, "lr": lr,
                          "weight_decay": args.weight_decay, "max_shift": args.max_shift,
                          "data": Path(args.data).name}
                path = save_model(model, config, out / checkpoint_name(arch, kind, seed), hist)
                saved.append(path)
                print(f"{path.name}: {count_parameters(model)} params, best epoch "
                      f"{hist['best_epoch']}/{args.epochs}, val {hist['best_val_accuracy']:.3f}, "
                      f"{hist['seconds']:.1f} s", flush=True)

    # evaluate the checkpoints as stored (float16 weights), not the in-memory models
    test = evaluate_checkpoints(saved, test_set, threads=args.threads)
    rows = summarize(test)
    print("\ntest split (mean ± std over seeds)\narch   kind       params seeds  accuracy")
    print("\n".join(_fmt(rows)))
    result: dict[str, Any] = {"test": rows, "epochs": args.epochs, "seeds": args.seeds}
    if real_set is not None:
        real_rows = summarize(evaluate_checkpoints(saved, real_set, threads=args.threads))
        print(f"\nreal recordings ({len(real_set.y)} clips of "
              f"{sorted({real_set.words[int(i)] for i in real_set.y})}, 8-way predictions)")
        print("\n".join(_fmt(real_rows)))
        result["real"] = real_rows
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
