"""The classical phase-retrieval ladder on real speech: quality against CPU time.

Every method starts from the same magnitude, the true log-mel inverted by non-negative least
squares (:func:`utils.audio.mel_to_magnitude`), and differs in what it does next
(:mod:`utils.phase`):

* ``gl``: Griffin-Lim (momentum 0), random initial phase;
* ``fgla``: fast Griffin-Lim (momentum 0.99), initial phase random, zero or PGHI;
* ``melgl``: PGHI, then fast Griffin-Lim that re-estimates the magnitude toward the mel;
* a momentum sweep (0.5, 0.9, 0.99, 1.1) of fast Griffin-Lim at 32 iterations;

each at 8 … 256 iterations (one run per method, read at every count). Two parts:

* ``--part quality``: PESQ-WB and log-mel L1 of every (method, iterations) on the testing
  split, with the collection's scorer (:func:`utils.scoring.score_files`; ViSQOL and DNSMOS of
  the chosen points come from ``benchmarks/yardstick.py``, which runs them through
  ``python -m utils.evaluate``); ``--shard i/n`` splits the clips between processes;
* ``--part timing``: CPU seconds per second of audio of every point and of the learned models
  given with ``--learned``, one thread, measured in one run on the first ``--timing-clips``
  clips, the fastest of three passes after a warm-up pass (the anchors are Griffin-Lim 32 and
  the vocoder, so the ratios are what counts);
* ``--write-stored``: merges both into ``data/pretrained/phase_ladder.json`` (notebook 08's
  Pareto figure), with the Pareto front marked.

Run (from the repository root; ``../shared/speech`` exists on the developers' machines)::

    D=../shared/speech/speech_commands
    python benchmarks/phase_ladder.py --part quality --data $D --shard 0/2 &
    python benchmarks/phase_ladder.py --part quality --data $D --shard 1/2
    python benchmarks/phase_ladder.py --part timing --data $D \\
        --learned data/pretrained/vocoder.pt data/pretrained/degli_complex.pt ...
    python benchmarks/phase_ladder.py --write-stored

Notebook: notebooks/08_vocoders.ipynb
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from utils.audio import FEATURES, load, log_mel, mel_spectrogram, mel_to_magnitude  # noqa: E402
from utils.phase import griffin_lim  # noqa: E402

RESULTS = ROOT / "benchmarks" / "results" / "phase_ladder"
STORED = ROOT / "data" / "pretrained" / "phase_ladder.json"
COUNTS = (8, 16, 32, 64, 128, 256)

#: method → (momentum, initial phase, re-estimate the magnitude from the mel, iteration counts)
METHODS: dict[str, tuple[float, str, bool, tuple[int, ...]]] = {
    "gl_random": (0.0, "random", False, COUNTS),
    "fgla_random": (0.99, "random", False, COUNTS),
    "fgla_zero": (0.99, "zero", False, COUNTS),
    "fgla_pghi": (0.99, "pghi", False, (0, *COUNTS)),
    "melgl_pghi": (0.99, "pghi", True, (0, *COUNTS)),
    "fgla_random_m0.5": (0.5, "random", False, (32,)),
    "fgla_random_m0.9": (0.9, "random", False, (32,)),
    "fgla_random_m1.1": (1.1, "random", False, (32,)),
}
NAMES = {"gl_random": "Griffin-Lim, random phase", "fgla_random": "fast GL, random phase",
         "fgla_zero": "fast GL, zero phase", "fgla_pghi": "fast GL from PGHI",
         "melgl_pghi": "mel-consistent fast GL from PGHI",
         "fgla_random_m0.5": "fast GL α=0.5", "fgla_random_m0.9": "fast GL α=0.9",
         "fgla_random_m1.1": "fast GL α=1.1"}


def testing_files(data: str) -> list[Path]:
    """The testing split's clips, in the order the evaluations use."""
    from utils.data import find_audio

    return [Path(f) for f in find_audio(data, "testing")]


def run_method(y: np.ndarray, method: str) -> dict[int, np.ndarray]:
    """Every iteration count of one method on one clip, from one run."""
    momentum, init, mel, counts = METHODS[method]
    M = mel_spectrogram(y, FEATURES)
    A = mel_to_magnitude(M, FEATURES)
    return griffin_lim(A, FEATURES, n_iter=max(counts), momentum=momentum, init=init,
                       length=len(y), mel=M if mel else None, snapshots=counts)


def quality(data: str, shard: tuple[int, int]) -> None:
    from utils.scoring import score_files

    files = testing_files(data)[shard[0]::shard[1]]

    def system(y: np.ndarray) -> dict[str, np.ndarray]:
        return {f"{m}:{n}": w for m in METHODS for n, w in run_method(y, m).items()}

    res = score_files(files, system, metrics=("pesq_wb", "logmel_l1"), root=data,
                      progress=True)
    RESULTS.mkdir(parents=True, exist_ok=True)
    rows = {k: v["per_clip"] for k, v in res["by_key"].items()}
    out = RESULTS / f"quality_{shard[0]}of{shard[1]}.json"
    out.write_text(json.dumps({"data": data, "rows": rows, "failed": res["failed"]}) + "\n")
    print(f"wrote {out.relative_to(ROOT)}")


