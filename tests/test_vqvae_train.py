"""Mel VQ-VAE model, checkpoints, training (exact resume, DDP) and the evaluation CLI."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from utils.checkpoint import CheckpointError, load_checkpoint, save_atomic
from utils.evaluate import main as eval_main
from utils.models.vqvae import MelVQVAE
from utils.tasks.codec import make_batch
from utils.train import main as train_main

ROOT = Path(__file__).resolve().parents[1]
TINY = ["--set", "channels=16", "--set", "latent_dim=8", "--set", "num_codes=16",
        "--set", "num_quantizers=3", "--set", "res_blocks=1"]


def tiny_model(**kw) -> MelVQVAE:
    torch.manual_seed(0)
    cfg = dict(channels=16, latent_dim=8, num_codes=16, num_quantizers=3, res_blocks=1)
    cfg.update(kw)
    return MelVQVAE(**cfg)


@pytest.fixture
def tiny_data(voiced_words) -> Path:
    return voiced_words


# ------------------------------------------------------------------------------ model


def test_shapes_variable_length_and_channel_last_latents():
    """Seed defect 1 (VQ layout): the seed reshaped NCHW to (-1, D) without a permute, so each
    'vector' was a whole channel map. Here every latent frame is one D-vector: changing one
    input frame only changes nearby latent vectors, and z_e is [B, T', D]."""
    m = tiny_model().eval()
    for t in (7, 32, 63, 100):
        x = torch.randn(2, 80, t) - 2.5
        y, vq = m(x)
        assert y.shape == x.shape
        assert vq.indices.shape == (2, (t + 1) // 2, 3)
    x = torch.randn(1, 80, 64) - 2.5
    z = m.encode(x)
    assert z.shape == (1, 32, 8)
    x2 = x.clone()
    x2[..., 60:] += 1.0
    changed = (m.encode(x2) - z).abs().amax(dim=-1)[0] > 1e-6
    assert not changed[:20].any() and changed[-1]


def test_output_is_a_log_mel_never_below_the_floor():
    """Seed defect 6: decoder outputs were raw and could be negative 'power'. Ours is a
    log-mel clamped at the floor, so the mel 10**y is always positive."""
    m = tiny_model()
    with torch.no_grad():
        m.decoder[-1].bias.fill_(-50.0)
        y, _ = m(torch.randn(2, 80, 20))
    assert torch.all(y >= -5.0)


def test_bitrate_and_depth_for_budget():
    m = MelVQVAE(num_codes=256, num_quantizers=24, channels=16, latent_dim=8, res_blocks=1)
    assert m.latent_fps == pytest.approx(31.25)
    assert m.bitrate_bps(5) == pytest.approx(1250.0)
    assert m.bitrate_bps() == pytest.approx(6000.0)
    assert m.depth_for_bitrate(1300) == 5
    assert m.depth_for_bitrate(6000) == 24
    with pytest.raises(ValueError, match="one stage"):
        m.depth_for_bitrate(100)


def test_indices_roundtrip_equals_forward_in_eval(voiced):
    from utils.audio import log_mel

    m = tiny_model().eval()
    L = torch.from_numpy(log_mel(voiced))[None]
    y, vq = m(L, n_q=2)
    idx = m.encode_indices(L, 2)
    assert torch.equal(idx, vq.indices)
    torch.testing.assert_close(m.decode_indices(idx, L.shape[-1]), y)
    y_wave = m.reconstruct(voiced, 2, n_iter=4)
    assert y_wave.shape == voiced.shape and np.isfinite(y_wave).all()


# ------------------------------------------------------------------------------ checkpoints


def test_checkpoint_roundtrip_and_refusals(tmp_path):
    m = tiny_model()
    p = save_atomic(m.checkpoint(step=3), tmp_path / "m.pt")
    m2 = MelVQVAE.from_checkpoint(p)
    for k, v in m.state_dict().items():
        assert torch.equal(v, m2.state_dict()[k]), k
    assert not list(tmp_path.glob(".*tmp")) and not list(tmp_path.glob(".*.partial"))

    garbage = tmp_path / "garbage.pt"
    garbage.write_bytes(b"\x00not a checkpoint" * 10)
    truncated = tmp_path / "truncated.pt"
    truncated.write_bytes(p.read_bytes()[:200])
    other = save_atomic({**m.checkpoint(), "kind": "complex-vgg"}, tmp_path / "other.pt")
    newer = save_atomic({**m.checkpoint(), "format_version": 99}, tmp_path / "newer.pt")
    plain = save_atomic({"weights": torch.zeros(2)}, tmp_path / "plain.pt")
    bigger = save_atomic(tiny_model(channels=24).checkpoint(), tmp_path / "big.pt")
    ck = torch.load(bigger, weights_only=True)
    ck["config"]["channels"] = 16  # config says 16 but weights are 24 wide
    save_atomic(ck, bigger)
    cases = {garbage: "not a loadable", truncated: "not a loadable", other: "complex-vgg",
             newer: "newer", plain: "not a checkpoint", bigger: "do not fit",
             tmp_path / "missing.pt": "not found"}
    for path, reason in cases.items():
        with pytest.raises(CheckpointError, match=reason) as err:
            MelVQVAE.from_checkpoint(path)
        assert str(path) in str(err.value)


def test_checkpoint_with_pickled_code_is_refused(tmp_path):
    class Evil:
        def __reduce__(self):
            return (os.system, ("echo pwned",))

    p = tmp_path / "evil.pt"
    torch.save({"kind": "mel-vqvae", "format_version": 1, "model": Evil()}, p)
    with pytest.raises(CheckpointError, match="not a loadable"):
        load_checkpoint(p)


# ------------------------------------------------------------------------------ training


def test_batches_are_a_pure_function_of_seed_and_step():
    feats = [torch.randn(80, t) for t in (30, 70, 90, 120, 50)]
    a = make_batch(feats, 7, batch_size=4, crop=64, seed=1)
    b = make_batch(feats, 7, batch_size=4, crop=64, seed=1)
    c = make_batch(feats, 8, batch_size=4, crop=64, seed=1)
    assert torch.equal(a[0], b[0]) and not torch.equal(a[0], c[0])
    x, mask = a
    assert x.shape == (4, 80, 64) and mask.shape == (4, 1, 64)
    # DDP shards partition the global batch
    r0 = make_batch(feats, 7, batch_size=4, crop=64, seed=1, rank=0, world=2)[0]
    r1 = make_batch(feats, 7, batch_size=4, crop=64, seed=1, rank=1, world=2)[0]
    assert torch.equal(torch.cat([r0, r1])[[0, 2, 1, 3]], x)


def _run(data, out, *extra, expect: int = 0):
    args = ["codec", "--data", str(data), "--out", str(out), "--batch-size", "4",
            "--crop-frames", "16",
            "--val-every", "3", "--save-every", "2", "--log-every", "1", "--warmup", "2",
            "--threads", "1", "--no-progress", *TINY, *extra]
    assert train_main(args) == expect


def test_resume_is_exact_and_logs_usage(tiny_data, tmp_path):
    _run(tiny_data, tmp_path / "full", "--steps", "6")
    _run(tiny_data, tmp_path / "split", "--steps", "6", "--stop-at", "3")
    _run(tiny_data, tmp_path / "split", "--steps", "6", "--resume")
    a = load_checkpoint(tmp_path / "full" / "last.pt")
    b = load_checkpoint(tmp_path / "split" / "last.pt")
    assert a["step"] == b["step"] == 6
    for k, v in a["model"].items():
        assert torch.equal(v, b["model"][k]), f"{k} differs after resume"
    log = [json.loads(x) for x in (tmp_path / "full" / "log.jsonl").read_text().splitlines()]
    steps = [r for r in log if "loss" in r]
    vals = [r for r in log if "val_score" in r]
    assert len(steps) == 6 and all("perplexity" in r for r in steps)
    assert vals and all(0 < u <= 1 for u in vals[-1]["val_used@3"])
    assert (tmp_path / "full" / "best.pt").exists()
    best = MelVQVAE.from_checkpoint(tmp_path / "full" / "best.pt")
    assert best.config.channels == 16


def test_resume_with_other_settings_is_refused(tiny_data, tmp_path, capsys):
    _run(tiny_data, tmp_path / "r", "--steps", "2")
    capsys.readouterr()
    _run(tiny_data, tmp_path / "r", "--steps", "4", "--resume", "--set", "num_codes=8", expect=2)
    assert "model settings differ" in capsys.readouterr().err
    _run(tiny_data, tmp_path / "r", "--steps", "4", "--resume", "--lr", "0.5", expect=2)
    assert "--lr 0.001 → 0.5" in capsys.readouterr().err


@pytest.mark.slow
def test_ddp_two_cpu_processes_hold_identical_weights(tiny_data, tmp_path):
    out = tmp_path / "ddp"
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
           "-m", "utils.train", "codec",
           "--data", str(tiny_data), "--out", str(out), "--steps", "4", "--batch-size", "4",
           "--crop-frames", "16", "--val-every", "4", "--threads", "1", "--no-progress",
           "--save-rank-states", *TINY]
    env = {**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1"}
    r = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=240)
    assert r.returncode == 0, r.stderr[-3000:]
    w0 = torch.load(out / "rank0_final.pt", weights_only=True)["model"]
    w1 = torch.load(out / "rank1_final.pt", weights_only=True)["model"]
    assert w0.keys() == w1.keys()
    for k in w0:
        assert torch.equal(w0[k], w1[k]), f"{k} differs between ranks"
    single = tiny_model(num_codes=16)
    assert any(not torch.equal(w0[k], v) for k, v in single.state_dict().items())


# ------------------------------------------------------------------------------ evaluation


def test_evaluate_cli_counts_failures_and_ends_with_json(tiny_data, tmp_path, capsys):
    _run(tiny_data, tmp_path / "e", "--steps", "2")
    clips = tmp_path / "clips"
    (clips / "sub").mkdir(parents=True)
    for f in sorted(tiny_data.rglob("*.flac"))[:3]:
        (clips / "sub" / f.name).write_bytes(f.read_bytes())
    (clips / "broken.wav").write_bytes(b"RIFF....garbage")
    ck = tmp_path / "e" / "best.pt"
    assert eval_main(["codec", str(ck), str(clips), "--json", "--max-bitrate", "200",
                      "--no-progress",
                      "--no-stoi", "--gl-iters", "4"]) == 0
    last = capsys.readouterr().out.strip().splitlines()[-1]
    res = json.loads(last)
    assert res["n_clips"] == 3 and res["n_failed"] == 1
    assert res["depth"] == 1 and res["bitrate_bps"] == pytest.approx(125.0)
    assert {"pesq_wb", "logmel_l1", "bitrate_bps"} <= res.keys()
    assert 0 < res["logmel_l1"] < 5
    assert len(res["codebook_used_fraction"]) == 1 and 0 < res["codebook_used_fraction"][0] <= 1
    assert res["codebook_perplexity"][0] >= 1

    assert eval_main(["codec", "-", str(clips), "--baseline", "griffinlim", "--json",
                      "--no-progress",
                      "--no-stoi", "--gl-iters", "8"]) == 0
    gl = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert gl["logmel_l1"] < res["logmel_l1"]


@pytest.mark.parametrize("baseline, tool", [("codec2", "c2enc"), ("opus", "opusenc")])
def test_codec_baselines_when_installed(baseline, tool, voiced):
    import shutil

    from utils import baselines
    from utils.metrics import evaluate_pair

    if shutil.which(tool) is None:
        pytest.skip(f"{tool} not installed")
    fn = baselines.codec2_roundtrip if baseline == "codec2" else baselines.opus_roundtrip
    y = fn(voiced)
    assert abs(len(y) - len(voiced)) < 2000
    assert evaluate_pair(voiced, y, delay=y.delay)["logmel_l1"] < 1.0


# ------------------------------------------------------------------------------ bad input


@pytest.mark.parametrize("option, value", [("--max-bitrate", "0"), ("--depth", "0"),
                                           ("--limit", "0"), ("--gl-iters", "0"),
                                           ("--max-bitrate", "-5")])
def test_evaluate_zero_options_are_refused_not_read_as_unset(option, value, tmp_path, capsys):
    """Defect: 0 was falsy, so `--max-bitrate 0` etc. silently reported full-depth numbers."""
    ck = save_atomic(tiny_model().checkpoint(), tmp_path / "m.pt")
    code = eval_main(["codec", str(ck), str(tmp_path), option, value, "--no-progress"])
    err = capsys.readouterr().err
    assert code == 2 and f"error: {option}:" in err and value in err


def test_evaluate_where_every_file_is_bad_exits_1_with_valid_json(tmp_path, capsys):
    ck = save_atomic(tiny_model().checkpoint(), tmp_path / "m.pt")
    clips = tmp_path / "clips"
    clips.mkdir()
    (clips / "a.wav").write_bytes(b"RIFF....garbage")
    (clips / "b.flac").write_bytes(b"")
    code = eval_main(["codec", str(ck), str(clips), "--json", "--no-progress", "--no-stoi"])
    out = capsys.readouterr().out
    res = json.loads(out.strip().splitlines()[-1])  # NaN would be invalid JSON: null instead
    assert code == 1 and res["n_clips"] == 0 and res["n_failed"] == 2
    assert res["pesq_wb"] is None and "a.wav" in out and "b.flac" in out


def test_checkpoint_without_format_version_or_with_edited_features_is_refused(tmp_path):
    ck = tiny_model().checkpoint()
    old = save_atomic({k: v for k, v in ck.items() if k != "format_version"}, tmp_path / "o.pt")
    with pytest.raises(CheckpointError, match="has no format_version: not written by this"):
        MelVQVAE.from_checkpoint(old)
    edited = save_atomic({**ck, "features": {**ck["features"], "sr": 22050}}, tmp_path / "e.pt")
    with pytest.raises(CheckpointError, match="sr"):
        MelVQVAE.from_checkpoint(edited)


def test_evaluate_per_clip_into_an_unwritable_place_is_refused_first(tmp_path, capsys):
    ck = save_atomic(tiny_model().checkpoint(), tmp_path / "m.pt")
    blocker = tmp_path / "file"
    blocker.write_text("x")  # a file where a folder should be: not writable even as root
    code = eval_main(["codec", str(ck), str(tmp_path), "--per-clip",
                      str(blocker / "rows.json"), "--no-progress"])
    assert code == 2 and "--per-clip" in capsys.readouterr().err


def test_seed_defect_5_the_codec_trains_on_the_log_mel_not_the_raw_power_mel(tiny_data):
    """Seed defect 5: raw power mels (no log, no normalisation) went into the loss."""
    from utils.audio import load, log_mel
    from utils.data import SpeechCommands
    from utils.tasks.codec import load_log_mels

    feats, _ = load_log_mels([tiny_data], "train")
    first = SpeechCommands(tiny_data, split="train", length=None).files[0]
    np.testing.assert_allclose(feats[0].numpy(), log_mel(load(first)), atol=1e-5)
    assert feats[0].min() >= -5.0 and feats[0].max() < 2.0  # log10 units, floor 1e-5
    x, _ = make_batch(feats, 0, batch_size=2, crop=16, seed=0)
    assert x.min() >= -5.0 and x.max() < 2.0


def test_ladder_scores_every_depth_in_one_pass(tiny_data, tmp_path, capsys):
    _run(tiny_data, tmp_path / "e", "--steps", "2")
    ck = tmp_path / "e" / "best.pt"
    assert eval_main(["codec", str(ck), str(tiny_data), "--ladder", "--json", "--limit", "3",
                      "--no-progress", "--no-stoi", "--gl-iters", "4"]) == 0
    out = capsys.readouterr().out
    res = json.loads(out.strip().splitlines()[-1])
    ladder = res["ladder"]
    assert [r["depth"] for r in ladder] == [1, 2, 3] and "ladder (one encoding" in out
    assert [r["bitrate_bps"] for r in ladder] == sorted(r["bitrate_bps"] for r in ladder)
    assert ladder[-1]["logmel_l1"] == res["logmel_l1"] and res["n_clips"] == 3
    assert eval_main(["codec", str(ck), str(tiny_data), "--ladder", "--max-bitrate", "200",
                      "--json", "--limit", "1", "--no-progress", "--no-stoi",
                      "--gl-iters", "2"]) == 0
    capped = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert [r["depth"] for r in capped["ladder"]] == [1]  # 125 bps per stage here
    assert eval_main(["codec", "-", str(tiny_data), "--ladder", "--baseline", "griffinlim"]) == 2


# ------------------------------------------------------------------------------ augmentation


def test_torch_log_mel_equals_the_collections_log_mel(voiced):
    from utils.audio import log_mel
    from utils.tasks.codec import torch_log_mel

    ref = log_mel(voiced)
    got = torch_log_mel(torch.from_numpy(voiced)[None])[0].numpy()
    assert got.shape == ref.shape  # float32 FFTs differ by ~1e-4 only near the -100 dB floor
    np.testing.assert_allclose(got, ref, atol=1e-3)
    assert np.abs(got - ref).mean() < 1e-5


def test_augmented_batches_are_pure_functions_of_seed_and_step_and_stay_in_range(voiced):
    from utils.tasks.codec import Augment, generated_noise, make_audio_batch

    waves = [torch.from_numpy(voiced), torch.from_numpy(voiced[:3000])]
    noise = [0.1 * torch.randn(40000, generator=torch.Generator().manual_seed(0))]
    kw = dict(batch_size=4, crop=32, seed=3, augment=Augment(noise_prob=1.0), noise=noise)
    a, ma = make_audio_batch(waves, 5, **kw)
    b, mb = make_audio_batch(waves, 5, **kw)
    c, _ = make_audio_batch(waves, 6, **kw)
    assert torch.equal(a, b) and torch.equal(ma, mb) and not torch.equal(a, c)
    assert a.shape == (4, 80, 32) and a.min() >= -5.0 and a.max() < 1.0
    clean, _ = make_audio_batch(waves, 5, batch_size=4, crop=32, seed=3)
    assert not torch.equal(clean, a)  # noise and gain changed the clips
    assert {tuple(m[0].nonzero().flatten()[[0, -1]].tolist()) for m in ma} <= {(0, 31), (0, 11)}
    half = [make_audio_batch(waves, 5, **kw, rank=r, world=2)[0] for r in (0, 1)]
    assert torch.equal(torch.cat([half[0][:1], half[1][:1]]), a[:2])
    for kind in ("white", "pink", "brown"):
        x = generated_noise(kind, 16000, torch.Generator().manual_seed(1))
        assert abs(float(x.pow(2).mean()) - 1) < 1e-4
    spec = torch.fft.rfft(generated_noise("brown", 16000, torch.Generator().manual_seed(1))).abs()
    assert spec[10:100].mean() > 10 * spec[4000:5000].mean()  # brown noise is low-heavy


@pytest.mark.parametrize("kw, option", [({"noise": ["/nonexistent"]}, "--noise"),
                                        ({"noise": ["."]}, "--noise"),
                                        ({"init": "/nonexistent.pt"}, "--init")])
def test_codec_task_checks_augmentation_options_first(tiny_data, kw, option):
    from utils.errors import OptionError
    from utils.tasks.codec import CodecTask

    with pytest.raises(OptionError, match=option):
        CodecTask([tiny_data], **kw)


def test_augmented_fine_tuning_trains_and_resumes_exactly(tiny_data, tmp_path,
                                                         assert_resumes_exactly):
    _run(tiny_data, tmp_path / "base", "--steps", "2")
    init = str(tmp_path / "base" / "last.pt")
    args = ["--augment", "--init", init, "--val-every", "4"]
    assert_resumes_exactly(lambda out, *e: _run(tiny_data, out, *e), tmp_path, *args)
    ck = torch.load(tmp_path / "full" / "best.pt", weights_only=True)
    assert ck["augment"]["noise_prob"] == 0.5 and ck["init"] == init


def test_resume_accepts_a_run_saved_before_a_config_field_existed(tiny_data, tmp_path, capsys):
    """A field added to VQVAEConfig later (here `encoder`) takes its default on resume."""
    _run(tiny_data, tmp_path / "r", "--steps", "4", "--stop-at", "2")
    last = tmp_path / "r" / "last.pt"
    ck = torch.load(last, weights_only=True)
    del ck["config"]["encoder"]
    save_atomic(ck, last)
    _run(tiny_data, tmp_path / "r", "--steps", "4", "--resume")
    ck["config"]["channels"] = 99
    save_atomic(ck, last)
    _run(tiny_data, tmp_path / "r", "--steps", "6", "--resume", expect=2)
    assert "model settings differ from this command's (channels" in capsys.readouterr().err
