"""Bring your own model: ONNX expression models run by onnxruntime (`rdfer predict --model FILE.onnx`).

    spec = read_spec("enet_b0_8.onnx", "hsemotion-8")   # a preset, a sidecar file, or FILE.json beside the model
    predictor = load_onnx_predictor("enet_b0_8.onnx", spec)
    predictor.probabilities(crops)                       # uint8 (N, S, S, 3) RGB -> (N, C), rdfer's class names

A model file says how it is fed in a small **sidecar** beside it (`FILE.json`,
`FILE.yaml` or `FILE.yml` for `FILE.onnx`), or in `--model-spec` (a preset name or
such a file). Fields (all optional but `classes`, which a preset gives):

- `preset`: one of PRESETS; the other fields override it.
- `classes`: the model's output names in order ("Anger", "happiness", ...); they are
  mapped to rdfer's labels (Happy, Sad, Neutral, Angry, Surprise, Disgust, Fear) by name.
- `rename`: true (the default) maps the names to rdfer's labels and order; false keeps the
  model's names and order (what `rdfer export` writes for a model trained with rdfer).
- `contempt`: what a Contempt output becomes: "keep" (its own class, the default),
  "drop" (removed, the rest renormalised) or a label to add it to (e.g. "Disgust").
- `input_size`: side of the square face crop (used when the model's input size is
  not fixed; a fixed size in the model must agree).
- `colour`: "rgb", "bgr" or "gray" (BT.601 luma, as OpenCV's BGR2GRAY).
- `scale`, `mean`, `std`: input = (pixel * scale - mean) / std, pixel in 0..255;
  mean/std one value or one per channel.
- `layout`: "nchw" or "nhwc" (default: read from the model's input shape).
- `output`: "logits" (softmax applied), "probabilities", or "auto" (the default:
  rows that are non-negative and sum to 1 are taken as probabilities).
- `kind`: "frame" (the default: one prediction per face crop, averaged over a track)
  or "clip" (an exported rdfer video model: input (B, T, C, H, W); `num_frames`,
  `resampled`; outputs logits, clip_logits and, with re-sampling, mu and delta).
- `name`: words for the `model` field of the results.

onnxruntime is imported here only, when a model is loaded.
"""

import json
import math
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from rdfer.errors import RdferError
from rdfer.labels import DFEW_CLASSES
from rdfer.utils import bounded_tables
from rdfer.utils.bounded_tables import check_size
from rdfer.utils.bounded_yaml import load_yaml

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
_HSEMOTION_8 = ("Anger", "Contempt", "Disgust", "Fear", "Happiness", "Neutral", "Sadness", "Surprise")

# The common public conventions: HSEmotion / EmotiEffLib (AffectNet-trained, alphabetical order),
# AffectNet's own label order, and FER2013's.
PRESETS = {
    "hsemotion-8": {"classes": _HSEMOTION_8, "input_size": 224, "colour": "rgb", "scale": 1 / 255,
                    "mean": IMAGENET_MEAN, "std": IMAGENET_STD,
                    "name": "HSEmotion/EmotiEffLib 8-class convention (AffectNet classes, alphabetical)"},
    "hsemotion-7": {"classes": tuple(c for c in _HSEMOTION_8 if c != "Contempt"), "input_size": 224,
                    "colour": "rgb", "scale": 1 / 255, "mean": IMAGENET_MEAN, "std": IMAGENET_STD,
                    "name": "HSEmotion/EmotiEffLib 7-class convention (alphabetical)"},
    "affectnet-8": {"classes": ("Neutral", "Happy", "Sad", "Surprise", "Fear", "Disgust", "Anger", "Contempt"),
                    "input_size": 224, "colour": "rgb", "scale": 1 / 255, "mean": IMAGENET_MEAN,
                    "std": IMAGENET_STD, "name": "AffectNet 8-class order"},
    "fer2013-7": {"classes": ("Angry", "Disgust", "Fear", "Happy", "Sad", "Surprise", "Neutral"),
                  "input_size": 48, "colour": "gray", "scale": 1 / 255, "mean": (0.0,), "std": (1.0,),
                  "name": "FER2013 7-class order, grey"},
}

