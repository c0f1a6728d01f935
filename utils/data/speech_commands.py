"""The ``SpeechCommands`` dataset: the clips of a Speech Commands-layout folder as
``(feature, label)`` items, every file checked once; and :func:`collate` for clips of any length.

A file that cannot be loaded (corrupt, empty, NaN samples, ...) never crashes a run: the
dataset checks every file once when it is built, skips the bad ones with ONE warning
(:class:`SkippedFilesWarning`) and lists them in :meth:`SpeechCommands.report`.

Notebook: notebooks/02_vq_vae.ipynb
"""

from __future__ import annotations

import os
import warnings
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import Dataset

from utils.audio import SR, AudioError, SilenceWarning, load
from utils.data.files import AUDIO_SUFFIXES, find_clips
from utils.data.splits import _normalise_split, speaker_of, split_of

__all__ = ["SpeechCommands", "SkippedFilesWarning", "collate"]


class SkippedFilesWarning(UserWarning):
    """Warned once per dataset when some files could not be loaded and were left out.

    Notebook: notebooks/02_vq_vae.ipynb
    """


def _to_tensor(x) -> torch.Tensor:
    """Transform output (array or tensor) → tensor; float64/complex128 become 32-bit."""
    if isinstance(x, torch.Tensor):
        return x
    a = np.asarray(x)
    if a.dtype == np.float64:
        a = a.astype(np.float32)
    elif a.dtype == np.complex128:
        a = a.astype(np.complex64)
    if not a.flags.writeable or not a.flags.c_contiguous:
        a = np.array(a, order="C")
    return torch.from_numpy(a)


