"""Every command checks all its settings before any work or output starts (rdfer.cli.preflight).

The commands are read from the CLI's parser, so a new command is covered (and
fails `test_every_command_has_a_good_invocation` until it gets one here). Each
bad setting must stop with exit status 2 and one line naming it, before the
command's function runs (it is replaced by a stub that records being called),
and the folder it was given gains no file. A control shows each good invocation
gets past the checks, so each refusal is due to the bad setting alone.
"""

import argparse
import os

import pytest

import rdfer.cli as cli
from rdfer.cli import build_parser, main

# A good invocation of every command ({data}: an existing folder, {file}: an existing file, {out}: a new folder).
GOOD = {
    "check-dataset": ["--dataset", "dfew", "--root", "{data}"],
    "pack": ["--dataset", "dfew", "--root", "{data}", "--out", "{out}/x.pack"],
    "synth": ["--out", "{out}"],
    "models": [],
    "train": ["--config", "demo", "--out", "{out}", "--set", "data.root={data}"],
    "eval": ["--checkpoint", "{file}", "--out", "{out}"],
    "cv": ["--config", "demo", "--out", "{out}", "--set", "data.root={data}"],
    "demo": ["--out", "{out}"],
    "report": ["{data}", "--out", "{out}"],
    "compare": ["{data}", "{data}", "--out", "{out}"],
    "predict": ["{file}", "--out", "{out}"],
    "export": ["--out", "{out}/model.onnx"],
    "audit": ["--config", "demo", "--out", "{out}", "--set", "data.root={data}"],
    "curate": ["--predictions", "{file}", "--out", "{out}"],
    "features": ["--config", "demo", "--out", "{out}/features.npz", "--set", "data.root={data}"],
    "study": ["--out", "{out}"],
    "app": ["--work", "{out}"],
    "bench data": ["--dataset", "dfew", "--root", "{data}"],
    "bench train": [],
    "bench predict": ["{file}"],
    "bench track": [],
}
GOOD.update({f"bench-{name}": GOOD[f"bench {name}"] for name in ("data", "train", "predict")})


def _commands(parser=None, prefix=()):
    """(command words, its parser) of every leaf command of the CLI."""
    parser = parser or build_parser()
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, sub in action.choices.items():
                yield from _commands(sub, (*prefix, name))
            return
    yield " ".join(prefix), parser


COMMANDS = dict(_commands())


def _numeric_options(parser):
    return [a for a in parser._actions if getattr(a.type, "limits", None) is not None and a.option_strings]


def _bad_settings():
    """(command, what is wrong, argv change, text the one line must hold) of every command."""
    for command, parser in COMMANDS.items():
        dests = {a.dest for a in parser._actions}
        for action in _numeric_options(parser):
            limits = action.type.limits
            value = limits.high * 10 + 1 if limits.high is not None else (limits.low or 0) - 10**9
            yield command, f"{action.option_strings[0]} out of range", [action.option_strings[0], str(value)], \
                action.option_strings[0]
        if "overrides" in dests and command not in ("bench train", "bench-train"):
            for item in ("optim.epochs=0", "optim.nosuch=1", "optim.batch_size=100000", "model.options.n1=1000",
                         "model.options.nosuch=1", "loss.strategy=typo"):
                yield command, f"--set {item}", ["--set", item], item.split("=")[0].split(".")[-1]
        if "overrides" in dests and command in ("bench train", "bench-train"):
            yield command, "--set model.options", ["--set", "model.options.input_size=5000"], "input_size"
        for dest, (label, kind) in (parser.get_default("must_exist") or {}).items():
            yield command, f"missing {label}", ("missing", dest, label), "missing-input"
        if parser.get_default("out_kind") == "folder":
            yield command, "--out is a file", ("out-file",), "is a file"


