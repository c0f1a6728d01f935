"""Generate the bundled spoken-word set ``data/speech_words`` offline with espeak-ng.

The output follows the Speech Commands layout::

    <out>/<word>/<voiceid>_nohash_0.flac     16 kHz, mono, 16-bit FLAC, exactly 16000 samples
    <out>/validation_list.txt                relative paths "word/file.flac", one per line
    <out>/testing_list.txt                   (training = every clip listed in neither file)
    <out>/voices.csv                         voice id, accent, variant, pitch, rate, split, ...

A *voice* is one (espeak-ng English accent, espeak-ng voice variant, pitch, rate) combination and
speaks all eight words; its id is the first 8 hex digits of the SHA-1 of that combination, so it
plays the role of the Speech Commands speaker id. Voices come from a fixed canonical list built
with a fixed seed; ``--voices N`` takes its first N entries, so a voice keeps its id, its clips and
its split whatever N is. Pitch, rate and split come from that list; the per-clip position jitter
and gain come from a generator seeded by the voice id and the word, so re-running the script gives
identical samples. The split is by voice and stratified by accent: for each accent, every block of
10 of its voices holds 1 validation and 1 testing voice (80 voices = 10 per accent give 64/8/8).

Usage::

    python data/generate_speech_words.py [--out data/speech_words] [--voices 80]

Requires the Debian package ``espeak-ng`` (``apt-get install espeak-ng``) plus numpy, soundfile,
soxr and tqdm (all installed with librosa).
"""

from __future__ import annotations

import argparse
import csv
import hashlib
import re
import shutil
import subprocess
import sys
import tempfile
import time
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np

WORDS: tuple[str, ...] = ("right", "left", "yes", "no", "up", "down", "go", "stop")
SAMPLE_RATE = 16_000
CLIP_SAMPLES = SAMPLE_RATE  # exactly 1.0 s
SEED = 20_221_121
DEFAULT_VOICES = 80
CANONICAL_VOICES = 400  # length of the fixed list that --voices takes a prefix of

# espeak-ng's own English accents (no mbrola voices needed).
ACCENTS: tuple[str, ...] = (
    "en-us",
    "en-gb",
    "en-gb-scotland",
    "en-gb-x-rp",
    "en-029",
    "en-us-nyc",
    "en-gb-x-gbclan",
    "en-gb-x-gbcwmd",
)
# espeak-ng voice variants ("!v/<name>") that sound like a plain human speaker. Left out on
# purpose: robots (robosoft*, UniRobot, anikaRobot), whispers (whisper, whisperf, caleb),
# effects (Demonic, announcer, Tweaky, croak, Storm) and ones with zeroed formants (Andy, Lee).
VARIANTS: dict[str, str] = {
    "f1": "female", "f2": "female", "f3": "female", "f4": "female", "f5": "female",
    "Annie": "female", "Alicia": "female", "Andrea": "female", "aunty": "female",
    "belinda": "female", "linda": "female", "steph": "female", "anika": "female",
    "grandma": "female",
    "m1": "male", "m2": "male", "m3": "male", "m4": "male", "m5": "male", "m6": "male",
    "m7": "male", "klatt": "male", "klatt2": "male", "klatt3": "male", "klatt4": "male",
    "adam": "male", "david": "male", "max": "male", "paul": "male", "robert": "male",
    "Michael": "male", "grandpa": "male",
}  # fmt: skip
PITCH_RANGE = (30, 70)  # espeak-ng -p (0..99, default 50), inclusive
RATE_RANGE = (95, 170)  # espeak-ng -s in words per minute (default 175), inclusive
RATE_STEP_IF_TOO_LONG = 15

SPLIT_BLOCK = 10  # per accent, each block of 10 voices: 1 validation, 1 testing, 8 training
MAX_WORD_SECONDS = 0.9  # trimmed word must leave at least 50 ms of silence at each end
PEAK_DBFS = -3.0
GAIN_JITTER_DB = 1.5  # per-clip peak level uniform in PEAK_DBFS +- GAIN_JITTER_DB
SHIFT_JITTER_S = 0.05  # word centre moved by up to +-50 ms (bounded by the available silence)
EDGE_SILENCE_S = 0.03  # at least 30 ms of digital silence at both ends of every clip
TRIM_THRESHOLD_DB = -45.0  # frame RMS relative to the loudest frame
TRIM_MARGIN_S = 0.015
FADE_S = 0.005
ONSET_FADE_S = 0.010
MIN_WORD_SECONDS = 0.12
MIN_ACTIVE_RMS_DBFS = -30.0