class SpeechCommands(Dataset):
    """Clips of a Speech Commands-layout folder as ``(feature, label_index)`` items.

    Every file is loaded once when the dataset is built (with exactly the call that
    ``__getitem__`` uses), so a corrupt, empty, header-only or NaN file is found before
    training starts: it is left out with ONE :class:`SkippedFilesWarning` for the whole
    dataset and listed in :meth:`report`; near-silent clips are kept, reported with one
    :class:`~utils.audio.SilenceWarning` and listed in :attr:`silent`. Indices, lengths and
    labels are then fixed, so a ``DataLoader`` never meets a bad file. Files are resampled to
    ``sr`` and mixed down to mono (the 2022 seed built a resampler and never applied it).

    With ``cache=True`` each item's feature is computed once and kept in memory (keyed by
    index), so later epochs skip decoding and the transform. With ``DataLoader(num_workers>0)``
    every worker holds its own cache: call :meth:`precompute` first (workers inherit the
    filled cache) or pass ``persistent_workers=True``. Cached tensors are shared between
    epochs: do not modify items in place.

    Notebook: notebooks/02_vq_vae.ipynb

    Args:
        root: The dataset folder (e.g. ``data/speech_words``).
        words: Words (folder names) to use, in label order; default: every word folder,
            alphabetically.
        split: ``"train"``, ``"validation"``, ``"testing"`` or ``None`` (all clips).
            ``"training"``/``"test"``/``"val"`` are accepted too.
        sr: Sample rate the clips are resampled to.
        length: Samples per clip (cropped or zero-padded at the end); ``None`` keeps each
            clip's own length (use :func:`collate` to batch).
        transform: Callable applied to the float32 waveform, e.g. :func:`utils.audio.log_mel`;
            its output (array or tensor) is the item's feature. ``None``: the waveform.
        cache: Keep computed features in memory.
        validation_percentage: Hash-rule share of validation speakers (no list files).
        testing_percentage: Hash-rule share of testing speakers (no list files).
        extensions: Audio file extensions to take.
        progress: Show a progress bar while checking the files (default: if > 2000 files).

    Attributes:
        words: The class names; ``labels`` index into it.
        word_to_index: ``{word: label_index}``.
        files: Path of every item.
        labels: Label index of every item.
        failed: ``(path, reason)`` of every skipped file.
        silent: Paths of the near-silent clips that were kept.
    """

    def __init__(
        self,
        root: str | os.PathLike,
        *,
        words: Sequence[str] | None = None,
        split: str | None = "train",
        sr: int = SR,
        length: int | None = SR,
        transform: Callable[[np.ndarray], object] | None = None,
        cache: bool = True,
        validation_percentage: float = 10.0,
        testing_percentage: float = 10.0,
        extensions: Sequence[str] = AUDIO_SUFFIXES,
        progress: bool | None = None,
    ) -> None:
        self.root = Path(root)
        self.split = _normalise_split(split)
        self.sr = sr
        self.length = length
        self.transform = transform
        self.cache = cache
        clips = find_clips(self.root, words, extensions=extensions)
        self.words: list[str] = (
            list(dict.fromkeys(words)) if words is not None else sorted({w for _, w in clips})
        )
        self.word_to_index: dict[str, int] = {w: i for i, w in enumerate(self.words)}
        if self.split is not None:
            clips = self._in_split(clips, validation_percentage, testing_percentage)
        self.files: list[Path] = []
        self.labels: list[int] = []
        self.failed: list[tuple[Path, str]] = []
        self.silent: list[Path] = []
        self._cache: dict[int, torch.Tensor] = {}
        self._load_every_clip(clips, progress)
        self._warn_skipped_and_silent(len(clips))

    # -- construction ----------------------------------------------------------------------

    def _in_split(
        self, clips: list[tuple[Path, str]], validation_percentage: float,
        testing_percentage: float,
    ) -> list[tuple[Path, str]]:
        """The clips of this dataset's split (:func:`~utils.data.splits.split_of`)."""
        return [
            (p, w)
            for p, w in clips
            if split_of(
                p,
                self.root,
                validation_percentage=validation_percentage,
                testing_percentage=testing_percentage,
            )
            == self.split
        ]

    def _load(self, path: Path) -> np.ndarray:
        return load(path, self.sr, length=self.length)

    def _load_every_clip(self, clips: list[tuple[Path, str]], progress: bool | None) -> None:
        """Load every clip once; keep the good ones, record the bad and the silent ones.

        The silence warnings of single clips are collected into :attr:`silent` (one warning for
        the dataset follows); any other warning is passed on once.
        """
        from tqdm.auto import tqdm

        show = len(clips) > 2000 if progress is None else progress
        other: dict[tuple, warnings.WarningMessage] = {}
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            for path, word in tqdm(clips, desc="checking clips", disable=not show, leave=False):
                try:
                    self._load(path)
                except AudioError as exc:
                    self.failed.append((path, exc.reason))
                    continue
                except Exception as exc:  # a bad file must never stop the run
                    self.failed.append((path, f"{type(exc).__name__}: {exc}"))
                    continue
                finally:  # collect the silence warnings instead of one warning per clip
                    for w in caught:
                        if not issubclass(w.category, SilenceWarning):
                            other.setdefault((w.category, str(w.message)), w)
                    silent = any(issubclass(w.category, SilenceWarning) for w in caught)
                    caught.clear()
                if silent:
                    self.silent.append(path)
                self.files.append(path)
                self.labels.append(self.word_to_index[word])
        for w in other.values():  # any other warning: once, through the normal filters
            warnings.warn_explicit(w.message, w.category, w.filename, w.lineno)

    def _warn_skipped_and_silent(self, n_clips: int) -> None:
        """One warning for all the skipped files, one for all the near-silent clips kept.

        Called from ``__init__`` only: ``stacklevel=3`` names the line that built the dataset.
        """
        if self.failed:
            first_path, first_reason = self.failed[0]
            warnings.warn(
                f"{self.root}: skipped {len(self.failed)} of {n_clips} file(s) that cannot "
                f"be loaded (see dataset.report()); first: {first_path}: {first_reason}",
                SkippedFilesWarning,
                stacklevel=3,
            )
        if self.silent:
            warnings.warn(
                f"{self.root}: kept {len(self.silent)} near-silent clip(s) (see "
                f"dataset.silent); first: {self.silent[0]}",
                SilenceWarning,
                stacklevel=3,
            )

    # -- access ----------------------------------------------------------------------------

    def __len__(self) -> int:
        return len(self.files)

    def audio(self, index: int) -> np.ndarray:
        """The waveform of item ``index`` (float32, resampled, mono, fixed length if set).

        Notebook: notebooks/02_vq_vae.ipynb
        """
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", SilenceWarning)  # already reported at construction
            return self._load(self.files[index])

    def __getitem__(self, index: int) -> tuple[torch.Tensor, int]:
        n = len(self.files)
        if not -n <= index < n:
            raise IndexError(f"index {index} out of range for a dataset of {n} clips")
        index %= n
        feature = self._cache.get(index) if self.cache else None
        if feature is None:
            y = self.audio(index)
            feature = _to_tensor(self.transform(y) if self.transform is not None else y)
            if self.cache:
                self._cache[index] = feature
        return feature, self.labels[index]

    def precompute(self, progress: bool = True) -> SpeechCommands:
        """Fill the feature cache now (e.g. before a ``DataLoader`` forks its workers).

        Notebook: notebooks/02_vq_vae.ipynb

        Returns:
            The dataset itself.
        """
        from tqdm.auto import tqdm

        if not self.cache:
            raise RuntimeError("precompute() needs cache=True")
        for i in tqdm(range(len(self)), desc="features", disable=not progress, leave=False):
            self[i]
        return self

    def report(self) -> list[tuple[Path, str]]:
        """The files that were skipped and why.

        Notebook: notebooks/02_vq_vae.ipynb

        Returns:
            A list of ``(path, reason)``, empty if every file loaded.
        """
        return list(self.failed)

    def word_counts(self) -> dict[str, int]:
        """Number of clips per word in this dataset (after the split and the skipped files).

        Notebook: notebooks/02_vq_vae.ipynb
        """
        counts = dict.fromkeys(self.words, 0)
        for label in self.labels:
            counts[self.words[label]] += 1
        return counts

    @property
    def speakers(self) -> list[str]:
        """Speaker id of every item (see :func:`speaker_of`).

        Notebook: notebooks/02_vq_vae.ipynb
        """
        return [speaker_of(p) for p in self.files]

    def __repr__(self) -> str:
        return (
            f"SpeechCommands({str(self.root)!r}, split={self.split!r}, {len(self)} clips, "
            f"{len(self.words)} words, {len(self.failed)} skipped)"
        )


