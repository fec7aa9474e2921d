"""`create_model`: a registered model by name.

    model = rdfer.create_model("rdfer_r18", num_classes=7)
"""

from torch import nn

from rdfer.errors import RdferError
from rdfer.models._registry import list_models, model_entrypoint


def create_model(name: str, **cfg) -> nn.Module:
    """Build the registered model `name`; `cfg` overrides its config fields."""
    entrypoint = model_entrypoint(name)
    if entrypoint is None:
        raise RdferError(f"unknown model {name!r}; known models: {', '.join(list_models())}")
    return entrypoint(**cfg)
