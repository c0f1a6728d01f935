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
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch

from utils.errors import OptionError, ProjectError

__all__ = [
    "FORMAT_VERSION",
    "CheckpointError",
    "save_atomic",
    "save_atomic_bytes",
    "load_checkpoint",
    "writable_folder",
    "remove_stale_temps",
    "model_checkpoint",
    "rebuild_model",
]

#: Version of the checkpoint layout written by this code.
FORMAT_VERSION = 1


class CheckpointError(ProjectError):
    """A checkpoint that cannot be used, with the file and the reason.

    Notebook: notebooks/02_vq_vae.ipynb
    """


_TEMP_GLOB = ".*.tmp"


def writable_folder(path: str | os.PathLike, option: str = "--out") -> Path:
    """Create ``path`` if needed and prove that a file can be written there, before any work.

    A probe file is written, flushed to disk and removed, so a read-only folder, a missing
    permission or a full disk is reported at once, naming the folder, instead of after the
    data has loaded (or as an error about a hidden temporary file).

    Notebook: notebooks/02_vq_vae.ipynb

    Args:
        path: The output folder.
        option: The option that named it (for the message when ``path`` is not a folder).

    Returns:
        The folder.

    Raises:
        ProjectError: The folder cannot be created or written.
    """
    path = Path(path)
    if path.exists() and not path.is_dir():
        raise OptionError(option, f"{path} exists and is not a folder")
    try:
        path.mkdir(parents=True, exist_ok=True)
        fd, probe = tempfile.mkstemp(prefix=".write-probe.", suffix=".tmp", dir=path)
        try:
            with os.fdopen(fd, "wb") as f:
                f.write(b"\0" * 4096)
                f.flush()
                os.fsync(f.fileno())
        finally:
            Path(probe).unlink(missing_ok=True)
    except OSError as exc:
        raise ProjectError(path, f"cannot write in this folder ({exc.strerror or exc})") from None
    return path


def remove_stale_temps(folder: str | os.PathLike) -> list[Path]:
    """Delete temporary files left in ``folder`` by a save that was killed half-way.

    :func:`save_atomic` writes ``.<name>.<random>.tmp`` next to the destination and renames it;
    a process killed during the write leaves that file behind. Call this at the start of a run
    (one process only).

    Notebook: notebooks/02_vq_vae.ipynb

    Returns:
        The files removed.
    """
    removed = []
    for tmp in Path(folder).glob(_TEMP_GLOB):
        if tmp.is_file():
            tmp.unlink(missing_ok=True)
            removed.append(tmp)
    return removed


def _write_atomic(path: str | os.PathLike, write: Callable[[Any], None]) -> Path:
    """Write through ``write(file)`` into a temporary file in the same folder, then rename."""
    path = Path(path)
    tmp = None
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
        with os.fdopen(fd, "wb") as f:
            write(f)
            f.flush()
            os.fsync(f.fileno())
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o666 & ~umask)  # mkstemp creates 0600; give the usual file mode
        os.replace(tmp, path)
    except (OSError, RuntimeError) as exc:  # torch's zip writer reports a full disk as such
        if tmp is not None:
            Path(tmp).unlink(missing_ok=True)
        reason = getattr(exc, "strerror", None) or str(exc)
        raise CheckpointError(path, f"cannot be written ({reason})") from None
    except BaseException:
        if tmp is not None:
            Path(tmp).unlink(missing_ok=True)
        raise
    return path


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
    return _write_atomic(path, lambda f: torch.save(obj, f))


def save_atomic_bytes(data: bytes, path: str | os.PathLike) -> Path:
    """Write bytes (a page, a table) atomically, as :func:`save_atomic` writes checkpoints.

    Notebook: notebooks/02_vq_vae.ipynb

    Args:
        data: The file's content.
        path: Destination file.

    Returns:
        The destination path.

    Raises:
        CheckpointError: The file cannot be written (naming it and the reason).
    """
    return _write_atomic(path, lambda f: f.write(data))


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
        CheckpointError: Missing, unreadable, not a checkpoint of ours (no kind, model or
            format version), another kind, or a newer format version.
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
    if not isinstance(version, int):
        raise CheckpointError(path, "has no format_version: not written by this project's code")
    if version > FORMAT_VERSION:
        raise CheckpointError(
            path, f"checkpoint format {version!r} is newer than this code ({FORMAT_VERSION})"
        )
    if kind is not None and ckpt["kind"] != kind:
        raise CheckpointError(path, f"is a {ckpt['kind']!r} checkpoint, expected {kind!r}")
    return ckpt


def model_checkpoint(model: torch.nn.Module, kind: str, **extra: Any) -> dict[str, Any]:
    """The checkpoint dict of a model with a ``config`` dataclass (and maybe ``features``).

    ``kind``, ``format_version``, ``config`` (the dataclass as a dict), ``features`` when the
    model has them, the weights under ``model``, plus ``extra``.

    Notebook: notebooks/02_vq_vae.ipynb
    """
    from dataclasses import asdict

    out: dict[str, Any] = {"kind": kind, "format_version": FORMAT_VERSION,
                           "config": asdict(model.config)}
    if hasattr(model, "features"):
        out["features"] = asdict(model.features)
    return {**out, "model": model.state_dict(), **extra}


def rebuild_model(cls: type, config_cls: type, path: str | os.PathLike, kind: str, *,
                  map_location: str | torch.device = "cpu", features: bool = False,
                  ignore: tuple[str, ...] = ()) -> Any:
    """Load a checkpoint written by :func:`model_checkpoint` and rebuild its model, in eval mode.

    Notebook: notebooks/02_vq_vae.ipynb

    Args:
        cls: The model class, built as ``cls(config)`` or ``cls(config, features)``.
        config_cls: Its configuration dataclass.
        path: Checkpoint file (loaded with ``weights_only=True``).
        kind: The expected ``kind``.
        map_location: Device of the model.
        features: The model takes the collection's feature settings, which the checkpoint must
            match (:data:`utils.audio.FEATURES`).
        ignore: Prefixes of weights the model does not use (a vocoder's training-only
            discriminators, ``"discriminators."``).

    Raises:
        CheckpointError: Another kind, unreadable or different feature settings, or a
            configuration and weights that do not build the model.
    """
    from utils.audio import FEATURES, FeatureConfig

    ckpt = load_checkpoint(path, kind, map_location=map_location)
    args = []
    if features:
        try:
            feats = FeatureConfig(**ckpt["features"])
        except (TypeError, KeyError) as exc:
            raise CheckpointError(path, f"feature settings unreadable ({exc})") from None
        if feats != FEATURES:
            raise CheckpointError(path, "feature settings differ from the collection's")
        args.append(feats)
    try:
        model = cls(config_cls(**ckpt["config"]), *args)
        state = {k: v for k, v in ckpt["model"].items() if not k.startswith(ignore)} \
            if ignore else ckpt["model"]
        model.load_state_dict(state)
    except (TypeError, ValueError, RuntimeError, KeyError, OptionError) as exc:
        raise CheckpointError(path, f"weights do not fit this model ({exc})") from None
    return model.to(map_location).eval()
