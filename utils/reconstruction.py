"""One option for how a log-mel becomes a waveform, the same everywhere.

Every place in the collection that turns a mel into sound (the codec's and the vocoder's
evaluations, :meth:`utils.models.vqvae.MelVQVAE.decode_audio`, the notebooks' players) takes a
*reconstruction*, named by one string:

=====================  ==========================================================================
``gl:N``               fast Griffin-Lim, N iterations, random initial phase (``griffinlim`` =
                       ``gl:32``, the collection's historical default)
``pghi:N``             PGHI's phase, then N fast Griffin-Lim iterations (``pghi:0``: PGHI alone)
``melgl:N``            PGHI's phase, then N fast Griffin-Lim iterations that also re-estimate
                       the magnitude toward the mel at every step (:mod:`utils.phase`)
``FILE.pt``            a trained model: a mel vocoder (``python -m utils.train vocoder``) or a
                       Deep Griffin-Lim (``python -m utils.train degli``), told apart by the
                       checkpoint's kind
=====================  ==========================================================================

Every classical method starts from the same magnitude, the mel inverted by non-negative least
squares (:func:`utils.audio.mel_to_magnitude`).

Notebook: notebooks/08_vocoders.ipynb
"""

from __future__ import annotations

import argparse
import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from utils.audio import FEATURES, mel_to_magnitude
from utils.errors import OptionError

__all__ = ["DEFAULT", "CLASSICAL_SPEC", "Reconstruction", "reconstruction",
           "add_reconstruction_argument"]

#: The reconstruction used when none is named.
DEFAULT = "gl:32"
#: ``gl:N``, ``pghi:N`` or ``melgl:N``.
CLASSICAL_SPEC = re.compile(r"^(gl|pghi|melgl):(\d+)$")


@dataclass
class Reconstruction:
    """A log-mel → waveform method: call it as ``rec(logmel, length)``.

    Notebook: notebooks/08_vocoders.ipynb

    Attributes:
        spec: The string that named it.
        name: A readable name ("PGHI + 32 it. fast Griffin-Lim", "mel vocoder (polar head)").
        model: The trained model, for a checkpoint (``None`` for a classical method).
    """

    spec: str
    name: str
    model: Any = None
    _init: str = "random"
    _iters: int = 32
    _mel: bool = False

    @property
    def learned(self) -> bool:
        """Whether a trained model does (part of) the work."""
        return self.model is not None

    def __call__(self, logmel: np.ndarray, length: int | None = None, *,
                 seed: int = 0) -> np.ndarray:
        """The waveform of one log-mel ``[n_mels, frames]`` (float32).

        Notebook: notebooks/08_vocoders.ipynb
        """
        if self.model is not None:
            return np.asarray(self.model.synthesize(logmel, length), dtype=np.float32)
        from utils.phase import griffin_lim

        M = np.power(10.0, np.asarray(logmel, dtype=np.float64)).astype(np.float32)
        A = mel_to_magnitude(M, FEATURES)
        return griffin_lim(A, FEATURES, n_iter=self._iters, init=self._init, length=length,
                           seed=seed, mel=M if self._mel else None)

    def synthesize(self, logmel: np.ndarray, length: int | None = None) -> np.ndarray:
        """Same as calling it: the interface of a vocoder model.

        Notebook: notebooks/08_vocoders.ipynb
        """
        return self(logmel, length)


def reconstruction(spec: str | Reconstruction | None = None, *,
                   option: str = "--reconstruction",
                   map_location: str = "cpu") -> Reconstruction:
    """The :class:`Reconstruction` a string names (see the module docstring).

    Notebook: notebooks/08_vocoders.ipynb

    Args:
        spec: ``"gl:N"``, ``"pghi:N"``, ``"melgl:N"``, ``"griffinlim"``, a checkpoint path,
            or ``None``
            (:data:`DEFAULT`); a :class:`Reconstruction` is returned as it is.
        option: The option's name, for messages.
        map_location: Device of a learned model.

    Raises:
        OptionError: A string that names nothing, an iteration count out of [0, 10 000], or a
            file that is not there.
        CheckpointError: A checkpoint of another kind, or one that does not load.
    """
    if isinstance(spec, Reconstruction):
        return spec
    spec = DEFAULT if spec is None or spec == "griffinlim" else str(spec)
    m = CLASSICAL_SPEC.match(spec)
    if m:
        method, n = m.group(1), int(m.group(2))
        if n > 10_000:
            raise OptionError(option, f"{spec}: at most 10000 iterations")
        if method == "gl":
            return Reconstruction(spec, f"fast Griffin-Lim {n} it.", None, "random", n)
        if method == "pghi":
            return Reconstruction(spec, f"PGHI + {n} it. fast Griffin-Lim", None, "pghi", n)
        return Reconstruction(spec, f"PGHI + {n} it. mel-consistent Griffin-Lim", None, "pghi",
                              n, True)
    path = Path(spec)
    if path.suffix != ".pt" and not path.exists():
        raise OptionError(option, f"{spec!r}: expected gl:N, pghi:N, melgl:N or a "
                                  "checkpoint (.pt)")
    if not path.is_file():
        raise OptionError(option, f"{spec}: checkpoint file not found")
    return _learned(path, map_location)


def _learned(path: Path, map_location: str) -> Reconstruction:
    from utils.checkpoint import CheckpointError, load_checkpoint
    from utils.models.degli import MODEL_KIND as DEGLI
    from utils.models.degli import DeepGriffinLim
    from utils.models.vocoder import MODEL_KIND as VOCODER
    from utils.models.vocoder import MelVocoder

    kind = load_checkpoint(path, None, map_location="cpu").get("kind")
    shown = Path(os.path.relpath(path)).as_posix() if path.is_absolute() else path.as_posix()
    if kind == VOCODER:
        model = MelVocoder.from_checkpoint(path, map_location=map_location)
        return Reconstruction(str(path), f"mel vocoder {shown} ({model.config.head} head)",
                              model)
    if kind == DEGLI:
        model = DeepGriffinLim.from_checkpoint(path, map_location="cpu")
        return Reconstruction(str(path), f"Deep Griffin-Lim {shown} ({model.config.kind} "
                                         f"denoiser, {model.config.iterations} it.)", model)
    raise CheckpointError(path, f"a {kind!r} checkpoint cannot turn a mel into sound "
                                f"(expected {VOCODER!r} or {DEGLI!r})")


def add_reconstruction_argument(p: argparse.ArgumentParser, flag: str = "--reconstruction",
                                **kwargs: Any) -> None:
    """Add the option that names the reconstruction (``gl:N``, ``pghi:N``, ``melgl:N``, a
    checkpoint).

    Notebook: notebooks/08_vocoders.ipynb
    """
    p.add_argument(flag, default=kwargs.pop("default", DEFAULT),
                   metavar="gl:N|pghi:N|melgl:N|CKPT",
                   help=kwargs.pop("help", "how a log-mel becomes a waveform: fast Griffin-Lim "
                                           "(gl:N), PGHI + N Griffin-Lim iterations (pghi:N), the "
                                           "same re-estimating the magnitude (melgl:N), "
                                           "or a vocoder / Deep Griffin-Lim checkpoint"),
                   **kwargs)
