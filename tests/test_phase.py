"""utils.phase (Griffin-Lim, PGHI, the mel-consistent magnitude step), utils.reconstruction (one
option for every mel → waveform method), Deep Griffin-Lim (utils/models/degli.py, task
``degli``) and the adversarial losses (utils/models/discriminators.py)."""

from __future__ import annotations

import json

import librosa
import numpy as np
import pytest
import torch

from utils import phase
from utils.audio import FEATURES, mel_filterbank, mel_spectrogram, mel_to_magnitude, stft
from utils.checkpoint import CheckpointError, save_atomic
from utils.errors import OptionError
from utils.metrics import logmel_l1
from utils.models.degli import DeepGriffinLim, DeGLIConfig, magnitude_and_phase
from utils.reconstruction import reconstruction


def chirp(seconds: float = 2.0, f0: float = 300.0, f1: float = 3000.0) -> np.ndarray:
    sr = FEATURES.sr
    t = np.arange(int(seconds * sr)) / sr
    return np.sin(2 * np.pi * (f0 * t + (f1 - f0) / (2 * t[-1]) * t**2)).astype(np.float32)


def spectral_convergence(y: np.ndarray, magnitude: np.ndarray) -> float:
    return float(np.linalg.norm(np.abs(stft(y)) - magnitude) / np.linalg.norm(magnitude))


# ------------------------------------------------------------------------------ PGHI


def test_pghi_gradients_match_the_true_phase_gradients_of_a_linear_chirp():
    X = stft(chirp())
    A = np.abs(X)
    tgrad, fgrad = phase.phase_gradients(A)
    loud = A > 0.1 * A.max()
    # phase advance from frame to frame (trapezoid of the predicted derivative) vs the true one
    true_t = np.angle(X[:, 1:] * np.conj(X[:, :-1]))
    err_t = np.angle(np.exp(1j * (true_t - 0.5 * (tgrad[:, 1:] + tgrad[:, :-1]))))
    true_f = np.angle(X[1:] * np.conj(X[:-1]))
    err_f = np.angle(np.exp(1j * (true_f - 0.5 * (fgrad[1:] + fgrad[:-1]))))
    assert np.abs(err_t[loud[:, 1:] & loud[:, :-1]]).mean() < 0.25
    assert np.abs(err_f[loud[1:] & loud[:-1]]).mean() < 0.25


def test_pghi_phase_of_a_linear_chirp_is_the_true_phase_up_to_a_constant():
    X = stft(chirp())
    A = np.abs(X)
    est = phase.pghi(A)
    loud = A > 0.1 * A.max()
    d = np.exp(1j * (np.angle(X) - est))[loud]
    # one constant offset: the phasors of the differences all point the same way
    assert np.abs(d.mean()) > 0.9
    random = np.exp(1j * (np.angle(X) - phase.initial_phase(A, init="random")))[loud]
    assert np.abs(random.mean()) < 0.2


def test_pghi_alone_fits_a_speech_like_magnitude_as_well_as_32_griffin_lim_iterations(voiced):
    A = np.abs(stft(voiced))
    sc = {(init, n): spectral_convergence(
        phase.griffin_lim(A, n_iter=n, init=init, length=16000), A)
        for init, n in (("pghi", 0), ("random", 32), ("random", 0))}
    assert sc["pghi", 0] < 1.5 * sc["random", 32]  # PGHI alone ~ 32 iterations from random
    assert sc["pghi", 0] < 0.3 * sc["random", 0]
    pghi32 = spectral_convergence(phase.griffin_lim(A, n_iter=32, init="pghi", length=16000), A)
    assert pghi32 < 0.5 * sc["random", 32]


def test_pghi_of_silence_is_finite_and_quiet_bins_keep_a_random_phase():
    assert np.all(np.isfinite(phase.pghi(np.zeros((513, 10)))))
    A = np.zeros((513, 10))
    A[100, :] = 1.0
    est = phase.pghi(A, tol=1e-3)
    assert np.allclose(np.diff(est[100]), 2 * np.pi * 256 * 100 / 1024)  # a pure tone's advance


# ------------------------------------------------------------------------------ Griffin-Lim


