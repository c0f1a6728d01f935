"""The command lines of the word classifiers: ``python -m utils.train words`` trains every
(arch, kind, seed) through the one loop, exports each and prints the comparison;
``python -m utils.evaluate words`` measures saved classifiers on any folder.

Notebook: notebooks/06_complex_networks.ipynb
"""

from __future__ import annotations

import argparse
import dataclasses
from dataclasses import asdict
from pathlib import Path
from typing import Any

import numpy as np

from utils import options
from utils.checkpoint import writable_folder
from utils.errors import OptionError
from utils.models.complex_cnn import count_parameters
from utils.tasks.words.checkpoints import checkpoint_name, load_model, save_model
from utils.tasks.words.classifiers import ARCHS, WordsConfig
from utils.tasks.words.features import KINDS, WORD_FEATURES, WordData, load_words
from utils.tasks.words.study import _fmt, _history, evaluate_checkpoints, run_records, summarize
from utils.tasks.words.task import WordsTask
from utils.training import TrainConfig, train

__all__ = ["SUMMARY", "TRAIN_DEFAULTS", "DEFAULT_LR", "add_train_arguments", "train_command",
           "add_eval_arguments", "evaluate_command"]

#: Default peak learning rate per architecture (LeNet has no batch norm and learns slower).
DEFAULT_LR = {"lenet": 1e-2, "vgg": 5e-3}

#: One line for ``--help``.
SUMMARY = "spoken words from the complex STFT: complex LeNet / VGG against real twins"

#: The word classifiers' defaults of the shared training settings (the schedule's length and
#: the log / validation / save intervals are set per epoch by :func:`train_command`).
TRAIN_DEFAULTS = dict(batch_size=32, lr=None, weight_decay=1e-2, warmup=None, min_lr_ratio=0.0,
                      grad_clip=5.0, log_every=None, val_every=None, save_every=None, threads=1)
#: Shared options this task does not take (``--epochs`` and ``--seeds`` replace them).
TRAIN_SKIP = ("steps", "seed")


def add_train_arguments(p: argparse.ArgumentParser) -> None:
    """The options of ``python -m utils.train words``.

    Notebook: notebooks/06_complex_networks.ipynb
    """
    g = p.add_argument_group("words")
    g.add_argument("--arch", nargs="+", choices=ARCHS, default=["lenet"])
    g.add_argument("--kind", nargs="+", choices=KINDS, default=list(KINDS))
    g.add_argument("--seeds", nargs="+", type=options.SEED, default=[0, 1, 2])
    g.add_argument("--epochs", type=options.Number(int, 1, 100_000), default=10)
    g.add_argument("--data", default="data/speech_words",
                   help="Speech Commands-layout folder with train/validation/testing lists")
    g.add_argument("--lenet-width", type=options.WIDTH, default=0.5, help="ComplexLeNet width")
    g.add_argument("--vgg-width", type=options.WIDTH,
                   default=4, help="ComplexVGG first-block width")
    g.add_argument("--vgg", default="vgg11", help="VGG configuration")
    g.add_argument("--dropout", type=options.Number(float, 0.0, 0.99),
                   default=0.25, help="VGG classifier dropout")
    g.add_argument("--max-shift", type=options.COUNT0, default=6, help="random time shift, frames")
    g.add_argument("--real-dir", default=None,
                   help="folder of real recordings to evaluate too, e.g. "
                        "../shared/speech/one_speaker_words")


