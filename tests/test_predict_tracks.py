"""Every face as a track: the tracker, shot cuts, smoothing and trust, without a model or a real video."""

import cv2
import numpy as np
import pytest

from rdfer.errors import RdferError
from rdfer.inference.faces import box_iou, check_min_face, search_scale
from rdfer.inference.predict import PredictOptions, no_face_message, smooth
from rdfer.inference.tracks import FaceTracker, ShotCuts
from rdfer.inference.trust import trust_features, trust_score
from rdfer.inference.video import Frame


class _ScriptedDetector:
    """Whole-frame search: the boxes given for a frame index (none for other indices); records calls.

    The frame index is read back from the image's first pixel (and the scene from the second:
    a new scene value is a new shot for the cut detector).
    """

    def __init__(self, boxes):
        self.boxes, self.calls = boxes, []

    def detect(self, image):
        index = int(image[0, 0, 0]) + 256 * int(image[0, 0, 1])
        self.calls.append(index)
        return np.array(self.boxes.get(index, []), np.float32).reshape(-1, 4)


class _NearDetector(_ScriptedDetector):
    """Also searches near a followed face: returns the scripted boxes overlapping it."""

    tracks = True

    def __init__(self, boxes):
        super().__init__(boxes)
        self.near_calls = []

    def detect_near(self, image, box):
        index = int(image[0, 0, 0]) + 256 * int(image[0, 0, 1])
        self.near_calls.append((index, [float(v) for v in box]))
        boxes = np.array(self.boxes.get(index, []), np.float32).reshape(-1, 4)
        return np.array([b for b in boxes if box_iou(b, box) > 0], np.float32).reshape(-1, 4)


def _frames(n, scene_at=None):
    """n small frames; from index `scene_at` on, another scene (a hard cut there)."""
    for i in range(n):
        image = np.zeros((8, 8, 3), np.uint8)
        if scene_at is not None and i >= scene_at:
            image[...] = 200
        image[0, 0, 0], image[0, 0, 1] = i % 256, i // 256  # the detector reads the index back
        yield Frame(i, i / 10, image)


def _run(tracker, frames):
    return [(f.index, {tid: box for tid, box in faces}, cut) for f, faces, cut in tracker(frames)]


def test_tracking_detects_every_k_frames_and_interpolates_between():
    detector = _ScriptedDetector({0: [[0, 0, 40, 40]], 4: [[8, 0, 48, 40]], 8: [[16, 0, 56, 40]],
                                  10: [[20, 0, 60, 40]]})
    out = _run(FaceTracker(detector, every=4, smoothing=0.0, cuts=False), _frames(11))
    assert detector.calls == [0, 4, 8, 10]  # keyframes plus the last frame
    assert [i for i, _, _ in out] == list(range(11))
    assert out[2][1][1] == pytest.approx([4, 0, 44, 40])  # halfway between keyframes 0 and 4
    assert out[9][1][1] == pytest.approx([18, 0, 58, 40])


def test_two_faces_keep_their_ids_and_a_lone_detection_is_dropped():
    a, b = [0, 0, 10, 10], [50, 0, 60, 10]
    # Face b is listed first on some keyframes: ids follow overlap, not the order of the boxes.
    boxes = {0: [a], 4: [b, a], 8: [a, b], 12: [[52, 0, 62, 10], [1, 0, 11, 10], [100, 100, 110, 110]], 16: [a, b]}
    tracker = FaceTracker(_ScriptedDetector(boxes), every=4, smoothing=0.0, cuts=False)
    out = _run(tracker, _frames(17))
    assert out[0][1] == {1: pytest.approx(a)}
    assert out[8][1][1] == pytest.approx(a) and out[8][1][2] == pytest.approx(b)
    assert out[12][1][2] == pytest.approx([52, 0, 62, 10])
    assert set(out[12][1]) == {1, 2, 3}
    assert tracker.keep(1) and tracker.keep(2) and not tracker.keep(3)  # 3: one keyframe in the middle
    assert 2 in out[2][1]  # face 2 appears at keyframe 4: held back for up to every/2 frames
    assert 2 not in out[1][1]


def test_a_face_on_the_first_keyframe_only_is_kept():
    tracker = FaceTracker(_ScriptedDetector({0: [[0, 0, 10, 10]]}), every=1, cuts=False)
    _run(tracker, _frames(6))
    assert tracker.keep(1)


def test_tracking_searches_near_each_face_and_the_whole_frame_every_few_keyframes():
    box = [0, 0, 10, 10]
    detector = _NearDetector({i: [box] for i in range(0, 41, 4)})
    _run(FaceTracker(detector, every=4, full_every=4, smoothing=0.0, cuts=False), _frames(41))
    # Whole frame: every 4th keyframe (0, 4, 8: frames 0, 16, 32) and, at the start of the shot, after
    # 1 and 2 keyframes (keyframes 1, 3: frames 4, 12), for new faces; near the face: every keyframe
    # after the first (the search near a face is the sharper one).
    assert detector.calls == [0, 4, 12, 16, 32]
    assert [i for i, _ in detector.near_calls] == list(range(4, 41, 4))
    assert detector.near_calls[0][1] == box