def test_griffin_lim_is_librosas_algorithm_for_the_same_seed(voiced):
    A = mel_to_magnitude(mel_spectrogram(voiced))
    ours = phase.griffin_lim(A, n_iter=16, length=len(voiced), seed=3)
    ref = librosa.griffinlim(A, n_iter=16, hop_length=256, n_fft=1024, length=len(voiced),
                             momentum=0.99, init="random", random_state=3)
    assert np.abs(ours - ref).max() < 1e-3 * np.abs(ref).max()


def test_griffin_lim_snapshots_equal_separate_runs_and_more_iterations_fit_better(voiced):
    A = np.abs(stft(voiced))
    snaps = phase.griffin_lim(A, n_iter=16, length=16000, snapshots=(0, 4, 16))
    assert sorted(snaps) == [0, 4, 16]
    alone = phase.griffin_lim(A, n_iter=4, length=16000)
    assert np.allclose(snaps[4], alone, atol=1e-6)
    sc = [spectral_convergence(snaps[k], A) for k in (0, 4, 16)]
    assert sc[0] > sc[1] > sc[2]
    # momentum speeds it up (Perraudin et al.): fast GL beats GL at the same count
    slow = phase.griffin_lim(A, n_iter=16, momentum=0.0, length=16000)
    assert sc[2] < spectral_convergence(slow, A)


def test_griffin_lim_options_are_checked():
    A = np.ones((513, 4), dtype=np.float32)
    for kwargs in (dict(momentum=float("nan")), dict(momentum=2.5), dict(n_iter=-1),
                   dict(init="noise"), dict(snapshots=(64,))):
        with pytest.raises(OptionError):
            phase.griffin_lim(A, **{"n_iter": 8, **kwargs})


def test_mel_magnitude_step_is_the_nnls_update_and_never_raises_the_error(voiced):
    M = mel_spectrogram(voiced)
    F = mel_filterbank().astype(np.float64)
    B = np.abs(stft(voiced)).astype(np.float64) + 1e-3
    new = phase.mel_magnitude_step(torch.from_numpy(B.astype(np.float32)),
                                   torch.from_numpy(M)).numpy()
    covered = F.sum(0) > 0                # bins no band covers (DC) have nothing to fit: 0
    by_hand = B[covered] * (F.T @ (M / (F @ B)))[covered] / F.sum(0)[covered, None]
    assert np.allclose(new[covered], by_hand, rtol=1e-3, atol=1e-6)
    assert np.all(new[~covered] == 0)

    def kl(S):  # the divergence Lee & Seung's rule never increases
        FS = F @ S
        return float(np.sum(M * np.log((M + 1e-12) / (FS + 1e-12)) - M + FS))

    assert kl(new) <= kl(B) + 1e-6


def test_mel_consistent_griffin_lim_halves_the_log_mel_error_of_griffin_lim(voiced):
    M = mel_spectrogram(voiced)
    A = mel_to_magnitude(M)
    plain = phase.griffin_lim(A, n_iter=32, init="pghi", length=len(voiced))
    mel = phase.griffin_lim(A, n_iter=32, init="pghi", length=len(voiced), mel=M)
    assert logmel_l1(voiced, mel) < 0.7 * logmel_l1(voiced, plain)


# ------------------------------------------------------------------------------ one option


def test_reconstruction_strings_name_every_method(voiced, tmp_path):
    from utils.audio import log_mel, log_mel_to_audio
    from utils.models.vocoder import MelVocoder, VocoderConfig

    L = log_mel(voiced)
    gl = reconstruction("griffinlim")
    assert gl.spec == "gl:32" and not gl.learned
    assert np.allclose(gl(L, len(voiced)), log_mel_to_audio(L, length=len(voiced)), atol=1e-6)
    assert "PGHI" in reconstruction("pghi:4").name
    assert "mel-consistent" in reconstruction("melgl:4").name
    assert len(reconstruction("melgl:2")(L, len(voiced))) == len(voiced)
    voc = save_atomic(MelVocoder(VocoderConfig(channels=8, blocks=1)).checkpoint(),
                      tmp_path / "v.pt")
    deg = save_atomic(DeepGriffinLim(DeGLIConfig(complex_channels=2, warm=1,
                                                 iterations=1)).checkpoint(), tmp_path / "d.pt")
    assert reconstruction(str(voc)).learned and "vocoder" in reconstruction(str(voc)).name
    assert "Deep Griffin-Lim" in reconstruction(str(deg)).name
    assert len(reconstruction(str(deg))(L, len(voiced))) == len(voiced)
    for bad in ("gl:x", "gl", "pghi:-1", "gl:100000", str(tmp_path / "missing.pt")):
        with pytest.raises(OptionError):
            reconstruction(bad)
    from utils.models.wavenet import WaveNet, WaveNetConfig

    wn = save_atomic(WaveNet(WaveNetConfig(channels=4, skip_channels=4, kernel=2,
                                           layers_per_stack=2, stacks=1)).checkpoint(),
                     tmp_path / "wn.pt")
    with pytest.raises(CheckpointError, match="cannot turn a mel into sound"):
        reconstruction(str(wn))


