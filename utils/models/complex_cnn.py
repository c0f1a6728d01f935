"""Complex VGG, LeNet and GoogLeNet classifiers, each with a parameter-matched real twin.

All complex models take a native complex tensor ``[B, C, H, W]`` (e.g. a complex STFT of shape
``[B, 1, F, T]``) and return **real logits** ``[B, num_classes]``: the complex features go
through :class:`~utils.complex.heads.ComplexToReal` (``head="concat"``: [Re, Im], the
default; ``head="modulus"``: |z|; ...) and a final real :class:`torch.nn.Linear`, so the usual
``F.cross_entropy`` applies. (The 2022 seed returned complex logits with no rule to turn them into
class scores.)

Every model ends its convolutional part with adaptive average pooling, so the input size is free
within reason (VGG: H, W >= 32 because of its five 2x2 max-pools; LeNet: from 28x28; GoogLeNet:
from 32x32 to 224x224 and beyond). ``width`` scales every channel count, so tiny versions train on
a CPU in seconds.

Real twins (:class:`RealVGG`, :class:`RealLeNet`, :class:`RealGoogLeNet`) have the same topology
with real layers. A complex weight is two real numbers, so a complex layer C_in -> C_out holds
2·C_in·C_out real parameters, the same as a real layer with √2 times as many channels on each
side. The twins therefore multiply every channel / hidden size by ``width_scale`` (√2 by default).
The first layer and the real output layer break the exact √2 rule a little (the complex model's
output layer reads 2n real features with ``head="concat"``, the twin's √2·n), so
:func:`real_twin` searches the multiplier that matches the parameter count best (always close to
√2; :func:`count_parameters` counts a complex parameter as two real ones). A twin takes real
input: feed ``[Re z, Im z]`` as 2·C channels (:func:`complex_to_channels`), or any real features.
"""

from __future__ import annotations

import math
from typing import Any, NamedTuple

import torch
from torch import nn

from utils.complex.activations import CReLU
from utils.complex.batchnorm import ComplexBatchNorm2d, NaiveComplexBatchNorm2d
from utils.complex.conv import ComplexConv2d
from utils.complex.dropout import ComplexDropout
from utils.complex.heads import ComplexToReal
from utils.complex.linear import ComplexLinear
from utils.complex.pooling import ComplexAdaptiveAvgPool2d, ComplexAvgPool2d, ComplexMaxPool2d

__all__ = [
    "VGG_CONFIGS",
    "ComplexGoogLeNet",
    "ComplexLeNet",
    "ComplexVGG",
    "GoogLeNetOutputs",
    "RealGoogLeNet",
    "RealLeNet",
    "RealVGG",
    "complex_to_channels",
    "complex_vgg",
    "count_parameters",
    "matched_width_scale",
    "real_twin",
]

#: VGG configurations (Simonyan & Zisserman 2015, configurations A, B, D, E): conv widths at
#: width=64, "M" = 2x2 max-pool.
VGG_CONFIGS: dict[str, list[int | str]] = {
    "vgg11": [64, "M", 128, "M", 256, 256, "M", 512, 512, "M", 512, 512, "M"],
    "vgg13": [64, 64, "M", 128, 128, "M", 256, 256, "M", 512, 512, "M", 512, 512, "M"],
    "vgg16": [64, 64, "M", 128, 128, "M", 256, 256, 256, "M", 512, 512, 512, "M",
              512, 512, 512, "M"],
    "vgg19": [64, 64, "M", 128, 128, "M", 256, 256, 256, 256, "M", 512, 512, 512, 512, "M",
              512, 512, 512, 512, "M"],
}

#: GoogLeNet inception blocks (Szegedy et al. 2015, Table 1): name -> (1x1, 3x3 reduce, 3x3,
#: 5x5 reduce, 5x5, pool proj), at width=64.
_INCEPTION: dict[str, tuple[int, int, int, int, int, int]] = {
    "3a": (64, 96, 128, 16, 32, 32),
    "3b": (128, 128, 192, 32, 96, 64),
    "4a": (192, 96, 208, 16, 48, 64),
    "4b": (160, 112, 224, 24, 64, 64),
    "4c": (128, 128, 256, 24, 64, 64),
    "4d": (112, 144, 288, 32, 64, 64),
    "4e": (256, 160, 320, 32, 128, 128),
    "5a": (256, 160, 320, 32, 128, 128),
    "5b": (384, 192, 384, 48, 128, 128),
}

