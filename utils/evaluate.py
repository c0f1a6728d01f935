"""Evaluate a codec on real audio: ``python -m utils.evaluate CHECKPOINT DATA_DIR``.

Reconstructs every .wav/.flac under DATA_DIR (recursively), skipping and counting files that
cannot be read, and reports the DESIGN.md metrics on signals aligned by cross-correlation:
PESQ-WB, log-mel L1, STOI (with its caveat), the bit rate in bits per second and the codebook
usage. ``--max-bitrate`` picks the deepest residual stage that fits the budget.

Anchors on the same clips: ``--baseline griffinlim`` (Griffin-Lim on the TRUE mel, the ceiling
of any mel model), ``--baseline codec2`` (Codec 2 at ``--codec2-mode``, needs Debian's
``codec2`` package: ``c2enc``/``c2dec``) and ``--baseline opus`` (Opus ``--speech`` at
``--opus-kbps``, needs ``opus-tools``). With a baseline, CHECKPOINT may be ``-``.

With ``--json`` the last line printed is one JSON object with at least ``pesq_wb``,
``logmel_l1``, ``bitrate_bps``, ``n_clips`` and ``n_failed``.

Notebook: notebooks/02_vq_vae.ipynb
"""

from __future__ import annotations

import argparse
import json
import math
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path

import librosa
import numpy as np
import soundfile as sf
import torch

from utils.audio import FEATURES, SR, AudioError, load, mel_spectrogram, mel_to_audio
from utils.metrics import STOI_CAVEAT, align, logmel_l1, pesq_wb, stoi

__all__ = [
    "find_audio", "codec2_roundtrip", "opus_roundtrip", "evaluate", "codebook_usage", "main"
]

AUDIO_SUFFIXES = (".wav", ".flac")


def find_audio(root: str | Path, split: str | None = None) -> list[Path]:
    """Every .wav/.flac under ``root`` (recursively, sorted), optionally one split only.

    Notebook: notebooks/02_vq_vae.ipynb

    Args:
        root: A folder (or a single file).
        split: ``None`` for all files, else ``"train"``/``"validation"``/``"testing"`` by the
            Speech Commands rule of :func:`utils.data.split_of` (list files or hash).

    Returns:
        Paths of the audio files.
    """
    root = Path(root)
    if root.is_file():
        return [root]
    files = sorted(p for p in root.rglob("*") if p.suffix.lower() in AUDIO_SUFFIXES)
    if split is not None:
        from utils.data import split_of

        files = [p for p in files if split_of(p) == split]
    return files


def _need(tool: str, package: str) -> str:
    path = shutil.which(tool)
    if path is None:
        raise SystemExit(f"{tool} not found: install Debian's {package} package for this baseline")
    return path


def codec2_roundtrip(y: np.ndarray, mode: str = "1300") -> np.ndarray:
    """Encode and decode with Codec 2 (8 kHz narrow-band), back at 16 kHz.

    Notebook: notebooks/02_vq_vae.ipynb
    """
    enc, dec = _need("c2enc", "codec2"), _need("c2dec", "codec2")
    y8 = librosa.resample(y, orig_sr=SR, target_sr=8000, res_type="soxr_hq")
    pcm = (np.clip(y8, -1, 1) * 32767).astype("<i2")
    with tempfile.TemporaryDirectory() as d:
        raw, bits, out = Path(d, "in.raw"), Path(d, "x.c2"), Path(d, "out.raw")
        raw.write_bytes(pcm.tobytes())
        subprocess.run([enc, mode, str(raw), str(bits)], check=True, capture_output=True)
        subprocess.run([dec, mode, str(bits), str(out)], check=True, capture_output=True)
        y8_hat = np.frombuffer(out.read_bytes(), dtype="<i2").astype(np.float32) / 32768
    return librosa.resample(y8_hat, orig_sr=8000, target_sr=SR, res_type="soxr_hq")


