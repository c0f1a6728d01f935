"""Copy the bundled real recordings of ``data/real_speech/`` from the project's full copies.

**Speech** (``--source``, into ``eight_words/``). Real clips of the eight words the shipped
classifiers know (down, go, left, no, right, stop, up, yes), each said by ``--per-word``
different speakers, copied **unchanged** (the same FLAC bytes) from the project's copy of Speech
Commands v0.02 (``../shared/speech/speech_commands``), only from its *testing* split: speakers
no shipped model trained on. The folder's ``testing_list.txt`` lists every clip (an empty
``validation_list.txt`` beside it), so a loader puts them all in the testing split. Clips
already there are kept. The rule, per word:

1. the clip of that word in ``speech_commands/`` (the 20 clips, one per testing speaker, that
   the tests and notebooks 02, 07 and 08 use; this script leaves that folder alone), if any;
2. the clip ``<word>/<--speaker>_nohash_0.flac`` (one speaker who says all eight words: the
   "sentence" of notebook 01 and the interpolation of notebook 03);
3. then the ``_nohash_0`` clip of the other testing speakers, in the order of their ids,
   until the word has ``--per-word`` speakers; a clip is skipped if it is not exactly
   16000 samples, if any sample reaches 0.99 of full scale (clipped) or if its loudest 25 ms
   frame is below -25 dBFS (too quiet to hear the word well next to the others).

**Background noise** (``--noise``, into ``background_noise/``, optional). From each real
background recording of Speech Commands (``../shared/noise/speech_commands_background``), the
first ``--noise-seconds`` of its held-out part: the part after 80 % of its length, which no
shipped model trained on (``utils.noise.load_noise`` splits every recording there). Changed:
only cut; the 16-bit samples are the recording's own, written again as FLAC.

Usage (from the repository root)::

    python data/real_speech/copy_recordings.py --source ../shared/speech/speech_commands \\
        --noise ../shared/noise/speech_commands_background

It prints what it copied and the sizes. Running it again copies nothing new.
"""

from __future__ import annotations

import argparse
import shutil
from pathlib import Path

import numpy as np
import soundfile as sf

HERE = Path(__file__).resolve().parent
ONE_PER_SPEAKER = HERE / "speech_commands"
WORDS_DIR = HERE / "eight_words"
NOISE = HERE / "background_noise"
WORDS = ("down", "go", "left", "no", "right", "stop", "up", "yes")
TRAIN_SHARE = 0.8  # utils.noise.load_noise: the first 80 % in time trains, the rest is held out


def usable(path: Path) -> bool:
    """16000 samples, no clipped sample, loudest 25 ms frame at or above -25 dBFS."""
    y, _ = sf.read(path, dtype="float64")
    frames = y[: len(y) // 400 * 400].reshape(-1, 400)
    loudest = 10 * np.log10(float((frames**2).mean(1).max()) + 1e-12)
    return len(y) == 16000 and float(np.abs(y).max()) < 0.99 and loudest >= -25.0


def speaker(relative: str) -> str:
    return relative.split("/")[1].split("_nohash_")[0]


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--source", type=Path, required=True,
                   help="the full Speech Commands folder (with its testing_list.txt)")
    p.add_argument("--per-word", type=int, default=8, help="speakers per word")
    p.add_argument("--speaker", default="4fd1443e", help="the speaker taken for every word")
    p.add_argument("--noise", type=Path, help="the real background-noise folder (optional)")
    p.add_argument("--noise-seconds", type=float, default=2.0, help="seconds cut from each")
    a = p.parse_args()
    testing = set((a.source / "testing_list.txt").read_text().split())
    one_per_speaker = {f.relative_to(ONE_PER_SPEAKER).as_posix()
                       for f in ONE_PER_SPEAKER.glob("*/*.flac")}
    bundled = {f.relative_to(WORDS_DIR).as_posix() for f in WORDS_DIR.glob("*/*.flac")}
    for word in WORDS:
        speakers = {speaker(r) for r in bundled if r.startswith(f"{word}/")}
        candidates = [*sorted(r for r in one_per_speaker if r.startswith(f"{word}/")),
                      f"{word}/{a.speaker}_nohash_0.flac",
                      *sorted(r for r in testing
                              if r.startswith(f"{word}/") and r.endswith("_nohash_0.flac"))]
        for rel in candidates:
            if len(speakers) >= a.per_word:
                break
            if rel not in testing or speaker(rel) in speakers or not usable(a.source / rel):
                continue
            (WORDS_DIR / rel).parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(a.source / rel, WORDS_DIR / rel)
            bundled.add(rel)
            speakers.add(speaker(rel))
            print(f"copied {rel}")
        if len(speakers) < a.per_word:
            print(f"{word}: only {len(speakers)} speakers")
    assert bundled <= testing, sorted(bundled - testing)  # testing-split speakers only
    (WORDS_DIR / "testing_list.txt").write_text("\n".join(sorted(bundled)) + "\n")
    (WORDS_DIR / "validation_list.txt").write_text("")
    size = sum(f.stat().st_size for f in WORDS_DIR.glob("*/*.flac"))
    print(f"{len(bundled)} clips, {size / 1e3:.0f} kB of FLAC in {WORDS_DIR}")
    if a.noise is not None:
        copy_noise(a.noise, a.noise_seconds)


def copy_noise(source: Path, seconds: float) -> None:
    """The first ``seconds`` of the held-out part of every recording in ``source``."""
    NOISE.mkdir(exist_ok=True)
    for f in sorted(source.glob("*.flac")):
        y, sr = sf.read(f, dtype="int16")
        start = int(TRAIN_SHARE * len(y))      # as utils.noise.load_noise cuts it
        part = y[start : start + int(seconds * sr)]
        sf.write(NOISE / f.name, part, sr, subtype="PCM_16")
        print(f"{f.name}: samples {start}..{start + len(part)} of {len(y)} "
              f"({start / sr:.1f}..{(start + len(part)) / sr:.1f} s)")
    size = sum(f.stat().st_size for f in NOISE.glob("*.flac"))
    print(f"{size / 1e3:.0f} kB of FLAC in {NOISE}")


if __name__ == "__main__":
    main()