def test_codec_and_decode_audio_take_every_reconstruction(voiced_words, tmp_path, capsys):
    from utils.evaluate import main as eval_main
    from utils.models.vqvae import MelVQVAE

    codec = MelVQVAE(channels=8, latent_dim=4, num_codes=4, num_quantizers=2, res_blocks=0)
    y = np.zeros(4000, dtype=np.float32)
    y[1000:3000] = 0.1 * np.sin(np.arange(2000) * 0.2)
    idx = codec.encode_audio(y)
    rebuild = reconstruction("pghi:2")
    a = codec.decode_audio(idx, len(y), vocoder=rebuild)
    b = rebuild.synthesize(codec.decode_indices(idx, 1 + len(y) // 256)[0].numpy(), len(y))
    assert np.allclose(a, b)
    with pytest.raises(TypeError, match=r"reconstruction\('pghi:2'\)"):
        codec.decode_audio(idx, len(y), vocoder="pghi:2")  # a model loads no other model
    path = save_atomic(codec.checkpoint(), tmp_path / "codec.pt")
    capsys.readouterr()
    assert eval_main(["codec", str(path), str(voiced_words), "--limit", "1", "--no-stoi",
                      "--no-second-opinions", "--no-progress", "--json",
                      "--vocoder", "melgl:4"]) == 0
    res = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert "mel-consistent" in res["system"] and res["vocoder"] == "melgl:4"
    assert eval_main(["codec", "-", str(voiced_words), "--baseline", "griffinlim",
                      "--limit", "1", "--no-stoi", "--no-second-opinions", "--no-progress",
                      "--json", "--vocoder", "pghi:4"]) == 0
    res = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert res["system"].startswith("PGHI + 4 it.") and "true mel" in res["system"]
    assert eval_main(["codec", str(path), str(voiced_words), "--vocoder", "pghi"]) == 2
    assert "--vocoder" in capsys.readouterr().err


# ------------------------------------------------------------------------------ Deep Griffin-Lim


def test_untrained_deep_griffin_lim_is_exactly_the_classical_method(voiced):
    """Its last layer starts at zero: before training it must equal mel-consistent GL
    (``warm`` iterations with momentum, then ``iterations`` without)."""
    from utils.audio import log_mel
    from utils.phase import torch_istft

    model = DeepGriffinLim(DeGLIConfig(complex_channels=2, warm=3, iterations=2))
    y = model.synthesize(log_mel(voiced), len(voiced))
    A, ph = magnitude_and_phase(log_mel(voiced))
    M = torch.pow(10.0, torch.from_numpy(log_mel(voiced)))[None]
    A_t = torch.from_numpy(A)[None]
    X = torch.polar(A_t, torch.from_numpy(ph))[None][0]
    previous, Amag = None, A_t
    for _ in range(3):
        T = phase.project_consistent(phase.project_magnitude(X, Amag), length=len(voiced))
        X = T if previous is None else T + 0.99 * (T - previous)
        previous = T
        Amag = phase.mel_magnitude_step(X.abs(), M)
    for _ in range(2):
        Amag = phase.mel_magnitude_step(X.abs(), M)
        X = phase.project_consistent(phase.project_magnitude(X, Amag), length=len(voiced))
    by_hand = torch_istft(X, length=len(voiced))[0].numpy()
    assert np.abs(y - by_hand).max() < 1e-4 * np.abs(by_hand).max()


@pytest.mark.parametrize("kind", ["complex", "real", "mag"])
def test_deep_griffin_lim_denoisers_are_parameter_matched_and_roundtrip(kind, tmp_path):
    complex_model = DeepGriffinLim(DeGLIConfig(kind="complex"))
    model = DeepGriffinLim(DeGLIConfig(kind=kind))
    ratio = model.num_parameters() / complex_model.num_parameters()
    assert 0.9 <= ratio <= 1.1
    if kind == "complex":
        assert any(p.is_complex() for p in model.parameters())
    else:
        assert not any(p.is_complex() for p in model.parameters())
    torch.manual_seed(0)
    for p in model.parameters():
        p.data.normal_(0, 0.01)
    path = save_atomic(model.checkpoint(), tmp_path / "d.pt")
    back = DeepGriffinLim.from_checkpoint(path)
    assert all(torch.equal(v, back.state_dict()[k]) for k, v in model.state_dict().items())
    with pytest.raises(CheckpointError, match="deep-griffin-lim"):
        from utils.models.vocoder import MelVocoder

        MelVocoder.from_checkpoint(path)


def test_deep_griffin_lim_options_are_checked():
    for bad in (dict(kind="quaternion"), dict(kernel=(4, 3)), dict(layers=1),
                dict(iterations=0), dict(warm=-1), dict(channels=-2)):
        with pytest.raises(OptionError):
            DeGLIConfig(**bad)


def test_degli_task_trains_resumes_exactly_and_evaluates(voiced_words, tmp_path, capsys,
                                                         assert_resumes_exactly):
    from utils.evaluate import main as eval_main
    from utils.train import main as train_main

    def run(out, *extra):
        args = ["degli", "--data", str(voiced_words), "--out", str(out), "--batch-size", "2",
                "--crop-frames", "12", "--val-every", "4", "--save-every", "2",
                "--log-every", "1", "--warmup", "1", "--threads", "1", "--no-progress",
                "--set", "complex_channels=2", "--set", "warm=1", "--set", "iterations=2",
                *extra]
        assert train_main(args) == 0

    assert_resumes_exactly(run, tmp_path)
    best = str(tmp_path / "full" / "best.pt")
    capsys.readouterr()
    assert eval_main(["degli", best, str(voiced_words), "--limit", "2", "--no-stoi",
                      "--no-second-opinions", "--no-progress", "--json"]) == 0
    res = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert res["n_clips"] == 2 and "Deep Griffin-Lim" in res["system"]
    # the vocoder evaluation takes every learned reconstruction, a Deep Griffin-Lim included
    assert eval_main(["vocoder", best, str(voiced_words), "--limit", "1", "--no-stoi",
                      "--no-second-opinions", "--no-progress", "--json"]) == 0
    res = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert res["n_clips"] == 1 and "Deep Griffin-Lim" in res["system"]
    code = train_main(["degli", "--data", str(voiced_words), "--out", str(tmp_path / "o"),
                       "--set", "kind=quaternion", "--no-progress"])
    assert code == 2 and "kind" in capsys.readouterr().err


# ------------------------------------------------------------------------------ adversarial


def test_discriminator_losses_are_least_squares_and_feature_matching_is_l1():
    from utils.models.discriminators import (
        Discriminators,
        discriminator_loss,
        feature_matching_loss,
        generator_adversarial_loss,
    )

    one, zero = torch.ones(2, 3), torch.zeros(2, 3)
    assert float(discriminator_loss([(one, [])], [(zero, [])])) == 0.0   # a perfect judge
    assert float(discriminator_loss([(zero, [])], [(one, [])])) == 2.0
    assert float(generator_adversarial_loss([(one, [])])) == 0.0
    f = [torch.full((2, 4), 3.0)]
    assert float(feature_matching_loss([(one, f)], [(one, [torch.full((2, 4), 1.0)])])) == 2.0
    D = Discriminators(("mpd", "mrd"))
    outs = D(torch.randn(2, 4000))
    assert len(outs) == 8 and all(torch.isfinite(s).all() for s, _ in outs)
    with pytest.raises(ValueError):
        Discriminators(("gan",))


def test_adversarial_fine_tuning_moves_each_side_only_by_its_own_loss(voiced_words, tmp_path):
    """The generator's adversarial loss must not train the discriminators (their weights are
    detached in it), and the discriminators' loss must not train the generator."""
    from utils.models.vocoder import MelVocoder, VocoderConfig
    from utils.tasks.vocoder import VocoderTask

    cfg = VocoderConfig(channels=8, blocks=1)
    init = save_atomic(MelVocoder(cfg).checkpoint(), tmp_path / "v.pt")
    task = VocoderTask([str(voiced_words)], cfg, crop_frames=12, adversarial="both",
                       init=str(init))
    task.load_data()
    torch.manual_seed(0)
    model = task.build_model()
    start = MelVocoder.from_checkpoint(init)
    assert all(torch.equal(v, model.state_dict()[k]) for k, v in start.state_dict().items())
    y, x = task.batch(0, seed=0, batch_size=2)
    y_hat = model(x, y.shape[-1])
    D = model.discriminators
    from torch.func import functional_call

    from utils.models.discriminators import discriminator_loss, generator_adversarial_loss

    frozen = {**{k: v.detach() for k, v in D.named_parameters()}, **dict(D.named_buffers())}
    generator_adversarial_loss(functional_call(D, frozen, (y_hat,))).backward()
    assert all(p.grad is None for p in D.parameters())
    assert any(p.grad is not None for n, p in model.named_parameters()
               if not n.startswith("discriminators."))
    model.zero_grad(set_to_none=True)
    discriminator_loss(D(y), D(y_hat.detach())).backward()
    assert all(p.grad is None for n, p in model.named_parameters()
               if not n.startswith("discriminators."))
    # a checkpoint with discriminators still loads as a plain vocoder
    path = save_atomic(task.checkpoint(model), tmp_path / "gan.pt")
    voc = MelVocoder.from_checkpoint(path)
    assert not hasattr(voc, "discriminators")
    with pytest.raises(OptionError):
        VocoderTask([str(voiced_words)], cfg, adversarial="wgan")
    with pytest.raises(OptionError):
        VocoderTask([str(voiced_words)], cfg, adv_weight=float("inf"))


# ------------------------------------------------------------------------------ export


@pytest.mark.parametrize("kind", ["vocoder", "degli"])
def test_exported_model_gives_the_same_waveform(kind, voiced, tmp_path):
    from utils.audio import log_mel
    from utils.export import export, load_exported, run_exported
    from utils.models.vocoder import MelVocoder, VocoderConfig

    torch.manual_seed(0)
    if kind == "vocoder":
        model = MelVocoder(VocoderConfig(channels=16, blocks=1, head="complex"))
    else:
        model = DeepGriffinLim(DeGLIConfig(complex_channels=2, warm=2, iterations=2))
        for p in model.parameters():
            p.data.copy_(0.01 * torch.randn_like(p))
    path = save_atomic(model.checkpoint(), tmp_path / "m.pt")
    ts = export(path, tmp_path / "m.ts")
    L = log_mel(voiced)
    want = model.synthesize(L)                          # (frames - 1) · hop samples
    got = run_exported(load_exported(ts), L)
    assert want.shape == got.shape == ((L.shape[1] - 1) * 256,)
    assert np.abs(want - got).max() <= 1e-5 * max(1.0, np.abs(want).max())
    with pytest.raises(CheckpointError):
        from utils.models.wavenet import WaveNet, WaveNetConfig

        wn = save_atomic(WaveNet(WaveNetConfig(channels=4, skip_channels=4, kernel=2,
                                               layers_per_stack=2, stacks=1)).checkpoint(),
                         tmp_path / "wn.pt")
        export(wn, tmp_path / "wn.ts")
    from utils.errors import ProjectError

    (tmp_path / "junk.ts").write_bytes(b"not a model")
    with pytest.raises(ProjectError):
        load_exported(tmp_path / "junk.ts")


@pytest.mark.parametrize("kind", ["complex", "real", "mag"])
def test_deep_griffin_lim_zero_started_last_layer_gets_a_gradient(kind):
    """Regression: the magnitude-only denoiser built its step with ``torch.polar``, whose
    gradient with respect to the magnitude is zero at zero, so the zero-initialised last layer
    never moved and 600 training steps left the classical method unchanged."""
    torch.manual_seed(0)
    model = DeepGriffinLim(DeGLIConfig(kind=kind))
    X, Y, Z = (torch.randn(1, 65, 12, dtype=torch.complex64) for _ in range(3))
    (Z - model.denoise(X, Y, Z)).abs().mean().backward()
    last = model.denoiser[-1]
    assert last.weight.grad is not None and last.weight.grad.abs().max() > 0
