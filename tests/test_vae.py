"""The Gaussian mel VAE (utils.models.vae) against reference maths, and seed defect 5."""

from __future__ import annotations

import math

import pytest
import torch
from torch.distributions import Normal, kl_divergence

from utils.checkpoint import CheckpointError, save_atomic
from utils.models.vae import MelVAE, gaussian_kl
from utils.models.vqvae import MelVQVAE

TINY = dict(channels=16, latent_dim=4, res_blocks=1)


def tiny(**kw) -> MelVAE:
    torch.manual_seed(0)
    return MelVAE(**{**TINY, **kw})


def test_gaussian_kl_matches_torch_distributions():
    g = torch.Generator().manual_seed(0)
    mu, logvar = torch.randn(5, 3, generator=g), torch.randn(5, 3, generator=g)
    ref = kl_divergence(Normal(mu, (0.5 * logvar).exp()), Normal(0.0, 1.0))
    torch.testing.assert_close(gaussian_kl(mu, logvar), ref)


def test_seed_defect_5_the_likelihood_accepts_log_mel_targets_of_any_range():
    """Seed defect 5 (VAE half): BCE on targets above 1, which today's PyTorch refuses."""
    model = tiny()
    for x in (torch.full((2, 80, 16), -5.0), torch.full((2, 80, 16), 3.0),
              torch.randn(2, 80, 16) * 4):
        recon, out = model(x)
        loss, stats = model.loss(x, recon, out)
        assert torch.isfinite(loss) and stats["recon_l1"] >= 0
    # the NLL is the Gaussian log-density: check it against torch.distributions
    model.eval()
    x = torch.randn(1, 80, 8) - 2.5
    recon, out = model(x)
    cfg = model.config
    dist = Normal((recon - cfg.mel_mean) / cfg.mel_std, model.log_scale.exp())
    nll_ref = -dist.log_prob((x - cfg.mel_mean) / cfg.mel_std).mean()
    _, stats = model.loss(x, recon, out)
    assert stats["nll"] == pytest.approx(float(nll_ref.detach()), rel=1e-5)


