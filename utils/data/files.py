"""Finding audio: the clips of a Speech Commands-layout folder, and every audio file under a folder.

Nothing is opened here: :func:`find_clips` lists ``(path, word)`` pairs of the word folders,
:func:`find_audio` every file with an audio suffix (optionally those of one split). Folders
starting with ``_`` (``_background_noise_``) or ``.`` and hidden files are skipped.

Notebook: notebooks/02_vq_vae.ipynb
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Sequence
from pathlib import Path

from utils.data.splits import _normalise_split, split_of
from utils.errors import OptionError

__all__ = ["AUDIO_SUFFIXES", "find_clips", "find_audio"]

#: Audio file suffixes the collection reads (a Speech Commands folder, an evaluation folder).
AUDIO_SUFFIXES: tuple[str, ...] = (".wav", ".flac")


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
        OptionError: If it has no word folder, or a requested word has none (a
            ``ValueError``, naming ``--data``).
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
            raise OptionError("--data", f"{root}: no folder for word(s) {', '.join(missing)}; "
                                        f"it has {', '.join(available)}")
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
