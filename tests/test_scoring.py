"""utils.scoring: one scorer for every system; nothing that goes wrong on one clip ends a batch."""

from __future__ import annotations

import json
import math
import shutil
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from utils import scoring
from utils.audio import SR, load
from utils.delay import shift

REAL = Path(__file__).resolve().parents[1] / "data" / "real_speech"


@pytest.fixture
def hostile_folder(tmp_path: Path) -> Path:
    """Two good real clips among a corrupt, a truncated, a 0.1 s, a silent and a 60 s file."""
    d = tmp_path / "clips"
    d.mkdir()
    for f in sorted((REAL / "speech_commands").rglob("*.flac"))[:2]:
        shutil.copy(f, d / f.name)
    (d / "corrupt.wav").write_bytes(b"RIFF" + bytes(range(256)) * 8)
    good = load(sorted((REAL / "speech_commands").rglob("*.flac"))[0], SR)
    sf.write(d / "truncated.wav", good, SR, subtype="PCM_16")
    raw = (d / "truncated.wav").read_bytes()
    (d / "truncated.wav").write_bytes(raw[: len(raw) // 2])
    sf.write(d / "short_0.1s.wav", good[4000:5600], SR)
    sf.write(d / "silent.wav", np.zeros(SR, np.float32), SR)
    sentence = load(REAL / "common_voice_hsb" / "CV00001" / "common_voice_hsb_20797893.flac")
    long = np.concatenate([np.concatenate([sentence, np.zeros(SR // 2, np.float32)])] * 9)
    sf.write(d / "long_60s.flac", long[: 60 * SR], SR)
    return d


def test_a_hostile_folder_completes_and_reports_every_skipped_file(hostile_folder):
    from utils.data import find_audio

    files = find_audio(hostile_folder)
    res = scoring.score_files(files, lambda y: y * 0.5, metrics=("pesq_wb", "logmel_l1"),
                              root=hostile_folder, progress=False)
    skipped = dict(res["failed"])
    assert set(skipped) == {"corrupt.wav", "truncated.wav"}
    assert res["n_clips"] == 5 and res["n_failed"] == 2
    rows = {r["file"]: r for r in res["per_clip"]}
    assert math.isnan(rows["short_0.1s.wav"]["pesq_wb"])
    assert rows["short_0.1s.wav"]["nan_reasons"]["pesq_wb"].startswith("too short")
    assert rows["silent.wav"]["nan_reasons"]["pesq_wb"] == "reference is silent"
    assert math.isfinite(rows["long_60s.flac"]["pesq_wb"])
    assert res["nan_reasons"] == {"pesq_wb: reference is silent": 1, "pesq_wb: too short": 1,
                                  "logmel_l1: reference is silent": 1}
    assert res["n_pesq_wb_nan"] == 2
    lo, hi = res["pesq_wb_ci95"]
    assert lo - 1e-3 <= res["pesq_wb"] <= hi + 1e-3


def test_a_system_that_fails_on_one_clip_does_not_end_the_batch(hostile_folder):
    from utils.data import find_audio

    def fragile(y: np.ndarray) -> np.ndarray:
        if len(y) > 10 * SR:
            raise RuntimeError("out of memory on the long one")
        return y

    res = scoring.score_files(find_audio(hostile_folder), fragile, metrics=("logmel_l1",),
                              root=hostile_folder, progress=False)
    assert dict(res["failed"])["long_60s.flac"].startswith("reconstruction failed: RuntimeError")
    assert res["n_clips"] == 4


def test_rows_keep_the_delay_and_the_bits_actually_sent():
    files = sorted((REAL / "speech_commands").rglob("*.flac"))[:3]

    def late_codec(y: np.ndarray) -> scoring.Output:
        return scoring.Output(shift(y, 120, len(y) + 120), bits=1234.0, delay=120)

    res = scoring.score_files(files, late_codec, metrics=("logmel_l1",), progress=False)
    assert all(r["delay"] == 120 and r["logmel_l1"] == 0.0 for r in res["per_clip"])
    assert res["bitrate_bps"] == pytest.approx(1234.0)  # 1 s clips
    assert res["delays"] == {"120": 3}
    # files named relative to the working folder, never absolute
    assert not any(Path(r["file"]).is_absolute() for r in res["per_clip"])


def test_foreign_outputs_can_be_estimated_but_an_in_time_output_is_not_moved():
    from utils.audio import mel_spectrogram, mel_to_audio

    files = sorted((REAL / "speech_commands").rglob("*.flac"))[:2]

    def griffin_lim(y: np.ndarray) -> np.ndarray:
        return mel_to_audio(mel_spectrogram(y), n_iter=16, length=len(y))

    res = scoring.score_files(files, griffin_lim, metrics=("logmel_l1",), delay="estimate",
                              progress=False)
    assert res["delays"] == {"0": 2}
    with pytest.raises(Exception, match="delay"):
        scoring.score_files(files, griffin_lim, delay="guess", progress=False)


def test_evaluate_json_carries_second_opinions_and_intervals(tmp_path, capsys):
    """Target of the yardstick issue: every evaluation's JSON carries ViSQOL, DNSMOS SIG / BAK /
    OVRL and a 95 % interval for PESQ-WB and ViSQOL; the per-clip rows keep the delay."""
    from utils.evaluate import main

    per_clip = tmp_path / "rows.json"
    assert main(["codec", "-", str(REAL / "speech_commands"), "--baseline", "griffinlim",
                 "--gl-iters", "4", "--limit", "3", "--no-stoi", "--json", "--no-progress",
                 "--dnsmos-originals",
                 "--per-clip", str(per_clip)]) == 0
    summary = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    for key in ("pesq_wb", "visqol", "dnsmos_sig", "dnsmos_bak", "dnsmos_ovrl",
                "dnsmos_ovrl_original"):
        assert isinstance(summary[key], float), key
    for key in ("pesq_wb_ci95", "visqol_ci95"):
        lo, hi = summary[key]
        assert lo <= summary[key[:-5]] <= hi
    assert summary["delays"] == {"0": 3}
    rows = json.loads(per_clip.read_text())
    assert len(rows) == 3 and all(r["delay"] == 0 for r in rows)


def test_per_clip_pointing_at_a_folder_is_refused_before_scoring(tmp_path, capsys):
    from utils.evaluate import main

    assert main(["codec", "-", str(REAL / "speech_commands"), "--baseline", "griffinlim",
                 "--per-clip", str(tmp_path)]) == 2
    assert "--per-clip" in capsys.readouterr().err