# Names a model may give its classes, lower case -> rdfer's label.
SYNONYMS = {
    "happy": "Happy", "happiness": "Happy", "joy": "Happy",
    "sad": "Sad", "sadness": "Sad",
    "neutral": "Neutral", "calm": "Neutral",
    "angry": "Angry", "anger": "Angry",
    "surprise": "Surprise", "surprised": "Surprise",
    "disgust": "Disgust", "disgusted": "Disgust",
    "fear": "Fear", "fearful": "Fear", "afraid": "Fear",
    "contempt": "Contempt",
}
COLOURS = ("rgb", "bgr", "gray")
SIDECAR_SUFFIXES = (".json", ".yaml", ".yml")


@dataclass(frozen=True)
class ModelSpec:
    """How to feed an ONNX model and read its output (the sidecar's fields, see the module docstring)."""

    classes: tuple[str, ...]
    input_size: int | None = None
    colour: str = "rgb"
    scale: float = 1 / 255
    mean: tuple[float, ...] = (0.0,)
    std: tuple[float, ...] = (1.0,)
    layout: str | None = None
    output: str = "auto"
    contempt: str = "keep"
    rename: bool = True
    kind: str = "frame"
    num_frames: int | None = None
    resampled: int | None = None
    name: str = ""
    source: str = field(default="", compare=False)  # where the spec came from, for messages
    size_from_preset: bool = field(default=False, compare=False)  # input_size a preset's default, not a claim

    def to_dict(self) -> dict:
        out = {k: v for k, v in self.__dict__.items() if k not in ("source", "size_from_preset") and v is not None}
        return {k: list(v) if isinstance(v, tuple) else v for k, v in out.items()}


def sidecar_path(model: Path) -> Path | None:
    """The sidecar beside `model` (FILE.json, FILE.yaml, FILE.yml), or None."""
    for suffix in SIDECAR_SUFFIXES:
        path = Path(model).with_suffix(suffix)
        if path.is_file():
            return path
    return None


def _read_mapping(path: Path) -> dict:
    check_size(path, bounded_tables.MAX_JSON_BYTES, "a model spec")
    try:
        text = Path(path).read_text()
        data = json.loads(text) if path.suffix == ".json" else _yaml(text)
    except (OSError, UnicodeDecodeError, ValueError) as error:
        raise RdferError(f"model spec {path}: cannot be read as {path.suffix[1:].upper()} ({error})") from None
    if not isinstance(data, dict):
        raise RdferError(f"model spec {path}: expected a mapping of fields (classes, input_size, ...)")
    return data


def _yaml(text: str):
    import yaml

    try:
        return load_yaml(text)  # bounded: size, aliases
    except (yaml.YAMLError, RecursionError) as error:
        raise ValueError(str(error).splitlines()[0]) from None


def read_spec(model, spec=None) -> ModelSpec:
    """The ModelSpec of `model`: from `spec` (a preset name or a JSON/YAML file), else its sidecar.

    Raises RdferError naming the file when there is none or a field is wrong.
    """
    model = Path(model)
    if spec is not None and str(spec) in PRESETS:
        fields, source = {"preset": str(spec)}, f"preset {spec}"
    elif spec is not None:
        path = Path(spec)
        if not path.is_file():
            raise RdferError(f"--model-spec {spec}: neither a preset ({', '.join(PRESETS)}) nor a file")
        fields, source = _read_mapping(path), str(path)
    else:
        path = sidecar_path(model)
        if path is None:
            raise RdferError(
                f"--model {model}: no sidecar beside it ({model.with_suffix('.json').name}) saying its classes, "
                f"input size, colours and normalisation; write one, or give --model-spec with a preset "
                f"({', '.join(PRESETS)}) or a JSON/YAML file (docs/predict.md)")
        fields, source = _read_mapping(path), str(path)
    return spec_from_fields(fields, source)


