"""Synthetic DFER benchmark with known ground truth (`rdfer synth`).

Every clip is a procedurally drawn face video (OpenCV, anti-aliased, drawn at
twice the output size and downsampled). The 7 DFEW expressions differ only in
facial configuration, written as a small set of facial actions (a simplified
FACS): brow raise / lower / inner raise, eye opening, mouth corners, jaw drop,
lip press, lip stretch and nose wrinkle (with upper-lip raise). Each clip has
an onset, an apex and an offset at random times, and what makes real DFER hard:
identities (face shape, skin tone, hair, feature placement), head motion
(translation, rotation, scale, a little yaw), lighting changes (gain, colour,
moving gradient), occluders (a bar or a hand crossing the face), talking and
blinking, subtle intensities, a short non-target expression inside the clip,
and "mixed" clips that show a second expression at the same time.

Output layouts (read by the real loaders in `rdfer.data`):

- ``dfew``: ``EmoLabel_DataSplit/{train,test}(single-labeled)/set_{1..5}.csv``
  (header ``video_name,label``, labels 1..7, video names without leading zeros
  as in DFEW), frames ``Clip/clip_224x224/NNNNN/00001.jpg ...``. The small
  benchmark's 5 folds are a seeded class-stratified partition: every clip is
  in exactly one test fold and in the train lists of the other four.
- ``ferv39k``: ``4_setups/All_scenes/{train,test}_All.csv`` (lines
  ``Scene/Emotion/clip Emotion``, no header), frames
  ``2_ClipsforFaceCrop/Scene/Emotion/clip/00001.jpg ...``.

``DIR/ground_truth.csv`` has one row per clip: ``video_name`` exactly as in the
split CSVs, ``true_label`` and ``given_label`` (1-based, DFEW order; given is
what the train CSVs contain: a noisy clip's given label is another class drawn
uniformly with ``noise_type="symmetric"``, its most confusable class
``PAIR_FLIPS`` with ``"pair"``), ``is_noisy``, ``is_hard`` (mixed expressions, or
a non-Neutral expression whose peak intensity is below ``SUBTLE_HARD``) and
``apex_start``/``apex_end`` (0-based inclusive frame indices, frame 00001.jpg
is index 0). ``DIR/synth.json`` records the options used (``noise_type``
included).

Everything random about a clip comes from a numpy Generator seeded by
(seed, clip name), so clips render identically in any order, in any number of
worker processes, and in a subset of the same benchmark.
"""

from __future__ import annotations

import csv
import json
import multiprocessing
import os
import shutil
import zlib
from dataclasses import dataclass, replace
from pathlib import Path

import cv2
import numpy as np

from rdfer.errors import RdferError
from rdfer.labels import DFEW_CLASSES, FERV39K_TO_DFEW

SPLITS_DIR = Path(__file__).resolve().parent.parent / "splits"

# Facial actions, each roughly in [-1, 1] (0 = resting face).
ACTIONS = (
    "brow_raise",    # whole brow up (surprise)
    "brow_lower",    # brows down and together (anger)
    "brow_inner",    # inner brow ends up (sadness, fear)
    "eye_open",      # + widened eyes, - squint
    "mouth_corner",  # + corners up (smile), - corners down
    "jaw_drop",      # mouth opening
    "lip_press",     # thin, narrow lips
    "lip_stretch",   # + lips pulled sideways (fear), - rounded (surprise)
    "nose_wrinkle",  # nose wrinkles and a raised upper lip (disgust)
)
A = {name: i for i, name in enumerate(ACTIONS)}

# Expression prototypes at full intensity, rows in DFEW order.
_PROTOTYPE_DICTS = {
    "Happy": {"mouth_corner": 1.0, "eye_open": -0.4, "jaw_drop": 0.3, "lip_stretch": 0.3},
    "Sad": {"brow_inner": 1.0, "brow_lower": 0.3, "mouth_corner": -0.9, "eye_open": -0.3,
            "lip_press": 0.25},
    "Neutral": {},
    "Angry": {"brow_lower": 1.0, "lip_press": 1.0, "eye_open": 0.1, "mouth_corner": -0.25},
    "Surprise": {"brow_raise": 1.0, "eye_open": 1.0, "jaw_drop": 1.0, "lip_stretch": -0.5},
    "Disgust": {"nose_wrinkle": 1.0, "brow_lower": 0.5, "eye_open": -0.5, "mouth_corner": -0.5},
    "Fear": {"brow_raise": 0.6, "brow_inner": 0.8, "eye_open": 0.9, "lip_stretch": 1.0,
             "jaw_drop": 0.45, "mouth_corner": -0.25},
}
PROTOTYPES = np.array(
    [[_PROTOTYPE_DICTS[c].get(a, 0.0) for a in ACTIONS] for c in DFEW_CLASSES], np.float32
)  # (7, len(ACTIONS))

# A non-Neutral clip whose peak intensity is below this is marked hard.
SUBTLE_HARD = 0.35
# Made-up FERV39K scenes for the small benchmark.
FERV_SCENES = ("Lab", "Office", "Street", "Studio")
# Class shares of the small benchmark: halfway between DFEW's single-labeled
# shares and uniform, so it is imbalanced like DFEW (WAR != UAR) but the rare
# classes still have enough clips in a demo of ~1,000.
_DFEW_COUNTS = np.array([2445, 1894, 2669, 2173, 1469, 145, 902], np.float64)
CLASS_SHARES = 0.5 * _DFEW_COUNTS / _DFEW_COUNTS.sum() + 0.5 / len(DFEW_CLASSES)

# Pair noise: each flipped label becomes its most confusable class, the pairs
# real DFER models confuse (Fear/Surprise, Angry/Disgust, Sad/Neutral). Happy,
# confused with little else, flips to Neutral, the class the paper's model drifts
# to on hard clips (its Fig. 5 text), and the one the synthetic Happy face nears
# at low intensity. So the map is not one-to-one: Happy and Sad both flip to Neutral.
PAIR_FLIPS = {"Happy": "Neutral", "Sad": "Neutral", "Neutral": "Sad", "Angry": "Disgust",
              "Surprise": "Fear", "Disgust": "Angry", "Fear": "Surprise"}
_PAIR_INDEX = np.array([DFEW_CLASSES.index(PAIR_FLIPS[c]) for c in DFEW_CLASSES])
NOISE_TYPES = ("symmetric", "pair")

_SHIFT = 4  # fixed-point bits for sub-pixel cv2 drawing
_AA = cv2.LINE_AA


@dataclass(frozen=True)
class Identity:
    """One person's appearance. Lengths are in canvas units (canvas = 1 x 1,
    head centre near the origin, y pointing down); colours are BGR."""

    face_a: float          # half width of the head
    face_b: float          # half height of the head
    jaw_taper: float       # how much the lower face narrows
    skin: tuple
    hair: tuple
    hair_style: int        # 0 short, 1 long, 2 shaved
    eye_y: float
    eye_dx: float          # half the distance between the eyes
    eye_w: float
    eye_h: float
    iris: tuple
    brow_gap: float
    brow_t: float
    brow_arch: float
    nose_len: float
    nose_w: float
    mouth_gap: float       # nose tip to mouth
    mouth_w: float
    lip_t: float
    lip: tuple
    background: int        # seed of the static background


