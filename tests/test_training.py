"""The one training loop (utils.training): schedule, options, folders, resume, DDP, devices."""

from __future__ import annotations

import json
import math
import os
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from utils import distributed
from utils.checkpoint import load_checkpoint
from utils.errors import OptionError, ProjectError
from utils.models.vqvae import MelVQVAE, VQVAEConfig
from utils.tasks import codec, words
from utils.train import main as train_main
from utils.training import TrainConfig, override, train, warmup_cosine

ROOT = Path(__file__).resolve().parents[1]
TINY = VQVAEConfig(channels=16, latent_dim=8, num_codes=16, num_quantizers=3, res_blocks=1)
TINY_SET = ["--set", "channels=16", "--set", "latent_dim=8", "--set", "num_codes=16",
            "--set", "num_quantizers=3", "--set", "res_blocks=1"]
DEVICES = ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])


@pytest.fixture
def speech(voiced_words) -> Path:
    return voiced_words


def _cfg(out: Path, **kw) -> TrainConfig:
    base = dict(out=str(out), steps=6, batch_size=4, lr=1e-3, warmup=2, log_every=1,
                val_every=3, save_every=2, threads=1, progress=False, device="cpu")
    return TrainConfig(**{**base, **kw})


# ------------------------------------------------------------------------------------ schedule


def test_warmup_cosine_matches_its_formula():
    total, warm, floor = 100, 10, 0.1
    f = [warmup_cosine(s, warmup=warm, total=total, floor=floor) for s in range(total + 5)]
    assert f[0] == pytest.approx(0.1) and f[9] == pytest.approx(1.0)
    assert f[10] == pytest.approx(1.0)  # the cosine starts at the peak
    mid = 10 + 45
    assert f[mid] == pytest.approx(floor + (1 - floor) * 0.5 * (1 + math.cos(math.pi * 0.5)))
    assert f[100] == pytest.approx(floor) and f[104] == pytest.approx(floor)
    assert all(a >= b for a, b in zip(f[10:], f[11:], strict=False))  # never rises again
    assert warmup_cosine(0, warmup=0, total=10) == pytest.approx(1.0)


def test_the_optimizer_steps_only_in_the_training_loop():
    """One loop: no other file of utils/ takes an optimizer step or builds an optimizer."""
    offenders = []
    for path in sorted((ROOT / "utils").rglob("*.py")):
        text = path.read_text()
        if path.name != "training.py" and re.search(r"\.step\(\)|optim\.\w+\(", text):
            offenders.append(str(path.relative_to(ROOT)))
    assert not offenders, offenders


# ------------------------------------------------------------------------------------ options


def test_override_converts_types_and_refuses_bad_values():
    cfg = override(TINY, ["channels=32", "quantizer_dropout=no", "beta=0.5"])
    assert (cfg.channels, cfg.quantizer_dropout, cfg.beta) == (32, False, 0.5)
    cases = {"channels=abc": "takes a int", "colour=red": "unknown key",
             "channels": "KEY=VALUE", "channels=0": "channels must be at least 1",
             "quantizer_dropout=maybe": "takes a bool", "decay=1.5": "decay"}
    for item, reason in cases.items():
        with pytest.raises(OptionError, match=reason) as err:
            override(TINY, [item])
        assert item.split("=")[0] in str(err.value) and "--set" in str(err.value)


def test_override_sets_an_optional_field_by_its_declared_type():
    """Defect: a field whose default is None (encoder_channels) raised a raw TypeError."""
    cfg = override(TINY, ["encoder_channels=78", "encoder=cbhg"])
    assert (cfg.encoder_channels, cfg.encoder) == (78, "cbhg")
    assert override(cfg, ["encoder_channels=none"]).encoder_channels is None
    with pytest.raises(OptionError, match="encoder_channels takes a int"):
        override(TINY, ["encoder_channels=abc"])
    with pytest.raises(OptionError, match="encoder_channels must be at least 2"):
        override(TINY, ["encoder_channels=1"])


@pytest.mark.parametrize("field, value, flag", [
    ("batch_size", 0, "--batch-size"), ("steps", 0, "--steps"), ("lr", 0.0, "--lr"),
    ("log_every", 0, "--log-every"), ("max_minutes", -1.0, "--max-minutes"),
    ("min_lr_ratio", 2.0, "--min-lr-ratio"), ("device", "tpu", "--device"),
    ("threads", 0, "--threads"), ("warmup", -1, "--warmup")])
