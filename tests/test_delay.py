"""utils.delay: systems are compensated by their known delay; foreign files estimated phase-blind.

Regression tests of the defect "align moves outputs that are already in time": the waveform
cross-correlation of the old ``align`` shifted and cropped Griffin-Lim and vocoder outputs that
were sample-exact in time.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from utils import delay
from utils.audio import SR, load, mel_spectrogram, mel_to_audio
from utils.metrics import logmel_l1

REAL = Path(__file__).resolve().parents[1] / "data" / "real_speech" / "speech_commands"
CLIPS = ["right/50033893_nohash_0.flac", "no/4fd1443e_nohash_0.flac",
         "down/f264e0df_nohash_0.flac"]


@pytest.fixture(scope="module")
def resyntheses() -> list[tuple[np.ndarray, np.ndarray]]:
    """Real clips and their Griffin-Lim resynthesis from the true mel (in time by construction)."""
    out = []
    for name in CLIPS:
        y = load(REAL / name, SR)
        out.append((y, mel_to_audio(mel_spectrogram(y), n_iter=32, length=len(y))))
    return out


def test_compensate_undoes_a_known_delay_exactly(voiced):
    for d in (0, 37, 400, -120):
        late = delay.shift(voiced, d, len(voiced) + max(d, 0))
        ref, est = delay.compensate(voiced, late, d)
        assert len(ref) == len(est)
        np.testing.assert_array_equal(ref[200:-200], est[200:-200])


def test_in_time_griffin_lim_is_not_moved(resyntheses):
    """Defect: the waveform peak of an invented phase is spurious; an in-time output must keep
    lag 0, and its log-mel L1 must equal the plain-crop value."""
    for y, g in resyntheses:
        found = delay.estimate_delay(y, g)
        assert found.lag == 0, found
        ref, est = delay.compensate(y, g, found.lag)
        assert logmel_l1(ref, est) == logmel_l1(y, g)


@pytest.mark.parametrize("d", [37, 400])
def test_a_delayed_griffin_lim_output_is_found(d, resyntheses):
    """Phase-blind, so good to the resolution of the log-mel frames' fit (a few samples) on an
    invented phase; the lag used scores as well as the true one."""
    for y, g in resyntheses:
        late = delay.shift(g, d, len(g) + d)
        found = delay.estimate_delay(y, late)
        assert found.clear and not found.waveform
        assert abs(found.lag - d) <= 4, found
        at_found = logmel_l1(*delay.compensate(y, late, found.lag))
        at_true = logmel_l1(*delay.compensate(y, late, d))
        assert at_found <= at_true * 1.01


@pytest.mark.parametrize("d", [37, 400, -400])
def test_a_delayed_waveform_preserving_output_is_found_exactly(d, resyntheses):
    rng = np.random.default_rng(0)
    for y, _ in resyntheses:
        noisy = (y + 0.01 * rng.standard_normal(len(y))).astype(np.float32)
        found = delay.estimate_delay(y, delay.shift(noisy, d, len(y) + max(d, 0)))
        assert found.waveform and found.lag == d, found


def test_no_clear_evidence_means_no_shift(resyntheses):
    y, _ = resyntheses[0]
    noise = np.random.default_rng(3).standard_normal(len(y)).astype(np.float32) * 0.1
    found = delay.estimate_delay(y, noise)
    assert found.lag == 0 or found.clear


def test_measure_delay_finds_a_fixed_delay_of_a_phase_free_system():
    """A system that resynthesises with Griffin-Lim and is late by 200 samples: found to about
    a millisecond (a phase-free output of tones has no sharper timing)."""
    def system(x: np.ndarray) -> np.ndarray:
        g = mel_to_audio(mel_spectrogram(x), n_iter=16, length=len(x))
        return delay.shift(g, 200, len(x) + 200)

    assert abs(delay.measure_delay(system) - 200) <= 24


def test_measure_delay_of_a_waveform_system_is_exact():
    def system(x: np.ndarray) -> np.ndarray:
        return delay.shift(x * 0.5, 123, len(x) + 123)

    assert delay.measure_delay(system) == 123
