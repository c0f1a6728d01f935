"""Tests of the complex VGG / LeNet / GoogLeNet classifiers and their real twins (tiny widths)."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from utils.models.complex_cnn import (
    VGG_CONFIGS,
    ComplexGoogLeNet,
    ComplexLeNet,
    ComplexVGG,
    GoogLeNetOutputs,
    RealGoogLeNet,
    RealLeNet,
    RealVGG,
    complex_to_channels,
    complex_vgg,
    count_parameters,
    real_twin,
)

C64 = torch.complex64



def cinput(*shape: int, seed: int = 0) -> torch.Tensor:
    return torch.randn(shape, dtype=C64, generator=torch.Generator().manual_seed(seed))


def n_convs(model: nn.Module) -> int:
    return sum(1 for m in model.modules() if type(m).__name__ in ("ComplexConv2d", "Conv2d"))


def assert_real_logits(y: torch.Tensor, batch: int, num_classes: int) -> None:
    assert not y.is_complex()
    assert y.dtype == torch.float32
    assert y.shape == (batch, num_classes)
    assert torch.isfinite(y).all()


def relative_gap(a: nn.Module, b: nn.Module) -> float:
    return abs(count_parameters(a) / count_parameters(b) - 1.0)


# --------------------------------------------------------------------------- helpers


def test_count_parameters_counts_complex_as_two() -> None:
    lin = nn.Linear(3, 4, dtype=C64)
    assert count_parameters(lin) == 2 * (3 * 4 + 4)
    assert count_parameters(nn.Linear(3, 4)) == 16
    frozen = nn.Sequential(nn.Linear(3, 4), nn.Linear(4, 2))
    frozen[0].requires_grad_(False)
    assert count_parameters(frozen, trainable_only=True) == 10


def test_complex_to_channels_layout() -> None:
    z = cinput(2, 3, 4, 5)
    x = complex_to_channels(z)
    assert x.shape == (2, 6, 4, 5) and x.dtype == torch.float32
    torch.testing.assert_close(x[:, :3], z.real)
    torch.testing.assert_close(x[:, 3:], z.imag)


# --------------------------------------------------------------------------- VGG


@pytest.mark.parametrize("name", sorted(VGG_CONFIGS))
def test_every_vgg_name_builds_and_runs_at_two_input_sizes(name: str) -> None:
    torch.manual_seed(0)
    model = ComplexVGG(name, in_channels=1, num_classes=5, width=4)
    for h, w in [(32, 32), (129, 63)]:
        assert_real_logits(model(cinput(2, 1, h, w)), 2, 5)
    model.eval()
    assert_real_logits(model(cinput(1, 1, 48, 40)), 1, 5)


def test_seed_defect_vgg_hardwired_to_vgg16() -> None:
    """Seed defect 24: Complex_VGG_net always built VGG16, whatever configuration was wanted."""
    expected = {"vgg11": 8, "vgg13": 10, "vgg16": 13, "vgg19": 16}
    for name, convs in expected.items():
        assert n_convs(ComplexVGG(name, width=2)) == convs
        assert n_convs(complex_vgg(name.upper(), width=2)) == convs
        assert n_convs(RealVGG(name, width=2)) == convs
    with pytest.raises(ValueError):
        ComplexVGG("vgg12")


def test_seed_defect_hard_coded_input_geometry_vgg() -> None:
    """Seed defect 25: the VGG only accepted 3x224x224 (512·7·7 flatten)."""
    torch.manual_seed(1)
    model = ComplexVGG("vgg11", in_channels=2, num_classes=3, width=2, pool_size=7, hidden=32)
    model.eval()
    for h, w in [(224, 224), (64, 96)]:
        assert_real_logits(model(cinput(1, 2, h, w)), 1, 3)


def test_vgg_variants_batch_norm_and_heads() -> None:
    torch.manual_seed(2)
    z = cinput(3, 1, 32, 32)
    for bn in (True, "naive", False):
        for head in ("concat", "modulus"):
            m = ComplexVGG("vgg11", num_classes=4, width=2, batch_norm=bn, head=head)
            assert_real_logits(m(z), 3, 4)
    kinds = {type(m).__name__ for m in ComplexVGG("vgg11", width=2).modules()}
    assert "ComplexBatchNorm2d" in kinds
    kinds = {type(m).__name__ for m in ComplexVGG("vgg11", width=2, batch_norm="naive").modules()}
    assert "NaiveComplexBatchNorm2d" in kinds
    with pytest.raises(ValueError):
        ComplexVGG("vgg11", width=2, head="phase")


# --------------------------------------------------------------------------- LeNet


def test_lenet_runs_at_28_and_32_and_on_spectrograms() -> None:
    torch.manual_seed(3)
    model = ComplexLeNet()
    for size in [(28, 28), (32, 32), (129, 63)]:
        assert_real_logits(model(cinput(2, 1, *size)), 2, 10)


def test_seed_defect_lenet_hard_coded_32x32x1_10_classes() -> None:
    """Seed defect 25: Complex_LeNet() took no arguments and only 1x32x32 input, 10 classes."""
    model = ComplexLeNet(in_channels=3, num_classes=7, width=0.5)
    assert_real_logits(model(cinput(2, 3, 28, 28)), 2, 7)


def test_lenet_parameter_count_matches_classic_layout() -> None:
    """Width 1: complex 6/16/120/84 LeNet-5; each complex weight and bias is two reals."""
    model = ComplexLeNet()
    convs = 2 * ((1 * 6 * 25 + 6) + (6 * 16 * 25 + 16) + (16 * 120 * 25 + 120))
    fc = 2 * (120 * 84 + 84)
    head = 2 * 84 * 10 + 10  # real layer on [Re, Im]
    assert count_parameters(model) == convs + fc + head


# --------------------------------------------------------------------------- GoogLeNet


def test_googlenet_aux_outputs_in_train_single_in_eval() -> None:
    torch.manual_seed(4)
    model = ComplexGoogLeNet(in_channels=3, num_classes=6, width=4)
    z = cinput(2, 3, 32, 32)
    out = model(z)
    assert isinstance(out, GoogLeNetOutputs)
    for y in out:
        assert_real_logits(y, 2, 6)
    model.eval()
    y = model(z)
    assert isinstance(y, torch.Tensor)
    assert_real_logits(y, 2, 6)
    no_aux = ComplexGoogLeNet(in_channels=3, num_classes=6, width=4, aux_logits=False)
    assert isinstance(no_aux(z), torch.Tensor)
    assert no_aux.aux1 is None and no_aux.aux2 is None


def test_seed_defect_hard_coded_input_geometry_googlenet() -> None:
    """Seed defect 25: Complex_GoogLeNet had no in_channels and needed 3x224x224."""
    torch.manual_seed(5)
    model = ComplexGoogLeNet(in_channels=1, num_classes=4, width=2)
    out = model(cinput(2, 1, 129, 63))
    assert isinstance(out, GoogLeNetOutputs)
    for y in out:
        assert_real_logits(y, 2, 4)
    model.eval()
    assert_real_logits(model(cinput(1, 1, 224, 224)), 1, 4)


# --------------------------------------------------------------------------- real twins


TWIN_CASES = {
    **{f"{name}-w{w}": (ComplexVGG, dict(name=name, width=w))
       for name in sorted(VGG_CONFIGS) for w in (8, 16)},
    "vgg11-imagenet-head": (ComplexVGG, dict(name="vgg11", width=8, pool_size=7, hidden=512)),
    "lenet-w1": (ComplexLeNet, dict(width=1.0)),
    "lenet-w2-rgb": (ComplexLeNet, dict(in_channels=3, width=2.0)),
    "googlenet-w8": (ComplexGoogLeNet, dict(in_channels=1, num_classes=10, width=8)),
    "googlenet-w24": (ComplexGoogLeNet, dict(in_channels=3, num_classes=100, width=24)),
}


@pytest.mark.parametrize("case", sorted(TWIN_CASES))
def test_real_twins_match_parameter_count_within_5_percent(case: str) -> None:
    cls, kwargs = TWIN_CASES[case]
    complex_model = cls(**kwargs)
    twin = real_twin(complex_model)
    assert not any(p.is_complex() for p in twin.parameters())
    assert relative_gap(twin, complex_model) < 0.05
    assert abs(twin.width_scale - 2**0.5) < 0.1


def test_real_twin_search_fixes_output_layer_imbalance() -> None:
    """With many classes the plain √2 rule misses (concat head: 2n vs √2·n inputs per class)."""
    cmodel = ComplexGoogLeNet(in_channels=3, num_classes=1000, width=8)
    plain = real_twin(cmodel, width_scale=2**0.5)
    assert relative_gap(plain, cmodel) > 0.05
    searched = real_twin(cmodel)
    assert searched.width_scale > 2**0.5
    assert relative_gap(searched, cmodel) < 0.01
    first_conv = next(m for m in real_twin(cmodel, in_channels=3, width_scale=1.0).modules()
                      if isinstance(m, nn.Conv2d))
    assert first_conv.in_channels == 3


def test_real_twins_run_on_re_im_channels() -> None:
    torch.manual_seed(6)
    z = cinput(2, 1, 40, 36)
    pairs = [
        (ComplexVGG("vgg13", num_classes=5, width=4), RealVGG),
        (ComplexLeNet(num_classes=5, width=0.5), RealLeNet),
        (ComplexGoogLeNet(in_channels=1, num_classes=5, width=2), RealGoogLeNet),
    ]
    for cmodel, cls in pairs:
        twin = real_twin(cmodel)
        assert isinstance(twin, cls)
        cmodel.eval()
        twin.eval()
        assert_real_logits(cmodel(z), 2, 5)
        assert_real_logits(twin(complex_to_channels(z)), 2, 5)
        assert n_convs(twin) == n_convs(cmodel)


def test_width_scale_one_gives_same_channels_fewer_parameters() -> None:
    cmodel = ComplexVGG("vgg11", width=8)
    same = RealVGG("vgg11", in_channels=1, width=8, width_scale=1.0)
    c_convs = [m for m in cmodel.modules() if type(m).__name__ == "ComplexConv2d"]
    r_convs = [m for m in same.modules() if isinstance(m, nn.Conv2d)]
    assert [m.out_channels for m in c_convs] == [m.out_channels for m in r_convs]
    ratio = count_parameters(same) / count_parameters(cmodel)
    assert 0.45 < ratio < 0.55


# --------------------------------------------------------------------------- training


def test_seed_defect_complex_logits_without_real_rule() -> None:
    """Seed defect 26: the seed models returned complex logits with no rule to real scores.

    Here logits are real, so cross-entropy applies directly and its gradient reaches the
    complex weights of the first layer.
    """
    torch.manual_seed(7)
    model = ComplexVGG("vgg11", num_classes=3, width=2)
    y = model(cinput(4, 1, 32, 32))
    loss = F.cross_entropy(y, torch.tensor([0, 1, 2, 0]))
    loss.backward()
    first = next(p for p in model.parameters() if p.is_complex())
    assert first.grad is not None and first.grad.is_complex() and first.grad.abs().sum() > 0


def test_tiny_complex_lenet_fits_a_small_batch() -> None:
    """A tiny model must be trainable on CPU: it memorises 16 random examples in a few steps."""
    torch.manual_seed(8)
    model = ComplexLeNet(num_classes=4, width=0.5)
    z = cinput(16, 1, 28, 28, seed=9)
    labels = torch.arange(16) % 4
    opt = torch.optim.Adam(model.parameters(), lr=3e-3)
    losses = []
    for _ in range(60):
        opt.zero_grad()
        loss = F.cross_entropy(model(z), labels)
        loss.backward()
        opt.step()
        losses.append(loss.item())
    assert losses[-1] < 0.25 * losses[0]
