"""Vector quantizers: plain / EMA codebooks, residual VQ with quantizer dropout, bit rates.

Everything here quantizes the **last** dimension of its input: a latent of shape ``[..., D]`` is
read as ``prod(...)`` vectors of dimension ``D``. A convolutional encoder that produces
``[B, C, H, W]`` must therefore be permuted to ``[B, H, W, C]`` first. The 2022 seed notebook
(``vq_VAE_for_Melspectrogram.ipynb``, defect "VQ latent layout bug") reshaped the channel-first
tensor with ``reshape(-1, D)`` and, because ``H * W`` happened to equal ``D``, silently quantized
each channel's whole 32x8 map instead of the D-dimensional vector at each time-frequency
position. :class:`VectorQuantizer` refuses inputs whose last dimension is not ``dim``.

Maths (van den Oord et al. 2017, with the usual refinements):

* nearest code by squared L2 distance, computed in the expanded form
  ``||x||^2 - 2 x.e + ||e||^2`` with one ``addmm``. The ``||x||^2`` term is the same for every
  code, so the argmin only needs ``||e||^2 - 2 x.e`` (this also avoids cancellation when
  ``||x||`` is large);
* straight-through estimator: the forward pass outputs the code, the backward pass hands the
  gradient to the encoder unchanged;
* commitment loss ``beta * ||x - sg[e]||^2`` (beta = 0.25) and, for a gradient-trained
  codebook, the codebook loss ``||sg[x] - e||^2``;
* EMA codebook (decay 0.99) with Laplace smoothing of the cluster sizes, updated in place from
  ``bincount`` counts and per-code sums (a sparse assignment matrix, not the seed's dense
  one-hot). With EMA the codebook is a buffer, so there is **no** codebook loss term (the seed
  added one that had no gradient);
* k-means initialisation from the first training batch, dead-code restart with a threshold
  relative to the expected count per code, and usage statistics (perplexity, share of codes
  used, entropy in bits);
* residual VQ with quantizer dropout, so one model serves a ladder of bit rates
  (``bitrate_bps``).

Under ``torch.distributed`` (e.g. DDP with gloo on CPU) the EMA statistics are all-reduced, and
k-means initialisation, dead-code restarts and the quantizer-dropout depth are decided on rank 0
and broadcast, so every rank keeps an identical codebook. Collectives are only issued in training
mode; evaluation never communicates (it may run on one rank only).

Where each part lives (every name is importable from ``utils.vq`` too):

- :mod:`utils.vq.quantizers`  the interface: :class:`VectorQuantizer`, :class:`ResidualVQ` and
  what their ``forward`` returns (:class:`VQOutput`)
- :mod:`utils.vq.codebook`    the state a quantizer keeps and how training moves it: the codebook,
  its EMA statistics, k-means start, dead-code restarts, the usage window (:class:`Codebook`)
- :mod:`utils.vq.functional`  stateless pieces: nearest code, the one-hot reference, k-means, the
  fused straight-through + commitment autograd node
- :mod:`utils.vq.bits`        what codes carry: entropy, codebook usage, bit rate

Notebook: notebooks/02_vq_vae.ipynb
"""

from utils.vq.bits import bitrate_bps, code_entropy, codebook_usage
from utils.vq.codebook import Codebook
from utils.vq.functional import kmeans, nearest_code, onehot_quantize
from utils.vq.quantizers import ResidualVQ, VectorQuantizer, VQOutput

__all__ = [
    "VQOutput",
    "VectorQuantizer",
    "ResidualVQ",
    "Codebook",
    "nearest_code",
    "onehot_quantize",
    "kmeans",
    "bitrate_bps",
    "code_entropy",
    "codebook_usage",
]
