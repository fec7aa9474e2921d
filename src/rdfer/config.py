"""Loading a training configuration: YAML files, one `base:` level, `--set` overrides, the resolved config saved.

What a configuration is (the `TrainConfig` dataclasses, their ranges and the
checks across fields) is `rdfer.schema`; this module reads one. A run's
configuration is read from a YAML file whose sections mirror the schema's
dataclasses (a file may start from another with `base: FILE`, one level: the
shipped paper configs state only what differs from
`configs/_base_rdfer_plus.yaml` or `configs/_base_paper_as_written.yaml`),
then `--set key=value` overrides are applied (dotted keys, values parsed as
YAML: `--set optim.lr=1e-3`, `--set model.options.resample=false`). The
resolved configuration is saved in every run folder as `config.yaml`, so a run
can be repeated from it alone.

Every value is checked against its field's type when the config is read
(OmegaConf structured configs do the coercion: `"1e-3"` becomes the float
0.001, `1.5` for an int field or `maybe` for a bool is refused), then against
its range: every number must be finite (no .nan or .inf), and a section's
`RANGES` bound its fields, model configs' too (`rdfer.schema.typed_fields`);
`rdfer.schema.check_config` adds the checks across fields. A bad value stops
with one line naming where it came from (file or `--set`), the key, the value
and what is expected. New dataclass fields are picked up without any change
here. `model.options` is a free mapping: the model's own config dataclass
checks it.
"""

import dataclasses
import re
import sys
from pathlib import Path
from typing import Optional

import yaml
from omegaconf import OmegaConf
from omegaconf.errors import OmegaConfBaseException

from rdfer.errors import RdferError
from rdfer.schema import (  # noqa: F401 (the schema's names stay reachable as rdfer.config.TrainConfig etc.)
    DATASETS, PATH_FIELDS, STRATEGIES, DataConfig, ModelSection, OptimConfig, ReweightConfig, TrainConfig,
    check_config, config_to_dict, describe_type, field_types, typed_fields)
from rdfer.utils.bounded_yaml import MAX_YAML_BYTES, load_yaml
from rdfer.utils.outputs import write_text

# The YAML recipes shipped with rdfer (`--config NAME` finds them by name); files whose name
# starts with "_" are bases for the others, not recipes of their own.
SHIPPED_CONFIGS = Path(__file__).resolve().parent / "configs"


class _Loader(yaml.SafeLoader):
    """PyYAML's safe loader with YAML 1.2 numbers and booleans.

    PyYAML follows YAML 1.1: `1e-3` (no dot) is a string and `off`/`yes` are
    booleans. Here `1e-3` is a float and only true/false are booleans, so
    `amp: off` stays the string it means.
    """


_Loader.yaml_implicit_resolvers = {
    key: [(tag, regexp) for tag, regexp in resolvers if tag != "tag:yaml.org,2002:bool"]
    for key, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.copy().items()
}
_Loader.add_implicit_resolver("tag:yaml.org,2002:bool", re.compile(r"^(?:true|True|TRUE|false|False|FALSE)$"),
                              list("tTfF"))
_Loader.add_implicit_resolver(
    "tag:yaml.org,2002:float",
    re.compile(r"""^(?:[-+]?(?:[0-9][0-9_]*)(?:\.[0-9_]*)?(?:[eE][-+]?[0-9]+)
                    |[-+]?(?:[0-9][0-9_]*)(?:[eE][-+]?[0-9]+)
                    |\.[0-9_]+(?:[eE][-+]?[0-9]+)?
                    |[-+]?\.(?:inf|Inf|INF)
                    |\.(?:nan|NaN|NAN))$""", re.X),
    list("-+0123456789."))


def parse_yaml(text: str):
    """YAML text -> Python values, with the number and boolean rules of `_Loader`, within the bounds of
    `rdfer.utils.bounded_yaml` (size, aliases, values; yaml.YAMLError beyond)."""
    return load_yaml(text, _Loader)


def _leaves(cls, values, prefix: str, where: str) -> list:
    """(dotted key, value) of every field set in `values`, recursing into dataclass sections.

    Raises RdferError for unknown keys and for a section given a non-mapping value.
    """
    if not isinstance(values, dict):
        name = prefix.rstrip(".") or "the top level"
        raise RdferError(f"{where}: {name} must be a mapping of keys, got {values!r}; "
                         f"expected {describe_type(cls)}")
    hints = field_types(cls)
    leaves = []
    for key, value in values.items():
        if key not in hints:
            section = prefix.rstrip(".")
            raise RdferError(f"{where}: unknown config key {prefix}{key}; known keys in "
                             f"{section or 'the top level'}: {', '.join(hints)}")
        if dataclasses.is_dataclass(hints[key]) and isinstance(value, dict):
            leaves += _leaves(hints[key], value, f"{prefix}{key}.", where)
        else:
            leaves.append((f"{prefix}{key}", value))
    return leaves


