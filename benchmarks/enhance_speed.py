"""How much faster than real time do the enhancers run on one CPU core?

Times the forward pass (STFT → U-Net → mask → inverse STFT) of the three models of
``utils/models/dcunet.py`` at the shipped size (DCUNet-10, width 0.25; the real baselines
width-matched) on ``--seconds`` of audio, one torch thread, medians of interleaved repeats.
The real-time factor is audio duration / compute time (above 1: faster than real time).
Prints a table and, last, one JSON line.

Run (from the repository root)::

    python benchmarks/enhance_speed.py --seconds 10 --repeats 7

Notebook: notebooks/07_speech_enhancement.ipynb
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from utils.models.dcunet import EnhanceConfig, SpeechEnhancer, match_width  # noqa: E402


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--seconds", type=float, default=10.0)
    p.add_argument("--repeats", type=int, default=7)
    p.add_argument("--threads", type=int, default=1)
    a = p.parse_args()
    torch.set_num_threads(a.threads)
    torch.manual_seed(0)
    n = SpeechEnhancer(EnhanceConfig()).num_parameters()
    models = {k: SpeechEnhancer(match_width(EnhanceConfig(kind=k), n)).eval()
              for k in ("complex", "ri", "mag")}
    x = 0.1 * torch.randn(1, int(16000 * a.seconds))
    times = {k: [] for k in models}
    with torch.inference_mode():
        for m in models.values():
            m(x)                                          # warm-up
        for _ in range(a.repeats):                        # interleaved repeats
            for k, m in models.items():
                t0 = time.perf_counter()
                m(x)
                times[k].append(time.perf_counter() - t0)
    rows = {k: {"params": models[k].num_parameters(), "median_s": statistics.median(v),
                "realtime_factor": a.seconds / statistics.median(v)} for k, v in times.items()}
    print(f"{a.seconds:g} s of audio, {a.threads} thread(s), median of {a.repeats}")
    print("model     parameters   seconds   × real time   vs complex")
    for k, r in rows.items():
        print(f"{k:8s} {r['params']:10,d}   {r['median_s']:7.3f}   {r['realtime_factor']:10.1f}"
              f"   {rows['complex']['median_s'] / r['median_s']:.2f}×")
    print(json.dumps({"seconds": a.seconds, "threads": a.threads, "repeats": a.repeats,
                      "torch": torch.__version__, "rows": rows}))


if __name__ == "__main__":
    main()
