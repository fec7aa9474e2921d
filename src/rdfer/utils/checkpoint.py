"""Reading checkpoint files: the one guarded `torch.load`, always with `weights_only=True`.

Model checkpoints (`rdfer.models.checkpoint`), training checkpoints for --resume
(`rdfer.engine.checkpoint`) and the checkpoints given to eval, curate and predict
all come through `read_checkpoint`, so a bad file gives the same one line everywhere.
"""

from pathlib import Path

import torch

from rdfer.errors import RdferError


def read_checkpoint(path: Path, map_location="cpu") -> dict:
    """torch.load(path, weights_only=True), every failure an RdferError of one line."""
    path = Path(path)
    if path.is_dir():
        raise RdferError(f"checkpoint {path} is a folder; pass RUN/checkpoints/last.pt or best.pt")
    if not path.is_file():
        raise RdferError(f"checkpoint {path}: no such file; pass RUN/checkpoints/last.pt or best.pt")
    try:
        state = torch.load(path, map_location=map_location, weights_only=True)
    except Exception as error:  # truncated files, pickles with code, non-torch files
        raise RdferError(f"checkpoint {path} cannot be read: {load_error_reason(error)}") from None
    if not isinstance(state, dict):
        raise RdferError(f"checkpoint {path} is not an rdfer model checkpoint (it holds a {type(state).__name__})")
    return state


def load_error_reason(error: Exception) -> str:
    """Why torch.load(weights_only=True) failed, in a few words (never torch's advice to turn it off)."""
    text = str(error)
    if "weights_only" in text or "Weights only load failed" in text or "Unsupported global" in text:
        return ("it holds Python objects besides tensors, which rdfer never loads (checkpoints are read with "
                "weights_only=True); use a checkpoint written by rdfer train")
    if isinstance(error, EOFError) or any(word in text for word in ("central directory", "zip archive",
                                                                     "PytorchStreamReader", "truncated")):
        return "it is truncated or damaged (was it copied completely?)"
    if "magic number" in text or "invalid load key" in text:
        return "it is not a PyTorch checkpoint"
    first = text.strip().splitlines()[0][:200] if text.strip() else ""
    return f"it is not a PyTorch checkpoint, or it is damaged ({type(error).__name__}: {first})"
