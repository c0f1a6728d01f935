"""Every numeric option of every command is declared with a range and refused, before any data
loads, when it is NaN, infinite, zero, negative or huge and its range says no (issue: options
that accepted NaN / inf / 0 / negative / huge values, or crashed instead of refusing)."""

from __future__ import annotations

import argparse
import dataclasses
import math

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from utils import options
from utils.errors import OptionError
from utils.training import override

HOSTILE = ["nan", "NaN", "inf", "-inf", "0", "-0", "-1", "-1e-9", "1e12", "-1e12", "1e400"]


def _parsers() -> dict[str, argparse.ArgumentParser]:
    from utils import evaluate, site, train

    return {"train": train.build_parser(), "evaluate": evaluate.build_parser(),
            "site": site.build_parser()}


def _subparser(parser: argparse.ArgumentParser, prog: str) -> argparse.ArgumentParser:
    if parser.prog == prog:
        return parser
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for sub in action.choices.values():
                if sub.prog == prog:
                    return sub
    raise KeyError(prog)


def _minimal_argv(sub: argparse.ArgumentParser) -> list[str]:
    """The sub-command's required arguments, each given a placeholder value."""
    argv: list[str] = []
    for action in sub._actions:
        if action.option_strings and not action.required:
            continue
        if isinstance(action, (argparse._HelpAction, argparse._SubParsersAction)):
            continue
        value = ["1"] if isinstance(action.type, options.Number) else ["x"]
        n = action.nargs if isinstance(action.nargs, int) else 1
        argv += ([max(action.option_strings, key=len)] if action.option_strings else []) + value * n
    return argv


def _all_options():
    out = []
    for command, parser in _parsers().items():
        for prog, flag, action in options.numeric_options(parser):
            out.append((command, prog, flag, action))
    return out


ALL = _all_options()
IDS = [f"{prog.split()[-1]}{flag}" if prog.split()[-1] != flag else prog
       for _, prog, flag, _ in ALL]


def test_every_numeric_option_of_every_command_declares_its_range():
    assert len(ALL) >= 40  # train (shared and per task), evaluate, site
    undeclared = [f"{prog} {flag}" for _, prog, flag, a in ALL
                  if not isinstance(a.type, options.Number)]
    assert not undeclared
    for _, prog, flag, a in ALL:
        number = a.type
        assert not number.accepts(math.nan) and not number.accepts(math.inf)
        assert not number.accepts(1e12), f"{prog} {flag} has no ceiling"


def test_an_undeclared_numeric_option_cannot_be_added():
    p = options.Parser(prog="demo")
    p.add_argument("--rate", type=float, default=1.0)
    with pytest.raises(TypeError, match="--rate"):
        p.parse_args([])
    sub = options.Parser(prog="demo2").add_subparsers(dest="task")
    sub.add_parser("x").add_argument("--n", type=int)
    with pytest.raises(TypeError, match="--n"):
        sub._name_parser_map["x"].parse_args([])


@pytest.mark.parametrize("command,prog,flag,action", ALL, ids=IDS)
@settings(max_examples=12, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(text=st.one_of(st.sampled_from(HOSTILE),
                      st.floats(allow_nan=True, allow_infinity=True).map(repr),
                      st.integers(min_value=-10**15, max_value=10**15).map(str)))
def test_hostile_numbers_are_refused_in_one_line_before_anything_loads(
        command, prog, flag, action, text, capsys, monkeypatch):
    from utils import data

    def no_data(*args, **kwargs):
        raise AssertionError("data loaded before the options were checked")

    monkeypatch.setattr(data, "find_clips", no_data)
    parser = _parsers()[command]
    sub = _subparser(parser, prog)
    argv = prog.split()[3:] if command != "site" else []  # "python -m utils.train codec" → codec
    argv += [a for a in _minimal_argv(sub) if a != flag] if flag.startswith("--") else []
    n = action.nargs if isinstance(action.nargs, int) else 1
    if flag.startswith("--"):
        argv += [f"{flag}={text}"] if n == 1 else [flag] + [text] * n
    else:  # a numeric positional: replace its placeholder
        argv = prog.split()[3:] + [text]
    number: options.Number = action.type
    try:
        value = float(text)
    except ValueError:
        value = math.nan
    ok = number.accepts(value) and (number.kind is float or value == int(value))
    capsys.readouterr()
    if ok:
        if n > 1 and text.startswith("-") and not parser._negative_number_matcher.match(text):
            return  # argparse reads "-1e-9" as an option there: said by its own error
        ns = parser.parse_args(argv)
        got = getattr(ns, action.dest)
        got = got[0] if isinstance(got, list) else got
        assert math.isfinite(got) and number.accepts(got)
        return
    with pytest.raises(SystemExit) as exit_:
        parser.parse_args(argv)
    assert exit_.value.code == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith(f"error: {flag}: "), err
    if n == 1 or not text.startswith("-"):  # "--snr -inf -inf" reads as another option
        assert err[0].startswith(f"error: {flag}: must be "), err


def _configs():
    """Every model configuration a command takes ``--set KEY=VALUE`` for."""
    from utils.models.degli import DeGLIConfig
    from utils.models.vocoder import VocoderConfig
    from utils.models.vqvae import VQVAEConfig
    from utils.tasks.enhance import EnhanceConfig
    from utils.tasks.prior import PriorConfig
    from utils.tasks.vae import VAEConfig
    from utils.tasks.wavenet import WaveNetConfig

    return [VQVAEConfig, DeGLIConfig, EnhanceConfig, PriorConfig, VAEConfig, VocoderConfig,
            WaveNetConfig]


NUMERIC_FIELDS = [(c, f.name) for c in _configs() for f in dataclasses.fields(c)
                  if isinstance(getattr(c(), f.name), (int, float))
                  and not isinstance(getattr(c(), f.name), bool)]


@pytest.mark.parametrize("config,key", NUMERIC_FIELDS,
                         ids=[f"{c.__name__}.{k}" for c, k in NUMERIC_FIELDS])
@pytest.mark.parametrize("text", ["nan", "inf", "-inf", "1e12", "-1e12"])
def test_set_refuses_non_finite_and_huge_hyper_parameters(config, key, text):
    with pytest.raises(OptionError, match=f"--set {key}="):
        override(config(), [f"{key}={text}"])