# Option combinations and values that only the command's own check can judge: (argv change, text of the refusal).
COMBINATIONS = {
    "train": [(["--resume", "{data}"], "--config cannot be used")],
    "cv": [(["--folds", "1,1"], "distinct fold numbers"), (["--set", "data.dataset=ferv39k"], "has none")],
    "curate": [(["--checkpoint", "{file}"], "either --predictions")],
    "predict": [(["--model-spec", "hsemotion-8"], "--model FILE.onnx"), (["--checkpoint", "{file}", "--model",
                                                                          "{file}"], "not both")],
    "study": [(["--strategies", "agreemnt"], "unknown agreemnt"), (["--settings", "symetric_20"], "symetric_20")],
    "bench track": [(["--kinds", "nosuch"], "nosuch")],
    "audit": [(["--ground-truth", "{file}"], "needs the columns")],
    "synth": [(["--clips", "3"], "too few")],
}


def _combinations():
    for command, cases in COMBINATIONS.items():
        for change, text in cases:
            yield command, " ".join(change), ("combination", *change), text


BAD = list(_bad_settings()) + list(_combinations())


def _argv(command, tmp_path):
    data, out = tmp_path / "data", tmp_path / "out"
    data.mkdir(exist_ok=True)
    (tmp_path / "file.bin").write_bytes(b"x")
    words = [w.replace("{data}", str(data)).replace("{out}", str(out)).replace("{file}", str(tmp_path / "file.bin"))
             for w in GOOD[command]]
    return [*command.split(), *words]


def _tree(root):
    return sorted(os.path.relpath(os.path.join(folder, name), root)
                  for folder, subfolders, files in os.walk(root) for name in files + subfolders)


@pytest.fixture
def stubbed(monkeypatch):
    """Every command's function replaced by a stub: returns the list of commands that got past the checks."""
    started = []
    real = cli.build_parser

    def parser():
        built = real()
        for command, leaf in dict(_commands(built)).items():
            leaf.set_defaults(func=lambda args, command=command: started.append(command) or 0)
        return built

    monkeypatch.setattr(cli, "build_parser", parser)
    return started


def test_every_command_has_a_good_invocation():
    assert sorted(set(COMMANDS) - set(GOOD)) == [], "give each new command a good invocation in GOOD"


