"""Task ``enhance``: speech enhancement with the DCUNet and its real baselines.

Training (``python -m utils.train enhance --data DIR [--noise DIR] --out RUN [--set kind=ri]``):
clean one-second clips from the train splits of the Speech Commands-layout folders, mixed on
the fly with noise (generated white / pink / brown / hum, babble of other training clips, and
the training part of real recordings when ``--noise`` is given) at an SNR drawn in [−5, 10]
dB; every mixture is a pure function of (seed, index) (:func:`utils.noise.make_mixture`), so
resuming is exact. Loss: negative SI-SDR of the enhanced waveform. Validation: SI-SDR and its
improvement on 64 fixed mixtures of the validation clips; ``best.pt`` has the highest SI-SDR.
The real kinds (``ri``, ``mag``) get the channel scale that matches the complex model's
parameter count within 5 %.

Evaluation:

* ``python -m utils.evaluate enhance CHECKPOINT NOISY_DIR --clean CLEAN_DIR [--json]``: files
  matched by relative path; per-SNR table and one JSON line (``si_sdr_in``, ``si_sdr_out``,
  ``si_sdri``, ``pesq_wb_in``, ``pesq_wb_out``, ``stoi_in``, ``stoi_out``, ``n_clips``,
  ``n_failed``, ``per_snr``). Pairs that do not match (missing partner, other length or rate,
  unreadable) are named and skipped; nothing paired exits 1.
* ``python -m utils.evaluate enhance CHECKPOINT --make-test-set DIR``: writes the fixed test set
  (``DIR/noisy/snr<±SS>/...`` and ``DIR/clean/...``, 16-bit WAV, ``DIR/index.json`` and
  ``DIR/manifest.json``, which lists each pair's files, source clip, SHA-256s, SNR and noise;
  an evaluation of ``DIR/noisy`` refuses a set whose files changed since): every
  test clip of the checkpoint's data folders (held-out speakers) at −5, 0, 5 and 10 dB, with
  noise from the test part of the real recordings and generated noise of a fixed test seed.

Notebook: notebooks/07_speech_enhancement.ipynb
"""

from __future__ import annotations

import argparse
import dataclasses
import hashlib
import json
import os
import re
import sys
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import soundfile as sf
import torch
from torch import Tensor, nn

from utils import options
from utils.audio import SR, AudioError, load
from utils.checkpoint import load_checkpoint, writable_folder
from utils.data.files import find_audio
from utils.data.speech_commands import SpeechCommands
from utils.errors import OptionError, ProjectError
from utils.metrics import STOI_CAVEAT
from utils.models.dcunet import (
    MODEL_KIND,
    EnhanceConfig,
    SpeechEnhancer,
    match_width,
    si_sdr,
)
from utils.noise import NOISE_KINDS, load_noise, make_mixture
from utils.scoring import check_per_clip, count_reasons, rows_json, run_guarded
from utils.training import Task, TrainConfig, override, train

__all__ = ["SUMMARY", "TRAIN_DEFAULTS", "TEST_SNRS", "TEST_SEED", "EnhanceTask", "load_clips",
           "make_test_set", "MANIFEST", "check_manifest", "pair_files", "score_pairs",
           "add_train_arguments", "train_command", "add_eval_arguments", "evaluate_command"]

#: One line for ``--help``.
SUMMARY = "speech enhancement: complex DCUNet vs real U-Nets on [Re, Im] and on the magnitude"

#: The enhancer's defaults of the shared training settings.
TRAIN_DEFAULTS = dict(steps=1500, batch_size=8, lr=2e-3, weight_decay=1e-5, warmup=50,
                      min_lr_ratio=0.05, grad_clip=5.0, log_every=25, val_every=250,
                      save_every=250)

#: The SNRs of the fixed test set (dB).
TEST_SNRS = (-5, 0, 5, 10)
#: The mixture stream of the fixed test set (never a training seed's stream: those use the
#: training seed, which is small).
TEST_SEED = 900_001
#: The mixture stream of the validation set.
VAL_SEED = 800_001
#: Clip length in seconds (every clip is cut or zero-padded to it).
SECONDS = 1.0


