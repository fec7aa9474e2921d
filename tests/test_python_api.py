"""The Python API: rdfer.Predictor loads once, returns records with DataFrames; docs/python_api.md runs."""

import re
import shutil
from pathlib import Path

import pytest

import rdfer
from rdfer.errors import RdferError
from rdfer.inference import api
from test_predict_support import feat_videos  # noqa: F401

DOC = Path(__file__).resolve().parents[1] / "docs" / "python_api.md"


def test_dir_lists_the_public_api():
    names = dir(rdfer)
    for name in ("Predictor", "Predictions", "PredictOptions", "VideoPrediction", "predict_video", "create_model"):
        assert name in names and name in rdfer.__all__
        assert getattr(rdfer, name) is not None
    with pytest.raises(AttributeError):
        rdfer.no_such_name  # noqa: B018


def test_predictor_loads_the_model_and_detector_once(feat_videos, monkeypatch):  # noqa: F811
    loads = {"model": 0, "detector": 0}

    def counted(kind, load):
        def wrapper(*args, **kwargs):
            loads[kind] += 1
            return load(*args, **kwargs)
        return wrapper

    monkeypatch.setattr(api, "load_predictor", counted("model", api.load_predictor))
    monkeypatch.setattr(api, "make_detector", counted("detector", api.make_detector))
    predictor = rdfer.Predictor()
    photo, crowd = feat_videos["45-m7-di-ph.jpg"], feat_videos["multi_face.jpg"]
    one = predictor.predict(photo)
    many = predictor.predict_many([photo, crowd])
    assert loads == {"model": 1, "detector": 1}  # three predictions, one load each

    assert one.status == "ok" and one.to_dict() == many[0].to_dict()  # the same record as alone
    frame = many.to_frame()
    assert list(frame["video"].unique()) == [str(photo), str(crowd)]
    assert len(frame) == len(one.to_frame()) + len(many[1].to_frame())
    assert {f"p_{c}" for c in predictor.classes} <= set(frame.columns)
    table = many.to_table()
    assert list(table["video"]) == [str(photo)] * len(one.tracks) + [str(crowd)] * len(many[1].tracks)
    assert len(many[1].tracks) >= 2 and many.failed == []


def test_predictor_refuses_unknown_options_and_reports_unreadable_files(tmp_path):
    with pytest.raises(RdferError, match="no_such"):
        rdfer.Predictor(no_such=1)
    broken = tmp_path / "broken.mp4"
    broken.write_bytes(b"not a video")
    results = rdfer.Predictor(detector="haar").predict_many([broken])
    assert [r.status for r in results.failed] == ["error"] and results.to_frame().empty


def python_blocks(text: str) -> list[str]:
    return re.findall(r"^```python\n(.*?)^```", text, re.S | re.M)


def test_the_python_api_page_runs_as_written(feat_videos, tmp_path, monkeypatch, capsys):  # noqa: F811
    """Every python block of docs/python_api.md, in order, in a folder with the files the page names."""
    shutil.copy(feat_videos["single_face.mp4"], tmp_path / "my_video.mp4")
    shutil.copy(feat_videos["45-m7-di-ph.jpg"], tmp_path / "my_photo.jpg")
    (tmp_path / "my_videos").mkdir()
    shutil.copy(feat_videos["noface_face.mov"], tmp_path / "my_videos" / "later_face.mov")
    shutil.copy(feat_videos["multi_face.jpg"], tmp_path / "my_videos" / "group.jpg")
    monkeypatch.chdir(tmp_path)
    blocks = python_blocks(DOC.read_text())
    assert len(blocks) >= 4
    namespace = {}
    for block in blocks:
        exec(compile(block, str(DOC), "exec"), namespace)  # noqa: S102 - the page's own examples
    out = capsys.readouterr().out
    assert "ok" in out and "file(s) could not be read" in out
    assert len(namespace["table"]["video"].unique()) == 4  # the video, the photo and the folder's two files
