"""Faces and expressions: facial actions, the 7 expression prototypes, identities.

Lengths are in canvas units (canvas = 1 x 1, head centre near the origin, y down);
colours are BGR.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from rdfer.labels import DFEW_CLASSES


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


def random_identity(rng: np.random.Generator) -> Identity:
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


def actor_rng(seed: int, actor: int) -> np.random.Generator:
    """The generator of actor `actor`'s identity: the same person in every clip it plays."""
    return np.random.default_rng(np.random.SeedSequence(int(seed), spawn_key=(1, int(actor))))