def spec_from_fields(fields: dict, source: str = "") -> ModelSpec:
    """A checked ModelSpec from a sidecar's fields (a `preset` first, the other fields over it)."""
    fields = dict(fields)
    preset = fields.pop("preset", None)
    size_from_preset = preset is not None and "input_size" not in fields
    if preset is not None:
        if preset not in PRESETS:
            raise RdferError(f"model spec {source}: unknown preset {preset!r}; choose one of {', '.join(PRESETS)}")
        fields = {**PRESETS[preset], **fields}
    known = set(ModelSpec.__dataclass_fields__) - {"source", "size_from_preset"}
    unknown = sorted(set(fields) - known)
    if unknown:
        raise RdferError(f"model spec {source}: unknown field(s) {', '.join(unknown)}; known: {', '.join(sorted(known))}")
    if not fields.get("classes"):
        raise RdferError(f"model spec {source}: it names no classes; give `classes` (the outputs in order) or a preset")

    def floats(name):
        value = fields.get(name)
        if value is None:
            return None
        values = tuple(float(v) for v in (value if isinstance(value, (list, tuple)) else [value]))
        if len(values) not in (1, 3) or not all(math.isfinite(v) for v in values):
            raise RdferError(f"model spec {source}: {name} must be one number or three, got {value!r}")
        return values

    try:
        spec = ModelSpec(
            classes=tuple(str(c) for c in fields["classes"]),
            input_size=None if fields.get("input_size") is None else int(fields["input_size"]),
            colour=str(fields.get("colour", "rgb")).lower(), scale=float(fields.get("scale", 1 / 255)),
            mean=floats("mean") or (0.0,), std=floats("std") or (1.0,),
            layout=None if fields.get("layout") is None else str(fields["layout"]).lower(),
            output=str(fields.get("output", "auto")).lower(), contempt=str(fields.get("contempt", "keep")),
            rename=bool(fields.get("rename", True)),
            kind=str(fields.get("kind", "frame")).lower(),
            num_frames=None if fields.get("num_frames") is None else int(fields["num_frames"]),
            resampled=None if fields.get("resampled") is None else int(fields["resampled"]),
            name=str(fields.get("name", "")), source=source, size_from_preset=size_from_preset)
    except (TypeError, ValueError) as error:
        raise RdferError(f"model spec {source}: {error}") from None
    problems = []
    if spec.colour not in COLOURS:
        problems.append(f"colour must be one of {', '.join(COLOURS)}, got {spec.colour!r}")
    if spec.layout not in (None, "nchw", "nhwc"):
        problems.append(f"layout must be nchw or nhwc, got {spec.layout!r}")
    if spec.output not in ("auto", "logits", "probabilities"):
        problems.append(f"output must be auto, logits or probabilities, got {spec.output!r}")
    if spec.kind not in ("frame", "clip"):
        problems.append(f"kind must be frame or clip, got {spec.kind!r}")
    if spec.kind == "clip" and not spec.num_frames:
        problems.append("a clip model needs num_frames")
    if any(s == 0 for s in spec.std):
        problems.append("std must not be 0")
    if spec.input_size is not None and not 8 <= spec.input_size <= 2048:
        problems.append(f"input_size must be 8 to 2048 pixels, got {spec.input_size}")
    if problems:
        raise RdferError(f"model spec {source}: " + "; ".join(problems))
    class_map(spec)  # raises for a contempt option that names no class
    return spec


def class_map(spec: ModelSpec) -> tuple[tuple[str, ...], np.ndarray]:
    """(rdfer class names, matrix (C_model, C_out)) that maps the model's probabilities onto them.

    Model classes are renamed to rdfer's labels by name (SYNONYMS; unknown names are
    kept as they are), in rdfer's order first, then the others in the model's order.
    A Contempt output follows `spec.contempt`: kept, dropped (a zero column; the
    caller renormalises) or added to the label it names.
    """
    if not spec.rename:
        return tuple(spec.classes), np.eye(len(spec.classes), dtype=np.float32)
    names = [SYNONYMS.get(c.strip().lower(), c.strip()) for c in spec.classes]
    target = {}
    contempt = spec.contempt
    mapped_contempt = None
    if contempt not in ("keep", "drop"):
        mapped_contempt = SYNONYMS.get(contempt.lower(), contempt)
        if mapped_contempt not in names or mapped_contempt == "Contempt":
            raise RdferError(f"model spec {spec.source}: contempt={contempt!r} names no other class of the model "
                             f"({', '.join(spec.classes)}); use keep, drop or one of them")
    for k, name in enumerate(names):
        if name == "Contempt" and contempt != "keep":
            target[k] = None if contempt == "drop" else mapped_contempt
        else:
            target[k] = name
    kept = [n for n in dict.fromkeys(t for t in target.values() if t is not None)]
    if len(kept) != len([t for t in target.values() if t is not None]) and mapped_contempt is None:
        raise RdferError(f"model spec {spec.source}: two outputs have the same class ({', '.join(spec.classes)})")
    out = tuple([c for c in DFEW_CLASSES if c in kept] + [c for c in kept if c not in DFEW_CLASSES])
    matrix = np.zeros((len(names), len(out)), np.float32)
    for k, name in target.items():
        if name is not None:
            matrix[k, out.index(name)] = 1.0
    return out, matrix


