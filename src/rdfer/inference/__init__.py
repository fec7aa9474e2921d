"""Inference on people's own footage: decode videos and images, follow every face, predict expressions.

Public API:
    Predictor(checkpoint=None, **options)            the model and face detector, loaded once (api.py)
        .predict(path) -> VideoPrediction, .predict_many(paths) -> Predictions (.to_frame(), .to_table())
    predict_video(path, checkpoint=None, **options) -> VideoPrediction   (loads the model on every call)
        .tracks (TrackPrediction per face, the main one first), .label/.probability/.trust (main face),
        .to_dict() (the JSON), .to_frame() (pandas, a row per frame and face), .plot() (Figure)
    predict_files(paths, out_dir, ...) -> PredictRun  many files and their output files (runner.py)
    PredictOptions, load_predictor, make_detector
"""

from rdfer.inference.api import Predictions, Predictor
from rdfer.inference.faces import make_detector
from rdfer.inference.predict import PredictOptions, predict_video
from rdfer.inference.predictors import load_predictor
from rdfer.inference.records import TrackPrediction, VideoPrediction

__all__ = ["PredictOptions", "Predictions", "Predictor", "TrackPrediction", "VideoPrediction", "load_predictor",
           "make_detector", "predict_video"]
