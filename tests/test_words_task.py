"""Task ``words``: spoken-word classification on the complex STFT (utils.tasks.words)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import librosa
import numpy as np
import pytest
import torch
from torch import nn

from utils.audio import save
from utils.checkpoint import CheckpointError, load_checkpoint, save_atomic
from utils.models.complex_cnn import ComplexLeNet, RealLeNet, count_parameters
from utils.tasks import words as W
from utils.training import TrainConfig, train

ROOT = Path(__file__).resolve().parents[1]
SR = 16000


def _burst(freq: float, start: float, dur: float = 0.2, length: float = 0.5) -> np.ndarray:
    """A Hann-windowed tone burst in silence (a stand-in for a spoken word)."""
    y = np.zeros(int(length * SR), np.float32)
    n = int(dur * SR)
    t = np.arange(n) / SR
    i = int(start * SR)
    y[i : i + n] = 0.5 * np.hanning(n) * np.sin(2 * np.pi * freq * t)
    return y


@pytest.fixture
def tiny_words(tmp_path: Path) -> Path:
    """Two 'words' (low / high tone bursts), 6 'voices' each: 4 train, 1 validation, 1 test."""
    root = tmp_path / "tiny"
    val, test = [], []
    for word, f0 in (("lo", 400.0), ("hi", 1800.0)):
        (root / word).mkdir(parents=True)
        for v in range(6):
            name = f"{word}/v{v:07d}_nohash_0.flac"
            save(root / name, _burst(f0 * (1 + 0.03 * v), 0.05 + 0.04 * v))
            if v == 4:
                val.append(name)
            elif v == 5:
                test.append(name)
    (root / "validation_list.txt").write_text("\n".join(val) + "\n")
    (root / "testing_list.txt").write_text("\n".join(test) + "\n")
    return root


# ------------------------------------------------------------------------------------ features


@pytest.mark.parametrize("backend", ["numpy", "torch"])
def test_compress_keeps_phase_scales_modulus_and_inverts(backend):
    rng = np.random.default_rng(0)
    X = rng.standard_normal((5, 7)) + 1j * rng.standard_normal((5, 7))
    X[0, :3] = 0  # exact zeros stay zero (no NaN from 0 ** -0.7)
    Xin = torch.from_numpy(X) if backend == "torch" else X
    Fc = W.compress(Xin, 0.3)
    Fn = Fc.numpy() if backend == "torch" else Fc
    nz = np.abs(X) > 0
    assert np.all(Fn[~nz] == 0) and np.all(np.isfinite(Fn))
    np.testing.assert_allclose(np.abs(Fn[nz]), np.abs(X[nz]) ** 0.3, rtol=1e-12)
    # same phase: F / X is real and positive wherever X != 0
    ratio = Fn[nz] / X[nz]
    np.testing.assert_allclose(ratio.imag, 0, atol=1e-12)
    assert np.all(ratio.real > 0)
    back = W.decompress(Fc, 0.3)
    back = back.numpy() if backend == "torch" else back
    np.testing.assert_allclose(back, X, rtol=1e-10, atol=1e-12)


def test_prepare_clip_centres_the_energy_and_normalises_the_peak():
    y = np.zeros(3000, np.float32)
    y[100] = 0.25  # a click near the start of a short clip
    out = W.prepare_clip(y, 8000)
    assert out.shape == (8000,) and out.dtype == np.float32
    assert int(np.argmax(np.abs(out))) == 4000 and out.max() == 1.0
    # a long clip is cut around its energy, not at its start
    z = np.zeros(20000, np.float32)
    z[15000:15100] = np.hanning(100)
    out = W.prepare_clip(z, 8000)
    assert np.count_nonzero(out) == np.count_nonzero(z)
    assert abs(np.argmax(out) - 4000) <= 1
    assert not W.prepare_clip(np.zeros(500, np.float32), 8000).any()  # silence stays silent


def test_complex_features_keep_the_phase_of_the_stft(voiced):
    cfg = W.WORD_FEATURES
    F = W.complex_features(voiced, sr=SR)
    assert F.shape == cfg.shape == (1, 129, 63) and F.dtype == np.complex64
    # reference in float64: resample, centre, STFT, then |X|^c with the angle of X
    y8 = librosa.resample(voiced.astype(np.float64), orig_sr=SR, target_sr=cfg.sr,
                          res_type="soxr_hq")
    ref_clip = W.prepare_clip(y8.astype(np.float32), cfg.length).astype(np.float64)
    X = librosa.stft(ref_clip, n_fft=cfg.n_fft, hop_length=cfg.hop_length, window="hann")
    strong = np.abs(X) > 1e-3 * np.abs(X).max()
    np.testing.assert_allclose(np.abs(F[0]), np.abs(X) ** cfg.exponent, rtol=1e-4, atol=1e-4)
    dphase = np.angle(F[0][strong] * np.conj(X[strong]))
    assert np.max(np.abs(dphase)) < 1e-4
    # the features carry the whole (band-limited, centred) signal: decompress + iSTFT gives it back
    y_back = librosa.istft(W.decompress(F[0].astype(np.complex128), cfg.exponent),
                           n_fft=cfg.n_fft, hop_length=cfg.hop_length, window="hann",
                           length=cfg.length)
    assert np.max(np.abs(y_back - ref_clip)) < 1e-4
    # the real twins' input is the compressed magnitude, i.e. the same thing without the phase
    np.testing.assert_array_equal(W.magnitude_features(voiced, sr=SR), np.abs(F))
    x = torch.from_numpy(F)[None]
    assert W.model_input(x, "complex") is x
    assert W.model_input(x, "real").dtype == torch.float32
    with pytest.raises(ValueError, match="kind"):
        W.model_input(x, "phase")


def test_load_words_maps_labels_into_the_given_classes(tiny_words):
    data = W.load_words(tiny_words, "train")
    assert data.words == ["hi", "lo"] and data.x.shape == (8, 1, 129, 63)
    sub = W.load_words(tiny_words, None, words=["lo"], classes=["x", "lo", "hi"])
    assert sub.words == ["x", "lo", "hi"] and set(sub.y.tolist()) == {1}
    with pytest.raises(ValueError, match="not among the classes"):
        W.load_words(tiny_words, None, words=["lo"], classes=["hi"])


# ------------------------------------------------------------------------------------ models


def test_real_twin_is_parameter_matched_and_the_search_leaves_the_rng_alone():
    c = W.build_model("lenet", "complex", 8, 0.5)
    torch.manual_seed(1)
    r = W.build_model("lenet", "real", 8, 0.5)
    assert isinstance(c, ComplexLeNet) and isinstance(r, RealLeNet)
    assert abs(count_parameters(r) / count_parameters(c) - 1) < 0.03
    torch.manual_seed(1)
    r2 = W.build_model("lenet", "real", 8, 0.5, width_scale=r.width_scale)
    for a, b in zip(r.state_dict().values(), r2.state_dict().values(), strict=True):
        assert torch.equal(a, b)  # same init: the matched-width search drew no random numbers
    v = W.build_model("vgg", "real", 8, 4)
    assert abs(count_parameters(v) / count_parameters(W.build_model("vgg", "complex", 8, 4))
               - 1) < 0.03
    x = torch.randn(2, 1, 129, 63, dtype=torch.complex64)
    assert c(x).shape == (2, 8) and r(x.abs()).shape == (2, 8) and v(x.abs()).shape == (2, 8)


def test_ri_control_sees_real_and_imaginary_parts_with_matched_parameters():
    """The control of notebook 06: the real twin on [Re F, Im F] (two channels), its width
    matched again to the complex model's parameter count; the phase reaches it (a global phase
    turn changes its input but not the magnitude twin's)."""
    x = torch.randn(3, 1, 129, 63, dtype=torch.complex64)
    ri = W.model_input(x, "ri")
    assert ri.shape == (3, 2, 129, 63) and ri.dtype == torch.float32
    torch.testing.assert_close(torch.complex(ri[:, :1], ri[:, 1:]), x, rtol=0, atol=0)
    turned = x * torch.exp(torch.tensor(0.7j))
    torch.testing.assert_close(W.model_input(turned, "real"), W.model_input(x, "real"))
    assert not torch.allclose(W.model_input(turned, "ri"), ri)
    for arch, width in (("lenet", 0.5), ("vgg", 4)):
        c = W.build_model(arch, "complex", 8, width)
        r = W.build_model(arch, "ri", 8, width)
        assert abs(count_parameters(r) / count_parameters(c) - 1) < 0.03
        first = next(m for m in r.modules() if isinstance(m, nn.Conv2d))
        assert first.in_channels == 2
        assert r(ri).shape == (3, 8)
    with pytest.raises(ValueError, match="kind must be one of"):
        W.model_input(x, "phase")


