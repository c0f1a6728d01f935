"""Vocoders: WaveNet (utils/models/wavenet.py, seed defect 13) and the phase-aware mel vocoder
(utils/models/vocoder.py); tasks ``vocoder`` and ``wavenet``; the codec's ``--vocoder``."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from utils.checkpoint import CheckpointError, save_atomic
from utils.models.vocoder import (
    HEADS,
    MelVocoder,
    VocoderConfig,
    multi_resolution_stft_loss,
)
from utils.models.wavenet import (
    CausalConv1d,
    WaveNet,
    WaveNetConfig,
    mu_law_decode,
    mu_law_encode,
    receptive_field,
)

TINY_WN = WaveNetConfig(channels=8, skip_channels=8, kernel=2, layers_per_stack=4, stacks=2)

# ------------------------------------------------------------------------------ WaveNet


def test_mu_law_is_8_bit_monotonic_and_inverts_within_a_step():
    x = torch.linspace(-1, 1, 20001)
    q = mu_law_encode(x)
    assert int(q.min()) == 0 and int(q.max()) == 255 and bool((q.diff() >= 0).all())
    back = mu_law_decode(q)
    # the step is small near 0 (where speech lives) and large near full scale
    small = x.abs() < 0.01
    assert float((back - x)[small].abs().max()) < 5e-4
    assert float((back - x).abs().max()) < 0.03
    assert int(mu_law_encode(torch.zeros(1))) in (127, 128)


def test_causal_convolution_never_sees_the_future():
    torch.manual_seed(0)
    conv = CausalConv1d(3, 4, kernel=3, dilation=4)
    x = torch.randn(1, 3, 50)
    y = x.clone()
    y[..., 30:] += torch.randn(1, 3, 20)
    assert torch.equal(conv(x)[..., :30], conv(y)[..., :30])
    assert not torch.allclose(conv(x)[..., 30:], conv(y)[..., 30:])


def test_receptive_field_matches_the_formula_and_the_gradient():
    torch.manual_seed(0)
    model = WaveNet(TINY_WN).eval()
    assert model.receptive_field == receptive_field(2, TINY_WN.dilations) == 1 + 2 * (1 + 2 + 4 + 8)
    # which past inputs reach output t: exactly the receptive field
    q = torch.randint(256, (1, 100))
    emb = model.embed(q).detach().requires_grad_(True)
    c = model.upsample(torch.zeros(1, 80, 2), 100)
    x, skips = emb.transpose(1, 2), 0
    for block in model.blocks:
        x, s = block(x, c)
        skips = skips + s
    skips[0, :, 80].sum().backward()
    reached = torch.nonzero(emb.grad[0].abs().sum(-1)).flatten()
    assert int(reached.min()) == 80 - model.receptive_field + 1 and int(reached.max()) == 80


def test_incremental_generation_equals_the_full_pass_sample_by_sample():
    torch.manual_seed(0)
    model = WaveNet(WaveNetConfig(channels=8, skip_channels=8, kernel=3, layers_per_stack=3,
                                  stacks=2)).eval()
    mel = -2.5 + 0.5 * torch.randn(2, 80, 4)
    q = torch.randint(256, (2, 700))
    with torch.no_grad():
        full = model(WaveNet.shift(q), mel)
    _, inc = model.generate(mel, 700, teacher=q)
    assert torch.allclose(full, inc, atol=1e-4)
    wave, _ = model.generate(mel, 50, generator=torch.Generator().manual_seed(1))
    assert wave.shape == (2, 50) and float(wave.abs().max()) <= 1.0


def test_seed_defect_13_wavenet_builds_with_residual_skip_conditioning_and_learns():
    torch.manual_seed(0)
    model = WaveNet(TINY_WN)
    names = {n.split(".")[2] for n, _ in model.named_parameters() if n.startswith("blocks.")}
    assert {"conv", "cond", "res", "skip"} <= names
    t = torch.arange(1024) / 16000
    y = (0.5 * torch.sin(2 * torch.pi * 220 * t))[None]
    q = mu_law_encode(y)
    mel = torch.zeros(1, 80, 5) - 2.5
    opt = torch.optim.Adam(model.parameters(), 3e-3)
    losses = []
    for _ in range(60):
        loss = torch.nn.functional.cross_entropy(model(WaveNet.shift(q), mel), q)
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(float(loss.detach()))
    assert losses[-1] < 0.6 * losses[0]
    # the conditioning reaches the output
    with torch.no_grad():
        a = model(WaveNet.shift(q), mel)
        b = model(WaveNet.shift(q), mel + 1.0)
    assert not torch.allclose(a, b)


# ------------------------------------------------------------------------------ the vocoder


@pytest.mark.parametrize("head", HEADS)
def test_vocoder_frames_line_up_with_the_collection_stft(head):
    from utils.audio import FEATURES, log_mel

    torch.manual_seed(0)
    model = MelVocoder(VocoderConfig(channels=16, blocks=1, head=head)).eval()
    y = np.random.default_rng(0).standard_normal(8000).astype(np.float32) * 0.1
    L = log_mel(y)
    with torch.no_grad():
        S = model.spectrum(torch.from_numpy(L)[None])
    assert S.shape == (1, FEATURES.n_fft // 2 + 1, L.shape[1]) and S.is_complex()
    out = model.synthesize(L, len(y))
    assert out.shape == y.shape and np.isfinite(out).all()


def test_vocoder_starts_from_the_pseudo_inverse_magnitude():
    from utils.audio import log_mel, mel_spectrogram, mel_to_magnitude

    model = MelVocoder(VocoderConfig(channels=8, blocks=1))
    y = np.random.default_rng(1).standard_normal(4000).astype(np.float32) * 0.1
    base = model.base_log_magnitude(torch.from_numpy(log_mel(y))[None])[0].T.exp().numpy()
    ref = mel_to_magnitude(mel_spectrogram(y))
    assert base.shape == ref.shape
    assert np.corrcoef(np.log(base).ravel(), np.log(np.maximum(ref, 1e-5)).ravel())[0, 1] > 0.8


def test_multi_resolution_stft_loss_is_zero_on_identical_signals_and_grows_with_error():
    g = torch.Generator().manual_seed(0)
    y = torch.randn(2, 8000, generator=g)
    zero, _ = multi_resolution_stft_loss(y, y)
    small, _ = multi_resolution_stft_loss(y + 0.01 * torch.randn(2, 8000, generator=g), y)
    big, _ = multi_resolution_stft_loss(y + 0.5 * torch.randn(2, 8000, generator=g), y)
    assert float(zero) < 1e-5 < float(small) < float(big)


def test_vocoder_checkpoint_roundtrip_and_refusal(tmp_path):
    model = MelVocoder(VocoderConfig(channels=8, blocks=1, head="complex"))
    p = save_atomic(model.checkpoint(), tmp_path / "voc.pt")
    back = MelVocoder.from_checkpoint(p)
    assert all(torch.equal(v, back.state_dict()[k]) for k, v in model.state_dict().items())
    wn = save_atomic(WaveNet(TINY_WN).checkpoint(), tmp_path / "wn.pt")
    with pytest.raises(CheckpointError, match="wavenet"):
        MelVocoder.from_checkpoint(wn)
    with pytest.raises(CheckpointError, match="mel-vocoder"):
        WaveNet.from_checkpoint(p)


# ------------------------------------------------------------------------------ the tasks


def test_vocoder_task_trains_resumes_exactly_and_serves_the_codec(voiced_words, tmp_path,
                                                                  capsys, assert_resumes_exactly):
    from utils.evaluate import main as eval_main
    from utils.models.vqvae import MelVQVAE
    from utils.train import main as train_main

    def run(out, *extra):
        args = ["vocoder", "--data", str(voiced_words), "--out", str(out), "--batch-size", "2",
                "--crop-frames", "16", "--val-every", "4", "--save-every", "2",
                "--log-every", "1", "--warmup", "1", "--threads", "1", "--no-progress",
                "--set", "channels=8", "--set", "blocks=1", *extra]
        assert train_main(args) == 0

    assert_resumes_exactly(run, tmp_path)
    best = str(tmp_path / "full" / "best.pt")
    capsys.readouterr()
    assert eval_main(["vocoder", best, str(voiced_words), "--limit", "2", "--no-stoi",
                      "--no-progress", "--json"]) == 0
    res = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert res["n_clips"] == 2 and res["logmel_l1"] > 0 and "pesq_wb" in res
    codec = save_atomic(MelVQVAE(channels=8, latent_dim=4, num_codes=4, num_quantizers=2,
                                 res_blocks=0).checkpoint(), tmp_path / "codec.pt")
    assert eval_main(["codec", str(codec), str(voiced_words), "--limit", "1", "--no-stoi",
                      "--no-progress", "--json", "--vocoder", best]) == 0
    res = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert res["n_clips"] == 1 and "vocoder" in res["system"]
    assert not Path(res["vocoder"]).is_absolute()  # stored JSON holds relative paths only
    assert Path(res["vocoder"]).resolve() == Path(best).resolve()
    assert eval_main(["codec", str(codec), str(voiced_words), "--vocoder",
                      str(tmp_path / "none.pt")]) == 2
    assert "--vocoder" in capsys.readouterr().err


def test_wavenet_task_trains_and_measures_bits(voiced_words, tmp_path, capsys):
    from utils.evaluate import main as eval_main
    from utils.train import main as train_main

    args = ["wavenet", "--data", str(voiced_words), "--out", str(tmp_path / "wn"),
            "--batch-size", "2", "--samples", "512", "--steps", "3", "--val-every", "3",
            "--log-every", "1", "--warmup", "1", "--threads", "1", "--no-progress",
            "--set", "channels=4", "--set", "skip_channels=4", "--set", "layers_per_stack=3",
            "--set", "stacks=1"]
    assert train_main(args) == 0
    capsys.readouterr()
    assert eval_main(["wavenet", str(tmp_path / "wn" / "best.pt"), str(voiced_words),
                      "--split", "train", "--crops", "2", "--json"]) == 0
    res = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert 0 < res["bits_per_sample"] < 9


def test_vocoder_options_are_checked_before_data_loads(tmp_path, capsys):
    from utils.train import main as train_main

    code = train_main(["vocoder", "--data", str(tmp_path), "--out", str(tmp_path / "o"),
                       "--set", "head=cartesian", "--no-progress"])
    assert code == 2 and "head" in capsys.readouterr().err
    code = train_main(["wavenet", "--data", str(tmp_path), "--out", str(tmp_path / "o"),
                       "--set", "kernel=1", "--no-progress"])
    assert code == 2 and "kernel" in capsys.readouterr().err