def load_clips(folders: Sequence[str | Path], split: str) -> tuple[list[Tensor], list[Path],
                                                                   list[str]]:
    """One-second clean clips of ``split`` from every folder (unreadable files skipped).

    Notebook: notebooks/07_speech_enhancement.ipynb

    Returns:
        ``(clips, files, report lines)``.
    """
    clips, files, report = [], [], []
    for folder in folders:
        ds = SpeechCommands(folder, split=split, sr=SR, length=int(SECONDS * SR), cache=False)
        clips += [torch.from_numpy(ds.audio(i)) for i in range(len(ds))]
        files += [Path(f) for f in ds.files]
        report.append(f"{folder} [{split}]: {len(ds)} clips, {len(ds.failed)} skipped")
    return clips, files, report


class EnhanceTask(Task):
    """The enhancer for the training loop: noisy mixtures in, negative SI-SDR out.

    Notebook: notebooks/07_speech_enhancement.ipynb

    Args:
        data: Speech Commands-layout folders of clean speech (train / validation splits used).
        config: The model's configuration.
        noise: Folders of real background noise (their first 80 % in time is training noise).
        kinds: Noise kinds to draw (``"real"`` needs ``noise``).
        snr_db: SNR range of the training mixtures.
        match: Give a real kind the width that matches the complex model's parameter count.
    """

    name = "enhance"
    kind = MODEL_KIND
    best_metric = "val_si_sdr"
    best_mode = "max"

    def __init__(self, data: Sequence[str | Path], config: EnhanceConfig | None = None, *,
                 noise: Sequence[str | Path] = (), kinds: Sequence[str] = NOISE_KINDS,
                 snr_db: tuple[float, float] = (-5.0, 10.0), match: bool = True) -> None:
        missing = [str(d) for d in [*data, *noise] if not Path(d).is_dir()]
        if not data or missing:
            raise OptionError("--data", f"no such folder: {', '.join(missing) or '(none given)'}")
        bad = [k for k in kinds if k not in NOISE_KINDS]
        if bad or not kinds:
            raise OptionError("--kinds", f"unknown noise kind(s) {bad}; choose from {NOISE_KINDS}")
        if snr_db[0] > snr_db[1]:
            raise OptionError("--snr", f"low above high: {snr_db}")
        config = config or EnhanceConfig()
        if match and config.kind != "complex":
            target = SpeechEnhancer(dataclasses.replace(config, kind="complex",
                                                        width_scale=1.0)).num_parameters()
            config = match_width(config, target)
        self.config = config
        self.data = [str(d) for d in data]
        self.noise_dirs = [str(d) for d in noise]
        self.kinds = tuple(k for k in kinds if k != "real" or noise)
        self.snr_db = (float(snr_db[0]), float(snr_db[1]))
        self.train_clips: list[Tensor] = []
        self.real_noise: list[Tensor] = []
        self.val_noisy: Tensor | None = None
        self.val_clean: Tensor | None = None

    def load_data(self) -> list[str]:  # noqa: D102
        self.train_clips, _, report = load_clips(self.data, "train")
        val_clips, _, vreport = load_clips(self.data, "validation")
        if len(self.train_clips) < 2:
            raise OptionError("--data", f"fewer than 2 usable training clips in "
                                        f"{', '.join(self.data)}")
        self.real_noise = load_noise(self.noise_dirs, "train")
        if val_clips:
            mixes = [make_mixture(VAL_SEED, i, val_clips, self.real_noise, kinds=self.kinds,
                                  snr_db=self.snr_db) for i in range(64)]
            self.val_noisy = torch.stack([m.noisy for m in mixes])
            self.val_clean = torch.stack([m.clean for m in mixes])
        return report + vreport + [f"real noise: {len(self.real_noise)} recordings "
                                   f"(training part); kinds {list(self.kinds)}"]

    def build_model(self) -> SpeechEnhancer:  # noqa: D102
        return SpeechEnhancer(self.config)

    def batch(self, step: int, *, seed: int, batch_size: int, rank: int = 0,
              world: int = 1) -> tuple[Tensor, Tensor]:  # noqa: D102
        mixes = [make_mixture(seed, step * batch_size + j, self.train_clips, self.real_noise,
                              kinds=self.kinds, snr_db=self.snr_db)
                 for j in range(rank, batch_size, world)]
        return torch.stack([m.noisy for m in mixes]), torch.stack([m.clean for m in mixes])

    def loss(self, model: nn.Module, batch: tuple[Tensor, ...]
             ) -> tuple[Tensor, dict[str, Any]]:  # noqa: D102
        noisy, clean = batch
        sdr = si_sdr(model(noisy), clean)
        return -sdr.mean(), {"si_sdr": float(sdr.mean().detach())}

    @torch.no_grad()
    def validate(self, model: nn.Module, device: torch.device) -> dict[str, Any]:  # noqa: D102
        if self.val_noisy is None:
            return {}
        was = model.training
        model.eval()
        try:
            out = torch.cat([model(self.val_noisy[i : i + 16].to(device)).cpu()
                             for i in range(0, len(self.val_noisy), 16)])
        finally:
            model.train(was)
        before = float(si_sdr(self.val_noisy, self.val_clean).mean())
        after = float(si_sdr(out, self.val_clean).mean())
        return {"val_si_sdr": after, "val_si_sdri": after - before}

    def checkpoint(self, model: nn.Module) -> dict[str, Any]:  # noqa: D102
        return model.checkpoint(task=self.name, data=self.data, noise=self.noise_dirs,
                                kinds=list(self.kinds), snr_db=list(self.snr_db))


