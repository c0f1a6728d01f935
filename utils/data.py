"""Datasets in the Speech Commands folder layout, and a safe download of the real Speech Commands.

Any folder laid out like Google Speech Commands works, the bundled ``data/speech_words`` as well
as the real dataset::

    <root>/<word>/<speaker>_nohash_<n>.wav|.flac     one clip per file, the folder is the label
    <root>/validation_list.txt                        optional: "word/file.wav" per line
    <root>/testing_list.txt                           optional (training = listed in neither)
    <root>/_background_noise_/...                     folders starting with "_" are ignored

Splits come from the two list files when the root has them; otherwise from the official
Speech Commands rule (:func:`which_set`): a hash of the speaker id, so that every clip of one
speaker lands in the same split. The 2022 seed trained on 699 clips of the *test* list only,
dropping the first one (``iloc[1:700]``) and with no validation split; here a split is a
property of the file, the same in every run.

A file that cannot be loaded (corrupt, empty, NaN samples, ...) never crashes a run: the
dataset checks every file once when it is built, skips the bad ones with ONE warning
(:class:`SkippedFilesWarning`) and lists them in :meth:`SpeechCommands.report`.

Notebook: notebooks/02_vq_vae.ipynb
"""

from __future__ import annotations

import hashlib
import http.client
import os
import shutil
import tarfile
import urllib.error
import urllib.request
import warnings
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path, PurePosixPath

import numpy as np
import torch
from torch.utils.data import Dataset

from utils.audio import SR, AudioError, SilenceWarning, load
from utils.errors import OptionError

__all__ = [
    "SpeechCommands",
    "SkippedFilesWarning",
    "DownloadError",
    "collate",
    "find_clips",
    "find_audio",
    "AUDIO_SUFFIXES",
    "speaker_of",
    "which_set",
    "split_of",
    "read_split_lists",
    "download_speech_commands",
    "default_cache_dir",
    "SPEECH_COMMANDS",
]

#: Audio file suffixes the collection reads (a Speech Commands folder, an evaluation folder).
AUDIO_SUFFIXES: tuple[str, ...] = (".wav", ".flac")

#: Names of the three splits (the values of ``split=`` and of :func:`split_of`).
SPLITS: tuple[str, ...] = ("train", "validation", "testing")
_SPLIT_ALIASES = {
    "train": "train",
    "training": "train",
    "validation": "validation",
    "valid": "validation",
    "val": "validation",
    "testing": "testing",
    "test": "testing",
}

#: Constant of the official rule: the hash is taken modulo 2**27 (about 134 M files per class).
MAX_NUM_WAVS_PER_CLASS = 2**27 - 1

_NOHASH = "_nohash_"


class SkippedFilesWarning(UserWarning):
    """Warned once per dataset when some files could not be loaded and were left out.

    Notebook: notebooks/02_vq_vae.ipynb
    """


# --------------------------------------------------------------------------------------------
# Speakers and splits
# --------------------------------------------------------------------------------------------


def speaker_of(path: str | os.PathLike) -> str:
    """The speaker id of a clip: the file name before ``_nohash_``, or the stem without it.

    Notebook: notebooks/02_vq_vae.ipynb

    Args:
        path: A clip path or file name, e.g. ``"right/0a7c2a8d_nohash_1.wav"``.

    Returns:
        The speaker id, e.g. ``"0a7c2a8d"``.
    """
    name = PurePosixPath(os.fspath(path).replace("\\", "/")).name
    if _NOHASH in name:
        return name.split(_NOHASH, 1)[0]
    return PurePosixPath(name).stem


def which_set(
    filename: str | os.PathLike,
    validation_percentage: float = 10.0,
    testing_percentage: float = 10.0,
) -> str:
    """The official Speech Commands split rule: a stable hash of the speaker id.

    As described in the dataset's README: the part of the file name before ``_nohash_`` is
    hashed with SHA-1, the hash is read as an integer, taken modulo 2**27 and scaled to a
    percentage in [0, 100]; below ``validation_percentage`` is validation, below
    ``validation_percentage + testing_percentage`` is testing, the rest is training. All clips
    of one speaker therefore share a split, and adding files never moves existing ones.
    (A name without ``_nohash_`` is hashed on its stem, so ``.wav`` and ``.flac`` agree.)

    Notebook: notebooks/02_vq_vae.ipynb

    Args:
        filename: Clip path or file name.
        validation_percentage: Share of speakers in the validation split, in percent.
        testing_percentage: Share of speakers in the testing split, in percent.

    Returns:
        ``"train"``, ``"validation"`` or ``"testing"``.
    """
    if validation_percentage < 0 or testing_percentage < 0:
        raise ValueError("percentages must be non-negative")
    if validation_percentage + testing_percentage > 100:
        raise ValueError("validation_percentage + testing_percentage must be at most 100")
    digest = hashlib.sha1(speaker_of(filename).encode("utf-8")).hexdigest()
    percentage = (int(digest, 16) % (MAX_NUM_WAVS_PER_CLASS + 1)) * (100.0 / MAX_NUM_WAVS_PER_CLASS)
    if percentage < validation_percentage:
        return "validation"
    if percentage < validation_percentage + testing_percentage:
        return "testing"
    return "train"


