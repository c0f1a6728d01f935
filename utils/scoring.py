"""The yardstick: one scorer for every system of the collection, on a folder of clips.

``score_files(files, system)`` reads each clip, asks the system for its reconstruction,
compensates the system's **known delay** (never a searched one, :mod:`utils.delay`) and
measures every score of :mod:`utils.metrics` on it. Nothing ends a batch: an unreadable file
is skipped with its reason, a score that cannot be measured on a clip is NaN with its reason,
and the summary counts both. Every per-clip row keeps the delay used, the bits the system
actually produced (when it reports them) and the reason of every NaN; the summary gives each
score's mean with a 95 % bootstrap interval over clips (:mod:`utils.stats`).

A system is any function ``waveform → reconstruction``. Its reconstruction is a waveform, or
an :class:`Output` that also says how many bits it sent and how late it is; several versions
at once (``{key: reconstruction}``, e.g. every depth of a bit-rate ladder) are scored from one
reading of the clip.

The command-line side of every "model on clips" evaluation (codec, VAE, vocoder) lives here
too: :func:`add_clip_scoring_arguments`, :func:`clip_files` and :func:`report_scores`.

Notebook: notebooks/02_vq_vae.ipynb
"""

from __future__ import annotations

import argparse
import json
import math
import os
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from utils import options
from utils.audio import FEATURES, SR, AudioError, load
from utils.checkpoint import writable_folder
from utils.data.files import find_audio
from utils.delay import compensate, estimate_delay
from utils.errors import OptionError
from utils.metrics import METRICS, STOI_CAVEAT, dnsmos, measure
from utils.stats import bootstrap_ci

__all__ = ["Output", "DEFAULT_METRICS", "SECOND_OPINIONS", "metrics_for", "metrics_of",
           "run_guarded", "score_files", "summarize", "count_reasons", "report_scores",
           "print_scores",
           "add_clip_scoring_arguments", "check_per_clip", "clip_files", "jsonable",
           "rows_json"]

#: The scores every evaluation computes unless told otherwise.
DEFAULT_METRICS = METRICS
#: The scores ``--no-second-opinions`` leaves out (ViSQOL and DNSMOS).
SECOND_OPINIONS = ("visqol", "dnsmos_sig", "dnsmos_bak", "dnsmos_ovrl")
#: Scores reported with a 95 % interval in every summary.
WITH_INTERVAL = METRICS


class Output(np.ndarray):
    """A reconstruction that also carries ``bits`` (sent for this clip) and ``delay``.

    It is the waveform itself (an ``ndarray`` subclass), so code that only wants the audio
    does not notice; the scorer reads the two attributes.

    Notebook: notebooks/02_vq_vae.ipynb
    """

    bits: float
    delay: int

    def __new__(cls, audio: np.ndarray, bits: float = math.nan, delay: int = 0) -> Output:
        obj = np.asarray(audio, dtype=np.float32).view(cls)
        obj.bits, obj.delay = float(bits), int(delay)
        return obj

    def __array_finalize__(self, obj: object) -> None:
        self.bits = getattr(obj, "bits", math.nan)
        self.delay = getattr(obj, "delay", 0)


def metrics_for(*, with_stoi: bool = True, second_opinions: bool = True) -> tuple[str, ...]:
    """The scores an evaluation computes, from its two switches.

    Notebook: notebooks/02_vq_vae.ipynb
    """
    return tuple(m for m in METRICS if (with_stoi or m != "stoi")
                 and (second_opinions or m not in SECOND_OPINIONS))


def count_reasons(rows: Sequence[Mapping[str, Any]]) -> dict[str, int]:
    """How many rows are NaN for each score and reason, the reason without its numbers
    (``{"pesq_wb: too short": 2}`` for "too short (0.1 s < 0.25 s)").

    Notebook: notebooks/02_vq_vae.ipynb
    """
    reasons = Counter(f"{m}: {why.split(' (')[0]}" for r in rows
                      for m, why in r.get("nan_reasons", {}).items())
    return dict(sorted(reasons.items()))


def _name(path: Path, root: Path | None) -> str:
    if root is not None:
        try:
            return path.resolve().relative_to(root.resolve()).as_posix()
        except ValueError:
            pass
    try:
        return Path(os.path.relpath(path)).as_posix()
    except ValueError:  # another drive
        return path.name


def run_guarded(system: Callable[[np.ndarray], Any], y: np.ndarray,
                what: str = "reconstruction") -> tuple[Any, str | None]:
    """Run a system on one clip; a failure becomes a reason instead of ending the batch.

    Interrupts, exits and running out of memory still propagate: they are not one clip's fault.

    Notebook: notebooks/02_vq_vae.ipynb

    Returns:
        ``(output, None)``, or ``(None, "<what> failed: <error>")``.
    """
    try:
        return system(y), None
    except (KeyboardInterrupt, SystemExit, MemoryError):
        raise
    except Exception as exc:  # one clip the system cannot handle must not end the batch
        return None, f"{what} failed: {type(exc).__name__}: {exc}"