@dataclass(frozen=True)
class ClipPlan:
    """Everything random about one clip; `render_frames` draws it.

    Per-frame arrays have the clip's T frames as their first axis.
    """

    name: str
    label: int             # true class, 0-based DFEW order
    num_frames: int
    identity: Identity
    actions: np.ndarray    # (T, len(ACTIONS)) facial actions per frame
    gaze: np.ndarray       # (T, 2) iris offset in [-1, 1]
    pose: np.ndarray       # (T, 5) dx, dy, roll degrees, scale, yaw in [-1, 1]
    light: np.ndarray      # (T, 3) gain, gradient amplitude, gradient angle (rad)
    colour: tuple          # per-clip channel gains (B, G, R)
    noise_sigma: float     # pixel noise
    occluder: dict | None  # kind, colour, size, path, frames
    apex_start: int
    apex_end: int
    peak: float            # intensity of the target expression at apex
    mixed_with: int        # second class shown at the same time, -1 if none
    distractor: int        # class of the short non-target expression, -1 if none

    @property
    def is_hard(self) -> bool:
        subtle = self.label != DFEW_CLASSES.index("Neutral") and self.peak < SUBTLE_HARD
        return self.mixed_with >= 0 or subtle


# --------------------------------------------------------------------------- planning


def _clip_rngs(seed: int, name: str, n: int) -> list:
    """Independent generators for one clip, fixed by (seed, clip name) alone."""
    root = np.random.SeedSequence(int(seed), spawn_key=(zlib.crc32(name.encode("utf-8")),))
    return [np.random.default_rng(s) for s in root.spawn(n)]


def _random_identity(rng: np.random.Generator) -> Identity:
    # Skin tone between a light and a dark anchor, hue jittered.
    t = rng.uniform(0.0, 1.0)
    light, dark = np.array([170, 195, 235.0]), np.array([55, 85, 125.0])
    skin = (1 - t) * light + t * dark + rng.normal(0, 8, 3)
    hair = rng.choice([[20, 25, 30], [30, 50, 90], [60, 90, 140], [150, 150, 155], [40, 40, 45]])
    hair = np.asarray(hair, np.float64) * rng.uniform(0.8, 1.2)
    iris = rng.choice([[40, 60, 90], [110, 90, 40], [60, 110, 70], [30, 35, 50]])
    lip = skin * np.array([0.75, 0.7, 0.95]) + rng.normal(0, 6, 3)
    eye_y = rng.uniform(-0.07, -0.03)
    nose_len = rng.uniform(0.12, 0.15)
    return Identity(
        face_a=rng.uniform(0.29, 0.34),
        face_b=rng.uniform(0.37, 0.42),
        jaw_taper=rng.uniform(0.1, 0.35),
        skin=tuple(np.clip(skin, 0, 255)),
        hair=tuple(np.clip(hair, 0, 255)),
        hair_style=int(rng.integers(0, 3)),
        eye_y=eye_y,
        eye_dx=rng.uniform(0.10, 0.135),
        eye_w=rng.uniform(0.05, 0.063),
        eye_h=rng.uniform(0.019, 0.026),
        iris=tuple(float(c) for c in iris),
        brow_gap=rng.uniform(0.055, 0.07),
        brow_t=rng.uniform(0.013, 0.02),
        brow_arch=rng.uniform(0.004, 0.016),
        nose_len=nose_len,
        nose_w=rng.uniform(0.033, 0.05),
        mouth_gap=rng.uniform(0.065, 0.085),
        mouth_w=rng.uniform(0.085, 0.105),
        lip_t=rng.uniform(0.012, 0.018),
        lip=tuple(np.clip(lip, 0, 255)),
        background=int(rng.integers(0, 2**31 - 1)),
    )


def _smoothstep(x: np.ndarray) -> np.ndarray:
    x = np.clip(x, 0.0, 1.0)
    return x * x * (3 - 2 * x)


def _intensity_curve(rng: np.random.Generator, T: int, longer_apex: float = 0.0) -> tuple:
    """Onset -> apex -> offset envelope in [0, 1]; returns (curve (T,), apex_start, apex_end).

    The apex holds for 12-35% of the clip, plus `longer_apex` of it.
    """
    rise = max(1, round(rng.uniform(0.08, 0.25) * T))
    hold = max(1, round((rng.uniform(0.12, 0.35) + longer_apex) * T))
    fall = max(1, round(rng.uniform(0.08, 0.25) * T))
    # The offset may run past the end of the clip (expression still fading).
    over = rise + hold - T
    if over > 0:
        rise = max(1, rise - over)
        hold = min(hold, T - rise)
    start = int(rng.integers(0, T - rise - hold + 1))  # first frame of the rise
    apex_start, apex_end = start + rise, start + rise + hold - 1
    if apex_start >= T:  # a 1-2 frame clip: apex at the end
        apex_start = apex_end = T - 1
    t = np.arange(T, dtype=np.float64)
    curve = np.where(
        t < apex_start,
        _smoothstep((t - start + 1) / (rise + 1)),
        np.where(t <= apex_end, 1.0, _smoothstep(1 - (t - apex_end) / (fall + 1))),
    )
    curve[apex_start:apex_end + 1] = 1.0
    return curve, apex_start, min(apex_end, T - 1)


def _smooth_wave(rng: np.random.Generator, T: int, amplitude: float) -> np.ndarray:
    """Sum of two slow sinusoids, (T,), amplitude about `amplitude`."""
    t = np.arange(T) / max(T, 1)
    wave = np.zeros(T)
    for _ in range(2):
        freq = rng.uniform(0.2, 2.0)
        wave += rng.uniform(0.3, 1.0) * np.sin(2 * np.pi * (freq * t + rng.uniform()))
    return amplitude * wave / 2


def _actor_rng(seed: int, actor: int) -> np.random.Generator:
    """The generator of actor `actor`'s identity: the same person in every clip it plays."""
    return np.random.default_rng(np.random.SeedSequence(int(seed), spawn_key=(1, int(actor))))