@dataclass(frozen=True)
class _Voice:
    accent: str
    variant: str
    pitch: int
    rate: int
    split: str

    @property
    def gender(self) -> str:
        return VARIANTS[self.variant]

    @property
    def voice_id(self) -> str:
        key = f"{self.accent}+{self.variant}|p={self.pitch}|s={self.rate}"
        return hashlib.sha1(key.encode()).hexdigest()[:8]

    def with_rate(self, rate: int) -> _Voice:
        return _Voice(self.accent, self.variant, self.pitch, rate, self.split)


def _canonical_voices(n: int) -> list[_Voice]:
    """The first ``n`` voices of the fixed, seeded voice list (balanced accents and variants)."""
    rng = np.random.default_rng(SEED)
    variants = list(VARIANTS)
    accent_order: list[str] = []
    variant_order: list[str] = []
    total = CANONICAL_VOICES  # always build the whole list, so that voice i never depends on n
    while len(accent_order) < total:  # every accent once per 8 voices, in a random order
        accent_order += [ACCENTS[i] for i in rng.permutation(len(ACCENTS))]
    while len(variant_order) < total:  # every variant once per len(VARIANTS) voices
        variant_order += [variants[i] for i in rng.permutation(len(variants))]
    # Split stratified by accent: among each accent's voices, taken in list order, every block of
    # 10 holds one validation and one testing voice at seeded positions, so both held-out sets
    # cover all accents.
    split_by_accent: dict[str, list[str]] = {}
    for accent in ACCENTS:
        labels: list[str] = []
        while len(labels) < accent_order.count(accent):
            block = ["train"] * SPLIT_BLOCK
            val, test = rng.choice(SPLIT_BLOCK, size=2, replace=False)
            block[val], block[test] = "validation", "testing"
            labels += block
        split_by_accent[accent] = labels[::-1]  # popped from the end below
    split_order = [split_by_accent[a].pop() for a in accent_order]
    voices: list[_Voice] = []
    seen: set[tuple[str, str, int, int]] = set()
    for i in range(total):
        while True:
            pitch = int(rng.integers(PITCH_RANGE[0], PITCH_RANGE[1] + 1))
            rate = int(rng.integers(RATE_RANGE[0], RATE_RANGE[1] + 1))
            key = (accent_order[i], variant_order[i], pitch, rate)
            if key not in seen:
                seen.add(key)
                break
        voices.append(_Voice(accent_order[i], variant_order[i], pitch, rate, split_order[i]))
    return voices[:n]


def _espeak_version(exe: str) -> str:
    out = subprocess.run([exe, "--version"], capture_output=True, text=True, check=True)
    return out.stdout.strip()


def _check_espeak_voices(exe: str) -> None:
    """Fail early if an accent or a variant is missing (espeak-ng would silently fall back)."""
    listed = subprocess.run([exe, "--voices=variant"], capture_output=True, text=True, check=True)
    have_variants = set(re.findall(r"!v/(\S+)", listed.stdout))
    missing_variants = [v for v in VARIANTS if v not in have_variants]
    langs = subprocess.run([exe, "--voices=en"], capture_output=True, text=True, check=True)
    have_langs = {line.split()[1] for line in langs.stdout.splitlines()[1:] if line.split()}
    missing_langs = [a for a in ACCENTS if a not in have_langs]
    if missing_variants or missing_langs:
        raise SystemExit(
            f"espeak-ng lacks accents {missing_langs} / variants {missing_variants}; "
            "install the Debian packages espeak-ng and espeak-ng-data."
        )


def _synthesize(exe: str, voice: _Voice, word: str, tmp: Path) -> np.ndarray:
    """Raw espeak-ng output for one word, resampled to 16 kHz float64."""
    import soundfile as sf
    import soxr

    wav = tmp / "word.wav"
    cmd = [exe, "-v", f"{voice.accent}+{voice.variant}", "-p", str(voice.pitch),
           "-s", str(voice.rate), "-w", str(wav), word]  # fmt: skip
    subprocess.run(cmd, check=True, capture_output=True)
    audio, sr = sf.read(wav, dtype="float64", always_2d=True)
    audio = audio.mean(axis=1)
    peak = np.abs(audio).max()
    if peak <= 0:
        raise RuntimeError(f"{voice} '{word}': espeak-ng produced digital silence")
    # espeak-ng starts speaking at sample 0 and appends a pause at the end. For a word-initial
    # nasal or vowel its first samples can be a step of up to ~10 % of the peak (a click): fade
    # in over 10 ms, then put silence in front so resampling and trimming see the whole word.
    if abs(audio[0]) > 0.25 * peak:
        raise RuntimeError(f"{voice} '{word}': espeak-ng output starts with a step (word cut?)")
    onset = int(ONSET_FADE_S * sr)
    audio[:onset] *= 0.5 - 0.5 * np.cos(np.pi * np.arange(onset) / onset)
    audio = np.concatenate([np.zeros(int(0.05 * sr)), audio])
    if sr != SAMPLE_RATE:
        audio = soxr.resample(audio, sr, SAMPLE_RATE, quality="VHQ")
    return audio


