"""The CBHG and Inception-like front-ends (utils.models.encoders) and their seed defects."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from utils.models.encoders import CBHG, Highway, InceptionEncoder, InceptionFrontEnd
from utils.models.vqvae import MelVQVAE


def test_seed_defect_10_every_cbhg_module_is_registered_and_trains():
    """Seed defect 10: layers made inside forward() were fresh, untrained, on the CPU."""
    torch.manual_seed(0)
    cbhg = CBHG(32, bank_size=4, bank_channels=8, projection_channels=16)
    names = {n.split(".")[0] for n, _ in cbhg.named_parameters()}
    assert names == {"bank", "projections", "highways", "gru"}
    before = {n: p.detach().clone() for n, p in cbhg.named_parameters()}
    opt = torch.optim.SGD(cbhg.parameters(), lr=0.1)
    cbhg(torch.randn(3, 32, 20)).pow(2).mean().backward()
    assert all(p.grad is not None and p.grad.abs().sum() > 0 for p in cbhg.parameters())
    opt.step()
    assert all(not torch.equal(before[n], p) for n, p in cbhg.named_parameters())


def test_seed_defect_10_cbhg_is_deterministic_in_eval_with_a_zero_initial_state():
    """Seed defect 10: a random GRU state on every call made the same input give new codes."""
    torch.manual_seed(0)
    cbhg = CBHG(16, bank_size=3, bank_channels=4, projection_channels=8).eval()
    x = torch.randn(2, 16, 11)
    with torch.no_grad():
        a, b = cbhg(x), cbhg(x)
    assert torch.equal(a, b) and a.shape == x.shape


def test_seed_defect_10_highway_gate_is_a_sigmoid_in_0_1_not_a_softmax():
    torch.manual_seed(0)
    hw = Highway(6)
    x = 5 * torch.randn(100, 6)
    t = hw.gate(x)
    assert (t > 0).all() and (t < 1).all()
    assert not torch.allclose(t.sum(-1), torch.ones(100))  # a softmax would sum to 1
    with torch.no_grad():  # a closed gate carries the input through
        hw.t.bias.fill_(-50.0)
    torch.testing.assert_close(hw(x), x)


def test_cbhg_reads_mel_bands_as_channels_and_frames_as_time():
    """Seed defect 10: time and frequency were swapped; here any number of frames works."""
    torch.manual_seed(0)
    cbhg = CBHG(80, bank_size=2, bank_channels=4, projection_channels=8).eval()
    for frames in (1, 7, 64):
        assert cbhg(torch.randn(1, 80, frames)).shape == (1, 80, frames)
    with pytest.raises(RuntimeError):
        cbhg(torch.randn(1, 64, 80))  # frames where bands belong: refused by the first conv


def test_seed_defects_11_12_inception_branches_run_once_any_length_nonlinear_downsampling():
    """Seed defects 11/12: branches computed twice, no non-linearity between strided
    convolutions, a hard-coded input size."""
    torch.manual_seed(0)
    front = InceptionFrontEnd(8, 20)
    calls = [0] * len(front.branches)
    for i, branch in enumerate(front.branches):
        branch.register_forward_hook(lambda *_, i=i: calls.__setitem__(i, calls[i] + 1))
    for frames in (1, 5, 33):
        assert front(torch.randn(2, 8, frames)).shape == (2, 20, frames)
    assert calls == [3] * 5
    enc = InceptionEncoder(80, 40, 16, 2)
    assert enc(torch.randn(1, 80, 64)).shape == (1, 16, 16)
    mods = list(enc.out)
    for j, m in enumerate(mods):
        if isinstance(m, nn.Conv1d) and m.stride[0] == 2:
            assert isinstance(mods[j - 1], nn.GELU)


@pytest.mark.parametrize("encoder", ["cbhg", "inception"])
def test_codec_with_each_front_end_keeps_the_bit_rate_and_shapes(encoder):
    torch.manual_seed(0)
    plain = MelVQVAE(channels=32, latent_dim=8, num_codes=16, num_quantizers=3, res_blocks=1)
    model = MelVQVAE(channels=32, latent_dim=8, num_codes=16, num_quantizers=3, res_blocks=1,
                     encoder=encoder).eval()
    x = torch.randn(2, 80, 37) - 2.5
    y, vq = model(x)
    assert y.shape == x.shape and vq.indices.shape == (2, 19, 3)
    assert model.bitrate_bps(3) == plain.bitrate_bps(3)
    with pytest.raises(ValueError, match="encoder must be one of"):
        MelVQVAE(encoder="lstm")


@pytest.mark.parametrize("encoder", ["conv"])
def test_exported_codec_gives_identical_indices_and_log_mel_after_save_and_load(encoder,
                                                                                tmp_path):
    """The seed offered TorchScript export; here torch.export, saved and reloaded.

    (The CBHG's GRU and the Inception front-end specialise the clip length under
    ``torch.export`` with PyTorch 2.13, so only the plain encoder exports for any length.)
    """
    from utils.models.vqvae import export_codec

    torch.manual_seed(0)
    model = MelVQVAE(channels=16, latent_dim=8, num_codes=16, num_quantizers=3, res_blocks=1,
                     encoder=encoder).eval()
    enc, dec = export_codec(model, 2, max_frames=512)
    torch.export.save(enc, tmp_path / "enc.pt2")
    torch.export.save(dec, tmp_path / "dec.pt2")
    enc2, dec2 = (torch.export.load(tmp_path / f).module() for f in ("enc.pt2", "dec.pt2"))
    for frames in (4, 40, 126):
        x = torch.randn(1, 80, frames) - 2.5
        idx = enc2(x)
        assert torch.equal(idx, model.encode_indices(x, 2))
        assert torch.equal(dec2(idx), model.decode_indices(idx))


def test_the_compared_encoders_match_in_parameters_within_5_percent():
    """benchmarks/front_ends.py compares encoders at these widths in front of one decoder."""
    import importlib.util
    from pathlib import Path

    spec = importlib.util.spec_from_file_location(
        "front_ends", Path(__file__).resolve().parents[1] / "benchmarks" / "front_ends.py")
    front_ends = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(front_ends)

    def n_encoder(enc: str) -> int:
        model = MelVQVAE(channels=96, encoder=enc, encoder_channels=front_ends.WIDTHS[enc])
        return sum(p.numel() for p in model.encoder.parameters())

    base = n_encoder("conv")
    for enc in ("cbhg", "inception"):
        assert abs(n_encoder(enc) / base - 1) < 0.05, enc
    plain = MelVQVAE(channels=96)
    same = MelVQVAE(channels=96, encoder_channels=96)
    assert plain.num_parameters() == same.num_parameters()  # one decoder for all
