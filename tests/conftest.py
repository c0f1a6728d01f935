"""Shared fixtures: synthetic speech-like signals and paths to optional shared data."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared"


@pytest.fixture(autouse=True, scope="module")
def _single_thread():
    """Unit tests use tiny tensors: one intra-op thread avoids OpenMP barrier stalls that make
    small ops 10-40x slower on a loaded 2-core machine. (Notebooks and subprocesses choose
    their own thread counts.)"""
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(previous)


@pytest.fixture
def voiced() -> np.ndarray:
    """1 s of a vowel-like harmonic signal with a pitch glide and an amplitude envelope."""
    sr = 16000
    t = np.arange(sr) / sr
    f0 = 120 + 40 * t
    phase = 2 * np.pi * np.cumsum(f0) / sr
    y = sum(np.sin(k * phase) / k for k in range(1, 30))
    env = np.sin(np.pi * t) ** 2
    return (0.3 * env * y / np.max(np.abs(y))).astype(np.float32)


@pytest.fixture
def bad_audio_dir() -> Path:
    d = SHARED / "bad_audio"
    if not d.is_dir():
        pytest.skip("../shared/bad_audio not present")
    return d
