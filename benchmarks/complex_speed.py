"""Speed of complex layers (forward + backward) vs complexPyTorch, native complex64 and real ops.

Cases (CPU, ``torch.set_num_threads(2)`` unless ``--threads``):

* conv2d, VGG-like: batch 8, 64 -> 64 channels, 32x32, kernel 3, padding 1;
* conv2d, DCUNet-like: batch 4, 45 -> 90 channels, 128x64, kernel (5, 3), stride 2;
* linear on the same layers read as per-pixel channel maps (tokens = B*H*W) and a classifier-sized
  linear (256 x 2048 -> 1024);
* whitening vs naive complex batch norm (``utils.complex.batchnorm``) on both activations.

Candidates: complexPyTorch 0.4 (``ComplexConv2d`` / ``ComplexLinear`` / ``ComplexBatchNorm2d``),
native complex64 (``F.conv2d`` / ``F.linear`` on complex tensors), each implementation of
:mod:`utils.complex.functional` (``gauss`` = the ``"auto"`` default for convolutions, ``block``,
``native``), and one real op of the same shape (the three-multiplication floor is 3x one real
conv). All complex candidates get the same NCHW-contiguous complex64 input, which requires grad
(a layer inside a network); one extra row feeds the channels-last input that the previous layer of
a ``utils.complex`` network would produce. The real convolution is timed in both memory formats,
since oneDNN is faster in channels-last on this CPU and the Gauss kernel computes in that format.

Method: warm-up, then ``--repeats`` rounds; every round runs each candidate once, in a rotating
order, so background load hits all candidates alike; the table shows medians. Prints a table and a
final JSON line of ratios, including whether the targets were met.

Usage::

    python benchmarks/complex_speed.py            # full run (a few minutes on 2 cores)
    python benchmarks/complex_speed.py --repeats 5 --skip-linear --skip-bn  # quick look
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from utils.complex.conv import ComplexConv2d  # noqa: E402
from utils.complex.linear import ComplexLinear  # noqa: E402

try:  # complexPyTorch is the anchor; the benchmark still runs without it
    from complexPyTorch import complexLayers as cpt
except ImportError:  # pragma: no cover - depends on the environment
    cpt = None

#: fastest repeat of every candidate of the last ``measure`` call (least disturbed by other load)
MINIMA: dict[str, float] = {}

CONV_SHAPES = {
    # name: (batch, c_in, c_out, H, W, kernel, stride, padding)
    "vgg": (8, 64, 64, 32, 32, (3, 3), 1, 1),
    "dcunet": (4, 45, 90, 128, 64, (5, 3), 2, 0),
}
LINEAR_SHAPES = {
    # name: (tokens, in_features, out_features)
    "vgg_pixels": (8 * 32 * 32, 64, 64),
    "dcunet_pixels": (4 * 128 * 64, 45, 90),
    "classifier": (256, 2048, 1024),
}


def measure(cands: dict[str, tuple[Callable[[], tuple], Callable[..., None]]], repeats: int,
            warmup: int = 2) -> dict[str, float]:
    """Median seconds per candidate; ``setup()`` runs untimed, ``run(*setup())`` is timed."""
    names = list(cands)
    for _ in range(warmup):
        for name in names:
            setup, run = cands[name]
            run(*setup())
    times: dict[str, list[float]] = {name: [] for name in names}
    for r in range(repeats):
        order = names[r % len(names):] + names[: r % len(names)]
        for name in order:
            setup, run = cands[name]
            args = setup()
            t0 = time.perf_counter()
            run(*args)
            times[name].append(time.perf_counter() - t0)
    MINIMA.update({name: min(v) for name, v in times.items()})
    return {name: statistics.median(v) for name, v in times.items()}


def _fwd_bwd(module: nn.Module | Callable, grad: torch.Tensor) -> Callable[[torch.Tensor], None]:
    def run(x: torch.Tensor) -> None:
        module(x).backward(grad)
    return run


def _setup(x0: torch.Tensor, params: list[torch.Tensor]) -> Callable[[], tuple]:
    def setup() -> tuple:
        for p in params:
            p.grad = None
        return (x0.detach().clone().requires_grad_(),)
    return setup


def conv_case(shape: tuple, repeats: int) -> dict[str, float]:
    batch, c_in, c_out, h, w, k, s, p = shape
    g = torch.Generator().manual_seed(0)
    z = torch.randn(batch, c_in, h, w, dtype=torch.complex64, generator=g)
    x = torch.randn(batch, c_in, h, w, generator=g)
    cands = {}
    ours = {impl: ComplexConv2d(c_in, c_out, k, s, p, impl=impl)
            for impl in ("gauss", "block", "native")}
    out_shape = ours["native"](z).shape
    gz = torch.randn(out_shape, dtype=torch.complex64, generator=g)
    gx = torch.randn(out_shape, generator=g)
    if cpt is not None:
        m = cpt.ComplexConv2d(c_in, c_out, k, s, p)
        cands["complexPyTorch"] = (_setup(z, list(m.parameters())), _fwd_bwd(m, gz))
    wn = ours["native"].weight.detach().clone().requires_grad_()
    bn = ours["native"].bias.detach().clone().requires_grad_()
    cands["native complex64"] = (
        _setup(z, [wn, bn]), _fwd_bwd(lambda t: F.conv2d(t, wn, bn, s, p), gz))
    for impl, m in ours.items():
        label = f"ours {impl}" + (" (auto)" if impl == "gauss" else "")
        cands[label] = (_setup(z, list(m.parameters())), _fwd_bwd(m, gz))
    z_cl = z.contiguous(memory_format=torch.channels_last)
    cands["ours gauss, channels-last input"] = (
        _setup(z_cl, list(ours["gauss"].parameters())), _fwd_bwd(ours["gauss"], gz))
    real = nn.Conv2d(c_in, c_out, k, s, p)
    cands["real conv2d (NCHW)"] = (_setup(x, list(real.parameters())), _fwd_bwd(real, gx))
    x_cl = x.contiguous(memory_format=torch.channels_last)
    cands["real conv2d (channels-last)"] = (
        _setup(x_cl, list(real.parameters())), _fwd_bwd(real, gx))
    return measure(cands, repeats)


def linear_case(shape: tuple, repeats: int) -> dict[str, float]:
    tokens, f_in, f_out = shape
    g = torch.Generator().manual_seed(1)
    z = torch.randn(tokens, f_in, dtype=torch.complex64, generator=g)
    x = torch.randn(tokens, f_in, generator=g)
    gz = torch.randn(tokens, f_out, dtype=torch.complex64, generator=g)
    gx = torch.randn(tokens, f_out, generator=g)
    cands = {}
    if cpt is not None:
        m = cpt.ComplexLinear(f_in, f_out)
        cands["complexPyTorch"] = (_setup(z, list(m.parameters())), _fwd_bwd(m, gz))
    ours = {impl: ComplexLinear(f_in, f_out, impl=impl) for impl in ("native", "gauss", "block")}
    wn = ours["native"].weight.detach().clone().requires_grad_()
    bn = ours["native"].bias.detach().clone().requires_grad_()
    cands["native complex64"] = (_setup(z, [wn, bn]),
                                 _fwd_bwd(lambda t: F.linear(t, wn, bn), gz))
    for impl, m in ours.items():
        label = f"ours {impl}" + (" (auto)" if impl == "native" else "")
        cands[label] = (_setup(z, list(m.parameters())), _fwd_bwd(m, gz))
    real = nn.Linear(f_in, f_out)
    cands["real linear"] = (_setup(x, list(real.parameters())), _fwd_bwd(real, gx))
    return measure(cands, repeats)


def bn_case(shape: tuple, repeats: int) -> dict[str, float] | None:
    try:
        from utils.complex.batchnorm import ComplexBatchNorm2d, NaiveComplexBatchNorm2d
    except ImportError as err:
        print(f"note: batch-norm rows skipped ({err})")
        return None
    g = torch.Generator().manual_seed(2)
    z = torch.randn(shape, dtype=torch.complex64, generator=g)
    gz = torch.randn(shape, dtype=torch.complex64, generator=g)
    x = torch.randn(shape, generator=g)
    chans = shape[1]
    cands = {}
    for label, m in [("whitening ComplexBatchNorm2d", ComplexBatchNorm2d(chans)),
                     ("naive NaiveComplexBatchNorm2d", NaiveComplexBatchNorm2d(chans))]:
        cands[label] = (_setup(z, list(m.parameters())), _fwd_bwd(m, gz))
    if cpt is not None:
        m = cpt.ComplexBatchNorm2d(chans)
        cands["complexPyTorch ComplexBatchNorm2d"] = (_setup(z, list(m.parameters())),
                                                      _fwd_bwd(m, gz))
    real = nn.BatchNorm2d(chans)
    cands["real BatchNorm2d"] = (_setup(x, list(real.parameters())),
                                 _fwd_bwd(real, torch.randn(shape, generator=g)))
    return measure(cands, repeats)


def print_table(title: str, res: dict[str, float], ref: str) -> None:
    print(f"\n{title}")
    print(f"  {'candidate':36s} {'median ms':>10s} {'min ms':>9s} {'median / ' + ref:>34s}")
    for name, t in res.items():
        print(f"  {name:36s} {t * 1e3:10.2f} {MINIMA[name] * 1e3:9.2f} {t / res[ref]:34.2f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--repeats", type=int, default=21)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--skip-linear", action="store_true")
    parser.add_argument("--skip-bn", action="store_true")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    load_before = os.getloadavg()[0]
    print(f"torch {torch.__version__}, {args.threads} threads, {args.repeats} interleaved repeats, "
          f"load average {load_before:.2f}, complexPyTorch {'yes' if cpt else 'MISSING'}")
    summary: dict[str, object] = {"torch": torch.__version__, "threads": args.threads,
                                  "repeats": args.repeats}
    targets: dict[str, dict[str, float | bool]] = {}
    auto = "ours gauss (auto)"
    for name, shape in CONV_SHAPES.items():
        res = conv_case(shape, args.repeats)
        print_table(f"conv2d {name} {shape}: forward + backward", res, "real conv2d (NCHW)")
        entry = {k: round(v * 1e3, 3) for k, v in res.items()}
        summary[f"conv_{name}_min_ms"] = {k: round(v * 1e3, 3) for k, v in MINIMA.items()}
        ratios = {
            "vs_native": res["native complex64"] / res[auto],
            "over_real_nchw": res[auto] / res["real conv2d (NCHW)"],
            "over_real_channels_last": res[auto] / res["real conv2d (channels-last)"],
            "block_vs_native": res["native complex64"] / res["ours block"],
        }
        if "complexPyTorch" in res:
            ratios["vs_complexpytorch"] = res["complexPyTorch"] / res[auto]
        summary[f"conv_{name}_ms"] = entry
        summary[f"conv_{name}_ratios"] = {k: round(v, 3) for k, v in ratios.items()}
        if "vs_complexpytorch" in ratios:
            targets[f"conv_{name}_vs_complexpytorch>=1.4"] = {
                "value": round(ratios["vs_complexpytorch"], 3),
                "met": ratios["vs_complexpytorch"] >= 1.4}
        targets[f"conv_{name}_vs_native>=1.1"] = {
            "value": round(ratios["vs_native"], 3), "met": ratios["vs_native"] >= 1.1}
        for ref in ("nchw", "channels_last"):
            value = ratios[f"over_real_{ref}"]
            targets[f"conv_{name}_over_real_{ref}<=3.3"] = {"value": round(value, 3),
                                                             "met": value <= 3.3}
    if not args.skip_linear:
        for name, shape in LINEAR_SHAPES.items():
            res = linear_case(shape, args.repeats)
            print_table(f"linear {name} {shape}: forward + backward", res, "real linear")
            summary[f"linear_{name}_ms"] = {k: round(v * 1e3, 3) for k, v in res.items()}
            lin_auto = "ours native (auto)"
            ratios = {"vs_native": res["native complex64"] / res[lin_auto],
                      "over_real": res[lin_auto] / res["real linear"],
                      "fastest_ours": min((k for k in res if k.startswith("ours")),
                                          key=res.__getitem__)}
            if "complexPyTorch" in res:
                ratios["vs_complexpytorch"] = res["complexPyTorch"] / res[lin_auto]
                targets[f"linear_{name}_vs_complexpytorch>=1.4"] = {
                    "value": round(ratios["vs_complexpytorch"], 3),
                    "met": ratios["vs_complexpytorch"] >= 1.4}
            summary[f"linear_{name}_ratios"] = {
                k: (round(v, 3) if isinstance(v, float) else v) for k, v in ratios.items()}
    if not args.skip_bn:
        for name, shape in {"vgg": (8, 64, 32, 32), "dcunet": (4, 90, 62, 31)}.items():
            res = bn_case(shape, args.repeats)
            if res is None:
                break
            print_table(f"batch norm {name} {shape}: forward + backward (training)", res,
                        "real BatchNorm2d")
            summary[f"bn_{name}_ms"] = {k: round(v * 1e3, 3) for k, v in res.items()}
            summary[f"bn_{name}_whitening_over_naive"] = round(
                res["whitening ComplexBatchNorm2d"] / res["naive NaiveComplexBatchNorm2d"], 3)
    summary["targets"] = targets
    summary["load_average_before_after"] = [round(load_before, 2),
                                            round(os.getloadavg()[0], 2)]
    missed = [k for k, v in targets.items() if not v["met"]]
    print("\ntargets missed: " + (", ".join(missed) if missed else "none"))
    print(json.dumps(summary))


if __name__ == "__main__":
    main()
