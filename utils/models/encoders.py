"""Front-ends for the mel codec: the seed's CBHG and Inception-like encoders, done right.

Both map a normalised log-mel ``[B, n_mels, T]`` (mel bands as channels, frames as time) to
latents ``[B, D, T']`` with ``T' = T / 2**downsample_log2``, so either can replace the plain
convolutional encoder of :class:`utils.models.vqvae.MelVQVAE` at the same bit rate
(``VQVAEConfig(encoder="cbhg")`` or ``"inception"``).

* :class:`CBHG` (Tacotron, Wang et al. 2017): a bank of 1-D convolutions of widths 1..K
  (each sees a different context), max-pooling over time, two projection convolutions with a
  residual connection, highway layers with a **sigmoid** gate, and a bidirectional GRU that
  starts from a **zero** state. The 2022 seed created its layers inside ``forward`` (so they
  never trained), threw the bank's output away, gated with a softmax, drew a random GRU state
  on every call and read mel bands as time; every module here is registered in ``__init__``.
* :class:`InceptionFrontEnd`: parallel branches of different receptive fields (1, 3, 3 with
  dilation 2, 3 with dilation 4, and max-pool + 1×1), each computed once and concatenated,
  with a non-linearity between every convolution, for any input length. The seed computed its
  branches twice, had no non-linearity between strided convolutions and a hard-coded size.

Notebook: notebooks/04_front_ends.ipynb
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

__all__ = ["BatchNormConv1d", "Highway", "CBHG", "InceptionFrontEnd", "Downsample",
           "CBHGEncoder", "InceptionEncoder"]


class BatchNormConv1d(nn.Module):
    """Conv1d (same length) → BatchNorm1d → optional activation.

    Notebook: notebooks/04_front_ends.ipynb
    """

    def __init__(self, c_in: int, c_out: int, kernel: int, *, dilation: int = 1,
                 activation: nn.Module | None = None) -> None:
        super().__init__()
        total = dilation * (kernel - 1)  # 'same' padding, also for even kernels
        self.pad = nn.ConstantPad1d((total // 2, total - total // 2), 0.0)
        self.conv = nn.Conv1d(c_in, c_out, kernel, dilation=dilation, bias=False)
        self.bn = nn.BatchNorm1d(c_out)
        self.activation = activation if activation is not None else nn.Identity()

    def forward(self, x: Tensor) -> Tensor:  # noqa: D102
        return self.activation(self.bn(self.conv(self.pad(x))))


class Highway(nn.Module):
    """One highway layer: ``y = H(x)·T(x) + x·(1 − T(x))`` with ``T = sigmoid(W_T x + b_T)``.

    The gate bias starts at −1 so that a new layer mostly carries its input (Srivastava et
    al., 2015). Works on ``[..., features]``.

    Notebook: notebooks/04_front_ends.ipynb
    """

    def __init__(self, features: int) -> None:
        super().__init__()
        self.h = nn.Linear(features, features)
        self.t = nn.Linear(features, features)
        nn.init.constant_(self.t.bias, -1.0)

    def gate(self, x: Tensor) -> Tensor:
        """The transform gate T(x), in (0, 1) element-wise.

        Notebook: notebooks/04_front_ends.ipynb
        """
        return torch.sigmoid(self.t(x))

    def forward(self, x: Tensor) -> Tensor:  # noqa: D102
        t = self.gate(x)
        return torch.relu(self.h(x)) * t + x * (1.0 - t)


class CBHG(nn.Module):
    """Convolution bank + highway network + bidirectional GRU, ``[B, C, T] → [B, C, T]``.

    Notebook: notebooks/04_front_ends.ipynb

    Args:
        channels: Input and output channels C (even, for the two GRU directions).
        bank_size: K: the bank has convolutions of widths 1..K.
        bank_channels: Channels of each bank convolution.
        projection_channels: Channels of the first projection convolution.
        highway_layers: Number of highway layers.
    """

    def __init__(self, channels: int, *, bank_size: int = 8, bank_channels: int = 64,
                 projection_channels: int = 128, highway_layers: int = 4) -> None:
        super().__init__()
        if channels % 2:
            raise ValueError(f"channels must be even (two GRU directions), got {channels}")
        self.bank = nn.ModuleList(
            BatchNormConv1d(channels, bank_channels, k, activation=nn.ReLU())
            for k in range(1, bank_size + 1))
        self.pool = nn.Sequential(nn.ConstantPad1d((0, 1), float("-inf")),
                                  nn.MaxPool1d(2, stride=1))  # keeps the length
        self.projections = nn.Sequential(
            BatchNormConv1d(bank_size * bank_channels, projection_channels, 3,
                            activation=nn.ReLU()),
            BatchNormConv1d(projection_channels, channels, 3))  # linear: added to the input
        self.highways = nn.Sequential(*(Highway(channels) for _ in range(highway_layers)))
        self.gru = nn.GRU(channels, channels // 2, batch_first=True, bidirectional=True)

    def forward(self, x: Tensor) -> Tensor:  # noqa: D102
        bank = torch.cat([conv(x) for conv in self.bank], dim=1)   # [B, K·bank, T]
        y = self.projections(self.pool(bank)) + x                  # residual
        y = self.highways(y.transpose(1, 2))                       # [B, T, C]
        h0 = y.new_zeros(2, y.shape[0], y.shape[2] // 2)           # zero state, every call
        out, _ = self.gru(y, h0)
        return out.transpose(1, 2)


class InceptionFrontEnd(nn.Module):
    """Parallel receptive fields, concatenated: ``[B, C_in, T] → [B, C_out, T]``.

    Branches (each ``C_out / 5`` channels, the remainder to the first): 1×1; width 3;
    width 3 dilated 2; width 3 dilated 4; max-pool 3 → 1×1. Each branch has its own
    activation; a 1×1 convolution mixes the concatenation.

    Notebook: notebooks/04_front_ends.ipynb
    """

    BRANCHES = ("1", "3", "3 dil. 2", "3 dil. 4", "pool + 1")

    def __init__(self, c_in: int, c_out: int) -> None:
        super().__init__()
        width = c_out // 5
        widths = [c_out - 4 * width] + [width] * 4
        act = nn.GELU
        self.branches = nn.ModuleList([
            nn.Sequential(nn.Conv1d(c_in, widths[0], 1), act()),
            nn.Sequential(nn.Conv1d(c_in, widths[1], 3, padding=1), act()),
            nn.Sequential(nn.Conv1d(c_in, widths[2], 3, padding=2, dilation=2), act()),
            nn.Sequential(nn.Conv1d(c_in, widths[3], 3, padding=4, dilation=4), act()),
            nn.Sequential(nn.MaxPool1d(3, stride=1, padding=1), nn.Conv1d(c_in, widths[4], 1),
                          act()),
        ])
        self.mix = nn.Conv1d(c_out, c_out, 1)

    def branch_outputs(self, x: Tensor) -> list[Tensor]:
        """Each branch's output (computed once), for figures of what each responds to.

        Notebook: notebooks/04_front_ends.ipynb
        """
        return [branch(x) for branch in self.branches]

    def forward(self, x: Tensor) -> Tensor:  # noqa: D102
        return self.mix(torch.cat(self.branch_outputs(x), dim=1))


class Downsample(nn.Sequential):
    """``n`` times (GELU → stride-2 convolution), then GELU → 1×1 to ``out`` channels.

    Notebook: notebooks/04_front_ends.ipynb
    """

    def __init__(self, channels: int, out: int, n: int) -> None:
        layers: list[nn.Module] = []
        for _ in range(n):
            layers += [nn.GELU(), nn.Conv1d(channels, channels, 4, stride=2, padding=1)]
        super().__init__(*layers, nn.GELU(), nn.Conv1d(channels, out, 1))


class CBHGEncoder(nn.Module):
    """The codec encoder with a CBHG front-end: 1×1 in → CBHG → downsampling → latents.

    Notebook: notebooks/04_front_ends.ipynb
    """

    def __init__(self, n_mels: int, channels: int, latent_dim: int, downsample_log2: int,
                 **cbhg) -> None:
        super().__init__()
        self.inp = nn.Conv1d(n_mels, channels, 1)
        self.cbhg = CBHG(channels, **cbhg)
        self.out = Downsample(channels, latent_dim, downsample_log2)

    def forward(self, x: Tensor) -> Tensor:  # noqa: D102
        return self.out(self.cbhg(self.inp(x)))


class InceptionEncoder(nn.Module):
    """The codec encoder with an Inception-like front-end (two stacked blocks).

    Notebook: notebooks/04_front_ends.ipynb
    """

    def __init__(self, n_mels: int, channels: int, latent_dim: int, downsample_log2: int
                 ) -> None:
        super().__init__()
        self.front = nn.Sequential(InceptionFrontEnd(n_mels, channels), nn.GELU(),
                                   InceptionFrontEnd(channels, channels))
        self.out = Downsample(channels, latent_dim, downsample_log2)

    def forward(self, x: Tensor) -> Tensor:  # noqa: D102
        return self.out(self.front(x))