SQRT2 = math.sqrt(2.0)


def _ch(c: float, scale: float) -> int:
    """Scaled channel count, at least 1."""
    return max(1, int(round(c * scale)))


def count_parameters(model: nn.Module, trainable_only: bool = False) -> int:
    """Number of real parameters of a model; a complex parameter counts as two.

    Notebook: notebooks/06_complex_networks.ipynb

    Args:
        model: Any module.
        trainable_only: Count only parameters with ``requires_grad``.

    Returns:
        The number of real scalars in the parameters.
    """
    total = 0
    for p in model.parameters():
        if trainable_only and not p.requires_grad:
            continue
        total += p.numel() * (2 if p.is_complex() else 1)
    return total


def complex_to_channels(z: torch.Tensor) -> torch.Tensor:
    """Real input for a real twin: ``[B, C, ...]`` complex -> ``[B, 2C, ...]`` = [Re z, Im z].

    Notebook: notebooks/06_complex_networks.ipynb

    Args:
        z: Complex tensor with channels on dimension 1.

    Returns:
        Real tensor with the real parts in the first C channels and the imaginary parts after.
    """
    return torch.cat([z.real, z.imag], dim=1)


# --------------------------------------------------------------------------- building blocks


def _norm_kind(batch_norm: bool | str | None) -> str | None:
    if batch_norm is True or batch_norm == "whiten":
        return "whiten"
    if batch_norm == "naive":
        return "naive"
    if batch_norm in (False, None):
        return None
    raise ValueError(f"batch_norm must be True/'whiten', 'naive' or False, got {batch_norm!r}")


class _Ops:
    """Factory of complex or real layers, so that both families share one topology."""

    def __init__(self, complex_: bool, batch_norm: bool | str | None) -> None:
        self.complex = complex_
        self.norm = _norm_kind(batch_norm)

    def conv(self, c_in: int, c_out: int, k: int, stride: int = 1, padding: int = 0,
             bias: bool = True) -> nn.Module:
        if self.complex:
            return ComplexConv2d(c_in, c_out, k, stride=stride, padding=padding, bias=bias)
        return nn.Conv2d(c_in, c_out, k, stride=stride, padding=padding, bias=bias)

    def bn(self, c: int) -> nn.Module:
        if self.norm is None:
            return nn.Identity()
        if not self.complex:
            return nn.BatchNorm2d(c)
        return ComplexBatchNorm2d(c) if self.norm == "whiten" else NaiveComplexBatchNorm2d(c)

    def conv_bn_act(self, c_in: int, c_out: int, k: int, stride: int = 1,
                    padding: int = 0) -> nn.Sequential:
        return nn.Sequential(
            self.conv(c_in, c_out, k, stride, padding, bias=self.norm is None),
            self.bn(c_out),
            self.act(),
        )

    def act(self) -> nn.Module:
        return CReLU() if self.complex else nn.ReLU()

    def linear(self, n_in: int, n_out: int) -> nn.Module:
        return ComplexLinear(n_in, n_out) if self.complex else nn.Linear(n_in, n_out)

    def dropout(self, p: float) -> nn.Module:
        return ComplexDropout(p) if self.complex else nn.Dropout(p)

    def max_pool(self, k: int, stride: int, padding: int = 0) -> nn.Module:
        if self.complex:
            return ComplexMaxPool2d(k, stride=stride, padding=padding)
        return nn.MaxPool2d(k, stride=stride, padding=padding)

    def avg_pool(self, k: int, stride: int) -> nn.Module:
        return ComplexAvgPool2d(k, stride=stride) if self.complex else nn.AvgPool2d(k, stride)

    def adaptive_pool(self, size: int) -> nn.Module:
        return ComplexAdaptiveAvgPool2d(size) if self.complex else nn.AdaptiveAvgPool2d(size)

    def head(self, n_in: int, num_classes: int, head: str) -> tuple[nn.Module, nn.Module]:
        """(complex -> real map, real Linear) for the complex family; (Identity, Linear) else."""
        if not self.complex:
            return nn.Identity(), nn.Linear(n_in, num_classes)
        if head not in ComplexToReal.MODES:
            raise ValueError(f"head must be one of {ComplexToReal.MODES}, got {head!r}")
        n_real = 2 * n_in if head == "concat" else n_in
        return ComplexToReal(mode=head), nn.Linear(n_real, num_classes)


