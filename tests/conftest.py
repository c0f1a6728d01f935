"""Shared fixtures: synthetic speech-like signals and paths to optional shared data."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
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


@pytest.fixture(scope="session")
def voiced_words(tmp_path_factory) -> Path:
    """A Speech Commands folder: 2 words x 6 speakers of synthetic voiced sounds
    (speakers 4 and 5 in the testing and validation lists)."""
    root = tmp_path_factory.mktemp("speech")
    rng = np.random.default_rng(0)
    sr = 16000
    for w, word in enumerate(["aa", "ee"]):
        (root / word).mkdir()
        for s in range(6):
            n = int(sr * (0.6 + 0.1 * s))
            t = np.arange(n) / sr
            f0 = 100 + 20 * s + 30 * w
            y = sum(np.sin(2 * np.pi * k * f0 * t) / k for k in range(1, 12))
            y = 0.3 * y * np.hanning(n) / np.abs(y).max() + 0.003 * rng.standard_normal(n)
            sf.write(root / word / f"spk{s}_nohash_0.flac", y.astype(np.float32), sr)
    (root / "validation_list.txt").write_text("aa/spk5_nohash_0.flac\nee/spk5_nohash_0.flac\n")
    (root / "testing_list.txt").write_text("aa/spk4_nohash_0.flac\n")
    return root


def _resumes_exactly(run, root: Path, *extra: str) -> None:
    """Train 4 steps in one go, and 2 + 2 steps with a stop and ``--resume``: the two runs'
    ``last.pt`` weights must be equal bit for bit. ``run(out, *args)`` trains into ``out``."""
    run(root / "full", "--steps", "4", *extra)
    run(root / "cut", "--steps", "4", "--stop-at", "2", *extra)
    run(root / "cut", "--steps", "4", "--resume", *extra)
    a = torch.load(root / "full" / "last.pt", weights_only=True)["model"]
    b = torch.load(root / "cut" / "last.pt", weights_only=True)["model"]
    assert all(torch.equal(a[k], b[k]) for k in a)


@pytest.fixture
def assert_resumes_exactly():
    """The exact-resume check every training task's test runs (:func:`_resumes_exactly`)."""
    return _resumes_exactly
