"""VAE vs VQ-VAE on one rate–distortion plot: a β-sweep of VAEs against a VQ-VAE ladder.

Both bottlenecks sit on the same trunk (96 channels, 2 residual blocks, 64-dimensional
latents at 31.25 frames/s) and train with the same budget and data through
``python -m utils.train``. The VQ-VAE is the plain-encoder codec of
``benchmarks/front_ends.py`` (seed 0, shipped as ``data/pretrained/front_end_conv_s0.pt``);
its ladder is measured with ``--ladder``. Each VAE's
rate is its measured KL in bit/s (``python -m utils.evaluate vae``). All points come from the
same held-out clips and the same scoring code.

Each VAE is scored twice: decoding its posterior mean (what listening uses) and a posterior
sample (what relative-entropy coding at the KL rate transmits). Writes
``data/pretrained/vae_rd.json`` (read by notebook 03), copies each VAE's best checkpoint to
``data/pretrained/vae_beta<β>.pt``, prints a table and, last, one JSON line. ``--reuse``
keeps the numbers already measured on the same clips.

Run (from the repository root, after ``benchmarks/front_ends.py``)::

    python benchmarks/vae_rate_distortion.py --data data/speech_words \\
        --data ../shared/speech/speech_commands --eval ../shared/speech/speech_commands \\
        --steps 2500 --betas 0.25 1 4 16

Notebook: notebooks/03_vae_vs_vqvae.ipynb
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from benchmarks.common import last_json, run_parallel  # noqa: E402


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--data", action="append", required=True, help="training folders")
    p.add_argument("--eval", required=True, help="held-out folder (its testing split)")
    p.add_argument("--every", type=int, default=4, help="evaluate every K-th test clip")
    p.add_argument("--steps", type=int, default=2500)
    p.add_argument("--betas", type=float, nargs="+", default=[0.25, 1.0, 4.0, 16.0])
    p.add_argument("--codec", type=Path, default=ROOT / "data/pretrained/front_end_conv_s0.pt")
    p.add_argument("--max-bitrate", type=float, default=2500, help="top of the VQ-VAE ladder")
    p.add_argument("--out", type=Path, default=ROOT / "runs" / "vae_rd")
    p.add_argument("--jobs", type=int, default=2)
    p.add_argument("--reuse", action="store_true",
                   help="keep the numbers already in data/pretrained/vae_rd.json that were "
                        "measured on the same clips; measure only the missing ones")
    a = p.parse_args()
    out_json = ROOT / "data" / "pretrained" / "vae_rd.json"
    old = json.loads(out_json.read_text()) if a.reuse and out_json.is_file() else {}
    if old and (old.get("eval"), old.get("every"), old.get("steps")) != (a.eval, a.every, a.steps):
        old = {}
    if not a.codec.is_file():
        raise SystemExit(f"{a.codec}: run benchmarks/front_ends.py first")

    data = [x for d in a.data for x in ("--data", d)]
    commands = [[sys.executable, "-m", "utils.train", "vae", *data, "--out",
                 str(a.out / f"beta{b:g}"), "--steps", str(a.steps), "--val-every", str(a.steps),
                 "--save-every", "500", "--threads", "1", "--no-progress",
                 "--set", "channels=96", "--set", f"beta={b:g}"]
                for b in a.betas if not (a.out / f"beta{b:g}" / "best.pt").exists()]
    run_parallel(commands, a.jobs)

    common = [a.eval, "--split", "testing", "--every", str(a.every), "--no-stoi", "--json",
              "--no-progress"]
    vae_rows = []
    kept = {r["beta"]: r for r in old.get("vae", [])}
    for b in a.betas:
        ship = ROOT / "data" / "pretrained" / f"vae_beta{b:g}.pt"
        if not ship.is_file() or b not in kept:
            shutil.copyfile(a.out / f"beta{b:g}" / "best.pt", ship)
        row = dict(kept.get(b, {}))
        if "pesq_wb" not in row:  # the posterior mean (what listening uses)
            r = last_json([sys.executable, "-m", "utils.evaluate", "vae", str(ship), *common])
            row = {"beta": b, "checkpoint": ship.relative_to(ROOT).as_posix(),
                   "bitrate_bps": r["bitrate_bps"], "pesq_wb": r["pesq_wb"],
                   "logmel_l1": r["logmel_l1"], "n_clips": r["n_clips"],
                   **{k: r.get(k) for k in ("pesq_wb_ci95", "visqol", "visqol_ci95",
                                            "logmel_l1_ci95", "dnsmos_ovrl")}}
        if "pesq_wb_sample" not in row:  # a posterior sample (what the KL rate pays for)
            r = last_json([sys.executable, "-m", "utils.evaluate", "vae", str(ship), *common,
                            "--sample"])
            row.update(pesq_wb_sample=r["pesq_wb"], logmel_l1_sample=r["logmel_l1"])
        vae_rows.append(row)
    ladder = old.get("vqvae_ladder") or last_json(
        [sys.executable, "-m", "utils.evaluate", "codec", str(a.codec), *common, "--ladder",
         "--max-bitrate", str(a.max_bitrate)])["ladder"]

    print(f"\nrate–distortion on {vae_rows[0]['n_clips']} held-out clips of {a.eval}")
    print("system               bit/s   PESQ-WB  log-mel L1   (VAE: posterior mean; sample)")
    for r in ladder:
        print(f"VQ-VAE {r['depth']:2d} stages   {r['bitrate_bps']:7.0f}  {r['pesq_wb']:7.3f}  "
              f"{r['logmel_l1']:9.4f}")
    for r in vae_rows:
        print(f"VAE β = {r['beta']:<6g}      {r['bitrate_bps']:7.0f}  {r['pesq_wb']:7.3f}  "
              f"{r['logmel_l1']:9.4f}   {r['pesq_wb_sample']:.3f} {r['logmel_l1_sample']:.4f}")
    result = {"command": "python benchmarks/vae_rate_distortion.py " + " ".join(sys.argv[1:]),
              "eval": a.eval, "every": a.every, "steps": a.steps,
              "codec": str(a.codec.relative_to(ROOT)) if a.codec.is_relative_to(ROOT)
              else str(a.codec), "vqvae_ladder": ladder, "vae": vae_rows}
    out_json.write_text(json.dumps(result, indent=1) + "\n")
    print(json.dumps(result))


if __name__ == "__main__":
    main()
