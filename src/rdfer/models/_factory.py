"""`create_model`: a registered model by name.

    model = rdfer.create_model("rdfer_r18", num_classes=7)
    config = rdfer.models.model_config("rdfer_r18", input_size=64)   # the same checks, no model built
"""

from torch import nn

from rdfer.errors import RdferError
from rdfer.models._builder import config_only
from rdfer.models._registry import list_models, model_entrypoint
from rdfer.models.base import VideoConfig


def _entrypoint(name: str):
    entrypoint = model_entrypoint(name)
    if entrypoint is None:
        raise RdferError(f"unknown model {name!r}; known models: {', '.join(list_models())}")
    return entrypoint


def create_model(name: str, **cfg) -> nn.Module:
    """Build the registered model `name`; `cfg` overrides its config fields."""
    return _entrypoint(name)(**cfg)


def model_config(name: str, **cfg) -> VideoConfig:
    """The config `create_model(name, **cfg)` would build its model from (checked the same way), no weights
    loaded: for checking a run's settings before any work starts."""
    return config_only(_entrypoint(name), **cfg)