def _list_key(relative: str) -> str:
    """Key of a clip in the split lists: ``word/stem`` (so a FLAC copy of a WAV still matches)."""
    parts = [p for p in relative.strip().replace("\\", "/").split("/") if p not in ("", ".")]
    if len(parts) < 2:
        return ""
    return f"{parts[-2]}/{PurePosixPath(parts[-1]).stem}"


@lru_cache(maxsize=32)
def _read_lists_cached(root: str, stamp: tuple) -> dict[str, str] | None:
    lists: dict[str, str] = {}
    found = False
    for split, name in (("validation", "validation_list.txt"), ("testing", "testing_list.txt")):
        path = Path(root) / name
        if not path.is_file():
            continue
        found = True
        for line in path.read_text(encoding="utf-8").splitlines():
            key = _list_key(line)
            if key:
                lists[key] = split
    return lists if found else None


def read_split_lists(root: str | os.PathLike) -> dict[str, str] | None:
    """Read ``validation_list.txt`` / ``testing_list.txt`` of a Speech Commands folder.

    Notebook: notebooks/02_vq_vae.ipynb

    Args:
        root: The dataset folder.

    Returns:
        ``{"word/stem": "validation" | "testing"}`` for every listed clip (the extension is
        dropped, so the lists of the WAV dataset also match a FLAC copy), or ``None`` when the
        folder has neither list (then :func:`which_set` decides).
    """
    root = Path(root).resolve()
    stamp = tuple(
        (p.stat().st_mtime_ns, p.stat().st_size) if p.is_file() else None
        for p in (root / "validation_list.txt", root / "testing_list.txt")
    )
    return _read_lists_cached(str(root), stamp)


def split_of(
    path: str | os.PathLike,
    root: str | os.PathLike | None = None,
    *,
    validation_percentage: float = 10.0,
    testing_percentage: float = 10.0,
) -> str:
    """The split of one clip: from the root's list files if it has them, else :func:`which_set`.

    Notebook: notebooks/02_vq_vae.ipynb

    Args:
        path: Clip path ``<root>/<word>/<file>``.
        root: The dataset folder (default: the grandparent of ``path``, as in the layout).
        validation_percentage: Used only by the hash rule.
        testing_percentage: Used only by the hash rule.

    Returns:
        ``"train"``, ``"validation"`` or ``"testing"``.
    """
    path = Path(path)
    lists = read_split_lists(path.parent.parent if root is None else root)
    if lists is not None:
        return lists.get(f"{path.parent.name}/{path.stem}", "train")
    return which_set(path.name, validation_percentage, testing_percentage)


def _normalise_split(split: str | None) -> str | None:
    if split is None:
        return None
    try:
        return _SPLIT_ALIASES[split.lower()]
    except (KeyError, AttributeError):
        raise ValueError(f"split must be one of {SPLITS} or None, got {split!r}") from None


