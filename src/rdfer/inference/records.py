"""What `predict_video` returns: a record per video holding a record per face track.

    record = rdfer.predict_video("clip.mp4")
    record.summary["text"]                               # "5 faces: 4 Happy, 1 Angry" (headline.py)
    record.label, record.probability, record.trust      # the main face, None when no face dominates
    for track in record.tracks:                          # every face, longest on screen first
        track.id, track.label, track.trust, track.key_expression
    record.to_dict()       # the JSON `rdfer predict` writes
    record.to_frame()      # pandas DataFrame, one row per frame and face
    record.plot()          # matplotlib Figure: each face's probabilities over time
"""

import dataclasses
from dataclasses import dataclass, field

from rdfer.figures.predict import timeline_figure
from rdfer.inference.outputs import frame_rows, frame_columns


@dataclass
class TrackPrediction:
    """One face followed through one shot of a video.

    id: track number, 1, 2, ... in order of first appearance.
    label, probability: the track's class and its averaged probability.
    probabilities: class -> probability averaged over the track's frames.
    trust: 0..1, how likely the label is right (inference/trust.py); trust_features: what it is made of.
    agreement: the paper's agreement of the track's 4 clips; None with fewer than 4 frames.
    key_expression: {"start_s", "end_s"}, the window where the label is clearest.
    start_s, end_s: first frame's time and last frame's end; num_frames: frames with this face.
    face_size_px: median longer side of its box.
    timeline: one entry per frame with this face: {"frame", "time_s", "box", "label",
        "probabilities", "raw_label", "raw_probabilities"}; label/probabilities are
        smoothed over time (PredictOptions.smooth_s), raw_* the frame's own prediction.
    thumbnails: (time_s, uint8 RGB crop) samples for plots; not part of to_dict().
    """

    id: int
    label: str
    probability: float
    trust: float
    probabilities: dict[str, float]
    agreement: float | None
    key_expression: dict[str, float]
    start_s: float
    end_s: float
    num_frames: int
    face_size_px: float
    trust_features: dict[str, float]
    timeline: list[dict] = field(default_factory=list)
    thumbnails: list = field(default_factory=list, repr=False)

    def to_dict(self) -> dict:
        return {f.name: getattr(self, f.name) for f in dataclasses.fields(self) if f.name != "thumbnails"}


@dataclass
class VideoPrediction:
    """The record of one video or image; `to_dict()` gives the JSON written by `rdfer predict`.

    summary: the headline (headline.summarise): "text", the group line, every face's label,
        probability, trust and time on screen, and "main_face", the id of the face that
        dominates screen time, or None (several faces, none dominant; several shots).
    label, probability, trust, probabilities, agreement, key_expression: those of the
        main face; None when there is none or status is not "ok".
    tracks: every face track, longest on screen first (the main face, if any, is first).
    cuts: times (s) where a new shot starts.
    media: "video" or "image".
    warning: something the user should know about an ok result (e.g. only part of the file decoded).
    timeline: the main face over every decoded frame, {"time_s", "label",
        "probabilities", "box"}, None where it is not on screen or there is no main face (the
        shape of one-face records; every track's own timeline is in `tracks`).
    """

    video: str
    fps: float | None
    num_frames: int
    frames_with_face: int
    status: str
    error: str | None
    model: str
    media: str = "video"
    warning: str | None = None
    label: str | None = None
    probability: float | None = None
    trust: float | None = None
    probabilities: dict[str, float] | None = None
    agreement: float | None = None
    key_expression: dict[str, float] | None = None
    cuts: list[float] = field(default_factory=list)
    summary: dict | None = None
    tracks: list[TrackPrediction] = field(default_factory=list)
    timeline: list[dict] = field(default_factory=list)

    @property
    def main(self) -> TrackPrediction | None:
        """The main face's track (headline.py's rule), or None when no face dominates or none was found."""
        main = (self.summary or {}).get("main_face")
        return next((t for t in self.tracks if t.id == main), None) if main is not None else None

    @property
    def classes(self) -> list[str]:
        """The model's class names, in its order (empty when no face was found)."""
        return list(self.tracks[0].probabilities) if self.tracks else list(self.probabilities or {})

    @property
    def thumbnails(self) -> list:
        track = self.main or (self.tracks[0] if self.tracks else None)
        return track.thumbnails if track else []

    def to_dict(self) -> dict:
        out = {f.name: getattr(self, f.name) for f in dataclasses.fields(self) if f.name != "tracks"}
        out["tracks"] = [t.to_dict() for t in self.tracks]
        return out

    def to_frame(self):
        """pandas DataFrame, one row per frame and face: video, track, main, frame, time_s,
        x0, y0, x1, y1, label, probability, raw_label, p_<class> (smoothed) and raw_p_<class>."""
        import pandas as pd

        classes = self.classes
        return pd.DataFrame(list(frame_rows(self, classes)), columns=frame_columns(classes))

    def plot(self, max_tracks: int = 4):
        """matplotlib Figure: face crops and class probabilities over time, one panel per track."""
        return timeline_figure(self, max_tracks=max_tracks)