def score_files(
    files: Sequence[Path],
    reconstruct: Callable[[np.ndarray], np.ndarray | Mapping[Any, np.ndarray]],
    *,
    metrics: Sequence[str] = DEFAULT_METRICS,
    delay: int | str = 0,
    root: str | os.PathLike | None = None,
    progress: bool = True,
    with_stoi: bool | None = None,
    dnsmos_originals: bool = False,
) -> dict[str, Any]:
    """Reconstruct and score every file; nothing that goes wrong on one clip ends the batch.

    Notebook: notebooks/02_vq_vae.ipynb

    Args:
        files: Audio files.
        reconstruct: Waveform (16 kHz) → reconstruction (waveform or :class:`Output`), or
            ``{key: reconstruction}``.
        metrics: Scores to compute (names from :data:`utils.metrics.METRICS`).
        delay: The system's delay in samples when its outputs do not carry one, or
            ``"estimate"`` for outputs of unknown origin (:func:`utils.delay.estimate_delay`,
            believed only when clear).
        root: Per-clip rows name files relative to this folder (default: the working folder).
        progress: Show a progress bar.
        with_stoi: Shorthand of the older interface: ``False`` drops ``"stoi"``.
        dnsmos_originals: Also judge each original with DNSMOS (``dnsmos_*_original``), the
            anchor of a reference-free score (it is the same for every system on a folder).

    Returns:
        The :func:`summarize` of the rows, plus ``"failed"`` ([file, reason] of every clip
        that could not be read or reconstructed) and ``"per_clip"``; with several versions,
        the same per key under ``"by_key"`` (the top level is the last key's).
    """
    from tqdm.auto import tqdm

    if with_stoi is False:
        metrics = tuple(m for m in metrics if m != "stoi")
    if not (delay == "estimate" or isinstance(delay, (int, np.integer))):
        raise OptionError("delay", f"a whole number of samples or 'estimate', not {delay!r}")
    root_path = Path(root) if root is not None else None
    if root_path is not None and root_path.is_file():
        root_path = root_path.parent
    wants_dnsmos = dnsmos_originals and any(m.startswith("dnsmos_") for m in metrics)
    rows: dict[Any, list[dict[str, Any]]] = {}
    failed: list[tuple[str, str]] = []
    for f in tqdm(files, disable=not progress, desc="evaluate"):
        name = _name(Path(f), root_path)
        try:
            y = load(f, SR, min_samples=FEATURES.n_fft)
        except AudioError as exc:
            failed.append((name, exc.reason))
            continue
        out, why = run_guarded(reconstruct, y, "reconstruction")
        if why is not None:
            failed.append((name, why))
            continue
        versions = out if isinstance(out, Mapping) else {None: out}
        original = dnsmos(y) if wants_dnsmos else {}
        for key, y_hat in versions.items():
            if isinstance(y_hat, Output):
                lag = y_hat.delay
            elif delay == "estimate":
                lag = estimate_delay(y, y_hat).lag
            else:
                lag = int(delay)
            ref, est = compensate(y, y_hat, lag)
            scores, reasons = measure(ref, est, metrics=metrics)
            row: dict[str, Any] = {"file": name, "seconds": round(len(y) / SR, 4),
                                   "delay": lag, **scores}
            bits = float(getattr(y_hat, "bits", math.nan))
            if math.isfinite(bits):
                row["bits"] = bits
                row["bitrate_bps"] = bits / (len(y) / SR)
            if wants_dnsmos:
                row.update({f"{k}_original": v for k, v in original.items()})
            if reasons:
                row["nan_reasons"] = reasons
            rows.setdefault(key, []).append(row)

    by_key = {key: {**summarize(r, metrics), "failed": failed, "per_clip": r}
              for key, r in rows.items()}
    empty = {**summarize([], metrics), "failed": failed, "per_clip": []}
    result = next(reversed(by_key.values())) if by_key else empty
    result = {**result, "n_failed": len(failed)}
    if len(by_key) > 1 or (by_key and None not in by_key):
        result["by_key"] = {k: {**v, "n_failed": len(failed)} for k, v in by_key.items()}
    return result