def plan_clip(seed: int, name: str, label: int, num_frames: int, actors: int | None = None,
              nuisance: float = 1.0) -> ClipPlan:
    """Draw every random choice of one clip.

    Args:
        seed: benchmark seed.
        name: clip name (video_name); with `seed` it fixes all randomness, so
            the same name gives the same person, motion and lighting whatever
            `label` is.
        label: true class, 0-based in DFEW order.
        num_frames: T >= 1.
        actors: None: a new person for every clip; N: the person is one of a
            pool of N actors (chosen by clip name), as real datasets cut many
            clips from the same films and people.
        nuisance: scales everything that makes the benchmark hard but is not
            the expression, in [0, 1]: the shares of subtle expressions,
            distractor expressions, talking and occluders, and the amplitude of
            head motion, lighting change, resting-face jitter and pixel noise,
            and how briefly the apex holds (up to 40% of the clip longer at 0).
            1 is the full benchmark; lower is easier. Mixed-expression (hard)
            clips and label noise are not affected; a clip keeps its person.

    Returns:
        A ClipPlan; `render_frames(plan, size)` draws it.
    """
    T = int(num_frames)
    r_id, r_expr, r_pose, r_light, r_occ, r_misc = _clip_rngs(seed, name, 6)
    if actors:
        r_id = _actor_rng(seed, zlib.crc32(name.encode("utf-8")) % int(actors))
    identity = _random_identity(r_id)
    n_cls = len(DFEW_CLASSES)

    # Target expression with an onset/apex/offset envelope; a fifth of them subtle.
    k = float(nuisance)
    # A short apex makes the key expression hard to find; less nuisance holds it longer.
    curve, apex_start, apex_end = _intensity_curve(r_expr, T, longer_apex=0.4 * (1 - k))
    peak = r_expr.uniform(0.2, 0.5) if r_expr.uniform() < 0.2 * k else r_expr.uniform(0.6, 1.0)
    other = lambda: int((label + r_expr.integers(1, n_cls)) % n_cls)  # noqa: E731
    mixed_with = other() if r_expr.uniform() < 0.15 else -1
    expression = PROTOTYPES[label].copy()
    if mixed_with >= 0:  # a second expression shown at the same time (hard)
        expression += r_expr.uniform(0.45, 0.75) * PROTOTYPES[mixed_with]
    actions = curve[:, None] * peak * expression[None, :]  # (T, A)

    # A short non-target expression away from the apex.
    distractor = -1
    if r_expr.uniform() < 0.35 * k and T >= 8:
        distractor = other()
        length = int(r_expr.integers(2, max(3, T // 6) + 1))
        free = [s for s in range(T - length + 1)
                if s + length <= apex_start - 1 or s >= apex_end + 2]
        s = int(free[r_expr.integers(len(free))]) if free else int(r_expr.integers(T - length + 1))
        bump = np.sin(np.pi * (np.arange(length) + 1) / (length + 1))
        actions[s:s + length] += (r_expr.uniform(0.45, 0.9) * bump)[:, None] * PROTOTYPES[distractor]

    # This person's resting face, talking and blinks.
    actions += k * r_misc.normal(0, 0.07, len(ACTIONS))
    if r_misc.uniform() < 0.4 * k:
        period = r_misc.uniform(3, 7)
        talk = 0.5 + 0.5 * np.sin(2 * np.pi * (np.arange(T) / period + r_misc.uniform()))
        actions[:, A["jaw_drop"]] += r_misc.uniform(0.05, 0.25) * talk
    for t in np.flatnonzero(r_misc.uniform(size=T) < 0.03):
        actions[t:t + 2, A["eye_open"]] = -1.1
    actions = np.clip(actions, -1.2, 1.5).astype(np.float32)

    # Gaze: a few fixations.
    gaze = np.zeros((T, 2), np.float32)
    t0 = 0
    while t0 < T:
        length = int(r_misc.integers(4, 20))
        gaze[t0:t0 + length] = r_misc.uniform(-1, 1, 2)
        t0 += length

    # Head motion: calm for most clips, lively for some.
    lively = r_pose.uniform() < 0.3
    amp = (2.0 if lively else 1.0) * k
    pose = np.stack([
        k * r_pose.normal(0, 0.025) + _smooth_wave(r_pose, T, 0.03 * amp),    # dx
        k * r_pose.normal(0, 0.025) + _smooth_wave(r_pose, T, 0.025 * amp),   # dy
        k * r_pose.normal(0, 4.0) + _smooth_wave(r_pose, T, 5.0 * amp),       # roll (degrees)
        1 + k * (r_pose.uniform(0.9, 1.1) - 1) + _smooth_wave(r_pose, T, 0.04 * amp),  # scale
        np.clip(k * r_pose.normal(0, 0.2) + _smooth_wave(r_pose, T, 0.3 * amp), -1, 1),  # yaw
    ], axis=1).astype(np.float32)  # (T, 5)

    # Lighting: overall gain, a moving directional gradient, a colour cast.
    gain = np.exp(k * (r_light.normal(0, 0.15) + _smooth_wave(r_light, T, 0.2)))
    if r_light.uniform() < 0.15 * k and T > 4:  # a flash or a dip
        s = int(r_light.integers(T - 2))
        gain[s:s + int(r_light.integers(1, 4))] *= r_light.choice([0.5, 1.6])
    light = np.stack([
        gain,
        k * (r_light.uniform(-0.35, 0.35) + _smooth_wave(r_light, T, 0.2)),
        r_light.uniform(0, 2 * np.pi) + _smooth_wave(r_light, T, 1.0),
    ], axis=1).astype(np.float32)  # (T, 3)
    colour = tuple(np.exp(k * r_light.normal(0, 0.08, 3)))
    noise_sigma = k * float(r_light.uniform(1.0, 6.0))

    # Occluder crossing part of the face for part of the clip.
    occluder = None
    if r_occ.uniform() < 0.25 * k and T >= 4:
        start = int(r_occ.integers(0, T - 1))
        stop = int(min(T, start + r_occ.integers(max(2, T // 5), max(3, T // 2) + 1)))
        side = r_occ.choice([-1.0, 1.0])
        occluder = {
            "kind": "hand" if r_occ.uniform() < 0.5 else "bar",
            "colour": tuple(_random_identity(r_occ).skin) if r_occ.uniform() < 0.7
            else tuple(r_occ.uniform(20, 230, 3)),
            "size": float(r_occ.uniform(0.09, 0.16)),
            "angle": float(r_occ.uniform(0, 180)),
            "from": (float(side * 0.55), float(r_occ.uniform(-0.2, 0.35))),
            "to": (float(side * r_occ.uniform(-0.15, 0.25)), float(r_occ.uniform(-0.2, 0.35))),
            "frames": (start, stop),
        }

    return ClipPlan(
        name=name, label=int(label), num_frames=T, identity=identity, actions=actions,
        gaze=gaze, pose=pose, light=light, colour=colour, noise_sigma=noise_sigma,
        occluder=occluder, apex_start=int(apex_start), apex_end=int(apex_end),
        peak=float(peak), mixed_with=mixed_with, distractor=distractor,
    )


# --------------------------------------------------------------------------- drawing


class _Canvas:
    """A square BGR image addressed in canvas units (centre (0, 0), side 1)."""

    def __init__(self, image: np.ndarray):
        self.image = image
        self.n = image.shape[0]

    def fx(self, points) -> np.ndarray:
        """(N, 2) canvas units -> int32 fixed-point pixels for cv2 with shift=_SHIFT."""
        p = (np.asarray(points, np.float64) + 0.5) * (self.n * (1 << _SHIFT)) + 0.5
        return p.astype(np.int32).reshape(-1, 1, 2)

    def length(self, v: float) -> int:
        return max(1, int(round(v * self.n)))

    def poly(self, points, colour):
        cv2.fillPoly(self.image, [self.fx(points)], colour, _AA, _SHIFT)

    def line(self, points, colour, width):
        cv2.polylines(self.image, [self.fx(points)], False, colour, self.length(width), _AA, _SHIFT)

    def ellipse(self, centre, axes, colour, angle=0.0, start=0, end=360, thickness=-1):
        scale = self.n * (1 << _SHIFT)
        c = (int((centre[0] + 0.5) * scale + 0.5), int((centre[1] + 0.5) * scale + 0.5))
        ax = (max(1, int(axes[0] * scale + 0.5)), max(1, int(axes[1] * scale + 0.5)))
        if thickness > 0:
            thickness = self.length(thickness)
        cv2.ellipse(self.image, c, ax, angle, start, end, colour, thickness, _AA, _SHIFT)


_BEZIER_BASIS: dict = {}


def _bezier(p0, c, p1, n: int = 12) -> np.ndarray:
    """Quadratic Bezier through p0 and p1 with control c, (n, 2)."""
    if n not in _BEZIER_BASIS:  # (n, 3) Bernstein weights, cached: drawing is per frame
        t = np.linspace(0, 1, n)[:, None]
        _BEZIER_BASIS[n] = np.concatenate([(1 - t) ** 2, 2 * (1 - t) * t, t ** 2], axis=1)
    return _BEZIER_BASIS[n] @ np.array([p0, c, p1], np.float64)


def _curve_through(p0, mid_y: float, p1, n: int = 12) -> np.ndarray:
    """Quadratic curve from p0 to p1 whose middle point is at height mid_y."""
    c = ((p0[0] + p1[0]) / 2, 2 * mid_y - (p0[1] + p1[1]) / 2)
    return _bezier(p0, c, p1, n)


def _shade(colour, k: float) -> tuple:
    """Colour darkened by share k in [0, 1]."""
    return tuple(float(v) * (1 - k) for v in colour)


def _background(ident: Identity, n: int) -> np.ndarray:
    rng = np.random.default_rng(ident.background)
    base = rng.uniform(40, 200, 3)
    ramp = np.linspace(-1, 1, n)[None, :, None] * rng.uniform(-30, 30, 3)
    image = np.broadcast_to(base + ramp, (n, n, 3)).astype(np.uint8).copy()
    for _ in range(int(rng.integers(3, 7))):
        colour = tuple(float(v) for v in rng.uniform(20, 235, 3))
        x, y = rng.integers(0, n, 2)
        w, h = rng.integers(n // 8, n // 2, 2)
        if rng.uniform() < 0.5:
            cv2.rectangle(image, (int(x), int(y)), (int(x + w), int(y + h)), colour, -1, _AA)
        else:
            cv2.ellipse(image, (int(x), int(y)), (int(w // 2), int(h // 2)), 0, 0, 360, colour, -1, _AA)
    return cv2.GaussianBlur(image, (0, 0), n / 40)


_CIRCLE = np.stack([np.sin(np.linspace(0, 2 * np.pi, 48, endpoint=False)),
                    np.cos(np.linspace(0, 2 * np.pi, 48, endpoint=False))])  # (2, 48)


def _draw_head(cv: _Canvas, ident: Identity, act: np.ndarray, yaw: float):
    a, b = ident.face_a, ident.face_b
    jaw = max(0.0, float(act[A["jaw_drop"]]))
    skin = ident.skin
    # Hair behind the head (long style) and ears.
    if ident.hair_style == 1:
        cv.ellipse((0, 0.02), (a * 1.22, b * 1.12), ident.hair)
    ear_y = ident.eye_y + 0.05
    for side in (-1, 1):
        cv.ellipse((side * a * 0.98 - 0.02 * yaw, ear_y), (0.035, 0.06), _shade(skin, 0.12))
    # Face outline: an ellipse whose lower half narrows towards the chin; the
    # chin drops with the jaw.
    x, y = a * _CIRCLE[0], -b * _CIRCLE[1]
    lower = y > 0
    x[lower] *= 1 - ident.jaw_taper * (y[lower] / b) ** 2
    y[lower] *= 1 + 0.12 * jaw
    cv.poly(np.stack([x, y + 0.02], 1), skin)
    # Hair on top.
    if ident.hair_style != 2:
        cv.ellipse((0, 0.02 - b * 0.55), (a * 1.04, b * 0.5), ident.hair, start=180, end=360)
        cv.ellipse((0, 0.02 - b * 0.5), (a * 1.02, b * 0.22), ident.hair, start=180, end=360)
    else:
        cv.ellipse((0, 0.02 - b * 0.6), (a * 0.98, b * 0.42), _shade(ident.hair, -0.2),
                   start=180, end=360)


def _draw_eye(cv: _Canvas, ident: Identity, side: int, act: np.ndarray, gaze, shift: float):
    eo = float(act[A["eye_open"]])
    cx, cy = side * ident.eye_dx + shift, ident.eye_y
    w = ident.eye_w
    up = ident.eye_h * min(max(1 + 0.9 * eo, 0.05), 2.4)
    low = ident.eye_h * 0.7 * min(max(1 + 0.6 * eo, 0.15), 1.8)
    inner, outer = (cx - side * w, cy), (cx + side * w, cy - 0.004)
    upper_lid = _curve_through(inner, cy - up, outer)
    lower_lid = _curve_through(outer, cy + low, inner)
    # Sclera and iris, then skin drawn back over whatever lies outside the
    # lids, so wide-open eyes show white around the iris and squints hide it.
    cv.poly(np.concatenate([upper_lid, lower_lid]), (235, 238, 240))
    iris_c = (cx + gaze[0] * w * 0.35, cy + gaze[1] * ident.eye_h * 0.25)
    r = ident.eye_h * 1.1
    cv.ellipse(iris_c, (r, r), ident.iris)
    cv.ellipse(iris_c, (r * 0.45, r * 0.45), (15, 15, 15))
    reach = r + ident.eye_h * 0.25 + 0.01  # beyond the iris's furthest point
    cv.poly(np.concatenate([upper_lid, [(outer[0], cy - reach), (inner[0], cy - reach)]]), ident.skin)
    cv.poly(np.concatenate([lower_lid, [(inner[0], cy + reach), (outer[0], cy + reach)]]), ident.skin)
    lid = _shade(ident.skin, 0.55)
    cv.line(upper_lid, lid, 0.006)
    cv.line(lower_lid, _shade(ident.skin, 0.3), 0.0025)


_BROW_TAPER = np.linspace(1.2, 0.5, 10)[:, None]  # thick inner end, thin outer end


def _draw_brows(cv: _Canvas, ident: Identity, act: np.ndarray, shift: float):
    raise_, lower, inner = (float(act[A[k]]) for k in ("brow_raise", "brow_lower", "brow_inner"))
    base = ident.eye_y - ident.brow_gap - 0.045 * raise_ + 0.022 * lower
    for side in (-1, 1):
        xi = side * (ident.eye_dx - ident.eye_w * 0.95 - 0.012 * max(lower, 0)) + shift
        xo = side * (ident.eye_dx + ident.eye_w * 1.3) + shift
        yi = base + 0.02 * lower - 0.045 * inner
        yo = base + 0.004 - 0.004 * inner
        mid_y = (yi + yo) / 2 - ident.brow_arch - 0.012 * max(inner, 0)
        centre = _curve_through((xi, yi), mid_y, (xo, yo), 10)
        half = ident.brow_t / 2 * _BROW_TAPER
        outline = np.concatenate([centre - [0, 1] * half, (centre + [0, 1] * half)[::-1]])
        cv.poly(outline, ident.hair)
    # Forehead lines when brows rise, frown lines between lowered brows.
    crease = max(raise_, 0.5 * inner, 0)
    if crease > 0.15:
        colour = _shade(ident.skin, 0.35 * min(crease, 1.2))
        for k in range(2):
            y = base - 0.045 - 0.025 * k
            cv.line(_curve_through((shift - 0.09, y), y - 0.01, (shift + 0.09, y)), colour, 0.004)
    if lower > 0.2:
        colour = _shade(ident.skin, 0.4 * min(lower, 1.2))
        for side in (-1, 1):
            x = shift + side * 0.015
            cv.line([(x, base + 0.005), (x + side * 0.004, base + 0.04)], colour, 0.004)


def _draw_nose(cv: _Canvas, ident: Identity, act: np.ndarray, shift: float):
    wrinkle = max(0.0, float(act[A["nose_wrinkle"]]))
    tip_y = ident.eye_y + ident.nose_len - 0.01 * wrinkle
    w = ident.nose_w * (1 + 0.25 * wrinkle)
    dark = _shade(ident.skin, 0.3)
    cv.line([(shift + 0.012, ident.eye_y + 0.02), (shift + w * 0.6, tip_y - 0.01)], dark, 0.004)
    for side in (-1, 1):
        cv.ellipse((shift + side * w * 0.45, tip_y), (w * 0.28, w * 0.14), _shade(ident.skin, 0.5))
    cv.line(_curve_through((shift - w, tip_y - 0.01), tip_y + 0.012, (shift + w, tip_y - 0.01)),
            dark, 0.004)
    if wrinkle > 0.1:  # wrinkles across the bridge
        colour = _shade(ident.skin, 0.45 * min(wrinkle, 1.2))
        for k in range(3):
            y = ident.eye_y + 0.03 + 0.018 * k
            cv.line([(shift - 0.022, y + 0.006), (shift, y), (shift + 0.022, y + 0.006)], colour, 0.0035)


def _draw_mouth(cv: _Canvas, ident: Identity, act: np.ndarray, shift: float):
    corner, jaw, press, stretch, wrinkle = (
        float(act[A[k]]) for k in ("mouth_corner", "jaw_drop", "lip_press", "lip_stretch", "nose_wrinkle")
    )
    jaw, press, wrinkle = max(jaw, 0.0), max(press, 0.0), max(wrinkle, 0.0)
    tip_y = ident.eye_y + ident.nose_len
    my = tip_y + ident.mouth_gap + 0.02 * jaw
    hw = ident.mouth_w * (1 + 0.25 * stretch + 0.12 * max(corner, 0) - 0.2 * press
                          - 0.2 * jaw * (1 - max(stretch, 0)))
    opening = 0.09 * jaw
    corner_y = my - 0.05 * corner + 0.01 * jaw
    left, right = (shift - hw, corner_y), (shift + hw, corner_y)
    upper_in = my - 0.25 * opening - 0.02 * wrinkle
    lower_in = my + 0.75 * opening
    t_up = ident.lip_t * (1 - 0.65 * press)
    t_low = ident.lip_t * 1.3 * (1 - 0.65 * press)
    c_upper_in = _curve_through(left, upper_in, right)
    c_lower_in = _curve_through(left, lower_in, right)
    c_upper_out = _curve_through(left, upper_in - t_up, right)
    c_lower_out = _curve_through(left, lower_in + t_low, right)
    # Nasolabial folds deepen with a smile or a sneer.
    fold = max(corner, 0) * 0.8 + wrinkle * 0.6
    if fold > 0.1:
        colour = _shade(ident.skin, 0.35 * min(fold, 1.2))
        for side in (-1, 1):
            top = (shift + side * (ident.nose_w + 0.012), tip_y - 0.005)
            end = (shift + side * (hw + 0.012), corner_y + 0.012)
            ctrl = (shift + side * (hw + 0.03), (top[1] + end[1]) / 2)
            cv.line(_bezier(top, ctrl, end, 8), colour, 0.004)
    if upper_in - lower_in < -0.004:  # open: cavity and upper teeth
        cv.poly(np.concatenate([c_upper_in, c_lower_in[::-1]]), (35, 30, 70))
        teeth = c_upper_in + [0, min(0.4 * (lower_in - upper_in), 0.018)]
        cv.poly(np.concatenate([c_upper_in, teeth[::-1]]), (215, 225, 230))
    cv.poly(np.concatenate([c_upper_out, c_upper_in[::-1]]), ident.lip)
    cv.poly(np.concatenate([c_lower_in, c_lower_out[::-1]]), _shade(ident.lip, -0.08))
    cv.line(c_upper_in, _shade(ident.lip, 0.5), 0.004)


def _draw_occluder(cv: _Canvas, occ: dict, t: int):
    start, stop = occ["frames"]
    if not start <= t < stop:
        return
    k = (t - start) / max(stop - start - 1, 1)
    centre = (1 - k) * np.array(occ["from"]) + k * np.array(occ["to"])
    s, colour = occ["size"], occ["colour"]
    if occ["kind"] == "bar":
        rect = cv2.boxPoints(((float(centre[0]), float(centre[1])), (s * 0.6, 1.2), occ["angle"]))
        cv.poly(rect, colour)
        return
    # A hand: palm and four fingers pointing away from the wrist.
    angle = np.deg2rad(occ["angle"])
    direction = np.array([np.cos(angle), np.sin(angle)])
    normal = np.array([-direction[1], direction[0]])
    cv.ellipse(centre, (s * 0.75, s * 0.6), colour, angle=occ["angle"])
    for j in range(4):
        base = centre + direction * s * 0.65 + normal * s * (j - 1.5) * 0.33
        cv.ellipse(base + direction * s * 0.4, (s * 0.45, s * 0.12), _shade(colour, 0.05),
                   angle=occ["angle"])
    cv.line([centre - direction * s * 0.6, centre - direction * s * 1.6], colour, s * 0.9)


def render_frames(plan: ClipPlan, size: int = 112) -> np.ndarray:
    """Draw a planned clip.

    Args:
        plan: from `plan_clip`.
        size: output side in pixels (frames are drawn at twice this and downsampled).

    Returns:
        uint8 array (T, size, size, 3), BGR (OpenCV order, as written to JPEG).
    """
    n = 2 * int(size)
    background = _background(plan.identity, n)
    ident = plan.identity
    frames = np.empty((plan.num_frames, size, size, 3), np.uint8)
    # Pixel grid in [-1, 1] for the lighting gradient.
    grid = np.linspace(-1, 1, size, dtype=np.float32)
    gx, gy = np.meshgrid(grid, grid)
    # A few noise fields, cut at random offsets per frame (cheaper than fresh noise).
    noise_rng = np.random.default_rng(ident.background + 1)
    noise = noise_rng.standard_normal((3, size + 16, size + 16, 3), dtype=np.float32)
    noise *= plan.noise_sigma
    offsets = noise_rng.integers(0, [3, 17, 17], (plan.num_frames, 3))
    for t in range(plan.num_frames):
        cv = _Canvas(background.copy())
        act = plan.actions[t]
        dx, dy, roll, scale, yaw = (float(v) for v in plan.pose[t])
        shift = 0.035 * yaw  # features slide sideways as the head turns
        _draw_head(cv, ident, act, yaw)
        for side in (-1, 1):
            _draw_eye(cv, ident, side, act, plan.gaze[t], shift)
        _draw_brows(cv, ident, act, shift)
        _draw_nose(cv, ident, act, shift)
        _draw_mouth(cv, ident, act, shift)
        if plan.occluder is not None:
            _draw_occluder(cv, plan.occluder, t)
        # Downsample the 2x drawing (anti-aliasing), then move the head with
        # one similarity transform about the image centre.
        small = cv2.resize(cv.image, (size, size), interpolation=cv2.INTER_AREA)
        m = cv2.getRotationMatrix2D((size / 2, size / 2), roll, scale)
        m[:, 2] += (dx * size, dy * size)
        small = cv2.warpAffine(small, m, (size, size), flags=cv2.INTER_LINEAR,
                               borderMode=cv2.BORDER_REFLECT)
        # Lighting: gain x colour cast x directional gradient, plus sensor noise.
        gain, amp, angle = (float(v) for v in plan.light[t])
        shade = gain * (1 + amp * (np.cos(angle) * gx + np.sin(angle) * gy))  # (H, W)
        shade3 = cv2.merge([shade * np.float32(c) for c in plan.colour])  # (H, W, 3)
        lit = cv2.multiply(small, shade3, dtype=cv2.CV_32F)
        k, oy, ox = offsets[t]
        lit = cv2.add(lit, noise[k, oy:oy + size, ox:ox + size])
        frames[t] = cv2.convertScaleAbs(lit)  # saturates to [0, 255]
    return frames


# --------------------------------------------------------------------------- benchmark layout


@dataclass(frozen=True)
class _Clip:
    """One clip of the benchmark, before rendering."""

    name: str          # video_name as written in the split CSVs
    folder: str        # frame folder relative to the output root
    label: int         # true class, 0-based DFEW order
    given: int         # label in the train CSVs (== label unless noisy)
    num_frames: int
    test_fold: int     # DFEW: the fold whose test list holds the clip (1..5); FERV39K: 0
    split: str         # FERV39K: "train" or "test"; DFEW: ""


def _stratified_counts(total: int, shares: np.ndarray) -> np.ndarray:
    """Integer counts summing to `total`, proportional to `shares` (largest remainder),
    at least one per class when total allows."""
    raw = shares / shares.sum() * total
    counts = np.floor(raw).astype(int)
    if total >= len(shares):
        counts = np.maximum(counts, 1)
    while counts.sum() > total:
        counts[np.argmax(counts)] -= 1
    order = np.argsort(-(raw - np.floor(raw)), kind="stable")
    for i in order[: total - counts.sum()]:
        counts[i] += 1
    return counts


def _small_frame_counts(rng: np.random.Generator, n: int) -> np.ndarray:
    # Mostly 20..80 frames (mean about 44), a few shorter than the 16 a model takes.
    counts = np.round(rng.triangular(20, 32, 80, n)).astype(int)
    short = rng.uniform(size=n) < 0.04
    counts[short] = rng.integers(8, 16, short.sum())
    return counts


def _small_dfew(rng: np.random.Generator, clips: int) -> list:
    counts = _stratified_counts(clips, CLASS_SHARES)
    labels = rng.permutation(np.repeat(np.arange(len(DFEW_CLASSES)), counts))
    frames = _small_frame_counts(rng, clips)
    # Folds: each class's clips dealt round-robin into the 5 test folds from a
    # random start, so folds are class-stratified and their sizes differ by <= 1.
    folds = np.zeros(clips, int)
    start = 0
    for c in range(len(DFEW_CLASSES)):
        members = rng.permutation(np.flatnonzero(labels == c))
        folds[members] = (start + np.arange(len(members))) % 5 + 1
        start = (start + len(members)) % 5
    return [_Clip(str(i + 1), f"Clip/clip_224x224/{i + 1:05d}", int(labels[i]), int(labels[i]),
                  int(frames[i]), int(folds[i]), "") for i in range(clips)]


def _small_ferv39k(rng: np.random.Generator, clips: int) -> list:
    counts = _stratified_counts(clips, CLASS_SHARES)
    labels = rng.permutation(np.repeat(np.arange(len(DFEW_CLASSES)), counts))
    frames = _small_frame_counts(rng, clips)
    scenes = rng.integers(0, len(FERV_SCENES), clips)
    split = np.array(["train"] * clips, dtype=object)
    for c in range(len(DFEW_CLASSES)):  # 20% of each class for testing
        members = rng.permutation(np.flatnonzero(labels == c))
        split[members[: int(round(0.2 * len(members)))]] = "test"
    # Names (Scene/Emotion/NNNN) are given after the noise is drawn, because a
    # noisy clip sits in its given emotion's folder, as a mislabelled one would.
    return [_Clip("", "", int(labels[i]), int(labels[i]), int(frames[i]), 0, f"{split[i]}:{scenes[i]}")
            for i in range(clips)]


def _name_ferv39k(clips: list) -> list:
    named, counter = [], {}
    for clip in clips:
        split, scene = clip.split.split(":")
        key = (FERV_SCENES[int(scene)], DFEW_CLASSES[clip.given])
        index = counter.get(key, 0)
        counter[key] = index + 1
        name = f"{key[0]}/{key[1]}/{index:04d}"
        named.append(replace(clip, name=name, folder=f"2_ClipsforFaceCrop/{name}", split=split))
    return named


def _read_dfew_lists() -> list:
    base = SPLITS_DIR / "dfew"
    frame_counts = {row["video_name"]: int(row["num_frames"])
                    for row in csv.DictReader(open(base / "frame_counts.csv", newline=""))}
    clips = []
    for fold in range(1, 6):
        path = base / "EmoLabel_DataSplit" / "test(single-labeled)" / f"set_{fold}.csv"
        for row in csv.DictReader(open(path, newline="")):
            folder = row["video_name"].zfill(5)
            label = int(row["label"]) - 1
            clips.append(_Clip(row["video_name"], f"Clip/clip_224x224/{folder}", label, label,
                               frame_counts[folder], fold, ""))
    return clips


def _read_ferv39k_lists() -> list:
    base = SPLITS_DIR / "ferv39k"
    frame_counts = {row["clip"]: int(row["num_frames"])
                    for row in csv.DictReader(open(base / "frame_counts.csv", newline=""))}
    clips = []
    for split in ("train", "test"):
        for line in open(base / "4_setups" / "All_scenes" / f"{split}_All.csv"):
            name, emotion = line.split()
            label = FERV39K_TO_DFEW[emotion]
            clips.append(_Clip(name, f"2_ClipsforFaceCrop/{name}", label, label,
                               frame_counts[name], 0, split))
    return clips


def _subset(rng: np.random.Generator, clips: list, n: int) -> list:
    """A class-stratified random subset of n clips, in the lists' order."""
    labels = np.array([c.label for c in clips])
    counts = _stratified_counts(n, np.bincount(labels, minlength=len(DFEW_CLASSES)).astype(float))
    keep = np.concatenate([rng.choice(np.flatnonzero(labels == c), k, replace=False)
                           for c, k in enumerate(counts) if k > 0])
    return [clips[i] for i in sorted(keep)]


def _add_noise(rng: np.random.Generator, clips: list, noise: float, layout: str,
               noise_type: str = "symmetric") -> list:
    """Give round(noise * train clips) clips a different train label.

    The clips to flip are the same for both noise types; "symmetric" draws each
    one's new label uniformly from the other classes, "pair" takes its
    `PAIR_FLIPS` class. DFEW: every clip is a training clip in 4 of the 5 folds
    and carries the same given label in all of them, so the noisy share of each
    fold's train list is about `noise`. FERV39K: only train clips are flipped.
    """
    candidates = [i for i, c in enumerate(clips) if layout == "dfew" or c.split.startswith("train")]
    flipped = rng.choice(candidates, int(round(noise * len(candidates))), replace=False)
    clips = list(clips)
    n_cls = len(DFEW_CLASSES)
    for i in sorted(flipped):
        if noise_type == "pair":
            given = int(_PAIR_INDEX[clips[i].label])
        else:
            given = int((clips[i].label + rng.integers(1, n_cls)) % n_cls)
        clips[i] = replace(clips[i], given=given)
    return clips


def _prepare_out(out: Path) -> None:
    """Make `out` ready: empty, or our own earlier output (marked by synth.json)."""
    if out.exists() and not out.is_dir():
        raise RdferError(f"{out} exists and is not a folder; choose another --out")
    if out.is_dir() and any(out.iterdir()):
        if not (out / "synth.json").is_file():
            raise RdferError(f"{out} is not empty and holds no synthetic benchmark (synth.json); "
                             "choose an empty or new folder for --out")
        for name in ("Clip", "EmoLabel_DataSplit", "2_ClipsforFaceCrop", "4_setups"):
            shutil.rmtree(out / name, ignore_errors=True)
        (out / "ground_truth.csv").unlink(missing_ok=True)
    out.mkdir(parents=True, exist_ok=True)


def _render_task(task: tuple) -> tuple:
    """Worker: render one clip into its folder; returns (name, apex_start, apex_end, is_hard)."""
    seed, out, clip, size, actors, nuisance = task
    plan = plan_clip(seed, clip.name, clip.label, clip.num_frames, actors, nuisance)
    folder = Path(out) / clip.folder
    folder.mkdir(parents=True, exist_ok=True)
    for t, frame in enumerate(render_frames(plan, size)):
        cv2.imwrite(str(folder / f"{t + 1:05d}.jpg"), frame, [cv2.IMWRITE_JPEG_QUALITY, 90])
    return clip.name, plan.apex_start, plan.apex_end, int(plan.is_hard)


def _init_worker() -> None:
    cv2.setNumThreads(1)  # one clip per process; OpenCV's own threads would only contend


def _default_workers() -> int:
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    return max(1, min(8, cores or 1))


def _render_all(tasks: list, workers: int, progress: bool) -> dict:
    from tqdm import tqdm

    bar = tqdm(total=len(tasks), desc="synth clips", unit="clip", disable=not progress)
    results = {}
    if workers <= 1:
        _init_worker()
        for task in tasks:
            name, *rest = _render_task(task)
            results[name] = rest
            bar.update()
    else:
        # Not fork: a child forked after this process ran a parallel OpenCV call
        # hangs in cv2.setNumThreads (OpenCV's pool does not survive fork), and
        # rdfer's callers (pytest, `rdfer predict`) may well have. The forkserver
        # imports this module once; each worker is a fork of that clean process.
        methods = multiprocessing.get_all_start_methods()
        context = multiprocessing.get_context("forkserver" if "forkserver" in methods else "spawn")
        if "forkserver" in methods:
            context.set_forkserver_preload([__name__])
        with context.Pool(workers, initializer=_init_worker) as pool:
            for name, *rest in pool.imap_unordered(_render_task, tasks, chunksize=4):
                results[name] = rest
                bar.update()
    bar.close()
    return results


def _write_lists(out: Path, clips: list, layout: str) -> None:
    if layout == "dfew":
        base = out / "EmoLabel_DataSplit"
        ordered = sorted(clips, key=lambda c: int(c.name))
        for fold in range(1, 6):
            for split in ("train", "test"):
                folder = base / f"{split}(single-labeled)"
                folder.mkdir(parents=True, exist_ok=True)
                with open(folder / f"set_{fold}.csv", "w", newline="") as f:
                    f.write("video_name,label\n")
                    for c in ordered:
                        if (c.test_fold == fold) == (split == "test"):
                            # Test lists keep the true label; train lists the given one.
                            label = c.label if split == "test" else c.given
                            f.write(f"{c.name},{label + 1}\n")
    else:
        base = out / "4_setups" / "All_scenes"
        base.mkdir(parents=True, exist_ok=True)
        for split in ("train", "test"):
            with open(base / f"{split}_All.csv", "w", newline="") as f:
                for c in clips:
                    if c.split == split:
                        f.write(f"{c.name} {DFEW_CLASSES[c.given]}\n")


def write_synthetic(out, layout: str = "dfew", clips: int | None = None, noise: float = 0.0,
                    noise_type: str = "symmetric", seed: int = 0, full_scale: bool = False, size: int = 112,
                    progress: bool = True, workers: int | None = None, actors: int | None = None,
                    nuisance: float = 1.0) -> Path:
    """Write the synthetic DFER benchmark.

    Args:
        out: output folder; must be empty, new, or an earlier synthetic
            benchmark (marked by synth.json), which is replaced.
        layout: "dfew" (5 folds) or "ferv39k" (train/test).
        clips: number of clips. Default 1000 for the small benchmark; with
            `full_scale`, a class-stratified seeded subset of the real lists
            (default: all of them).
        noise: share of training labels flipped to another class, in [0, 1).
        noise_type: "symmetric" (the other class drawn uniformly) or "pair"
            (the most confusable class, `PAIR_FLIPS`: Fear<->Surprise,
            Angry<->Disgust, Sad<->Neutral, Happy->Neutral).
        seed: fixes every random choice; the same arguments give the same bytes.
        full_scale: reproduce the real dataset's clip ids, fold/split
            structure, labels (as true labels) and per-clip frame counts from
            the lists shipped in `rdfer/splits/`.
        size: frame side in pixels (real DFEW frames are 224).
        progress: show a tqdm bar on stderr.
        workers: rendering processes (default: usable cores, at most 8). The
            output does not depend on it.
        actors: draw each clip's person from a pool of this many actors
            (default: a new person per clip, the hardest setting).
        nuisance: in [0, 1], how much of what is not the expression (subtle
            and distractor expressions, head motion, lighting, occluders,
            pixel noise) the clips carry; 1 (default) is the full benchmark.
            See `plan_clip`.

    Returns:
        The output folder as a Path.
    """
    out = Path(out)
    if layout not in ("dfew", "ferv39k"):
        raise RdferError(f"unknown synthetic layout {layout!r}; use 'dfew' or 'ferv39k'")
    if not 0.0 <= noise < 1.0:
        raise RdferError(f"--noise {noise} is outside [0, 1): give the share of train labels to flip")
    if noise_type not in NOISE_TYPES:
        raise RdferError(f"--noise-type {noise_type!r} is unknown; use {' or '.join(NOISE_TYPES)}")
    if clips is not None and clips < len(DFEW_CLASSES):
        raise RdferError(f"--clips {clips} is too few: give at least {len(DFEW_CLASSES)} "
                         "(one per class)")
    if size < 16:
        raise RdferError(f"--size {size} is too small: give at least 16 pixels")
    if actors is not None and actors < 1:
        raise RdferError(f"--actors {actors}: give at least 1 (or leave it out for a new person per clip)")
    if not 0.0 <= nuisance <= 1.0:
        raise RdferError(f"--nuisance {nuisance} is outside [0, 1]: 1 is the full benchmark, lower is easier")
    rng = np.random.default_rng(np.random.SeedSequence(int(seed), spawn_key=(0,)))
    if full_scale:
        table = _read_dfew_lists() if layout == "dfew" else _read_ferv39k_lists()
        if clips is not None and clips < len(table):
            table = _subset(rng, table, clips)
        table = _add_noise(rng, table, noise, layout, noise_type)
    elif layout == "dfew":
        table = _add_noise(rng, _small_dfew(rng, clips or 1000), noise, layout, noise_type)
    else:
        table = _name_ferv39k(_add_noise(rng, _small_ferv39k(rng, clips or 1000), noise, layout, noise_type))

    _prepare_out(out)
    options = dict(layout=layout, clips=len(table), noise=noise, noise_type=noise_type, seed=seed,
                   full_scale=full_scale, size=size, actors=actors, nuisance=nuisance)
    (out / "synth.json").write_text(json.dumps(options, indent=1) + "\n")
    tasks = [(int(seed), str(out), clip, int(size), actors, float(nuisance)) for clip in table]
    rendered = _render_all(tasks, workers or _default_workers(), progress)
    _write_lists(out, table, layout)
    with open(out / "ground_truth.csv", "w", newline="") as f:
        f.write("video_name,true_label,given_label,is_noisy,is_hard,apex_start,apex_end\n")
        for c in table:
            apex_start, apex_end, hard = rendered[c.name]
            f.write(f"{c.name},{c.label + 1},{c.given + 1},{int(c.given != c.label)},{hard},"
                    f"{apex_start},{apex_end}\n")
    return out


def read_ground_truth(out) -> list:
    """Rows of DIR/ground_truth.csv as dicts with int fields (labels 1-based)."""
    path = Path(out) / "ground_truth.csv"
    if not path.is_file():
        raise RdferError(f"{path} not found: run `rdfer synth --out {out}` first")
    rows = []
    for row in csv.DictReader(open(path, newline="")):
        rows.append({k: (v if k == "video_name" else int(v)) for k, v in row.items()})
    return rows


def describe_synthetic(out) -> str:
    """A short human summary of a synthetic benchmark folder: clips per split
    and class, noisy and hard counts, frame size and frame counts."""
    out = Path(out)
    rows = read_ground_truth(out)
    if not (out / "synth.json").is_file():
        raise RdferError(f"{out / 'synth.json'} not found: {out} is not a complete synthetic "
                         f"benchmark; run `rdfer synth --out {out}` again")
    options = json.loads((out / "synth.json").read_text())
    layout = options["layout"]
    n_cls = len(DFEW_CLASSES)
    true = np.array([r["true_label"] - 1 for r in rows])
    noisy = np.array([r["is_noisy"] for r in rows], bool)
    hard = np.array([r["is_hard"] for r in rows], bool)
    lines = [f"Synthetic DFER benchmark in {out} ({layout} layout, seed {options['seed']}, "
             f"{'full scale' if options['full_scale'] else 'small'}): {len(rows)} clips"]
    width = max(len(c) for c in DFEW_CLASSES)
    header = f"  {'split':<20}" + "".join(f"{c[:width]:>{width + 1}}" for c in DFEW_CLASSES) + "   total"

    def count_line(title, labels):
        counts = np.bincount(labels, minlength=n_cls)
        return f"  {title:<20}" + "".join(f"{k:>{width + 1}}" for k in counts) + f"{len(labels):>8}"

    lines += ["Clips per class (true labels):", header, count_line("all", true)]
    if layout == "dfew":
        csv_dir = out / "EmoLabel_DataSplit"
        for split in ("train", "test"):
            path = csv_dir / f"{split}(single-labeled)" / "set_1.csv"
            labels = np.array([int(r["label"]) - 1 for r in csv.DictReader(open(path, newline=""))], int)
            lines.append(count_line(f"fold 1 {split}" + (" (given)" if split == "train" else ""), labels))
        n_train = len(rows) - sum(1 for _ in csv.DictReader(open(
            csv_dir / "test(single-labeled)" / "set_1.csv", newline="")))
        lines.append("  5 folds; each clip is in one test list and in the other four train lists")
        noisy_desc = (f"{noisy.sum()} clips ({noisy.mean():.1%}) carry a wrong label in every "
                      f"train list they are in (fold 1: {n_train} train clips)")
    else:
        base = out / "4_setups" / "All_scenes"
        for split in ("train", "test"):
            labels = np.array([FERV39K_TO_DFEW[line.split()[1]] for line in open(base / f"{split}_All.csv")],
                              int)
            lines.append(count_line(f"{split} (given)", labels))
        n_train = sum(1 for _ in open(base / "train_All.csv"))
        noisy_desc = f"{noisy.sum()} of {n_train} train clips ({noisy.sum() / max(n_train, 1):.1%})"
    noise_type = options.get("noise_type", "symmetric")  # benchmarks written before pair noise
    if noise_type == "pair":
        given = np.array([r["given_label"] - 1 for r in rows])
        pairs, counts = np.unique(np.stack([true[noisy], given[noisy]], 1), axis=0, return_counts=True)
        flips = ", ".join(f"{DFEW_CLASSES[a]}->{DFEW_CLASSES[b]} {k}" for (a, b), k in zip(pairs, counts))
        kind = f"pair noise, each to its most confusable class: {flips or 'none'}"
    else:
        kind = "symmetric noise, each to a uniformly drawn other class"
    lines.append(f"Noisy labels ({kind}): {noisy_desc}; test labels are clean")
    lines.append(f"Hard clips (mixed expressions or subtle): {hard.sum()} ({hard.mean():.1%})")
    actors, nuisance = options.get("actors"), options.get("nuisance", 1.0)
    lines.append(f"People: {f'a pool of {actors} actors' if actors else 'a new person per clip'}; "
                 f"nuisance {nuisance:g} (1 = the full benchmark, lower is easier)")
    frames = []
    first = None
    for r in rows:
        folder = _folder_of(out, layout, r["video_name"])
        names = [e.name for e in os.scandir(folder) if e.name.endswith(".jpg")] if folder.is_dir() else []
        frames.append(len(names))
        if first is None and names:
            first = folder / min(names)
    frames = np.array(frames)
    shape = cv2.imread(str(first)).shape if first is not None else (0, 0)
    lines.append(f"Frames: {shape[1]}x{shape[0]} JPEG, {frames.sum()} in all, per clip "
                 f"min {frames.min()} / median {int(np.median(frames))} / max {frames.max()}, "
                 f"{int((frames < 16).sum())} clips shorter than 16")
    lines.append(f"Ground truth: {out / 'ground_truth.csv'}")
    return "\n".join(lines)


def _folder_of(out: Path, layout: str, name: str) -> Path:
    if layout == "dfew":
        return out / "Clip" / "clip_224x224" / name.zfill(5)
    return out / "2_ClipsforFaceCrop" / name