def _softmax(x: np.ndarray) -> np.ndarray:
    e = np.exp(x - x.max(axis=-1, keepdims=True))
    return e / e.sum(axis=-1, keepdims=True)


def to_probabilities(values: np.ndarray, output: str) -> np.ndarray:
    """Model outputs (N, C) -> probabilities: softmax of logits; rows already probabilities kept ('auto')."""
    values = np.asarray(values, np.float64)
    if output == "probabilities":
        return values
    if output == "auto" and values.size and values.min() >= 0 and np.allclose(values.sum(-1), 1.0, atol=1e-3):
        return values
    return _softmax(values)


_threads: list = [None]  # threads of the sessions made from now on (set_threads); None: onnxruntime's default


def set_threads(threads: int | None) -> int | None:
    """Threads of every onnxruntime session rdfer makes from now on (None: onnxruntime's default, every
    core), as torch.set_num_threads does for PyTorch; returns the previous setting."""
    before, _threads[0] = _threads[0], threads
    return before


def session_threads() -> int | None:
    """The threads set by `set_threads` (None: onnxruntime's default)."""
    return _threads[0]


def _onnxruntime(what: str):
    try:
        import onnxruntime as ort
    except ImportError:
        raise RdferError(f"{what} needs onnxruntime: pip install onnxruntime") from None
    return ort


def _options(ort, threads: int | None):
    options = ort.SessionOptions()
    options.log_severity_level = 3
    if threads:
        options.intra_op_num_threads = threads
        options.inter_op_num_threads = 1
    return options


def _load_session(ort, path: Path, options, providers: list[str], what: str):
    if not path.is_file():
        raise RdferError(f"{what} {path}: no such file")
    try:
        return ort.InferenceSession(str(path), options, providers=providers)
    except Exception as error:  # onnxruntime raises its own types for a file that is not a model
        reason = str(error).strip().splitlines()[0][:200] if str(error).strip() else type(error).__name__
        raise RdferError(f"{what} {path}: not an ONNX model onnxruntime can load ({reason})") from None


def cpu_session(path, threads: int | None, what: str):
    """An onnxruntime session of the ONNX file `path` on the CPU; RdferError naming `what` and the file if not."""
    ort = _onnxruntime(what)
    return _load_session(ort, Path(path), _options(ort, threads), ["CPUExecutionProvider"], what)


def _session(path: Path, device: str, threads: int | None):
    ort = _onnxruntime("--model FILE.onnx")
    providers = ["CPUExecutionProvider"]
    if device.startswith("cuda") or device == "auto":
        if "CUDAExecutionProvider" in ort.get_available_providers():
            providers.insert(0, "CUDAExecutionProvider")
        elif device != "auto":
            raise RdferError(f"--device {device}: this onnxruntime has no CUDA provider; use --device cpu")
    return _load_session(ort, path, _options(ort, threads), providers, "--model")


