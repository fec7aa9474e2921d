"""Training configuration: frozen, typed dataclasses; YAML files; `--set` overrides.

A run's configuration is one `TrainConfig`. It is read from a YAML file whose
sections mirror the dataclasses below (a file may start from another with
`base: FILE`, one level: the shipped paper configs state only what differs
from `configs/_base_rdfer_plus.yaml` or
`configs/_base_paper_as_written.yaml`), then `--set key=value` overrides are
applied (dotted keys, values parsed as YAML: `--set optim.lr=1e-3`,
`--set model.options.resample=false`). The resolved configuration is saved in
every run folder as `config.yaml`, so a run can be repeated from it alone.

Every value is checked against its field's type when the config is read
(OmegaConf structured configs do the coercion: `"1e-3"` becomes the float
0.001, `1.5` for an int field or `maybe` for a bool is refused), then against
its range: every number must be finite (no .nan or .inf), and a section's
`RANGES` ({field: Range}, `rdfer.utils.ranges`) bound its fields, model
configs' too (`typed_fields`); `_check` adds the checks across fields. A
bad value stops with one line naming where it came from (file or `--set`),
the key, the value and what is expected. New
dataclass fields are picked up without any change here. `model.options` is a
free mapping: the model's own config dataclass checks it.
"""

import dataclasses
import re
import sys
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import ClassVar, Optional

import yaml
from omegaconf import OmegaConf
from omegaconf.errors import OmegaConfBaseException

from rdfer.errors import RdferError
from rdfer.utils.outputs import atomic_output
from rdfer.utils.ranges import Range, check_fields

# The YAML recipes shipped with rdfer (`--config NAME` finds them by name); files whose name
# starts with "_" are bases for the others, not recipes of their own.
SHIPPED_CONFIGS = Path(__file__).resolve().parent / "configs"
# loss.strategy values: the paper's Table IV, then the noisy-label losses GCE, SCE and ELR alone and under
# the agreement partition (rdfer.losses registers a class under each name).
STRATEGIES = ("ce", "bigloss_strengthen", "bigloss_weaken", "hard_strengthen", "noisy_weaken", "agreement",
              "gce", "sce", "elr", "gce_agreement", "sce_agreement", "elr_agreement")
MODES = ("batch", "epoch")