def test_train_config_refuses_invalid_values_naming_the_option(field, value, flag, tmp_path):
    with pytest.raises(OptionError, match=re.escape(flag)):
        _cfg(tmp_path, **{field: value})


@pytest.mark.parametrize("extra, reason", [
    (["--batch-size", "0"], "--batch-size: must be a whole number in [1, "),
    (["--set", "channels=0"], "channels must be at least 1"),
    (["--set", "channels=abc"], "channels takes a int"),
    (["--steps", "0"], "--steps: must be a whole number in [1, "),
    (["--crop-frames", "0"], "--crop-frames: must be a whole number in [1, "),
    (["--device", "cuda:7" if torch.cuda.is_available() else "cuda"], "--device"),
])
def test_bad_training_options_fail_before_any_data_loads(extra, reason, speech, tmp_path,
                                                         monkeypatch, capsys):
    def boom(*a, **k):
        raise AssertionError("data loaded before the options were checked")

    monkeypatch.setattr(codec, "load_log_mels", boom)
    args = ["codec", "--data", str(speech), "--out", str(tmp_path / "r"), "--no-progress",
            *extra]
    assert train_main(args) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and reason in err and "Traceback" not in err


def test_missing_data_folder_is_one_clear_error(tmp_path, capsys):
    assert train_main(["codec", "--data", str(tmp_path / "nope"), "--out",
                       str(tmp_path / "r")]) == 2
    assert "--data: no such folder" in capsys.readouterr().err


# ------------------------------------------------------------------------------------ folders


def test_unwritable_or_full_output_folder_is_refused_before_loading(speech, tmp_path,
                                                                   monkeypatch, capsys):
    monkeypatch.setattr(codec, "load_log_mels", lambda *a, **k: pytest.fail("data loaded"))
    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    assert train_main(["codec", "--data", str(speech), "--out", str(blocker)]) == 2
    assert "exists and is not a folder" in capsys.readouterr().err
    assert train_main(["codec", "--data", str(speech), "--out", str(blocker / "run")]) == 2
    err = capsys.readouterr().err
    assert str(blocker / "run") in err and "cannot write" in err

    def full(fd):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "fsync", full)
    assert train_main(["codec", "--data", str(speech), "--out", str(tmp_path / "full")]) == 2
    err = capsys.readouterr().err
    assert "No space left on device" in err and ".write-probe" not in err


def test_stale_temps_are_removed_a_finished_run_is_not_overwritten_and_resume_is_logged(
        speech, tmp_path):
    out = tmp_path / "run"
    out.mkdir()
    (out / ".last.pt.abc12345.partial").write_bytes(b"half a checkpoint")
    task = codec.CodecTask([speech], TINY, crop_frames=16)
    train(task, _cfg(out, steps=4))
    assert not list(out.glob(".*.partial"))
    with pytest.raises(OptionError, match="holds a run already"):
        train(task, _cfg(out, steps=4))
    train(task, _cfg(out, steps=6, resume=True))
    log = [json.loads(x) for x in (out / "log.jsonl").read_text().splitlines()]
    events = [r for r in log if r.get("event") == "resume"]
    assert events == [{"event": "resume", "step": 4}]
    steps = [r["step"] for r in log if "loss" in r]
    assert steps == [1, 2, 3, 4, 5, 6]  # no step logged twice


# ------------------------------------------------------------------------------------ resume


def _words_sets() -> tuple[words.WordData, words.WordData]:
    g = torch.Generator().manual_seed(0)
    x = torch.randn(12, 1, 129, 63, generator=g, dtype=torch.complex64)
    y = torch.arange(12) % 2
    x[y == 1, :, 10:20] *= 4  # something to learn
    data = words.WordData(x, y, ["a", "b"], [])
    return data, data


def test_words_resume_is_bit_exact(tmp_path):
    """VGG with batch norm and dropout: weights, optimizer, schedule and RNG all come back."""
    train_set, val_set = _words_sets()
    config = words.WordsConfig("vgg", "complex", ("a", "b"), 2)
    task = words.WordsTask(config, train_set, val_set)
    full = train(task, _cfg(tmp_path / "full"))
    train(task, _cfg(tmp_path / "split", stop_at=3))
    resumed = train(task, _cfg(tmp_path / "split", resume=True))
    assert full.step == resumed.step == 6
    a = load_checkpoint(tmp_path / "full" / "last.pt")["model"]
    b = load_checkpoint(tmp_path / "split" / "last.pt")["model"]
    for k in a:
        assert torch.equal(a[k], b[k]), f"{k} differs after resume"


