"""Checkpoints: atomic saves, safe loading (``weights_only=True``), clear refusals.

A checkpoint is a plain dict of tensors and Python primitives::

    {"kind": "mel-vqvae", "format_version": 1, "config": {...}, "features": {...},
     "model": state_dict, ...training state (optimizer, scheduler, rng, step)...}

so it loads with ``torch.load(..., weights_only=True)`` (no pickled code runs). A file that is
not a checkpoint, is truncated, belongs to another model kind or to a newer format raises
:class:`CheckpointError` naming the file and the reason.

Notebook: notebooks/02_vq_vae.ipynb
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import Any

import torch

__all__ = ["FORMAT_VERSION", "CheckpointError", "save_atomic", "load_checkpoint"]

#: Version of the checkpoint layout written by this code.
FORMAT_VERSION = 1


class CheckpointError(Exception):
    """A checkpoint that cannot be used, with the file and the reason.

    Notebook: notebooks/02_vq_vae.ipynb
    """

    def __init__(self, path: str | os.PathLike, reason: str) -> None:
        self.path = str(path)
        self.reason = reason
        super().__init__(f"{self.path}: {reason}")


def save_atomic(obj: dict[str, Any], path: str | os.PathLike) -> Path:
    """Save with ``torch.save`` to a temporary file in the same folder, then rename.

    A crash or a full disk during the save leaves the previous checkpoint intact.

    Notebook: notebooks/02_vq_vae.ipynb

    Args:
        obj: The checkpoint dict.
        path: Destination file.

    Returns:
        The destination path.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            torch.save(obj, f)
            f.flush()
            os.fsync(f.fileno())
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o666 & ~umask)  # mkstemp creates 0600; give the usual file mode
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def load_checkpoint(
    path: str | os.PathLike, kind: str | None = None, *, map_location: str = "cpu"
) -> dict[str, Any]:
    """Load a checkpoint safely and check what it is.

    Notebook: notebooks/02_vq_vae.ipynb

    Args:
        path: Checkpoint file.
        kind: Expected ``"kind"`` (e.g. ``"mel-vqvae"``); ``None`` accepts any kind.
        map_location: Device for the tensors.

    Returns:
        The checkpoint dict.

    Raises:
        CheckpointError: Missing, unreadable, not a checkpoint of ours, another kind, or a
            newer format version.
    """
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(path, "file not found")
    try:
        ckpt = torch.load(path, map_location=map_location, weights_only=True)
    except Exception as exc:  # truncated zip, pickle with code, garbage bytes, ...
        reason = f"not a loadable checkpoint ({type(exc).__name__}: {exc})"
        raise CheckpointError(path, reason) from None
    if not isinstance(ckpt, dict) or "kind" not in ckpt or "model" not in ckpt:
        raise CheckpointError(path, "not a checkpoint of this project (no 'kind'/'model' keys)")
    version = ckpt.get("format_version")
    if not isinstance(version, int) or version > FORMAT_VERSION:
        raise CheckpointError(
            path, f"checkpoint format {version!r} is newer than this code ({FORMAT_VERSION})"
        )
    if kind is not None and ckpt["kind"] != kind:
        raise CheckpointError(path, f"is a {ckpt['kind']!r} checkpoint, expected {kind!r}")
    return ckpt