class _OnnxModel:
    """What both ONNX predictors share: the session, the spec, the input shape checks, preprocessing."""

    def __init__(self, path, spec: ModelSpec, device: str, threads: int | None, rank: int):
        self.path = Path(path)
        self.session = _session(self.path, device, threads)
        inputs = self.session.get_inputs()
        if len(inputs) != 1:
            raise RdferError(f"--model {self.path}: it takes {len(inputs)} inputs; rdfer feeds one (face crops)")
        self.input = inputs[0]
        shape = list(self.input.shape)
        what = "(N, C, H, W) or (N, H, W, C) face crops" if rank == 4 else "(B, T, C, H, W) clips of face crops"
        if len(shape) != rank:
            raise RdferError(f"--model {self.path}: its input has shape {shape}; a {spec.kind} model takes {what}")
        if "float" not in self.input.type:
            raise RdferError(f"--model {self.path}: its input is {self.input.type}; rdfer feeds float tensors")
        channels = 1 if spec.colour == "gray" else 3
        layout = spec.layout or ("nhwc" if shape[-1] in (1, 3) and shape[-3] not in (1, 3) else "nchw")
        c_axis, hw = (-1, shape[-3:-1]) if layout == "nhwc" else (-3, shape[-2:])
        if isinstance(shape[c_axis], int) and shape[c_axis] != channels:
            raise RdferError(f"--model {self.path}: its input has {shape[c_axis]} channel(s) (shape {shape}) but the "
                             f"spec says {spec.colour} ({channels}); fix `colour` in {spec.source or 'the spec'}")
        fixed = [s for s in hw if isinstance(s, int)]
        if fixed and (len(set(fixed)) != 1 or len(fixed) != 2):
            raise RdferError(f"--model {self.path}: its input shape {shape} is not a square image")
        size = fixed[0] if fixed else spec.input_size
        if size is None:
            raise RdferError(f"--model {self.path}: its input size is not fixed; give `input_size` in the spec")
        if spec.input_size is not None and fixed and spec.input_size != size and not spec.size_from_preset:
            raise RdferError(f"--model {self.path}: its input is {size}x{size} px but {spec.source} says "
                             f"input_size {spec.input_size}")
        self.spec, self.layout, self.crop_size, self.channels = spec, layout, int(size), channels
        self.classes, self._map = class_map(spec)
        mean, std = np.asarray(spec.mean, np.float32), np.asarray(spec.std, np.float32)
        self._mean, self._std = mean[:channels] if len(mean) >= channels else mean, std[:channels] if len(std) >= channels else std

    def preprocess(self, crops: np.ndarray) -> np.ndarray:
        """uint8 (..., S, S, 3) RGB -> float32 in the model's colours, normalisation and layout."""
        x = crops.astype(np.float32)
        if self.spec.colour == "bgr":
            x = x[..., ::-1]
        elif self.spec.colour == "gray":
            x = (x @ np.array([0.299, 0.587, 0.114], np.float32))[..., None]
        x = (x * np.float32(self.spec.scale) - self._mean) / self._std
        if self.layout == "nchw":
            x = np.moveaxis(x, -1, -3)
        return np.ascontiguousarray(x, np.float32)

    def mapped(self, values: np.ndarray) -> np.ndarray:
        """Outputs (N, C_model) -> probabilities (N, C_out) over rdfer's class names."""
        if values.ndim != 2 or values.shape[1] != len(self.spec.classes):
            raise RdferError(f"--model {self.path}: its output has shape {list(values.shape)}; expected "
                             f"(N, {len(self.spec.classes)}) for the classes {', '.join(self.spec.classes)}")
        probs = to_probabilities(values, self.spec.output) @ self._map
        return (probs / np.maximum(probs.sum(-1, keepdims=True), 1e-12)).astype(np.float32)

    def check(self, example: np.ndarray) -> None:
        """Run the model once on `example` crops: a model that cannot take them or gives a wrong shape fails now."""
        try:
            self.run(example)
        except RdferError:
            raise
        except Exception as error:
            reason = str(error).strip().splitlines()[0][:200]
            raise RdferError(f"--model {self.path}: it fails on a {self.crop_size}x{self.crop_size} "
                             f"{self.spec.colour} input ({reason})") from None


