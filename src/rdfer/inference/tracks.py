"""Following every face through a video: shot cuts, keyframe detection, tracks.

Running a face detector on every frame is the slow part of video FER on a CPU,
and faces move little within a few frames. So the detector runs on keyframes
(every `every`-th frame, and the first and last frames of every shot);
frames between two keyframes take the linear interpolation of each face's
boxes there (a face seen on only one of the two keeps its box for up to half
the interval, never across a cut).

`FaceTracker` gives every face a track id:
- On a keyframe each followed face is searched near where it was (for a
  detector that can: MTCNN searches a small square around it, a few ms);
  the whole frame is searched on the first keyframe of a shot, on every
  `full_every`-th keyframe, and in between after 1, 2, 4, ... keyframes,
  the gap doubling up to `full_every` (default 8: a face that comes in is
  found within 40 frames, 1.3 s at 30 fps; a whole-frame search costs about
  3 times a search near a face, so searching every keyframe would slow
  `rdfer predict` down by about half); a whole-frame search that finds a new
  face sets the gap back to 1 (a detector that misses small or grainy faces
  on some frames may have missed others: the first search of a shot is one
  sample), and so does giving up on a lost face (it may come back soon;
  while it is asleep, below, the gap is at most half of `full_every`). The
  whole frame is also searched whenever a followed face was not found near
  its box, and when more than `MAX_NEAR` faces are followed (one whole-frame
  search then costs less than the small ones). The faces followed are still
  searched near their box first (the sharper search); one (a new one too)
  that a whole-frame search does not show is then searched near its box,
  for up to `MAX_NEAR` such faces.
- Boxes found are matched to the followed faces greedily by overlap (IoU
  above `MATCH_IOU`); where there is a choice (two faces that could take one
  box, or a search near a face that found two), the overlap counts together
  with how alike the faces look (`LOOK_WEIGHT`, `face_look`), so where two
  people cross each box goes to the face it shows. **One track per face**:
  whatever search found them, two tracks whose boxes on a keyframe are one
  face (IoU of `DUPLICATE_IOU` or more, or one box mostly inside the other)
  keep only the track that fits it best (overlap with where it was expected,
  and look); the other is then looked for on the whole frame (if a search
  near it found the box) or missed on this keyframe; a box that matches
  none, and is no face already found, starts a new track.
- **Track memory**: a face not found (missed by the detector, turned away,
  hidden behind another, out of the frame) keeps its track for `memory`
  frames (default 60, 2 s at 30 fps): a face found again near where it was
  last seen (centre within `REVIVE_DISTANCE` of its size, size within a
  factor 1.6) takes its old track back instead of starting a new one. Only
  within a shot: a cut ends every track.
- **A face that looks away for longer** (a head turned away for seconds in a
  long shot): a track lost for more than `memory` frames is kept asleep until
  the shot ends; a face found again where it was last seen (the same distance
  and size limits) that also looks like it (`face_look`: the normalised
  correlation of small grey thumbnails of the two faces, at least `LOOK_SAME`;
  grey, so black-and-white footage works the same) wakes it instead of starting
  a new track. Another person in that place looks different: a new track.
- At a shot cut (`ShotCuts`) every track ends and the new shot starts from
  scratch: a face after a cut is a new track even if it is the same person,
  and no box is carried or interpolated across the cut, so the crops on
  either side of a cut always show the face of their own shot.
- A track found on a single keyframe only is a false alarm, unless that is the
  first or the last keyframe of the video (`FaceTracker.keep`).

Shot cuts: `ShotCuts` compares each frame with the one before on a small HSV
copy (96 px wide): the mean absolute difference of hue, saturation and value
(the score of PySceneDetect's ContentDetector, threshold 27 on 0-255 channels,
its default) or, if larger, of value alone (its `luma_only` score: a cut
between two black-and-white shots changes no hue or saturation), computed here
on a frame the decoder already gave us (docs/predict.md says why not
PySceneDetect itself). A cut needs the score above the threshold and at least
`min_shot` frames since the last cut.

Boxes are float arrays (x0, y0, x1, y1) in pixels of the upright frame.
"""

