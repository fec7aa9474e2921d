"""The validate-first pass: every command's settings checked before it reads data, renders or writes anything.

`rdfer.cli.main` calls `preflight(args)` after parsing and before the command's
function; a bad setting stops there with one line and exit status 2, and
nothing has been written (no output folder, no lock, no cache). What it checks,
from what each command's parser declares:

- numbers and lists: parsed with their ranges (`rdfer.utils.ranges.bounded`,
  `options.CommaList`'s item limit), so argparse refuses them first;
- inputs: each option named by `expect_inputs(parser, DEST="file"|"folder"|"path"|"runs")`
  must exist when given (`runs`: RUN or NAME=RUN items);
- `--out`: `add_out` declares whether it is a folder or a file; it must not be
  the other kind, its nearest existing folder must be writable, and a folder
  must not hold another command's run (`RUN_MARKERS`; the command's own kind
  is `set_defaults(run_kind=...)`);
- settings: a command that takes `--set` (or a config) declares
  `set_defaults(validate=FUNC)`; FUNC(args) builds and checks every config the
  command would run (keys, types, ranges, model options, the batch bound,
  paths the data must have, option combinations) and returns nothing useful.
  The command's own function builds the same config again (cheap) and goes on.
"""

from __future__ import annotations

import os
from pathlib import Path

from rdfer.errors import RdferError

# The file that marks each command's output folder, and what such a folder is called in a refusal.
RUN_MARKERS = {
    "train": ("config.yaml", "a training run folder"),
    "eval": ("metrics.json", "an evaluation folder of rdfer eval"),
    "cv": ("cv_summary.json", "a cross-validation folder of rdfer cv"),
    "audit": ("audit.json", "an audit folder of rdfer audit"),
    "synth": ("synth.json", "a synthetic benchmark of rdfer synth"),
    "study": ("study.json", "a study folder of rdfer study"),
    "curate": ("curate.json", "a curation folder of rdfer curate"),
}


def expect_inputs(parser, **kinds: str) -> None:
    """Declare options of `parser` (by dest) that name inputs which must exist when given."""
    labels = {action.dest: (action.option_strings or [action.metavar or action.dest])[0] for action in parser._actions}
    unknown = sorted(set(kinds) - set(labels))
    if unknown:
        raise ValueError(f"{parser.prog}: no option with dest {', '.join(unknown)}")
    declared = {dest: (labels[dest], kind) for dest, kind in kinds.items()}
    parser.set_defaults(must_exist={**(parser.get_default("must_exist") or {}), **declared})


def preflight(args) -> None:
    """Check everything `args` asks for before the command starts; RdferError (one line) at the first problem."""
    for dest, (label, kind) in (getattr(args, "must_exist", None) or {}).items():
        value = getattr(args, dest, None)
        for item in value if isinstance(value, (list, tuple)) else [value] if value is not None else []:
            check_input(label, str(item), kind)
    validate = getattr(args, "validate", None)
    if validate is not None:
        validate(args)
    out_kind = getattr(args, "out_kind", None)
    if out_kind and getattr(args, "out", None):
        check_out(Path(args.out), out_kind, getattr(args, "run_kind", None))


def check_input(option: str, value: str, kind: str) -> None:
    path = Path(value)
    if kind == "runs" and not path.exists() and "=" in value:  # NAME=RUN
        path = Path(value.partition("=")[2])
    if kind in ("path", "runs") and path.exists():
        return
    if kind == "file" and path.is_file() or kind in ("folder", "runs") and path.is_dir():
        return
    what = {"file": "file", "folder": "folder", "path": "file or folder", "runs": "run folder"}[kind]
    found = "is a folder, not a file" if path.is_dir() else "is not a folder" if path.exists() else "does not exist"
    raise RdferError(f"{option} {value}: {found}; give an existing {what}")


def check_out(out: Path, kind: str, run_kind=None) -> None:
    """`--out` can take this command's outputs: the right kind of path, writable, not another command's run."""
    if kind == "folder" and out.exists() and not out.is_dir():
        raise RdferError(f"--out {out}: this is a file, not a folder; give the name of a folder for the outputs")
    if kind == "file" and out.is_dir():
        raise RdferError(f"--out {out}: this is a folder; give the name of the file to write")
    existing = out if out.is_dir() else out.parent
    while not existing.exists() and existing != existing.parent:
        existing = existing.parent
    if not existing.is_dir():
        raise RdferError(f"--out {out} cannot be written ({existing} is a file, not a folder); choose a folder "
                         "you can write to")
    if not os.access(existing, os.W_OK | os.X_OK):
        raise RdferError(f"--out {out} cannot be written (no permission to write in {existing}); choose a folder "
                         "you can write to")
    if kind == "folder" and run_kind in RUN_MARKERS and out.is_dir():
        for other, (marker, description) in RUN_MARKERS.items():
            if other != run_kind and (out / marker).is_file():
                raise RdferError(f"--out {out} is {description} (it holds {marker}); rdfer {run_kind} would mix "
                                 "its files with that run's: give another folder")


# The config's data paths that must exist before a command that reads the data starts, and what each is.
DATA_INPUTS = {"root": "path", "csv": "file", "ground_truth": "file", "features": "file"}


def checked_config(config_file, overrides=(), *, resume_from=None, data_inputs=tuple(DATA_INPUTS)):
    """The TrainConfig a command runs, every key and the run as a whole checked (one line naming the file or
    `--set` and the key): a config file (or a shipped name) plus `--set`, or `resume_from` (a run folder) plus
    the `--set` a resume may take. `data_inputs`: the data paths (data.root, ...) that must exist already."""
    from rdfer.config import load_config, read_config_file, resolve_config_path, resume_config
    from rdfer.engine.settings import check_run_settings

    origins: dict = {}
    if resume_from is not None:
        run = Path(resume_from)
        if not (run / "config.yaml").is_file():
            raise RdferError(f"{run} has no config.yaml: it is not an rdfer run folder")
        config = resume_config(read_config_file(run / "config.yaml"), overrides, f"{run / 'config.yaml'}", origins)
        default = f"{run / 'config.yaml'}"
    else:
        config = load_config(resolve_config_path(config_file), overrides, origins)
        default = "the default config"

    check_run_settings(config, origins=origins, default=default)
    for name in data_inputs:
        value = getattr(config.data, name)
        if value:
            try:
                check_input(f"data.{name} =", value, DATA_INPUTS[name])
            except RdferError as error:
                raise RdferError(f"{origins.get('data.' + name, default)}: {error}") from None
    return config
