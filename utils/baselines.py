"""The anchors every codec in the collection is compared with: Codec 2 and Opus.

Both run as the programs of their Debian packages (``codec2``: ``c2enc`` / ``c2dec``;
``opus-tools``: ``opusenc`` / ``opusdec``). Each round trip returns the decoded waveform at
16 kHz **and the bits it actually produced** (the payload, without the container), so bit
rates are measured, not nominal; each anchor's fixed delay is measured once per mode on a
known signal (:func:`utils.delay.measure_delay`) and compensated by the scorer.

- Codec 2 works at 8 kHz: the clip is resampled down and back up (soxr, linear phase, no
  delay of its own). Its payload is the mode's bits per frame times the frames sent.
- Opus runs ``--speech --hard-cbr`` at the rate it is credited with: a constant bit rate, so
  "6 kbps" means 6 kbps (in variable-rate mode it spends about 4–5 kbps on a one-second word).
  Its payload is the sum of the audio packets of the Ogg stream (the two header packets and
  the Ogg pages are the container).

Notebook: notebooks/02_vq_vae.ipynb
"""

from __future__ import annotations

import math
import shutil
import subprocess
import tempfile
from functools import cache
from pathlib import Path

import librosa
import numpy as np
import soundfile as sf

from utils.audio import SR
from utils.errors import OptionError
from utils.scoring import Output

__all__ = ["CODEC2_MODES", "OPUS_KBPS_RANGE", "codec2_roundtrip",
           "opus_roundtrip", "codec2_delay", "opus_delay", "check_opus_kbps", "ogg_packets"]

#: Codec 2 modes: (bits per frame, frame length in seconds).
CODEC2_MODES = {"3200": (64, 0.02), "2400": (48, 0.02), "1600": (64, 0.04),
                "1400": (56, 0.04), "1300": (52, 0.04), "1200": (48, 0.04),
                "700C": (28, 0.04), "450": (18, 0.04), "450PWB": (18, 0.04)}
#: The bit rates (kbps) opusenc can hold at a constant rate for mono speech.
OPUS_KBPS_RANGE = (6.0, 256.0)


def _need(tool: str, package: str) -> str:
    path = shutil.which(tool)
    if path is None:
        raise OptionError("--baseline", f"{tool} not found: install Debian's {package} package")
    return path


def check_opus_kbps(kbps: float) -> float:
    """Refuse an Opus rate the encoder cannot hold (it would silently run at another one).

    Notebook: notebooks/02_vq_vae.ipynb
    """
    lo, hi = OPUS_KBPS_RANGE
    if not (math.isfinite(kbps) and lo <= kbps <= hi):
        raise OptionError("--opus-kbps", f"must be within [{lo:g}, {hi:g}] kbps, got {kbps}")
    return float(kbps)


def _codec2_raw(y: np.ndarray, mode: str) -> tuple[np.ndarray, float]:
    if mode not in CODEC2_MODES:
        raise OptionError("--codec2-mode", f"must be one of {tuple(CODEC2_MODES)}")
    enc, dec = _need("c2enc", "codec2"), _need("c2dec", "codec2")
    y8 = librosa.resample(np.asarray(y, np.float32), orig_sr=SR, target_sr=8000,
                          res_type="soxr_hq")
    pcm = (np.clip(y8, -1, 1) * 32767).astype("<i2")
    bits_per_frame, _ = CODEC2_MODES[mode]
    with tempfile.TemporaryDirectory() as d:
        raw, bits, out = Path(d, "in.raw"), Path(d, "x.c2"), Path(d, "out.raw")
        raw.write_bytes(pcm.tobytes())
        subprocess.run([enc, mode, str(raw), str(bits)], check=True, capture_output=True)
        subprocess.run([dec, mode, str(bits), str(out)], check=True, capture_output=True)
        frames = bits.stat().st_size // math.ceil(bits_per_frame / 8)
        y8_hat = np.frombuffer(out.read_bytes(), dtype="<i2").astype(np.float32) / 32768
    y_hat = librosa.resample(y8_hat, orig_sr=8000, target_sr=SR, res_type="soxr_hq")
    return y_hat, float(frames * bits_per_frame)


