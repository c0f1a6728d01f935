"""Every stored comparison of the collection, re-measured with the one scorer on real speech.

Runs ``python -m utils.evaluate`` for each system below on the held-out (testing) split of a
real-speech folder, keeps each summary (every score with its 95 % interval, the measured bit
rate, the delay used, NaN counts and their reasons) and the per-clip rows, and writes

* ``benchmarks/results/yardstick.json``: ``{"command", "data", "systems": {name: summary}}``;
* ``benchmarks/results/yardstick/NAME.json``: the per-clip rows of each system, from which
  paired differences between systems on the same clips are computed (:mod:`utils.stats`);
* with ``--write-stored``, the files the notebooks read, from those results:
  ``data/pretrained/vqvae_speech_eval.json`` (notebook 02's table),
  ``data/pretrained/vqvae_speech_ladder.json`` (its rate–quality curve) and the ``quality``
  part of ``data/pretrained/vocoder_compare.json`` (notebooks 01, 02 and 08).

Systems already in the JSON are kept unless ``--redo`` names them, so a long run can be split.
The README's tables are checked against this file by ``tests/test_readme_numbers.py``.

Run (from the repository root; ``../shared/speech`` exists on the developers' machines)::

    python benchmarks/yardstick.py --data ../shared/speech/speech_commands --jobs 2

Notebook: notebooks/02_vq_vae.ipynb
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "benchmarks" / "results" / "yardstick.json"
PER_CLIP = ROOT / "benchmarks" / "results" / "yardstick"

CODEC = "data/pretrained/vqvae_speech.pt"
VOCODER = "data/pretrained/vocoder.pt"

#: name → (task, arguments before the data folder, arguments after it, every-K subsample)
SYSTEMS: dict[str, tuple[str, list[str], list[str], int]] = {
    "codec_1250_gl": ("codec", [CODEC], ["--max-bitrate", "1300"], 1),
    "codec_6000_gl": ("codec", [CODEC], ["--max-bitrate", "6000"], 1),
    "codec_1250_vocoder": ("codec", [CODEC], ["--max-bitrate", "1300", "--vocoder", VOCODER], 1),
    "codec_6000_vocoder": ("codec", [CODEC], ["--max-bitrate", "6000", "--vocoder", VOCODER], 1),
    "griffinlim_32": ("codec", ["-"], ["--baseline", "griffinlim", "--dnsmos-originals"], 1),
    "griffinlim_8": ("codec", ["-"], ["--baseline", "griffinlim", "--gl-iters", "8"], 1),
    "vocoder_true_mel": ("vocoder", [VOCODER], [], 1),
    "codec2_1300": ("codec", ["-"], ["--baseline", "codec2", "--codec2-mode", "1300"], 1),
    "codec2_3200": ("codec", ["-"], ["--baseline", "codec2", "--codec2-mode", "3200"], 1),
    "opus_6": ("codec", ["-"], ["--baseline", "opus", "--opus-kbps", "6"], 1),
    "opus_12": ("codec", ["-"], ["--baseline", "opus", "--opus-kbps", "12"], 1),
    "codec2_700C": ("codec", ["-"], ["--baseline", "codec2", "--codec2-mode", "700C"], 1),
    "opus_8": ("codec", ["-"], ["--baseline", "opus", "--opus-kbps", "8"], 1),
    "opus_6_vbr": ("codec", ["-"], ["--baseline", "opus", "--opus-kbps", "6", "--opus-vbr"], 1),
    "codec_ladder": ("codec", [CODEC], ["--ladder"], 4),
    **{f"vae_beta{b}": ("vae", [f"data/pretrained/vae_beta{b}.pt"], [], 4)
       for b in ("0.25", "1", "4", "16")},
    **{f"front_end_{k}_s0": ("codec", [f"data/pretrained/front_end_{k}_s0.pt"],
                             ["--max-bitrate", "1300"], 4) for k in ("conv", "cbhg", "inception")},
    # past Griffin-Lim (notebook 08): classical phase retrieval, Deep Griffin-Lim, adversarial
    **{f"{m}_{n}": ("codec", ["-"], ["--baseline", "griffinlim", "--vocoder", f"{m}:{n}"], 1)
       for m, n in (("pghi", 32), ("melgl", 32), ("melgl", 128))},
    **{f"degli_{k}_s{s}": ("degli", [f"data/pretrained/degli_{k}_s{s}.pt"], [], 1)
       for k in ("complex", "real", "mag") for s in range(3)},
    **{f"vocoder_ft_{a}": ("vocoder", [f"runs/vocoder_ft/{a}/best.pt"], [], 1)
       for a in ("none", "mpd", "mrd", "both")},
    **{f"codec_{b}_{m}": ("codec", [CODEC], ["--max-bitrate", str(r), "--vocoder", spec], 1)
       for b, r, m, spec in (("1250", 1300, "melgl32", "melgl:32"),
                             ("6000", 6000, "melgl32", "melgl:32"),
                             ("1250", 1300, "melgl128", "melgl:128"),
                             ("1250", 1300, "melgl256", "melgl:256"),
                             ("1250", 1300, "vocoder_adv", "data/pretrained/vocoder_adv.pt"),
                             ("6000", 6000, "vocoder_adv", "data/pretrained/vocoder_adv.pt"))},
}


def command(name: str, data: str) -> list[str]:
    """The evaluation command of one system."""
    task, before, after, every = SYSTEMS[name]
    return [sys.executable, "-m", "utils.evaluate", task, *before, data, "--split", "testing",
            *(["--every", str(every)] if every > 1 else []), *after, "--json", "--no-progress",
            "--per-clip", str((PER_CLIP / f"{name}.json").relative_to(ROOT))]


#: Rows of the stored tables: yardstick key → the system's name in the notebooks.
STORED_NAMES = {
    "codec_1250_gl": "VQ-VAE 1250 bps + Griffin-Lim",
    "codec_1250_vocoder": "VQ-VAE 1250 bps + vocoder",
    "codec_6000_gl": "VQ-VAE 6000 bps + Griffin-Lim",
    "codec_6000_vocoder": "VQ-VAE 6000 bps + vocoder",
    "codec2_700C": "Codec 2 700C",
    "codec2_1300": "Codec 2 1300",
    "codec2_3200": "Codec 2 3200",
    "opus_6": "Opus 6 kbps",
    "opus_8": "Opus 8 kbps",
    "opus_12": "Opus 12 kbps",
    "griffinlim_32": "Griffin-Lim 32 it., true mel",
    "griffinlim_8": "Griffin-Lim 8 it., true mel",
    "vocoder_true_mel": "vocoder, true mel",
    "pghi_32": "PGHI + 32 it., true mel",
    "melgl_32": "mel-consistent GL 32 it., true mel",
    "melgl_128": "mel-consistent GL 128 it., true mel",
    "degli_complex_s0": "Deep GL (complex, seed 0), true mel",
    "degli_real_s0": "Deep GL (real twin, seed 0), true mel",
    "vocoder_ft_both": "vocoder + MPD + MRD fine-tuning, true mel",
    "codec_1250_melgl32": "VQ-VAE 1250 bps + mel-consistent GL 32",
    "codec_1250_melgl256": "VQ-VAE 1250 bps + mel-consistent GL 256",
    "codec_6000_melgl32": "VQ-VAE 6000 bps + mel-consistent GL 32",
    "codec_1250_vocoder_adv": "VQ-VAE 1250 bps + adversarial vocoder",
    "codec_6000_vocoder_adv": "VQ-VAE 6000 bps + adversarial vocoder",
}
#: The rows of notebook 02's table (``vqvae_speech_eval.json``): the codec and its anchors.
EVAL_ROWS = ("codec_1250_gl", "codec_6000_gl", "codec2_700C", "codec2_1300", "codec2_3200",
             "opus_6", "opus_8", "opus_12", "griffinlim_32")
SCORES = ("pesq_wb", "visqol", "logmel_l1", "stoi", "dnsmos_sig", "dnsmos_bak", "dnsmos_ovrl")


def _entry(s: dict) -> dict:
    keep = {k: s.get(k) for k in SCORES}
    keep.update({f"{k}_ci95": s.get(f"{k}_ci95") for k in ("pesq_wb", "visqol", "logmel_l1",
                                                           "dnsmos_ovrl")})
    keep.update(bitrate_bps=s.get("bitrate_bps"), bitrate_bps_measured=s.get(
        "bitrate_bps_measured"), n_clips=s["n_clips"], n_failed=s["n_failed"],
        delay_samples=s.get("delay_samples", 0), command=s["command"])
    return keep


def write_stored(data: dict) -> None:
    """Rewrite the stored files the notebooks read from the yardstick's results."""
    systems = data["systems"]
    command = "python benchmarks/yardstick.py --data " + data["data"] + " --write-stored"
    desc = "real Speech Commands, 20 held-out speakers (testing split)"
    rows = []
    for key, name in STORED_NAMES.items():
        if key in systems and key in EVAL_ROWS:
            rows.append({"data": desc, "system": name, **_entry(systems[key])})
    out = ROOT / "data" / "pretrained" / "vqvae_speech_eval.json"
    out.write_text(json.dumps({
        "note": "Measured with the one scorer (utils.scoring: each system at its known delay, "
                "95 % bootstrap intervals over clips) by " + command + "; every row on the "
                "same 312 clips. STOI is unreliable on ~1 s clips.",
        "command": command, "rows": rows}, indent=1) + "\n")
    if "codec_ladder" in systems:
        lad = systems["codec_ladder"]
        anchors = [{"system": STORED_NAMES[k] if k != "griffinlim_32"
                    else "Griffin-Lim ceiling (true mel)",
                    **{f: systems[k].get(f) for f in ("bitrate_bps", "bitrate_bps_measured",
                                                      "pesq_wb", "visqol", "logmel_l1", "stoi",
                                                      "dnsmos_ovrl")},
                    "n_clips": systems[k]["n_clips"]}
                   for k in ("codec2_700C", "codec2_1300", "codec2_3200", "opus_6", "opus_8",
                             "opus_12", "griffinlim_32") if k in systems]
        ladder = {"checkpoint": CODEC, "command": command, "commands": [command],
                  "datasets": {"speech_commands_test": {
                      "description": "real Speech Commands v0.02 recordings of 20 held-out "
                                     "speakers (the folder's testing_list.txt; never trained on)",
                      "folder": data["data"], "n_clips": lad["n_clips"], "ladder_every": 4,
                      "n_clips_anchors": anchors[0]["n_clips"] if anchors else None,
                      "ladder": lad["ladder"], "anchors": anchors,
                      "codebook_used_fraction": lad.get("codebook_used_fraction")}}}
        path = ROOT / "data" / "pretrained" / "vqvae_speech_ladder.json"
        path.write_text(json.dumps(ladder, indent=1) + "\n")
    path = ROOT / "data" / "pretrained" / "vocoder_compare.json"
    voc = json.loads(path.read_text()) if path.is_file() else {}
    voc["quality"] = {name: _entry(systems[key]) for key, name in STORED_NAMES.items()
                      if key in systems and key not in ("codec2_700C", "codec2_3200", "opus_8",
                                                        "opus_12")}
    voc["quality_command"] = command
    voc["every"] = 1
    path.write_text(json.dumps(voc, indent=1) + "\n")


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--data", required=True, help="real-speech folder (its testing split)")
    p.add_argument("--only", nargs="*", default=None, help="these systems only")
    p.add_argument("--redo", nargs="*", default=[], help="re-measure these even if stored")
    p.add_argument("--jobs", type=int, default=1, help="evaluations at a time")
    p.add_argument("--write-stored", action="store_true",
                   help="only rewrite the notebooks' stored files from the stored results")
    a = p.parse_args()
    if a.write_stored:
        write_stored(json.loads(OUT.read_text()))
        return
    unknown = sorted((set(a.only or []) | set(a.redo)) - set(SYSTEMS))
    if unknown:
        raise SystemExit(f"unknown system(s) {unknown}; choose from {sorted(SYSTEMS)}")
    PER_CLIP.mkdir(parents=True, exist_ok=True)
    stored = json.loads(OUT.read_text()) if OUT.is_file() else {"systems": {}}
    todo = [n for n in (a.only or SYSTEMS) if n not in stored["systems"] or n in a.redo]
    running: dict[str, tuple[subprocess.Popen, float]] = {}
    # one thread per evaluation: --jobs of them share the cores without oversubscription
    env = {**os.environ, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1",
           "NUMBA_NUM_THREADS": "1"}

    def finish(name: str, proc: subprocess.Popen, start: float) -> None:
        out, err = proc.communicate()
        if proc.returncode != 0:
            print(f"FAILED {name}: {err[-1500:]}", flush=True)
            return
        summary = json.loads(out.strip().splitlines()[-1])
        summary["command"] = " ".join(["python", *command(name, a.data)[1:]])
        summary["seconds"] = round(time.time() - start, 1)
        latest = json.loads(OUT.read_text()) if OUT.is_file() else {"systems": {}}
        latest["systems"][name] = summary
        latest["data"] = a.data
        latest["command"] = "python benchmarks/yardstick.py --data " + a.data
        OUT.write_text(json.dumps(latest, indent=1) + "\n")
        print(f"done {name} in {summary['seconds']} s: PESQ-WB {summary.get('pesq_wb')} "
              f"ViSQOL {summary.get('visqol')}", flush=True)

    for name in todo:
        while len(running) >= a.jobs:
            for n, (proc, t0) in list(running.items()):
                if proc.poll() is not None:
                    finish(n, proc, t0)
                    del running[n]
            time.sleep(1)
        print("$", " ".join(command(name, a.data)), flush=True)
        running[name] = (subprocess.Popen(command(name, a.data), cwd=ROOT, text=True, env=env,
                                          stdout=subprocess.PIPE, stderr=subprocess.PIPE),
                         time.time())
    for n, (proc, t0) in running.items():
        finish(n, proc, t0)


if __name__ == "__main__":
    main()
