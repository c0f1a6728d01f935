"""Does complex help speech enhancement, and is it the phase or the arithmetic?

Trains the three models of ``utils/models/dcunet.py`` with the same budget, data and seeds
through ``python -m utils.train enhance``: the complex DCUNet, the real U-Net on stacked
[Re, Im] (phase-aware, real arithmetic) and the real U-Net on the magnitude (noisy phase),
the real ones width-matched to the complex one's parameter count (±5 %). Then writes the fixed
test set (``python -m utils.evaluate enhance - --make-test-set``: held-out speakers × the
held-out part of the real noise and generated noise, at −5, 0, 5, 10 dB) and scores every model
on it with ``python -m utils.evaluate enhance``.

Prints per model the mean ± standard deviation over seeds of SI-SDRi, PESQ-WB and STOI per
input SNR, and paired Wilcoxon signed-rank tests between the kinds on the per-clip values
averaged over seeds; writes ``data/pretrained/enhance_compare.json`` (read by notebook 07) and
ends with one JSON line. ``--ship`` copies seed 0's baselines to ``data/pretrained/``.

Run (from the repository root)::

    python benchmarks/enhance_compare.py --data data/speech_words \\
        --data ../shared/speech/speech_commands \\
        --noise ../shared/noise/speech_commands_background \\
        --steps 1500 --seeds 0 1 2 --jobs 1 --every 4 --ship

Notebook: notebooks/07_speech_enhancement.ipynb
"""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from benchmarks.common import last_json, run_parallel  # noqa: E402

KINDS = ("complex", "ri", "mag")
METRICS = ("si_sdri", "pesq_wb_out", "stoi_out")