@dataclass(frozen=True)
class ReweightConfig:
    """The `loss:` section: the reweighting strategy of the paper's Table IV (rdfer.losses applies it)."""

    # Table IV row: "ce" (vanilla), "bigloss_strengthen" (top t_h by loss x w_hard),
    # "bigloss_weaken" (top t_n by loss x w_noisy), "hard_strengthen", "noisy_weaken",
    # "agreement" (hard x w_hard and noisy x w_noisy: the paper's method); "gce", "sce", "elr" (the
    # per-sample loss of Zhang & Sabuncu 2018, Wang et al. 2019, Liu et al. 2020, every weight 1) and
    # "gce_agreement", "sce_agreement", "elr_agreement" (that loss, weighted as "agreement").
    strategy: str = "agreement"
    t_h: float = 0.2  # share of hard samples (lowest agreement)
    t_n: float = 0.1  # share of noisy samples (highest agreement, highest loss)
    w_hard: float = 1.5  # loss weight of hard samples
    w_noisy: float = 0.0  # loss weight of noisy samples (0: left out of the gradient)
    warmup_epochs: int = 10  # epochs 0 .. warmup_epochs-1 use weight 1 for every sample
    label_smoothing: float = 0.1
    # lambda: weight of the clip loss (mean smoothed CE of the n1 clip logits against the video
    # label, weighted per sample like the video loss); 0 leaves the clip predictions untrained.
    clip_weight: float = 1.0
    # "batch": rank within each (global) batch; "epoch": rank all samples by the
    # previous epoch's agreement and loss, per sample id.
    mode: str = "batch"
    gce_q: float = 0.7  # GCE's q (its paper's value)
    sce_alpha: float = 0.1  # SCE's CE weight, its paper's CIFAR-10 setting
    sce_beta: float = 1.0  # SCE's reverse-CE weight
    sce_a: float = -4.0  # SCE's log 0 (A in its paper)
    elr_beta: float = 0.7  # ELR's target momentum (its paper's CIFAR-10 default)
    elr_lambda: float = 3.0  # ELR's regularisation weight (its paper's CIFAR-10 default)
    # The detector's guide (rdfer.losses.guide), for models with detector_guide: its weight in the loss
    # (per sample, times the strategy's weight; 0 turns it off) and its teacher's temperature.
    guide_weight: float = 1.0
    guide_tau: float = 0.1

    RANGES: ClassVar[dict] = {"t_h": Range(0, 1), "t_n": Range(0, 1), "label_smoothing": Range(0, 1),
                              "w_hard": Range(0, 100), "w_noisy": Range(0, 100), "warmup_epochs": Range(0),
                              "clip_weight": Range(0, 100), "gce_q": Range(0, 1, low_open=True),
                              "elr_beta": Range(0, 1), "elr_lambda": Range(0, 1000), "sce_alpha": Range(0, 1000),
                              "sce_beta": Range(0, 1000), "sce_a": Range(-1000, 0),
                              "guide_weight": Range(0, 1000), "guide_tau": Range(0, 100, low_open=True)}

    def __post_init__(self):
        if self.strategy not in STRATEGIES:
            raise RdferError(f"unknown loss strategy {self.strategy!r}; choose one of {', '.join(STRATEGIES)}")
        if self.mode not in MODES:
            raise RdferError(f"unknown reweighting mode {self.mode!r}; choose 'batch' or 'epoch'")
        broken = check_fields(ReweightConfig, {f.name: getattr(self, f.name) for f in dataclasses.fields(self)})
        if broken:
            raise RdferError(f"loss.{broken[0]} = {broken[1]!r}: {broken[2]}")
        if not (self.elr_beta < 1.0 and self.sce_a < 0):
            raise RdferError(f"loss options need elr_beta < 1 and sce_a < 0; got elr_beta={self.elr_beta}, "
                             f"sce_a={self.sce_a}")


@dataclass(frozen=True)
class DataConfig:
    dataset: str = "dfew"  # dfew | ferv39k | mafw | csv
    root: str = ""  # dataset root in its official layout (or the folder of a csv manifest)
    fold: int = 1  # DFEW / MAFW fold (1..5); ignored by FERV39K and csv
    csv: Optional[str] = None  # manifest file for dataset=csv
    train_split: str = "train"
    test_split: str = "test"
    load_size: Optional[int] = None  # decode size; None = input_size * 8 / 7 (128 for 112)
    # RandomResizedCrop's area range (torchvision's default; faces may want a narrower one)
    crop_scale: tuple[float, float] = (0.08, 1.0)
    num_workers: int = 4  # DataLoader workers per process
    # Leave out, with a warning naming each, clips that cannot be used: missing or empty
    # folders, bad split-list lines, clips none of whose frames decode, clips also in the test split.
    skip_bad: bool = False
    # ground_truth.csv of the synthetic benchmark (is_noisy per clip); None = ROOT/ground_truth.csv if present
    ground_truth: Optional[str] = None
    # Feature cache built by `rdfer features` (frozen encoder's per-frame features of every clip);
    # None = decode frames. Needs a model with frozen_encoder=true and the same encoder.
    features: Optional[str] = None

    RANGES: ClassVar[dict] = {"load_size": Range(1, 4096), "num_workers": Range(0, 256)}


@dataclass(frozen=True)
class ModelSection:
    name: str = "rdfer_r18"  # a name from `rdfer models`
    options: dict = field(default_factory=dict)  # keyword arguments for rdfer.create_model


