"""One command-line convention: help everywhere, shared options defined once, lists one way, errors that
name only options that exist, developer benchmarks under `rdfer bench`, old spellings with a note."""

import argparse
import ast
import re
from pathlib import Path

import pytest

import rdfer
from rdfer.cli import build_parser, main
from rdfer.cli import options as shared

SRC = Path(rdfer.__file__).parent


def commands(parser=None, prefix=()):
    """(name words, parser) of every command and subcommand, the deprecated aliases left out."""
    parser = parser or build_parser()
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, sub in action.choices.items():
                if sub.get_default("deprecated_alias"):
                    continue
                yield (*prefix, name), sub
                yield from commands(sub, (*prefix, name))


def options_of(parser):
    return [a for a in parser._actions if not isinstance(a, (argparse._HelpAction, argparse._SubParsersAction))]


def test_every_command_has_a_description_and_every_option_help():
    missing = []
    for name, parser in commands():
        if not parser.description:
            missing.append(f"rdfer {' '.join(name)}: no description")
        for action in options_of(parser):
            if not action.help:
                missing.append(f"rdfer {' '.join(name)} {'/'.join(action.option_strings) or action.dest}: no help")
    assert not missing, "\n".join(missing)
    listed = build_parser()._subparsers._group_actions[0]._choices_actions  # the commands `rdfer --help` lists
    assert all(choice.help for choice in listed) and "bench" in {choice.dest for choice in listed}


@pytest.mark.parametrize("flag, parent", [("--device", shared.DEVICE), ("--threads", shared.THREADS),
                                          ("--no-progress", shared.PROGRESS), ("--set", shared.OVERRIDES)])
def test_shared_options_are_the_one_definition(flag, parent):
    """Every command's --device (--threads, --no-progress, --set) is the shared parent's action itself."""
    (definition,) = [a for a in parent._actions if flag in a.option_strings]
    users = [name for name, parser in commands() for a in options_of(parser) if flag in a.option_strings]
    assert len(users) >= 3
    for name, parser in commands():
        for action in options_of(parser):
            if flag in action.option_strings:
                assert action is definition, f"rdfer {' '.join(name)} defines its own {flag}"


def test_device_defaults_to_auto():
    from rdfer.cli.predict import _options

    assert _options(build_parser().parse_args(["predict", "x.mp4"])).device == "auto"
    assert _options(build_parser().parse_args(["predict", "x.mp4", "--device", "cpu"])).device == "cpu"
    args = build_parser().parse_args(["train", "--config", "demo", "--out", "r", "--device", "cpu", "--threads", "2"])
    assert shared.config_overrides(args)[-2:] == ("device=cpu", "threads=2")  # a config's own device otherwise
    assert shared.config_overrides(build_parser().parse_args(["train", "--config", "demo", "--out", "r"])) == ()


def test_out_is_required_where_it_has_no_default_and_help_says_so():
    for name, parser in commands():
        for action in options_of(parser):
            if "--out" in action.option_strings:
                said = "required" in action.help or "default" in action.help
                assert said, f"rdfer {' '.join(name)} --out: its help names neither (required) nor a default"
                assert action.required == ("(required)" in action.help), f"rdfer {' '.join(name)} --out"
    usage = dict(commands())[("train",)].format_usage()
    assert "(--out RUN | --resume RUN)" in usage  # train needs one of them, and usage shows it


def test_lists_are_comma_separated_and_the_option_may_repeat(capsys):
    parse = build_parser().parse_args
    assert parse(["cv", "--config", "c", "--out", "o"]).folds == (1, 2, 3, 4, 5)
    assert parse(["cv", "--config", "c", "--out", "o", "--folds", "1,2", "--folds", "4"]).folds == (1, 2, 4)
    assert parse(["study", "--out", "o", "--seeds", "3", "--seeds", "5,6"]).seeds == (3, 5, 6)
    assert main(["cv", "--config", "c", "--out", "o", "--folds", "1,9"]) == 2
    assert "--folds 1,9: '9'" in capsys.readouterr().err


def option_names() -> set:
    return {flag for _, parser in commands() for action in options_of(parser) for flag in action.option_strings}


# Options of other programs that rdfer's messages and docstrings name.
OTHER_PROGRAMS = {"--nproc_per_node": "torchrun", "--logdir": "tensorboard", "--help": "argparse", "--no-deps": "pip",
                  "--degrade": "python -m rdfer.inference.trust_check",
                  "--normalise": "an ASCII arrow (--normalise-->) in a diagram"}
OWN_PARSERS = {"inference/trust_check.py"}  # a developer script with its own argparse options


def test_messages_name_only_options_that_exist():
    """Every `--option` written in rdfer's source (errors, notes, help, docstrings) is one the CLI has."""
    known = option_names() | set(OTHER_PROGRAMS)
    unknown = []
    for path in sorted(SRC.rglob("*.py")):
        if str(path.relative_to(SRC)) in OWN_PARSERS:
            continue
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Constant) and isinstance(node.value, str):
                for flag in re.findall(r"(?<![\w-])--[a-z][a-z0-9_]*(?:-[a-z0-9_]+)*", node.value):
                    if flag not in known:
                        unknown.append(f"{path.relative_to(SRC)}:{node.lineno}: {flag}")
    assert not unknown, "\n".join(unknown)


def test_bench_train_takes_model_options_by_set_and_the_old_spelling_with_a_note(monkeypatch, capsys):
    calls = []
    monkeypatch.setattr("rdfer.engine.bench.bench_train", lambda model, options, **kw: calls.append(options))
    assert main(["bench", "train", "--set", "model.options.resample=false", "--steps", "1"]) == 0
    assert calls[-1] == {"resample": False} and "deprecated" not in capsys.readouterr().err
    assert main(["bench-train", "--option", "resample=false", "--steps", "1"]) == 0
    assert calls[-1] == {"resample": False}
    err = capsys.readouterr().err
    assert "`rdfer bench-train` is deprecated" in err and "use `rdfer bench train`" in err
    assert "--set model.options.KEY=VALUE" in err
    assert main(["bench", "train", "--set", "optim.lr=1"]) == 2
    assert "bench train takes only model options" in capsys.readouterr().err


@pytest.mark.parametrize("old, new, rest", [("bench-data", "bench data", ["--dataset", "dfew", "--root", "{tmp}"]),
                                            ("bench-predict", "bench predict", ["{tmp}/none.mp4"])])
def test_old_bench_names_still_run_with_a_one_line_note(old, new, rest, tmp_path, capsys):
    """The old name runs the same command (here it stops at the missing input, as the new name does)."""
    rest = [arg.replace("{tmp}", str(tmp_path / "missing")) for arg in rest]
    assert main([old, *rest]) == 2
    note, error = capsys.readouterr().err.splitlines()
    assert note == f"note: `rdfer {old}` is deprecated and will be removed; use `rdfer {new}`"
    assert main([*new.split(), *rest]) == 2
    assert capsys.readouterr().err.splitlines() == [error.replace(old, new)]


def test_a_failed_train_leaves_no_empty_runs_folder(tmp_path, capsys):
    out = tmp_path / "runs" / "first"
    assert main(["train", "--config", "demo", "--out", str(out), "--set", f"data.root={tmp_path / 'nowhere'}",
                 "--no-progress"]) == 2
    assert "nowhere" in capsys.readouterr().err
    assert not (tmp_path / "runs").exists()