def _frame_rms(x: np.ndarray, frame: int, hop: int) -> np.ndarray:
    if len(x) < frame:
        x = np.pad(x, (0, frame - len(x)))
    n = 1 + (len(x) - frame) // hop
    idx = np.arange(frame)[None, :] + hop * np.arange(n)[:, None]
    return np.sqrt(np.mean(x[idx] ** 2, axis=1))


def _trim(audio: np.ndarray) -> tuple[np.ndarray, str | None]:
    """Cut the silence around the word; return (segment, problem or None)."""
    frame, hop = int(0.010 * SAMPLE_RATE), int(0.005 * SAMPLE_RATE)
    margin = int(TRIM_MARGIN_S * SAMPLE_RATE)
    rms = _frame_rms(audio, frame, hop)
    active = np.flatnonzero(rms > rms.max() * 10 ** (TRIM_THRESHOLD_DB / 20))
    if active[0] * hop < margin or active[-1] >= len(rms) - 2:
        return audio[:0], "no silence before or after the word (word cut?)"
    start = max(active[0] * hop - margin, 0)
    stop = min(active[-1] * hop + frame + margin, len(audio))
    seg = audio[start:stop].copy()
    fade = int(FADE_S * SAMPLE_RATE)
    ramp = 0.5 - 0.5 * np.cos(np.pi * np.arange(fade) / fade)
    seg[:fade] *= ramp
    seg[-fade:] *= ramp[::-1]
    return seg, None