# --------------------------------------------------------------------------- VGG


class _VGG(nn.Module):
    def __init__(self, complex_: bool, name: str, in_channels: int, num_classes: int,
                 width: float, batch_norm: bool | str | None, dropout: float, pool_size: int,
                 hidden: int | None, head: str, scale: float) -> None:
        super().__init__()
        key = name.lower().replace("-", "").replace("_", "")
        if key not in VGG_CONFIGS:
            raise ValueError(f"unknown VGG {name!r}; choose one of {sorted(VGG_CONFIGS)}")
        ops = _Ops(complex_, batch_norm)
        self.name = key
        factor = width / 64 * scale
        layers: list[nn.Module] = []
        c = in_channels
        for v in VGG_CONFIGS[key]:
            if v == "M":
                layers.append(ops.max_pool(2, 2))
            else:
                out = _ch(int(v), factor)
                layers.append(ops.conv_bn_act(c, out, 3, padding=1))
                c = out
        self.features = nn.Sequential(*layers)
        self.pool = ops.adaptive_pool(pool_size)
        n_hidden = _ch(hidden if hidden is not None else 512 * width / 64, scale)
        self.classifier = nn.Sequential(
            ops.linear(c * pool_size * pool_size, n_hidden), ops.act(), ops.dropout(dropout),
            ops.linear(n_hidden, n_hidden), ops.act(), ops.dropout(dropout),
        )
        self.to_real, self.fc = ops.head(n_hidden, num_classes, head)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.pool(self.features(x))
        x = self.classifier(torch.flatten(x, 1))
        return self.fc(self.to_real(x))


class ComplexVGG(_VGG):
    """Complex VGG-11/13/16/19 (chosen by ``name``) returning real logits.

    Features: for each configuration entry, ``ComplexConv2d(3x3, padding 1) -> ComplexBatchNorm2d
    -> CReLU`` or a 2x2 magnitude max-pool. Then adaptive average pooling to
    ``pool_size x pool_size``, two complex hidden layers (``ComplexLinear -> CReLU ->
    ComplexDropout``), :class:`ComplexToReal` and a real ``Linear`` to ``num_classes``.
    With ``width=64, pool_size=7, hidden=4096`` it is the ImageNet VGG layout; the defaults give
    the compact CIFAR-style classifier (hidden = 8·width).

    Notebook: notebooks/06_complex_networks.ipynb

    Args:
        name: ``"vgg11"``, ``"vgg13"``, ``"vgg16"`` or ``"vgg19"``.
        in_channels: Complex input channels.
        num_classes: Number of classes.
        width: Channels of the first block (64 in the paper); all widths scale with it.
        batch_norm: ``True``/``"whiten"`` (Trabelsi whitening), ``"naive"`` (per-part) or
            ``False``.
        dropout: Dropout probability in the classifier (same mask for Re and Im).
        pool_size: Output size of the adaptive average pool.
        hidden: Hidden size of the classifier (default 8·width).
        head: :class:`ComplexToReal` mode before the real output layer: ``"concat"``
            ([Re, Im]), ``"modulus"`` (|z|), ``"modulus_squared"`` or ``"real"``.
    """

    def __init__(self, name: str = "vgg11", in_channels: int = 1, num_classes: int = 10,
                 width: float = 64, batch_norm: bool | str | None = True, dropout: float = 0.5,
                 pool_size: int = 1, hidden: int | None = None, head: str = "concat") -> None:
        super().__init__(True, name, in_channels, num_classes, width, batch_norm, dropout,
                         pool_size, hidden, head, 1.0)
        self.config = dict(name=name, in_channels=in_channels, num_classes=num_classes,
                           width=width, batch_norm=batch_norm, dropout=dropout,
                           pool_size=pool_size, hidden=hidden)


