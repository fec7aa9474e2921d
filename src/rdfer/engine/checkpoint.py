"""Training checkpoints: written atomically, loaded with `weights_only=True`.

A training checkpoint is the model checkpoint of `rdfer.models.checkpoint`
(`model_name`, `model_config`, `model`) plus everything a resumed run needs to
continue exactly where it stopped: optimizer, scheduler, grad scaler, loss
statistics, epoch, best-so-far and the random number generator states.
"""

import errno
import random
from pathlib import Path

import numpy as np
import torch

from rdfer.errors import RdferError
from rdfer.utils.checkpoint import read_checkpoint
from rdfer.utils.outputs import atomic_output


def atomic_save(payload: dict, path: Path) -> None:
    """torch.save to a temporary file, then rename: a kill leaves the old file intact; a failed write
    (a full disk) leaves no temporary file and names the file (RdferError)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_output(path) as tmp:
        try:
            torch.save(payload, tmp)
        except RuntimeError as error:  # torch's zip writer reports a failed write (ENOSPC) this way
            raise OSError(errno.EIO, " ".join(str(error).split())) from None


def rng_state() -> dict:
    """The states of every random number generator the training loop touches."""
    np_state = np.random.get_state()
    return {
        "torch": torch.get_rng_state(),
        "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else [],
        # numpy's tuple holds an ndarray, which weights_only loading refuses: store a tensor.
        "numpy": [np_state[0], torch.from_numpy(np_state[1].astype(np.int64)), *np_state[2:]],
        "python": random.getstate(),
    }


def set_rng_state(state: dict) -> None:
    torch.set_rng_state(state["torch"])
    if state["cuda"] and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])
    name, keys, *rest = state["numpy"]
    np.random.set_state((name, keys.numpy().astype(np.uint32), *rest))
    version, internal, gauss = state["python"]
    random.setstate((version, tuple(internal), gauss))


def load_training_checkpoint(path: Path) -> dict:
    """Load a checkpoint written by `rdfer train` (for --resume)."""
    path = Path(path)
    if not path.is_file():
        raise RdferError(f"no checkpoint at {path}: nothing to resume (was the run started with this --out?)")
    state = read_checkpoint(path)  # one-line errors for truncated or foreign files
    missing = {"model", "optimizer", "epoch", "rng"} - set(state)
    if missing:
        raise RdferError(f"{path} lacks {', '.join(sorted(missing))}: it is not a training checkpoint of rdfer")
    return state
