"""rdfer: robust dynamic facial expression recognition (RDFER) in PyTorch.

    import rdfer
    predictor = rdfer.Predictor()                       # the model and face detector, loaded once
    predictor.predict("clip.mp4").to_frame()            # one file: a row per frame and face
    predictor.predict_many(["a.mp4", "b.mp4"]).to_frame()   # many: one DataFrame with a `video` column

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
    "Predictor": "rdfer.inference",
    "Predictions": "rdfer.inference",
    "PredictOptions": "rdfer.inference",
    "VideoPrediction": "rdfer.inference",
    "TrackPrediction": "rdfer.inference",
}

__all__ = sorted(_PUBLIC) + ["__version__"]


def __getattr__(name):
    if name in _PUBLIC:
        return getattr(importlib.import_module(_PUBLIC[name]), name)
    raise AttributeError(f"module 'rdfer' has no attribute {name!r}")


def __dir__():
    """The public names (loaded on first use) beside what is already imported: `dir(rdfer)` lists the API."""
    return sorted(set(globals()) | set(__all__))