def train_command(args: argparse.Namespace, cfg: TrainConfig) -> dict[str, Any]:
    """Run ``python -m utils.train words``: every (arch, kind, seed) through the one loop.

    Each run lives in ``OUT/runs/<name>/`` (``last.pt``, ``best.pt``, ``log.jsonl``; resumable);
    its best weights are exported as ``OUT/<name>.pt`` in float16 and measured as stored.

    Notebook: notebooks/06_complex_networks.ipynb

    Returns:
        ``{"test": rows, "real": rows, "epochs", "seeds"}`` (rows of :func:`summarize`).
    """
    _check_train_options(args)  # every option, before the data loads
    out = writable_folder(cfg.out)
    train_set, val_set, test_set, real_set = _load_sets(args)
    saved = [_train_and_export(args, cfg, out, train_set, val_set, arch, kind, seed)
             for arch in args.arch for kind in args.kind for seed in args.seeds]
    return _compare(args, cfg, saved, test_set, real_set)


def _check_train_options(args: argparse.Namespace) -> None:
    """Refuse a bad option of ``train words`` before any data loads."""
    for arch in args.arch:  # builds (and so checks) each configuration
        WordsConfig(arch, args.kind[0], (), args.lenet_width if arch == "lenet"
                    else args.vgg_width, args.vgg, args.dropout)
    for option, folder in (("--data", args.data), ("--real-dir", args.real_dir)):
        if folder is not None and not Path(folder).is_dir():
            raise OptionError(option, f"no such folder: {folder}")


def _load_sets(args: argparse.Namespace
               ) -> tuple[WordData, WordData, WordData, WordData | None]:
    """The training, validation and test splits of ``--data``, and the real recordings of
    ``--real-dir`` whose words are among the classes (``None`` without any)."""
    train_set = load_words(args.data, "train")
    words = train_set.words
    val_set = load_words(args.data, "validation", classes=words)
    test_set = load_words(args.data, "testing", classes=words)
    real_set = None
    if args.real_dir is not None:
        shared = [d.name for d in sorted(Path(args.real_dir).iterdir())
                  if d.is_dir() and d.name in words]
        if shared:
            real_set = load_words(args.real_dir, None, words=shared, classes=words)
    return train_set, val_set, test_set, real_set


def _train_and_export(args: argparse.Namespace, cfg: TrainConfig, out: Path, train_set: WordData,
                      val_set: WordData, arch: str, kind: str, seed: int) -> Path:
    """Train one classifier of the comparison in ``OUT/runs/<name>/`` (resumable), and export
    its best weights in float16 as ``OUT/<name>.pt`` with the run's history."""
    width = args.lenet_width if arch == "lenet" else args.vgg_width
    config = WordsConfig(arch, kind, tuple(train_set.words), width, args.vgg, args.dropout)
    task = WordsTask(config, train_set, val_set, max_shift=args.max_shift)
    per_epoch = task.steps_per_epoch(cfg.batch_size)
    steps = args.epochs * per_epoch
    name = checkpoint_name(arch, kind, seed).removesuffix(".pt")
    run = dataclasses.replace(
        cfg, out=str(out / "runs" / name), steps=steps, seed=seed,
        lr=args.lr if args.lr is not None else DEFAULT_LR[arch],
        warmup=args.warmup if args.warmup is not None else round(0.05 * steps),
        log_every=args.log_every or per_epoch, val_every=args.val_every or per_epoch,
        save_every=args.save_every or per_epoch)
    result = train(task, run)
    model, _ = load_model(Path(run.out) / "best.pt")
    # the whole run's log: a resumed run extends the history, never replaces it
    # (less the extra records of a stop at --stop-at / --max-minutes)
    records = [r for r in run_records(Path(run.out) / "log.jsonl")
               if r["step"] == steps
               or r["step"] % (run.log_every if "loss" in r else run.val_every) == 0]
    history = {**_history(records), "epochs": args.epochs, "steps": steps,
               "seconds": round(result.elapsed_s, 1)}
    info = {"seed": seed, "epochs": args.epochs, "batch_size": run.batch_size,
            "lr": run.lr, "weight_decay": run.weight_decay,
            "max_shift": args.max_shift, "data": Path(args.data).name,
            "features": asdict(WORD_FEATURES)}
    path = save_model(model, {**task.model_config(), **info},
                      out / checkpoint_name(arch, kind, seed), history)
    print(f"{path.name}: {count_parameters(model)} params, best step "
          f"{history['best_step']}/{steps}, val {history['best_val_accuracy']:.3f}, "
          f"{history['seconds']:.1f} s", flush=True)
    return path