def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--data", action="append", required=True, help="clean speech folders")
    p.add_argument("--noise", action="append", default=[], help="real noise folders")
    p.add_argument("--steps", type=int, default=1500)
    p.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    p.add_argument("--every", type=int, default=4, help="every K-th test clip in the test set")
    p.add_argument("--out", type=Path, default=ROOT / "runs" / "enhance")
    p.add_argument("--jobs", type=int, default=2)
    p.add_argument("--ship", action="store_true", help="copy seed 0's baselines to data/pretrained")
    a = p.parse_args()

    # ---- train every (kind, seed) with the same budget
    data = [x for d in a.data for x in ("--data", d)] + [x for d in a.noise for x in ("--noise", d)]
    commands = [[sys.executable, "-m", "utils.train", "enhance", *data, "--out",
                 str(a.out / f"{k}_s{s}"), "--steps", str(a.steps), "--seed", str(s),
                 "--val-every", str(a.steps // 4), "--save-every", "250", "--threads", "1",
                 "--no-progress", "--set", f"kind={k}"]
                for k in KINDS for s in a.seeds if not (a.out / f"{k}_s{s}" / "best.pt").exists()]
    run_parallel(commands, a.jobs)
    if a.ship:
        for k in ("ri", "mag"):
            shutil.copyfile(a.out / f"{k}_s{a.seeds[0]}" / "best.pt",
                            ROOT / "data" / "pretrained" / f"enhance_{k}_s{a.seeds[0]}.pt")

    # ---- the fixed test set, then every model on it
    test = a.out / "test_set"
    if not (test / "index.json").exists():
        last_json([sys.executable, "-m", "utils.evaluate", "enhance", "-", "--make-test-set",
                    str(test), *data, "--every", str(a.every), "--json"])
    rows, per_clip = [], {}
    runs = [(k, s) for k in KINDS for s in a.seeds]
    commands = [[sys.executable, "-m", "utils.evaluate", "enhance",
                 str(a.out / f"{k}_s{s}" / "best.pt"), str(test / "noisy"), "--clean",
                 str(test / "clean"), "--json", "--no-progress", "--per-clip",
                 str(a.out / f"{k}_s{s}" / "test_clips.json")] for k, s in runs]
    with ThreadPoolExecutor(a.jobs) as pool:          # the scoring runs a.jobs at a time
        results = list(pool.map(last_json, commands))
    for (k, s), res in zip(runs, results, strict=True):
        log = [json.loads(x) for x in (a.out / f"{k}_s{s}" / "log.jsonl").read_text()
               .splitlines()]
        rows.append({"kind": k, "seed": s, "params": res["system"], "summary": res,
                     "train_s": max(r.get("time_s", 0.0) for r in log)})
        per_clip[(k, s)] = json.loads((a.out / f"{k}_s{s}" / "test_clips.json").read_text())

    # ---- statistics: seeds (mean ± std) and clips (paired test on seed-averaged values)
    from scipy.stats import wilcoxon

    table = {}
    for k in KINDS:
        rs = [r["summary"] for r in rows if r["kind"] == k]
        groups = list(rs[0]["per_snr"])
        table[k] = {g: {m: (statistics.mean(r["per_snr"][g][m] for r in rs),
                            statistics.stdev(r["per_snr"][g][m] for r in rs) if len(rs) > 1
                            else 0.0) for m in METRICS} for g in groups}
        table[k]["all"] = {m: (statistics.mean(r[m] for r in rs),
                               statistics.stdev(r[m] for r in rs) if len(rs) > 1 else 0.0)
                           for m in (*METRICS, "si_sdri_mean_over_snrs")}
    n_clips = len(per_clip[(KINDS[0], a.seeds[0])])

    def clip_means(k: str, key: str) -> list[float]:
        return [statistics.mean(per_clip[(k, s)][i][key] - per_clip[(k, s)][i][
            key.replace("_out", "_in")] if key == "si_sdr_out" else per_clip[(k, s)][i][key]
            for s in a.seeds) for i in range(n_clips)]

    tests = {}
    for x, y in (("complex", "ri"), ("ri", "mag"), ("complex", "mag")):
        for key in ("si_sdr_out", "pesq_wb_out"):
            u, v = clip_means(x, key), clip_means(y, key)
            pairs = [(p, q) for p, q in zip(u, v, strict=True) if p == p and q == q]  # no NaN
            d = [p - q for p, q in pairs]
            stat = wilcoxon([p for p, _ in pairs], [q for _, q in pairs])
            tests[f"{x} vs {y}: {key}"] = {"mean_difference": statistics.mean(d),
                                           "p_value": float(stat.pvalue), "n": len(d)}

    print(f"\n{n_clips} test pairs ({test}), {a.steps} steps, seeds {a.seeds}")
    print("kind      SNR    SI-SDRi (dB)      PESQ-WB out      STOI out")
    for k in KINDS:
        for g, r in table[k].items():
            print(f"{k:8s} {g:>5}  {r['si_sdri'][0]:6.2f} ± {r['si_sdri'][1]:.2f}   "
                  f"{r['pesq_wb_out'][0]:.3f} ± {r['pesq_wb_out'][1]:.3f}   "
                  f"{r['stoi_out'][0]:.3f} ± {r['stoi_out'][1]:.3f}")
    print("paired Wilcoxon signed-rank tests over clips (values averaged over seeds):")
    for name, t in tests.items():
        print(f"  {name:32s} mean difference {t['mean_difference']:+.3f}, p = {t['p_value']:.2g}"
              f" (n = {t['n']})")
    result = {"command": "python benchmarks/enhance_compare.py " + " ".join(sys.argv[1:]),
              "steps": a.steps, "seeds": a.seeds, "n_pairs": n_clips,
              "test_set": json.loads((test / "index.json").read_text())["data"],
              "rows": rows, "table": table, "tests": tests}
    (ROOT / "data" / "pretrained" / "enhance_compare.json").write_text(
        json.dumps(result, indent=1) + "\n")
    print(json.dumps(result))


if __name__ == "__main__":
    main()