class RealVGG(_VGG):
    """Real VGG twin of :class:`ComplexVGG`: same topology, channels × ``width_scale``.

    With the default ``width_scale = √2`` and the same ``name``/``width``/``hidden`` as a
    :class:`ComplexVGG`, the parameter counts match within a few percent (see the module
    docstring). ``in_channels`` counts real channels (2·C for [Re, Im] input).

    Notebook: notebooks/06_complex_networks.ipynb

    Args:
        name: ``"vgg11"``, ``"vgg13"``, ``"vgg16"`` or ``"vgg19"``.
        in_channels: Real input channels.
        num_classes: Number of classes.
        width: Nominal first-block width (as for the complex model).
        batch_norm: Use ``nn.BatchNorm2d`` (any truthy value) or not.
        dropout: Dropout probability in the classifier.
        pool_size: Output size of the adaptive average pool.
        hidden: Nominal hidden size (as for the complex model; default 8·width).
        width_scale: Multiplier on every channel and hidden size (√2 matches parameters).
    """

    def __init__(self, name: str = "vgg11", in_channels: int = 2, num_classes: int = 10,
                 width: float = 64, batch_norm: bool | str | None = True, dropout: float = 0.5,
                 pool_size: int = 1, hidden: int | None = None,
                 width_scale: float = SQRT2) -> None:
        super().__init__(False, name, in_channels, num_classes, width,
                         bool(batch_norm), dropout, pool_size, hidden, "concat", width_scale)


def complex_vgg(name: str, **kwargs: Any) -> ComplexVGG:
    """Build a :class:`ComplexVGG` by name (``"vgg11"``, ``"vgg13"``, ``"vgg16"``, ``"vgg19"``).

    Notebook: notebooks/06_complex_networks.ipynb

    Args:
        name: VGG configuration.
        **kwargs: Other :class:`ComplexVGG` arguments.

    Returns:
        The model.
    """
    return ComplexVGG(name, **kwargs)


# --------------------------------------------------------------------------- LeNet


class _LeNet(nn.Module):
    def __init__(self, complex_: bool, in_channels: int, num_classes: int, width: float,
                 head: str, scale: float) -> None:
        super().__init__()
        ops = _Ops(complex_, None)
        c1, c2, c3, f4 = (_ch(c, width * scale) for c in (6, 16, 120, 84))
        self.features = nn.Sequential(
            ops.conv(in_channels, c1, 5, padding=2), ops.act(), ops.avg_pool(2, 2),
            ops.conv(c1, c2, 5), ops.act(), ops.avg_pool(2, 2),
            ops.adaptive_pool(5),
            ops.conv(c2, c3, 5), ops.act(),
        )
        self.classifier = nn.Sequential(ops.linear(c3, f4), ops.act())
        self.to_real, self.fc = ops.head(f4, num_classes, head)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = torch.flatten(self.features(x), 1)
        return self.fc(self.to_real(self.classifier(x)))


class ComplexLeNet(_LeNet):
    """Complex LeNet-5 returning real logits, for any input from 28x28 up.

    ``conv 5x5 (pad 2) -> CReLU -> avg-pool 2 -> conv 5x5 -> CReLU -> avg-pool 2 ->
    adaptive avg-pool 5x5 -> conv 5x5 -> CReLU -> ComplexLinear -> CReLU -> ComplexToReal ->
    Linear``. The padding of the first convolution is the usual MNIST convention (a 28x28 input
    has exactly the classic 32x32 LeNet geometry); the adaptive pool lets larger inputs (32x32,
    spectrograms) through. Channel widths 6, 16, 120, 84 are multiplied by ``width``.

    Notebook: notebooks/06_complex_networks.ipynb

    Args:
        in_channels: Complex input channels.
        num_classes: Number of classes.
        width: Multiplier of the channel / hidden widths.
        head: :class:`ComplexToReal` mode before the real output layer (``"concat"``,
            ``"modulus"``, ``"modulus_squared"`` or ``"real"``).
    """

    def __init__(self, in_channels: int = 1, num_classes: int = 10, width: float = 1.0,
                 head: str = "concat") -> None:
        super().__init__(True, in_channels, num_classes, width, head, 1.0)
        self.config = dict(in_channels=in_channels, num_classes=num_classes, width=width)


