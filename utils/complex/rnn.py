"""Complex LSTM and GRU built from pairs of real recurrent networks (the DCCRN decomposition).

What "complex LSTM" means here
------------------------------
A complex linear map ``W = A + iB`` acts on ``z = x + iy`` as ``Wz = (Ax - By) + i(Bx + Ay)``:
apply each *real* map to the real and to the imaginary part, then combine with the
multiplication rule. The "complex LSTM" of DCCRN (Hu et al., Interspeech 2020), complexPyTorch and
asteroid replaces the linear maps A and B by two real LSTMs (same sizes, own weights)::

    out = (A(x) - B(y)) + i (B(x) + A(y)),     z = x + iy,

i.e. ``out = A[z] + i B[z]`` where a real recurrent operator acts on a complex sequence part by
part: ``A[z] := A(Re z) + i A(Im z)``. That takes four real recurrent passes per layer (A on x,
A on y, B on x, B on y); here the two passes of each network are batched into one call.

It is *not* a holomorphic LSTM and not C-linear: the gates are ordinary real sigmoid / tanh
LSTMs and real and imaginary parts never mix *inside* a recurrence -- only at each layer's output.
In particular ``f(e^{iφ} z) != e^{iφ} f(z)`` in general. (The fully complex alternative,
``torch.nn.LSTM(dtype=torch.cfloat)``, uses holomorphic sigmoid / tanh, which have poles, so
its hidden state is unbounded.) When A and B are replaced by linear maps, the rule reduces
exactly to a complex matrix product -- that is the motivation for the construction.

Stacking: every layer is its own complex cell (its own A, B pair) whose *complex* output feeds the
next layer: ``z_{l+1} = A_l[z_l] + i B_l[z_l]``. Stacking the real networks internally and
combining once at the end is a different (wrong) model (asteroid issue #360).

State
-----
Each layer runs four real recurrences, so its full state is four real hidden states (and four
cell states for the LSTM). They are carried as two complex tensors per kind, in the same
"part by part" convention as the outputs:

* ``h[l, 0] = h_A(Re z) + i h_A(Im z)`` -- state of network A on the real / imaginary part,
* ``h[l, 1] = h_B(Re z) + i h_B(Im z)`` -- state of network B likewise,

so ``h`` (and ``c``) have shape ``[num_layers, 2, batch, hidden_size]`` (independent of
``batch_first``, as in PyTorch). This is the *complete* recurrent state, so feeding the returned
state back in makes processing a sequence in chunks identical to one pass over the whole
sequence. (The seed's ``CLSTM`` mixed the states linearly, like outputs, and could not resume;
it also demanded h0/c0 -- here the default is the zero state.) Note that ``h[l, 0]`` is *not* the
layer's complex output: that is ``h[l, 0] + i h[l, 1]`` at the last step (see
:func:`combined_hidden`).
"""

from __future__ import annotations

from typing import NamedTuple

import torch
from torch import nn

__all__ = ["ComplexGRU", "ComplexLSTM", "ComplexLSTMState", "combined_hidden"]


class ComplexLSTMState(NamedTuple):
    """Recurrent state of :class:`ComplexLSTM`.

    Both fields are complex tensors of shape ``[num_layers, 2, batch, hidden_size]``; index 0 of
    the second axis holds network A (real weights), index 1 network B (imaginary weights); the
    real part of each is that network's state on the real input part, the imaginary part its
    state on the imaginary input part.

    Notebook: notebooks/05_complex_layers.ipynb
    """

    h: torch.Tensor
    c: torch.Tensor


def combined_hidden(h: torch.Tensor) -> torch.Tensor:
    """Complex hidden output of each layer from a state tensor: ``h[:, 0] + i h[:, 1]``.

    For the state returned by :class:`ComplexLSTM` / :class:`ComplexGRU` this equals each layer's
    complex output at the last time step (for the last layer: ``out[-1]``).

    Notebook: notebooks/05_complex_layers.ipynb

    Args:
        h: State tensor of shape ``[num_layers, 2, batch, hidden_size]`` (complex).

    Returns:
        Complex tensor of shape ``[num_layers, batch, hidden_size]``.
    """
    a, b = h[:, 0], h[:, 1]
    return torch.complex(a.real - b.imag, b.real + a.imag)


_COMPLEX_OF = {
    torch.float16: torch.complex32,
    torch.float32: torch.complex64,
    torch.float64: torch.complex128,
}


def _split(z: torch.Tensor) -> torch.Tensor:
    """[..., B, F] complex -> [..., 2B, F] real: real parts, then imaginary parts on the batch."""
    return torch.cat([z.real, z.imag], dim=-2)


