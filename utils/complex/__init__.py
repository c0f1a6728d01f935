"""Complex-valued layers on native ``torch.complex64`` tensors (the networks built from them
live in :mod:`utils.models.complex_cnn`).

The layers most notebooks need are re-exported here; everything else lives in its module:

- ``layout``       to and from the 2022 seed's trailing [real, imag] layout
- ``init``         Rayleigh-magnitude Glorot/He initialisation (independent or unitary)
- ``layers``       Linear, Conv1d/2d, ConvTranspose2d (native / Gauss / block-real), dropout, heads
- ``pooling``      max pooling by modulus, average and adaptive average pooling
- ``activations``  CReLU, modReLU, zReLU, cardioid
- ``batchnorm``    whitening batch norm (and the naive per-part one, for comparison)
- ``rnn``          complex LSTM and GRU

Notebook: notebooks/05_complex_layers.ipynb
"""

from utils.complex.activations import Cardioid, CReLU, ModReLU, ZReLU
from utils.complex.batchnorm import (
    ComplexBatchNorm1d,
    ComplexBatchNorm2d,
    NaiveComplexBatchNorm1d,
    NaiveComplexBatchNorm2d,
)
from utils.complex.layers import (
    ComplexConv1d,
    ComplexConv2d,
    ComplexConvTranspose2d,
    ComplexDropout,
    ComplexLinear,
    ComplexToReal,
)
from utils.complex.layout import to_complex, to_trailing
from utils.complex.pooling import ComplexAdaptiveAvgPool2d, ComplexAvgPool2d, ComplexMaxPool2d
from utils.complex.rnn import ComplexGRU, ComplexLSTM

__all__ = [
    "to_complex", "to_trailing",
    "ComplexLinear", "ComplexConv1d", "ComplexConv2d", "ComplexConvTranspose2d",
    "ComplexDropout", "ComplexToReal",
    "ComplexMaxPool2d", "ComplexAvgPool2d", "ComplexAdaptiveAvgPool2d",
    "CReLU", "ModReLU", "ZReLU", "Cardioid",
    "ComplexBatchNorm1d", "ComplexBatchNorm2d", "NaiveComplexBatchNorm1d",
    "NaiveComplexBatchNorm2d",
    "ComplexLSTM", "ComplexGRU",
]