from dataclasses import dataclass, field
from typing import Iterable, Iterator

import cv2
import numpy as np

from rdfer.errors import RdferError
from rdfer.inference.faces import box_iou
from rdfer.inference.video import Frame

MATCH_IOU = 0.2  # a box belongs to a followed face when they overlap at least this much
DUPLICATE_IOU = 0.4  # two boxes this close are one face
DUPLICATE_INSIDE = 0.7  # ... and so is a box with this share of its area inside another
REVIVE_DISTANCE = 1.5  # a lost face found again: centre within this many face sides of where it was last seen
REVIVE_SIZE = 1.6  # ... and its size within this factor
LOOK_SIZE = 16  # side of the grey thumbnail a face's look is kept as
LOOK_SAME = 0.6  # a face lost for longer than the memory takes its track back only when it looks this alike
LOOK_WEIGHT = 0.5  # how much looking alike counts beside the overlap when two followed faces want one box
LOOK_KEEP = 0.7  # share of a track's look kept when the face is seen again (the rest: the new look)
MAX_DORMANT = 16  # tracks lost for longer than the memory kept per shot, for a face that comes back (newest)
MAX_NEAR = 2  # more followed faces than this: one whole-frame search instead of a search per face
CUT_THRESHOLD = 27.0  # ContentDetector's default score (mean |dH|, |dS|, |dV| on 0-255 channels)
CUT_WIDTH = 96  # width of the copy the cut score is computed on


class ShotCuts:
    """Say for each frame, in order, whether a new shot starts there.

        cuts = ShotCuts(); [cuts.is_cut(frame.image) for frame in frames]

    Args:
        threshold: content score (mean absolute HSV difference, 0-255) that makes a cut.
        min_shot: frames a shot lasts at least (a flash or a fast pan of a few frames is no cut).
    """

    def __init__(self, threshold: float = CUT_THRESHOLD, min_shot: int = 8):
        self.threshold, self.min_shot = threshold, min_shot
        self._previous: np.ndarray | None = None
        self._since = 0  # frames since the last cut (or the start)
        self.scores: list[float] = []

    def score(self, image: np.ndarray) -> float:
        """The content score of `image` (BGR) against the frame before (0 for the first frame)."""
        height = max(int(round(image.shape[0] * CUT_WIDTH / image.shape[1])), 1)
        # Bilinear, not area averaging: 0.05 ms against 0.65 ms for a 640x360 frame (measured), and the
        # score averages 15,000 differences, so the sampling noise of a few pixels does not move it.
        small = cv2.cvtColor(cv2.resize(image, (CUT_WIDTH, height), interpolation=cv2.INTER_LINEAR), cv2.COLOR_BGR2HSV)
        previous, self._previous = self._previous, small
        if previous is None or previous.shape != small.shape:
            return 0.0
        h, s, v = cv2.mean(cv2.absdiff(small, previous))[:3]
        # Grey footage has no hue or saturation to change: there the brightness alone must count
        # (the mean of three channels would hide a cut between two black-and-white shots).
        return float(max((h + s + v) / 3, v))

    def is_cut(self, image: np.ndarray) -> bool:
        score = self.score(image)
        self.scores.append(score)
        self._since += 1
        if score >= self.threshold and self._since > self.min_shot:
            self._since = 0
            return True
        return False


@dataclass
class _Track:
    id: int
    box: np.ndarray  # box at the last keyframe where it was found
    hits: int = 1  # keyframes where it was found
    missed: int = 0  # keyframes in a row where it was not
    velocity: np.ndarray = field(default_factory=lambda: np.zeros(4, np.float32))  # box change per keyframe
    guess: np.ndarray | None = None  # where the face should be on this keyframe (box moved by its velocity)
    look: np.ndarray | None = None  # how the face looked (face_look), averaged over the keyframes it was found on

    def see(self, look: np.ndarray | None) -> None:
        if look is None or self.look is None:
            self.look = look if look is not None else self.look
            return
        mixed = LOOK_KEEP * self.look + (1 - LOOK_KEEP) * look
        self.look = mixed / max(float(np.linalg.norm(mixed)), 1e-6)

    def expect(self) -> None:
        # A face unseen for a while: carried on by its velocity for one keyframe at most (a face
        # that stopped, or turned and came back, is found again where it was).
        self.guess = self.box + self.velocity * min(self.missed + 1, 2)


