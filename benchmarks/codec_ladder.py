"""Quality against bit rate: the codec's whole ladder and the anchors, on the same clips.

For each data folder, runs the project's own evaluation command (``python -m utils.evaluate
codec``) for

* the codec at every depth (``--ladder``: one encoding per clip, the first d stages decoded);
* Codec 2 at 700C / 1300 / 3200 bps and Opus ``--speech`` at 6 / 8 / 12 kbps (skipped, with a
  message, where Debian's ``codec2`` / ``opus-tools`` are missing);
* Griffin-Lim on the true mel (the ceiling of any mel model + Griffin-Lim);

prints one table per folder and writes ``data/pretrained/vqvae_speech_ladder.json``, which
notebook 02 plots. The last line printed is one JSON object (the file's content). The stored
file of the shipped codec is written by ``python benchmarks/yardstick.py --write-stored`` from
the same evaluations, so that the ladder and every other table share one run of the scorer;
this script measures any other checkpoint or folder the same way.

Run (from the repository root; ``../shared/speech`` exists on the developers' machines)::

    python benchmarks/codec_ladder.py data/pretrained/vqvae_speech.pt \\
        speech_commands_test=../shared/speech/speech_commands \\
        speech_words_test=data/speech_words --ladder-every 4

Notebook: notebooks/02_vq_vae.ipynb
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

DESCRIPTIONS = {
    "speech_commands_test": "real Speech Commands v0.02 recordings of 20 held-out speakers "
                            "(the folder's testing_list.txt; never trained on)",
    "speech_words_test": "bundled synthetic words, test split (8 voices never trained on)",
}


def _evaluate(args: list[str]) -> dict:
    cmd = [sys.executable, "-m", "utils.evaluate", "codec", *args, "--json", "--no-progress"]
    out = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True)
    lines = out.stdout.strip().splitlines()
    if out.returncode != 0 or not lines:
        raise SystemExit(f"failed: {' '.join(cmd)}\n{out.stderr[-2000:]}")
    return json.loads(lines[-1])


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("checkpoint")
    p.add_argument("data", nargs="+", help="NAME=FOLDER (its testing split is used)")
    p.add_argument("--ladder-every", type=int, default=1,
                   help="the ladder on every K-th test clip (an even sample; anchors use all)")
    p.add_argument("--out", type=Path, default=ROOT / "data/pretrained/vqvae_speech_ladder.json")
    p.add_argument("--merge", action="store_true",
                   help="keep the other folders already in --out (same checkpoint)")
    a = p.parse_args()

    anchors = [("Codec 2 700C", ["--baseline", "codec2", "--codec2-mode", "700C"], "c2enc"),
               ("Codec 2 1300", ["--baseline", "codec2", "--codec2-mode", "1300"], "c2enc"),
               ("Codec 2 3200", ["--baseline", "codec2", "--codec2-mode", "3200"], "c2enc"),
               ("Opus 6 kbps", ["--baseline", "opus", "--opus-kbps", "6"], "opusenc"),
               ("Opus 8 kbps", ["--baseline", "opus", "--opus-kbps", "8"], "opusenc"),
               ("Opus 12 kbps", ["--baseline", "opus", "--opus-kbps", "12"], "opusenc"),
               ("Griffin-Lim ceiling (true mel)", ["--baseline", "griffinlim"], None)]
    command = "python benchmarks/codec_ladder.py " + " ".join(sys.argv[1:])
    result: dict = {"datasets": {}, "commands": [command], "checkpoint": a.checkpoint}
    if a.merge and a.out.exists():  # add these folders to a file written for the same codec
        old = json.loads(a.out.read_text())
        if old.get("checkpoint") == a.checkpoint:
            result["datasets"] = old["datasets"]
            result["commands"] = [*old.get("commands", []), command]
    for item in a.data:
        name, _, folder = item.partition("=")
        ladder = _evaluate([a.checkpoint, folder, "--split", "testing", "--ladder",
                            "--every", str(a.ladder_every)])
        rows = []
        for system, extra, tool in anchors:
            if tool is not None and shutil.which(tool) is None:
                print(f"{system}: {tool} not installed, skipped")
                continue
            r = _evaluate(["-", folder, "--split", "testing", *extra])
            rows.append({"system": system, "bitrate_bps": r["bitrate_bps"],
                         "pesq_wb": r["pesq_wb"], "logmel_l1": r["logmel_l1"],
                         "stoi": r["stoi"], "n_clips": r["n_clips"]})
        result["datasets"][name] = {
            "description": DESCRIPTIONS.get(name, folder), "folder": folder,
            "n_clips": ladder["n_clips"], "ladder_every": a.ladder_every,
            "n_clips_anchors": rows[0]["n_clips"] if rows else None,
            "ladder": ladder["ladder"], "anchors": rows,
            "codebook_used_fraction": ladder.get("codebook_used_fraction")}
        print(f"\n{name}: {folder} [testing], ladder on {ladder['n_clips']} clips")
        print("system                           bit rate  PESQ-WB  log-mel L1")
        for r in ladder["ladder"]:
            print(f"VQ-VAE {r['depth']:2d} stages{'':17s}{r['bitrate_bps']:7.0f}  "
                  f"{r['pesq_wb']:7.3f}  {r['logmel_l1']:9.4f}")
        for r in rows:
            rate = "      —" if r["bitrate_bps"] is None else f"{r['bitrate_bps']:7.0f}"
            print(f"{r['system']:32s} {rate}  {r['pesq_wb']:7.3f}  {r['logmel_l1']:9.4f}")
    if a.merge and a.out.exists():  # another run may have added its folder meanwhile
        latest = json.loads(a.out.read_text())
        if latest.get("checkpoint") == a.checkpoint:
            result["datasets"] = {**latest["datasets"], **result["datasets"]}
            result["commands"] = list(dict.fromkeys([*latest.get("commands", []),
                                                     *result["commands"]]))
    result["command"] = " && ".join(result["commands"])
    a.out.write_text(json.dumps(result, indent=1) + "\n")
    print(json.dumps(result))


if __name__ == "__main__":
    main()
