"""The word classifiers compared: complex LeNet / VGG and their parameter-matched real twins, the
configuration stored with each, and how one is built.

Notebook: notebooks/06_complex_networks.ipynb
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from utils.errors import OptionError
from utils.models.complex_cnn import (
    ComplexLeNet,
    ComplexVGG,
    RealLeNet,
    RealVGG,
    matched_width_scale,
)
from utils.tasks.words.features import KINDS, REAL_IN_CHANNELS

__all__ = ["ARCHS", "WordsConfig", "build_model"]

#: Architectures of the command line.
ARCHS = ("lenet", "vgg")


def _complex_template(arch: str, num_classes: int, width: float, vgg: str,
                      dropout: float) -> nn.Module:
    if arch == "lenet":
        return ComplexLeNet(1, num_classes, width)
    if arch == "vgg":
        return ComplexVGG(vgg, 1, num_classes, width, batch_norm=True, dropout=dropout)
    raise ValueError(f"arch must be one of {ARCHS}, got {arch!r}")


def build_model(
    arch: str,
    kind: str,
    num_classes: int,
    width: float,
    *,
    vgg: str = "vgg11",
    dropout: float = 0.25,
    width_scale: float | None = None,
) -> nn.Module:
    """A word classifier: complex LeNet / VGG on complex features, or a real twin of it.

    The real twin has one real input channel (the compressed magnitude, ``"real"``) or two (the
    real and imaginary parts, ``"ri"``) and every other width
    multiplied by the ``width_scale`` that matches its parameter count to the complex model's
    (searched when ``None``; store it to rebuild the same model). The complex model is built
    on the ``meta`` device for that search, so the random state is not touched.

    Notebook: notebooks/06_complex_networks.ipynb

    Args:
        arch: ``"lenet"`` or ``"vgg"``.
        kind: ``"complex"``, ``"real"`` or ``"ri"``.
        num_classes: Number of words.
        width: LeNet width multiplier, or VGG first-block width.
        vgg: VGG configuration (``"vgg11"``, ...).
        dropout: Classifier dropout of the VGGs.
        width_scale: Real twin channel multiplier (``None``: matched search).

    Returns:
        The model (with ``model.width_scale`` set for real twins).
    """
    if kind not in KINDS:
        raise ValueError(f"kind must be one of {KINDS}, got {kind!r}")
    if kind == "complex":
        return _complex_template(arch, num_classes, width, vgg, dropout)
    in_channels = REAL_IN_CHANNELS[kind]
    if width_scale is None:
        with torch.device("meta"):
            template = _complex_template(arch, num_classes, width, vgg, dropout)
        width_scale = matched_width_scale(template, in_channels=in_channels)
    if arch == "lenet":
        model = RealLeNet(in_channels, num_classes, width, width_scale=width_scale)
    else:
        model = RealVGG(vgg, in_channels, num_classes, width, batch_norm=True, dropout=dropout,
                        width_scale=width_scale)
    model.width_scale = width_scale
    return model


@dataclass(frozen=True)
class WordsConfig:
    """Configuration of a word classifier (stored in every checkpoint).

    Notebook: notebooks/06_complex_networks.ipynb

    Attributes:
        arch: ``"lenet"`` or ``"vgg"``.
        kind: ``"complex"`` (complex model on the complex features), ``"real"`` (its real
            twin on their modulus) or ``"ri"`` (the twin on their real and imaginary parts).
        words: The class names, in label order.
        width: LeNet width multiplier, or VGG first-block width.
        vgg: VGG configuration (``"vgg11"``, ...).
        dropout: Classifier dropout of the VGGs.
        width_scale: Channel multiplier of a real twin that matches the complex model's
            parameter count (``None``: searched by :class:`WordsTask`).
    """

    arch: str = "lenet"
    kind: str = "complex"
    words: tuple[str, ...] = ()
    width: float = 0.5
    vgg: str = "vgg11"
    dropout: float = 0.25
    width_scale: float | None = None

    def __post_init__(self) -> None:
        if self.arch not in ARCHS:
            raise OptionError("--arch", f"must be one of {ARCHS}, got {self.arch!r}")
        if self.kind not in KINDS:
            raise OptionError("--kind", f"must be one of {KINDS}, got {self.kind!r}")
        if not self.width > 0:
            raise OptionError(f"--{self.arch}-width", f"must be positive, got {self.width}")
        if not 0 <= self.dropout < 1:
            raise OptionError("--dropout", f"must be in [0, 1), got {self.dropout}")
        object.__setattr__(self, "words", tuple(self.words))

    def build(self) -> nn.Module:
        """The model of this configuration (:func:`build_model`).

        Notebook: notebooks/06_complex_networks.ipynb
        """
        return build_model(self.arch, self.kind, len(self.words), self.width, vgg=self.vgg,
                           dropout=self.dropout, width_scale=self.width_scale)
