"""`rdfer eval`: evaluate a checkpoint on a dataset split, write predictions and metrics."""

import json
from dataclasses import replace
from pathlib import Path
from typing import Optional

from rdfer.data.loader import build_loader, load_size_for
from rdfer.data.manifest import build_manifest
from rdfer.data.transforms import EvalPreset
from rdfer.engine.loop import evaluate
from rdfer.engine.outputs import write_predictions
from rdfer.engine.settings import check_batch_bytes
from rdfer.errors import RdferError
from rdfer.metrics import summarize
from rdfer.models.checkpoint import load_model
from rdfer.schema import DataConfig
from rdfer.utils.checkpoint import read_checkpoint
from rdfer.utils.device import resolve_device
from rdfer.utils.outputs import writable_folder, write_text

OUTPUTS = ("predictions.csv", "features.npy", "metrics.json")


def prepare_out_dir(out_dir, split: str) -> Path:
    """Check, before any work, that `out_dir` can take this evaluation's files; create it.

    Refused: a file; a training run folder (its predictions.csv is the run's
    own, of the test split at the last epoch); a folder holding another
    evaluation's files of another split; a folder that cannot be written.
    """
    out_dir = Path(out_dir)
    if out_dir.exists() and not out_dir.is_dir():
        raise RdferError(f"--out {out_dir} is a file; give a folder for predictions.csv and metrics.json")
    if (out_dir / "checkpoints").is_dir() or (out_dir / "final.json").is_file():
        raise RdferError(f"--out {out_dir} is a training run folder: writing there would replace the run's own "
                         f"predictions.csv; give another folder, e.g. --out {out_dir / f'eval_{split}'}")
    metrics = out_dir / "metrics.json"
    if metrics.is_file():
        try:
            previous = json.loads(metrics.read_text()).get("split")
        except (ValueError, AttributeError):
            previous = None
        if previous != split:
            raise RdferError(f"--out {out_dir} holds the evaluation of split {previous!r}; evaluating split "
                             f"{split!r} there would replace it: give another --out")
    elif (out_dir / "predictions.csv").is_file():
        raise RdferError(f"--out {out_dir} already holds a predictions.csv that rdfer eval did not write; "
                         "give another --out")
    return writable_folder(out_dir)


def evaluate_checkpoint(checkpoint, out_dir, *, split: str = "test", data_overrides: Optional[dict] = None,
                        batch_size: int = 32, num_workers: int = 2, device: str = "auto", amp: str = "bf16",
                        progress: bool = True) -> dict:
    """Evaluate `checkpoint` and write predictions.csv, features.npy and metrics.json to `out_dir`.

    The dataset defaults to the one the checkpoint was trained on (its stored
    config); `data_overrides` (e.g. {"dataset": "dfew", "root": ..., "fold": 2,
    "skip_bad": True}) replaces any of those fields. The checkpoint and the
    split are read, then `out_dir` is checked and created (`prepare_out_dir`),
    all before the evaluation pass.

    Returns:
        the metrics dict (WAR, UAR, per-class accuracy, confusion matrix, clips
        evaluated, clips skipped under skip_bad).
    """
    if batch_size < 1 or num_workers < 0:
        raise RdferError(f"--batch-size must be at least 1 and --workers at least 0 (got {batch_size}, "
                         f"{num_workers})")
    path = Path(checkpoint)
    state = read_checkpoint(path)
    model = load_model(state)
    check_batch_bytes(batch_size, model.config.num_frames, model.config.input_size, ("--batch-size",))
    stored = (state.get("train_config") or {}).get("data", {})
    data = replace(DataConfig(**{k: v for k, v in stored.items() if k in DataConfig.__dataclass_fields__}),
                   **(data_overrides or {}))
    if not data.root and data.dataset != "csv":
        raise RdferError(f"{path} does not say which data it was trained on: give --dataset and --root")
    if "root" not in (data_overrides or {}) and data.root and not Path(data.root).is_absolute() \
            and not Path(data.root).exists():
        raise RdferError(f"{path} was trained on data.root {data.root!r}, a path relative to the folder it was "
                         "trained from; give --root with the dataset's folder")
    manifest = build_manifest(data.dataset, data.root, split, fold=data.fold, skip_bad=data.skip_bad,
                              csv_path=data.csv)
    classes = list(manifest.classes)
    if len(classes) != model.config.num_classes:
        raise RdferError(f"{path} predicts {model.config.num_classes} classes but {data.dataset} has "
                         f"{len(classes)}: evaluate it on the kind of data it was trained on")
    out_dir = prepare_out_dir(out_dir, split)  # once the inputs are known good, before the pass
    device = resolve_device(device)
    model.to(device)
    loader = build_loader(manifest, num_frames=model.config.num_frames, train=False, batch_size=batch_size, seed=0,
                          num_workers=num_workers, load_size=load_size_for(model.config.input_size, data.load_size),
                          skip_bad=data.skip_bad, pin_memory=device.type == "cuda")
    result = evaluate(model, loader, EvalPreset(size=model.config.input_size), device=device, amp=amp,
                      desc=f"eval {data.dataset} {split}", progress=progress)
    metrics = summarize(result["label"], result["prediction"], classes)
    skipped = list(manifest.skipped) + [f"clip {clip}: {reason}" for clip, reason in loader.skipped.items()]
    metrics.update(checkpoint=str(path), epoch=int(state.get("epoch", -1)) + 1, dataset=data.dataset,
                   root=str(data.root), fold=data.fold, split=split, clips=int(len(result["index"])),
                   skipped=skipped, bad_frames=int(result["bad_frames"]))
    write_predictions(out_dir, manifest, result, classes)
    write_text(out_dir / "metrics.json", json.dumps(metrics, indent=2))
    return metrics
