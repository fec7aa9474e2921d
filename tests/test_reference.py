"""The generated references (docs/reference/) match the code, and the docs site builds strictly."""

import csv
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def gen(load_script):
    return load_script("gen_reference")


@pytest.mark.parametrize("page", ["cli.md", "config.md", "outputs.md"])
def test_committed_reference_is_what_the_code_generates(gen, page):
    committed = (ROOT / "docs" / "reference" / page).read_text()
    assert committed == gen.PAGES[page](), f"docs/reference/{page} is stale: run python scripts/gen_reference.py"


def test_cli_reference_names_every_command_and_option(gen):
    text = gen.cli_markdown()
    for name, _, parser in gen._commands(__import__("rdfer.cli", fromlist=["build_parser"]).build_parser()):
        assert f"## {' '.join(name)}\n" in text
        for action in parser._actions[1:]:  # after -h/--help
            for flag in action.option_strings:
                assert f"`{flag}`" in text
    assert "--pretrained" not in text


def test_config_reference_has_every_key_with_its_range_and_default(gen):
    import dataclasses

    from rdfer.schema import OptimConfig, TrainConfig

    text = gen.config_markdown()
    assert "| `optim.epochs` | an integer | 1..10000 | 100 |" in text  # type, range and default from the schema
    assert "| `model.options.n1` | an integer | 1..64 |" in text  # a model option's range
    assert "| `data.crop_scale` | a list of 2 numbers like [0.08, 1.0] | 0..1, at most 2 items |" in text
    assert "| `loss.strategy` | a string | `ce`," in text
    for field in (*(f.name for f in dataclasses.fields(TrainConfig)),
                  *(f"optim.{f.name}" for f in dataclasses.fields(OptimConfig))):
        if field not in ("data", "model", "loss", "optim"):
            assert f"| `{field}` |" in text
    assert "model.options.frozen_encoder" in text  # the model options of each family


def test_the_columns_a_predict_run_writes_are_the_documented_ones(gen, tmp_path):
    """A real (tiny) run: every column of predictions.csv and frames.csv is in docs/reference/outputs.md."""
    import cv2
    import numpy as np

    from rdfer.inference.runner import predict_files

    image = tmp_path / "grey.png"
    cv2.imwrite(str(image), np.full((64, 64, 3), 128, np.uint8))  # no face: the tables still have their header
    predict_files([image], tmp_path / "out", progress=False, options=None)
    doc = (ROOT / "docs" / "reference" / "outputs.md").read_text()
    for table in ("predictions.csv", "frames.csv"):
        with open(tmp_path / "out" / table) as f:
            header = next(csv.reader(f))
        for column in header:
            documented = column.replace("raw_p_", "raw_p_<").replace("p_", "p_<", 1) if "_p_" in f"_{column}" \
                else column
            assert f"`{column}`" in doc or documented.split("<")[0] + "<Class>`" in doc, (table, column)


def test_the_docs_site_builds_strictly(tmp_path):
    done = subprocess.run([sys.executable, "-m", "mkdocs", "build", "--strict", "-q", "-d", str(tmp_path / "site")],
                          cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stdout + done.stderr
    assert (tmp_path / "site" / "reference" / "cli" / "index.html").is_file()
