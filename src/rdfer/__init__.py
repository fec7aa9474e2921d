"""rdfer: robust dynamic facial expression recognition (RDFER) in PyTorch.

The public names are imported lazily so that `import rdfer` stays cheap and
the command line starts fast.
"""

import importlib

__version__ = "0.1.0"

_PUBLIC = {
    "create_model": "rdfer.models",
    "list_models": "rdfer.models",
    "agreement": "rdfer.losses",
    "predict_video": "rdfer.inference",
}

__all__ = sorted(_PUBLIC) + ["__version__"]


def __getattr__(name):
    if name in _PUBLIC:
        return getattr(importlib.import_module(_PUBLIC[name]), name)
    raise AttributeError(f"module 'rdfer' has no attribute {name!r}")
