"""Training configuration: frozen dataclasses, YAML files, `--set` overrides.

A run's configuration is one `TrainConfig`. It is read from a YAML file whose
sections mirror the dataclasses below, then `--set key=value` overrides are
applied (dotted keys, values parsed as YAML: `--set optim.lr=1e-3`,
`--set model.options.resample=false`). The resolved configuration is saved in
every run folder as `config.yaml`, so a run can be repeated from it alone.
"""

import dataclasses
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Optional

import yaml

from rdfer.errors import RdferError
from rdfer.losses import ReweightConfig


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
    crop_scale: tuple = (0.08, 1.0)
    num_workers: int = 4  # DataLoader workers per process
    skip_bad: bool = False  # skip broken clips with a warning instead of stopping
    # ground_truth.csv of the synthetic benchmark (is_noisy per clip); None = ROOT/ground_truth.csv if present
    ground_truth: Optional[str] = None
    # Feature cache built by `rdfer features` (frozen encoder's per-frame features of every clip);
    # None = decode frames. Needs a model with frozen_encoder=true and the same encoder.
    features: Optional[str] = None


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
    # SPEC 5's "10 warm-up epochs" are the reweighting warm-up (loss.warmup_epochs); a linear
    # learning-rate warm-up is optional and off by default.
    lr_warmup_epochs: int = 0
    weight_decay: float = 0.05
    grad_clip: Optional[float] = None  # max gradient norm; None = no clipping


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


def _build(cls, values: dict, where: str):
    """Build dataclass `cls` from a dict, recursing into dataclass fields."""
    if not isinstance(values, dict):
        raise RdferError(f"config section {where or 'top level'!r} must be a mapping, got {values!r}")
    fields = {f.name: f for f in dataclasses.fields(cls)}
    unknown = sorted(set(values) - set(fields))
    if unknown:
        raise RdferError(
            f"unknown config key(s) {', '.join(where + k for k in unknown)}; "
            f"known keys in {where or 'the top level'}: {', '.join(fields)}"
        )
    kwargs = {}
    for name, value in values.items():
        sub = fields[name].type
        if dataclasses.is_dataclass(sub):
            kwargs[name] = _build(sub, value, f"{where}{name}.")
        else:
            kwargs[name] = value
    return cls(**kwargs)


def _parse_override(item: str) -> tuple[list[str], Any]:
    if "=" not in item:
        raise RdferError(f"--set expects key=value (e.g. optim.lr=1e-3), got {item!r}")
    key, raw = item.split("=", 1)
    return key.strip().split("."), yaml.safe_load(raw)


def load_config(path: Optional[str] = None, overrides: tuple[str, ...] = ()) -> TrainConfig:
    """Read a YAML config (or start from the defaults) and apply `key=value` overrides.

    Raises:
        RdferError: missing file, invalid YAML, unknown keys, or a malformed override.
    """
    values: dict = {}
    if path is not None:
        path = Path(path)
        if not path.is_file():
            raise RdferError(f"config file {path} not found")
        try:
            values = yaml.safe_load(path.read_text()) or {}
        except yaml.YAMLError as error:
            raise RdferError(f"config file {path} is not valid YAML: {error}") from None
    for item in overrides:
        keys, value = _parse_override(item)
        node = values
        for key in keys[:-1]:
            node = node.setdefault(key, {})
            if not isinstance(node, dict):
                raise RdferError(f"--set {item}: {key!r} is not a section")
        node[keys[-1]] = value
    config = _build(TrainConfig, values, "")
    _check(config)
    return config


def _check(config: TrainConfig) -> None:
    from rdfer.losses import STRATEGIES

    if config.loss.strategy not in STRATEGIES:
        raise RdferError(f"loss.strategy {config.loss.strategy!r} is not one of {', '.join(STRATEGIES)}")
    if config.amp not in ("bf16", "fp16", "off"):
        raise RdferError(f"amp must be bf16, fp16 or off, got {config.amp!r}")
    if config.optim.epochs < 1 or config.optim.batch_size < 1:
        raise RdferError("optim.epochs and optim.batch_size must be at least 1")


def config_to_dict(config) -> dict:
    """Plain dict of a (nested) config dataclass, for YAML and checkpoints."""
    return dataclasses.asdict(config)


def save_config(config: TrainConfig, path: Path, extra: Optional[dict] = None) -> None:
    """Write the resolved config as YAML; `extra` adds run facts (e.g. data.classes)."""
    values = config_to_dict(config)
    for section, items in (extra or {}).items():
        values.setdefault(section, {}).update(items)
    Path(path).write_text(yaml.safe_dump(values, sort_keys=False))


def config_from_dict(values: dict) -> TrainConfig:
    """Inverse of `config_to_dict` (run facts such as data.classes are dropped)."""
    values = {k: dict(v) if isinstance(v, dict) else v for k, v in values.items()}
    values.get("data", {}).pop("classes", None)
    return _build(TrainConfig, values, "")
