"""Clip planning: every random choice of one clip (`plan_clip` -> `ClipPlan`), drawn from
generators fixed by (seed, clip name) alone.
"""

from __future__ import annotations

import zlib
from dataclasses import dataclass

import numpy as np

from rdfer.labels import DFEW_CLASSES
from rdfer.synth.faces import A, ACTIONS, PROTOTYPES, SUBTLE_HARD, Identity, actor_rng, random_identity
from rdfer.utils.ground_truth import KIND_COLUMNS

# An apex held for less than this share of the clip is "short_apex": a 16-frame sample may miss it.
SHORT_APEX = 0.2
# The kinds that make a clip hard (`is_hard`), as the paper defines hard samples: difficulties that
# make the predictions on a video's clips vary. Chosen by measuring the test agreement of a trained
# model per kind (docs/method.md, "Hard clips").
HARD_KINDS = ("mixed", "occluded", "distractor", "short_apex")


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
    talking: bool = False  # the jaw moves with speech through the clip
    lively: bool = False   # head motion of twice the usual amplitude (none at nuisance 0)
    light_event: bool = False  # a flash or a dip of the lighting for 1-3 frames

    @property
    def kinds(self) -> tuple:
        """The difficulties this clip holds, named as in `KIND_COLUMNS` (docs/method.md)."""
        T = self.num_frames
        held = {
            "mixed": self.mixed_with >= 0,
            "subtle": self.label != DFEW_CLASSES.index("Neutral") and self.peak < SUBTLE_HARD,
            "occluded": self.occluder is not None,
            "distractor": self.distractor >= 0,
            "short_apex": self.apex_end - self.apex_start + 1 < SHORT_APEX * T,
            "lively_motion": self.lively,
            "lighting_change": self.light_event,
            "talking": self.talking,
        }
        return tuple(kind for kind in KIND_COLUMNS if held[kind])

    @property
    def is_hard(self) -> bool:
        """Holds a difficulty of `HARD_KINDS`: one that makes the clip predictions of a video vary."""
        return any(kind in HARD_KINDS for kind in self.kinds)


def _clip_rngs(seed: int, name: str, n: int) -> list:
    """Independent generators for one clip, fixed by (seed, clip name) alone."""
    root = np.random.SeedSequence(int(seed), spawn_key=(zlib.crc32(name.encode("utf-8")),))
    return [np.random.default_rng(s) for s in root.spawn(n)]


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
        r_id = actor_rng(seed, zlib.crc32(name.encode("utf-8")) % int(actors))
    identity = random_identity(r_id)
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
    talking = bool(r_misc.uniform() < 0.4 * k)
    if talking:
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
    light_event = bool(r_light.uniform() < 0.15 * k and T > 4)
    if light_event:  # a flash or a dip
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
            "colour": tuple(random_identity(r_occ).skin) if r_occ.uniform() < 0.7
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
        peak=float(peak), mixed_with=mixed_with, distractor=distractor, talking=talking,
        lively=bool(lively and k > 0), light_event=light_event,
    )