def find_clips(
    root: str | os.PathLike,
    words: Iterable[str] | None = None,
    *,
    extensions: Sequence[str] = AUDIO_SUFFIXES,
) -> list[tuple[Path, str]]:
    """List the clips of a Speech Commands folder, without opening them.

    Word folders starting with ``_`` or ``.`` (``_background_noise_``) and hidden files are
    ignored. The order is deterministic: by word (the order of ``words``, or alphabetical),
    then by file name.

    Notebook: notebooks/02_vq_vae.ipynb

    Args:
        root: The dataset folder.
        words: Keep only these words (all word folders if ``None``).
        extensions: File extensions to take (case-insensitive).

    Returns:
        A list of ``(path, word)``.

    Raises:
        FileNotFoundError: If ``root`` is not a folder.
        OptionError: If it has no word folder (a ``ValueError``, naming ``--data``).
        ValueError: If a requested word is missing.
    """
    root = Path(root)
    if not root.is_dir():
        raise FileNotFoundError(
            f"{root}: no such dataset folder (the bundled set is data/speech_words; "
            "download_speech_commands() fetches the real Speech Commands)"
        )
    available = sorted(
        d.name for d in root.iterdir() if d.is_dir() and not d.name.startswith(("_", "."))
    )
    if not available:  # an OptionError (a ValueError too): the commands' --data names it
        loose = " (only loose audio files)" if find_audio(root, recursive=False,
                                                          extensions=extensions) else ""
        raise OptionError("--data", f"{root}: no word folders{loose} "
                                    "(expected <data>/<word>/*.wav)")
    if words is None:
        chosen = available
    else:
        chosen = list(dict.fromkeys(words))
        missing = [w for w in chosen if w not in available]
        if missing:
            raise ValueError(f"{root}: no folder for word(s) {missing}; available: {available}")
    return [(f, word) for word in chosen
            for f in find_audio(root / word, recursive=False, extensions=extensions)]


def find_audio(
    root: str | os.PathLike,
    split: str | None = None,
    *,
    recursive: bool = True,
    extensions: Sequence[str] = AUDIO_SUFFIXES,
) -> list[Path]:
    """Every audio file under ``root`` (sorted), optionally those of one split only.

    Hidden files and folders, and folders starting with ``_`` (``_background_noise_``), are
    skipped. A file given as ``root`` is returned as it is.

    Notebook: notebooks/02_vq_vae.ipynb

    Args:
        root: A folder, or a single file.
        split: ``None`` for all files, else ``"train"``/``"validation"``/``"testing"`` by
            :func:`split_of` (the folder's list files, or the speaker hash).
        recursive: Search sub-folders too.
        extensions: File suffixes to take (case-insensitive).

    Returns:
        Paths of the audio files.
    """
    root = Path(root)
    if root.is_file():
        return [root]
    exts = {e.lower() for e in extensions}
    files = sorted(
        p for p in (root.rglob("*") if recursive else root.iterdir())
        if p.is_file() and p.suffix.lower() in exts
        and not any(part.startswith((".", "_")) for part in p.relative_to(root).parts)
    )
    split = _normalise_split(split)
    return files if split is None else [p for p in files if split_of(p) == split]


