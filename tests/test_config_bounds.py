"""Every config key has a type and a bounded range, declared in the schema, and the loader enforces each.

The keys are read from the dataclasses themselves (the run config's sections and
every registered model's config), so a new key without a range fails
`test_every_numeric_key_has_both_ends`, and each range is exercised through the
loader with a value just past it (`--set`): removing a range, or the loader's
check of it, fails here.
"""

import dataclasses
import math
import typing

import pytest

from rdfer.cli.preflight import checked_config
from rdfer.errors import RdferError
from rdfer.models import list_models, model_config
from rdfer.schema import DataConfig, OptimConfig, ReweightConfig, TrainConfig, field_types

SECTIONS = {"": TrainConfig, "data.": DataConfig, "loss.": ReweightConfig, "optim.": OptimConfig}
MODEL_CONFIGS = {type(model_config(name)) for name in list_models()}


def _kind(hint):
    args = [a for a in typing.get_args(hint) if a is not type(None)]
    hint = args[0] if typing.get_origin(hint) is typing.Union and len(args) == 1 else hint
    if hint in (int, float):
        return "number"
    if hint is tuple or typing.get_origin(hint) in (tuple, list):
        return "list"
    return None


def _keys():
    """(dotted key, config class, field name, kind) of every numeric or list key a config may set."""
    for prefix, cls in SECTIONS.items():
        for name, hint in field_types(cls).items():
            if _kind(hint) and name != "RANGES":
                yield prefix + name, cls, name, _kind(hint)
    for cls in sorted(MODEL_CONFIGS, key=lambda c: c.__name__):
        for name, hint in field_types(cls).items():
            if _kind(hint) and name != "RANGES":
                yield f"model.options.{name}@{cls.__name__}", cls, name, _kind(hint)


KEYS = list(_keys())


def test_every_numeric_key_has_both_ends_and_every_list_a_length():
    loose = []
    for key, cls, name, kind in KEYS:
        limits = cls.RANGES.get(name)
        if limits is None or limits.low is None or limits.high is None:
            loose.append(f"{key}: no range with both ends")
        elif kind == "list" and limits.max_items is None:
            loose.append(f"{key}: no max_items")
    assert loose == []


def _model_for(cls):
    return next(name for name in list_models() if type(model_config(name)) is cls)


@pytest.mark.parametrize("key, cls, name, kind", KEYS, ids=[k[0] for k in KEYS])
def test_a_value_past_each_range_is_refused_naming_the_set_and_the_key(key, cls, name, kind):
    limits = cls.RANGES[name]
    hint = field_types(cls)[name]
    integer = int in typing.get_args(hint) or hint is int
    above = limits.high + 1 if integer else limits.high * 2 + 1
    value = f"[{', '.join([str(above)] * 2)}]" if kind == "list" else str(above)
    sets = [f"{key.split('@')[0]}={value}"]
    if key.startswith("model.options."):
        sets.append(f"model.name={_model_for(cls)}")
    with pytest.raises(RdferError) as error:
        checked_config(None, tuple(sets), data_inputs=())
    message = str(error.value)
    assert f"--set {sets[0]}" in message and name in message and "\n" not in message, message


@pytest.mark.parametrize("key, value, text", [("model.options.mean", "[0.5, 0.5, 0.5, 0.5]", "at most 3 items"),
                                              ("data.crop_scale", "[0.1, 0.5, 1.0]", "crop_scale")])
def test_a_list_longer_than_its_key_takes_is_refused(key, value, text):
    with pytest.raises(RdferError) as error:
        checked_config(None, (f"{key}={value}",), data_inputs=())
    assert key.split(".")[-1] in str(error.value) and text in str(error.value)


def test_a_list_range_bounds_the_number_of_items_before_any_item():
    from rdfer.utils.ranges import Range, check_fields

    @dataclasses.dataclass
    class Listed:
        values: tuple = ()
        RANGES: typing.ClassVar[dict] = {"values": Range(0, 1, max_items=2)}

    assert check_fields(Listed, {"values": (0.5, 0.5)}) is None
    key, value, advice = check_fields(Listed, {"values": (0.5,) * 10**6})
    assert key == "values" and advice == "give at most 2 items" and value == "a list of 1000000 items"


def test_the_shipped_configs_hold_within_every_range():
    from rdfer.config import SHIPPED_CONFIGS

    for path in sorted(SHIPPED_CONFIGS.glob("*.yaml")):
        checked_config(str(path), ("data.root=.",), data_inputs=())


def test_batch_times_frames_times_pixels_is_bounded_before_any_work():
    # Each within its range; the product is 16384 x 1024 x 3 x 1024^2 x 4 bytes.
    with pytest.raises(RdferError) as error:
        checked_config(None, ("optim.batch_size=16384", "model.options.num_frames=1024",
                              "model.options.input_size=1024"), data_inputs=())
    assert "GiB" in str(error.value) and "optim.batch_size" in str(error.value)
    assert math.isfinite(16384 * 1024 * 3 * 1024**2 * 4)


def test_a_model_option_that_breaks_the_models_own_check_names_its_source():
    with pytest.raises(RdferError) as error:
        checked_config(None, ("model.options.width=100",), data_inputs=())  # rdfer_r18: width = 2 * hidden
    assert str(error.value).startswith("--set model.options.width=100: model.options") and "hidden" in str(error.value)


def test_a_missing_data_path_is_refused_naming_the_config_key(tmp_path):
    with pytest.raises(RdferError) as error:
        checked_config(None, (f"data.root={tmp_path / 'nowhere'}",))
    assert f"--set data.root={tmp_path / 'nowhere'}: data.root" in str(error.value)
    assert dataclasses.is_dataclass(TrainConfig)


def test_a_class_attribute_is_not_a_config_key():
    with pytest.raises(RdferError) as error:
        checked_config(None, ("optim.RANGES=3",), data_inputs=())
    assert "unknown config key optim.RANGES" in str(error.value)