@dataclass(frozen=True)
class OptimConfig:
    epochs: int = 100
    batch_size: int = 128  # global batch (split across processes under DDP)
    lr: float = 7e-4
    min_lr: float = 7e-6  # end of the per-step cosine
    # Linear learning-rate warm-up over these epochs, then the cosine. The paper's "ten warm-up
    # epochs" (docs/method.md) are both this and loss.warmup_epochs: every paper config sets both to 10.
    lr_warmup_epochs: int = 0
    weight_decay: float = 0.05
    grad_clip: Optional[float] = None  # max gradient norm; None = no clipping
    # Learning rate of the frame encoder's parameters (the rest use `lr`); None = `lr`. Fine-tuning a
    # pretrained CLIP ViT wants a smaller one (configs/*clip*.yaml). The cosine scales both alike.
    encoder_lr: Optional[float] = None

    # Bounds well beyond any working recipe, to catch typos (1e3 for 1e-3); a weight decay above 1
    # removes more than the whole weight per step at lr 1 (AdamW multiplies each weight by
    # 1 - lr * weight_decay). A run that diverges all the same stops at its first nan/inf loss (engine.fit).
    RANGES: ClassVar[dict] = {"epochs": Range(1, 100_000), "batch_size": Range(1, 1_000_000),
                              "lr": Range(0, 10, low_open=True), "min_lr": Range(0, 10),
                              "lr_warmup_epochs": Range(0, 100_000), "weight_decay": Range(0, 1),
                              "grad_clip": Range(0, low_open=True), "encoder_lr": Range(0, 10)}


@dataclass(frozen=True)
class TrainConfig:
    data: DataConfig = field(default_factory=DataConfig)
    model: ModelSection = field(default_factory=ModelSection)
    loss: ReweightConfig = field(default_factory=ReweightConfig)
    optim: OptimConfig = field(default_factory=OptimConfig)
    seed: int = 0  # one seed makes a run repeatable on the same hardware
    device: str = "auto"  # auto | cpu | cuda | cuda:N
    amp: str = "bf16"  # bf16 | fp16 | off; mixed precision is used on GPU only
    compile: bool = False  # torch.compile the model
    threads: Optional[int] = None  # torch CPU threads of each process; None = torch's default
    eval_every: int = 1  # evaluate on the test split every N epochs (and always at the end)
    save_best: bool = True  # keep checkpoints/best.pt (best test WAR, as the reference repos do)
    # Also log every epoch to Weights & Biases under this project (needs `pip install wandb`); None = off.
    # TensorBoard event files are written into every run folder either way (rdfer.engine.tracking).
    wandb: Optional[str] = None

    RANGES: ClassVar[dict] = {"seed": Range(0, 2**32 - 1), "threads": Range(1, 1024), "eval_every": Range(1)}


# Fields that name files: a relative path is resolved against the current folder when a run
# starts (`absolute_paths`), so that the run's config.yaml works from any folder.
PATH_FIELDS = ("root", "csv", "ground_truth", "features")
# The values of data.dataset: rdfer.data.layouts.SOURCES (data/ sits above config; a test keeps them equal).
DATASETS = ("dfew", "ferv39k", "mafw", "csv", "packed")


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
    """YAML text -> Python values, with the number and boolean rules of `_Loader`."""
    return yaml.load(text, Loader=_Loader)  # noqa: S506 (a SafeLoader subclass)


def _hints(cls) -> dict:
    return typing.get_type_hints(cls)


def _describe(hint) -> str:
    """What a value of type `hint` looks like, for error messages."""
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if origin is typing.Union:
        inner = [_describe(arg) for arg in args if arg is not type(None)]
        return " or ".join(inner) + (" or null" if type(None) in args else "")
    if hint is bool:
        return "true or false"
    if hint is int:
        return "an integer"
    if hint is float:
        return "a number"
    if hint is str:
        return "a string"
    if hint is tuple or origin is tuple:
        example = "[0.08, 1.0]" if args and all(arg is float for arg in args) else "[a, b]"
        return f"a list of {len(args)} {_describe(args[0]).split(' ', 1)[-1]}s like {example}" if args \
            else "a list"
    if hint is dict or origin is dict:
        return "a mapping of key: value"
    if dataclasses.is_dataclass(hint):
        return f"a section (a mapping of {', '.join(f.name for f in dataclasses.fields(hint))})"
    return getattr(hint, "__name__", str(hint))


