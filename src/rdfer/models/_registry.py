"""The model registry: every variant is one function registered under its own name.

    @register_model
    def rdfer_r18(**cfg) -> RDFERNet:
        return build_video_model(RDFERNet, ModelConfig, "rdfer_r18", {"encoder": "resnet18"}, cfg)

Importing `rdfer.models` imports every model module, so every variant is
registered before `create_model` (`_factory.py`) or `list_models` is called.
"""

from typing import Callable

_MODELS: dict[str, Callable] = {}


def register_model(fn: Callable) -> Callable:
    """Register `fn(**cfg) -> nn.Module` under its function name."""
    if fn.__name__ in _MODELS:
        raise ValueError(f"model {fn.__name__!r} is registered twice")
    _MODELS[fn.__name__] = fn
    return fn


def list_models() -> list[str]:
    """Names of every registered model, sorted."""
    return sorted(_MODELS)


def model_entrypoint(name: str) -> Callable | None:
    """The registered function `name`, or None."""
    return _MODELS.get(name)