def test_a_face_the_first_whole_frame_search_missed_is_found_on_the_next_keyframes():
    # The detector misses face b on the first keyframe of the shot (a small or grainy face): the
    # whole frame is searched again on the next keyframe, not full_every keyframes later.
    a, b = [0, 0, 10, 10], [50, 0, 60, 10]
    detector = _NearDetector({0: [a], **{i: [a, b] for i in range(4, 41, 4)}})
    tracker = FaceTracker(detector, every=4, full_every=8, smoothing=0.0, cuts=False)
    out = _run(tracker, _frames(41))
    assert 4 in detector.calls
    assert out[4][1][2] == pytest.approx(b) and tracker.keep(2)


def test_a_followed_face_the_whole_frame_search_misses_is_searched_near_its_box():
    # Three faces (more than MAX_NEAR: the whole frame is searched on every keyframe); the small one, c,
    # the whole-frame search finds on the first keyframe only, the search near its box every time.
    a, b, c = [0, 0, 20, 20], [40, 0, 60, 20], [80, 0, 90, 10]
    detector = _NearDetector({i: [a, b, c] for i in range(0, 41, 4)})
    whole = detector.detect
    detector.detect = lambda image: whole(image) if int(image[0, 0, 0]) == 0 else whole(image)[:2]
    out = _run(FaceTracker(detector, every=4, smoothing=0.0, cuts=False), _frames(41))
    assert len(detector.calls) == 11  # every keyframe: whole-frame searches after the first did not show c
    assert all(out[i][1][3] == pytest.approx(c) for i in range(0, 41, 4))


def test_a_face_missing_near_its_box_triggers_a_whole_frame_search():
    detector = _NearDetector({0: [[0, 0, 10, 10]], 4: [[30, 30, 40, 40]], 8: [[30, 30, 40, 40]]})
    out = _run(FaceTracker(detector, every=4, smoothing=0.0, cuts=False), _frames(9))
    assert detector.calls == [0, 4, 8] or detector.calls == [0, 4]
    assert 4 in detector.calls and set(out[8][1]) == {2}  # the moved face is a new track


def test_tracks_end_at_a_shot_cut_and_nothing_crosses_it():
    box = [0, 0, 10, 10]
    detector = _ScriptedDetector({i: [box] for i in range(40)})
    tracker = FaceTracker(detector, every=5, smoothing=0.0)
    out = _run(tracker, _frames(40, scene_at=23))
    assert tracker.cut_frames == [23]
    assert 23 in detector.calls  # the first frame of a shot is a keyframe
    before = {tid for i, faces, _ in out if i < 23 for tid in faces}
    after = {tid for i, faces, _ in out if i >= 23 for tid in faces}
    assert before == {1} and after == {2}  # the same place after a cut is a new track
    assert all(faces for _, faces, _ in out)  # every frame still has its shot's face
    assert [i for i, _, cut in out if cut] == [23]


def test_shot_cuts_fire_on_a_new_scene_not_on_small_changes():
    rng = np.random.default_rng(0)
    scene = rng.integers(0, 255, (90, 160, 3), dtype=np.uint8)
    other = cv2.GaussianBlur(rng.integers(0, 255, (90, 160, 3), dtype=np.uint8), (0, 0), 6)  # smooth, like a photo
    other = cv2.normalize(other, None, 0, 255, cv2.NORM_MINMAX)
    frames = [np.clip(scene.astype(int) + k, 0, 255).astype(np.uint8) for k in range(20)]  # brightening
    frames += [np.roll(other, k, axis=1) for k in range(20)]  # a slow pan over another scene
    cuts = ShotCuts()
    assert [k for k, image in enumerate(frames) if cuts.is_cut(image)] == [20]
    # A cut between two black-and-white shots: no hue or saturation changes, brightness does.
    grey_a = cv2.cvtColor(cv2.cvtColor(scene, cv2.COLOR_BGR2GRAY), cv2.COLOR_GRAY2BGR) // 3 + 60
    grey_b = cv2.cvtColor(cv2.cvtColor(other, cv2.COLOR_BGR2GRAY), cv2.COLOR_GRAY2BGR)
    cuts = ShotCuts()
    assert [k for k, image in enumerate([grey_a] * 10 + [grey_b] * 10) if cuts.is_cut(image)] == [10]
    # Two cuts closer than a minimum shot length: the second is taken as a flash.
    cuts = ShotCuts(min_shot=8)
    flicker = [scene] * 10 + [other] * 3 + [scene] * 10
    assert [k for k, image in enumerate(flicker) if cuts.is_cut(image)] == [10]


