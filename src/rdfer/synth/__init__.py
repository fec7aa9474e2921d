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

from rdfer.synth.describe import describe_synthetic
from rdfer.synth.faces import ACTIONS, PROTOTYPES, SUBTLE_HARD, Identity
from rdfer.synth.plan import ClipPlan, plan_clip
from rdfer.synth.render import render_frames
from rdfer.synth.tables import NOISE_TYPES, PAIR_FLIPS
from rdfer.synth.write import check_synth_options, write_synthetic

__all__ = [
    "ACTIONS", "NOISE_TYPES", "PAIR_FLIPS", "PROTOTYPES", "SUBTLE_HARD", "ClipPlan", "Identity", "describe_synthetic",
    "check_synth_options", "plan_clip", "render_frames", "write_synthetic",
]
