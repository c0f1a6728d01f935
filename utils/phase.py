"""Phase retrieval: a waveform from an STFT magnitude alone, by iteration or by integration.

Every reconstruction in the collection that does not predict a phase ends here:

* :func:`griffin_lim` alternates two projections (Griffin & Lim, 1984): onto the set of
  spectrograms with the given magnitude, ``P_A(X) = A · X / |X|``, and onto the set of
  *consistent* spectrograms (those that are the STFT of some signal), ``P_C(X) = STFT(ISTFT(X))``.
  With ``momentum`` α > 0 it is *fast* Griffin-Lim (Perraudin, Balazs & Søndergaard, 2013):
  ``T_n = P_C(P_A(C_{n-1})); C_n = T_n + α (T_n − T_{n-1})``.
* :func:`pghi` integrates the phase from the magnitude's own gradients (phase-gradient
  heuristic integration, Průša, Balazs & Søndergaard, 2017): for a Gaussian window the STFT
  is analytic up to a known factor, so the phase's gradient is fixed by the log-magnitude's
  (Cauchy-Riemann). With the collection's STFT (frame ``n`` centred at ``n·a``, FFT index from
  the frame's start, ``M``-point window, hop ``a``), for bin ``m`` and frame ``n``:

  ``∂φ/∂n = (a M / γ) ∂ log|X| / ∂m + 2π a m / M``  (radians per hop),
  ``∂φ/∂m = −(γ / (a M)) ∂ log|X| / ∂n − π``        (radians per bin),

  where ``γ = 0.25645 · M²`` makes a Gaussian as wide as the Hann window. The phase is
  integrated bin by bin from the loudest, always into the loudest neighbour not yet reached
  (trapezoidal rule), so it follows the ridges of the spectrogram.

* With the mel it came from (``mel=``), :func:`griffin_lim` also re-estimates the magnitude at
  every iteration instead of keeping the one inverted from the mel once: one multiplicative
  non-negative least-squares step (:func:`mel_magnitude_step`) from the magnitude of the
  current consistent estimate toward the mel, ``B ← |C| ⊙ Fᵀ(M ⊘ F|C|) ⊘ Fᵀ1``. The harmonics
  that 80 mel bands smear out come back from the consistent spectrogram, while ``F B = M`` is
  pursued; on real speech this halves Griffin-Lim's log-mel L1 (notebook 08).

All run on the collection's STFT (:mod:`utils.audio`: periodic Hann window, centred frames,
zero padding), in torch (a batch at a time) so that :mod:`utils.models.degli` can interleave a
network with the same projections.

Notebook: notebooks/08_vocoders.ipynb
"""

from __future__ import annotations

import heapq
from collections.abc import Sequence

import numpy as np
import torch
from torch import Tensor

from utils.errors import OptionError
from utils.features import FEATURES, FeatureConfig, mel_filterbank

__all__ = ["INITS", "GAMMA_HANN", "torch_stft", "torch_istft", "project_consistent",
           "project_magnitude", "mel_magnitude_step", "pghi", "phase_gradients",
           "initial_phase", "griffin_lim", "spectral_convergence"]

#: Initial phases :func:`griffin_lim` knows.
INITS = ("random", "zero", "pghi")
#: ``γ / M²`` of the Gaussian that best matches a Hann window of ``M`` samples (Průša et al.).
GAMMA_HANN = 0.25645


def _window(cfg: FeatureConfig, device: torch.device | str = "cpu") -> Tensor:
    return torch.hann_window(cfg.n_fft, periodic=True, device=device)


def torch_stft(y: Tensor, cfg: FeatureConfig = FEATURES) -> Tensor:
    """The collection's STFT of a batch ``[B, samples]`` → ``[B, bins, frames]`` complex64.

    Same as :func:`utils.audio.stft` (librosa): periodic Hann window, centred frames, zero
    padding.

    Notebook: notebooks/08_vocoders.ipynb
    """
    return torch.stft(y, cfg.n_fft, cfg.hop_length, window=_window(cfg, y.device), center=True,
                      pad_mode="constant", return_complex=True)