def test_smoothing_averages_over_a_centred_window_and_can_be_switched_off():
    probs = np.eye(3, dtype=np.float32)[[0, 0, 1, 0, 0, 2, 2, 2]]  # (8, 3) one-hot labels that jitter
    assert smooth(probs, 1) is probs
    out = smooth(probs, 3)
    assert out.shape == probs.shape and np.allclose(out.sum(axis=1), 1)
    assert out[2] == pytest.approx([2 / 3, 1 / 3, 0])  # the lone 1 is outvoted by its neighbours
    assert out[0] == pytest.approx([1, 0, 0])  # a shorter window at the ends
    assert (out.argmax(axis=1) != probs.argmax(axis=1)).sum() == 1
    with pytest.raises(RdferError, match="--smooth"):
        PredictOptions(smooth_s=-1)


def test_trust_grows_with_margin_agreement_face_size_and_sharpness():
    def score(**changes):
        base = dict(probabilities=np.array([0.5, 0.3, 0.2]), agreement=0.75, face_share=0.9, face_side_px=64,
                    sharpness_value=100.0)
        return trust_score(trust_features(**{**base, **changes}))

    mid = score()
    assert 0 < mid < 1
    assert score(probabilities=np.array([0.9, 0.05, 0.05])) > mid > score(probabilities=np.array([0.4, 0.38, 0.22]))
    assert score(agreement=1.0) > mid > score(agreement=0.25)
    assert score(face_side_px=128) > mid > score(face_side_px=24)
    assert score(sharpness_value=300) > mid > score(sharpness_value=5)
    assert score(face_share=1.0) > score(face_share=0.2)
    assert score(agreement=None) == score(agreement=0.5)  # undefined agreement counts as a coin toss


def test_min_face_sets_the_search_scale_and_the_no_face_message():
    assert search_scale(40) == 0.5 and search_scale(20) == 1.0 and search_scale(80) == 0.25
    for bad in (0, 5, float("nan"), "x"):
        with pytest.raises(RdferError, match="--min-face"):
            check_min_face(bad)
    text = no_face_message(30, 1920, 1080, PredictOptions(min_face=60))
    assert "60 px" in text and "1080 px short side" in text and "--min-face 30" in text


def test_two_followed_faces_never_share_one_face():
    """Face 1 turns away next to face 2: the search near face 1 finds face 2, which face 2 keeps alone."""
    a, b = [0, 0, 40, 40], [20, 0, 60, 40]  # two faces side by side (IoU 0.33: two faces)
    moved = [21, 0, 61, 40]  # face 2, a pixel on; it overlaps face 1's last box by IoU 0.31
    detector = _NearDetector({0: [a, b], 4: [moved], 8: [moved], 12: [a, moved]})
    out = _run(FaceTracker(detector, every=4, smoothing=0.0, cuts=False), _frames(13))
    for index, faces, _ in out:
        boxes = list(faces.values())
        assert not any(box_iou(p, q) >= 0.4 for i, p in enumerate(boxes) for q in boxes[i + 1:]), index
    assert out[4][1] == {2: pytest.approx(moved)}  # face 2 keeps its own track
    assert out[12][1] == {1: pytest.approx(a), 2: pytest.approx(moved)}  # face 1 back: its track again


def test_a_face_missed_for_a_few_keyframes_keeps_its_track_within_a_shot_only():
    box = [100, 100, 160, 160]
    seen = {i: [box] for i in (0, 5, 20, 25, 30, 50, 55)}  # missed at 10 and 15 (turned away), gone 35-45
    detector = _ScriptedDetector({**seen, 40: [], 45: []})
    out = _run(FaceTracker(detector, every=5, smoothing=0.0, memory=30, cuts=False), _frames(56))
    assert {tid for _, faces, _ in out for tid in faces} == {1}  # one face, one track
    # The same face after a cut is another track, however short the gap.
    detector = _ScriptedDetector({i: [box] for i in range(0, 40, 5)} | {23: [box]})
    tracker = FaceTracker(detector, every=5, smoothing=0.0, memory=30)
    out = _run(tracker, _frames(40, scene_at=23))
    assert {tid for i, faces, _ in out if i >= 23 for tid in faces} == {2}
    # Beyond its memory a face that does not look the same is a new track (these frames are blank).
    detector = _ScriptedDetector({0: [box], 5: [box], 40: [box], 45: [box]})
    out = _run(FaceTracker(detector, every=5, smoothing=0.0, memory=15, cuts=False), _frames(46))
    assert {tid for _, faces, _ in out for tid in faces} == {1, 2}