@dataclass
class _Key:
    """A keyframe: its frame index, whether a shot starts there, and {track id: box} found on it."""

    index: int
    cut: bool
    boxes: dict = field(default_factory=dict)


def _same_face(a: np.ndarray, b: np.ndarray) -> bool:
    """Whether two boxes show one face: they overlap much, or the smaller lies mostly inside the larger."""
    if box_iou(a, b) >= DUPLICATE_IOU:
        return True
    w = min(a[2], b[2]) - max(a[0], b[0])
    h = min(a[3], b[3]) - max(a[1], b[1])
    smaller = min((a[2] - a[0]) * (a[3] - a[1]), (b[2] - b[0]) * (b[3] - b[1]))
    return w > 0 and h > 0 and smaller > 0 and w * h / smaller >= DUPLICATE_INSIDE


def _near_last_seen(track: _Track, box: np.ndarray) -> float:
    """How close `box` is to where a lost face was last seen or should be by now (0: far, or
    another size; up to 1: the same place)."""
    return max(_closeness(track.box, box), _closeness(track.guess, box))


def _closeness(last: np.ndarray, box: np.ndarray) -> float:
    side = max(last[2] - last[0], last[3] - last[1], 1.0)
    other = max(box[2] - box[0], box[3] - box[1], 1.0)
    if max(side, other) / min(side, other) > REVIVE_SIZE:
        return 0.0
    dx = (box[0] + box[2] - last[0] - last[2]) / 2
    dy = (box[1] + box[3] - last[1] - last[3]) / 2
    return max(0.0, 1.0 - float(np.hypot(dx, dy)) / (REVIVE_DISTANCE * side))


def face_look(image: np.ndarray, box: np.ndarray) -> np.ndarray | None:
    """How a face looks, cheaply: the grey box shrunk to LOOK_SIZE x LOOK_SIZE, less its mean, of unit
    length (so `a @ b` is the normalised correlation of two looks, 1 for the same picture; grey, so it
    works on black-and-white footage; no brightness or contrast change moves it). None for a box of a
    few pixels or an even patch."""
    h, w = image.shape[:2]
    x0, y0 = max(int(box[0]), 0), max(int(box[1]), 0)
    x1, y1 = min(int(np.ceil(box[2])), w), min(int(np.ceil(box[3])), h)
    if x1 - x0 < 4 or y1 - y0 < 4:
        return None
    crop = image[y0:y1, x0:x1]
    grey = cv2.cvtColor(crop, cv2.COLOR_BGR2GRAY) if crop.ndim == 3 else crop
    look = cv2.resize(grey, (LOOK_SIZE, LOOK_SIZE), interpolation=cv2.INTER_AREA).astype(np.float32).ravel()
    look -= look.mean()
    norm = float(np.linalg.norm(look))
    return look / norm if norm > 1e-3 else None


def _alike(track: _Track, look: np.ndarray | None) -> float:
    """Normalised correlation of a track's look and another (0 when either is unknown)."""
    return float(track.look @ look) if track.look is not None and look is not None else 0.0


def _overlap_matches(tracks: list[_Track], boxes: np.ndarray, image: np.ndarray | None = None) -> tuple[dict, list[int]]:
    """Greedy matching by IoU (at least MATCH_IOU), the pairs taken by IoU plus LOOK_WEIGHT times how alike
    the faces look (with `image`: where two faces cross, the box goes to the track it looks like):
    ({track id: box index}, indices of the boxes left unmatched)."""
    choice = len(tracks) > 1 or len(boxes) > 1  # looks only matter where there is a choice
    looks = [face_look(image, b) if image is not None and choice else None for b in boxes]
    pairs = sorted(((box_iou(t.guess, b) + LOOK_WEIGHT * _alike(t, looks[k]), box_iou(t.guess, b), t.id, k)
                    for t in tracks for k, b in enumerate(boxes)), reverse=True)
    matched, used = {}, set()
    for _, iou, tid, k in pairs:
        if iou < MATCH_IOU:
            continue
        if tid not in matched and k not in used:
            matched[tid] = k
            used.add(k)
    return matched, [k for k in range(len(boxes)) if k not in used]


