"""Reading a finished run folder (or an `rdfer eval` output folder) from disk.

Layout written by the engine (see rdfer.engine.fit):

    RUN/predictions.csv   clip_id,path,label,prediction,agreement,mu,delta,p_<Class>...   (required)
                          [,clip_predictions: the n1 clips' classes, e.g. "2 2 4 2"]  (optional)
    RUN/features.npy      (N, D) float32, rows aligned with predictions.csv          (optional)
    RUN/final.json        {"last": {...}, "best": {...}} summaries                     (optional)
    RUN/metrics.json      one summary, written by `rdfer eval` instead of final.json   (optional)
    RUN/metrics.jsonl     one JSON object per epoch                                    (optional)
    RUN/config.yaml       the resolved config; class names under data.classes          (optional)

Only files are read: no model, no dataset.
"""

from dataclasses import dataclass
from pathlib import Path
from typing import Optional

import numpy as np
import yaml

from rdfer.data.files import count_video_frames, is_video_file, list_frames
from rdfer.errors import RdferError
from rdfer.labels import clip_key
from rdfer.utils.bounded_tables import csv_table, read_json
from rdfer.utils.bounded_yaml import load_yaml
from rdfer.utils.ground_truth import GROUND_TRUTH_FILE, read_ground_truth
from rdfer.utils.outputs import read_jsonl

PREDICTION_COLUMNS = ("clip_id", "path", "label", "prediction", "agreement")


@dataclass(frozen=True)
class Predictions:
    """Per-clip predictions; arrays have one row per clip (N)."""

    classes: tuple  # class names, index order
    clip_id: tuple  # (N,) str
    path: tuple  # (N,) str, frame folder or video file
    label: np.ndarray  # (N,) int64 class index
    prediction: np.ndarray  # (N,) int64 class index
    agreement: np.ndarray  # (N,) float64 in [1/n1, 1], rounded to 2 decimals
    mu: np.ndarray  # (N,) float64, NaN when the model has no re-sampling
    delta: np.ndarray  # (N,) float64, NaN likewise
    probabilities: np.ndarray  # (N, K) float64
    # (N,) tuples of the n1 clip predictions (class indices), from the optional
    # `clip_predictions` column ("2 2 4 2"); None when the file has no such column.
    clip_predictions: Optional[tuple] = None

    def __len__(self) -> int:
        return len(self.clip_id)

    @property
    def levels(self) -> list:
        """Agreement levels present, ascending (e.g. [0.25, 0.5, 0.75, 1.0])."""
        return sorted(set(self.agreement.tolist()))


@dataclass(frozen=True)
class Run:
    """Everything analysis reads from a run folder; missing optional files are None / empty."""

    directory: Path
    predictions: Predictions
    features: Optional[np.ndarray]  # (N, D) float32
    final: Optional[dict]  # {"last": summary, "best": summary}, or {"last": metrics.json} for eval folders
    history: list  # metrics.jsonl records, in order
    config: dict  # config.yaml, {} when absent

    @property
    def name(self) -> str:
        return self.directory.name


def _float(text: str) -> float:
    return float(text) if text.strip() else float("nan")


def read_predictions(path, classes: Optional[list] = None) -> Predictions:
    """Parse predictions.csv; `classes` (e.g. from config.yaml) must match its p_<Class> columns.

    Raises:
        RdferError: missing file, missing columns, or a malformed row (with its line number).
    """
    path = Path(path)
    if not path.is_file():
        raise RdferError(f"{path} not found: analyses need the per-clip predictions that "
                         "`rdfer train` and `rdfer eval` write into their output folder")
    with csv_table(path, dicts=True) as reader:
        header = reader.fieldnames or []
        missing = [c for c in PREDICTION_COLUMNS if c not in header]
        if missing:
            raise RdferError(f"{path}: missing column(s) {', '.join(missing)}; expected "
                             f"{','.join(PREDICTION_COLUMNS)},mu,delta,p_<Class>...")
        prob_columns = [c for c in header if c.startswith("p_")]
        found = tuple(c[2:] for c in prob_columns)
        if classes is not None and found and tuple(classes) != found:
            raise RdferError(f"{path}: probability columns name classes {', '.join(found)} but the run's "
                             f"config.yaml lists {', '.join(classes)}")
        classes = tuple(classes) if classes is not None else found
        if not classes:
            raise RdferError(f"{path}: no p_<Class> columns and no data.classes in config.yaml: "
                             "cannot tell the class names")
        has_clips = "clip_predictions" in header
        rows = {k: [] for k in ("clip_id", "path", "label", "prediction", "agreement", "mu", "delta", "p", "clips")}
        for line, row in enumerate(reader, start=2):
            try:
                label, prediction = int(row["label"]), int(row["prediction"])
                if not (0 <= label < len(classes) and 0 <= prediction < len(classes)):
                    raise ValueError(f"class index outside 0..{len(classes) - 1}")
                rows["agreement"].append(round(float(row["agreement"]), 2))
                rows["mu"].append(_float(row.get("mu") or ""))
                rows["delta"].append(_float(row.get("delta") or ""))
                rows["p"].append([float(row[c]) for c in prob_columns])
                if has_clips:
                    clips = tuple(int(k) for k in (row["clip_predictions"] or "").split())
                    if any(not 0 <= k < len(classes) for k in clips):
                        raise ValueError(f"clip prediction outside 0..{len(classes) - 1}")
                    rows["clips"].append(clips)
            except (TypeError, ValueError) as error:
                raise RdferError(f"{path}, line {line}: malformed row ({error}); "
                                 "rewrite the file with `rdfer eval`") from None
            rows["clip_id"].append(row["clip_id"])
            rows["path"].append(row["path"])
            rows["label"].append(label)
            rows["prediction"].append(prediction)
    if not rows["clip_id"]:
        raise RdferError(f"{path} has no clips")
    return Predictions(
        classes=classes, clip_id=tuple(rows["clip_id"]), path=tuple(rows["path"]),
        label=np.array(rows["label"], dtype=np.int64), prediction=np.array(rows["prediction"], dtype=np.int64),
        agreement=np.array(rows["agreement"]), mu=np.array(rows["mu"]), delta=np.array(rows["delta"]),
        probabilities=np.array(rows["p"], dtype=np.float64).reshape(len(rows["clip_id"]), len(prob_columns)),
        clip_predictions=tuple(rows["clips"]) if has_clips else None,
    )


