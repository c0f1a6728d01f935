"""Command-line options with declared ranges: the one place every numeric option is checked.

Every number a command of the collection accepts (``python -m utils.train``,
``python -m utils.evaluate``, ``python -m utils.export``, the benchmarks) is parsed by a
:class:`Number`: a type that knows its range, refuses NaN, infinity and values outside the
range while the command line is parsed, so the refusal comes before any data loads. The
commands build their parsers with :class:`Parser`, which

* refuses, when the parser is used, a numeric option declared with a bare ``type=int`` or
  ``type=float`` (so a new option cannot skip the check), and
* prints a refusal as the collection's one line, ``error: --lr: must be a finite number > 0,
  got 'nan'``, and exits with status 2, as every other refusal of the collection does.

The named ranges below are the catalogue the commands draw from; a test walks every command's
options and feeds each numeric one NaN, infinity, zero, negative and huge values.

Notebook: notebooks/02_vq_vae.ipynb
"""

from __future__ import annotations

import argparse
import math
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from typing import NoReturn

from utils.errors import OptionError

__all__ = ["Number", "Parser", "numeric_options", "check_size", "COUNT", "COUNT0", "SEED", "STEPS",
           "RATE", "WEIGHT", "SHARE", "MINUTES", "DECIBELS", "KBPS", "BITRATE", "WIDTH",
           "HUGE"]

#: The largest value any option accepts: larger is a typo (and would overflow somewhere).
HUGE = 1e9


@dataclass(frozen=True)
class Number:
    """An ``argparse`` type: a finite ``int`` or ``float`` within ``[low, high]``.

    Notebook: notebooks/02_vq_vae.ipynb

    Attributes:
        kind: ``int`` or ``float``.
        low: Smallest value accepted.
        high: Largest value accepted (finite: every option has a ceiling).
        low_open: ``low`` itself is refused (``> low`` rather than ``≥ low``).
    """

    kind: type
    low: float
    high: float = HUGE
    low_open: bool = False

    def __post_init__(self) -> None:
        if self.kind not in (int, float):
            raise TypeError(f"Number takes int or float, not {self.kind!r}")
        if not (math.isfinite(self.low) and math.isfinite(self.high) and self.low <= self.high):
            raise ValueError(f"Number needs a finite range, got [{self.low}, {self.high}]")

    @property
    def __name__(self) -> str:  # argparse names the type in some messages
        return self.kind.__name__

    def describe(self) -> str:
        """The range in words: ``"a whole number in [1, 1000000000]"``.

        Notebook: notebooks/02_vq_vae.ipynb
        """
        what = "a whole number" if self.kind is int else "a finite number"
        left = "(" if self.low_open else "["
        if self.kind is int:
            return f"{what} in {left}{int(self.low)}, {int(self.high)}]"
        return f"{what} in {left}{self.low:g}, {self.high:g}]"

    def accepts(self, value: float) -> bool:
        """Whether a parsed value lies in the range (NaN and infinity never do).

        Notebook: notebooks/02_vq_vae.ipynb
        """
        if not math.isfinite(value):
            return False
        above = value > self.low if self.low_open else value >= self.low
        return above and value <= self.high

    def __call__(self, text: str) -> int | float:
        """Parse one command-line string.

        Raises:
            argparse.ArgumentTypeError: Not a number of this kind, or outside the range.
        """
        try:
            value = float(text)
        except (TypeError, ValueError):
            raise argparse.ArgumentTypeError(f"must be {self.describe()}, got {text!r}") from None
        if self.kind is int:
            if not math.isfinite(value) or value != int(value):
                raise argparse.ArgumentTypeError(f"must be {self.describe()}, got {text!r}")
            value = int(value)
        if not self.accepts(value):
            raise argparse.ArgumentTypeError(f"must be {self.describe()}, got {text!r}")
        return value