class FaceTracker:
    """Every face through a video, as tracks (see the module docstring).

        tracker = FaceTracker(detector, every=5)
        for frame, faces, cut in tracker(frames):   # faces: [(track id, box)], cut: a shot starts here
            ...
        tracker.keep(track_id)    # after the loop: False for a one-keyframe false alarm

    Args:
        detector: `detect(image) -> (K, 4)` boxes of the whole frame; with `tracks = True`
            also `detect_near(image, box) -> (K, 4)` (a search around a followed face).
        every: run the detector on every `every`-th frame (and on the first and last frame of each shot).
        full_every: the longest gap, in keyframes, between two whole-frame searches even when
            every followed face was found near its box (the gap starts at 1 in a shot and doubles).
        memory: frames a face may go unseen (missed, turned away, hidden, out of the frame) and
            still take its track back when found again near where it was last seen.
        smoothing: share of the previous keyframe's box kept in a keyframe's box when
            both show the same face (damps detector jitter); 0 keeps the raw box.
        cuts: a ShotCuts; None (default): a new ShotCuts(); False: no cut detection.
        single: follow one face only (the largest at the start, then the one overlapping it).

    Holds at most `every` frames in memory.
    """

    def __init__(self, detector, every: int = 5, full_every: int = 8, memory: int = 60,
                 smoothing: float = 0.3, cuts=None, single: bool = False):
        if every < 1:
            raise RdferError(f"--detect-every must be at least 1, got {every}")
        self.detector, self.every, self.full_every = detector, every, max(full_every, 1)
        # Keyframes a face may be missed in a row (at least one: a single miss never ends a track).
        self.max_missed = max(int(memory) // every, 1)
        self.smoothing, self.single = smoothing, single
        self.cuts = ShotCuts() if cuts is None else (cuts or None)
        self.near = getattr(detector, "tracks", False)
        self.hits: dict[int, int] = {}  # track id -> keyframes where it was found
        self.cut_frames: list[int] = []  # indices of the frames where a shot starts (not frame 0)
        self.keyframes = 0
        self._first_key: dict[int, int] = {}  # track id -> number of the keyframe it was first found on
        self._gap = 1  # keyframes from one whole-frame search to the next while all followed faces are found
        self._since_full = 0  # keyframes since the last whole-frame search
        self._tracks: list[_Track] = []
        self._dormant: list[_Track] = []  # tracks lost for longer than the memory, in this shot (oldest first)
        self._next_id = 1

    def keep(self, track_id: int) -> bool:
        """Whether a track counts: seen on two keyframes or more, or on the first or last keyframe
        of the video (a face at the very start or end has no keyframe on one side to confirm it)."""
        return self.hits.get(track_id, 0) >= 2 or self._first_key[track_id] in (0, self.keyframes - 1)

    def _search(self, image: np.ndarray, cut: bool) -> dict:
        """{track id: box} of the faces on this keyframe (starting tracks for new faces)."""
        if cut:
            self._tracks, self._dormant = [], []
        tracks, found = self._tracks, {}
        for track in tracks:
            track.expect()
        # One face followed (`single`) needs no periodic search: a new face would not be followed.
        self._since_full += 1
        periodic = not self.single and (self._since_full >= self._gap or self.keyframes % self.full_every == 0)
        full = cut or not tracks or not self.near or len(tracks) > MAX_NEAR
        searched = set()  # tracks searched near their box on this keyframe
        if not full:  # followed faces are searched near their box (sharper than the whole-frame search)
            searched = {t.id for t in tracks}
            for track in tracks:
                boxes = self.detector.detect_near(image, track.guess)
                matched, _ = _overlap_matches([track], boxes, image)
                if matched:
                    found[track.id] = boxes[matched[track.id]]
            # Two searches that found one face: one track keeps it, the other is searched for anew.
            self._one_track_per_face(found, image)
            full = periodic or len(found) < len(tracks)
        if full:
            started = self._next_id
            boxes = self.detector.detect(image)
            if found:  # a face found near its box already: drop the whole-frame boxes on it
                boxes = np.asarray([b for b in boxes if max(box_iou(b, f) for f in found.values()) < DUPLICATE_IOU],
                                   np.float32).reshape(-1, 4)
            matched, rest = _overlap_matches([t for t in tracks if t.id not in found], boxes, image)
            found.update({tid: boxes[k] for tid, k in matched.items()})
            # The search near a face finds small faces the whole-frame search misses: a followed face
            # (a new one too) the whole frame did not show is searched near its box, a few at most.
            unseen = [t for t in tracks if t.id not in found and t.id not in searched]
            if self.near and len(unseen) <= MAX_NEAR:
                for track in unseen:
                    near = self.detector.detect_near(image, track.guess)
                    near = np.asarray([b for b in near if not any(_same_face(b, f) for f in found.values())],
                                      np.float32).reshape(-1, 4)
                    hit, _ = _overlap_matches([track], near, image)
                    if hit:
                        found[track.id] = near[hit[track.id]]
            # A face not matched by overlap (it moved fast, or was lost for a while) found near where it
            # was last seen or should be by now keeps its track.
            lost = [t for t in tracks if t.id not in found]
            pairs = sorted(((_near_last_seen(t, boxes[k]), t.id, k) for t in lost for k in rest), reverse=True)
            for closeness, tid, k in pairs:
                if closeness > 0 and tid not in found and k in rest:
                    found[tid] = boxes[k]
                    rest.remove(k)
            if self._dormant and rest:
                self._wake(image, boxes, rest, found)
            if self.single and (tracks or found):
                rest = []
            elif self.single and rest:
                areas = [(boxes[k][2] - boxes[k][0]) * (boxes[k][3] - boxes[k][1]) for k in rest]
                rest = [rest[int(np.argmax(areas))]]
            for k in rest:
                if any(_same_face(boxes[k], f) for f in found.values()):
                    continue
                track = _Track(self._next_id, boxes[k], hits=0, guess=boxes[k])
                self._first_key[track.id] = self.keyframes
                self._next_id += 1
                tracks.append(track)
                found[track.id] = boxes[k]
            # A detector misses a small or grainy face on some frames: one whole-frame search at the start
            # of a shot, or one that found a new face, may have missed others. The next comes on the next
            # keyframe, then the gap doubles with each search that finds no new face, up to `full_every`.
            # While a face given up on may come back (a lost track kept asleep), at least every other
            # `full_every`-th keyframe.
            longest = max(self.full_every // 2, 1) if self._dormant else self.full_every
            self._gap = 1 if cut or self._next_id > started else min(2 * self._gap, longest)
            self._since_full = 0

        self._one_track_per_face(found, image)
        for track in list(tracks):
            if track.id in found:
                box = np.asarray(found[track.id], np.float32)
                if track.hits and box_iou(box, track.guess) > 0.5:
                    box = (1 - self.smoothing) * box + self.smoothing * track.guess
                if track.hits:
                    step = (box - track.box) / (track.missed + 1)
                    track.velocity = (0.5 * track.velocity + 0.5 * step).astype(np.float32)
                track.box, track.missed = box, 0
                track.hits += 1
                self.hits[track.id] = track.hits
                found[track.id] = box
            else:
                track.missed += 1
                if track.missed > self.max_missed:
                    tracks.remove(track)
                    self._dormant = [*self._dormant[1 - MAX_DORMANT:], track]
                    self._gap = 1  # a face given up on comes back soonest: search the whole frame often again
        for track in tracks:
            if track.id in found:
                track.see(face_look(image, found[track.id]))
        self.keyframes += 1
        return found

    def _wake(self, image: np.ndarray, boxes: np.ndarray, rest: list[int], found: dict) -> None:
        """Faces lost for longer than the memory (a head turned away for seconds) found again where
        they were last seen, and looking alike (`LOOK_SAME`), take their tracks back (same shot only)."""
        looks = {k: face_look(image, boxes[k]) for k in rest}
        pairs = sorted(((_alike(t, looks[k]), t.id, k) for t in self._dormant for k in rest
                        if _closeness(t.box, boxes[k]) > 0), key=lambda p: p[0], reverse=True)
        for alike, tid, k in pairs:
            if alike < LOOK_SAME:
                break
            track = next((t for t in self._dormant if t.id == tid), None)
            if track is None or k not in rest:
                continue
            self._dormant.remove(track)
            track.guess, track.velocity = track.box, np.zeros(4, np.float32)
            self._tracks.append(track)
            found[tid] = boxes[k]
            rest.remove(k)

    def _one_track_per_face(self, found: dict, image: np.ndarray) -> None:
        """Two tracks on one face (searches near two followed faces found the same face, or a lost
        face was taken back where another is): the track whose last box overlaps it most, plus
        LOOK_WEIGHT times how alike it looks, keeps it (then the one seen on more keyframes, then the
        older), the other is not found here."""
        tracks = {t.id: t for t in self._tracks if t.guess is not None}

        def fit(tid):
            if tid not in tracks:
                return 0.0
            track = tracks[tid]
            return box_iou(track.guess, found[tid]) + LOOK_WEIGHT * _alike(track, face_look(image, found[tid]))

        contested = {tid for tid in found if any(o != tid and _same_face(found[tid], found[o]) for o in found)}
        order = sorted(found, key=lambda tid: (-fit(tid) if tid in contested else 0.0,
                                               -self.hits.get(tid, 0), tid))
        kept: list[int] = []
        for tid in order:
            if any(_same_face(found[tid], found[other]) for other in kept):
                del found[tid]
            else:
                kept.append(tid)

    def _between(self, frame: Frame, before: _Key, after: _Key) -> list[tuple[int, np.ndarray]]:
        """The faces of a frame between two keyframes: interpolated, or the nearer box held."""
        faces, half = [], self.every / 2
        span = after.index - before.index
        w = (frame.index - before.index) / span
        for tid, box in before.boxes.items():
            if tid in after.boxes:
                faces.append((tid, (1 - w) * box + w * after.boxes[tid]))
            elif frame.index - before.index <= half:
                faces.append((tid, box))
        if not after.cut:  # a face that appears at `after` is held back, never across a cut
            faces += [(tid, box) for tid, box in after.boxes.items()
                      if tid not in before.boxes and after.index - frame.index <= half]
        return faces

    def __call__(self, frames: Iterable[Frame]) -> Iterator[tuple[Frame, list[tuple[int, np.ndarray]], bool]]:
        """Yield (frame, [(track id, box)], cut) for every frame, in order."""
        held: list[Frame] = []  # frames since the last keyframe (never a cut: a cut is a keyframe)
        last_key: _Key | None = None
        for frame in frames:
            cut = self.cuts.is_cut(frame.image) if self.cuts is not None else False
            if cut and frame.index > 0:
                self.cut_frames.append(frame.index)
            if last_key is not None and not cut and frame.index - last_key.index < self.every:
                held.append(frame)
                continue
            if cut and held:  # the last frame of a shot is a keyframe too: its faces last until the cut
                last_key = yield from self._close(held, last_key)
            key = _Key(frame.index, cut, self._search(frame.image, cut))
            yield from self._release(held, last_key, key)
            held = []
            yield frame, list(key.boxes.items()), cut
            last_key = key
        if held:  # the last frame is a keyframe too
            yield from self._close(held, last_key)

    def _close(self, held: list[Frame], before: _Key):
        """Search the last held frame as a keyframe and yield every held frame; returns that keyframe."""
        last = held.pop()
        key = _Key(last.index, False, self._search(last.image, False))
        yield from self._release(held, before, key)
        held.clear()
        yield last, list(key.boxes.items()), False
        return key

    def _release(self, held: list[Frame], before: _Key | None, after: _Key):
        if before is not None:
            for frame in held:
                yield frame, self._between(frame, before, after), False
