"""The one builder behind every registered model's entry point."""

from contextvars import ContextVar
from dataclasses import fields
from typing import Callable

from torch import nn

from rdfer.errors import RdferError
from rdfer.models.base import VideoConfig
from rdfer.models.mini_xception import MiniXceptionEncoder
from rdfer.schema import typed_fields

# Set by `config_only` (rdfer.models.model_config): build_video_model then returns the checked config, no model.
_CONFIG_ONLY: ContextVar[bool] = ContextVar("rdfer_model_config_only", default=False)


def build_video_model(model_cls: Callable[[VideoConfig], nn.Module], config_cls: type, name: str,
                      defaults: dict, overrides: dict) -> nn.Module:
    """A model from a registered variant's defaults, overridden by user config fields.

    Args:
        model_cls: config -> model (a VideoModel class, or a function choosing one).
        config_cls: the config dataclass, a VideoConfig.
        name: the registered name, stored as `config.name`.
        defaults: the variant's field values.
        overrides: the user's fields (create_model's keyword arguments, a YAML's
            model.options), typed as config values are ("32" -> 32).
    Raises:
        RdferError: an unknown field, a value of the wrong type, or a bad combination.
    """
    known = {field.name for field in fields(config_cls)} - {"name"}
    unknown = sorted(set(overrides) - known)
    if unknown:
        raise RdferError(f"model {name}: unknown config fields {unknown}; known fields: {', '.join(sorted(known))}")
    config = {**defaults, **typed_fields(config_cls, overrides, f"model {name} option")}
    if config.get("encoder") == "mini_xception":
        # That encoder takes [0, 1] RGB and normalises itself (grey, fer's scaling):
        # identity mean/std unless the user chose others.
        config.setdefault("mean", MiniXceptionEncoder.mean)
        config.setdefault("std", MiniXceptionEncoder.std)
    config = config_cls(name=name, **config)
    return config if _CONFIG_ONLY.get() else model_cls(config)


def config_only(entrypoint: Callable, **cfg) -> VideoConfig:
    """What `entrypoint(**cfg)` would build the model from, checked as it would be, without building it."""
    token = _CONFIG_ONLY.set(True)
    try:
        return entrypoint(**cfg)
    finally:
        _CONFIG_ONLY.reset(token)
