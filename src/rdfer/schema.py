"""What a run's configuration is: frozen, typed dataclasses, their ranges and the checks across fields.

A run's configuration is one `TrainConfig` of sections `data:` (`DataConfig`),
`model:` (`ModelSection`), `loss:` (`ReweightConfig`) and `optim:`
(`OptimConfig`). Each section's `RANGES` ({field: Range}, `rdfer.utils.ranges`)
bound its numbers; `check_config` adds the checks across fields;
`typed_fields` coerces a free mapping (a model's `model.options`) to a
dataclass's field types the way config values are coerced.

No file is read here, and importing this module loads neither YAML nor
OmegaConf: models/ and losses/ import it. Reading YAML files, `base:`,
`--set` overrides and saving the resolved config are `rdfer.config`'s.
"""

import dataclasses
import re
import typing
from dataclasses import dataclass, field
from typing import ClassVar, Optional

from rdfer.errors import RdferError
from rdfer.utils.ranges import Range, check_fields

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
                              "w_hard": Range(0, 100), "w_noisy": Range(0, 100), "warmup_epochs": Range(0, 10_000),
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
    # Share of each class's training clips held out as a validation part (seeded by `seed`, stratified
    # by label): the "best" epoch is the one with the highest validation WAR, and the test split is
    # only ever scored. 0 = train on every clip and call the last epoch "best".
    val_fraction: float = 0.1

    RANGES: ClassVar[dict] = {"fold": Range(1, 5), "load_size": Range(8, 2048), "num_workers": Range(0, 128),
                              "val_fraction": Range(0, 0.5), "crop_scale": Range(0, 1, max_items=2)}


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

    # Bounds well beyond any working recipe, to catch typos (1e3 for 1e-3) and settings whose work has no
    # end: the paper trains 100 epochs at batch 32..128 (a 10,000-epoch run of FERV39K's 39k clips is
    # already years of GPU time); a weight decay above 1 removes more than the whole weight per step at
    # lr 1 (AdamW multiplies each weight by 1 - lr * weight_decay). A run that diverges all the same stops
    # at its first nan/inf loss (engine.fit). Batch x frames x pixels is bounded as a product as well
    # (rdfer.engine.settings).
    RANGES: ClassVar[dict] = {"epochs": Range(1, 10_000), "batch_size": Range(1, 16_384),
                              "lr": Range(0, 10, low_open=True), "min_lr": Range(0, 10),
                              "lr_warmup_epochs": Range(0, 10_000), "weight_decay": Range(0, 1),
                              "grad_clip": Range(0, 1_000_000, low_open=True), "encoder_lr": Range(0, 10)}


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
    save_best: bool = True  # keep checkpoints/best.pt (the epoch with the best validation WAR: data.val_fraction)
    # Also log every epoch to Weights & Biases under this project (needs `pip install wandb`); None = off.
    # TensorBoard event files are written into every run folder either way (rdfer.engine.run_log).
    wandb: Optional[str] = None

    RANGES: ClassVar[dict] = {"seed": Range(0, 2**32 - 1), "threads": Range(1, 1024),
                              "eval_every": Range(1, 10_000)}


# Fields that name files: a relative path is resolved against the current folder when a run
# starts (`rdfer.config.absolute_paths`), so that the run's config.yaml works from any folder.
PATH_FIELDS = ("root", "csv", "ground_truth", "features")
# The values of data.dataset: rdfer.data.layouts.SOURCES (data/ sits above the schema; a test keeps them equal).
DATASETS = ("dfew", "ferv39k", "mafw", "csv", "packed")


def field_types(cls) -> dict:
    """{field name: type} of a dataclass's fields (string annotations resolved; class attributes such as
    RANGES are not fields)."""
    hints = typing.get_type_hints(cls)
    return {f.name: hints[f.name] for f in dataclasses.fields(cls)}


def describe_type(hint) -> str:
    """What a value of type `hint` looks like, for error messages."""
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if origin is typing.Union:
        inner = [describe_type(arg) for arg in args if arg is not type(None)]
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
        return f"a list of {len(args)} {describe_type(args[0]).split(' ', 1)[-1]}s like {example}" if args \
            else "a list"
    if hint is dict or origin is dict:
        return "a mapping of key: value"
    if dataclasses.is_dataclass(hint):
        return f"a section (a mapping of {', '.join(f.name for f in dataclasses.fields(hint))})"
    return getattr(hint, "__name__", str(hint))


def typed_fields(cls, values: dict, where: str) -> dict:
    """`values` for fields of dataclass `cls`, each coerced to its field's type as config values are.

    For the dataclasses that check a free mapping such as `model.options`
    (a model's config): `{"input_size": "64"}` gives 64, `{"input_size": "abc"}`
    raises `{where}: input_size = 'abc' is not an integer`. Keys that are not
    fields of `cls` are returned unchanged (the caller reports them).
    """
    from omegaconf import OmegaConf  # imported here: importing the schema (models/, losses/) loads no OmegaConf
    from omegaconf.errors import OmegaConfBaseException

    schema, hints, typed = OmegaConf.structured(cls), field_types(cls), {}
    for key, value in values.items():
        if key not in hints:
            typed[key] = value
            continue
        try:
            coerced = OmegaConf.to_container(OmegaConf.merge(schema, {key: value}), resolve=True)[key]
        except OmegaConfBaseException:
            raise RdferError(f"{where}: {key} = {value!r} is not {describe_type(hints[key])}") from None
        hint = hints[key]
        if isinstance(coerced, list) and (hint is tuple or typing.get_origin(hint) is tuple):
            coerced = tuple(coerced)
        broken = check_fields(cls, {key: coerced})
        if broken:
            raise RdferError(f"{where}: {key} = {value!r}: {broken[2]}")
        typed[key] = coerced
    return typed


def check_config(config: TrainConfig, origins: Optional[dict] = None) -> None:
    """Range checks that a type alone cannot express (one line each, naming the key and its source).

    `origins` ({key: where its value came from}, the loader's) names the source in the message.
    """
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


def config_to_dict(config) -> dict:
    """Plain dict of a (nested) config dataclass, for YAML and checkpoints (tuples as lists)."""
    def plain(value):
        if isinstance(value, dict):
            return {key: plain(item) for key, item in value.items()}
        if isinstance(value, (list, tuple)):
            return [plain(item) for item in value]
        return value

    return plain(dataclasses.asdict(config))