def torch_istft(X: Tensor, cfg: FeatureConfig = FEATURES, length: int | None = None) -> Tensor:
    """Inverse of :func:`torch_stft` (weighted overlap-add) → ``[B, samples]``.

    Notebook: notebooks/08_vocoders.ipynb
    """
    frames = X.shape[-1]
    return torch.istft(X, cfg.n_fft, cfg.hop_length, window=_window(cfg, X.device),
                       center=True, length=length or (frames - 1) * cfg.hop_length)


def project_consistent(X: Tensor, cfg: FeatureConfig = FEATURES,
                       length: int | None = None) -> Tensor:
    """``P_C``: the nearest consistent spectrogram, ``STFT(ISTFT(X))``.

    Notebook: notebooks/08_vocoders.ipynb
    """
    return torch_stft(torch_istft(X, cfg, length), cfg)[..., : X.shape[-1]]


def project_magnitude(X: Tensor, magnitude: Tensor, eps: float = 1e-12) -> Tensor:
    """``P_A``: keep the phase of ``X``, impose the magnitude ``A`` (``A · X / |X|``).

    Notebook: notebooks/08_vocoders.ipynb
    """
    return magnitude * X / X.abs().clamp_min(eps)


def _filterbank(cfg: FeatureConfig, device: torch.device | str = "cpu") -> Tensor:
    return torch.from_numpy(np.array(mel_filterbank(cfg), dtype=np.float32)).to(device)


def mel_magnitude_step(magnitude: Tensor, mel: Tensor, cfg: FeatureConfig = FEATURES,
                       fb: Tensor | None = None) -> Tensor:
    """One multiplicative NNLS step of a magnitude toward a mel: ``B ⊙ Fᵀ(M ⊘ FB) ⊘ Fᵀ1``.

    Lee & Seung's update with the filterbank ``F`` fixed: it keeps ``B ≥ 0``, never increases
    ``‖F B − M‖`` (in its divergence), and, started from the magnitude of a consistent
    spectrogram, keeps that spectrogram's fine structure inside each band.

    Notebook: notebooks/08_vocoders.ipynb

    Args:
        magnitude: ``B`` ``[..., bins, frames]`` (≥ 0).
        mel: ``M`` ``[..., n_mels, frames]`` (the linear mel, power ``cfg.power`` = 1).
        cfg: The feature settings of the mel.
        fb: The filterbank as a tensor (computed when omitted).

    Returns:
        The new magnitude, the shape of ``magnitude``.
    """
    F = _filterbank(cfg, magnitude.device) if fb is None else fb
    norm = F.sum(0).clamp_min(1e-10)[:, None]                     # Fᵀ1, [bins, 1]
    ratio = mel / (F @ magnitude).clamp_min(1e-10)
    return magnitude * (F.T @ ratio) / norm


def spectral_convergence(X: Tensor, magnitude: Tensor) -> float:
    """``‖ |STFT(ISTFT(X))| − A ‖ / ‖A‖``: how far a phase is from fitting the magnitude.

    Notebook: notebooks/08_vocoders.ipynb
    """
    C = project_consistent(X)
    return float(torch.linalg.norm(C.abs() - magnitude) / torch.linalg.norm(magnitude))


# --------------------------------------------------------------------------------------------
# Phase-gradient heuristic integration
# --------------------------------------------------------------------------------------------


def _central_diff(x: np.ndarray, axis: int) -> np.ndarray:
    """Centred differences along ``axis``, one-sided at the ends (``np.gradient``)."""
    if x.shape[axis] < 2:
        return np.zeros_like(x)
    return np.gradient(x, axis=axis)


def phase_gradients(magnitude: np.ndarray, cfg: FeatureConfig = FEATURES,
                    gamma: float | None = None) -> tuple[np.ndarray, np.ndarray]:
    """The phase gradient a magnitude implies: ``(∂φ/∂n, ∂φ/∂m)`` (per hop, per bin).

    Notebook: notebooks/08_vocoders.ipynb

    Args:
        magnitude: ``|X|`` of shape ``(bins, frames)``.
        cfg: The STFT's settings (``n_fft`` = window length ``M``, ``hop_length`` = ``a``).
        gamma: ``γ`` of the Gaussian window (default ``0.25645 M²``, the Hann match).

    Returns:
        ``(time_gradient, frequency_gradient)``, each ``(bins, frames)``, float64.
    """
    M, a = cfg.n_fft, cfg.hop_length
    gamma = GAMMA_HANN * M**2 if gamma is None else gamma
    logs = np.log(np.maximum(np.asarray(magnitude, dtype=np.float64), 1e-30))
    m = np.arange(logs.shape[0])[:, None]
    tgrad = (a * M / gamma) * _central_diff(logs, 0) + 2 * np.pi * a * m / M
    fgrad = -(gamma / (a * M)) * _central_diff(logs, 1) - np.pi
    return tgrad, fgrad