def ogg_packets(data: bytes) -> list[int]:
    """The sizes in bytes of the packets of an Ogg stream (one logical stream).

    Notebook: notebooks/02_vq_vae.ipynb
    """
    sizes, current, pos = [], 0, 0
    while pos + 27 <= len(data):
        if data[pos : pos + 4] != b"OggS":
            raise ValueError(f"not an Ogg page at byte {pos}")
        n_seg = data[pos + 26]
        lacing = data[pos + 27 : pos + 27 + n_seg]
        for v in lacing:
            current += v
            if v < 255:
                sizes.append(current)
                current = 0
        pos += 27 + n_seg + sum(lacing)
    return sizes


def _opus_raw(y: np.ndarray, kbps: float, cbr: bool = True) -> tuple[np.ndarray, float]:
    check_opus_kbps(kbps)
    enc, dec = _need("opusenc", "opus-tools"), _need("opusdec", "opus-tools")
    with tempfile.TemporaryDirectory() as d:
        wav, opus, out = Path(d, "in.wav"), Path(d, "x.opus"), Path(d, "out.wav")
        sf.write(wav, np.asarray(y, np.float32), SR, subtype="PCM_16")
        mode = ["--hard-cbr"] if cbr else []
        subprocess.run([enc, "--quiet", "--speech", *mode, "--bitrate", f"{kbps:g}",
                        str(wav), str(opus)], check=True, capture_output=True)
        subprocess.run([dec, "--quiet", "--rate", str(SR), str(opus), str(out)],
                       check=True, capture_output=True)
        payload = sum(ogg_packets(opus.read_bytes())[2:])  # OpusHead, OpusTags: container
        y_hat, sr = sf.read(out, dtype="float32")
    if sr != SR:
        y_hat = librosa.resample(y_hat, orig_sr=sr, target_sr=SR)
    return y_hat, float(8 * payload)


@cache
def codec2_delay(mode: str = "1300") -> int:
    """Codec 2's delay in one mode (samples at 16 kHz), measured once on a known signal.

    Notebook: notebooks/02_vq_vae.ipynb
    """
    from utils.delay import measure_delay

    return measure_delay(lambda x: _codec2_raw(x, mode)[0])


@cache
def opus_delay(kbps: float = 6.0, cbr: bool = True) -> int:
    """Opus's delay at one rate (samples at 16 kHz), measured once on a known signal.

    Notebook: notebooks/02_vq_vae.ipynb
    """
    from utils.delay import measure_delay

    return measure_delay(lambda x: _opus_raw(x, kbps, cbr)[0])


def codec2_roundtrip(y: np.ndarray, mode: str = "1300") -> Output:
    """Encode and decode with Codec 2 (8 kHz narrow-band), back at 16 kHz.

    Notebook: notebooks/02_vq_vae.ipynb

    Args:
        y: Waveform at 16 kHz.
        mode: One of :data:`CODEC2_MODES`.

    Returns:
        The decoded waveform, with ``.bits`` (payload sent) and ``.delay`` (samples).
    """
    y_hat, bits = _codec2_raw(y, mode)
    return Output(y_hat, bits, codec2_delay(mode))


def opus_roundtrip(y: np.ndarray, kbps: float = 6.0, *, cbr: bool = True) -> Output:
    """Encode and decode with Opus (``--speech``, constant bit rate ``kbps``), back at 16 kHz.

    Notebook: notebooks/02_vq_vae.ipynb

    Args:
        y: Waveform at 16 kHz.
        kbps: Bit rate within :data:`OPUS_KBPS_RANGE`.
        cbr: Constant bit rate (``--hard-cbr``); ``False``: opusenc's default variable rate,
            whose ``kbps`` is only a target (the bits it sends are in ``.bits``).

    Returns:
        The decoded waveform, with ``.bits`` (audio packet payload) and ``.delay``.
    """
    y_hat, bits = _opus_raw(y, kbps, cbr)
    return Output(y_hat, bits, opus_delay(float(kbps), cbr))
