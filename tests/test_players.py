"""utils.players: every player group is loudness-matched (ITU-R BS.1770) and never clips.

Defect: player tables gave a row one common *peak* gain, so a quiet reconstruction (a prior
sample ~30 dB down) played tens of dB below the player beside it. These tests decode the WAV
actually embedded in the HTML and measure it with pyloudnorm.
"""

from __future__ import annotations

import base64
import io
import re

import numpy as np
import pyloudnorm
import pytest
import soundfile as sf

from utils import players

SR = 16000
PEAK = 0.95
# the embedded WAV is 16-bit: one quantisation step of slack on the peak
LSB = 1.0 / 32767


def speech_like(seconds: float, f0: float, level: float, seed: int = 0) -> np.ndarray:
    """Harmonic tones under a syllable-like envelope (two bursts with a pause), peak ``level``."""
    t = np.arange(int(seconds * SR)) / SR
    phase = 2 * np.pi * np.cumsum(f0 * (1 + 0.1 * np.sin(2 * np.pi * 1.5 * t))) / SR
    y = sum(np.sin(k * phase + k) / k**1.2 for k in range(1, 25))
    env = np.abs(np.sin(np.pi * t * 2 / seconds)) ** 1.5  # two bursts, silent middle
    y = env * y + 1e-4 * np.random.default_rng(seed).standard_normal(t.size)
    return (level * y / np.max(np.abs(y))).astype(np.float32)


def embedded_audio(html: str) -> list[np.ndarray]:
    """Every player's audio, decoded from the base64 WAV in the HTML, in document order."""
    blobs = re.findall(r"data:audio/wav;base64,([A-Za-z0-9+/=\s]+)", html)
    out = []
    for b in blobs:
        y, sr = sf.read(io.BytesIO(base64.b64decode(b)), dtype="float64")
        assert sr == SR
        out.append(y)
    return out


def lufs(y: np.ndarray) -> float:
    return pyloudnorm.Meter(SR).integrated_loudness(y)


@pytest.fixture
def loud_and_quiet() -> dict[str, np.ndarray]:
    loud = speech_like(1.2, 130.0, 0.9)
    quiet = speech_like(1.0, 210.0, 0.9 * 10 ** (-30 / 20), seed=1)  # a prior sample
    return {"original": loud, "prior sample": quiet}


def test_player_groups_are_within_one_lu_of_each_other(loud_and_quiet):
    assert lufs(loud_and_quiet["original"]) - lufs(loud_and_quiet["prior sample"]) > 25
    audio = embedded_audio(players.player_table(loud_and_quiet, SR).data)
    assert len(audio) == 2
    levels = [lufs(y) for y in audio]
    assert all(np.isfinite(levels))
    assert max(levels) - min(levels) <= 1.0, levels
    assert max(float(np.max(np.abs(y))) for y in audio) <= PEAK + LSB


def test_every_row_and_the_whole_table_are_loudness_matched(loud_and_quiet):
    rows = {
        "clip a": loud_and_quiet,
        "clip b": {"original": 0.3 * loud_and_quiet["prior sample"],
                   "prior sample": loud_and_quiet["original"]},
    }
    for separately in (True, False):
        audio = embedded_audio(
            players.player_table(rows, SR, normalize_rows_separately=separately).data
        )
        assert len(audio) == 4
        levels = [lufs(y) for y in audio]
        groups = [levels[:2], levels[2:]] if separately else [levels]
        for g in groups:
            assert max(g) - min(g) <= 1.0, levels
        assert max(float(np.max(np.abs(y))) for y in audio) <= PEAK + LSB


def test_loud_group_is_peak_limited_jointly_without_clipping():
    # a crest-heavy signal cannot reach -5 LUFS under 0.95 peak: the group gets one reduction
    clicks = np.zeros(SR, np.float32)
    clicks[::1600] = 0.5
    tone = speech_like(1.0, 150.0, 0.5)
    out = players.loudness_normalize(clicks, tone, sr=SR, loudness=-5.0, peak=PEAK)
    assert max(float(np.max(np.abs(y))) for y in out) == pytest.approx(PEAK, abs=1e-6)
    assert abs(lufs(out[0].astype(np.float64)) - lufs(out[1].astype(np.float64))) <= 1.0


def test_short_and_silent_clips_give_finite_output(loud_and_quiet):
    short = speech_like(0.2, 180.0, 0.05)  # shorter than one 400 ms gating block
    zeros = np.zeros(SR // 2, np.float32)
    empty_row = {"original": loud_and_quiet["original"], "short": short, "zeros": zeros}
    audio = embedded_audio(players.player_table(empty_row, SR).data)
    assert len(audio) == 3
    assert all(np.all(np.isfinite(y)) for y in audio)
    assert max(float(np.max(np.abs(y))) for y in audio) <= PEAK + LSB
    assert not np.any(audio[2])  # silence stays silence
    assert len(audio[1]) == len(short) and np.max(np.abs(audio[1])) > 0.01
    # the short clip lands near the long one: measure it as one ungated block over itself
    block = int(0.4 * SR)
    short_level = lufs(np.pad(audio[1], (0, block - len(audio[1])))) + 10 * np.log10(
        block / len(audio[1])
    )
    assert abs(short_level - lufs(audio[0])) <= 1.0
    # a group of only silence, or only a short clip, works too
    assert not np.any(embedded_audio(players.player_table({"z": zeros}, SR).data)[0])
    only_short = embedded_audio(players.player_table({"s": short, "z": zeros[:100]}, SR).data)
    assert all(np.all(np.isfinite(y)) for y in only_short)


def test_loudness_none_keeps_the_old_joint_peak_behaviour(loud_and_quiet):
    audio = embedded_audio(players.player_table(loud_and_quiet, SR, loudness=None).data)
    assert float(np.max(np.abs(audio[0]))) == pytest.approx(PEAK, abs=2 * LSB)
    difference = lufs(audio[0]) - lufs(audio[1])
    original = lufs(loud_and_quiet["original"].astype(np.float64)) - lufs(
        loud_and_quiet["prior sample"].astype(np.float64)
    )
    assert difference == pytest.approx(original, abs=0.5) and difference > 25
    # the old keyword arguments are still accepted
    players.player_table(loud_and_quiet, SR, peak=0.5, normalize_rows_separately=False)


def test_dc_only_signal_falls_back_to_rms_loudness():
    dc = np.full(SR, 0.2, np.float32)  # the K-weighting high-pass removes all of it
    out = players.loudness_normalize(dc, sr=SR, loudness=-23.0)
    assert np.all(np.isfinite(out[0])) and 0 < float(np.max(np.abs(out[0]))) <= PEAK


def test_explorers_render_loudness_matched_players(voiced):
    png, html = players.reconstruction_explorer(voiced, lambda x: 0.03 * x, "quiet")
    levels = [lufs(y) for y in embedded_audio(html)]
    assert len(levels) == 2 and abs(levels[0] - levels[1]) <= 1.0
    _, html = players.reconstruction_explorer(voiced, lambda x: 0.03 * x, "quiet", loudness=None)
    levels = [lufs(y) for y in embedded_audio(html)]
    assert levels[0] - levels[1] == pytest.approx(-20 * np.log10(0.03), abs=0.5)