def _compare(args: argparse.Namespace, cfg: TrainConfig, saved: list[Path], test_set: WordData,
             real_set: WordData | None) -> dict[str, Any]:
    """The comparison table on the test split (and on the real recordings): the checkpoints
    measured as stored (float16 weights), not the models in memory."""
    rows = summarize(evaluate_checkpoints(saved, test_set, threads=cfg.threads))
    print("\ntest split (mean ± std over seeds)\narch   kind       params seeds  accuracy")
    print("\n".join(_fmt(rows)))
    result_rows: dict[str, Any] = {"test": rows, "epochs": args.epochs, "seeds": args.seeds}
    if real_set is not None:
        real_rows = summarize(evaluate_checkpoints(saved, real_set, threads=cfg.threads))
        print(f"\nreal recordings ({len(real_set.y)} clips, {len(test_set.words)}-way "
              "predictions)")
        print("\n".join(_fmt(real_rows)))
        result_rows["real"] = real_rows
    return result_rows


def add_eval_arguments(p: argparse.ArgumentParser) -> None:
    """The options of ``python -m utils.evaluate words``.

    Notebook: notebooks/06_complex_networks.ipynb
    """
    p.add_argument("checkpoints", nargs="+", help="word classifier checkpoints (.pt)")
    p.add_argument("data_dir", help="Speech Commands-layout folder")
    p.add_argument("--split", choices=["train", "validation", "testing"], default=None,
                   help="only the clips of this split (default: every clip)")
    p.add_argument("--words", nargs="+", default=None,
                   help="word folders to read (default: those among the models' classes)")
    p.add_argument("--threads", type=options.Number(int, 1, 1024),
                   default=None, help="torch intra-op threads")
    p.add_argument("--json", action="store_true", help="end with one JSON line")


def evaluate_command(a: argparse.Namespace) -> dict[str, Any]:
    """Run ``python -m utils.evaluate words``: accuracy of each checkpoint, mean ± std.

    Notebook: notebooks/06_complex_networks.ipynb

    Returns:
        ``{"accuracy" (mean over checkpoints), "n_clips", "n_failed", "summary", "models"}``.
    """
    missing = [c for c in a.checkpoints if not Path(c).is_file()]
    if missing:
        raise OptionError(missing[0], "checkpoint file not found")
    if not Path(a.data_dir).is_dir():
        raise OptionError(a.data_dir, "no such folder")
    classes = list(load_model(a.checkpoints[0])[1]["config"]["words"])
    folders = [d.name for d in sorted(Path(a.data_dir).iterdir()) if d.is_dir()]
    words = a.words or [w for w in folders if w in classes]
    if not words:
        raise OptionError(a.data_dir, f"no folder of the models' words {classes}")
    try:
        data = load_words(a.data_dir, a.split, words=words, classes=classes)
    except OptionError:
        raise
    except ValueError as exc:
        raise OptionError(a.data_dir, str(exc)) from None
    records = evaluate_checkpoints(a.checkpoints, data, threads=a.threads)
    rows = summarize(records)
    print(f"data   {a.data_dir}" + (f" [{a.split}]" if a.split else "")
          + f": {len(data.y)} clips, {len(data.failed)} unreadable")
    for path, reason in data.failed:
        print(f"  skipped {path}: {reason}")
    print("arch   kind       params seeds  accuracy")
    print("\n".join(_fmt(rows)))
    return {"accuracy": float(np.mean([r["accuracy"] for r in records])),
            "n_clips": len(data.y), "n_failed": len(data.failed), "summary": rows,
            "models": [{k: v for k, v in r.items() if k != "confusion"} for r in records]}