def _merge(r: torch.Tensor) -> torch.Tensor:
    """Inverse of :func:`_split`."""
    re, im = r.chunk(2, dim=-2)
    return torch.complex(re, im)


class _ComplexRNNBase(nn.Module):
    """Stack of layers; each layer holds real networks ``A`` (real weights) and ``B`` (imag)."""

    _has_cell = False

    def __init__(
        self,
        input_size: int,
        hidden_size: int,
        num_layers: int = 1,
        batch_first: bool = False,
        bias: bool = True,
    ) -> None:
        super().__init__()
        if num_layers < 1:
            raise ValueError(f"num_layers must be >= 1, got {num_layers}")
        self.input_size = input_size
        self.hidden_size = hidden_size
        self.num_layers = num_layers
        self.batch_first = batch_first
        self.bias = bias
        self.rnn_re = nn.ModuleList()
        self.rnn_im = nn.ModuleList()
        for layer in range(num_layers):
            in_size = input_size if layer == 0 else hidden_size
            self.rnn_re.append(self._make(in_size, hidden_size, bias))
            self.rnn_im.append(self._make(in_size, hidden_size, bias))

    @staticmethod
    def _make(in_size: int, hidden_size: int, bias: bool) -> nn.Module:
        raise NotImplementedError

    def _real_dtype(self) -> torch.dtype:
        return self.rnn_re[0].weight_ih_l0.dtype

    def zero_state(
        self, batch_size: int, device: torch.device | str | None = None
    ) -> torch.Tensor:
        """Zero complex state tensor ``[num_layers, 2, batch_size, hidden_size]``."""
        cplx = _COMPLEX_OF[self._real_dtype()]
        if device is None:
            device = self.rnn_re[0].weight_ih_l0.device
        return torch.zeros(
            self.num_layers, 2, batch_size, self.hidden_size, dtype=cplx, device=device
        )

    def _check(self, x: torch.Tensor) -> torch.Tensor:
        if not x.is_complex():
            raise TypeError(
                f"{type(self).__name__} expects a complex input (e.g. x.to(torch.complex64)), "
                f"got {x.dtype}"
            )
        if x.dim() != 3:
            raise ValueError(
                f"{type(self).__name__} expects [T, B, F] (or [B, T, F] with batch_first), "
                f"got shape {tuple(x.shape)}"
            )
        if x.shape[-1] != self.input_size:
            raise ValueError(f"expected {self.input_size} input features, got {x.shape[-1]}")
        return x.transpose(0, 1) if self.batch_first else x

    def _check_state(self, s: torch.Tensor, batch: int, name: str) -> None:
        expected = (self.num_layers, 2, batch, self.hidden_size)
        if not s.is_complex() or tuple(s.shape) != expected:
            raise ValueError(
                f"{name} must be a complex tensor of shape {expected} (see the module "
                f"docstring), got {s.dtype} {tuple(s.shape)}"
            )

    def _layer(
        self, layer: int, x: torch.Tensor, states: tuple[torch.Tensor, ...]
    ) -> tuple[torch.Tensor, tuple[torch.Tensor, ...]]:
        """Run layer ``layer`` on complex ``x`` [T, B, F] with per-layer complex states.

        ``states`` holds one [2, B, H] complex tensor per state kind (h; or h and c).
        Returns the complex output [T, B, H] and the new states in the same layout.
        """
        xs = _split(x)  # [T, 2B, F]: A and B both see (Re z, Im z) stacked on the batch axis
        outs = []
        new: list[list[torch.Tensor]] = [[] for _ in states]
        for net_idx, net in enumerate((self.rnn_re[layer], self.rnn_im[layer])):
            real_states = tuple(_split(s[net_idx]).unsqueeze(0) for s in states)
            arg = real_states if self._has_cell else real_states[0]
            y, final = net(xs, arg)
            finals = final if self._has_cell else (final,)
            outs.append(_merge(y))  # A[z] or B[z], complex [T, B, H]
            for k, f in enumerate(finals):
                new[k].append(_merge(f[0]))
        a_z, b_z = outs
        # (A + iB)-rule: A[z] + i B[z] = (A(x) - B(y)) + i (B(x) + A(y))
        out = torch.complex(a_z.real - b_z.imag, b_z.real + a_z.imag)
        return out, tuple(torch.stack(parts) for parts in new)

    def _run(
        self, x: torch.Tensor, states: tuple[torch.Tensor, ...]
    ) -> tuple[torch.Tensor, tuple[torch.Tensor, ...]]:
        x = self._check(x)
        collected: list[list[torch.Tensor]] = [[] for _ in states]
        for layer in range(self.num_layers):
            x, new = self._layer(layer, x, tuple(s[layer] for s in states))
            for k, s in enumerate(new):
                collected[k].append(s)
        out = x.transpose(0, 1) if self.batch_first else x
        return out, tuple(torch.stack(parts) for parts in collected)

    def extra_repr(self) -> str:
        return (
            f"{self.input_size}, {self.hidden_size}, num_layers={self.num_layers}, "
            f"batch_first={self.batch_first}, bias={self.bias}"
        )


