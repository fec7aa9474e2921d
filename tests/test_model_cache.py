"""The cache of the built-in models' ONNX files (rdfer.inference.model_cache): where it is, when a file
is made again (other weights, a damaged file, no manifest), and what a cache that cannot be written says.

A toy model stands in for the real ones (their export takes seconds): its "weights" a small file, its
builder counting its calls. That the real files run as PyTorch does: test_predict_onnx.py, test_predict_mtcnn.py.
"""

import pytest

from rdfer.errors import RdferError
from rdfer.inference import model_cache
from rdfer.inference.model_cache import Builtin, builtin_onnx, cache_dir, entry_dir
from rdfer.utils.outputs import write_text


@pytest.fixture()
def toy(tmp_path, monkeypatch):
    """A built-in model "toy" whose weights are tmp_path/weights.bin; returns the list of folders it was built in."""
    weights = tmp_path / "weights.bin"
    weights.write_bytes(b"weights v1")
    builds = []

    def build(folder):
        builds.append(folder)
        path = write_text(folder / "toy.onnx", f"made from {weights.read_text()}")
        return {"files": {"model": path}, "max_difference": 0.0}

    monkeypatch.setitem(model_cache.BUILTINS, "toy", Builtin(lambda: [weights], build))
    monkeypatch.setenv("RDFER_CACHE", str(tmp_path / "cache"))
    return weights, builds


def test_the_cache_folder_follows_rdfer_cache_then_xdg_cache_home(tmp_path, monkeypatch):
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    monkeypatch.delenv("RDFER_CACHE", raising=False)
    monkeypatch.delenv("XDG_CACHE_HOME", raising=False)
    assert cache_dir() == tmp_path / "home" / ".cache" / "rdfer"
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert cache_dir() == tmp_path / "xdg" / "rdfer"
    monkeypatch.setenv("RDFER_CACHE", str(tmp_path / "mine"))
    assert cache_dir() == tmp_path / "mine"


def test_files_are_made_once_and_then_read_from_the_cache(toy, tmp_path):
    weights, builds = toy
    files = builtin_onnx("toy")
    assert files["model"].read_text() == "made from weights v1" and files["model"].parent.parent == tmp_path / "cache" / "onnx"
    assert builtin_onnx("toy") == files and len(builds) == 1  # the second time from the cache
    assert not [p for p in files["model"].parent.iterdir() if p.name.startswith(".rdfer-tmp-")]  # written atomically


def test_other_weights_give_another_entry_never_a_stale_file(toy):
    weights, builds = toy
    first = builtin_onnx("toy")["model"]
    weights.write_bytes(b"weights v2")  # a new version of the package's weights
    second = builtin_onnx("toy")["model"]
    assert second.parent != first.parent and second.read_text() == "made from weights v2" and len(builds) == 2


def test_the_export_version_is_part_of_the_key(toy, monkeypatch):
    before = entry_dir("toy")
    monkeypatch.setattr(model_cache, "EXPORT_VERSION", model_cache.EXPORT_VERSION + 1)
    assert entry_dir("toy") != before


@pytest.mark.parametrize("damage", ["edited", "cut off", "removed", "no manifest", "bad manifest"])
def test_a_damaged_entry_is_made_again(toy, damage):
    weights, builds = toy
    path = builtin_onnx("toy")["model"]
    manifest = path.parent / "manifest.json"
    if damage == "edited":
        path.write_text("made from something else")
    elif damage == "cut off":
        path.write_text(path.read_text()[:5])
    elif damage == "removed":
        path.unlink()
    elif damage == "no manifest":
        manifest.unlink()
    else:
        manifest.write_text("{not json")
    assert builtin_onnx("toy")["model"].read_text() == "made from weights v1" and len(builds) == 2


def test_a_cache_that_cannot_be_created_is_one_line(toy, tmp_path, monkeypatch):
    (tmp_path / "a file").write_text("")
    monkeypatch.setenv("RDFER_CACHE", str(tmp_path / "a file" / "cache"))
    with pytest.raises(RdferError, match="cannot create the model cache .*set RDFER_CACHE") as caught:
        builtin_onnx("toy")
    assert "\n" not in str(caught.value)


def test_without_a_cache_the_built_in_models_run_in_pytorch_saying_so(tmp_path, monkeypatch, capsys):
    from rdfer.inference.faces import mtcnn_nets
    from rdfer.inference.predictors import load_predictor

    (tmp_path / "a file").write_text("")
    monkeypatch.setenv("RDFER_CACHE", str(tmp_path / "a file" / "cache"))
    assert type(load_predictor(None, "cpu")).__name__ == "FramePredictor"
    assert type(mtcnn_nets()).__name__ == "TorchNets"
    err = capsys.readouterr().err.splitlines()
    assert len(err) == 2 and all("cannot create the model cache" in line and "in PyTorch instead" in line
                                 for line in err)


def test_missing_weights_are_one_line(toy):
    weights, builds = toy
    weights.unlink()
    with pytest.raises(RdferError, match="weights.bin.*reinstall") as caught:
        builtin_onnx("toy")
    assert "\n" not in str(caught.value) and builds == []
