"""What the front-end buys: the plain, CBHG and Inception encoders in one codec, measured.

Each encoder is the encoder of the same mel VQ-VAE (same decoder, same residual VQ, same
bit rate), its width chosen so that the **encoder parameter counts match within 5 %**
(``--set encoder_channels``), trained with the same budget (steps, data, schedule) for
several seeds through ``python -m utils.train codec``, then measured at 1250 bps on held-out
clips with ``python -m utils.evaluate codec`` (log-mel L1 and PESQ-WB), plus the encoder's
CPU time per second of audio (one thread, median of repeats; a rough single-machine figure).

Prints a table (mean ± standard deviation over seeds) and, last, one JSON line; writes
``data/pretrained/front_ends.json`` (read by notebook 04) and copies the first seed's codec of
each encoder to ``data/pretrained/front_end_<encoder>_s<seed>.pt`` (notebook 04 listens to
them; notebook 03's rate–distortion plot uses the plain one). Runs two trainings at a time.

Run (from the repository root)::

    python benchmarks/front_ends.py --data data/speech_words \\
        --data ../shared/speech/speech_commands --eval ../shared/speech/speech_commands \\
        --steps 2500 --seeds 0 1 2

Notebook: notebooks/04_front_ends.ipynb
"""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
import sys
import time
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from benchmarks.common import last_json, run_parallel  # noqa: E402
from utils.models.vqvae import MelVQVAE  # noqa: E402

#: Encoder widths whose parameter counts match the plain encoder at 96 channels (±1 %).
WIDTHS = {"conv": 96, "cbhg": 78, "inception": 154}


def encoder_ms_per_second(model: MelVQVAE, repeats: int = 7) -> float:
    """Median CPU time of the encoder (log-mel → indices at 5 stages) for 1 s of audio."""
    torch.set_num_threads(1)
    x = torch.full((1, 80, 64), -2.5) + 0.5 * torch.randn(1, 80, 64)
    times = []
    with torch.no_grad():
        for _ in range(repeats):
            t0 = time.perf_counter()
            model.encode_indices(x, 5)
            times.append(time.perf_counter() - t0)
    return 1e3 * statistics.median(times) / (64 / 62.5)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--data", action="append", required=True, help="training folders")
    p.add_argument("--eval", required=True, help="held-out folder (its testing split)")
    p.add_argument("--every", type=int, default=4, help="evaluate every K-th test clip")
    p.add_argument("--steps", type=int, default=2500)
    p.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    p.add_argument("--out", type=Path, default=ROOT / "runs" / "front_ends")
    p.add_argument("--jobs", type=int, default=2)
    p.add_argument("--json-out", type=Path, default=ROOT / "data/pretrained/front_ends.json")
    a = p.parse_args()

    # ---- train every (encoder, seed) with the same budget
    commands = []
    for enc, width in WIDTHS.items():
        for seed in a.seeds:
            out = a.out / f"{enc}_s{seed}"
            if (out / "best.pt").exists():
                continue
            data = [x for d in a.data for x in ("--data", d)]
            commands.append([sys.executable, "-m", "utils.train", "codec", *data, "--out",
                             str(out), "--steps", str(a.steps), "--seed", str(seed),
                             "--val-every", str(a.steps), "--save-every", "500",
                             "--threads", "1", "--no-progress", "--set", "channels=96",
                             "--set", f"encoder={enc}", "--set", f"encoder_channels={width}"])
    run_parallel(commands, a.jobs)

    # ---- ship the first seed's codec of each encoder (notebook 04 listens to them)
    for enc in WIDTHS:
        shutil.copyfile(a.out / f"{enc}_s{a.seeds[0]}" / "best.pt",
                        ROOT / "data" / "pretrained" / f"front_end_{enc}_s{a.seeds[0]}.pt")

    # ---- measure each at 1250 bps on the same held-out clips
    rows = []
    for enc in WIDTHS:
        for seed in a.seeds:
            ck = a.out / f"{enc}_s{seed}" / "best.pt"
            cmd = [sys.executable, "-m", "utils.evaluate", "codec", str(ck), a.eval, "--split",
                   "testing", "--every", str(a.every), "--max-bitrate", "1300", "--no-stoi",
                   "--json", "--no-progress"]
            res = last_json(cmd)
            model = MelVQVAE.from_checkpoint(ck)
            rows.append({"encoder": enc, "seed": seed, "pesq_wb": res["pesq_wb"],
                         "logmel_l1": res["logmel_l1"], "bitrate_bps": res["bitrate_bps"],
                         "n_clips": res["n_clips"],
                         "encoder_params": sum(q.numel() for q in model.encoder.parameters()),
                         "params": model.num_parameters(),
                         "encoder_ms_per_s": round(encoder_ms_per_second(model), 2)})

    # ---- the table
    summary = []
    print(f"\nencoders in one codec, 1250 bps, {a.steps} steps, seeds {a.seeds}, "
          f"{rows[0]['n_clips']} held-out clips")
    print("encoder     enc. params  log-mel L1        PESQ-WB          ms / s audio")
    for enc in WIDTHS:
        r = [x for x in rows if x["encoder"] == enc]
        stat = {k: (statistics.mean(x[k] for x in r), statistics.stdev(x[k] for x in r)
                    if len(r) > 1 else 0.0) for k in ("logmel_l1", "pesq_wb", "encoder_ms_per_s")}
        summary.append({"encoder": enc, "encoder_params": r[0]["encoder_params"],
                        **{f"{k}_mean": round(m, 4) for k, (m, _) in stat.items()},
                        **{f"{k}_std": round(s, 4) for k, (_, s) in stat.items()}})
        print(f"{enc:10s} {r[0]['encoder_params']:12,d}  {stat['logmel_l1'][0]:.4f} ± "
              f"{stat['logmel_l1'][1]:.4f}   {stat['pesq_wb'][0]:.3f} ± {stat['pesq_wb'][1]:.3f}"
              f"   {stat['encoder_ms_per_s'][0]:6.2f}")
    result = {"command": "python benchmarks/front_ends.py " + " ".join(sys.argv[1:]),
              "steps": a.steps, "seeds": a.seeds, "eval": a.eval, "every": a.every,
              "widths": WIDTHS, "rows": rows, "summary": summary}
    a.json_out.write_text(json.dumps(result, indent=1) + "\n")
    print(json.dumps(result))


if __name__ == "__main__":
    main()
