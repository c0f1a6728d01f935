"""Write the Codec 2 and Opus versions of one bundled clip that notebook 02 plays.

Readers without Debian's ``codec2`` and ``opus-tools`` (Colab, most laptops) still hear the
anchors of the listening ladder, because their decoded outputs ship in ``data/listening/``.
The source is a real recording bundled in ``data/real_speech/speech_commands/`` (Google's
Speech Commands, a testing-split speaker no shipped model trained on), so what is written
here is derived from it and shares its licence, CC BY 4.0 (© Google; ``data/README.md``).

Usage (from the repository root; needs ``c2enc``/``c2dec`` and ``opusenc``/``opusdec``)::

    python data/make_listening_clips.py [--out data/listening]
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from utils import audio, delay  # noqa: E402
from utils.baselines import codec2_roundtrip, opus_roundtrip  # noqa: E402
from utils.data import SpeechCommands  # noqa: E402


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--out", type=Path, default=ROOT / "data" / "listening")
    p.add_argument("--index", type=int, default=0,
                   help="clip of data/real_speech/speech_commands (its testing split, in order)")
    a = p.parse_args()
    test_set = SpeechCommands(ROOT / "data" / "real_speech" / "speech_commands", split="testing",
                              length=None)
    source = test_set.files[a.index]
    y = audio.load(source)
    a.out.mkdir(parents=True, exist_ok=True)
    clips = {"Codec 2 1300": ("codec2_1300.flac", codec2_roundtrip(y, "1300")),
             "Opus 6 kbps": ("opus_6k.flac", opus_roundtrip(y, 6.0))}
    for name, (file, y_hat) in clips.items():
        # the anchor's measured delay is undone, so the player is in time with the original
        audio.save(a.out / file, delay.shift(y_hat, -y_hat.delay, len(y)))
        print(f"{name:14s} → {a.out / file} (delay {y_hat.delay} samples compensated, "
              f"{y_hat.bits / (len(y) / audio.SR):.0f} bit/s sent)")
    index = {"source": source.relative_to(ROOT).as_posix(), "sr": audio.SR,
             "clips": {name: file for name, (file, _) in clips.items()},
             "delay_compensated": {name: int(y_hat.delay) for name, (_, y_hat) in clips.items()},
             "bitrate_bps_measured": {name: round(y_hat.bits / (len(y) / audio.SR), 1)
                                      for name, (_, y_hat) in clips.items()},
             "made_by": "python data/make_listening_clips.py (Debian codec2 1.0.5, "
                        "opus-tools 0.2: opusenc --speech --hard-cbr)"}
    (a.out / "index.json").write_text(json.dumps(index, indent=1) + "\n")


if __name__ == "__main__":
    main()