# The catalogue. Each command draws its numeric options from here (or declares its own Number).
#: A count of at least one (steps between logs, clips, crops, frames, iterations).
COUNT = Number(int, 1)
#: A count that may be zero.
COUNT0 = Number(int, 0)
#: A random seed.
SEED = Number(int, 0, 2**31 - 1)
#: Optimisation steps.
STEPS = Number(int, 1)
#: A learning rate (> 0, at most 10).
RATE = Number(float, 0.0, 10.0, low_open=True)
#: A non-negative weight of a loss term or a regulariser (0 switches it off).
WEIGHT = Number(float, 0.0, 1e6)
#: A share in [0, 1].
SHARE = Number(float, 0.0, 1.0)
#: Wall time in minutes (> 0, at most a year).
MINUTES = Number(float, 0.0, 525_600.0, low_open=True)
#: A level in dB (a signal-to-noise ratio), within what a recording can mean.
DECIBELS = Number(float, -100.0, 100.0)
#: A bit rate in kbit/s (> 0).
KBPS = Number(float, 0.0, 10_000.0, low_open=True)
#: A bit budget in bit/s (> 0).
BITRATE = Number(float, 0.0, 10_000_000.0, low_open=True)
#: A width multiplier of a network (> 0, at most 1024).
WIDTH = Number(float, 0.0, 1024.0, low_open=True)


def check_size(option: str, value: object) -> None:
    """Refuse a number (not a ``bool``) that is NaN, infinite or larger in size than
    :data:`HUGE`: no hyper-parameter of the collection can be one.

    Notebook: notebooks/02_vq_vae.ipynb

    Raises:
        OptionError: Naming ``option`` and the value.
    """
    if isinstance(value, (int, float)) and not isinstance(value, bool) and not (
            math.isfinite(value) and abs(value) <= HUGE):
        raise OptionError(option, f"must be a finite number of at most {HUGE:g} in size, "
                                  f"got {value}")


class Parser(argparse.ArgumentParser):
    """``argparse.ArgumentParser`` that refuses undeclared numeric options and reports a bad
    value as the collection's one line ``error: OPTION: REASON`` (exit status 2).

    Sub-command parsers made by :meth:`add_subparsers` are :class:`Parser` too.

    Notebook: notebooks/02_vq_vae.ipynb
    """

    def add_subparsers(self, **kwargs):  # noqa: D102 - argparse's
        kwargs.setdefault("parser_class", type(self))
        return super().add_subparsers(**kwargs)

    def parse_known_args(self, args=None, namespace=None):  # noqa: D102 - argparse's
        undeclared = [f"{prog} {flag}" for prog, flag, action in numeric_options(self)
                      if not isinstance(action.type, Number)]
        if undeclared:
            raise TypeError("numeric options without a declared range (use "
                            f"utils.options.Number): {', '.join(undeclared)}")
        return super().parse_known_args(args, namespace)

    def error(self, message: str) -> NoReturn:
        """Print ``error: MESSAGE (see --help)`` on one line and exit with status 2."""
        if message.startswith("argument "):
            message = message[len("argument "):]
        flag, sep, reason = message.partition(": ")
        flag = flag.split("/")[-1]  # "-s/--steps" → "--steps"
        line = f"{flag}: {reason}" if sep else message
        sys.stderr.write(f"error: {line} (see {self.prog} --help)\n")
        raise SystemExit(2)


def numeric_options(parser: argparse.ArgumentParser,
                    ) -> Iterator[tuple[str, str, argparse.Action]]:
    """Every option of a parser and of its sub-commands that takes a number.

    An option takes a number when its type is a :class:`Number`, ``int`` or ``float``.

    Notebook: notebooks/02_vq_vae.ipynb

    Yields:
        ``(prog, flag, action)``: the (sub-)command, the option's longest flag (or its
        positional name) and the ``argparse`` action.
    """
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for sub in dict.fromkeys(action.choices.values()):
                yield from numeric_options(sub)
            continue
        if isinstance(action.type, Number) or action.type in (int, float):
            flag = max(action.option_strings, key=len) if action.option_strings else action.dest
            yield parser.prog, flag, action
