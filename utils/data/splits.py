"""Which split a clip belongs to: its speaker, the folder's list files, or the official hash rule.

The split of a clip is a property of the file, the same in every run: the root's
``validation_list.txt`` / ``testing_list.txt`` decide when the folder has them (:func:`split_of`),
otherwise the official Speech Commands rule (:func:`which_set`), a hash of the speaker id, so
that every clip of one speaker lands in the same split.

Notebook: notebooks/02_vq_vae.ipynb
"""

from __future__ import annotations

import hashlib
import os
from functools import lru_cache
from pathlib import Path, PurePosixPath

__all__ = ["SPLITS", "MAX_NUM_WAVS_PER_CLASS", "speaker_of", "which_set", "read_split_lists",
           "split_of"]

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