def _hint_of(key: str):
    hint = TrainConfig
    for part in key.split("."):
        hint = field_types(hint)[part]
    return hint


def _merge(schema, values: dict, where: str, origins: dict):
    """Merge `values` into the typed `schema` one field at a time (so an error names its key).

    `origins` records, for each key set, where its value came from.
    """
    for key, value in _leaves(TrainConfig, values, "", where):
        origins[key] = where
        if isinstance(value, dict):  # a free mapping (model.options): each of its keys too
            origins.update({f"{key}.{name}": where for name in value})
        hint = _hint_of(key)
        if dataclasses.is_dataclass(hint):
            raise RdferError(f"{where}: {key} must be {describe_type(hint)}, got {value!r}")
        update = value
        for part in reversed(key.split(".")):
            update = {part: update}
        try:
            schema = OmegaConf.merge(schema, update)
        except OmegaConfBaseException:
            raise RdferError(f"{where}: {key} = {value!r} is not {describe_type(hint)}") from None
    return schema


def _to_object(schema, where: str) -> "TrainConfig":
    try:
        return OmegaConf.to_object(schema)
    except OmegaConfBaseException as error:
        key = getattr(error, "full_key", None) or "a value"
        reason = str(getattr(error, "msg", None) or error).splitlines()[0]
        raise RdferError(f"{where}: {key}: {reason}") from None
    except RdferError as error:  # a section's own check (e.g. ReweightConfig.__post_init__)
        raise RdferError(f"{where}: {error}") from None


def parse_key_value(item: str, option: str = "--set", example: str = "optim.lr=1e-3") -> tuple:
    """One `KEY=VALUE` command-line item -> (key, value), the value parsed as YAML (`parse_yaml`).

    The one parser behind `--set` and `bench train --option`. An empty value is the
    empty string; a value YAML cannot parse (e.g. an unbalanced bracket) is kept as a
    string, for its field's type to accept or refuse. Keys may be dotted (optim.lr).

    Raises:
        RdferError: no `=`, or an empty key or key part (naming `option` and the item).
    """
    if "=" not in item:
        raise RdferError(f"{option} expects key=value (e.g. {example}), got {item!r}")
    key, raw = item.split("=", 1)
    key = key.strip()
    if not key or any(not part for part in key.split(".")):
        example_key = example.split("=", 1)[0]
        raise RdferError(f"{option} {item}: {key!r} is not a {'dotted ' * ('.' in example_key)}key like {example_key}")
    try:
        value = parse_yaml(raw) if raw.strip() else ""
    except (yaml.YAMLError, RecursionError):
        value = raw
    return key, value


def _parse_override(item: str) -> dict:
    """`--set a.b=v` -> {"a": {"b": v}}."""
    key, nested = parse_key_value(item)
    for part in reversed(key.split(".")):
        nested = {part: nested}
    return nested


# Shipped configs renamed when the paper as written got presets of its own: the configs carrying
# rdfer's additions say so ("rdfer_plus"). The old names still load, with a one-line note.
RENAMED_CONFIGS = {"_base_paper": "_base_rdfer_plus", "dfew_rdfer_r50": "dfew_rdfer_plus_r50",
                   "ferv39k_rdfer_r50": "ferv39k_rdfer_plus_r50", "mafw_rdfer_r50": "mafw_rdfer_plus_r50",
                   "dfew_rdfer_clip_b16": "dfew_rdfer_plus_clip_b16",
                   "ferv39k_rdfer_clip_b16": "ferv39k_rdfer_plus_clip_b16"}