# --------------------------------------------------------------------------------------------
# The fixed test set and scoring
# --------------------------------------------------------------------------------------------


#: The manifest of a test set written by :func:`make_test_set` (in its folder).
MANIFEST = "manifest.json"


def _sha256(path: str | Path) -> str:
    """SHA-256 of a file's bytes (hex)."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def make_test_set(out: str | Path, data: Sequence[str | Path], noise: Sequence[str | Path] = (),
                  *, snrs: Sequence[float] = TEST_SNRS, every: int = 1,
                  kinds: Sequence[str] = NOISE_KINDS) -> dict[str, Any]:
    """Write the fixed test set: every ``every``-th test clip at each SNR, noisy and clean.

    Clean clips: the *testing* split (held-out speakers) of ``data``; noise: the test part (last
    20 % in time) of the real recordings, babble of other test clips, and generated noise, all
    drawn from the stream :data:`TEST_SEED`. Files: ``out/noisy/snr<±SS>/<relative path>.wav``
    and the same under ``out/clean/``; ``out/index.json`` lists each file's SNR and noise kind.

    Notebook: notebooks/07_speech_enhancement.ipynb

    Returns:
        The index (``{"files": [...], "snrs": [...], ...}``).
    """
    out = Path(out)
    writable_folder(out, "--make-test-set")
    clips, files, report = load_clips(data, "testing")
    if not clips:
        raise OptionError("--data", f"no usable test clip in {list(map(str, data))}")
    real = load_noise(noise, "test")
    use = [k for k in kinds if (k != "real" or real) and (k != "babble" or len(clips) > 1)]
    rows, pairs, used = [], [], set()
    roots = [Path(d).resolve() for d in data]
    for i in range(0, len(clips), every):
        f = files[i]
        rel = Path(f.parent.name) / (f.stem + ".wav")
        if len(roots) > 1:  # the same word/clip name in two folders: data<k>/word/clip.wav
            k = next((k for k, r in enumerate(roots) if f.resolve().is_relative_to(r)), 0)
            rel = Path(f"data{k}") / rel
        if rel in used:  # e.g. clip.flac and clip.wav in one word folder
            tag = hashlib.sha256(str(f.resolve()).encode()).hexdigest()[:8]
            rel = rel.with_name(f"{rel.stem}_{tag}.wav")
        used.add(rel)
        source_sha = _sha256(f)
        for snr in snrs:
            m = make_mixture(TEST_SEED, i * 100 + int(snr) + 50, clips, real, kinds=use,
                             snr_db=float(snr), clip=i)
            sub = f"snr{int(snr):+03d}"
            for part, wave in (("noisy", m.noisy), ("clean", m.clean)):
                path = out / part / sub / rel
                path.parent.mkdir(parents=True, exist_ok=True)
                sf.write(path, wave.numpy(), SR, subtype="PCM_16")
            rows.append({"file": f"{sub}/{rel.as_posix()}", "snr_db": float(snr),
                         "kind": m.kind, "source": str(f)})
            pairs.append({**{f"{part}{key}": value for part in ("noisy", "clean")
                             for key, value in (("", f"{part}/{sub}/{rel.as_posix()}"),
                                                ("_sha256", _sha256(out / part / sub / rel)))},
                          "source": str(f), "source_sha256": source_sha,
                          "snr_db": float(snr), "noise_kind": m.kind})
    index = {"snrs": list(snrs), "every": every, "data": [str(d) for d in data],
             "noise": [str(d) for d in noise], "seed": TEST_SEED, "report": report,
             "files": rows}
    (out / MANIFEST).write_text(json.dumps({"seed": TEST_SEED, "pairs": pairs}, indent=1)
                                + "\n")
    (out / "index.json").write_text(json.dumps(index, indent=1) + "\n")
    return index


def check_manifest(noisy_dir: str | Path) -> Path | None:
    """Refuse a test set made by :func:`make_test_set` that changed since (stale or incomplete).

    The manifest sits in the set's folder (``DIR/manifest.json``, evaluated as ``DIR/noisy``):
    every listed noisy and clean file must exist with its recorded SHA-256, and each source
    clip that is still there must be unchanged (else the pairs no longer show it).

    Notebook: notebooks/07_speech_enhancement.ipynb

    Args:
        noisy_dir: The folder of noisy files to be scored.

    Returns:
        The manifest checked, or ``None`` when the folder is not such a test set.

    Raises:
        ProjectError: Naming the first missing or changed file and the reason.
    """
    noisy_dir = Path(noisy_dir)
    for root in (noisy_dir.parent, noisy_dir):
        manifest = root / MANIFEST
        if manifest.is_file() and (root / "noisy").resolve() == noisy_dir.resolve():
            break
    else:
        if (noisy_dir.parent / "index.json").is_file() and noisy_dir.name == "noisy":
            warnings.warn(f"{noisy_dir.parent}: a test set written before manifests: its pairs "
                          "cannot be checked against their source clips; make it again with "
                          "--make-test-set to be sure they are current", stacklevel=2)
        return None
    again = "make the test set again with --make-test-set"
    try:
        pairs = json.loads(manifest.read_text())["pairs"]
        entries = [(root / p[part], p[f"{part}_sha256"]) for p in pairs
                   for part in ("noisy", "clean")]
        sources = {(Path(p["source"]), p["source_sha256"]) for p in pairs}
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise ProjectError(manifest, f"unreadable manifest ({exc}); {again}") from None
    for path, sha in entries:
        if not path.is_file():
            raise ProjectError(path, f"listed in {manifest} but missing: the test set is "
                                     f"incomplete; {again}")
        if _sha256(path) != sha:
            raise ProjectError(path, f"changed since the test set was made (SHA-256 differs "
                                     f"from {manifest}): stale pair; {again}")
    for source, sha in sorted(sources):
        if source.is_file() and _sha256(source) != sha:
            raise ProjectError(source, f"source clip changed since the test set {root} was "
                                       f"made (SHA-256 differs from {manifest}); {again}")
    return manifest


def pair_files(noisy_dir: str | Path, clean_dir: str | Path
               ) -> tuple[list[tuple[Path, Path]], list[tuple[Path, str]]]:
    """Noisy and clean files matched by relative path.

    Notebook: notebooks/07_speech_enhancement.ipynb

    Returns:
        ``(pairs, failed)``: ``failed`` names each noisy file without a clean partner.
    """
    noisy_dir, clean_dir = Path(noisy_dir), Path(clean_dir)
    pairs, failed = [], []
    for f in find_audio(noisy_dir, None):
        partner = clean_dir / f.relative_to(noisy_dir)
        if partner.is_file():
            pairs.append((f, partner))
        else:
            failed.append((f, f"no clean file {partner}"))
    return pairs, failed


def _snr_group(path: Path, noisy: np.ndarray, clean: np.ndarray) -> float:
    """The SNR bin of a pair: ``snr<±SS>`` in its path, else the measured SNR to 5 dB."""
    for part in path.parts:
        m = re.fullmatch(r"snr([+-]?\d+)", part)
        if m:
            return float(m.group(1))
    noise = noisy - clean
    snr = 10 * np.log10((clean**2).sum() / max(float((noise**2).sum()), 1e-12))
    return float(5 * round(snr / 5))


#: The scores of the noisy input and of the enhanced output against the clean file.
PAIR_METRICS = ("pesq_wb", "visqol", "stoi", "dnsmos_sig", "dnsmos_bak", "dnsmos_ovrl")


def score_pairs(pairs: Sequence[tuple[Path, Path]], enhance, *, with_stoi: bool = True,
                second_opinions: bool = True, progress: bool = False) -> dict[str, Any]:
    """SI-SDR, PESQ-WB, ViSQOL, STOI and DNSMOS of each noisy and enhanced file.

    Nothing ends the batch: a pair that cannot be read or matched, that is shorter than
    PESQ's 0.25 s, or that the model cannot enhance is skipped with its reason; a score that
    cannot be measured is NaN with its reason (``nan_reasons``). The enhancer is in time
    by construction (delay 0).

    Notebook: notebooks/07_speech_enhancement.ipynb

    Args:
        pairs: ``(noisy, clean)`` paths.
        enhance: NumPy waveform → NumPy waveform.
        with_stoi: Also STOI (slower).
        second_opinions: Also ViSQOL and DNSMOS.
        progress: Show a progress bar.

    Returns:
        ``{"rows": [...], "failed": [(path, reason)]}``, one row per scored pair.
    """
    from tqdm.auto import tqdm

    from utils.metrics import PESQ_MIN_S, measure
    from utils.scoring import metrics_for

    names = [m for m in metrics_for(with_stoi=with_stoi, second_opinions=second_opinions)
             if m in PAIR_METRICS]
    rows, failed = [], []
    for noisy_path, clean_path in tqdm(pairs, disable=not progress, desc="enhancing"):
        try:
            info_n, info_c = sf.info(noisy_path), sf.info(clean_path)
            if info_n.samplerate != info_c.samplerate:
                raise AudioError(noisy_path, f"rate {info_n.samplerate} Hz, clean file "
                                             f"{info_c.samplerate} Hz")
            if info_n.samplerate != SR:
                raise AudioError(noisy_path, f"rate {info_n.samplerate} Hz; the models use {SR}")
            noisy, clean = load(noisy_path, SR), load(clean_path, SR)
            if len(noisy) != len(clean):
                raise AudioError(noisy_path, f"{len(noisy)} samples, clean file {len(clean)}")
            if len(noisy) < PESQ_MIN_S * SR:
                raise AudioError(noisy_path, f"too short: {len(noisy) / SR:.3f} s, the scores "
                                             f"need at least {PESQ_MIN_S:g} s")
        except (AudioError, RuntimeError, sf.LibsndfileError) as exc:
            failed.append((noisy_path, str(exc)))
            continue
        out, why = run_guarded(enhance, noisy, "enhancement")
        if why is not None:
            failed.append((noisy_path, why))
            continue
        t = torch.from_numpy
        row: dict[str, Any] = {
            "file": Path(noisy_path).as_posix(), "snr_group": _snr_group(noisy_path, noisy, clean),
            "delay": 0,
            "si_sdr_in": float(si_sdr(t(noisy), t(clean))),
            "si_sdr_out": float(si_sdr(t(np.ascontiguousarray(out)), t(clean)))}
        reasons = {}
        for side, signal in (("in", noisy), ("out", out)):
            scores, why = measure(clean, signal, metrics=names)
            row.update({f"{k}_{side}": v for k, v in scores.items()})
            reasons.update({f"{k}_{side}": v for k, v in why.items()})
        if reasons:
            row["nan_reasons"] = reasons
        rows.append(row)
    return {"rows": rows, "failed": failed}


def _mean(rows: Sequence[dict[str, Any]], key: str) -> float:
    vals = [r[key] for r in rows if key in r and np.isfinite(r[key])]
    return float(np.mean(vals)) if vals else float("nan")


def summarize(rows: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """Means over all rows and per SNR group (``per_snr``); 95 % intervals overall.

    Notebook: notebooks/07_speech_enhancement.ipynb
    """

    from utils.stats import bootstrap_ci

    keys = ["si_sdr_in", "si_sdr_out"] + [f"{m}_{side}" for m in PAIR_METRICS
                                          for side in ("in", "out")]
    keys = [k for k in keys if any(k in r for r in rows)] or ["si_sdr_in", "si_sdr_out"]

    def block(rs):
        d = {k: round(_mean(rs, k), 4) for k in keys}
        d["si_sdri"] = round(d["si_sdr_out"] - d["si_sdr_in"], 4)
        d["n_clips"] = len(rs)
        return d

    groups = sorted({r["snr_group"] for r in rows})
    per = {f"{g:+g}": block([r for r in rows if r["snr_group"] == g]) for g in groups}
    overall = block(rows)
    for k in [k for k in keys if k.endswith("_out")]:
        overall[f"{k}_ci95"] = bootstrap_ci([r.get(k, np.nan) for r in rows]).as_list()
    overall["si_sdri_ci95"] = bootstrap_ci(
        [r["si_sdr_out"] - r["si_sdr_in"] for r in rows]).as_list()
    # the average over SNR groups (each SNR counts once), the target's definition
    overall["si_sdri_mean_over_snrs"] = round(float(np.mean([p["si_sdri"] for p in per.values()]))
                                              if per else float("nan"), 4)
    return {**overall, "nan_reasons": count_reasons(rows), "per_snr": per}


# --------------------------------------------------------------------------------------------
# Command lines
# --------------------------------------------------------------------------------------------


def add_train_arguments(p: argparse.ArgumentParser) -> None:
    """The enhancer's options of ``python -m utils.train enhance``.

    Notebook: notebooks/07_speech_enhancement.ipynb
    """
    p.add_argument("--data", action="append", required=True,
                   help="Speech Commands-layout folder of clean speech (repeatable)")
    p.add_argument("--noise", action="append", default=[],
                   help="folder of real background noise (repeatable; first 80 %% used)")
    p.add_argument("--kinds", nargs="+", default=list(NOISE_KINDS),
                   help=f"noise kinds to draw ({', '.join(NOISE_KINDS)})")
    p.add_argument("--snr", type=options.DECIBELS,
                   nargs=2, default=[-5.0, 10.0], metavar=("LOW", "HIGH"),
                   help="SNR range of the training mixtures (dB)")
    p.add_argument("--no-match", action="store_true",
                   help="keep width_scale as given for a real kind (default: match the complex "
                        "model's parameter count within 5 %%)")
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                   help="model hyper-parameter, e.g. --set kind=ri --set arch=DCUNet-16")


def train_command(args: argparse.Namespace, cfg: TrainConfig) -> dict[str, Any]:
    """Run ``python -m utils.train enhance``: every option is checked before the data loads.

    Notebook: notebooks/07_speech_enhancement.ipynb

    Returns:
        The final record.
    """
    config = override(EnhanceConfig(), args.set)
    task = EnhanceTask(args.data, config, noise=args.noise, kinds=args.kinds,
                       snr_db=tuple(args.snr), match=not args.no_match)
    return train(task, cfg).last


def add_eval_arguments(p: argparse.ArgumentParser) -> None:
    """The enhancer's options of ``python -m utils.evaluate enhance``.

    Notebook: notebooks/07_speech_enhancement.ipynb
    """
    p.add_argument("checkpoint", help="enhancer checkpoint (.pt), or - with --make-test-set "
                                      "and --data")
    p.add_argument("data_dir", nargs="?", default=None, help="folder of noisy files")
    p.add_argument("--clean", default=None, help="folder of clean files (same relative paths)")
    p.add_argument("--make-test-set", type=Path, default=None, metavar="DIR",
                   help="write the fixed test set (noisy/ and clean/) to DIR and stop")
    p.add_argument("--data", action="append", default=None,
                   help="clean folders of the test set (default: the checkpoint's)")
    p.add_argument("--noise", action="append", default=None,
                   help="real noise folders of the test set (default: the checkpoint's)")
    p.add_argument("--every", type=options.COUNT, default=1, help="every K-th test clip (test set)")
    p.add_argument("--limit", type=options.COUNT, default=None, help="score the first N pairs only")
    p.add_argument("--no-stoi", action="store_true")
    p.add_argument("--no-second-opinions", action="store_true",
                   help="skip ViSQOL and DNSMOS (SI-SDR, PESQ-WB and STOI only)")
    p.add_argument("--json", action="store_true", help="end with one JSON line")
    p.add_argument("--per-clip", type=Path, default=None, help="write per-clip rows (JSON)")
    p.add_argument("--device", default="auto", help="auto (CUDA when present), cpu or cuda")
    p.add_argument("--no-progress", action="store_true")


def evaluate_command(a: argparse.Namespace) -> dict[str, Any]:
    """Run ``python -m utils.evaluate enhance``: prints a table per SNR; returns the summary.

    Notebook: notebooks/07_speech_enhancement.ipynb
    """
    from utils.distributed import resolve_device

    if a.make_test_set is not None:
        data, noise = a.data, a.noise
        if a.checkpoint != "-":
            ckpt = load_checkpoint(a.checkpoint, MODEL_KIND)
            # the folders the model was trained with; those not on this machine (a fresh clone
            # has only the bundled ones) are left out, and said so
            stored = ([] if data else ckpt.get("data", [])) + (
                [] if noise is not None else ckpt.get("noise", []))
            absent = [d for d in stored if not Path(d).is_dir()]
            if not data:
                data = [d for d in ckpt.get("data", []) if Path(d).is_dir()]
            if noise is None:
                noise = [d for d in ckpt.get("noise", []) if Path(d).is_dir()]
            if absent:
                print(f"{a.checkpoint}: its training folders {', '.join(absent)} are not on "
                      f"this machine; the test set uses {', '.join(map(str, data)) or 'none'}"
                      + ("" if noise else " and generated and babble noise only"),
                      file=sys.stderr)
        if not data:
            raise OptionError("--data", "the test set needs clean folders (--data or a checkpoint)")
        missing = [d for d in [*data, *(noise or [])] if not Path(d).is_dir()]
        if missing:
            raise OptionError("--data", f"no such folder: {', '.join(missing)}")
        index = make_test_set(a.make_test_set, data, noise or [], every=a.every)
        a.data_dir = str(a.make_test_set)
        n_files = len(index["files"])
        kinds = sorted({r["kind"] for r in index["files"]})
        print(f"wrote {n_files} noisy/clean pairs to {a.make_test_set} "
              f"(SNRs {index['snrs']} dB; noise kinds {kinds})")
        return {"test_set": str(a.make_test_set), "n_pairs": n_files, "n_clips": n_files,
                "n_failed": 0}
    if a.data_dir is None or a.clean is None:
        raise OptionError("--clean", "give NOISY_DIR and --clean CLEAN_DIR (or --make-test-set)")
    for d in (a.data_dir, a.clean):
        if not Path(d).is_dir():
            raise OptionError(d, "no such folder")
    check_per_clip(a.per_clip)
    check_manifest(a.data_dir)  # a stale or incomplete test set is refused before scoring
    device = resolve_device(a.device)
    model = SpeechEnhancer.from_checkpoint(a.checkpoint, map_location=device)
    pairs, failed = pair_files(a.data_dir, a.clean)
    pairs = pairs[: a.limit]
    res = score_pairs(pairs, model.enhance, with_stoi=not a.no_stoi,
                      second_opinions=not a.no_second_opinions, progress=not a.no_progress)
    failed += res["failed"]
    summary = {"system": f"{model.config.kind} U-Net ({model.config.arch}, "
                         f"{model.num_parameters():,} parameters)",
               "data": Path(os.path.relpath(a.data_dir)).as_posix(),
               **summarize(res["rows"]), "n_failed": len(failed),
               "skipped": [[Path(p).as_posix(), r] for p, r in failed]}
    if a.per_clip:
        a.per_clip.write_text(rows_json(res["rows"]))
    print(f"system   {summary['system']}")
    print(f"data     {a.data_dir}: {len(res['rows'])} pairs scored, {len(failed)} skipped")
    for path, reason in failed:
        print(f"  skipped {path}: {reason}")
    for why, count in summary["nan_reasons"].items():
        print(f"  NaN     {why}: {count} pair(s)")
    print("SNR in   clips  SI-SDR in → out (dB)   SI-SDRi   PESQ-WB in → out   ViSQOL in → out"
          "   STOI in → out")
    for g, r in summary["per_snr"].items():
        print(f"{g:>6}  {r['n_clips']:6d}  {r['si_sdr_in']:7.2f} → {r['si_sdr_out']:6.2f}"
              f"   {r['si_sdri']:7.2f}   {r['pesq_wb_in']:6.3f} → {r['pesq_wb_out']:6.3f}"
              f"   {r.get('visqol_in', np.nan):6.3f} → {r.get('visqol_out', np.nan):6.3f}"
              f"   {r.get('stoi_in', np.nan):.3f} → {r.get('stoi_out', np.nan):.3f}")
    for k in ("si_sdri", "pesq_wb_out", "visqol_out", "dnsmos_ovrl_out"):
        if f"{k}_ci95" in summary:
            lo, hi = summary[f"{k}_ci95"]
            print(f"{k:<16} {summary[k]:.3f}  95 % interval [{lo}, {hi}]")
    if not a.no_stoi:
        print(f"note: {STOI_CAVEAT}")
    return summary
