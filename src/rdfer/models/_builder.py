"""The one builder behind every registered model's entry point."""

from dataclasses import fields
from typing import Callable

from torch import nn

from rdfer.errors import RdferError
from rdfer.models.base import VideoConfig
from rdfer.models.mini_xception import MiniXceptionEncoder
from rdfer.schema import typed_fields


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
    return model_cls(config_cls(name=name, **config))