def test_free_bits_and_annealing():
    model = tiny(free_bits=0.5, anneal_steps=100, beta=2.0)
    assert model.beta_at(0) == 0.0 and model.beta_at(50) == 1.0 and model.beta_at(500) == 2.0
    x = torch.randn(2, 80, 16) - 2.5
    model.eval()
    recon, out = model(x)
    zero_kl = out._replace(kl=torch.zeros_like(out.kl))
    loss_free, _ = model.loss(x, recon, zero_kl, step=1000)
    loss_none, _ = tiny(beta=2.0).loss(x, recon, zero_kl)
    # KL below the floor still costs free_bits nats per dimension and latent frame
    per_el = 2.0 * 0.5 * 4 * (16 // 2) / (80 * 16)
    assert float(loss_free - loss_none) == pytest.approx(per_el, rel=1e-5)


def test_rate_is_kl_in_bits_per_second():
    model = tiny()
    assert model.latent_fps == pytest.approx(31.25)
    assert model.rate_bps(math.log(2) * 8) == pytest.approx(250.0)


def test_shapes_sampling_and_active_units():
    model = tiny().eval()
    for frames in (1, 15, 64):
        recon, out = model(torch.randn(1, 80, frames) - 2.5)
        assert recon.shape == (1, 80, frames) and out.mu.shape == (1, -(-frames // 2), 4)
    s = model.sample(3, 20, generator=torch.Generator().manual_seed(0))
    assert s.shape == (3, 80, 20) and s.min() >= model.config.log_floor
    mus = torch.cat([torch.zeros(50, 1), torch.randn(50, 1)], dim=1)
    assert model.active_units(mus).tolist() == [False, True]


def test_a_short_training_lowers_the_negative_elbo():
    torch.manual_seed(0)
    model = tiny()
    x = -2.5 + torch.randn(4, 80, 32).cumsum(-1) * 0.05
    opt = torch.optim.Adam(model.parameters(), lr=3e-3)
    losses = []
    for step in range(60):
        recon, out = model(x)
        loss, _ = model.loss(x, recon, out, step=step)
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(float(loss))
    assert losses[-1] < losses[0] - 0.2


def test_checkpoint_roundtrip_and_refusal_of_a_codec(tmp_path):
    model = tiny()
    p = save_atomic(model.checkpoint(step=1), tmp_path / "vae.pt")
    back = MelVAE.from_checkpoint(p)
    assert all(torch.equal(v, back.state_dict()[k]) for k, v in model.state_dict().items())
    codec = save_atomic(MelVQVAE(channels=8, latent_dim=4, num_codes=4, num_quantizers=1,
                                 res_blocks=0).checkpoint(), tmp_path / "codec.pt")
    with pytest.raises(CheckpointError, match="mel-vqvae"):
        MelVAE.from_checkpoint(codec)


# ------------------------------------------------------------------------------ the vae task


@pytest.fixture(scope="module")
def words(tmp_path_factory):
    import numpy as np
    import soundfile as sf

    root = tmp_path_factory.mktemp("vae_words")
    rng = np.random.default_rng(0)
    for word in ("aa", "ee"):
        (root / word).mkdir()
        for s in range(5):
            t = np.arange(12000) / 16000
            y = sum(np.sin(2 * np.pi * k * (110 + 15 * s) * t) / k for k in range(1, 8))
            y = 0.3 * y * np.hanning(len(t)) / np.abs(y).max() + 0.003 * rng.standard_normal(len(t))
            sf.write(root / word / f"spk{s}_nohash_0.flac", y.astype(np.float32), 16000)
    (root / "validation_list.txt").write_text("aa/spk4_nohash_0.flac\n")
    (root / "testing_list.txt").write_text("ee/spk4_nohash_0.flac\n")
    return root


def _train(words, out, *extra):
    from utils.train import main as train_main

    args = ["vae", "--data", str(words), "--out", str(out), "--batch-size", "4",
            "--crop-frames", "16", "--val-every", "4", "--save-every", "2", "--log-every", "1",
            "--warmup", "1", "--threads", "1", "--no-progress", "--set", "channels=16",
            "--set", "latent_dim=4", "--set", "res_blocks=1", "--set", "anneal_steps=4",
            "--set", "free_bits=0.05", *extra]
    assert train_main(args) == 0


def test_vae_task_trains_resumes_exactly_and_evaluates_as_a_codec(words, tmp_path, capsys,
                                                                  assert_resumes_exactly):
    import json

    from utils.evaluate import main as eval_main

    assert_resumes_exactly(lambda out, *e: _train(words, out, *e), tmp_path)
    log = [json.loads(x) for x in (tmp_path / "full" / "log.jsonl").read_text().splitlines()]
    betas = [r["beta"] for r in log if "beta" in r]
    assert betas == sorted(betas) and betas[0] == 0.0  # annealed from 0
    assert any("val_rate_bps" in r for r in log)
    capsys.readouterr()
    assert eval_main(["vae", str(tmp_path / "full" / "best.pt"), str(words), "--json",
                      "--no-progress", "--no-stoi", "--gl-iters", "2", "--limit", "2"]) == 0
    res = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert res["n_clips"] == 2 and res["bitrate_bps"] > 0 and res["logmel_l1"] > 0


def test_vae_options_are_checked_before_data_loads(tmp_path, capsys):
    from utils.train import main as train_main

    code = train_main(["vae", "--data", str(tmp_path / "none"), "--out", str(tmp_path / "o"),
                       "--no-progress"])
    assert code == 2 and "--data" in capsys.readouterr().err
    code = train_main(["vae", "--data", str(tmp_path), "--out", str(tmp_path / "o"),
                       "--set", "beta=-1", "--no-progress"])
    assert code == 2 and "beta" in capsys.readouterr().err
