"""The complex layers of the linear family in one import, for code written before they got a
module each (``from utils.complex.layers import ComplexConv2d`` keeps working).

Where each lives:

- :mod:`utils.complex.functional`  ``complex_linear``, ``complex_conv``, ``IMPLS``, ``AUTO_IMPL``
  (native / Gauss / block implementations; the real kernels are in :mod:`utils.complex.kernels`)
- :mod:`utils.complex.linear`      ``ComplexLinear``
- :mod:`utils.complex.conv`        ``ComplexConv1d``, ``ComplexConv2d``, ``ComplexConvTranspose2d``
- :mod:`utils.complex.dropout`     ``ComplexDropout``, ``ComplexDropout2d``
- :mod:`utils.complex.heads`       ``ComplexToReal``

Notebook: notebooks/05_complex_layers.ipynb
"""

from utils.complex.conv import ComplexConv1d, ComplexConv2d, ComplexConvTranspose2d
from utils.complex.dropout import ComplexDropout, ComplexDropout2d
from utils.complex.functional import AUTO_IMPL, IMPLS, complex_conv, complex_linear
from utils.complex.heads import ComplexToReal
from utils.complex.linear import ComplexLinear

__all__ = [
    "AUTO_IMPL",
    "IMPLS",
    "ComplexConv1d",
    "ComplexConv2d",
    "ComplexConvTranspose2d",
    "ComplexDropout",
    "ComplexDropout2d",
    "ComplexLinear",
    "ComplexToReal",
    "complex_conv",
    "complex_linear",
]