def _read_json(path: Path):
    try:
        return read_json(path)
    except OSError as error:
        raise RdferError(f"{path} cannot be read ({error}); re-run the evaluation to rewrite it") from None
    except RdferError as error:
        raise RdferError(f"{error}; re-run the evaluation to rewrite it") from None


def read_history(path) -> list:
    """metrics.jsonl as a list of dicts ([] when the file does not exist; a torn last line left out)."""
    return read_jsonl(path)


def read_config(directory) -> dict:
    """RUN/config.yaml as a dict ({} when absent)."""
    path = Path(directory) / "config.yaml"
    if not path.is_file():
        return {}
    try:
        config = load_yaml(path.read_text()) or {}
    except (yaml.YAMLError, RecursionError) as error:
        raise RdferError(f"{path} is not valid YAML: {error}") from None
    if not isinstance(config, dict):
        raise RdferError(f"{path} must hold a mapping")
    return config


def read_final(directory) -> Optional[dict]:
    """RUN/final.json ({"last": ..., "best": ...}), else an eval folder's metrics.json as
    {"last": ...}, else None."""
    directory = Path(directory)
    if (directory / "final.json").is_file():
        final = _read_json(directory / "final.json")
        if not isinstance(final, dict) or not isinstance(final.get("last"), dict):
            raise RdferError(f"{directory / 'final.json'} needs a 'last' summary (war, uar, per_class, confusion)")
        return final
    if (directory / "metrics.json").is_file():  # an `rdfer eval` folder
        return {"last": _read_json(directory / "metrics.json")}
    return None


def load_run(run_dir) -> Run:
    """Read a run folder (see the module docstring for its files).

    Raises:
        RdferError: the folder or predictions.csv is missing, or a file present is malformed.
    """
    directory = Path(run_dir)
    if not directory.is_dir():
        raise RdferError(f"run folder {directory} not found")
    config = read_config(directory)
    predictions = read_predictions(directory / "predictions.csv", (config.get("data") or {}).get("classes"))
    features = None
    if (directory / "features.npy").is_file():
        try:
            features = np.load(directory / "features.npy", allow_pickle=False)
        except (OSError, ValueError) as error:
            raise RdferError(f"{directory / 'features.npy'} cannot be read ({error})") from None
        if features.ndim != 2 or features.shape[0] != len(predictions):
            raise RdferError(f"{directory / 'features.npy'} has shape {features.shape}; expected "
                             f"({len(predictions)}, D), one row per line of predictions.csv")
    return Run(directory, predictions, features, read_final(directory), read_history(directory / "metrics.jsonl"),
               config)


def read_apex(run: Run) -> Optional[np.ndarray]:
    """Each test clip's true apex as fractions of the clip, (N, 2) aligned with predictions.csv
    (NaN where unknown), from the run's ground_truth.csv (data.ground_truth, or
    data.root/ground_truth.csv) and the clips' frame counts; None without apex frames."""
    data = run.config.get("data") or {}
    path = data.get("ground_truth") or (Path(data["root"]) / GROUND_TRUTH_FILE if data.get("root") else None)
    if path is None or not Path(path).is_file():
        return None
    rows = read_ground_truth(path, needed=("video_name", "apex_start", "apex_end"))
    apex = np.full((len(run.predictions), 2), np.nan)
    for i, (clip, source) in enumerate(zip(run.predictions.clip_id, run.predictions.path)):
        row = rows.get(clip_key(clip))
        if row is None or row.apex_start is None or row.apex_end is None or not Path(source).exists():
            continue
        frames = count_video_frames(source) if is_video_file(source) else len(list_frames(source))
        if frames:
            apex[i] = row.apex_start / frames, (row.apex_end + 1) / frames
    return apex if not np.isnan(apex).all() else None
