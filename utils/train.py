"""Train a model: ``python -m utils.train TASK [options]``.

Every task trains through the one loop of :mod:`utils.training` (AdamW, warm-up + cosine,
exact resume, atomic ``last.pt`` / ``best.pt``, a JSON-lines log, ``--max-minutes``,
``--device auto|cpu|cuda``, DDP under ``torchrun --nproc_per_node N -m utils.train TASK ...``).
The shared options come first in ``--help``, then the task's own. Every option is checked
before any data loads; a refusal prints one line ``error: <option or file>: <reason>`` and
exits with status 2. Ctrl-C saves ``RUN/last.pt`` for the last completed step, prints one line
saying how to continue (``--resume``) and exits with status 130. The last line printed is one
JSON object: the final log record.

Examples::

    python -m utils.train codec --data data/speech_words --out runs/codec --steps 16000
    python -m utils.train words --arch lenet vgg --kind complex real ri --seeds 0 1 2 \\
        --epochs 10 --out data/pretrained/

Notebook: notebooks/02_vq_vae.ipynb
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import sys

from utils import options, tasks
from utils.errors import ProjectError, TrainingInterrupted
from utils.training import TrainConfig

__all__ = ["build_parser", "config_from_args", "main"]

_HELP = {
    "out": "run folder (checkpoints and log)",
    "steps": "total optimisation steps",
    "batch_size": "global batch (all processes)",
    "lr": "peak learning rate",
    "weight_decay": "AdamW weight decay",
    "warmup": "linear warm-up steps",
    "min_lr_ratio": "learning rate at the end of the cosine, as a share of --lr",
    "grad_clip": "clip the gradient norm (0: off)",
    "seed": "seed of the weights and of every batch",
    "log_every": "steps between log lines",
    "val_every": "steps between validations",
    "save_every": "steps between saves of last.pt",
    "max_minutes": "stop cleanly (and save) after this wall time",
    "stop_at": "stop (and save) after this step, e.g. to simulate an interruption",
    "resume": "continue from RUN/last.pt",
    "device": "auto (CUDA when present), cpu or cuda",
    "amp": "mixed precision (bfloat16) on CUDA",
    "threads": "torch intra-op threads (bit-exact resume needs the same number)",
    "progress": None,
    "save_rank_states": "also write RUN/rank<r>_final.pt on every process (DDP checks)",
}


#: The type and range of every shared option (a numeric one is a checked
#: :class:`utils.options.Number`, refused before any data loads).
_TYPES = {
    "out": str, "device": str,
    "steps": options.STEPS, "batch_size": options.Number(int, 1, 65_536),
    "lr": options.RATE, "weight_decay": options.WEIGHT, "warmup": options.COUNT0,
    "min_lr_ratio": options.SHARE, "grad_clip": options.WEIGHT, "seed": options.SEED,
    "log_every": options.COUNT, "val_every": options.COUNT, "save_every": options.COUNT,
    "max_minutes": options.MINUTES, "stop_at": options.STEPS,
    "threads": options.Number(int, 1, 1024),
}


def _add_config_arguments(p: argparse.ArgumentParser, defaults: dict, skip: tuple) -> None:
    group = p.add_argument_group("training (shared by every task)")
    for f in dataclasses.fields(TrainConfig):
        if f.name in skip or f.name == "progress":
            continue
        flag = "--" + f.name.replace("_", "-")
        default = defaults.get(f.name, f.default)
        if isinstance(f.default, bool):
            group.add_argument(flag, action="store_true", help=_HELP[f.name])
            continue
        kind = _TYPES[f.name]
        shown = "" if default is None or f.name == "out" else f" (default {default})"
        group.add_argument(flag, type=kind, default=default, required=f.name == "out",
                           help=_HELP[f.name] + shown)
    group.add_argument("--no-progress", action="store_true", help="no progress bar")


def build_parser() -> argparse.ArgumentParser:
    """The parser of ``python -m utils.train``: one sub-command per task.

    Notebook: notebooks/02_vq_vae.ipynb
    """
    p = options.Parser(prog="python -m utils.train", description=__doc__.split("\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = p.add_subparsers(dest="task", required=True, metavar="TASK", title="tasks")
    for name in tasks.TASKS:
        module = tasks.get(name)
        sp = sub.add_parser(name, help=module.SUMMARY, description=module.SUMMARY)
        _add_config_arguments(sp, module.TRAIN_DEFAULTS, getattr(module, "TRAIN_SKIP", ()))
        module.add_train_arguments(sp)
    return p


def config_from_args(args: argparse.Namespace, **changes) -> TrainConfig:
    """The :class:`~utils.training.TrainConfig` of parsed arguments (checked on creation).

    Notebook: notebooks/02_vq_vae.ipynb

    Raises:
        OptionError: An invalid value, naming the option.
    """
    values = {f.name: getattr(args, f.name) for f in dataclasses.fields(TrainConfig)
              if getattr(args, f.name, None) is not None}
    values["progress"] = not args.no_progress
    return TrainConfig(**{**values, **changes})


def main(argv: list[str] | None = None) -> int:
    """Entry point of ``python -m utils.train``.

    Notebook: notebooks/02_vq_vae.ipynb

    Args:
        argv: The arguments (``None``: the command line's).

    Returns:
        The exit status: 0, 2 for a refusal, 130 for Ctrl-C (as a shell reports SIGINT).
    """
    try:
        args = build_parser().parse_args(argv)
    except SystemExit as exc:  # a refusal (one line, printed) or --help
        return int(exc.code or 0)
    module = tasks.get(args.task)
    try:
        record = module.train_command(args, config_from_args(args))
    except ProjectError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except TrainingInterrupted as exc:  # Ctrl-C in the loop: last.pt saved
        print(exc.reason, file=sys.stderr)
        return 130
    except KeyboardInterrupt:  # Ctrl-C before or after the loop (loading data, exporting)
        print("interrupted", file=sys.stderr)
        return 130
    if int(os.environ.get("RANK", 0)) == 0:
        print(tasks.json_line(record))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
