"""The headline of a video (inference/headline.py) and every place that renders it: console, JSON, CSV, plot.

Track records are fabricated here: the rule is about screen time and labels, not about faces found.
"""

import csv
import json

import matplotlib
import numpy as np
import pytest

from rdfer.inference.headline import group_line, main_face, summarise
from rdfer.inference.outputs import write_csv, write_json
from rdfer.inference.records import TrackPrediction, VideoPrediction
from rdfer.inference.runner import console_line
from rdfer.labels import DFEW_CLASSES

FPS = 25.0


def _track(tid: int, label: str, frames: int, start: int = 0, probability: float = 0.8, trust: float = 0.7):
    probs = {c: (probability if c == label else (1 - probability) / 6) for c in DFEW_CLASSES}
    timeline = [{"frame": start + k, "time_s": (start + k) / FPS, "box": [0, 0, 10, 10], "label": label,
                 "probabilities": probs, "raw_label": label, "raw_probabilities": probs} for k in range(frames)]
    return TrackPrediction(id=tid, label=label, probability=probability, trust=trust, probabilities=probs,
                           agreement=1.0, key_expression={"start_s": start / FPS, "end_s": (start + 1) / FPS},
                           start_s=start / FPS, end_s=(start + frames) / FPS, num_frames=frames, face_size_px=80.0,
                           trust_features={}, timeline=timeline,
                           thumbnails=[(start / FPS, np.zeros((64, 64, 3), np.uint8))])


def _record(tracks, num_frames: int, cuts=()) -> VideoPrediction:
    """A record as predict_video assembles it (summary first, then the main face's fields)."""
    record = VideoPrediction("x.mp4", FPS, num_frames, num_frames, "ok", None, "a model", cuts=list(cuts),
                             tracks=sorted(tracks, key=lambda t: -t.num_frames))
    record.summary = summarise(record.tracks, FPS, num_frames, cuts)
    if record.main is not None:
        record.label, record.trust = record.main.label, record.main.trust
    return record


def _group_of_five():
    # Five children laughing on screen the whole time; one of them called Angry (one wrong call).
    return [_track(1, "Angry", 100, probability=0.87), *(_track(k, "Happy", 100 - k) for k in range(2, 6))]


def test_a_group_is_summarised_by_its_group_line_without_a_main_face():
    record = _record(_group_of_five(), 100)
    assert record.summary["text"] == "5 faces: 4 Happy, 1 Angry"
    assert record.summary["main_face"] is None and record.main is None and record.label is None
    assert [f["id"] for f in record.summary["faces"]] == [1, 2, 3, 4, 5]
    assert record.summary["faces"][0] == {"id": 1, "label": "Angry", "probability": 0.87, "trust": 0.7,
                                          "on_screen_s": 4.0}


def test_one_dominant_face_is_named_main():
    # A woman on screen 8 of 10 s, two passers-by for 1 s each.
    tracks = [_track(1, "Neutral", 25), _track(2, "Happy", 200, start=25), _track(3, "Sad", 25, start=225)]
    record = _record(tracks, 250)
    assert record.summary["main_face"] == 2 and record.main.id == 2 and record.label == "Happy"
    assert record.summary["text"].startswith("main face 2: Happy p=0.80 trust=0.70 (on screen 8.0 of 10.0 s); ")
    assert record.summary["text"].endswith("3 faces: 1 Happy, 1 Neutral, 1 Sad")


def test_the_main_face_rule_at_its_edges():
    assert main_face({1: 6.0, 2: 3.0}, 10.0) == 1  # twice the next and 60% of the video
    assert main_face({1: 6.0, 2: 3.1}, 10.0) is None  # less than twice the next
    assert main_face({1: 4.9, 2: 1.0}, 10.0) is None  # under half the video
    assert main_face({7: 1.0}, 10.0) == 7  # the only face is the main face, however short
    assert main_face({}, 10.0) is None


def test_a_video_of_five_shots_is_summarised_over_its_shots():
    # Five shots of 2 s, a face in each; the last one is a wrong call. No track covers half the video.
    labels = ["Happy", "Happy", "Happy", "Happy", "Angry"]
    tracks = [_track(k + 1, label, 50 - k, start=50 * k) for k, label in enumerate(labels)]
    record = _record(tracks, 250, cuts=[2.0, 4.0, 6.0, 8.0])
    assert record.summary["main_face"] is None and record.summary["shots"] == 5
    assert record.summary["text"] == "5 faces in 5 shots: 4 Happy, 1 Angry"


def test_group_line_counts_most_common_first():
    assert group_line(["Sad", "Happy", "Happy"]) == "3 faces: 2 Happy, 1 Sad"
    assert group_line(["Sad"]) == "1 face: 1 Sad"


def test_console_json_csv_and_plot_follow_the_same_rule(tmp_path):
    group = _record(_group_of_five(), 100)
    single = _record([_track(1, "Surprise", 40, start=10)], 100)  # the only face: main, whatever its time
    assert console_line(group).startswith("x.mp4: ok 5 faces: 4 Happy, 1 Angry; face 1 Angry 0.87/0.70 4.0 s, ")
    assert console_line(single) == "x.mp4: ok Surprise p=0.80 trust=0.70"

    write_json(group, tmp_path / "x.json")
    data = json.loads((tmp_path / "x.json").read_text())
    assert data["summary"]["text"] == "5 faces: 4 Happy, 1 Angry" and data["summary"]["main_face"] is None
    assert data["label"] is None

    videos_csv, frames_csv = write_csv([group, single], tmp_path)
    with open(videos_csv) as f:
        rows = list(csv.DictReader(f))
    assert [r["main"] for r in rows] == ["0"] * 5 + ["1"]
    assert {r["summary"] for r in rows[:5]} == {"5 faces: 4 Happy, 1 Angry"}
    with open(frames_csv) as f:
        frames = list(csv.DictReader(f))
    n = sum(t.num_frames for t in group.tracks)
    assert {r["main"] for r in frames[:n]} == {"False"} and {r["main"] for r in frames[n:]} == {"True"}

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig = group.plot()
    titles = [ax.get_title(loc="left") for ax in fig.axes]
    assert not any("(main)" in t for t in titles)
    assert "5 faces: 4 Happy, 1 Angry" in fig._suptitle.get_text()
    plt.close(fig)
    fig = single.plot()
    assert any("face 1 (main)" in ax.get_title(loc="left") for ax in fig.axes)
    plt.close(fig)


@pytest.mark.parametrize("frames", [0])
def test_no_face_gives_no_summary_line(frames):
    record = VideoPrediction("y.mp4", FPS, 10, frames, "no_face", "no face found", "a model")
    assert console_line(record) == "y.mp4: no_face (no face found)"
