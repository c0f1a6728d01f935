"""Complex-valued layers on native ``torch.complex64`` tensors (the networks built from them
live in :mod:`utils.models.complex_cnn`).

The layers most notebooks need are re-exported here; everything else lives in its module:

- ``layout``       to and from the 2022 seed's trailing [real, imag] layout
- ``init``         Rayleigh-magnitude Glorot/He initialisation (independent or unitary)
- ``functional``   complex_linear, complex_conv: native / Gauss / block-real implementations
  (their real kernels in ``kernels``)
- ``linear``       ComplexLinear
- ``conv``         ComplexConv1d/2d, ComplexConvTranspose2d
- ``dropout``      complex dropout (elements or whole channels)
- ``heads``        ComplexToReal: complex features to real ones
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
from utils.complex.conv import ComplexConv1d, ComplexConv2d, ComplexConvTranspose2d
from utils.complex.dropout import ComplexDropout
from utils.complex.heads import ComplexToReal
from utils.complex.layout import to_complex, to_trailing
from utils.complex.linear import ComplexLinear
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