def _place(seg: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Centre the word (with a small random shift) in 1 s of silence, set a jittered peak."""
    slack = CLIP_SAMPLES - len(seg)
    guard = int(EDGE_SILENCE_S * SAMPLE_RATE)
    max_shift = max(0, min(int(SHIFT_JITTER_S * SAMPLE_RATE), slack // 2 - guard))
    offset = slack // 2 + int(rng.integers(-max_shift, max_shift + 1))
    clip = np.zeros(CLIP_SAMPLES)
    clip[offset : offset + len(seg)] = seg
    peak_db = PEAK_DBFS + rng.uniform(-GAIN_JITTER_DB, GAIN_JITTER_DB)
    clip *= 10 ** (peak_db / 20) / np.abs(clip).max()
    return np.round(clip * 32767).astype(np.int16)


def _check_clip(clip: np.ndarray, word_len: int) -> str | None:
    """Listen-quality proxy: the word is present, loud enough, and fits with silence around it."""
    x = clip.astype(np.float64) / 32768
    if len(clip) != CLIP_SAMPLES:
        return f"length {len(clip)} != {CLIP_SAMPLES}"
    if word_len < MIN_WORD_SECONDS * SAMPLE_RATE:
        return f"word only {word_len / SAMPLE_RATE:.3f} s long"
    edge = int(EDGE_SILENCE_S * SAMPLE_RATE)
    if np.abs(x[:edge]).max() > 0 or np.abs(x[-edge:]).max() > 0:
        return "word touches the clip edge"
    active = x[np.abs(x) > 10 ** (-40 / 20)]
    rms_db = 20 * np.log10(np.sqrt(np.mean(active**2))) if active.size else -np.inf
    if rms_db < MIN_ACTIVE_RMS_DBFS:
        return f"too quiet (active RMS {rms_db:.1f} dBFS)"
    return None


def _render_voice(exe: str, voice: _Voice, tmp: Path) -> tuple[_Voice, dict[str, np.ndarray]]:
    """All eight words of one voice; raises the rate (same for all words) if a word is > 0.9 s."""
    for _attempt in range(6):
        segments: dict[str, np.ndarray] = {}
        too_long: list[str] = []
        for word in WORDS:
            seg, problem = _trim(_synthesize(exe, voice, word, tmp))
            if problem:
                raise RuntimeError(f"{voice} '{word}': {problem}")
            if len(seg) > MAX_WORD_SECONDS * SAMPLE_RATE:
                too_long.append(f"{word} ({len(seg) / SAMPLE_RATE:.2f} s)")
            segments[word] = seg
        if not too_long:
            break
        faster = voice.with_rate(voice.rate + RATE_STEP_IF_TOO_LONG)
        warnings.warn(
            f"{voice.accent}+{voice.variant} p={voice.pitch} s={voice.rate}: "
            f"{', '.join(too_long)} longer than {MAX_WORD_SECONDS} s after trimming; "
            f"using rate {faster.rate}",
            stacklevel=2,
        )
        voice = faster
    else:
        raise RuntimeError(f"{voice}: words still longer than {MAX_WORD_SECONDS} s")
    clips: dict[str, np.ndarray] = {}
    for w_idx, word in enumerate(WORDS):
        rng = np.random.default_rng([SEED, int(voice.voice_id, 16), w_idx])
        clip = _place(segments[word], rng)
        problem = _check_clip(clip, len(segments[word]))
        if problem:
            raise RuntimeError(f"{voice} '{word}': {problem}")
        clips[word] = clip
    return voice, clips


def main(argv: list[str] | None = None) -> int:
    """Generate the spoken-word set, its split lists and ``voices.csv``; print a summary.

    Notebook: notebooks/01_signal_processing.ipynb

    Args:
        argv: Command-line arguments (default ``sys.argv[1:]``).

    Returns:
        The process exit code (0 on success).
    """
    here = Path(__file__).resolve().parent
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--out",
        type=Path,
        default=here / "speech_words",
        help="output folder (default: data/speech_words next to this script)",
    )
    parser.add_argument(
        "--voices",
        type=int,
        default=DEFAULT_VOICES,
        help=f"number of voices, each speaks all words (default {DEFAULT_VOICES})",
    )
    args = parser.parse_args(argv)
    if not 1 <= args.voices <= CANONICAL_VOICES:
        parser.error(f"--voices must be in 1..{CANONICAL_VOICES}")

    exe = shutil.which("espeak-ng")
    if exe is None:
        print(
            "error: espeak-ng not found on PATH. Install it with `sudo apt-get install "
            "espeak-ng` (Debian/Ubuntu) and run this script again.",
            file=sys.stderr,
        )
        return 1
    import soundfile as sf
    from tqdm.auto import tqdm

    version = _espeak_version(exe)
    _check_espeak_voices(exe)
    out: Path = args.out
    for word in WORDS:  # remove clips of an earlier run (possibly with more voices)
        (out / word).mkdir(parents=True, exist_ok=True)
        for old in (out / word).glob("*_nohash_*.flac"):
            old.unlink()

    t0 = time.perf_counter()
    rendered: list[_Voice] = []
    word_seconds: list[float] = []
    faster = 0
    with tempfile.TemporaryDirectory() as tmp_name:
        tmp = Path(tmp_name)
        for voice in tqdm(_canonical_voices(args.voices), desc="voices", unit="voice"):
            requested_rate = voice.rate
            voice, clips = _render_voice(exe, voice, tmp)
            faster += voice.rate != requested_rate
            if voice.voice_id in {v.voice_id for v in rendered}:
                raise RuntimeError(f"voice id collision for {voice}")
            for word, clip in clips.items():
                sf.write(
                    out / word / f"{voice.voice_id}_nohash_0.flac",
                    clip,
                    SAMPLE_RATE,
                    format="FLAC",
                    subtype="PCM_16",
                )
                nonzero = np.flatnonzero(clip)
                word_seconds.append((nonzero[-1] - nonzero[0] + 1) / SAMPLE_RATE)
            rendered.append(voice)
    elapsed = time.perf_counter() - t0

    lists: dict[str, list[str]] = {"validation": [], "testing": [], "train": []}
    for voice in rendered:
        lists[voice.split] += [f"{w}/{voice.voice_id}_nohash_0.flac" for w in WORDS]
    for split in ("validation", "testing"):
        (out / f"{split}_list.txt").write_text("".join(f"{p}\n" for p in sorted(lists[split])))
    with open(out / "voices.csv", "w", newline="") as f:
        writer = csv.writer(f, lineterminator="\n")
        writer.writerow(["voice_id", "accent", "variant", "pitch", "rate", "split", "gender"])
        for v in sorted(rendered, key=lambda v: v.voice_id):
            writer.writerow([v.voice_id, v.accent, v.variant, v.pitch, v.rate, v.split, v.gender])

    size = sum(p.stat().st_size for p in out.rglob("*") if p.is_file())
    print(f"\n{version}")
    print(
        f"wrote {len(rendered) * len(WORDS)} clips of {len(WORDS)} words to {out} "
        f"({size / 1e6:.2f} MB) in {elapsed:.1f} s"
    )
    print(
        f"word length (first to last non-zero sample) min/median/max "
        f"{min(word_seconds):.2f}/{np.median(word_seconds):.2f}/{max(word_seconds):.2f} s; "
        f"{faster} voice(s) needed a faster rate than drawn"
    )
    print(f"{'split':<12}{'voices':>7}{'clips':>7}{'female':>8}{'male':>6}")
    for split in ("train", "validation", "testing"):
        vs = [v for v in rendered if v.split == split]
        n_f = sum(v.gender == "female" for v in vs)
        print(f"{split:<12}{len(vs):>7}{len(lists[split]):>7}{n_f:>8}{len(vs) - n_f:>6}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
