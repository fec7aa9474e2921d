"""Inference on people's own footage: decode videos and images, follow every face, predict expressions.

Public API:
    predict_video(path, checkpoint=None, **options) -> VideoPrediction
        .tracks (TrackPrediction per face, the main one first), .label/.probability/.trust (main face),
        .to_dict() (the JSON), .to_frame() (pandas, a row per frame and face), .plot() (Figure)
    predict_files(paths, out_dir, ...)               many files, outputs and a summary (runner.py)
    PredictOptions, load_predictor, make_detector
"""

from rdfer.inference.faces import make_detector
from rdfer.inference.predict import PredictOptions, predict_video
from rdfer.inference.predictors import load_predictor
from rdfer.inference.records import TrackPrediction, VideoPrediction

__all__ = ["PredictOptions", "TrackPrediction", "VideoPrediction", "load_predictor", "make_detector", "predict_video"]
