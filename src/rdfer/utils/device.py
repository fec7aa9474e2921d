"""Which torch device to run on."""

import torch

from rdfer.errors import RdferError


def resolve_device(name: str, option: str = "--device ") -> torch.device:
    """"auto" -> cuda when available, else cpu; anything else as torch spells it (cpu, cuda, cuda:1, mps).

    Args:
        name: the device as the user wrote it.
        option: how the user wrote it, for errors: "--device " (a command's option) or
            "--set device=" (the training config's `device`).
    Raises:
        RdferError: a name torch does not know, or CUDA asked for on a machine without a GPU.
    """
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        device = torch.device(name)
    except RuntimeError:
        raise RdferError(f"unknown {option}{name}; use auto, cpu, cuda, cuda:N or mps") from None
    if device.type == "cuda" and not torch.cuda.is_available():
        raise RdferError(f"{option}{name}: no CUDA GPU is available here; use {option}cpu")
    return device