def summarize(rows: Sequence[Mapping[str, Any]],
              metrics: Sequence[str] = DEFAULT_METRICS) -> dict[str, Any]:
    """Means with 95 % bootstrap intervals over clips, NaN counts and their reasons.

    Notebook: notebooks/02_vq_vae.ipynb

    Returns:
        For each score ``name``: ``name`` (mean over the clips where it is finite),
        ``name_ci95`` ([lo, hi]), ``n_name_nan``; ``dnsmos_*_original`` the same for the
        originals; ``bitrate_bps`` (all bits over all seconds) when the system reports bits;
        ``n_clips``; ``nan_reasons`` ({"score: reason": count}).
    """
    out: dict[str, Any] = {}
    names = list(metrics) + [f"{m}_original" for m in metrics if m.startswith("dnsmos_")
                             and any(f"{m}_original" in r for r in rows)]
    for name in names:
        ci = bootstrap_ci([r.get(name, math.nan) for r in rows])
        out[name] = ci.mean
        out[f"{name}_ci95"] = ci.as_list()
        out[f"n_{name}_nan"] = len(rows) - ci.n
    bits = [r["bits"] for r in rows if "bits" in r]
    if bits and len(bits) == len(rows):
        out["bitrate_bps"] = float(sum(bits) / sum(r["seconds"] for r in rows))
    delays = Counter(int(r["delay"]) for r in rows)
    out["delays"] = {str(k): v for k, v in sorted(delays.items())}
    out["n_clips"] = len(rows)
    out["nan_reasons"] = count_reasons(rows)
    return out


def report_scores(a: argparse.Namespace, res: dict[str, Any], system: str,
                  bitrate_bps: float | None = None, **extra: Any) -> dict[str, Any]:
    """The summary of a clip scoring, ``--per-clip`` written, its head and scores printed.

    One format for the codec, VAE and vocoder evaluations.

    Notebook: notebooks/02_vq_vae.ipynb

    Args:
        a: The parsed options (``data_dir``, ``split``, ``per_clip``).
        res: What :func:`score_files` returned.
        system: What was measured, in words.
        bitrate_bps: The nominal bit rate, when the system has one (the measured one, from
            the bits the system reports, is ``bitrate_bps_measured``).
        **extra: Further summary entries, after the counts.

    Returns:
        ``system``, ``data``, every score with ``_ci95`` and ``n_*_nan``, [``bitrate_bps``,
        ``bitrate_bps_measured``], ``n_clips``, ``n_failed``, ``nan_reasons``, ``skipped``,
        then ``extra``.
    """
    if a.per_clip:
        a.per_clip.write_text(rows_json(res["per_clip"]))
    summary: dict[str, Any] = {
        "system": system,
        "data": Path(os.path.relpath(a.data_dir)).as_posix() + (
            f" [{a.split}]" if getattr(a, "split", None) else ""),
    }
    for key, value in res.items():
        if key in ("failed", "per_clip", "by_key", "bitrate_bps", "n_clips", "n_failed",
                   "nan_reasons", "delays"):
            continue
        summary[key] = jsonable(value, 4)
    if bitrate_bps is not None:
        summary["bitrate_bps"] = jsonable(float(bitrate_bps), 1)
    if "bitrate_bps" in res:
        summary["bitrate_bps_measured"] = round(res["bitrate_bps"], 1)
    summary.update(n_clips=res["n_clips"], n_failed=res["n_failed"], delays=res["delays"],
                   nan_reasons=res["nan_reasons"],
                   skipped=[list(x) for x in res["failed"]], **extra)
    print(f"system        {system}")
    print(f"data          {summary['data']}: {res['n_clips']} clips scored, "
          f"{res['n_failed']} skipped")
    for path, reason in res["failed"]:
        print(f"  skipped     {path}: {reason}")
    for why, count in res["nan_reasons"].items():
        print(f"  NaN         {why}: {count} clip(s)")
    print_scores(res)
    return summary


_LABELS = {"pesq_wb": "PESQ-WB", "visqol": "ViSQOL", "logmel_l1": "log-mel L1",
           "stoi": "STOI", "dnsmos_sig": "DNSMOS SIG", "dnsmos_bak": "DNSMOS BAK",
           "dnsmos_ovrl": "DNSMOS OVRL"}


def print_scores(res: Mapping[str, Any]) -> None:
    """Print each score of a summary with its 95 % interval (and the original's DNSMOS).

    Notebook: notebooks/02_vq_vae.ipynb
    """
    for name, label in _LABELS.items():
        if name not in res:
            continue
        lo, hi = res.get(f"{name}_ci95", [None, None])
        ci = f"[{lo:.3f}, {hi:.3f}]" if lo is not None and hi is not None else ""
        value = res[name]
        text = "nan" if value is None or (isinstance(value, float) and math.isnan(value)) \
            else f"{value:.4f}" if name == "logmel_l1" else f"{value:.3f}"
        line = f"{label:<13} {text:>7}  {ci}"
        if f"{name}_original" in res and res[f"{name}_original"] is not None:
            orig = res[f"{name}_original"]
            line += f"   (originals: {orig:.3f})" if not math.isnan(orig) else ""
        if name == "stoi":
            line += f"   ({STOI_CAVEAT})"
        print(line)


