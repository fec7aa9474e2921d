"""Issue 11, item 1: config values are typed and checked when the config is read.

Each case is one line a user could type; each failed on the old hand-written
parser (a string learning rate reaching AdamW, `maybe` taken as true, ...).
"""

from pathlib import Path

import pytest

from rdfer.cli import main
from rdfer.config import load_config, resume_config
from rdfer.errors import RdferError

CONFIGS = Path(__file__).resolve().parents[1] / "src" / "rdfer" / "configs"


def test_every_shipped_config_still_loads():
    files = sorted(CONFIGS.glob("*.yaml"))
    assert len(files) >= 20
    for path in files:
        config = load_config(path)
        assert isinstance(config.optim.lr, float) and isinstance(config.optim.min_lr, float), path.name


@pytest.mark.parametrize("item, key, value", [
    ("optim.lr=1e-3", "lr", 1e-3),          # rdfer's own example: YAML 1.1 read it as a string
    ("optim.min_lr=1e-6", "min_lr", 1e-6),
    ("optim.lr=5", "lr", 5.0),               # an int where a float is expected is coerced
])
def test_numbers_in_exponent_form_become_floats(item, key, value):
    optim = load_config(CONFIGS / "demo.yaml", (item,)).optim
    assert getattr(optim, key) == value and type(getattr(optim, key)) is float


def test_yaml_file_exponent_floats_and_off(tmp_path):
    path = tmp_path / "c.yaml"
    path.write_text("optim:\n  lr: 1e-3\n  min_lr: 1e-6\namp: off\n")
    config = load_config(path)
    assert (config.optim.lr, config.optim.min_lr, config.amp) == (1e-3, 1e-6, "off")


@pytest.mark.parametrize("item, expected", [
    ("optim.lr=abc", "optim.lr = 'abc' is not a number"),
    ("optim.epochs=1.5", "optim.epochs = 1.5 is not an integer"),
    ("seed=abc", "seed = 'abc' is not an integer"),
    ("threads=abc", "threads = 'abc' is not an integer or null"),
    ("loss.t_h=abc", "loss.t_h = 'abc' is not a number"),
    ("data.skip_bad=maybe", "data.skip_bad = 'maybe' is not true or false"),
    ("data.crop_scale=abc", "data.crop_scale = 'abc' is not a list of 2 numbers"),
    ("data.crop_scale=[a,b]", "data.crop_scale = ['a', 'b'] is not a list of 2 numbers"),
    ("data.crop_scale=[0.5]", "data.crop_scale = [0.5] is not a list of 2 numbers"),
    ("data.crop_scale=[0.9,0.1]", "data.crop_scale = [0.9, 0.1]"),
    ("eval_every=0", "eval_every = 0: give 1..10000"),
    ("data.num_workers=-1", "data.num_workers = -1"),
    ("optim.batch_size=0", "optim.batch_size = 0"),
    ("threads=0", "threads = 0"),
    ("device=gpu", "device = 'gpu'"),
    ("data.fold=9", "data.fold = 9"),
    ("optim.min_lr=1", "optim.min_lr = 1.0"),
    ("optim.nope=1", "unknown config key optim.nope; known keys in optim: epochs"),
    ("loss=3", "loss must be a section"),
])
def test_bad_values_are_refused_at_read_time_naming_key_and_value(item, expected):
    with pytest.raises(RdferError) as error:
        load_config(CONFIGS / "demo.yaml", (item,))
    message = str(error.value)
    assert expected in message and f"--set {item}" in message and "\n" not in message


def test_a_bad_value_in_a_file_names_the_file(tmp_path):
    path = tmp_path / "c.yaml"
    path.write_text("optim:\n  epochs: ten\n")
    with pytest.raises(RdferError, match=f"config file {path}: optim.epochs = 'ten' is not an integer"):
        load_config(path)


def test_model_options_stay_a_free_mapping():
    config = load_config(CONFIGS / "demo.yaml", ("model.options.resample=false", "model.options.new_thing=1e-3"))
    assert config.model.options["resample"] is False and config.model.options["new_thing"] == 1e-3
    assert config.model.options["encoder"] == "mini_xception"


def test_new_dataclass_fields_are_typed_without_changes(monkeypatch):
    # A field the lead adds to a section (here loss.clip_weight, a float) is checked like the rest.
    from rdfer.losses import ReweightConfig

    if "clip_weight" not in ReweightConfig.__dataclass_fields__:
        pytest.skip("loss.clip_weight not added yet")
    assert load_config(None, ("loss.clip_weight=5e-1",)).loss.clip_weight == 0.5
    with pytest.raises(RdferError, match="loss.clip_weight = 'x' is not a number"):
        load_config(None, ("loss.clip_weight=x",))


def test_resume_accepts_only_data_location_overrides():
    saved = {"data": {"root": "/old", "classes": ["a"]}, "optim": {"epochs": 3}}
    config = resume_config(saved, ("data.root=/new", "data.num_workers=0"), "RUN/config.yaml")
    assert config.data.root == "/new" and config.optim.epochs == 3
    with pytest.raises(RdferError, match="optim.lr cannot change when resuming"):
        resume_config(saved, ("optim.lr=1e-3",), "RUN/config.yaml")


def test_cli_prints_one_line_and_exits_2(capsys, tmp_path):
    code = main(["train", "--config", "demo", "--set", "optim.lr=abc", "--out", str(tmp_path / "run")])
    err = capsys.readouterr().err
    assert code == 2 and err.count("\n") == 1
    assert err.startswith("rdfer train: error: --set optim.lr=abc: optim.lr = 'abc' is not a number")


def test_seed_out_of_range_is_refused_at_read_time():
    with pytest.raises(RdferError, match=r"--set seed=99999999999999999999: seed = 99999999999999999999: give 0"):
        load_config(None, ("seed=99999999999999999999",))


def test_typed_fields_coerces_a_model_config_mapping():
    from dataclasses import dataclass

    from rdfer.schema import typed_fields

    @dataclass(frozen=True)
    class Net:
        input_size: int = 112
        mean: tuple = (0.5, 0.5, 0.5)
        resample: bool = True

    assert typed_fields(Net, {"input_size": "64", "mean": [0, 0, 0], "other": 1}, "model m") == \
        {"input_size": 64, "mean": (0, 0, 0), "other": 1}
    with pytest.raises(RdferError, match="model m: input_size = 'abc' is not an integer"):
        typed_fields(Net, {"input_size": "abc"}, "model m")


def test_demo_refuses_a_bad_override_before_rendering(tmp_path, capsys):
    out = tmp_path / "demo"
    assert main(["demo", "--out", str(out), "--set", "optim.epochs=x"]) == 2
    assert "optim.epochs = 'x' is not an integer" in capsys.readouterr().err and not out.exists()
