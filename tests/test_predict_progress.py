"""Progress inside a video: predict_video's callback, the CLI bar's source, the app's job status and timelines."""

import threading

import numpy as np
import pytest
from test_app_support import page_client, wait_for_job
from test_predict_support import feat_videos, read_frames, write_video  # noqa: F401

import rdfer.app.predict as app_predict
from rdfer.app.server import create_app
from rdfer.inference import predict_video
from rdfer.inference.predict import PROGRESS_EVERY, FrameProgress
from rdfer.inference.runner import predict_files


def test_frame_progress_time_left():
    step = FrameProgress("v.mp4", 100, 400, 5.0)
    assert step.left_s == pytest.approx(15.0)  # 300 frames left at 20 frames/s
    assert step.text() == "100/400 frames, about 15 s left"
    assert FrameProgress("v.mp4", 0, 400, 0.1).left_s is None and FrameProgress("v.mp4", 5, None, 1).left_s is None
    assert FrameProgress("v.mp4", 5, None, 1.0).text() == "5 frames"


def test_predict_video_reports_frames_done_of_total(feat_videos, tmp_path):  # noqa: F811
    clip = write_video(tmp_path / "c.mp4", read_frames(feat_videos["single_face.mp4"], 25))
    steps = []
    record = predict_video(clip, progress=steps.append)
    assert record.status == "ok"
    assert [s.done for s in steps] == [*range(0, 25, PROGRESS_EVERY), 25]  # from the first frame on
    assert {s.total for s in steps} == {25} and steps[-1].left_s == 0
    elapsed = [s.elapsed_s for s in steps]
    assert elapsed == sorted(elapsed) and steps[0].video == str(clip)


def test_predict_files_hands_every_step_on(feat_videos, tmp_path):  # noqa: F811
    clip = write_video(tmp_path / "c.mp4", read_frames(feat_videos["single_face.mp4"], 12))
    steps = []
    predict_files([clip, feat_videos["45-m7-di-ph.jpg"]], tmp_path / "out", progress=True, jobs=1,
                  on_frames=steps.append)
    assert [(s.done, s.total) for s in steps] == [(0, 12), (10, 12), (12, 12), (0, 1), (1, 1)]


def test_the_app_job_status_shows_frames_done_and_time_left(tmp_path, feat_videos, monkeypatch):  # noqa: F811
    """The status the page polls carries the video in progress's frames, while it runs."""
    halfway, release = threading.Event(), threading.Event()
    real = app_predict.predict_files

    def slow(videos, folder, **kwargs):
        kwargs["on_frames"](FrameProgress(str(videos[0]), 40, 160, 2.0))
        halfway.set()
        assert release.wait(60)
        return real(videos, folder, **kwargs)

    monkeypatch.setattr(app_predict, "predict_files", slow)
    client = page_client(create_app(tmp_path / "work", max_upload_mb=5))
    job = client.post("/api/predict/jobs").json()["id"]
    photo = feat_videos["45-m7-di-ph.jpg"]
    assert client.put(f"/api/predict/jobs/{job}/files", params={"name": photo.name},
                      content=photo.read_bytes()).status_code == 200
    client.post(f"/api/predict/jobs/{job}/start", json={})
    assert halfway.wait(60)
    status = client.get(f"/api/predict/jobs/{job}").json()
    assert status["state"] == "running" and status["current"] == photo.name
    assert status["frames"]["done"] == 40 and status["frames"]["total"] == 160
    assert status["frames"]["left_s"] == pytest.approx(6.0)  # 120 frames at 20 frames/s
    release.set()
    done = wait_for_job(client, job)
    assert done["state"] == "done" and (done["frames"]["done"], done["frames"]["total"]) == (1, 1)


def test_the_page_gets_one_time_axis_per_video_and_its_cuts(tmp_path, feat_videos):  # noqa: F811
    frames = read_frames(feat_videos["single_face.mp4"], 20)
    clip = write_video(tmp_path / "cut.mp4", frames + [np.full_like(f, 40) for f in frames[:6]] + frames[:14])
    client = page_client(create_app(tmp_path / "work", max_upload_mb=5))
    job = client.post("/api/predict/jobs").json()["id"]
    client.put(f"/api/predict/jobs/{job}/files", params={"name": "cut.mp4"}, content=clip.read_bytes())
    client.post(f"/api/predict/jobs/{job}/start", json={})
    [result] = wait_for_job(client, job)["results"]
    assert result["duration_s"] == pytest.approx(result["num_frames"] / result["fps"])
    assert len(result["cuts"]) >= 1 and all(0 < c < result["duration_s"] for c in result["cuts"])
    assert len(result["tracks"]) == 2  # the face before and after the grey shot: one axis for both