def resolve_config_path(name):
    """A config file path, or the name of a config shipped with rdfer (with or without .yaml).

    A renamed config's old name (`RENAMED_CONFIGS`) gives the new file and prints a note.

    Raises:
        RdferError: neither a file nor a shipped config (listing the shipped ones).
    """
    if name is None or Path(name).is_file():
        return name
    old = str(name).removesuffix(".yaml")
    if old in RENAMED_CONFIGS:
        new = RENAMED_CONFIGS[old]
        paper = new.replace("_rdfer_plus", "_paper_as_written" if old.startswith("_") else "_rdfer_as_written")
        paper = f"; the paper as written: {paper}" if (SHIPPED_CONFIGS / f"{paper}.yaml").is_file() else ""
        print(f"note: config {old} is now {new} (rdfer's additions on{paper}); the old name will go",
              file=sys.stderr)
        name = new
    for candidate in (SHIPPED_CONFIGS / name, SHIPPED_CONFIGS / f"{name}.yaml"):
        if candidate.is_file():
            return str(candidate)
    known = ", ".join(sorted(p.stem for p in SHIPPED_CONFIGS.glob("*.yaml") if not p.name.startswith("_")))
    raise RdferError(f"config {name!r} is neither a file nor a shipped config; shipped configs: {known}")


def read_config_file(path) -> dict:
    """The mapping in a YAML config file (nothing checked yet)."""
    path = Path(path)
    if not path.is_file():
        raise RdferError(f"config file {path} not found")
    try:
        if path.stat().st_size > MAX_YAML_BYTES:  # not read at all
            raise yaml.YAMLError(f"{path.stat().st_size} bytes, more than the {MAX_YAML_BYTES} a config may have")
        values = parse_yaml(path.read_text())
    except (yaml.YAMLError, UnicodeDecodeError, RecursionError) as error:
        reason = " ".join(str(error).split())
        raise RdferError(f"config file {path} is not valid YAML: {reason}") from None
    if values is None:
        return {}
    if not isinstance(values, dict):
        raise RdferError(f"config file {path} must hold a mapping of sections (data:, model:, ...), "
                         f"got {type(values).__name__}")
    return values


def build_config(sources, origins: Optional[dict] = None) -> "TrainConfig":
    """A checked TrainConfig from (description, mapping) pairs merged in order onto the defaults.

    `origins`, when given, is filled with {dotted key: the description of the source that set it}.
    """
    schema = OmegaConf.structured(TrainConfig)
    where = "config"
    origins = {} if origins is None else origins
    for where, values in sources:
        schema = _merge(schema, values, where, origins)
    config = _to_object(schema, where)
    check_config(config, origins)
    return config


def config_file_sources(path) -> list:
    """(description, mapping) pairs of a config file: its `base:` file first, then its own keys.

    `base: FILE` names a config that this one starts from; a relative FILE is read from
    the config's folder, then from the shipped configs (so a config of your own may say
    `base: _base_paper_as_written`, the paper's recipe and method). One level only: a base file has no `base:`
    of its own (a shipped paper config cannot be a base; its own base can).
    Every key then names the file it came from in error messages.
    """
    values = read_config_file(path)
    base = values.pop("base", None)
    if base is None:
        return [(f"config file {path}", values)]
    if not isinstance(base, str) or not base.strip():
        raise RdferError(f"config file {path}: base must name a config file, got {base!r}")
    folder = Path(path).parent
    base_path = next((str(c) for c in (folder / base, folder / f"{base}.yaml") if c.is_file()), None)
    if base_path is None:
        try:
            base_path = resolve_config_path(base)
        except RdferError as error:
            raise RdferError(f"config file {path}: base {base!r}: {error}") from None
    base_values = read_config_file(base_path)
    if "base" in base_values:
        raise RdferError(f"config file {path}: its base {base_path} has a base of its own "
                         f"({base_values['base']}); one level only: start from that one and copy what you need")
    return [(f"config file {base_path}", base_values), (f"config file {path}", values)]


def load_config(path: Optional[str] = None, overrides: tuple[str, ...] = (),
                origins: Optional[dict] = None) -> TrainConfig:
    """Read a YAML config (or start from the defaults) and apply `key=value` overrides.

    `origins`, when given, is filled with {dotted key: "config file F" or "--set K=V"} of every key set.

    Raises:
        RdferError: missing file, invalid YAML, unknown keys, a value of the wrong
            type or out of range, a missing base, or a malformed override (one line, naming it).
    """
    sources = config_file_sources(path) if path is not None else []
    sources += [(f"--set {item}", _parse_override(item)) for item in overrides]
    return build_config(sources, origins)


# What `--resume RUN --set ...` may change: where the data is and how it is loaded, not what
# is trained (anything else would make the run's checkpoints disagree with its config.yaml).
RESUME_OVERRIDABLE = ("data.root", "data.csv", "data.ground_truth", "data.features", "data.num_workers",
                      "data.skip_bad", "device", "threads", "wandb")