def rows_json(rows: Sequence[Mapping[str, Any]], digits: int = 5) -> str:
    """Per-clip rows as JSON, one row per line, floats rounded (``null`` for NaN).

    Notebook: notebooks/02_vq_vae.ipynb
    """
    return "[\n" + ",\n".join(json.dumps(jsonable(r, digits)) for r in rows) + "\n]\n"


def jsonable(obj: Any, digits: int | None = None) -> Any:
    """``obj`` with NaN as ``null`` (and floats rounded to ``digits``), ready for JSON.

    Notebook: notebooks/02_vq_vae.ipynb
    """
    if isinstance(obj, float):
        return None if math.isnan(obj) else obj if digits is None else round(obj, digits)
    if isinstance(obj, Mapping):
        return {str(k): jsonable(v, digits) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [jsonable(v, digits) for v in obj]
    if isinstance(obj, np.generic):
        return jsonable(obj.item(), digits)
    return obj


# --------------------------------------------------------------------------------------------
# Command lines
# --------------------------------------------------------------------------------------------


def add_clip_scoring_arguments(p: argparse.ArgumentParser, model: str | None) -> None:
    """The options every "system on clips" evaluation shares.

    ``checkpoint`` (when ``model`` is given), ``data_dir``, ``--split``, ``--limit``,
    ``--every``, ``--no-stoi``, ``--no-second-opinions``, ``--json``, ``--per-clip``,
    ``--device``, ``--no-progress`` (checked by :func:`clip_files`).

    Notebook: notebooks/02_vq_vae.ipynb
    """
    if model is not None:
        p.add_argument("checkpoint", help=f"{model} checkpoint (.pt)")
    p.add_argument("data_dir", help="folder searched recursively for .wav/.flac (or one file)")
    p.add_argument("--split", choices=["train", "validation", "testing"], default=None,
                   help="only the clips of this split (Speech Commands rule)")
    p.add_argument("--limit", type=options.COUNT,
                   default=None, help="evaluate the first N files only")
    p.add_argument("--every", type=options.COUNT, default=None,
                   help="evaluate every K-th file only (an even sample of a sorted folder)")
    p.add_argument("--no-stoi", action="store_true")
    p.add_argument("--no-second-opinions", action="store_true",
                   help="skip ViSQOL and DNSMOS (PESQ-WB, log-mel L1 and STOI only)")
    p.add_argument("--dnsmos-originals", action="store_true",
                   help="also judge the original recordings with DNSMOS (the same for every "
                        "system on a folder: measure it once)")
    p.add_argument("--json", action="store_true", help="end with one JSON line")
    p.add_argument("--per-clip", type=Path, default=None, help="write per-clip rows (JSON)")
    p.add_argument("--device", default="auto", help="auto (CUDA when present), cpu or cuda")
    p.add_argument("--no-progress", action="store_true")


def check_per_clip(path: Path | None) -> None:
    """Refuse a ``--per-clip`` path that cannot be written, before any clip is scored.

    Notebook: notebooks/02_vq_vae.ipynb
    """
    if path is None:
        return
    if path.is_dir():
        raise OptionError("--per-clip", f"{path} is a folder; give a file name")
    writable_folder(path.resolve().parent, "--per-clip")


def clip_files(a: argparse.Namespace) -> list[Path]:
    """Check the files and paths of :func:`add_clip_scoring_arguments` before anything loads
    (the numbers were checked by their declared ranges while parsing); the files.

    Notebook: notebooks/02_vq_vae.ipynb

    Args:
        a: The parsed options.

    Returns:
        The audio files to score (split, ``--every`` and ``--limit`` applied).
    """
    checkpoint = getattr(a, "checkpoint", None)
    if checkpoint is not None and checkpoint != "-" and not Path(checkpoint).is_file():
        raise OptionError(checkpoint, "checkpoint file not found")
    if not Path(a.data_dir).exists():
        raise OptionError(a.data_dir, "no such file or folder")
    check_per_clip(a.per_clip)
    files = find_audio(a.data_dir, a.split)[:: a.every or 1][: a.limit]
    if not files:
        raise OptionError(a.data_dir, "no .wav/.flac files here"
                          + (f" in split {a.split!r}" if a.split else ""))
    return files


def metrics_of(a: argparse.Namespace) -> tuple[str, ...]:
    """The scores the parsed options ask for (``--no-stoi``, ``--no-second-opinions``).

    Notebook: notebooks/02_vq_vae.ipynb
    """
    return metrics_for(with_stoi=not a.no_stoi,
                       second_opinions=not getattr(a, "no_second_opinions", False))