class RealLeNet(_LeNet):
    """Real LeNet-5 twin of :class:`ComplexLeNet` (widths × ``width_scale``).

    Notebook: notebooks/06_complex_networks.ipynb

    Args:
        in_channels: Real input channels (2·C for [Re, Im] input).
        num_classes: Number of classes.
        width: Nominal width multiplier (as for the complex model).
        width_scale: Multiplier on every width (√2 matches parameters).
    """

    def __init__(self, in_channels: int = 2, num_classes: int = 10, width: float = 1.0,
                 width_scale: float = SQRT2) -> None:
        super().__init__(False, in_channels, num_classes, width, "concat", width_scale)


# --------------------------------------------------------------------------- GoogLeNet


class GoogLeNetOutputs(NamedTuple):
    """Training-mode output of the GoogLeNets: main logits and the two auxiliary heads.

    ``aux1`` follows inception 4a, ``aux2`` follows inception 4d. The paper weights the
    auxiliary losses by 0.3.

    Notebook: notebooks/06_complex_networks.ipynb
    """

    logits: torch.Tensor
    aux1: torch.Tensor
    aux2: torch.Tensor


class _Inception(nn.Module):
    def __init__(self, ops: _Ops, c_in: int, cfg: tuple[int, ...]) -> None:
        super().__init__()
        o1, r3, o3, r5, o5, op = cfg
        self.branch1 = ops.conv_bn_act(c_in, o1, 1)
        self.branch3 = nn.Sequential(ops.conv_bn_act(c_in, r3, 1),
                                     ops.conv_bn_act(r3, o3, 3, padding=1))
        self.branch5 = nn.Sequential(ops.conv_bn_act(c_in, r5, 1),
                                     ops.conv_bn_act(r5, o5, 5, padding=2))
        self.branch_pool = nn.Sequential(ops.max_pool(3, 1, 1), ops.conv_bn_act(c_in, op, 1))
        self.out_channels = o1 + o3 + o5 + op

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.cat([self.branch1(x), self.branch3(x), self.branch5(x),
                          self.branch_pool(x)], dim=1)


class _AuxHead(nn.Module):
    def __init__(self, ops: _Ops, c_in: int, num_classes: int, factor: float, scale: float,
                 dropout: float, head: str) -> None:
        super().__init__()
        c = _ch(128, factor)
        hidden = _ch(1024, factor)
        self.pool = ops.adaptive_pool(4)
        self.conv = ops.conv_bn_act(c_in, c, 1)
        self.fc1 = nn.Sequential(ops.linear(c * 16, hidden), ops.act(), ops.dropout(dropout))
        self.to_real, self.fc2 = ops.head(hidden, num_classes, head)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = torch.flatten(self.conv(self.pool(x)), 1)
        return self.fc2(self.to_real(self.fc1(x)))


