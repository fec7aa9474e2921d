"""The shipped paper configs follow SPEC 5's recipe."""

from pathlib import Path

import pytest
import torch

from rdfer.config import load_config
from rdfer.engine.fit import cosine_schedule
from rdfer.models import create_model

CONFIGS = Path(__file__).resolve().parents[1] / "src" / "rdfer" / "configs"
# The paper's runs (Tables I-VI, FERV39K, MAFW); demo.yaml and helper configs are not.
PAPER = sorted(p for p in CONFIGS.glob("*.yaml") if p.name.startswith(("dfew_", "ferv39k_", "mafw_")))


def test_paper_configs_warm_up_lr_and_reweighting_for_10_epochs():
    assert len(PAPER) >= 23
    for path in PAPER:
        config = load_config(path)
        assert config.optim.lr_warmup_epochs == 10, f"{path.name}: optim.lr_warmup_epochs"
        assert config.loss.warmup_epochs == 10, f"{path.name}: loss.warmup_epochs"


def test_lr_warm_up_is_linear_per_step_then_cosine():
    param = torch.nn.Parameter(torch.zeros(1))
    optimizer = torch.optim.AdamW([param], lr=1e-3)
    scheduler = cosine_schedule(optimizer, lr=1e-3, min_lr=1e-5, total_steps=20, warmup_steps=5)
    lrs = []
    for _ in range(20):
        lrs.append(optimizer.param_groups[0]["lr"])
        optimizer.step()
        scheduler.step()
    assert lrs[:6] == pytest.approx([2e-4, 4e-4, 6e-4, 8e-4, 1e-3, 1e-3])
    assert all(a > b for a, b in zip(lrs[5:], lrs[6:]))
    assert optimizer.param_groups[0]["lr"] == pytest.approx(1e-5)


TABLE6_WEIGHTS = {  # SPEC 5: the weights each Table VI baseline's source starts from
    "r3d_18": "kinetics400", "mc3_18": "kinetics400", "r2plus1d_18": "kinetics400",
    "cnn_lstm": "imagenet", "former_dfer": None,
}


@pytest.mark.parametrize("backbone", sorted(TABLE6_WEIGHTS))
def test_table6_configs_name_their_sources_weights(backbone):
    for suffix in ("", "_rdfer"):
        config = load_config(CONFIGS / f"dfew_table6_{backbone}{suffix}.yaml")
        assert config.model.options.get("pretrained") == TABLE6_WEIGHTS[backbone], config.model.name


@pytest.mark.parametrize("backbone", ["r3d_18", "cnn_lstm_rdfer"])
def test_table6_weights_missing_offline_is_a_clear_error(backbone, tmp_path, monkeypatch):
    import urllib.error

    from rdfer.errors import RdferError
    from rdfer.models import create_model

    def no_network(url, *args, **kwargs):
        raise urllib.error.URLError(f"network off (test): {url}")

    monkeypatch.setattr(torch.hub, "_hub_dir", str(tmp_path / "hub"))  # an empty cache
    monkeypatch.setattr(torch.hub, "download_url_to_file", no_network)
    config = load_config(CONFIGS / f"dfew_table6_{backbone}.yaml")
    with pytest.raises(RdferError, match="could not download the .*network off") as error:
        create_model(config.model.name, num_classes=7, **config.model.options)
    assert str(tmp_path / "hub" / "checkpoints") in str(error.value)  # where to copy the file


# ----------------------------------------------------------------------------- inheritance (`base:`)

# Every shipped config resolved (config_to_dict(load_config(path))): first captured from full copies
# before the paper configs had a base; rewritten when _base_rdfer_plus.yaml spelt out rdfer's
# additions (the same values as the model defaults they had: nothing else changed).
RESOLVED = Path(__file__).resolve().parent / "data" / "resolved_configs.json"


def test_every_shipped_config_resolves_to_its_recorded_values():
    import json

    from rdfer.schema import config_to_dict

    recorded = json.loads(RESOLVED.read_text())
    shipped = sorted(p.name for p in CONFIGS.glob("*.yaml") if not p.name.startswith("_"))
    assert shipped == sorted(recorded)
    for name in shipped:
        assert config_to_dict(load_config(CONFIGS / name)) == recorded[name], name


BASES = ("_base_rdfer_plus", "_base_paper_as_written")


def test_paper_configs_inherit_the_recipe_written_once():
    for path in PAPER:
        text = path.read_text()
        assert sum(text.count(f"\nbase: {base}\n") for base in BASES) == 1, path.name
    texts = {p.name: p.read_text() for p in CONFIGS.glob("*.yaml")}
    assert {name for name, text in texts.items() if "lr: 7.0e-4" in text} == {f"{base}.yaml" for base in BASES}


# rdfer's additions to the paper's model and loss, and the value of each switch in the paper as written.
AS_WRITTEN = {"model.options.detector_locator": "linear", "model.options.detector_context": 1,
              "model.options.detector_kernel": "linear", "model.options.detector_guide": False,
              "loss.clip_weight": 0.0, "loss.guide_weight": 0.0}


def _flat(values, prefix=""):
    flat = {}
    for key, value in values.items():
        if isinstance(value, dict):
            flat.update(_flat(value, f"{prefix}{key}."))
        else:
            flat[f"{prefix}{key}"] = value
    return flat


def test_the_two_paper_bases_differ_only_in_rdfers_additions():
    from rdfer.schema import config_to_dict

    plus, written = (_flat(config_to_dict(load_config(CONFIGS / f"{base}.yaml"))) for base in BASES)
    assert {key for key in plus if plus[key] != written.get(key)} == set(AS_WRITTEN)
    assert {key: written[key] for key in AS_WRITTEN} == AS_WRITTEN
    # rdfer+ states each addition, switched on (the model's defaults, written out).
    defaults = create_model("rdfer_tiny", encoder="tiny").config
    assert all(plus[key] == getattr(defaults, key.split(".")[-1]) for key in AS_WRITTEN if key.startswith("model"))
    assert plus["loss.clip_weight"] == 1 and plus["loss.guide_weight"] == 1