# ------------------------------------------------------------------------------------ training


class _Fixed(nn.Module):
    def __init__(self, logits: torch.Tensor) -> None:
        super().__init__()
        self.logits = logits

    def forward(self, x):
        return self.logits[: len(x)]


def test_evaluate_counts_accuracy_and_confusion():
    logits = torch.tensor([[2.0, 0, 0], [0, 2.0, 0], [0, 2.0, 0], [0, 0, 2.0]])
    y = torch.tensor([0, 1, 2, 2])
    r = W.evaluate(_Fixed(logits), torch.zeros(4, 1), y)
    assert r["accuracy"] == 0.75 and r["n"] == 4
    np.testing.assert_array_equal(r["confusion"], [[1, 0, 0], [0, 1, 0], [0, 1, 1]])
    ref = torch.nn.functional.cross_entropy(logits.double(), y).item()
    assert r["loss"] == pytest.approx(ref, rel=1e-6)


def _tiny_sets() -> tuple[W.WordData, W.WordData]:
    feats, labels = [], []
    for k in range(16):
        word = k % 2
        feats.append(W.complex_features(_burst(500.0 if word else 1500.0, 0.02 * (k // 2)), sr=SR))
        labels.append(word)
    data = W.WordData(torch.from_numpy(np.stack(feats)), torch.tensor(labels), ["hi", "lo"], [])
    return data, data


def test_training_through_the_shared_loop_reduces_the_loss(tmp_path):
    train_set, val_set = _tiny_sets()
    task = W.WordsTask(W.WordsConfig("lenet", "complex", ("hi", "lo"), 0.25), train_set, val_set)
    assert task.steps_per_epoch(8) == 2
    cfg = TrainConfig(out=str(tmp_path / "run"), steps=24, batch_size=8, lr=1e-2,
                      weight_decay=1e-2, warmup=1, min_lr_ratio=0.0, grad_clip=5.0, log_every=1,
                      val_every=2, save_every=2, threads=1, progress=False)
    result = train(task, cfg)
    losses = [r["loss"] for r in result.records if "loss" in r]
    vals = [r["val_accuracy"] for r in result.records if "val_accuracy" in r]
    assert len(losses) == 24 and len(vals) == 12
    assert np.mean(losses[-2:]) < 0.5 * np.mean(losses[:2])
    assert max(vals) == 1.0 and result.best_score == 1.0
    best, ckpt = W.load_model(tmp_path / "run" / "best.pt")  # full-precision best weights
    assert ckpt["val"]["val_accuracy"] == 1.0 and not best.training
    assert W.evaluate(best, train_set.x, train_set.y)["accuracy"] == 1.0


def test_batches_are_a_pure_function_of_seed_and_step_and_shards_partition_them():
    train_set, _ = _tiny_sets()
    task = W.WordsTask(W.WordsConfig("lenet", "real", ("hi", "lo"), 0.25), train_set)
    a = task.batch(3, seed=1, batch_size=6)
    b = task.batch(3, seed=1, batch_size=6)
    assert torch.equal(a[0], b[0]) and torch.equal(a[1], b[1])
    assert not a[0].is_complex()  # a real twin gets the modulus
    assert task.config.width_scale is not None  # fixed once, so a resume rebuilds the same model
    r0 = task.batch(3, seed=1, batch_size=6, rank=0, world=2)
    r1 = task.batch(3, seed=1, batch_size=6, rank=1, world=2)
    assert torch.equal(torch.cat([r0[0], r1[0]])[[0, 3, 1, 4, 2, 5]], a[0])
    # one epoch visits every clip once
    seen = torch.cat([task.batch(s, seed=1, batch_size=6)[1] for s in range(3)])
    assert len(seen) == 16


# ------------------------------------------------------------------------------------ checkpoints


def test_checkpoint_round_trip_and_refusal_of_another_kind(tmp_path):
    torch.manual_seed(0)
    model = W.build_model("vgg", "complex", 8, 2)
    x = torch.randn(4, 1, 129, 63, dtype=torch.complex64)
    model.train()
    model(x)  # move the batch-norm running statistics away from their initial values
    model.eval()
    config = {"arch": "vgg", "kind": "complex", "num_classes": 8, "width": 2, "vgg": "vgg11",
              "dropout": 0.25, "width_scale": None, "words": list("abcdefgh"), "seed": 0}
    path = W.save_model(model, config, tmp_path / "w.pt", {"train_loss": [1.0, 0.5],
                                                           "best_epoch": 2})
    raw = torch.load(path, weights_only=True)  # plain tensors and primitives only
    assert raw["kind"] == W.KIND and raw["config"] == config
    loaded, ckpt = W.load_model(path)
    assert ckpt["history"]["best_epoch"] == 2 and not loaded.training
    for (k, a), b in zip(model.state_dict().items(), loaded.state_dict().values(), strict=True):
        assert a.dtype == b.dtype, k
        if a.is_floating_point() or a.is_complex():  # stored as float16: rounding only
            torch.testing.assert_close(b, a, rtol=1e-3, atol=1e-4)
        else:
            assert torch.equal(a, b)
    with torch.no_grad():
        torch.testing.assert_close(loaded(x), model(x), rtol=2e-2, atol=2e-2)
    # another kind is refused with a clear message, by both loaders
    with pytest.raises(CheckpointError, match="expected 'mel-vqvae'"):
        load_checkpoint(path, "mel-vqvae")
    other = save_atomic({"kind": "mel-vqvae", "format_version": 1, "config": {}, "model": {}},
                        tmp_path / "vq.pt")
    with pytest.raises(CheckpointError, match="expected 'spoken-words'"):
        W.load_model(other)


def test_cli_trains_one_tiny_epoch_and_saves_loadable_checkpoints(tiny_words, tmp_path):
    real = tmp_path / "real"
    (real / "hi").mkdir(parents=True)
    (real / "other").mkdir()
    for i in range(2):
        save(real / "hi" / f"r{i}.flac", _burst(1850.0, 0.1 + 0.1 * i, length=0.8))
        save(real / "other" / f"r{i}.flac", _burst(900.0, 0.1))
    out = tmp_path / "out"
    cmd = [sys.executable, "-m", "utils.train", "words", "--data", str(tiny_words), "--arch",
           "lenet", "--kind", "complex", "real", "--seeds", "0", "--epochs", "1",
           "--lenet-width", "0.25", "--batch-size", "4", "--out", str(out), "--no-progress",
           "--real-dir", str(real)]
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    proc = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    files = sorted(p.name for p in out.glob("*.pt"))
    assert files == ["words_lenet_complex_s0.pt", "words_lenet_real_s0.pt"]
    result = json.loads(proc.stdout.strip().splitlines()[-1])
    assert [(r["arch"], r["kind"], r["seeds"]) for r in result["test"]] == [
        ("lenet", "complex", 1), ("lenet", "real", 1)]
    assert "real" in result  # the 'hi' folder was evaluated (over both classes)
    for name in files:
        model, ckpt = W.load_model(out / name)
        cfg = ckpt["config"]
        assert cfg["words"] == ["hi", "lo"] and cfg["epochs"] == 1
        assert cfg["features"] == {"sr": 8000, "length": 8000, "n_fft": 256, "hop_length": 128,
                                   "exponent": 0.3}
        assert ckpt["history"]["steps"] == 2  # 8 clips, batches of 4
        assert (out / "runs" / name.removesuffix(".pt") / "log.jsonl").is_file()

    # the evaluation command measures the same checkpoints on any folder
    ev = [sys.executable, "-m", "utils.evaluate", "words", *(str(out / f) for f in files),
          str(tiny_words), "--split", "testing", "--json"]
    proc = subprocess.run(ev, cwd=ROOT, env=env, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    res = json.loads(proc.stdout.strip().splitlines()[-1])
    assert res["n_clips"] == 2 and res["n_failed"] == 0 and 0 <= res["accuracy"] <= 1
    assert [m["file"] for m in res["models"]] == files


def test_resume_extends_the_history_instead_of_replacing_it(tiny_words, tmp_path, capsys):
    """A run stopped mid-way (mid-epoch) and resumed exports the history of an uninterrupted
    run: every epoch once, in order, the records from before the interruption included."""
    from utils.train import main as train_main

    def run(out: Path, *extra: str) -> int:
        return train_main(["words", "--data", str(tiny_words), "--arch", "lenet", "--kind",
                           "complex", "--seeds", "0", "--epochs", "3", "--lenet-width", "0.25",
                           "--batch-size", "4", "--threads", "1", "--out", str(out),
                           "--no-progress", *extra])

    assert run(tmp_path / "full") == 0
    assert run(tmp_path / "cut", "--stop-at", "3") == 0  # 2 steps per epoch: during epoch 2
    assert run(tmp_path / "cut", "--resume") == 0
    capsys.readouterr()
    full = W.load_model(tmp_path / "full" / "words_lenet_complex_s0.pt")[1]["history"]
    cut = W.load_model(tmp_path / "cut" / "words_lenet_complex_s0.pt")[1]["history"]
    assert full["train_step"] == full["val_step"] == [2, 4, 6]
    assert cut["train_step"] == cut["val_step"] == [2, 4, 6]
    for key in ("train_loss", "lr", "val_loss", "val_accuracy", "best_step",
                "best_val_accuracy"):
        assert cut[key] == pytest.approx(full[key]), key
    assert len(cut["train_loss"]) == len(cut["val_accuracy"]) == 3


def test_run_records_drops_what_a_resume_redoes(tmp_path):
    log = tmp_path / "log.jsonl"
    lines = [{"step": 2, "loss": 1.0}, {"step": 2, "val_accuracy": 0.5},
             {"step": 4, "loss": 0.9},  # logged, then lost: last.pt holds step 2
             {"event": "resume", "step": 2},
             {"step": 4, "loss": 0.8}, {"step": 4, "val_accuracy": 0.6}]
    log.write_text("\n".join(json.dumps(x) for x in lines) + "\n{\"step\": 6, \"lo")
    assert W.run_records(log) == [lines[0], lines[1], lines[4], lines[5]]
    assert W.run_records(tmp_path / "missing.jsonl") == []
