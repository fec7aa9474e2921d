"""Video inference: decode a user's video, follow the face, predict the expression.

Public API:
    predict_video(path, checkpoint=None, **options) -> VideoPrediction (`.to_dict()`)
    predict_files(paths, out_dir, ...)               many files, outputs and a summary
    PredictOptions, VideoPrediction, load_predictor, make_detector
"""

from rdfer.inference.faces import make_detector
from rdfer.inference.predict import PredictOptions, VideoPrediction, predict_video
from rdfer.inference.predictors import load_predictor

__all__ = ["PredictOptions", "VideoPrediction", "load_predictor", "make_detector", "predict_video"]