def opus_roundtrip(y: np.ndarray, kbps: float = 6.0) -> np.ndarray:
    """Encode and decode with Opus (``--speech``, VBR at ``kbps``), back at 16 kHz.

    Notebook: notebooks/02_vq_vae.ipynb
    """
    enc, dec = _need("opusenc", "opus-tools"), _need("opusdec", "opus-tools")
    with tempfile.TemporaryDirectory() as d:
        wav, opus, out = Path(d, "in.wav"), Path(d, "x.opus"), Path(d, "out.wav")
        sf.write(wav, y, SR, subtype="PCM_16")
        subprocess.run([enc, "--quiet", "--speech", "--bitrate", str(kbps), str(wav), str(opus)],
                       check=True, capture_output=True)
        subprocess.run([dec, "--quiet", "--rate", str(SR), str(opus), str(out)],
                       check=True, capture_output=True)
        y_hat, sr = sf.read(out, dtype="float32")
    return y_hat if sr == SR else librosa.resample(y_hat, orig_sr=sr, target_sr=SR)


def evaluate(
    files: list[Path],
    reconstruct: Callable[[np.ndarray], np.ndarray],
    *,
    with_stoi: bool = True,
    progress: bool = True,
) -> dict:
    """Reconstruct and score every file; unreadable files are skipped and counted.

    Notebook: notebooks/02_vq_vae.ipynb

    Args:
        files: Audio files.
        reconstruct: Waveform (16 kHz) → reconstructed waveform.
        with_stoi: Also compute STOI.
        progress: Show a progress bar.

    Returns:
        ``{"pesq_wb", "logmel_l1", "stoi", "n_clips", "n_failed", "failed", "per_clip"}``
        (means over clips; PESQ ignores clips where it finds no speech, counted in
        ``"n_pesq_nan"``).
    """
    from tqdm.auto import tqdm

    rows, failed = [], []
    for f in tqdm(files, disable=not progress, desc="evaluate"):
        try:
            y = load(f, SR, min_samples=FEATURES.n_fft)
        except AudioError as exc:
            failed.append((str(f), exc.reason))
            continue
        y_hat = reconstruct(y)
        ref, est = align(y, y_hat)
        row = {"file": str(f), "pesq_wb": pesq_wb(ref, est), "logmel_l1": logmel_l1(ref, est)}
        if with_stoi:
            row["stoi"] = stoi(ref, est)
        rows.append(row)

    def mean(key: str) -> float:
        vals = [r[key] for r in rows if key in r and not math.isnan(r[key])]
        return float(np.mean(vals)) if vals else math.nan

    return {
        "pesq_wb": mean("pesq_wb"),
        "logmel_l1": mean("logmel_l1"),
        "stoi": mean("stoi") if with_stoi else math.nan,
        "n_clips": len(rows),
        "n_failed": len(failed),
        "n_pesq_nan": sum(math.isnan(r["pesq_wb"]) for r in rows),
        "failed": failed,
        "per_clip": rows,
    }


def codebook_usage(counts: torch.Tensor) -> dict[str, list[float]]:
    """Per-stage usage of transmitted indices: share of codes used, perplexity, entropy (bits).

    Notebook: notebooks/02_vq_vae.ipynb

    Args:
        counts: ``[stages, K]`` number of times each code was sent.

    Returns:
        ``{"codebook_used_fraction": [...], "codebook_perplexity": [...],
        "codebook_entropy_bits": [...]}``, one value per stage.
    """
    p = counts / counts.sum(dim=1, keepdim=True).clamp_min(1)
    ent = -(p * p.clamp_min(1e-30).log2()).sum(dim=1)
    return {
        "codebook_used_fraction": [round(float(u), 4) for u in (counts > 0).float().mean(1)],
        "codebook_perplexity": [round(float(v), 1) for v in 2**ent],
        "codebook_entropy_bits": [round(float(v), 3) for v in ent],
    }


