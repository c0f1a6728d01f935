"""Checkpoints: atomic saves, safe loading (``weights_only=True``), clear refusals.

A checkpoint is a plain dict of tensors and Python primitives::

    {"kind": "mel-vqvae", "format_version": 1, "config": {...}, "features": {...},
     "model": state_dict, ...training state (optimizer, scheduler, rng, step)...}

so it loads with ``torch.load(..., weights_only=True)`` (no pickled code runs). A file that is
not a checkpoint, is truncated, belongs to another model kind or to a newer format raises
:class:`CheckpointError` naming the file and the reason.

Every checkpoint written by :func:`model_checkpoint` or :func:`save_atomic` carries
``weights_sha256`` (:func:`weights_sha256`), which :func:`load_checkpoint` verifies: weights
whose bytes changed on disk are refused instead of silently producing wrong audio. An older
checkpoint without it still loads, with an :class:`UnverifiedCheckpointWarning`; add the hash
with ``python -m utils.checkpoint --add-hash FILE...`` (:func:`add_weights_hash`).

Notebook: notebooks/02_vq_vae.ipynb
"""

from __future__ import annotations

import hashlib
import os
import re
import sys
import tempfile
import warnings
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import torch

from utils import options
from utils.errors import OptionError, ProjectError

__all__ = [
    "FORMAT_VERSION",
    "CheckpointError",
    "UnverifiedCheckpointWarning",
    "weights_sha256",
    "add_weights_hash",
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


class UnverifiedCheckpointWarning(UserWarning):
    """Warned (once per file) when a checkpoint carries no ``weights_sha256`` to verify.

    Notebook: notebooks/02_vq_vae.ipynb
    """


#: Suffix of the temporary files that :func:`_write_atomic` (and :func:`writable_folder`'s
#: probe) create: ``.<target name>.<8 random characters>.partial``.
_TEMP_SUFFIX = ".partial"
#: Exactly the names of those temporary files (``tempfile.mkstemp``'s 8 random characters).
_TEMP_NAME = re.compile(r"\..+\.[a-z0-9_]{8}\.partial")


def weights_sha256(state: Mapping[str, Any]) -> str:
    """SHA-256 of a model's weights: what ``weights_sha256`` of a checkpoint holds.

    Over the entries in sorted key order: each key, its tensor's dtype and shape, then the
    tensor's raw bytes (``.detach().cpu().contiguous()``; complex, half and bfloat16 tensors
    included, as stored). A value that is not a tensor (a module's extra state) enters by its
    type and ``repr``. The hash depends on the values only, not on the device or the layout.

    Notebook: notebooks/02_vq_vae.ipynb

    Args:
        state: A state dict (``model.state_dict()`` or a checkpoint's ``"model"``).

    Returns:
        The hexadecimal digest.
    """
    h = hashlib.sha256(b"weights_sha256 v1\0")
    for key in sorted(state, key=str):
        value = state[key]
        if isinstance(value, torch.Tensor):
            t = value.detach().cpu().resolve_conj().resolve_neg().contiguous()
            h.update(f"{key}\0{t.dtype}\0{tuple(t.shape)}\0".encode())
            h.update(t.reshape(-1).view(torch.uint8).numpy())
        else:
            h.update(f"{key}\0{type(value).__name__}\0{value!r}\0".encode())
    return h.hexdigest()


#: Files already warned about by :func:`load_checkpoint` (each warns once per process).
_WARNED_UNVERIFIED: set[str] = set()


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
        fd, probe = tempfile.mkstemp(prefix=".write-probe.", suffix=_TEMP_SUFFIX, dir=path)
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

    :func:`save_atomic` writes ``.<name>.<8 random characters>.partial`` next to the
    destination and renames it; a process killed during the write leaves that file behind.
    Only files named exactly so are removed: a user's own hidden files (``.notes.tmp``) stay.
    Call this at the start of a run, holding the run folder's lock (one process only), so that
    no other save is under way in the folder.

    Notebook: notebooks/02_vq_vae.ipynb

    Args:
        folder: The folder to clean.

    Returns:
        The files removed.
    """
    removed = []
    for tmp in sorted(Path(folder).glob(f".*{_TEMP_SUFFIX}")):
        if _TEMP_NAME.fullmatch(tmp.name) and tmp.is_file() and not tmp.is_symlink():
            tmp.unlink(missing_ok=True)
            removed.append(tmp)
    return removed


def _write_atomic(path: str | os.PathLike, write: Callable[[Any], None]) -> Path:
    """Write through ``write(file)`` into a temporary file in the same folder, then rename.

    The temporary file is ``.<name>.<random>.partial`` (what :func:`remove_stale_temps`
    removes). On any failure it is removed and the previous file at ``path`` is left as it was.
    """
    path = Path(path)
    tmp = None
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=_TEMP_SUFFIX,
                                   dir=path.parent)
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
        kept = (f"the previous {path.name} was kept unchanged" if path.exists()
                else "nothing was written")
        raise CheckpointError(path, f"cannot be written ({reason}); {kept}") from None
    except BaseException:
        if tmp is not None:
            Path(tmp).unlink(missing_ok=True)
        raise
    return path


def save_atomic(obj: dict[str, Any], path: str | os.PathLike) -> Path:
    """Save with ``torch.save`` to a temporary file in the same folder, then rename.

    A crash or a full disk during the save leaves the previous checkpoint intact. A checkpoint
    of this project (a dict with ``kind`` and a ``model`` dict) that has no ``weights_sha256``
    yet gets it here (:func:`weights_sha256`), so every checkpoint written is verifiable.

    Notebook: notebooks/02_vq_vae.ipynb

    Args:
        obj: The checkpoint dict.
        path: Destination file.

    Returns:
        The destination path.

    Raises:
        CheckpointError: The file cannot be written (a full disk, ...): naming it; the previous
            file is kept and no temporary file is left.
    """
    if isinstance(obj, dict) and "kind" in obj and isinstance(obj.get("model"), Mapping) \
            and "weights_sha256" not in obj:
        obj = {**obj, "weights_sha256": weights_sha256(obj["model"])}
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
            format version), another kind, a newer format version, or weights whose SHA-256
            does not match the stored ``weights_sha256`` (corrupted on disk).

    Warns:
        UnverifiedCheckpointWarning: The checkpoint has no ``weights_sha256`` (written before
            the hash existed), once per file.
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
    _verify_weights(path, ckpt)
    return ckpt


def _verify_weights(path: Path, ckpt: dict[str, Any]) -> None:
    """Refuse weights whose hash differs from the stored one; warn once when there is none."""
    stored = ckpt.get("weights_sha256")
    if stored is None:
        key = str(path.resolve())
        if key not in _WARNED_UNVERIFIED:
            _WARNED_UNVERIFIED.add(key)
            warnings.warn(f"{path}: this checkpoint carries no weights hash (weights_sha256), so "
                          "corrupted weights cannot be detected; add one with `python -m "
                          f"utils.checkpoint --add-hash {path}`", UnverifiedCheckpointWarning,
                          stacklevel=3)
        return
    if not isinstance(ckpt["model"], Mapping):
        raise CheckpointError(path, "weights corrupted: 'model' is not a dict of tensors")
    actual = weights_sha256(ckpt["model"])
    if stored != actual:
        raise CheckpointError(path, f"weights corrupted: their SHA-256 hash does not match the "
                                    f"stored one (stored {str(stored)[:12]}…, the weights hash "
                                    f"to {actual[:12]}…); use another copy of this file")


def add_weights_hash(path: str | os.PathLike) -> str | None:
    """Add ``weights_sha256`` to a checkpoint written before it existed (weights unchanged).

    The file is verified if it has a hash already (and then left alone), otherwise rewritten
    atomically with the hash added; its permission bits are kept.

    Notebook: notebooks/02_vq_vae.ipynb

    Args:
        path: Checkpoint file.

    Returns:
        The digest added, or ``None`` when the file carried a valid hash already.

    Raises:
        CheckpointError: Not a loadable checkpoint of this project, corrupted weights (a
            stored hash that does not match), or the file cannot be rewritten.
    """
    path = Path(path)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UnverifiedCheckpointWarning)
        ckpt = load_checkpoint(path)
    if "weights_sha256" in ckpt:
        return None
    if not isinstance(ckpt["model"], Mapping):
        raise CheckpointError(path, "'model' is not a dict of tensors: nothing to hash")
    mode = path.stat().st_mode & 0o7777
    digest = weights_sha256(ckpt["model"])
    save_atomic({**ckpt, "weights_sha256": digest}, path)
    os.chmod(path, mode)
    return digest


def model_checkpoint(model: torch.nn.Module, kind: str, **extra: Any) -> dict[str, Any]:
    """The checkpoint dict of a model with a ``config`` dataclass (and maybe ``features``).

    ``kind``, ``format_version``, ``config`` (the dataclass as a dict), ``features`` when the
    model has them, the weights under ``model`` and their ``weights_sha256``
    (:func:`weights_sha256`, verified by :func:`load_checkpoint`), plus ``extra``.

    Notebook: notebooks/02_vq_vae.ipynb
    """
    from dataclasses import asdict

    out: dict[str, Any] = {"kind": kind, "format_version": FORMAT_VERSION,
                           "config": asdict(model.config)}
    if hasattr(model, "features"):
        out["features"] = asdict(model.features)
    state = model.state_dict()
    return {**out, "model": state, "weights_sha256": weights_sha256(state), **extra}


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


def main(argv: list[str] | None = None) -> int:
    """``python -m utils.checkpoint --add-hash FILE...``: add ``weights_sha256`` to checkpoints.

    Prints one line per file (hash added, valid already, or the reason it was refused) and
    exits with status 2 when any file was refused.

    Notebook: notebooks/02_vq_vae.ipynb

    Args:
        argv: The arguments (``None``: the command line's).

    Returns:
        The exit status.
    """
    p = options.Parser(prog="python -m utils.checkpoint", description="Checkpoint maintenance.")
    p.add_argument("--add-hash", nargs="+", required=True, metavar="FILE",
                   help="rewrite each checkpoint atomically with the SHA-256 of its weights "
                        "(weights unchanged; a file that has a valid hash is left alone)")
    try:
        args = p.parse_args(argv)
    except SystemExit as exc:  # a refusal (one line, printed) or --help
        return int(exc.code or 0)
    status = 0
    for name in args.add_hash:
        try:
            digest = add_weights_hash(name)
        except ProjectError as exc:
            print(f"error: {exc}", file=sys.stderr)
            status = 2
            continue
        if digest is None:
            print(f"{name}: has a valid weights hash already; left unchanged")
        else:
            print(f"{name}: weights hash added (sha256 {digest})")
    return status


if __name__ == "__main__":
    raise SystemExit(main())