class OnnxFramePredictor(_OnnxModel):
    """A per-frame ONNX model: one prediction per face crop (averaged over each track by predict_video)."""

    kind = "frame"

    def __init__(self, path, spec: ModelSpec, device: str = "cpu", batch_size: int = 32, threads: int | None = None):
        super().__init__(path, spec, device, threads, rank=4)
        self.batch_size = batch_size
        self.description = (f"{spec.name or self.path.stem} (ONNX model {self.path}, run by onnxruntime; "
                            f"{self.crop_size}px {spec.colour} face crops, per-frame predictions averaged over time)")
        self.check(np.zeros((2, self.crop_size, self.crop_size, 3), np.uint8))

    def run(self, crops: np.ndarray) -> np.ndarray:
        out = self.session.run(None, {self.input.name: self.preprocess(crops)})[0]
        return self.mapped(np.asarray(out))

    def probabilities(self, crops: np.ndarray) -> np.ndarray:
        """uint8 (N, S, S, 3) RGB face crops -> float32 (N, C) probabilities over `classes`."""
        parts = [self.run(crops[i:i + self.batch_size]) for i in range(0, len(crops), self.batch_size)]
        return np.concatenate(parts) if parts else np.zeros((0, len(self.classes)), np.float32)


class OnnxClipPredictor(_OnnxModel):
    """An exported rdfer video model (`rdfer export --checkpoint`): clips (B, T, C, H, W) in, video logits out.

    Its outputs, by name: logits (B, C), clip_logits (B, n1, C) and, with key-expression
    re-sampling, mu (B,) and delta (B,).
    """

    kind = "clip"

    def __init__(self, path, spec: ModelSpec, device: str = "cpu", batch_size: int = 4, threads: int | None = None):
        super().__init__(path, spec, device, threads, rank=5)
        self.num_frames, self.resampled, self.batch_size = int(spec.num_frames), spec.resampled, batch_size
        self.outputs = [o.name for o in self.session.get_outputs()]
        if not {"logits", "clip_logits"} <= set(self.outputs):
            raise RdferError(f"--model {self.path}: a clip model must have outputs logits and clip_logits "
                             f"(an `rdfer export --checkpoint` file); it has {', '.join(self.outputs)}")
        self.description = (f"{spec.name or self.path.stem} (ONNX model {self.path}, run by onnxruntime; "
                            f"{self.num_frames} frames of {self.crop_size}px per clip)")
        self.check(np.zeros((1, self.num_frames, self.crop_size, self.crop_size, 3), np.uint8))

    def run(self, clips: np.ndarray) -> dict:
        values = self.session.run(None, {self.input.name: self.preprocess(clips)})
        return dict(zip(self.outputs, values))

    def predict_clips(self, clips: np.ndarray) -> dict:
        """uint8 (B, T, S, S, 3) RGB clips -> the dict ClipPredictor.predict_clips returns."""
        parts = [self.run(clips[i:i + self.batch_size]) for i in range(0, len(clips), self.batch_size)]
        joined = {k: np.concatenate([p[k] for p in parts]) for k in parts[0]}
        clip = joined["clip_logits"]
        return {"probabilities": self.mapped(joined["logits"]),
                "clip_probabilities": self.mapped(clip.reshape(-1, clip.shape[-1])).reshape(*clip.shape[:2], -1),
                "mu": joined["mu"].reshape(-1) if "mu" in joined else None,
                "delta": joined["delta"].reshape(-1) if "delta" in joined else None}


def load_onnx_predictor(path, spec=None, device: str = "cpu", batch_size: int | None = None,
                        threads: int | None = None):
    """The predictor of an ONNX model; `spec` a preset name, a spec file, a ModelSpec, or None (its sidecar)."""
    spec = spec if isinstance(spec, ModelSpec) else read_spec(path, spec)
    if spec.kind == "clip":
        return OnnxClipPredictor(path, spec, device, batch_size or 4, threads)
    return OnnxFramePredictor(path, spec, device, batch_size or 32, threads)


def is_onnx(path) -> bool:
    """Whether `path` names an ONNX file (by its suffix)."""
    return path is not None and Path(path).suffix.lower() == ".onnx"


__all__ = ["PRESETS", "ModelSpec", "OnnxClipPredictor", "OnnxFramePredictor", "class_map", "is_onnx",
           "load_onnx_predictor", "read_spec", "sidecar_path", "spec_from_fields", "to_probabilities"]