def pghi(magnitude: np.ndarray, cfg: FeatureConfig = FEATURES, *, tol: float = 1e-4,
         seed: int = 0) -> np.ndarray:
    """Phase from magnitude by phase-gradient heuristic integration (Průša et al., 2017).

    Bins quieter than ``tol`` × the loudest keep a random phase (they carry nothing); the
    rest are reached from the loudest bin outward: the loudest bin not yet reached is taken
    (its phase set to 0 if nothing reached it), and each neighbour it has in time or frequency
    gets its phase by the trapezoidal rule on :func:`phase_gradients`.

    Notebook: notebooks/08_vocoders.ipynb

    Args:
        magnitude: ``|X|`` of shape ``(bins, frames)``.
        cfg: The STFT's settings.
        tol: Relative magnitude below which a bin is not integrated.
        seed: Seed of the random phase of the quiet bins.

    Returns:
        The phase, ``(bins, frames)``, float64 radians.
    """
    s = np.asarray(magnitude, dtype=np.float64)
    if s.ndim != 2:
        raise ValueError(f"expected a magnitude (bins, frames), got {s.shape}")
    F, T = s.shape
    rng = np.random.default_rng(seed)
    phase = rng.uniform(-np.pi, np.pi, size=(F, T))
    peak = float(s.max()) if s.size else 0.0
    if peak <= 0.0:
        return phase
    tgrad, fgrad = phase_gradients(s, cfg)
    # flat arrays and lists: the loop below is the hot path
    todo = (s > tol * peak).ravel()
    ph, mag = phase.ravel(), s.ravel()
    tg, fg = tgrad.ravel().tolist(), fgrad.ravel().tolist()
    ph_list = ph.tolist()
    neg_mag = (-mag).tolist()
    order = [int(i) for i in np.argsort(-mag, kind="stable") if todo[i]]
    todo_list = todo.tolist()
    heap: list[tuple[float, int]] = []
    k = 0
    while True:
        if not heap:  # start a new island at the loudest bin not yet reached
            while k < len(order) and not todo_list[order[k]]:
                k += 1
            if k == len(order):
                break
            i = order[k]
            todo_list[i] = False
            ph_list[i] = 0.0
            heapq.heappush(heap, (neg_mag[i], i))
        _, i = heapq.heappop(heap)
        f, t = divmod(i, T)
        p = ph_list[i]
        if t + 1 < T and todo_list[i + 1]:
            ph_list[i + 1] = p + 0.5 * (tg[i] + tg[i + 1])
            todo_list[i + 1] = False
            heapq.heappush(heap, (neg_mag[i + 1], i + 1))
        if t > 0 and todo_list[i - 1]:
            ph_list[i - 1] = p - 0.5 * (tg[i] + tg[i - 1])
            todo_list[i - 1] = False
            heapq.heappush(heap, (neg_mag[i - 1], i - 1))
        if f + 1 < F and todo_list[i + T]:
            ph_list[i + T] = p + 0.5 * (fg[i] + fg[i + T])
            todo_list[i + T] = False
            heapq.heappush(heap, (neg_mag[i + T], i + T))
        if f > 0 and todo_list[i - T]:
            ph_list[i - T] = p - 0.5 * (fg[i] + fg[i - T])
            todo_list[i - T] = False
            heapq.heappush(heap, (neg_mag[i - T], i - T))
    return np.asarray(ph_list, dtype=np.float64).reshape(F, T)


# --------------------------------------------------------------------------------------------
# Griffin-Lim
# --------------------------------------------------------------------------------------------


def _check(n_iter: int, momentum: float, init: str | np.ndarray) -> None:
    if int(n_iter) != n_iter or n_iter < 0:
        raise OptionError("n_iter", f"must be a whole number ≥ 0, got {n_iter}")
    if not np.isfinite(momentum) or not 0.0 <= momentum < 2.0:
        raise OptionError("momentum", f"must be in [0, 2), got {momentum}")
    if isinstance(init, str) and init not in INITS:
        raise OptionError("init", f"must be one of {INITS} or an array of phases, got {init!r}")