@pytest.mark.parametrize("name, plus", [("dfew_rdfer_as_written_r50", "dfew_rdfer_plus_r50"),
                                        ("ferv39k_rdfer_as_written_r50", "ferv39k_rdfer_plus_r50"),
                                        ("mafw_rdfer_as_written_r50", "mafw_rdfer_plus_r50"),
                                        ("study_as_written", "study")])
def test_as_written_presets_are_their_rdfer_plus_twin_with_each_addition_off(name, plus):
    from rdfer.schema import config_to_dict

    written = _flat(config_to_dict(load_config(CONFIGS / f"{name}.yaml")))
    other = _flat(config_to_dict(load_config(CONFIGS / f"{plus}.yaml")))
    assert {key: written[key] for key in AS_WRITTEN} == AS_WRITTEN
    # Nothing else differs: a twin missing an addition's key has it from the defaults (study.yaml).
    assert {key for key in written if written[key] != other.get(key)} <= set(AS_WRITTEN)
    model = create_model(written["model.name"], **{**load_config(CONFIGS / f"{name}.yaml").model.options,
                                                    "pretrained": None, "detector_pretrained": None})
    detector = model.detector
    assert detector.locator == "linear" and detector.context is None and detector.kernel == "linear"
    assert detector.evidence is None  # no guide
    assert tuple(detector.locate.weight.shape) == (2, 16 * detector.backbone.out_features)  # one FC over (16, D)


def test_renamed_configs_still_load_with_a_note(capsys):
    from rdfer.config import RENAMED_CONFIGS, resolve_config_path
    from rdfer.schema import config_to_dict

    for old, new in RENAMED_CONFIGS.items():
        assert resolve_config_path(old) == str(CONFIGS / f"{new}.yaml")
        assert f"note: config {old} is now {new}" in capsys.readouterr().err
    assert not any((CONFIGS / f"{old}.yaml").exists() for old in RENAMED_CONFIGS)
    assert (config_to_dict(load_config(resolve_config_path("dfew_rdfer_r50")))
            == config_to_dict(load_config(CONFIGS / "dfew_rdfer_plus_r50.yaml")))


def test_study_as_written_trains_on_tiny_data(tiny_dfew, tmp_path):
    import json

    from rdfer.engine import fit

    config = load_config(CONFIGS / "study_as_written.yaml", (
        f"data.root={tiny_dfew}", "optim.epochs=1", "optim.batch_size=8", "loss.warmup_epochs=0", "eval_every=1",
        "model.options.encoder=tiny", "model.options.pretrained=null", "model.options.input_size=32"))
    fit(config, tmp_path / "run", progress=False)
    metrics = [json.loads(line) for line in (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()]
    assert metrics and all(m["train_loss"] == m["train_loss"] for m in metrics)  # finite, not NaN
    saved = (tmp_path / "run" / "config.yaml").read_text()
    assert "clip_weight: 0.0" in saved and "detector_locator: linear" in saved


def test_a_config_of_your_own_may_start_from_a_shipped_one(tmp_path):
    mine = tmp_path / "mine.yaml"
    mine.write_text("base: _base_paper_as_written\nmodel:\n  name: rdfer_r18\nloss:\n  strategy: ce\noptim:\n  epochs: 3\n")
    config = load_config(mine, ("optim.batch_size=8",))
    assert (config.loss.strategy, config.optim.epochs, config.optim.batch_size) == ("ce", 3, 8)
    assert config.optim.lr == pytest.approx(7e-4) and config.loss.warmup_epochs == 10  # from the base
    assert config.model.name == "rdfer_r18"


def test_base_errors_name_the_file_and_what_to_do(tmp_path):
    from rdfer.errors import RdferError

    (tmp_path / "base.yaml").write_text("base: other\n")
    (tmp_path / "child.yaml").write_text("base: base\n")
    with pytest.raises(RdferError, match=r"child.yaml: its base .*base.yaml has a base of its own \(other\); "
                                         "one level only"):
        load_config(tmp_path / "child.yaml")
    (tmp_path / "orphan.yaml").write_text("base: nowhere\n")
    with pytest.raises(RdferError, match=r"orphan.yaml: base 'nowhere': config 'nowhere' is neither a file"):
        load_config(tmp_path / "orphan.yaml")
    (tmp_path / "bad_base.yaml").write_text("optim:\n  lr: -1\n")
    (tmp_path / "uses_bad.yaml").write_text("base: bad_base.yaml\nseed: 1\n")
    with pytest.raises(RdferError, match=r"config file \S*bad_base.yaml: optim.lr = -1"):
        load_config(tmp_path / "uses_bad.yaml")


def test_shipped_config_names_leave_out_the_bases():
    from rdfer.config import resolve_config_path
    from rdfer.errors import RdferError

    assert resolve_config_path("dfew_rdfer_plus_r50") == str(CONFIGS / "dfew_rdfer_plus_r50.yaml")
    with pytest.raises(RdferError, match="shipped configs: audit_synth, demo, ") as error:
        resolve_config_path("no_such_recipe")
    assert "_base_" not in str(error.value)


def test_config_accepts_the_dataset_names_the_layouts_declare():
    # config.py sits below data/ and cannot import the registry: the names must agree.
    from rdfer.schema import DATASETS
    from rdfer.data.layouts import SOURCES

    assert DATASETS == SOURCES
