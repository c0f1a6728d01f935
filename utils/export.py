"""Deployable learned reconstructions: TorchScript files that need neither this package nor
Python source, only ``torch.jit.load``.

* a mel vocoder exports as ``waveform = f(logmel)``: ``[1, n_mels, T]`` → ``[1, (T - 1)·hop]``;
* a Deep Griffin-Lim exports as ``waveform = f(magnitude, phase, mel)``: the NNLS magnitude and
  PGHI's phase of the start (:func:`utils.models.degli.magnitude_and_phase`, NumPy, not part of
  the graph) and the linear mel, all ``[1, ·, T]``.

Both are traced (``torch.jit.trace``) on an example and checked on a second length before they
are written (atomically); complex convolutions are traced with the native complex kernel (the
faster custom-gradient kernel is training-only machinery the tracer cannot record).

Command line::

    python -m utils.export data/pretrained/vocoder.pt vocoder.ts
    python -m utils.export data/pretrained/degli_complex.pt degli.ts

Notebook: notebooks/08_vocoders.ipynb
"""

from __future__ import annotations

import os
import sys
import warnings
from pathlib import Path

import numpy as np
import torch
from torch import Tensor, nn

from utils import options
from utils.errors import ProjectError

__all__ = ["DeGLIWaveform", "export", "load_exported", "run_exported", "main"]


class DeGLIWaveform(nn.Module):
    """A Deep Griffin-Lim as one function ``(magnitude, phase, mel) → waveform``.

    Notebook: notebooks/08_vocoders.ipynb
    """

    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        self.model = model

    def forward(self, magnitude: Tensor, phase: Tensor, mel: Tensor) -> Tensor:  # noqa: D102
        from utils.phase import torch_istft

        X = self.model(magnitude, torch.polar(magnitude, phase), mel)
        return torch_istft(X, self.model.features)


def _examples(kind: str, frames: int) -> tuple[Tensor, ...]:
    g = torch.Generator().manual_seed(frames)
    logmel = -3.0 + 0.5 * torch.randn(1, 80, frames, generator=g)
    if kind == "vocoder":
        return (logmel,)
    from utils.models.degli import magnitude_and_phase

    A, ph = magnitude_and_phase(logmel[0].numpy())
    return torch.from_numpy(A)[None], torch.from_numpy(ph)[None], torch.pow(10.0, logmel)


def export(checkpoint: str | os.PathLike, out: str | os.PathLike) -> Path:
    """Trace a vocoder or Deep Griffin-Lim checkpoint into a TorchScript file.

    Notebook: notebooks/08_vocoders.ipynb

    Returns:
        The file written.

    Raises:
        CheckpointError: Not a checkpoint of a learned reconstruction.
        ProjectError: The traced model disagrees with the model on a second length.
    """
    from utils.checkpoint import CheckpointError, load_checkpoint, save_atomic_bytes
    from utils.complex import ComplexConv2d
    from utils.models.degli import MODEL_KIND as DEGLI
    from utils.models.degli import DeepGriffinLim
    from utils.models.vocoder import MODEL_KIND as VOCODER
    from utils.models.vocoder import MelVocoder

    kind = load_checkpoint(checkpoint, None).get("kind")
    module: nn.Module
    if kind == VOCODER:
        module, name = MelVocoder.from_checkpoint(checkpoint), "vocoder"
    elif kind == DEGLI:
        degli = DeepGriffinLim.from_checkpoint(checkpoint)
        for m in degli.modules():
            if isinstance(m, ComplexConv2d):
                m.impl = "native"
        module, name = DeGLIWaveform(degli).eval(), "degli"
    else:
        raise CheckpointError(checkpoint, f"a {kind!r} checkpoint has no waveform to export "
                                          f"(expected {VOCODER!r} or {DEGLI!r})")
    with torch.no_grad(), warnings.catch_warnings():
        warnings.simplefilter("ignore", torch.jit.TracerWarning)
        warnings.simplefilter("ignore", DeprecationWarning)  # TorchScript still works in 2.x
        traced = torch.jit.trace(module, _examples(name, 40), check_trace=False)
        other = _examples(name, 57)
        want, got = module(*other), traced(*other)
    if want.shape != got.shape or not torch.allclose(want, got, atol=1e-5, rtol=1e-4):
        raise ProjectError(checkpoint, "the traced model disagrees with the model on another "
                                       "length; not written")
    import io

    buffer = io.BytesIO()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        torch.jit.save(traced, buffer, _extra_files={"kind": name})
    return save_atomic_bytes(buffer.getvalue(), Path(out))


def load_exported(path: str | os.PathLike) -> torch.jit.ScriptModule:
    """Load an exported file (CPU); its ``kind`` attribute says ``"vocoder"`` or ``"degli"``.

    Notebook: notebooks/08_vocoders.ipynb

    Raises:
        ProjectError: Not a file written by :func:`export`.
    """
    extra = {"kind": ""}
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DeprecationWarning)
            module = torch.jit.load(str(path), map_location="cpu", _extra_files=extra)
    except (RuntimeError, ValueError, OSError) as exc:
        raise ProjectError(path, f"not a TorchScript file ({exc})") from None
    kind = extra["kind"].decode() if isinstance(extra["kind"], bytes) else extra["kind"]
    if kind not in ("vocoder", "degli"):
        raise ProjectError(path, "not written by utils.export (no kind)")
    module.kind = kind
    return module


def run_exported(module: torch.jit.ScriptModule, logmel: np.ndarray,
                 length: int | None = None) -> np.ndarray:
    """The waveform an exported file makes of a log-mel ``[n_mels, T]`` (either kind).

    Notebook: notebooks/08_vocoders.ipynb
    """
    L = torch.from_numpy(np.asarray(logmel, dtype=np.float32))[None]
    with torch.no_grad():
        if module.kind == "vocoder":
            y = module(L)
        else:  # a Deep Griffin-Lim: the classical start (NumPy), then the graph
            from utils.models.degli import magnitude_and_phase

            A, ph = magnitude_and_phase(logmel)
            y = module(torch.from_numpy(A)[None], torch.from_numpy(ph)[None], torch.pow(10.0, L))
    y = y[0].numpy()
    if length is not None:
        y = np.pad(y, (0, max(0, length - len(y))))[:length]
    return y


def main(argv: list[str] | None = None) -> int:
    """``python -m utils.export CHECKPOINT OUT``.

    Notebook: notebooks/08_vocoders.ipynb
    """
    p = options.Parser(prog="python -m utils.export", description=__doc__.splitlines()[0])
    p.add_argument("checkpoint", help="a vocoder or Deep Griffin-Lim checkpoint (.pt)")
    p.add_argument("out", help="the TorchScript file to write")
    try:
        a = p.parse_args(argv)
    except SystemExit as exc:  # a refusal (one line, printed) or --help
        return int(exc.code or 0)
    try:
        path = export(a.checkpoint, a.out)
    except ProjectError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