def resume_config(saved: dict, overrides: tuple[str, ...], where: str, origins: Optional[dict] = None) -> TrainConfig:
    """The config of a run being resumed: its saved `config.yaml` plus allowed `--set` overrides.

    Raises:
        RdferError: an override names a field outside RESUME_OVERRIDABLE.
    """
    if not isinstance(saved, dict):
        raise RdferError(f"{where} is not a mapping of sections; is it an rdfer config.yaml?")
    saved = {k: dict(v) if isinstance(v, dict) else v for k, v in saved.items()}
    if isinstance(saved.get("data"), dict):
        saved["data"].pop("classes", None)
    sources = [(where, saved)]
    for item in overrides:
        override = _parse_override(item)
        for key, _ in _leaves(TrainConfig, override, "", f"--set {item}"):
            if key not in RESUME_OVERRIDABLE:
                raise RdferError(f"--set {item}: {key} cannot change when resuming (the run was trained with "
                                 f"its config.yaml); --resume accepts --set for {', '.join(RESUME_OVERRIDABLE)}; "
                                 "start a new run (--out) to change anything else")
        sources.append((f"--set {item}", override))
    return build_config(sources, origins)


# What may differ between a finished (or interrupted) run and a rerun that reuses it: how the work
# is done, not what it computes.
REUSE_IGNORED = ("data.num_workers", "device", "threads")


def _flat(values: dict, prefix: str = "") -> dict:
    flat = {}
    for key, value in values.items():
        if isinstance(value, dict):
            flat.update(_flat(value, f"{prefix}{key}."))
        else:
            flat[f"{prefix}{key}"] = list(value) if isinstance(value, tuple) else value
    return flat


def config_differences(saved: dict, config: TrainConfig, ignore=REUSE_IGNORED) -> list:
    """'key saved -> now' for each field a saved config.yaml and `config` disagree on (`ignore` aside).

    Paths are compared made absolute, as runs save them; run facts (data.classes) are left out.
    """
    try:  # through the current defaults, so that a field added since the run was saved is no difference
        saved = config_to_dict(config_from_dict(saved))
    except RdferError:
        pass
    before = {k: v for k, v in _flat(saved if isinstance(saved, dict) else {}).items() if k != "data.classes"}
    now = _flat(config_to_dict(absolute_paths(config)))
    return [f"{key} {before.get(key, 'unset')!r} -> {now.get(key, 'unset')!r}"
            for key in sorted(set(before) | set(now)) if key not in ignore and before.get(key) != now.get(key)]


def check_reusable(run_dir, config: TrainConfig, ignore=REUSE_IGNORED) -> None:
    """Stop unless the run in `run_dir` (if any) was made with `config`: its work may then be reused.

    Raises:
        RdferError: one line naming the run, up to four differing fields and what to do.
    """
    saved_path = Path(run_dir) / "config.yaml"
    finished_work = ("final.json", "checkpoints/last.pt")  # a run stopped before its first epoch has none
    if not saved_path.is_file() or not any((Path(run_dir) / name).exists() for name in finished_work):
        return
    differences = config_differences(read_config_file(saved_path), config, ignore)
    if differences:
        more = f" and {len(differences) - 4} more" if len(differences) > 4 else ""
        raise RdferError(f"{run_dir} was trained with other settings ({'; '.join(differences[:4])}{more}), so its "
                         f"results cannot stand for these: give a new --out (or delete {run_dir} to train it again)")


def absolute_paths(config: TrainConfig, base: Optional[Path] = None) -> TrainConfig:
    """`config` with relative data paths (root, csv, ground_truth, features) made absolute."""
    base = Path(base or Path.cwd())
    changes = {}
    for name in PATH_FIELDS:
        value = getattr(config.data, name)
        if value and not Path(value).is_absolute():
            changes[name] = str((base / value).resolve())
    return dataclasses.replace(config, data=dataclasses.replace(config.data, **changes)) if changes else config


def save_config(config: TrainConfig, path: Path, extra: Optional[dict] = None) -> None:
    """Write the resolved config as YAML; `extra` adds run facts (e.g. data.classes)."""
    values = config_to_dict(config)
    for section, items in (extra or {}).items():
        values.setdefault(section, {}).update(items)
    write_text(path, yaml.safe_dump(values, sort_keys=False))


def config_from_dict(values: dict, where: str = "the run's config") -> TrainConfig:
    """Inverse of `config_to_dict` (run facts such as data.classes are dropped)."""
    return resume_config(values, (), where)