def timing(data: str, learned: list[str], clips: int, repeats: int = 3) -> None:
    import torch

    from utils.reconstruction import reconstruction

    torch.set_num_threads(1)
    files = testing_files(data)[:clips]
    waves = [load(f) for f in files]
    mels = [log_mel(y) for y in waves]
    seconds = sum(len(y) for y in waves) / FEATURES.sr
    systems = {f"{m}:{n}": _classical(m, n) for m, (_, _, _, counts) in METHODS.items()
               for n in counts}
    for path in learned:
        systems[Path(path).stem] = reconstruction(path)
    times: dict[str, float] = {}
    for rep in range(1 + repeats):  # the first pass warms caches; then the fastest pass is kept
        for key, rec in systems.items():
            t0 = time.process_time()
            for L, y in zip(mels, waves, strict=True):
                rec(L, len(y))
            took = (time.process_time() - t0) / seconds
            if rep:
                times[key] = min(took, times.get(key, took))
        print(f"pass {rep}: done")
    RESULTS.mkdir(parents=True, exist_ok=True)
    out = RESULTS / "timing.json"
    out.write_text(json.dumps({"clips": clips, "seconds_of_audio": round(seconds, 2),
                               "threads": 1, "repeats": repeats, "kept": "fastest",
                               "cpu_s_per_s": times,
                               "learned": {Path(p).stem: p for p in learned}}, indent=1) + "\n")
    print(f"wrote {out.relative_to(ROOT)}")


def _classical(method: str, n: int):
    momentum, init, mel, _ = METHODS[method]

    def rec(L: np.ndarray, length: int) -> np.ndarray:
        M = np.power(10.0, L.astype(np.float64)).astype(np.float32)
        A = mel_to_magnitude(M, FEATURES)
        return griffin_lim(A, FEATURES, n_iter=n, momentum=momentum, init=init, length=length,
                           mel=M if mel else None)

    return rec


def pareto(points: dict[str, tuple[float, float]]) -> list[str]:
    """Keys of the points no other point beats on both quality (higher) and time (lower)."""
    front = []
    for k, (q, t) in points.items():
        if not any((q2 >= q and t2 <= t) and (q2 > q or t2 < t)
                   for k2, (q2, t2) in points.items() if k2 != k):
            front.append(k)
    return sorted(front, key=lambda k: points[k][1])


def write_stored() -> None:
    from utils.scoring import summarize

    rows: dict[str, list] = {}
    data = None
    for f in sorted(RESULTS.glob("quality_*of*.json")):
        part = json.loads(f.read_text())
        data = part["data"]
        for k, r in part["rows"].items():
            rows.setdefault(k, []).extend(r)
    timing_data = json.loads((RESULTS / "timing.json").read_text())
    cpu = timing_data["cpu_s_per_s"]
    entries = {}
    for k, r in rows.items():
        s = summarize(r, ("pesq_wb", "logmel_l1"))
        method, n = k.split(":")
        entries[k] = {"method": method, "name": NAMES[method], "iterations": int(n),
                      "pesq_wb": round(s["pesq_wb"], 4),
                      "pesq_wb_ci95": [round(v, 4) for v in s["pesq_wb_ci95"]],
                      "logmel_l1": round(s["logmel_l1"], 5), "n_clips": s["n_clips"],
                      "cpu_s_per_s": round(cpu[k], 5) if k in cpu else None}
    pts = {k: (e["pesq_wb"], e["cpu_s_per_s"]) for k, e in entries.items()
           if e["cpu_s_per_s"] is not None}
    front = pareto(pts)
    for k in entries:
        entries[k]["pareto"] = k in front
    command = "python benchmarks/phase_ladder.py --part quality|timing --data " + str(data)
    STORED.write_text(json.dumps({
        "note": "Every classical method from the NNLS magnitude of the true log-mel, on the "
                "real Speech Commands testing split (312 clips, 20 held-out speakers); PESQ-WB "
                "with 95 % bootstrap intervals over clips (utils.scoring); CPU seconds per "
                "second of audio on one thread, from one timing run on the first "
                f"{timing_data['clips']} clips.",
        "command": command, "points": entries, "pareto": front,
        "learned_cpu_s_per_s": {k: round(v, 5) for k, v in cpu.items() if k not in entries},
    }, indent=1) + "\n")
    print(f"wrote {STORED.relative_to(ROOT)}; Pareto front: {front}")


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--part", choices=["quality", "timing"])
    p.add_argument("--data", help="real-speech folder (its testing split)")
    p.add_argument("--shard", default="0/1", help="i/n: every n-th clip from the i-th")
    p.add_argument("--learned", nargs="*", default=[], help="checkpoints to time too")
    p.add_argument("--timing-clips", type=int, default=20)
    p.add_argument("--write-stored", action="store_true")
    a = p.parse_args()
    if a.write_stored:
        write_stored()
        return
    if not a.part or not a.data:
        raise SystemExit("--part and --data are needed (or --write-stored)")
    i, n = (int(v) for v in a.shard.split("/"))
    if a.part == "quality":
        quality(a.data, (i, n))
    else:
        timing(a.data, a.learned, a.timing_clips)


if __name__ == "__main__":
    main()
