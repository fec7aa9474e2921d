"""The Python face of `rdfer predict`: load the model and the face detector once, predict many files.

    import rdfer

    predictor = rdfer.Predictor()                      # the built-in model; or Predictor("run/checkpoints/best.pt")
    result = predictor.predict("clip.mp4")             # a VideoPrediction: .label, .trust, .tracks, .to_frame()
    results = predictor.predict_many(["a.mp4", "photos/"])
    results.to_frame()                                 # one DataFrame, a row per frame and face, a `video` column
    results.to_table()                                 # one DataFrame, a row per face track (predictions.csv)

The library returns records and writes nothing; `rdfer predict` (cli/predict.py) writes the
files, prints the summary and decides the exit status.
"""

from __future__ import annotations

import dataclasses

from rdfer.errors import RdferError
from rdfer.inference.faces import make_detector
from rdfer.inference.outputs import track_table
from rdfer.inference.predict import PredictOptions, predict_video
from rdfer.inference.predictors import load_predictor
from rdfer.inference.records import VideoPrediction
from rdfer.inference.video import list_videos


class Predictor:
    """A loaded expression model and face detector, reused by every call.

    Args:
        checkpoint: a checkpoint written by `rdfer train`, or an ONNX model file (`*.onnx`, fed as
            `spec` says: a preset name or a spec file; None: the sidecar beside it); None: the
            built-in FER2013 mini-Xception, run on every frame and averaged over time.
        **options: fields of `PredictOptions` (detector="haar", min_face=24, faces="main",
            device="cuda", smooth_s=0, ...).
    Raises:
        RdferError: a checkpoint that cannot be used, or a bad option.
    """

    def __init__(self, checkpoint=None, *, spec=None, **options):
        unknown = sorted(set(options) - {f.name for f in dataclasses.fields(PredictOptions)})
        if unknown:
            raise RdferError(f"unknown option(s) {', '.join(unknown)}; Predictor takes the fields of "
                             f"PredictOptions: {', '.join(f.name for f in dataclasses.fields(PredictOptions))}")
        self.checkpoint = checkpoint
        self.options = PredictOptions(**options)
        self.model = load_predictor(checkpoint, self.options.device, spec=spec, runtime=self.options.runtime)
        self.detector = make_detector(self.options.detector, self.options.min_face, self.options.runtime)

    @property
    def classes(self) -> list[str]:
        return list(self.model.classes)

    def predict(self, path, *, cancel=None, progress=None) -> VideoPrediction:
        """Every face of one video or image file. A file that cannot be read gives status "error" (no raise).

        cancel: an event another thread may set to stop early; progress: called with each FrameProgress.
        """
        return predict_video(path, options=self.options, predictor=self.model, face_detector=self.detector,
                             cancel=cancel, progress=progress)

    def predict_many(self, paths) -> Predictions:
        """Every video and image in `paths` (files and/or folders, searched recursively), in order."""
        return Predictions([self.predict(path) for path in list_videos(_as_list(paths))])

    def __repr__(self) -> str:
        return f"Predictor(checkpoint={self.checkpoint!r}, model={self.model.description!r})"


class Predictions(list):
    """The VideoPredictions of many files (a list), with tables over all of them."""

    def to_frame(self):
        """pandas DataFrame, one row per frame and face of every file; `video` names the file."""
        import pandas as pd

        frames = [record.to_frame() for record in self]
        return pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()

    def to_table(self):
        """pandas DataFrame, one row per face track (one for a file without a face): predictions.csv's rows."""
        import pandas as pd

        columns, rows = track_table(self)
        return pd.DataFrame(rows, columns=columns)

    @property
    def failed(self) -> list[VideoPrediction]:
        """The records whose file could not be read (status "error")."""
        return [record for record in self if record.status == "error"]


def _as_list(paths) -> list:
    return [paths] if isinstance(paths, (str, bytes)) or hasattr(paths, "__fspath__") else list(paths)