def initial_phase(magnitude: np.ndarray, cfg: FeatureConfig = FEATURES,
                  init: str | np.ndarray = "random", seed: int = 0) -> np.ndarray:
    """The phase Griffin-Lim starts from: ``"random"`` (uniform), ``"zero"``, ``"pghi"``, or
    an array of phases of the magnitude's shape.

    Notebook: notebooks/08_vocoders.ipynb
    """
    shape = np.shape(magnitude)
    if not isinstance(init, str):
        phase = np.asarray(init, dtype=np.float64)
        if phase.shape != shape:
            raise OptionError("init", f"phases of shape {phase.shape}, magnitude {shape}")
        return phase
    if init == "random":  # librosa's draw, so the same seed gives librosa's start
        return 2 * np.pi * np.random.RandomState(seed).random_sample(shape)
    if init == "zero":
        return np.zeros(shape)
    return pghi(magnitude, cfg, seed=seed)


@torch.no_grad()
def griffin_lim(magnitude: np.ndarray, cfg: FeatureConfig = FEATURES, *, n_iter: int = 32,
                momentum: float = 0.99, init: str | np.ndarray = "random",
                length: int | None = None, seed: int = 0, mel: np.ndarray | None = None,
                snapshots: Sequence[int] | None = None) -> np.ndarray | dict[int, np.ndarray]:
    """(Fast) Griffin-Lim from an initial phase: ``n_iter`` rounds of ``P_C ∘ P_A``.

    Notebook: notebooks/08_vocoders.ipynb

    Args:
        magnitude: ``|X|`` of shape ``(bins, frames)``.
        cfg: The STFT's settings.
        n_iter: Iterations (0: the initial phase alone).
        momentum: Fast Griffin-Lim's α (0: the original algorithm; 0.99 the usual choice).
        init: ``"random"``, ``"zero"``, ``"pghi"`` or an array of phases.
        length: Output length in samples (default ``(frames - 1) · hop``).
        seed: Seed of a random initial phase (and of PGHI's quiet bins).
        mel: The (linear) mel the magnitude came from: the magnitude is then re-estimated
            toward it at every iteration (:func:`mel_magnitude_step`); ``None`` keeps
            ``magnitude`` fixed (classic Griffin-Lim).
        snapshots: Iteration counts at which to also return the signal (each ≤ ``n_iter``):
            one run then gives a whole iteration sweep.

    Returns:
        The signal (float32); with ``snapshots``, ``{iterations: signal}``.
    """
    _check(n_iter, momentum, init)
    A = torch.as_tensor(np.asarray(magnitude, dtype=np.float32))[None]
    phase = torch.as_tensor(initial_phase(magnitude, cfg, init, seed), dtype=torch.float32)[None]
    X = torch.polar(A, phase)
    M = None if mel is None else torch.as_tensor(np.asarray(mel, dtype=np.float32))[None]
    if M is not None and M.shape[-1] != A.shape[-1]:
        raise ValueError(f"mel has {M.shape[-1]} frames, the magnitude {A.shape[-1]}")
    fb = None if M is None else _filterbank(cfg)
    wanted = set(snapshots or ())
    if any(int(s) > n_iter or int(s) < 0 for s in wanted):
        raise OptionError("snapshots", f"must lie in [0, {n_iter}], got {sorted(wanted)}")
    out: dict[int, np.ndarray] = {}

    def signal(Z: Tensor) -> np.ndarray:
        return torch_istft(project_magnitude(Z, A), cfg, length)[0].numpy().astype(np.float32)

    if 0 in wanted:
        out[0] = signal(X)
    previous: Tensor | None = None
    C = X
    for k in range(1, n_iter + 1):
        T_k = project_consistent(project_magnitude(C, A), cfg, length)
        # no momentum on the first step (there is no previous one), as in librosa
        C = T_k if previous is None or not momentum else T_k + momentum * (T_k - previous)
        previous = T_k
        if M is not None:
            A = mel_magnitude_step(C.abs(), M, cfg, fb)
        if k in wanted:
            out[k] = signal(C)
    if snapshots is not None:
        return out
    return signal(C)
