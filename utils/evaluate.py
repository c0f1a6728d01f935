"""Measure a model: ``python -m utils.evaluate TASK [options]``.

Every option is checked before anything loads; a refusal prints one line
``error: <option or file>: <reason>`` and exits with status 2. Unreadable files are skipped,
listed and counted; a run in which no file could be used exits with status 1. With ``--json``
the last line printed is one JSON object (``null`` where a value is not a number), for the
codec with at least ``pesq_wb``, ``logmel_l1``, ``bitrate_bps``, ``n_clips`` and ``n_failed``.

Examples::

    python -m utils.evaluate codec data/pretrained/vqvae_speech.pt data/speech_words \\
        --split testing --max-bitrate 1300 --json
    python -m utils.evaluate codec - data/speech_words --split testing --baseline opus
    python -m utils.evaluate words data/pretrained/words_*.pt data/speech_words --split testing

Notebook: notebooks/02_vq_vae.ipynb
"""

from __future__ import annotations

import argparse
import sys

from utils import options, tasks
from utils.errors import ProjectError

__all__ = ["build_parser", "main"]


def build_parser() -> argparse.ArgumentParser:
    """The parser of ``python -m utils.evaluate``: one sub-command per task.

    Notebook: notebooks/02_vq_vae.ipynb
    """
    p = options.Parser(prog="python -m utils.evaluate",
                                description=__doc__.split("\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = p.add_subparsers(dest="task", required=True, metavar="TASK", title="tasks")
    for name in tasks.TASKS:
        module = tasks.get(name)
        sp = sub.add_parser(name, help=module.SUMMARY, description=module.SUMMARY)
        module.add_eval_arguments(sp)
    return p


def main(argv: list[str] | None = None) -> int:
    """Entry point of ``python -m utils.evaluate``.

    Notebook: notebooks/02_vq_vae.ipynb
    """
    try:
        args = build_parser().parse_args(argv)
    except SystemExit as exc:  # a refusal (one line, printed) or --help
        return int(exc.code or 0)
    try:
        summary = tasks.get(args.task).evaluate_command(args)
    except ProjectError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    if args.json:
        print(tasks.json_line(summary))
    if summary.get("n_clips", 1) == 0:
        print(f"error: {args.data_dir}: no file could be used "
              f"({summary.get('n_failed', 0)} unreadable)", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