def main(argv: list[str] | None = None) -> int:
    """Entry point of ``python -m utils.evaluate``.

    Notebook: notebooks/02_vq_vae.ipynb
    """
    p = argparse.ArgumentParser(prog="python -m utils.evaluate", description=__doc__.split("\n")[0])
    p.add_argument("checkpoint", help="model checkpoint (.pt), or '-' with --baseline")
    p.add_argument("data_dir", help="folder searched recursively for .wav/.flac (or one file)")
    p.add_argument("--max-bitrate", type=float, default=None, help="bit budget in bits/s")
    p.add_argument("--depth", type=int, default=None, help="residual stages (overrides budget)")
    p.add_argument("--baseline", choices=["griffinlim", "codec2", "opus"], default=None)
    p.add_argument("--codec2-mode", default="1300")
    p.add_argument("--opus-kbps", type=float, default=6.0)
    p.add_argument("--split", choices=["train", "validation", "testing"], default=None,
                   help="only the clips of this split (Speech Commands rule)")
    p.add_argument("--limit", type=int, default=None, help="evaluate the first N files only")
    p.add_argument("--no-stoi", action="store_true")
    p.add_argument("--gl-iters", type=int, default=32, help="Griffin-Lim iterations")
    p.add_argument("--json", action="store_true", help="end with one JSON line")
    p.add_argument("--per-clip", type=Path, default=None, help="write per-clip rows (JSON)")
    p.add_argument("--no-progress", action="store_true")
    a = p.parse_args(argv)

    files = find_audio(a.data_dir, a.split)
    if a.limit:
        files = files[: a.limit]
    if not files:
        raise SystemExit(f"no .wav/.flac files under {a.data_dir}")
    info: dict = {}
    if a.baseline == "griffinlim":
        system, bitrate = f"Griffin-Lim {a.gl_iters} it. on the true mel", math.nan

        def rec(y):
            return mel_to_audio(mel_spectrogram(y), n_iter=a.gl_iters, length=len(y))
    elif a.baseline == "codec2":
        system, bitrate = f"Codec 2 {a.codec2_mode}", float(a.codec2_mode.rstrip("C"))

        def rec(y):
            return codec2_roundtrip(y, a.codec2_mode)
    elif a.baseline == "opus":
        system, bitrate = f"Opus --speech {a.opus_kbps:g} kbps", 1000.0 * a.opus_kbps

        def rec(y):
            return opus_roundtrip(y, a.opus_kbps)
    else:
        from utils.models.vqvae import MelVQVAE

        model = MelVQVAE.from_checkpoint(a.checkpoint)
        depth = a.depth or (
            model.depth_for_bitrate(a.max_bitrate) if a.max_bitrate else None
        ) or model.config.num_quantizers
        bitrate = model.bitrate_bps(depth)
        system = f"mel VQ-VAE, {depth} stage(s)"
        info["depth"] = depth
        counts = torch.zeros(depth, model.config.num_codes)

        def rec(y):
            idx = model.encode_audio(y, depth)  # the bit stream; its codes are counted
            for s in range(depth):
                counts[s] += torch.bincount(idx[..., s].flatten(), minlength=counts.shape[1])
            return model.decode_audio(idx, len(y), n_iter=a.gl_iters)

    res = evaluate(files, rec, with_stoi=not a.no_stoi, progress=not a.no_progress)
    if a.baseline is None:
        info.update(codebook_usage(counts))
    if a.per_clip:
        a.per_clip.write_text(json.dumps(res["per_clip"], indent=1))
    summary = {
        "system": system,
        "data": str(a.data_dir) + (f" [{a.split}]" if a.split else ""),
        "pesq_wb": round(res["pesq_wb"], 4),
        "logmel_l1": round(res["logmel_l1"], 4),
        "stoi": round(res["stoi"], 4),
        "bitrate_bps": bitrate,
        "n_clips": res["n_clips"],
        "n_failed": res["n_failed"],
        "n_pesq_nan": res["n_pesq_nan"],
        **info,
    }
    print(f"system        {system}")
    print(f"data          {summary['data']}: {res['n_clips']} clips, {res['n_failed']} unreadable")
    for path, reason in res["failed"]:
        print(f"  skipped     {path}: {reason}")
    print(f"bit rate      {bitrate:.0f} bps")
    print(f"PESQ-WB       {res['pesq_wb']:.3f}")
    print(f"log-mel L1    {res['logmel_l1']:.4f}")
    if not a.no_stoi:
        print(f"STOI          {res['stoi']:.3f}   ({STOI_CAVEAT})")
    if "codebook_used_fraction" in info:
        print(f"codes used    {info['codebook_used_fraction'][:6]} (first stages)")
    if a.json:
        print(json.dumps(summary))
    return 0


if __name__ == "__main__":
    sys.exit(main())
