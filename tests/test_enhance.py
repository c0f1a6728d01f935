"""Speech enhancement: noise and mixtures (utils/noise.py), the DCUNet and its real baselines
(utils/models/dcunet.py) and task ``enhance``; the seed's U-Net defects 14, 21, 22, 23."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
import soundfile as sf
import torch

from utils.models.dcunet import (
    ARCHITECTURES,
    KINDS,
    EnhanceConfig,
    SpeechEnhancer,
    UNet,
    bounded_polar_mask,
    match_width,
    si_sdr,
)
from utils.noise import GENERATED_KINDS, generated_noise, make_mixture, mix_at_snr

# ------------------------------------------------------------------------------ noise


def test_generated_noise_has_unit_rms_and_the_right_colour():
    g = torch.Generator().manual_seed(0)
    noises = {k: generated_noise(k, 16000, g) for k in GENERATED_KINDS}
    for k, x in noises.items():
        assert x.shape == (16000,) and math.isclose(float(x.pow(2).mean()), 1.0, rel_tol=1e-4), k
    spec = {k: torch.fft.rfft(x).abs() ** 2 for k, x in noises.items()}
    low, high = slice(20, 200), slice(4000, 8000)                 # bins of 1 Hz
    assert spec["brown"][low].mean() / spec["brown"][high].mean() > 100
    assert spec["pink"][low].mean() / spec["pink"][high].mean() > 5
    assert 0.3 < spec["white"][low].mean() / spec["white"][high].mean() < 3
    peak = int(spec["hum"][1:1000].argmax()) + 1
    assert peak % 50 == 0 or peak % 60 == 0


def test_mix_at_snr_hits_the_snr_and_never_clips():
    g = torch.Generator().manual_seed(1)
    clean = 0.1 * torch.randn(8000, generator=g)
    noise = torch.randn(8000, generator=g)
    for snr in (-5.0, 0.0, 10.0):
        noisy, target = mix_at_snr(clean, noise, snr)
        measured = 10 * torch.log10(target.pow(2).sum() / (noisy - target).pow(2).sum())
        assert abs(float(measured) - snr) < 1e-3
        assert float(noisy.abs().max()) <= 0.95 + 1e-6


def test_a_mixture_is_a_pure_function_of_seed_and_index():
    g = torch.Generator().manual_seed(2)
    clips = [0.2 * torch.randn(4000, generator=g) for _ in range(5)]
    real = [torch.randn(9000, generator=g)]
    a = make_mixture(3, 17, clips, real)
    b = make_mixture(3, 17, clips, real)
    c = make_mixture(3, 18, clips, real)
    assert torch.equal(a.noisy, b.noisy) and a.kind == b.kind and a.snr_db == b.snr_db
    assert not torch.equal(a.noisy, c.noisy)
    assert -5 <= a.snr_db <= 10
    kinds = {make_mixture(0, i, clips, real).kind for i in range(60)}
    assert kinds == {"white", "pink", "brown", "hum", "babble", "real"}
    assert "real" not in {make_mixture(0, i, clips).kind for i in range(30)}  # no recordings


# ------------------------------------------------------------------------------ the maths


def test_si_sdr_matches_the_definition():
    g = torch.Generator().manual_seed(3)
    s = torch.randn(4000, generator=g)
    s = s - s.mean()
    n = torch.randn(4000, generator=g)
    n = n - n.mean()
    n = n - (n @ s) / (s @ s) * s                       # orthogonal to s
    n = n * (s.norm() / n.norm()) * 10 ** (-12 / 20)    # 12 dB below
    assert abs(float(si_sdr(3.0 * s + n, s)) - 10 * math.log10(9 * 10 ** 1.2)) < 1e-3
    assert abs(float(si_sdr(0.5 * s, s))) > 60          # scale does not matter


def test_seed_defect_21_the_mask_is_the_bounded_polar_mask():
    g = torch.Generator().manual_seed(4)
    m = torch.complex(torch.randn(2000, generator=g), torch.randn(2000, generator=g)) * 3
    mask = bounded_polar_mask(m)
    assert float(mask.abs().max()) <= 1.0 + 1e-6          # tanh saturates at 1 in float32
    assert torch.allclose(torch.angle(mask), torch.angle(m), atol=1e-5)  # phase untouched
    assert torch.allclose(mask.abs(), torch.tanh(m.abs()), atol=1e-6)
    # the seed's tanh on each part reaches a modulus near sqrt(2) and bends the phase
    seed = torch.complex(torch.tanh(m.real), torch.tanh(m.imag))
    assert float(seed.abs().max()) > 1.2
    assert not torch.allclose(torch.angle(seed), torch.angle(m), atol=1e-2)


def test_seed_defect_22_the_mask_multiplies_as_a_complex_number(monkeypatch):
    model = SpeechEnhancer(EnhanceConfig(width=0.1)).eval()
    g = torch.Generator().manual_seed(5)
    X = model.stft(torch.randn(1, 4000, generator=g))
    M = bounded_polar_mask(torch.complex(torch.randn(X.shape, generator=g),
                                         torch.randn(X.shape, generator=g)))
    monkeypatch.setattr(model, "mask", lambda spec: M)
    Y = model.masked(X)
    # modulus scaled by |M| and phase shifted by its angle: complex multiplication
    assert torch.allclose(Y.abs(), M.abs() * X.abs(), rtol=1e-4, atol=1e-5)
    dphi = torch.angle(Y * X.conj() * M.conj())           # ∠Y − ∠X − ∠M, wrapped
    big = X.abs() > 1e-3
    assert float(dphi[big].abs().max()) < 1e-3
    seed = torch.complex(M.real * X.real, M.imag * X.imag)  # the seed's element-wise product
    assert not torch.allclose(seed, Y, atol=1e-2)


def test_identity_mask_gives_back_the_input(monkeypatch):
    model = SpeechEnhancer(EnhanceConfig(width=0.1)).eval()
    monkeypatch.setattr(model, "mask", lambda X: torch.ones_like(X))
    x = torch.randn(2, 12345, generator=torch.Generator().manual_seed(6))
    with torch.no_grad():
        assert torch.allclose(model(x), x, atol=1e-4)


@pytest.mark.parametrize("size", [(257, 101), (513, 63), (33, 100), (129, 7)])
def test_seed_defect_23_the_unet_runs_on_any_size(size):
    torch.manual_seed(0)
    for complex_ in (True, False):
        net = UNet("DCUNet-10", [2, 4, 4, 4, 4], 1, 1, complex_)
        x = torch.randn(2, 1, *size, dtype=torch.complex64 if complex_ else torch.float32)
        assert net(x).shape == x.shape


@pytest.mark.parametrize("arch", sorted(ARCHITECTURES))
def test_seed_defect_14_every_dcunet_builds_and_every_parameter_learns(arch):
    torch.manual_seed(0)
    for kind in KINDS:
        model = SpeechEnhancer(EnhanceConfig(kind=kind, arch=arch, width=0.1))
        x = torch.randn(2, 6001)                          # an odd length
        out = model(x)
        assert out.shape == x.shape and torch.isfinite(out).all()
        (-si_sdr(out, x).mean()).backward()
        for name, p in model.named_parameters():
            assert p.grad is not None and torch.isfinite(p.grad).all(), (kind, name)


def test_the_real_baselines_match_the_complex_parameter_count():
    target = SpeechEnhancer(EnhanceConfig()).num_parameters()
    for kind in ("ri", "mag"):
        cfg = match_width(EnhanceConfig(kind=kind), target)
        n = SpeechEnhancer(cfg).num_parameters()
        assert abs(n - target) / target <= 0.05, (kind, n, target)
    with pytest.raises(ValueError, match="no width_scale"):
        match_width(EnhanceConfig(kind="ri"), 10)


# ------------------------------------------------------------------------------ the task


def _train(words, out, *extra):
    from utils.train import main as train_main

    args = ["enhance", "--data", str(words), "--out", str(out), "--batch-size", "2",
            "--val-every", "4", "--save-every", "2", "--log-every", "1", "--warmup", "1",
            "--threads", "1", "--no-progress", "--set", "width=0.1", *extra]
    assert train_main(args) == 0


def test_enhance_task_trains_resumes_exactly_and_evaluates(voiced_words, tmp_path, capsys,
                                                           assert_resumes_exactly):
    from utils.evaluate import main as eval_main

    assert_resumes_exactly(lambda out, *e: _train(voiced_words, out, *e), tmp_path)
    log = [json.loads(x) for x in (tmp_path / "full" / "log.jsonl").read_text().splitlines()]
    assert any("val_si_sdri" in r for r in log)

    test = tmp_path / "test"
    best = str(tmp_path / "full" / "best.pt")
    assert eval_main(["enhance", best, "--make-test-set", str(test), "--json"]) == 0
    index = json.loads((test / "index.json").read_text())
    assert len(index["files"]) == 4 and {f["snr_db"] for f in index["files"]} == {-5, 0, 5, 10}
    capsys.readouterr()
    assert eval_main(["enhance", best, str(test / "noisy"), "--clean", str(test / "clean"),
                      "--json", "--no-progress"]) == 0
    res = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    for key in ("si_sdr_in", "si_sdr_out", "si_sdri", "pesq_wb_in", "pesq_wb_out", "n_clips",
                "n_failed", "visqol_out", "dnsmos_sig_out", "dnsmos_bak_out", "dnsmos_ovrl_out",
                "pesq_wb_out_ci95", "visqol_out_ci95", "si_sdri_ci95"):
        assert key in res, key
    assert res["n_clips"] == 4 and res["n_failed"] == 0 and sorted(res["per_snr"]) == [
        "+0", "+10", "+5", "-5"]
    assert abs(res["per_snr"]["-5"]["si_sdr_in"] + 5) < 0.5   # the SNR it was mixed at

    # bad pairs are named and skipped: a missing partner, another length, garbage bytes (in
    # a folder of pairs without a manifest: a test set with one refuses changed files)
    (test / "manifest.json").unlink()
    files = sorted((test / "clean").rglob("*.wav"))
    files[0].unlink()
    y, sr = sf.read(files[1])
    sf.write(files[1], y[:-100], sr)
    noisy3 = test / "noisy" / files[2].relative_to(test / "clean")
    noisy3.write_bytes(b"not audio at all")
    # defect: a 10 ms noisy/clean pair crashed the whole evaluation
    for side in ("noisy", "clean"):
        sf.write(test / side / "tiny_10ms.wav", np.full(160, 0.1, np.float32), 16000)
    capsys.readouterr()
    assert eval_main(["enhance", best, str(test / "noisy"), "--clean", str(test / "clean"),
                      "--json", "--no-progress", "--no-stoi"]) == 0
    out = capsys.readouterr().out
    res = json.loads(out.strip().splitlines()[-1])
    assert res["n_clips"] == 1 and res["n_failed"] == 4
    assert "no clean file" in out and "samples, clean file" in out
    assert "tiny_10ms.wav: too short" in out
    # nothing pairs up: exit 1
    empty = tmp_path / "empty"
    empty.mkdir()
    assert eval_main(["enhance", best, str(test / "noisy"), "--clean", str(empty),
                      "--no-progress"]) == 1


def test_enhance_options_are_checked_before_data_loads(tmp_path, capsys):
    from utils.train import main as train_main

    code = train_main(["enhance", "--data", str(tmp_path), "--out", str(tmp_path / "o"),
                       "--set", "kind=quaternion", "--no-progress"])
    assert code == 2 and "kind" in capsys.readouterr().err
    code = train_main(["enhance", "--data", str(tmp_path), "--out", str(tmp_path / "o"),
                       "--kinds", "thunder", "--no-progress"])
    assert code == 2 and "--kinds" in capsys.readouterr().err


def test_a_checkpoint_of_another_kind_is_refused(tmp_path):
    from utils.checkpoint import CheckpointError, save_atomic
    from utils.models.vqvae import MelVQVAE

    p = save_atomic(MelVQVAE(channels=8, latent_dim=4, num_codes=4, num_quantizers=1,
                             res_blocks=0).checkpoint(), tmp_path / "codec.pt")
    with pytest.raises(CheckpointError, match="mel-vqvae"):
        SpeechEnhancer.from_checkpoint(p)
    model = SpeechEnhancer(EnhanceConfig(kind="mag", width=0.1))
    q = save_atomic(model.checkpoint(), tmp_path / "enh.pt")
    back = SpeechEnhancer.from_checkpoint(q)
    x = torch.from_numpy(np.random.default_rng(0).standard_normal(3000).astype(np.float32))
    assert np.allclose(back.enhance(x.numpy()), model.eval()(x).detach().numpy(), atol=1e-6)


def test_instantaneous_frequency_finds_a_sinusoid_between_bins():
    from utils.audio import instantaneous_frequency

    sr, n_fft, hop = 16000, 512, 128
    f = 1000.0 + 0.3 * sr / n_fft                       # 0.3 of a bin above bin 32
    t = np.arange(sr) / sr
    S = np.stack([np.fft.rfft(np.hanning(n_fft) * np.sin(2 * np.pi * f * t[i : i + n_fft]))
                  for i in range(0, sr - n_fft, hop)], axis=1)
    dev = instantaneous_frequency(S, sr, hop)
    assert dev.shape == (n_fft // 2 + 1, S.shape[1] - 1)
    np.testing.assert_allclose(dev[32], f - 32 * sr / n_fft, atol=0.5)