class ComplexLSTM(_ComplexRNNBase):
    """Complex LSTM by the complex-multiplication rule on two real LSTMs per layer (DCCRN).

    Per layer ``l`` with real LSTMs ``A_l`` (``rnn_re[l]``) and ``B_l`` (``rnn_im[l]``):
    ``out = (A(x) - B(y)) + i (B(x) + A(y))`` for input ``z = x + iy``; the complex output of
    each layer feeds the next. Not holomorphic, not C-linear: see the module docstring for what
    this construction is and how the state is laid out.

    Notebook: notebooks/05_complex_layers.ipynb

    Args:
        input_size: Complex input features F.
        hidden_size: Complex hidden features H (each real LSTM has H units).
        num_layers: Number of stacked complex layers.
        batch_first: Input/output as [B, T, F] instead of [T, B, F].
        bias: Use biases in the real LSTMs.
    """

    _has_cell = True

    @staticmethod
    def _make(in_size: int, hidden_size: int, bias: bool) -> nn.Module:
        return nn.LSTM(in_size, hidden_size, num_layers=1, bias=bias)

    def init_state(
        self, batch_size: int, device: torch.device | str | None = None
    ) -> ComplexLSTMState:
        """Zero state (the default when ``state`` is None)."""
        return ComplexLSTMState(
            self.zero_state(batch_size, device), self.zero_state(batch_size, device)
        )

    def forward(
        self, x: torch.Tensor, state: tuple[torch.Tensor, torch.Tensor] | None = None
    ) -> tuple[torch.Tensor, ComplexLSTMState]:
        """Run the sequence.

        Args:
            x: Complex input [T, B, F] ([B, T, F] with ``batch_first``).
            state: ``(h, c)`` as returned by a previous call, each complex
                ``[num_layers, 2, B, H]``; ``None`` for the zero state.

        Returns:
            ``(out, state)``: complex output of the last layer for every step ([T, B, H] or
            [B, T, H]) and the final :class:`ComplexLSTMState`, which can be passed back to
            continue the sequence.
        """
        batch = x.shape[0] if self.batch_first else x.shape[1]
        if state is None:
            state = self.init_state(batch, x.device)
        h, c = state
        self._check_state(h, batch, "h")
        self._check_state(c, batch, "c")
        out, (h_new, c_new) = self._run(x, (h, c))
        return out, ComplexLSTMState(h_new, c_new)


class ComplexGRU(_ComplexRNNBase):
    """Complex GRU by the complex-multiplication rule on two real GRUs per layer (DCCRN-style).

    Same construction and state layout as :class:`ComplexLSTM`, with :class:`torch.nn.GRU` in
    place of the LSTM and only a hidden state.

    Notebook: notebooks/05_complex_layers.ipynb

    Args:
        input_size: Complex input features F.
        hidden_size: Complex hidden features H (each real GRU has H units).
        num_layers: Number of stacked complex layers.
        batch_first: Input/output as [B, T, F] instead of [T, B, F].
        bias: Use biases in the real GRUs.
    """

    @staticmethod
    def _make(in_size: int, hidden_size: int, bias: bool) -> nn.Module:
        return nn.GRU(in_size, hidden_size, num_layers=1, bias=bias)

    def init_state(
        self, batch_size: int, device: torch.device | str | None = None
    ) -> torch.Tensor:
        """Zero state (the default when ``state`` is None)."""
        return self.zero_state(batch_size, device)

    def forward(
        self, x: torch.Tensor, state: torch.Tensor | None = None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Run the sequence.

        Args:
            x: Complex input [T, B, F] ([B, T, F] with ``batch_first``).
            state: Complex ``[num_layers, 2, B, H]`` as returned by a previous call; ``None``
                for the zero state.

        Returns:
            ``(out, h)``: complex output of the last layer for every step and the final state.
        """
        batch = x.shape[0] if self.batch_first else x.shape[1]
        if state is None:
            state = self.init_state(batch, x.device)
        self._check_state(state, batch, "state")
        out, (h_new,) = self._run(x, (state,))
        return out, h_new
