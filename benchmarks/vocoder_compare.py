"""From mel back to waveform: Griffin-Lim, the phase-aware vocoder and WaveNet, measured.

On the same held-out clips, with the same scoring code (``python -m utils.evaluate``: the one
scorer, every system at its known delay, ``docs/metrics.md``; with ``--quality-from-yardstick``
the quality table is the one ``benchmarks/yardstick.py --write-stored`` wrote):

* from the **true mel**: Griffin-Lim (32 iterations, the collection's default) and the vocoder;
* through the **codec** (``--codec``) at 1250 and 6000 bps, decoded with Griffin-Lim and with the
  vocoder, next to Codec 2 1300 and Opus 6 kbps;
* **WaveNet** on ``--wavenet-clips`` clips (sample-by-sample generation is slow) against the
  vocoder and Griffin-Lim on the same clips;
* **speed** on one CPU thread: real-time factor (audio duration / compute time, medians of
  interleaved repeats on ``--seconds`` of audio) of the vocoder and of Griffin-Lim from the
  mel, and WaveNet's generation speed.

Prints the tables and, last, one JSON line; writes ``data/pretrained/vocoder_compare.json``
(read by notebooks 02 and 08).

Run (from the repository root)::

    python benchmarks/vocoder_compare.py --data ../shared/speech/speech_commands --every 4 \\
        --vocoder data/pretrained/vocoder.pt --wavenet data/pretrained/wavenet_small.pt

Notebook: notebooks/08_vocoders.ipynb
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from benchmarks.common import last_json  # noqa: E402
from utils.audio import load, log_mel, log_mel_to_audio  # noqa: E402
from utils.data import find_audio  # noqa: E402
from utils.metrics import evaluate_pair  # noqa: E402
from utils.models.vocoder import MelVocoder  # noqa: E402
from utils.models.wavenet import WaveNet  # noqa: E402


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--data", required=True, help="held-out folder (its testing split)")
    p.add_argument("--every", type=int, default=4)
    p.add_argument("--vocoder", default=str(ROOT / "data/pretrained/vocoder.pt"))
    p.add_argument("--wavenet", default=str(ROOT / "data/pretrained/wavenet_small.pt"))
    p.add_argument("--codec", default=str(ROOT / "data/pretrained/vqvae_speech.pt"))
    p.add_argument("--wavenet-clips", type=int, default=4)
    p.add_argument("--seconds", type=float, default=10.0)
    p.add_argument("--repeats", type=int, default=5)
    p.add_argument("--quality-from-yardstick", action="store_true",
                   help="keep the quality table that benchmarks/yardstick.py --write-stored "
                        "wrote (every system on all test clips); measure WaveNet and speed only")
    a = p.parse_args()
    out_json = ROOT / "data/pretrained/vocoder_compare.json"

    def rel(path: str) -> str:
        q = Path(path).resolve()
        return q.relative_to(ROOT).as_posix() if q.is_relative_to(ROOT) else path
    torch.set_num_threads(1)

    # ---- quality on the same clips
    common = [a.data, "--split", "testing", "--every", str(a.every), "--no-stoi", "--json",
              "--no-progress"]
    ev = [sys.executable, "-m", "utils.evaluate"]
    systems = {
        "Griffin-Lim 32 it., true mel": ev + ["codec", "-", *common, "--baseline", "griffinlim"],
        "vocoder, true mel": ev + ["vocoder", a.vocoder, *common],
        "VQ-VAE 1250 bps + Griffin-Lim": ev + ["codec", a.codec, *common, "--max-bitrate", "1300"],
        "VQ-VAE 1250 bps + vocoder": ev + ["codec", a.codec, *common, "--max-bitrate", "1300",
                                           "--vocoder", a.vocoder],
        "VQ-VAE 6000 bps + Griffin-Lim": ev + ["codec", a.codec, *common, "--max-bitrate", "6000"],
        "VQ-VAE 6000 bps + vocoder": ev + ["codec", a.codec, *common, "--max-bitrate", "6000",
                                           "--vocoder", a.vocoder],
        "Codec 2 1300": ev + ["codec", "-", *common, "--baseline", "codec2"],
        "Opus 6 kbps": ev + ["codec", "-", *common, "--baseline", "opus"],
    }
    quality = {}
    stored = json.loads(out_json.read_text()) if out_json.is_file() else {}
    if a.quality_from_yardstick:
        quality, systems = stored["quality"], {}
    for name, cmd in systems.items():
        r = last_json(cmd)
        quality[name] = {k: r.get(k) for k in ("pesq_wb", "logmel_l1", "bitrate_bps",
                                                 "n_clips", "n_failed")}
        print(f"{name:32s} PESQ-WB {r['pesq_wb']:.3f}  log-mel L1 {r['logmel_l1']:.4f}  "
              f"({r['n_clips']} clips)", flush=True)

    # ---- WaveNet on a few clips, next to the vocoder and Griffin-Lim on the same clips
    vocoder = MelVocoder.from_checkpoint(a.vocoder)
    wavenet = WaveNet.from_checkpoint(a.wavenet)
    files = find_audio(a.data, "testing")[:: a.every][: a.wavenet_clips]
    wn_rows = {"WaveNet": [], "vocoder": [], "Griffin-Lim": []}
    wn_time = wn_samples = 0.0
    for i, f in enumerate(files):
        y = load(f)
        L = log_mel(y)
        t0 = time.perf_counter()
        wave, _ = wavenet.generate(torch.from_numpy(L)[None], len(y),
                                   generator=torch.Generator().manual_seed(i))
        wn_time += time.perf_counter() - t0
        wn_samples += len(y)
        outs = {"WaveNet": wave[0].numpy(), "vocoder": vocoder.synthesize(L, len(y)),
                "Griffin-Lim": log_mel_to_audio(L, n_iter=32, length=len(y))}
        for k, out in outs.items():
            wn_rows[k].append(evaluate_pair(y, out, with_visqol=True))  # all in time: delay 0
    wavenet_quality = {k: {"pesq_wb": float(np.nanmean([r["pesq_wb"] for r in v])),
                           "visqol": float(np.nanmean([r["visqol"] for r in v])),
                           "logmel_l1": float(np.mean([r["logmel_l1"] for r in v])),
                           "n_clips": len(v)} for k, v in wn_rows.items()}
    wavenet_speed = wn_time / (wn_samples / 16000)

    # ---- speed, one thread, interleaved repeats
    rng = np.random.default_rng(0)
    y = (0.1 * rng.standard_normal(int(16000 * a.seconds))).astype(np.float32)
    L = log_mel(y)
    times = {"vocoder": [], "Griffin-Lim 32 it.": []}
    vocoder.synthesize(L, len(y))
    for _ in range(a.repeats):
        t0 = time.perf_counter()
        vocoder.synthesize(L, len(y))
        times["vocoder"].append(time.perf_counter() - t0)
        t0 = time.perf_counter()
        log_mel_to_audio(L, n_iter=32, length=len(y))
        times["Griffin-Lim 32 it."].append(time.perf_counter() - t0)
    speed = {k: {"median_s": statistics.median(v), "realtime_factor":
                 a.seconds / statistics.median(v)} for k, v in times.items()}
    speed["WaveNet generation"] = {"seconds_per_second": wavenet_speed,
                                   "realtime_factor": 1 / wavenet_speed}

    print(f"\nWaveNet on {len(files)} clips:")
    for k, r in wavenet_quality.items():
        print(f"  {k:12s} PESQ-WB {r['pesq_wb']:.3f}  log-mel L1 {r['logmel_l1']:.4f}")
    print(f"speed on one thread ({a.seconds:g} s of audio, median of {a.repeats}):")
    for k, r in speed.items():
        print(f"  {k:20s} {r['realtime_factor']:9.2f} × real time")
    result = {"command": "python benchmarks/vocoder_compare.py " + " ".join(sys.argv[1:]),
              "data": a.data, "every": a.every, "vocoder": rel(a.vocoder),
              "wavenet": rel(a.wavenet), "codec": rel(a.codec), "torch": torch.__version__,
              "quality": quality, "wavenet_quality": wavenet_quality, "speed": speed}
    if a.quality_from_yardstick:
        result.update(every=stored.get("every", 1), quality_command=stored.get("quality_command"))
    out_json.write_text(json.dumps(result, indent=1) + "\n")
    print(json.dumps(result))


if __name__ == "__main__":
    main()