@pytest.mark.parametrize("command", sorted(COMMANDS))
def test_the_good_invocation_passes_the_checks(command, tmp_path, stubbed, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    assert main(_argv(command, tmp_path)) == 0, capsys.readouterr().err
    assert stubbed == [command]


@pytest.mark.parametrize("command, what, change, names", BAD, ids=[f"{c}: {w}" for c, w, _, _ in BAD])
def test_a_bad_setting_stops_before_any_work(command, what, change, names, tmp_path, stubbed, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    argv = _argv(command, tmp_path)
    if change[0] == "missing":
        _, dest, label = change
        missing = str(tmp_path / "nowhere" / "missing-input")
        action = next(a for a in COMMANDS[command]._actions if a.dest == dest)
        if dest == "resume":  # --resume replaces --out and --config
            argv = [*command.split(), label, missing]
        elif action.option_strings:
            argv = [a for i, a in enumerate(argv) if a != label and (i == 0 or argv[i - 1] != label)]
            argv += [label, missing]
        else:  # a positional: the first given path stands for it
            argv = [missing if a.startswith(str(tmp_path)) and "out" not in a else a for a in argv]
            argv = argv if missing in argv else [*argv, missing]
        names = "missing-input"
    elif change[0] == "out-file":
        (tmp_path / "out").write_text("the user's notes\n")
    elif change[0] == "combination":
        extra = [a.replace("{data}", str(tmp_path / "data")).replace("{file}", str(tmp_path / "file.bin"))
                 for a in change[1:]]
        if "--resume" in extra:  # --resume replaces --out
            argv = [a for i, a in enumerate(argv) if a != "--out" and argv[i - 1] != "--out"]
        argv += extra
    else:
        argv += change
    before = _tree(tmp_path)
    code = main(argv)
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2, (argv, err)
    assert stubbed == [], f"{command} started before refusing {what}"
    assert len(err) == 1 and names in err[0], err
    assert _tree(tmp_path) == before, f"{command} wrote files before refusing {what}"
    if change[0] == "out-file":
        assert (tmp_path / "out").read_text() == "the user's notes\n"


def test_every_numeric_option_has_both_ends():
    """A number option without a maximum is unbounded work from one argument."""
    loose = [f"{command} {a.option_strings[0] if a.option_strings else a.dest}"
             for command, parser in COMMANDS.items() for a in parser._actions
             if getattr(a.type, "limits", None) is not None
             and (a.type.limits.low is None or a.type.limits.high is None)]
    assert loose == []


def test_a_list_option_takes_a_bounded_number_of_items(tmp_path, stubbed, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    seeds = ",".join(str(n) for n in range(500))
    assert main([*_argv("study", tmp_path), "--seeds", seeds]) == 2
    assert "--seeds: 500 items" in capsys.readouterr().err and stubbed == []


def test_a_study_grid_beyond_the_bound_is_refused(tmp_path, stubbed, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    seeds = ",".join(str(n) for n in range(100))  # 100 seeds x 3 settings x 12 strategies = 3600 runs
    assert main([*_argv("study", tmp_path), "--seeds", seeds]) == 2
    assert "3600 training runs" in capsys.readouterr().err and stubbed == []
    assert not (tmp_path / "out").exists()


PRODUCTS = {  # settings each within its range whose product is unbounded work -> text of the refusal
    "synth": (["--clips", "200000", "--size", "512"], "lower --clips or --size"),
    "bench data": (["--batch-size", "16000", "--frames", "1000", "--load-size", "2000"], "GiB of frames"),
    "bench train": (["--batch-size", "16000", "--set", "model.options.input_size=1000"], "GiB of frames"),
    "train": (["--set", "optim.batch_size=16000", "--set", "model.options.input_size=1000"], "GiB of frames"),
    "study": (["--seeds", ",".join(str(n) for n in range(100))], "3600 training runs"),
}


@pytest.mark.parametrize("command", sorted(PRODUCTS))
def test_a_product_of_settings_beyond_its_bound_stops_before_any_work(command, tmp_path, stubbed, monkeypatch,
                                                                      capsys):
    monkeypatch.chdir(tmp_path)
    change, text = PRODUCTS[command]
    argv = [*_argv(command, tmp_path), *change]
    before = _tree(tmp_path)
    assert main(argv) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and text in err[0], err
    assert stubbed == [] and _tree(tmp_path) == before


def test_no_option_shadows_what_a_command_declares_for_the_checks():
    """The checks read set_defaults(validate=, must_exist=, out_kind=, run_kind=): an option of that dest would
    replace the declaration with its value (as `study --settings` once replaced a check named `settings`)."""
    reserved = {"validate", "must_exist", "out_kind", "run_kind", "func"}
    clashes = [f"{command} {a.option_strings}" for command, parser in COMMANDS.items() for a in parser._actions
               if a.dest in reserved]
    assert clashes == []


def _run_kinds():
    from rdfer.cli.preflight import RUN_MARKERS

    for command, parser in COMMANDS.items():
        kind = parser.get_default("run_kind")
        if kind in RUN_MARKERS:
            for other, (marker, _) in RUN_MARKERS.items():
                if other != kind:
                    yield command, marker


RUN_KINDS = list(_run_kinds())


@pytest.mark.parametrize("command, marker", RUN_KINDS, ids=[f"{c} into {m}" for c, m in RUN_KINDS])
def test_an_out_holding_another_commands_run_is_refused_untouched(command, marker, tmp_path, stubbed, monkeypatch,
                                                                 capsys):
    monkeypatch.chdir(tmp_path)
    out = tmp_path / "out"
    out.mkdir()
    (out / marker).write_text("another command's file\n")
    argv = _argv(command, tmp_path)
    before = _tree(tmp_path)
    assert main(argv) == 2
    err = capsys.readouterr().err.strip().splitlines()
    # (study refuses any folder that holds files but no study.json: a stricter check of its own)
    assert len(err) == 1 and str(out) in err[0], err
    assert f"it holds {marker}" in err[0] or command == "study" and "not empty" in err[0], err
    assert stubbed == [] and _tree(tmp_path) == before
    assert (out / marker).read_text() == "another command's file\n"


@pytest.mark.parametrize("command", sorted(c for c, p in COMMANDS.items()
                                           if "overrides" in {a.dest for a in p._actions} and "bench" not in c))
def test_a_model_option_refusal_names_the_set_item(command, tmp_path, stubbed, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    assert main([*_argv(command, tmp_path), "--set", "model.options.n1=100"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "--set model.options.n1=100: model.options" in err[0], err
