"""The word classifiers' checkpoints: ``kind = "spoken-words"`` dicts with the configuration, the
training history and the weights stored as float16 (half the size; the accuracies quoted in
``data/pretrained/README.md`` are those of the stored weights).

Notebook: notebooks/06_complex_networks.ipynb
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from dataclasses import asdict
from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn

from utils.checkpoint import FORMAT_VERSION, CheckpointError, load_checkpoint, save_atomic
from utils.tasks.words.classifiers import WordsConfig

__all__ = ["KIND", "save_model", "load_model", "checkpoint_name"]

#: Checkpoint kind of the spoken-word classifiers.
KIND = "spoken-words"


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