def _leaves(cls, values, prefix: str, where: str) -> list:
    """(dotted key, value) of every field set in `values`, recursing into dataclass sections.

    Raises RdferError for unknown keys and for a section given a non-mapping value.
    """
    if not isinstance(values, dict):
        name = prefix.rstrip(".") or "the top level"
        raise RdferError(f"{where}: {name} must be a mapping of keys, got {values!r}; "
                         f"expected {_describe(cls)}")
    hints = _hints(cls)
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
        hint = _hints(hint)[part]
    return hint


def _merge(schema, values: dict, where: str, origins: dict):
    """Merge `values` into the typed `schema` one field at a time (so an error names its key).

    `origins` records, for each key set, where its value came from.
    """
    for key, value in _leaves(TrainConfig, values, "", where):
        origins[key] = where
        hint = _hint_of(key)
        if dataclasses.is_dataclass(hint):
            raise RdferError(f"{where}: {key} must be {_describe(hint)}, got {value!r}")
        update = value
        for part in reversed(key.split(".")):
            update = {part: update}
        try:
            schema = OmegaConf.merge(schema, update)
        except OmegaConfBaseException:
            raise RdferError(f"{where}: {key} = {value!r} is not {_describe(hint)}") from None
    return schema


def typed_fields(cls, values: dict, where: str) -> dict:
    """`values` for fields of dataclass `cls`, each coerced to its field's type as config values are.

    For the dataclasses that check a free mapping such as `model.options`
    (a model's config): `{"input_size": "64"}` gives 64, `{"input_size": "abc"}`
    raises `{where}: input_size = 'abc' is not an integer`. Keys that are not
    fields of `cls` are returned unchanged (the caller reports them).
    """
    schema, hints, typed = OmegaConf.structured(cls), _hints(cls), {}
    for key, value in values.items():
        if key not in hints:
            typed[key] = value
            continue
        try:
            coerced = OmegaConf.to_container(OmegaConf.merge(schema, {key: value}), resolve=True)[key]
        except OmegaConfBaseException:
            raise RdferError(f"{where}: {key} = {value!r} is not {_describe(hints[key])}") from None
        hint = hints[key]
        if isinstance(coerced, list) and (hint is tuple or typing.get_origin(hint) is tuple):
            coerced = tuple(coerced)
        broken = check_fields(cls, {key: coerced})
        if broken:
            raise RdferError(f"{where}: {key} = {value!r}: {broken[2]}")
        typed[key] = coerced
    return typed


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

    The one parser behind `--set` and `bench-train --option`. An empty value is the
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
    except yaml.YAMLError:
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
        values = parse_yaml(path.read_text())
    except (yaml.YAMLError, UnicodeDecodeError) as error:
        reason = " ".join(str(error).split())
        raise RdferError(f"config file {path} is not valid YAML: {reason}") from None
    if values is None:
        return {}
    if not isinstance(values, dict):
        raise RdferError(f"config file {path} must hold a mapping of sections (data:, model:, ...), "
                         f"got {type(values).__name__}")
    return values


def build_config(sources) -> "TrainConfig":
    """A checked TrainConfig from (description, mapping) pairs merged in order onto the defaults."""
    schema = OmegaConf.structured(TrainConfig)
    where, origins = "config", {}
    for where, values in sources:
        schema = _merge(schema, values, where, origins)
    config = _to_object(schema, where)
    _check(config, origins)
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