# --------------------------------------------------------------------------------------------
# Dataset
# --------------------------------------------------------------------------------------------


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
            clips = [
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
        self.files: list[Path] = []
        self.labels: list[int] = []
        self.failed: list[tuple[Path, str]] = []
        self.silent: list[Path] = []
        self._cache: dict[int, torch.Tensor] = {}
        self._check(clips, progress)

    # -- construction ----------------------------------------------------------------------

    def _load(self, path: Path) -> np.ndarray:
        return load(path, self.sr, length=self.length)

    def _check(self, clips: list[tuple[Path, str]], progress: bool | None) -> None:
        """Load every clip once; keep the good ones, record the bad and the silent ones."""
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
        if self.failed:
            first_path, first_reason = self.failed[0]
            warnings.warn(
                f"{self.root}: skipped {len(self.failed)} of {len(clips)} file(s) that cannot "
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


# --------------------------------------------------------------------------------------------
# Download
# --------------------------------------------------------------------------------------------


class DownloadError(RuntimeError):
    """A download failed or produced a file that does not match its pinned SHA-256.

    Notebook: notebooks/02_vq_vae.ipynb
    """


@dataclass(frozen=True)
class _Archive:
    url: str
    sha256: str
    size: int | None


#: Official Speech Commands archives. The v0.02 SHA-256 and size are those pinned by
#: TensorFlow Datasets (tensorflow/datasets, tensorflow_datasets/url_checksums/
#: speech_commands.txt: 2428923189 bytes, af14739e...), and the same SHA-256 is pinned by
#: torchaudio (torchaudio/datasets/speechcommands.py, ``_CHECKSUMS``), which is also the
#: source of the v0.01 SHA-256 (its size is not pinned anywhere we found, so it is not checked).
SPEECH_COMMANDS: dict[str, _Archive] = {
    "v0.02": _Archive(
        "http://download.tensorflow.org/data/speech_commands_v0.02.tar.gz",
        "af14739ee7dc311471de98f5f9d2c9191b18aedfe957f4a6ff791c709868ff58",
        2_428_923_189,
    ),
    "v0.01": _Archive(
        "http://download.tensorflow.org/data/speech_commands_v0.01.tar.gz",
        "743935421bb51cccdb6bdd152e04c5c70274e935c82119ad7faeec31780d811d",
        None,
    ),
}

_CHUNK = 1 << 20
_MARKER = ".download_complete"


def default_cache_dir() -> Path:
    """Where downloads are kept: ``$SOUND_RECON_CACHE`` or ``~/.cache/sound-reconstruction``.

    Notebook: notebooks/02_vq_vae.ipynb
    """
    env = os.environ.get("SOUND_RECON_CACHE")
    return Path(env).expanduser() if env else Path.home() / ".cache" / "sound-reconstruction"


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(_CHUNK), b""):
            h.update(chunk)
    return h.hexdigest()


def _fetch(url: str, part: Path, size: int | None, progress: bool, timeout: float) -> None:
    """Download ``url`` into ``part``, continuing an existing partial file with HTTP Range."""
    from tqdm.auto import tqdm

    have = part.stat().st_size if part.exists() else 0
    if size is not None and have > size:  # cannot be a prefix of the right file
        part.unlink()
        have = 0
    request = urllib.request.Request(url, headers={"User-Agent": "sound-reconstruction"})
    if have:
        request.add_header("Range", f"bytes={have}-")
    try:
        response = urllib.request.urlopen(request, timeout=timeout)
    except urllib.error.HTTPError as exc:
        if exc.code == 416 and have:  # "range not satisfiable": the partial file is complete
            return  # or wrong; the checksum decides
        raise
    with response:
        status = getattr(response, "status", 200)
        content_range = response.headers.get("Content-Range", "")
        if have and status == 206 and content_range.startswith(f"bytes {have}-"):
            mode = "ab"
        elif status == 206:  # a range we did not ask for: drop the partial file, retry
            part.unlink(missing_ok=True)
            raise ConnectionError(f"unexpected Content-Range {content_range!r}")
        else:  # the server ignored the Range header (200): start again from byte 0
            have, mode = 0, "wb"
        remaining = response.headers.get("Content-Length")
        total = have + int(remaining) if remaining and remaining.isdigit() else size
        with (
            open(part, mode) as f,
            tqdm(
                total=total,
                initial=have,
                unit="B",
                unit_scale=True,
                unit_divisor=1024,
                desc=part.name.removesuffix(".part"),
                disable=not progress,
            ) as bar,
        ):
            while chunk := response.read(_CHUNK):
                f.write(chunk)
                have += len(chunk)
                bar.update(len(chunk))
    if total is not None and have < total:  # http.client returns b"" when a connection drops
        raise ConnectionError(f"connection closed after {have} of {total} bytes")


def _safe_members(tar: tarfile.TarFile, dest: Path) -> list[tarfile.TarInfo]:
    """Check every member stays inside ``dest``; refuse the whole archive otherwise."""
    base = dest.resolve()
    members = []
    for m in tar.getmembers():
        name = m.name
        target = (base / name).resolve()
        if (
            os.path.isabs(name)
            or ".." in PurePosixPath(name).parts
            or not target.is_relative_to(base)
        ):
            raise DownloadError(f"refusing to extract {name!r}: it escapes {dest}")
        if m.issym() or m.islnk():
            link = PurePosixPath(m.linkname)
            linked = (
                (base / link) if m.islnk() else (base / PurePosixPath(name).parent / link)
            ).resolve()
            if link.is_absolute() or not linked.is_relative_to(base):
                raise DownloadError(f"refusing to extract link {name!r} -> {m.linkname!r}")
        elif not (m.isfile() or m.isdir()):
            continue  # devices, FIFOs: never extracted
        members.append(m)
    return members


def _extract(archive: Path, dest: Path) -> None:
    """Extract into a temporary sibling folder, then rename it into place."""
    tmp = dest.with_name(dest.name + ".extracting")
    if tmp.exists():
        shutil.rmtree(tmp)
    tmp.mkdir(parents=True)
    try:
        with tarfile.open(archive, "r:*") as tar:
            members = _safe_members(tar, tmp)
            if hasattr(tarfile, "data_filter"):  # Python >= 3.11.4 / 3.10.12: a second guard
                tar.extractall(tmp, members=members, filter="data")
            else:  # pragma: no cover - older Pythons
                tar.extractall(tmp, members=members)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    if dest.exists():
        ours = (dest / _MARKER).is_file() or (dest.is_dir() and not any(dest.iterdir()))
        if not ours:  # never delete a folder this function did not create
            shutil.rmtree(tmp, ignore_errors=True)
            raise DownloadError(
                f"{dest} exists and is not a finished download of this function; "
                "remove it or pass another dest="
            )
        shutil.rmtree(dest)
    tmp.rename(dest)


def download_speech_commands(
    dest: str | os.PathLike | None = None,
    *,
    version: str = "v0.02",
    url: str | None = None,
    sha256: str | None = None,
    cache_dir: str | os.PathLike | None = None,
    progress: bool = True,
    retries: int = 3,
    timeout: float = 60.0,
    keep_archive: bool = True,
) -> Path:
    """Download, verify and extract Google Speech Commands (for readers online, e.g. Colab).

    The archive (2.3 GiB for v0.02) is written to ``<cache_dir>/<name>.part``; an interrupted
    download continues where it stopped (HTTP Range) on the next call or retry, and starts over
    cleanly if the server ignores Range. The finished file must match the pinned SHA-256: a
    mismatch deletes it and raises :class:`DownloadError`. The archive is then extracted into
    ``dest`` (members that would land outside ``dest`` are refused), and later calls return at
    once without touching the network.

    Notebook: notebooks/02_vq_vae.ipynb

    Args:
        dest: Folder to extract into (default ``<cache_dir>/speech_commands_<version>``).
        version: ``"v0.02"`` (35 words, 105,829 clips) or ``"v0.01"`` (30 words).
        url: Another address of the archive (a mirror); defaults to the official one.
        sha256: Expected SHA-256 of the archive; defaults to the pinned one of ``version``.
        cache_dir: Download folder (default :func:`default_cache_dir`).
        progress: Show a tqdm progress bar.
        retries: Further attempts after a dropped connection (each one resumes).
        timeout: Socket timeout in seconds.
        keep_archive: Keep the verified archive in ``cache_dir`` after extracting (so a
            deleted ``dest`` is restored without downloading); ``False`` saves its disk space.

    Returns:
        The dataset folder (``<word>/*.wav``, ``validation_list.txt``, ``testing_list.txt``).

    Raises:
        DownloadError: On a checksum mismatch, an unsafe archive, or when every attempt fails.
    """
    if version not in SPEECH_COMMANDS:
        raise ValueError(f"version must be one of {sorted(SPEECH_COMMANDS)}, got {version!r}")
    pinned = SPEECH_COMMANDS[version]
    official = url is None and sha256 is None
    url = url or pinned.url
    expected = (sha256 or pinned.sha256).lower()
    size = pinned.size if official else None
    cache = Path(cache_dir).expanduser() if cache_dir is not None else default_cache_dir()
    dest = Path(dest).expanduser() if dest is not None else cache / f"speech_commands_{version}"
    marker = dest / _MARKER
    if marker.is_file() and marker.read_text().strip() == expected:
        return dest

    cache.mkdir(parents=True, exist_ok=True)
    name = PurePosixPath(urllib.request.urlparse(url).path).name or f"speech_commands_{version}"
    archive = cache / name
    part = cache / (name + ".part")
    if archive.is_file() and _sha256(archive) != expected:
        archive.unlink()  # stale or damaged: fetch again
    if not archive.is_file():
        for attempt in range(retries + 1):
            try:
                _fetch(url, part, size, progress, timeout)
                break
            except (OSError, http.client.HTTPException) as exc:  # URLError is an OSError
                if isinstance(exc, urllib.error.HTTPError) and exc.code < 500:
                    raise DownloadError(f"{url}: HTTP {exc.code} {exc.reason}") from exc
                if attempt == retries:
                    raise DownloadError(
                        f"{url}: download failed after {retries + 1} attempt(s): {exc}; "
                        f"{part} is kept, call again to resume"
                    ) from exc
        got = _sha256(part)
        if got != expected:
            n = part.stat().st_size
            part.unlink()
            raise DownloadError(
                f"{url}: SHA-256 mismatch, expected {expected}, got {got} ({n} bytes"
                + (f", expected {size}" if size else "")
                + f"); the bad file {part} was deleted. Try again; if it persists the server "
                "or a proxy serves another file."
            )
        os.replace(part, archive)
    _extract(archive, dest)
    marker.write_text(expected + "\n")
    if not keep_archive:
        archive.unlink()
    return dest