def collate(
    batch: Sequence[tuple[torch.Tensor, int]], pad_value: float = 0.0
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Batch variable-length items: pad the last (time) axis to the longest item.

    For log-mel features pad with the log floor, not 0 (``log10(1e-5) = -5`` is silence,
    0 is a loud bin): ``functools.partial(collate, pad_value=-5.0)``.

    Notebook: notebooks/02_vq_vae.ipynb

    Args:
        batch: ``(feature, label)`` items whose features agree on every axis but the last.
        pad_value: Value written after the end of the shorter items.

    Returns:
        ``(features, labels, lengths)``: features (B, ..., T_max), labels (B,) int64 and the
        original last-axis lengths (B,) int64.
    """
    if not batch:
        raise ValueError("empty batch")
    feats = [torch.as_tensor(f) for f, _ in batch]
    head = feats[0].shape[:-1]
    for f in feats:
        if f.dim() == 0 or f.shape[:-1] != head:
            raise ValueError(
                f"features must agree on all axes but the last: {head} vs {tuple(f.shape)}"
            )
    lengths = torch.tensor([f.shape[-1] for f in feats], dtype=torch.int64)
    out = feats[0].new_full((len(feats), *head, int(lengths.max())), pad_value)
    for i, f in enumerate(feats):
        out[i, ..., : f.shape[-1]] = f
    labels = torch.tensor([int(label) for _, label in batch], dtype=torch.int64)
    return out, labels, lengths