@pytest.mark.slow
def test_words_under_torchrun_two_processes_hold_identical_weights(tmp_path):
    from utils.audio import save

    data = tmp_path / "w"
    sr = 16000
    for word, f0 in (("lo", 400.0), ("hi", 1800.0)):
        (data / word).mkdir(parents=True)
        for v in range(6):
            t = np.arange(int(0.3 * sr)) / sr
            y = np.zeros(sr, np.float32)
            y[800 * v : 800 * v + len(t)] = 0.5 * np.hanning(len(t)) * np.sin(2 * np.pi * f0 * t)
            save(data / word / f"v{v}_nohash_0.flac", y)
    (data / "validation_list.txt").write_text("lo/v4_nohash_0.flac\nhi/v4_nohash_0.flac\n")
    (data / "testing_list.txt").write_text("lo/v5_nohash_0.flac\nhi/v5_nohash_0.flac\n")
    out = tmp_path / "out"
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
           "-m", "utils.train", "words", "--data", str(data), "--arch", "vgg", "--kind",
           "complex", "--seeds", "0", "--epochs", "2", "--vgg-width", "2", "--batch-size", "4",
           "--out", str(out), "--no-progress", "--save-rank-states"]
    env = {**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1"}
    r = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr[-3000:]
    run = out / "runs" / "words_vgg_complex_s0"
    w0 = torch.load(run / "rank0_final.pt", weights_only=True)["model"]
    w1 = torch.load(run / "rank1_final.pt", weights_only=True)["model"]
    for k in w0:
        if "running" in k or "num_batches" in k:  # batch-norm statistics are per process
            continue
        assert torch.equal(w0[k], w1[k]), f"{k} differs between ranks"
    assert (out / "words_vgg_complex_s0.pt").is_file()


# ------------------------------------------------------------------------------------ devices


def test_device_auto_is_cuda_when_present_and_cuda_without_gpu_is_refused():
    expected = "cuda" if torch.cuda.is_available() else "cpu"
    assert distributed.resolve_device("auto").type == expected
    assert distributed.resolve_device("cpu").type == "cpu"
    if not torch.cuda.is_available():
        with pytest.raises(OptionError, match="no CUDA device"):
            distributed.resolve_device("cuda")
    with pytest.raises(ProjectError, match="--device"):
        distributed.resolve_device("tpu")


@pytest.mark.parametrize("device", DEVICES)
def test_codec_train_validate_resume_decode_on_each_device(device, speech, tmp_path, voiced):
    """The path a Colab user takes: train, validate, resume, then decode audio, on ``device``."""
    task = codec.CodecTask([speech], TINY, crop_frames=16)
    train(task, _cfg(tmp_path / "r", device=device, stop_at=3))
    result = train(task, _cfg(tmp_path / "r", device=device, resume=True))
    assert result.step == 6 and next(result.model.parameters()).device.type == device
    assert any("val_score" in r for r in result.records)
    model = MelVQVAE.from_checkpoint(tmp_path / "r" / "best.pt", map_location=device)
    idx = model.encode_audio(voiced, 2)
    assert idx.device.type == device
    y = model.decode_audio(idx, len(voiced), n_iter=4)
    assert isinstance(y, np.ndarray) and y.shape == voiced.shape and np.isfinite(y).all()


@pytest.mark.parametrize("device", DEVICES)
def test_words_train_and_evaluate_on_each_device(device, tmp_path):
    train_set, val_set = _words_sets()
    task = words.WordsTask(words.WordsConfig("lenet", "real", ("a", "b"), 0.25), train_set,
                           val_set)
    result = train(task, _cfg(tmp_path / "w", device=device, steps=3))
    assert next(result.model.parameters()).device.type == device
    r = words.evaluate(result.model, words.model_input(val_set.x, "real"), val_set.y)
    assert 0 <= r["accuracy"] <= 1


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_mixed_precision_trains_on_cuda(speech, tmp_path):
    task = codec.CodecTask([speech], TINY, crop_frames=16)
    result = train(task, _cfg(tmp_path / "amp", device="cuda", amp=True))
    assert result.step == 6 and math.isfinite(result.records[-1].get("loss", 0.0))


def test_mixed_precision_without_cuda_is_refused(tmp_path):
    if torch.cuda.is_available():
        pytest.skip("CUDA present")
    task = codec.CodecTask(["."], TINY)
    with pytest.raises(OptionError, match="--amp"):
        train(task, _cfg(tmp_path / "amp", amp=True))