class _GoogLeNet(nn.Module):
    def __init__(self, complex_: bool, in_channels: int, num_classes: int, aux_logits: bool,
                 width: float, batch_norm: bool | str | None, dropout: float,
                 aux_dropout: float, head: str, scale: float) -> None:
        super().__init__()
        ops = _Ops(complex_, batch_norm)
        factor = width / 64 * scale
        self.aux_logits = aux_logits
        c1, c2, c3 = _ch(64, factor), _ch(64, factor), _ch(192, factor)
        self.stem = nn.Sequential(
            ops.conv_bn_act(in_channels, c1, 7, stride=2, padding=3),
            ops.max_pool(3, 2, 1),
            ops.conv_bn_act(c1, c2, 1),
            ops.conv_bn_act(c2, c3, 3, padding=1),
            ops.max_pool(3, 2, 1),
        )
        blocks: dict[str, nn.Module] = {}
        c = c3
        for key, cfg in _INCEPTION.items():
            block = _Inception(ops, c, tuple(_ch(v, factor) for v in cfg))
            blocks[key] = block
            c = block.out_channels
        self.inception3a, self.inception3b = blocks["3a"], blocks["3b"]
        self.pool3 = ops.max_pool(3, 2, 1)
        self.inception4a, self.inception4b = blocks["4a"], blocks["4b"]
        self.inception4c, self.inception4d = blocks["4c"], blocks["4d"]
        self.inception4e = blocks["4e"]
        self.pool4 = ops.max_pool(3, 2, 1)
        self.inception5a, self.inception5b = blocks["5a"], blocks["5b"]
        if aux_logits:
            c4a = self.inception4a.out_channels
            c4d = self.inception4d.out_channels
            self.aux1 = _AuxHead(ops, c4a, num_classes, factor, scale, aux_dropout, head)
            self.aux2 = _AuxHead(ops, c4d, num_classes, factor, scale, aux_dropout, head)
        else:
            self.aux1 = self.aux2 = None
        self.avgpool = ops.adaptive_pool(1)
        self.dropout = ops.dropout(dropout)
        self.to_real, self.fc = ops.head(c, num_classes, head)

    def forward(self, x: torch.Tensor) -> torch.Tensor | GoogLeNetOutputs:
        """Main logits in eval mode (or without aux heads); :class:`GoogLeNetOutputs` in train."""
        x = self.stem(x)
        x = self.pool3(self.inception3b(self.inception3a(x)))
        x = self.inception4a(x)
        aux = self.training and self.aux_logits
        a1 = self.aux1(x) if aux else None
        x = self.inception4d(self.inception4c(self.inception4b(x)))
        a2 = self.aux2(x) if aux else None
        x = self.pool4(self.inception4e(x))
        x = self.inception5b(self.inception5a(x))
        x = self.dropout(torch.flatten(self.avgpool(x), 1))
        logits = self.fc(self.to_real(x))
        if aux:
            return GoogLeNetOutputs(logits, a1, a2)
        return logits


class ComplexGoogLeNet(_GoogLeNet):
    """Complex GoogLeNet (Inception v1) with batch norm, returning real logits.

    The paper's layout (stem 7x7/2, max-pool, 1x1, 3x3, max-pool; inception 3a-5b; global
    average pool, dropout 0.4, classifier), with complex convolutions, whitening complex batch
    norm, CReLU and magnitude max-pooling. Auxiliary heads after 4a and 4d (adaptive avg-pool
    4x4, 1x1 conv to 128, complex FC 1024, dropout 0.7, real output layer) are evaluated in
    training mode only; then the forward pass returns :class:`GoogLeNetOutputs`, in eval mode the
    main logits. Adaptive pooling everywhere, so inputs from 32x32 upwards work; ``in_channels``
    and ``width`` are free.

    Notebook: notebooks/06_complex_networks.ipynb

    Args:
        in_channels: Complex input channels.
        num_classes: Number of classes.
        aux_logits: Build and use the two auxiliary heads in training mode.
        width: Width of the first convolution (64 in the paper); all widths scale with it.
        batch_norm: ``True``/``"whiten"``, ``"naive"`` or ``False``.
        dropout: Dropout before the main classifier.
        aux_dropout: Dropout in the auxiliary heads.
        head: :class:`ComplexToReal` mode before the real output layer (``"concat"``,
            ``"modulus"``, ``"modulus_squared"`` or ``"real"``).
    """

    def __init__(self, in_channels: int = 3, num_classes: int = 1000, aux_logits: bool = True,
                 width: float = 64, batch_norm: bool | str | None = True, dropout: float = 0.4,
                 aux_dropout: float = 0.7, head: str = "concat") -> None:
        super().__init__(True, in_channels, num_classes, aux_logits, width, batch_norm,
                         dropout, aux_dropout, head, 1.0)
        self.config = dict(in_channels=in_channels, num_classes=num_classes,
                           aux_logits=aux_logits, width=width, batch_norm=batch_norm,
                           dropout=dropout, aux_dropout=aux_dropout)