def _face(seed: int, side: int = 60, flip: bool = False) -> np.ndarray:
    """A smooth random picture standing for one person's face (another seed: another person)."""
    noise = np.random.default_rng(seed).normal(0, 1, (side, side)).astype(np.float32)
    face = cv2.normalize(cv2.GaussianBlur(noise, (0, 0), side / 12), None, 40, 220, cv2.NORM_MINMAX)
    return cv2.cvtColor(face.astype(np.uint8)[:, ::-1] if flip else face.astype(np.uint8), cv2.COLOR_GRAY2BGR)


def _scene(n, faces):
    """n frames of 240x160 with the faces {frame index: [(box, picture)]} drawn in (and the index read back
    by the scripted detectors); a little grain that changes every frame, and from frame 60 darker, lower
    contrast (as a face seen again in other light)."""
    rng = np.random.default_rng(7)
    for i in range(n):
        image = np.full((160, 240, 3), 90, np.uint8)
        for box, picture in faces.get(i, []):
            image[box[1]:box[3], box[0]:box[2]] = picture
        image = np.clip(image + rng.normal(0, 4, image.shape), 0, 255).astype(np.uint8)
        if i >= 60:
            image = (image * 0.6 + 20).astype(np.uint8)
        image[0, 0, 0], image[0, 0, 1] = i % 256, i // 256
        yield Frame(i, i / 30, image)


@pytest.mark.parametrize("near", [False, True])
def test_a_face_that_looks_away_for_longer_than_the_memory_takes_its_track_back(near):
    """A two-shot: face A looks away for 3 s (90 frames, memory 60) beside face B and turns back, in other
    light; A leaves and, 3 s later, a stranger sits where A was: A's track back, the stranger a new one,
    B one track throughout."""
    a, b = [40, 40, 100, 100], [120, 42, 180, 102]
    face_a, face_b, stranger = _face(1), _face(2), _face(3)
    faces, boxes = {}, {}
    for i in range(240):
        there = [(b, face_b)]
        if not 20 <= i < 110 and i < 130:  # A: away 20-109, back 110-129
            there.append((a, face_a))
        if i >= 220:  # a stranger in A's place
            there.append((a, stranger))
        faces[i] = there
        boxes[i] = [box for box, _ in there]
    detector = (_NearDetector if near else _ScriptedDetector)(boxes)
    out = _run(FaceTracker(detector, every=5, smoothing=0.0, memory=60, cuts=False), _scene(240, faces))
    ids = {name: {tid for i, found, _ in out if lo <= i < hi for tid, box in found.items()
                  if box_iou(box, where) > 0.5}
           for name, lo, hi, where in [("a", 0, 20, a), ("a back", 115, 130, a), ("b", 0, 240, b),
                                       ("stranger", 225, 240, a)]}
    assert len(ids["a"]) == 1 and ids["a back"] == ids["a"]
    assert len(ids["b"]) == 1 and ids["b"] != ids["a"]
    assert len(ids["stranger"]) == 1 and ids["stranger"].isdisjoint(ids["a"] | ids["b"])


@pytest.mark.parametrize("near", [False, True])
@pytest.mark.parametrize("speed, stop", [(5, 12), (6, 10)])
def test_where_two_faces_cross_the_face_in_front_keeps_its_own_track(near, speed, stop):
    """Face B walks left and stops; face A walks right behind it. While A is hidden, B's box lies nearer
    where A's track expects A than where B's track expects B (B stopped), and a search near either face
    finds both: each box goes to the track whose face it looks like, and neither track ever takes the
    other's face."""
    size, faces, boxes, truth = 50, {}, {}, {}
    looks = {"a": _face(1, size), "b": _face(2, size)}
    for i in range(36):
        ax = speed * i
        bx = 180 - speed * min(i, stop)  # B stops
        there = {"b": [bx, 50, bx + size, 50 + size]}
        if abs(ax - bx) >= 30 and ax + size <= 240:  # A behind B: hidden when they overlap by more than 40%
            there["a"] = [ax, 52, ax + size, 52 + size]
        order = sorted(there, key=lambda name: name == "b")  # B in front
        faces[i] = [(there[name], looks[name]) for name in order]
        boxes[i] = [there[name] for name in order]
        truth[i] = there
    detector = (_NearDetector if near else _ScriptedDetector)(boxes)
    out = _run(FaceTracker(detector, every=5, smoothing=0.0, cuts=False), _scene(36, faces))
    ids = {"a": set(), "b": set()}
    for i, found, _ in out:
        for tid, box in found.items():
            for name, true_box in truth[i].items():
                if box_iou(box, true_box) > 0.5:
                    ids[name].add(tid)
    assert len(ids["a"]) == 1 and len(ids["b"]) == 1 and ids["a"] != ids["b"], ids