def load_config(path: Optional[str] = None, overrides: tuple[str, ...] = ()) -> TrainConfig:
    """Read a YAML config (or start from the defaults) and apply `key=value` overrides.

    Raises:
        RdferError: missing file, invalid YAML, unknown keys, a value of the wrong
            type or out of range, a missing base, or a malformed override (one line, naming it).
    """
    sources = config_file_sources(path) if path is not None else []
    sources += [(f"--set {item}", _parse_override(item)) for item in overrides]
    return build_config(sources)


# What `--resume RUN --set ...` may change: where the data is and how it is loaded, not what
# is trained (anything else would make the run's checkpoints disagree with its config.yaml).
RESUME_OVERRIDABLE = ("data.root", "data.csv", "data.ground_truth", "data.features", "data.num_workers",
                      "data.skip_bad", "device", "threads", "wandb")


def resume_config(saved: dict, overrides: tuple[str, ...], where: str) -> TrainConfig:
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
    return build_config(sources)


def _check(config: TrainConfig, origins: Optional[dict] = None) -> None:
    """Range checks that a type alone cannot express (one line each, naming the key and its source)."""
    def need(ok: bool, key: str, value, what: str):
        if not ok:
            source = (origins or {}).get(key, "the default config")
            raise RdferError(f"{source}: {key} = {value!r}: {what}")

    for prefix, section in (("", config), ("data.", config.data), ("loss.", config.loss),
                            ("optim.", config.optim)):
        values = {f.name: getattr(section, f.name) for f in dataclasses.fields(section)
                  if not dataclasses.is_dataclass(getattr(section, f.name))}
        broken = check_fields(type(section), values)
        if broken:
            key, value, advice = broken
            need(False, prefix + key, list(value) if isinstance(value, tuple) else value, advice)
    data, optim = config.data, config.optim
    need(config.loss.strategy in STRATEGIES, "loss.strategy", config.loss.strategy,
         f"use one of {', '.join(STRATEGIES)}")
    need(config.amp in ("bf16", "fp16", "off"), "amp", config.amp, "use bf16, fp16 or off")
    need(re.fullmatch(r"auto|cpu|mps|cuda(:\d+)?", config.device) is not None, "device", config.device,
         "use auto, cpu, cuda or cuda:N")
    need(data.dataset in DATASETS, "data.dataset", data.dataset, f"use one of {', '.join(DATASETS)}")
    if data.dataset in ("dfew", "mafw"):
        need(1 <= data.fold <= 5, "data.fold", data.fold, "DFEW and MAFW folds are 1..5")
    low, high = data.crop_scale
    need(0 < low <= high <= 1, "data.crop_scale", list(data.crop_scale),
         "give [min, max] area shares with 0 < min <= max <= 1, e.g. [0.08, 1.0]")
    need(optim.min_lr <= optim.lr, "optim.min_lr", optim.min_lr, f"give 0 .. optim.lr ({optim.lr})")


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


def config_to_dict(config) -> dict:
    """Plain dict of a (nested) config dataclass, for YAML and checkpoints (tuples as lists)."""
    def plain(value):
        if isinstance(value, dict):
            return {key: plain(item) for key, item in value.items()}
        if isinstance(value, (list, tuple)):
            return [plain(item) for item in value]
        return value

    return plain(dataclasses.asdict(config))


def save_config(config: TrainConfig, path: Path, extra: Optional[dict] = None) -> None:
    """Write the resolved config as YAML; `extra` adds run facts (e.g. data.classes)."""
    values = config_to_dict(config)
    for section, items in (extra or {}).items():
        values.setdefault(section, {}).update(items)
    with atomic_output(path, ".tmp") as tmp:
        tmp.write_text(yaml.safe_dump(values, sort_keys=False))


def config_from_dict(values: dict, where: str = "the run's config") -> TrainConfig:
    """Inverse of `config_to_dict` (run facts such as data.classes are dropped)."""
    return resume_config(values, (), where)