class RealGoogLeNet(_GoogLeNet):
    """Real GoogLeNet twin of :class:`ComplexGoogLeNet` (all widths × ``width_scale``).

    Notebook: notebooks/06_complex_networks.ipynb

    Args:
        in_channels: Real input channels (2·C for [Re, Im] input).
        num_classes: Number of classes.
        aux_logits: Build and use the two auxiliary heads in training mode.
        width: Nominal width (as for the complex model).
        batch_norm: Use ``nn.BatchNorm2d`` (any truthy value) or not.
        dropout: Dropout before the main classifier.
        aux_dropout: Dropout in the auxiliary heads.
        width_scale: Multiplier on every width (√2 matches parameters).
    """

    def __init__(self, in_channels: int = 6, num_classes: int = 1000, aux_logits: bool = True,
                 width: float = 64, batch_norm: bool | str | None = True, dropout: float = 0.4,
                 aux_dropout: float = 0.7, width_scale: float = SQRT2) -> None:
        super().__init__(False, in_channels, num_classes, aux_logits, width, bool(batch_norm),
                         dropout, aux_dropout, "concat", width_scale)


# --------------------------------------------------------------------------- twins


def _twin_spec(model: nn.Module, in_channels: int | None) -> tuple[type, dict[str, Any]]:
    cfg = dict(model.config)
    cfg["in_channels"] = in_channels if in_channels is not None else 2 * cfg["in_channels"]
    for complex_cls, real_cls in ((ComplexVGG, RealVGG), (ComplexLeNet, RealLeNet),
                                  (ComplexGoogLeNet, RealGoogLeNet)):
        if isinstance(model, complex_cls):
            return real_cls, cfg
    raise TypeError(f"no real twin for {type(model).__name__}")


def matched_width_scale(model: nn.Module, in_channels: int | None = None,
                        low: float = 1.0, high: float = 2.0, steps: int = 16) -> float:
    """Channel multiplier of the real twin whose parameter count is closest to the model's.

    √2 is the answer for the convolutional and hidden layers; the input layer and the real output
    layer (fed 2n features by ``head="concat"`` but √2·n by the twin) shift it a little, most for
    many classes (e.g. GoogLeNet with 1000 classes: -6.7 % at √2). The search builds candidate
    twins on the ``meta`` device (no memory, milliseconds) and bisects on the multiplier.

    Notebook: notebooks/06_complex_networks.ipynb

    Args:
        model: A :class:`ComplexVGG`, :class:`ComplexLeNet` or :class:`ComplexGoogLeNet`.
        in_channels: Real input channels of the twin (default 2 × the complex ones).
        low: Smallest multiplier tried.
        high: Largest multiplier tried.
        steps: Bisection steps.

    Returns:
        The multiplier to pass as ``width_scale``.
    """
    cls, cfg = _twin_spec(model, in_channels)
    target = count_parameters(model)

    def count(scale: float) -> int:
        with torch.device("meta"):
            return count_parameters(cls(**cfg, width_scale=scale))

    lo, hi = low, high
    if count(hi) < target:
        return hi
    for _ in range(steps):  # invariant: count(hi) >= target
        mid = 0.5 * (lo + hi)
        if count(mid) >= target:
            hi = mid
        else:
            lo = mid
    return min((lo, hi), key=lambda s: abs(count(s) - target))


def real_twin(model: nn.Module, in_channels: int | None = None,
              width_scale: float | None = None) -> nn.Module:
    """Parameter-matched real twin of a :class:`ComplexVGG`, :class:`ComplexLeNet` or
    :class:`ComplexGoogLeNet`.

    Notebook: notebooks/06_complex_networks.ipynb

    Args:
        model: The complex model.
        in_channels: Real input channels of the twin (default: 2 × the complex input channels,
            for [Re, Im] input as produced by :func:`complex_to_channels`).
        width_scale: Channel multiplier of the twin; ``None`` searches the multiplier that
            matches the parameter count best (:func:`matched_width_scale`, close to √2).

    Returns:
        A freshly initialised real model with the same topology; its multiplier is stored as
        ``twin.width_scale``.
    """
    cls, cfg = _twin_spec(model, in_channels)
    if width_scale is None:
        width_scale = matched_width_scale(model, in_channels)
    twin = cls(**cfg, width_scale=width_scale)
    twin.width_scale = width_scale
    return twin
