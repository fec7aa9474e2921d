"""`rdfer export`: a model to an ONNX file that `rdfer predict --model` (or any ONNX runtime) runs.

    result = export_onnx("model.onnx")                                   # the built-in per-frame model
    result = export_onnx("video.onnx", checkpoint="RUN/checkpoints/best.pt")   # a model trained with rdfer
    result["max_difference"]   # largest |probability| difference, onnxruntime against PyTorch

- No checkpoint: the built-in FER2013 mini-Xception with its grey conversion,
  input float (N, 3, 64, 64) RGB in [0, 1], output `probabilities` (N, 7) in
  rdfer's class order.
- A checkpoint of `rdfer train`: the video model, input float (B, T, 3, S, S) RGB
  in [0, 1] (its normalisation is inside the graph), outputs `logits` (B, C),
  `clip_logits` (B, n1, C) and, with key-expression re-sampling, `mu` and `delta` (B,).

The sidecar `FILE.json` beside it (onnx_models.py) says how to feed it. The file
is checked before it is kept: onnxruntime and PyTorch run the same inputs and
their probabilities must agree within `TOLERANCE`; otherwise nothing is left behind.
Both files are written under temporary names and renamed into place.
"""

import contextlib
import json
import warnings
from pathlib import Path

import numpy as np
import torch
from torch import nn

from rdfer.errors import RdferError
from rdfer.inference.onnx_models import OnnxClipPredictor, OnnxFramePredictor, spec_from_fields
from rdfer.inference.predictors import ClipPredictor
from rdfer.labels import DFEW_CLASSES
from rdfer.models.mini_xception import INPUT_SIZE, fer_frame_classifier
from rdfer.utils.outputs import atomic_output

TOLERANCE = 1e-4  # largest allowed difference of any probability between onnxruntime and PyTorch
OPSET = 18


class _VideoOutputs(nn.Module):
    """A video model with plain tensor outputs (ONNX has no dataclasses)."""

    def __init__(self, model: nn.Module):
        super().__init__()
        self.model = model

    def forward(self, video: torch.Tensor):
        out = self.model(video)
        if out.mu is None:
            return out.logits, out.clip_logits
        return out.logits, out.clip_logits, out.mu, out.delta


def _frame_model():
    model = fer_frame_classifier().eval()
    spec = {"kind": "frame", "classes": list(DFEW_CLASSES), "input_size": INPUT_SIZE, "colour": "rgb",
            "scale": 1 / 255, "mean": [0.0], "std": [1.0], "layout": "nchw", "output": "probabilities",
            "name": "fer2013-mini-xception (exported by rdfer export; FER2013 still photos, not trained by rdfer)"}
    return model, ["probabilities"], spec, (2, 3, INPUT_SIZE, INPUT_SIZE)


def _video_model(checkpoint: Path):
    predictor = ClipPredictor(checkpoint)  # the checks and class names of `rdfer predict --checkpoint`
    model, config = predictor.model.eval(), predictor.model.config
    resample = bool(getattr(config, "resample", False))
    names = ["logits", "clip_logits"] + (["mu", "delta"] if resample else [])
    spec = {"kind": "clip", "classes": list(predictor.classes), "input_size": predictor.crop_size,
            "num_frames": predictor.num_frames, "resampled": predictor.resampled, "colour": "rgb",
            "scale": 1 / 255, "mean": [0.0], "std": [1.0], "layout": "nchw", "output": "logits", "rename": False,
            "name": f"{config.name} (exported by rdfer export from {checkpoint})"}
    return _VideoOutputs(model), names, spec, (2, predictor.num_frames, 3, predictor.crop_size, predictor.crop_size)


def _probabilities(name: str, values: np.ndarray, spec: dict) -> np.ndarray:
    values = np.asarray(values, np.float64)
    if name in ("logits", "clip_logits"):
        e = np.exp(values - values.max(-1, keepdims=True))
        return e / e.sum(-1, keepdims=True)
    return values


def onnx_export(model: nn.Module, example: torch.Tensor, path, names, dynamic: dict) -> None:
    """torch.onnx.export of `model` on one input named "input" (dynamo exporter, OPSET, one file) into `path`."""
    with torch.no_grad(), warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the exporter's notes on traced branches and its own deprecation
        torch.onnx.export(model, (example,), str(path), dynamo=True, external_data=False,
                          input_names=["input"], output_names=list(names), dynamic_shapes=(dynamic,),
                          opset_version=OPSET, verbose=False)


def largest_difference(model: nn.Module, session, inputs, names, path, compare=None) -> float:
    """The largest |difference| of any output (after `compare(name, values)`, if given) between the
    onnxruntime `session` and `model` on `inputs`. RdferError naming `path` when an output's shape
    differs, or when the difference is over TOLERANCE (the caller then does not keep the file)."""
    compare = compare or (lambda name, values: values)
    worst = 0.0
    for x in inputs:
        with torch.no_grad():
            expected = model(x)
        expected = expected if isinstance(expected, tuple) else (expected,)
        got = session.run(None, {"input": x.numpy()})
        for name, e, g in zip(names, expected, got):
            e = e.numpy()
            if g.shape != e.shape:
                raise RdferError(f"export {path}: output {name} has shape {g.shape} in ONNX, {e.shape} in PyTorch")
            worst = max(worst, float(np.abs(compare(name, g) - compare(name, e)).max()))
    if not worst <= TOLERANCE:
        raise RdferError(f"export {path}: onnxruntime and PyTorch differ by up to {worst:.2e} (more than "
                         f"{TOLERANCE:g}); the file was not kept")
    return worst


def export_onnx(out, checkpoint=None, seed: int = 0) -> dict:
    """Write `out` (.onnx) and its sidecar `out` with .json; check it with onnxruntime against PyTorch.

    Returns dict: out, sidecar, kind, classes, max_difference (probabilities; for mu/delta too,
    their own units), checked (the batch sizes run).
    Raises RdferError: a bad checkpoint or path, or a file that does not match PyTorch within TOLERANCE.
    """
    out = Path(out)
    if out.suffix.lower() != ".onnx":
        raise RdferError(f"--out {out}: give a file name ending in .onnx")
    if out.parent and not out.parent.is_dir():
        raise RdferError(f"--out {out}: the folder {out.parent} does not exist")
    model, names, spec_fields, shape = _video_model(Path(checkpoint)) if checkpoint else _frame_model()
    sidecar = out.with_suffix(".json")
    generator = torch.Generator().manual_seed(seed)
    example = torch.rand(shape, generator=generator)
    with contextlib.ExitStack() as files:  # both renamed into place when checked, both removed otherwise
        temp_sidecar = files.enter_context(atomic_output(sidecar))
        temp = files.enter_context(atomic_output(out))
        onnx_export(model, example, temp, names, {0: torch.export.Dim("batch", min=1, max=4096)})
        temp_sidecar.write_text(json.dumps(spec_fields, indent=1) + "\n")
        spec = spec_from_fields(spec_fields, str(sidecar))
        predictor = (OnnxClipPredictor if spec.kind == "clip" else OnnxFramePredictor)(temp, spec)
        batches = [3, 1]  # other batch sizes than the traced one
        inputs = [torch.rand((batch, *shape[1:]), generator=generator) for batch in batches]
        worst = largest_difference(model, predictor.session, inputs, names, out,
                                   lambda name, values: _probabilities(name, values, spec_fields))
    return {"out": str(out), "sidecar": str(sidecar), "kind": spec.kind, "classes": list(spec.classes),
            "max_difference": worst, "checked": batches, "name": spec.name}
