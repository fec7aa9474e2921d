"""A tiny model registry: every variant is one registered function.

    @register_model
    def rdfer_r18(**cfg):
        return build_rdfer("rdfer_r18", {"encoder": "resnet18"}, cfg)

    model = rdfer.create_model("rdfer_r18", num_classes=7)
"""

from typing import Callable

from rdfer.errors import RdferError

_MODELS: dict[str, Callable] = {}


def register_model(fn: Callable) -> Callable:
    """Register `fn(**cfg) -> nn.Module` under its function name."""
    if fn.__name__ in _MODELS:
        raise ValueError(f"model {fn.__name__!r} is registered twice")
    _MODELS[fn.__name__] = fn
    return fn


def _load_all_models() -> None:
    # Importing the package runs every @register_model in models/.
    import rdfer.models  # noqa: F401


def list_models() -> list[str]:
    """Names of every registered model, sorted."""
    _load_all_models()
    return sorted(_MODELS)


def create_model(name: str, **cfg):
    """Build the registered model `name`; `cfg` overrides its config fields."""
    _load_all_models()
    if name not in _MODELS:
        raise RdferError(f"unknown model {name!r}; known models: {', '.join(sorted(_MODELS))}")
    return _MODELS[name](**cfg)
