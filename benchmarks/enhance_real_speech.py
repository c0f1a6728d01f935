"""The shipped enhancers on real speech only, per input SNR, with paired 95 % intervals.

The three-seed comparison (``benchmarks/enhance_compare.py``) built its test set from the
checkpoints' data folders, which include the bundled synthetic words. This benchmark builds a
test set from **real recordings only** (the held-out speakers of a real-speech folder × the
held-out part of the real background noise and generated noise, at −5, 0, 5 and 10 dB;
``python -m utils.evaluate enhance - --make-test-set``), scores the three shipped enhancers on
it with the one scorer (SI-SDR, PESQ-WB, ViSQOL, STOI, DNSMOS; ``python -m utils.evaluate
enhance``) and compares the complex DCUNet with each real baseline **on the same pairs** at
each SNR (paired bootstrap of the per-pair differences, :mod:`utils.stats`). Writes
``data/pretrained/enhance_real_speech.json`` (read by notebook 07).

Run (from the repository root)::

    python benchmarks/enhance_real_speech.py --data ../shared/speech/speech_commands \\
        --noise ../shared/noise/speech_commands_background --every 4

Notebook: notebooks/07_speech_enhancement.ipynb
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from benchmarks.common import last_json  # noqa: E402
from utils.stats import paired_bootstrap  # noqa: E402

MODELS = {"complex DCUNet": "data/pretrained/enhance_dcunet10.pt",
          "[Re, Im] U-Net": "data/pretrained/enhance_ri_s0.pt",
          "magnitude U-Net": "data/pretrained/enhance_mag_s0.pt"}
KEYS = ("si_sdr_out", "pesq_wb_out", "visqol_out")


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--data", required=True, help="real-speech folder (its testing split)")
    p.add_argument("--noise", required=True, help="real background-noise folder")
    p.add_argument("--every", type=int, default=4, help="every K-th test clip")
    p.add_argument("--out", type=Path, default=Path("runs") / "enhance_real_test")
    a = p.parse_args()
    if a.out.resolve().is_relative_to(ROOT):  # rows name files relative to the repository
        a.out = a.out.resolve().relative_to(ROOT)
    py = [sys.executable, "-m", "utils.evaluate", "enhance"]
    if not (ROOT / a.out / "index.json").is_file():
        last_json([*py, "-", "--make-test-set", str(a.out), "--data", a.data,
                   "--noise", a.noise, "--every", str(a.every), "--json"])
    per_clip = ROOT / "benchmarks" / "results" / "enhance_real_speech"
    per_clip.mkdir(parents=True, exist_ok=True)
    summaries, rows = {}, {}
    for name, ckpt in MODELS.items():
        out = per_clip / f"{Path(ckpt).stem}.json"
        summaries[name] = last_json([*py, ckpt, str(a.out / "noisy"), "--clean",
                                     str(a.out / "clean"), "--json", "--no-progress",
                                     "--per-clip", str(out.relative_to(ROOT))])
        rows[name] = {r["file"]: r for r in json.loads(out.read_text())}
        print(f"{name}: SI-SDRi {summaries[name]['si_sdri']:.2f} dB", flush=True)
    snrs = sorted({r["snr_group"] for r in rows["complex DCUNet"].values()})
    paired = {}
    for other in ("[Re, Im] U-Net", "magnitude U-Net"):
        for snr in [*snrs, "all"]:
            files = sorted(f for f, r in rows["complex DCUNet"].items()
                           if f in rows[other] and (snr == "all" or r["snr_group"] == snr))
            for key in KEYS:
                ci = paired_bootstrap(
                    [rows["complex DCUNet"][f].get(key) or float("nan") for f in files],
                    [rows[other][f].get(key) or float("nan") for f in files])
                paired[f"complex DCUNet − {other} | {snr} | {key}"] = {
                    "mean": round(ci.mean, 4), "ci95": ci.as_list(), "n": ci.n}
    result = {"command": "python benchmarks/enhance_real_speech.py " + " ".join(sys.argv[1:]),
              "data": a.data, "noise": a.noise, "every": a.every, "models": MODELS,
              "summaries": summaries, "paired": paired}
    (ROOT / "data" / "pretrained" / "enhance_real_speech.json").write_text(
        json.dumps(result, indent=1) + "\n")
    for k, v in paired.items():
        print(f"{k:70s} {v['mean']:+.3f} {v['ci95']}")


if __name__ == "__main__":
    main()
