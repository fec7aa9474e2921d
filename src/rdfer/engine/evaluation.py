"""`rdfer eval`: evaluate a checkpoint on a dataset split, write predictions and metrics."""

import json
from dataclasses import replace
from pathlib import Path
from typing import Optional

import torch

from rdfer.config import DataConfig
from rdfer.engine.distributed import DistInfo
from rdfer.engine.fit import build_loader, resolve_device
from rdfer.engine.loop import evaluate
from rdfer.engine.outputs import write_predictions
from rdfer.errors import RdferError


def evaluate_checkpoint(checkpoint, out_dir, *, split: str = "test", data_overrides: Optional[dict] = None,
                        batch_size: int = 32, num_workers: int = 2, device: str = "auto", amp: str = "bf16",
                        progress: bool = True) -> dict:
    """Evaluate `checkpoint` and write predictions.csv, features.npy and metrics.json to `out_dir`.

    The dataset defaults to the one the checkpoint was trained on (its stored
    config); `data_overrides` (e.g. {"dataset": "dfew", "root": ..., "fold": 2})
    replaces any of those fields.

    Returns:
        the metrics dict (WAR, UAR, per-class accuracy, confusion matrix).
    """
    from rdfer.data import EvalPreset, build_manifest
    from rdfer.metrics import summarize
    from rdfer.models.checkpoint import load_model

    path = Path(checkpoint)
    if not path.is_file():
        raise RdferError(f"checkpoint {path} not found")
    state = torch.load(path, map_location="cpu", weights_only=True)
    model = load_model(state)
    stored = (state.get("train_config") or {}).get("data", {})
    data = replace(DataConfig(**{k: v for k, v in stored.items() if k in DataConfig.__dataclass_fields__}),
                   **(data_overrides or {}))
    if not data.root and data.dataset != "csv":
        raise RdferError(f"{path} does not say which data it was trained on: give --dataset and --root")
    manifest = build_manifest(data.dataset, data.root, split, fold=data.fold, skip_bad=data.skip_bad,
                              csv_path=data.csv)
    classes = list(manifest.classes)
    if len(classes) != model.config.num_classes:
        raise RdferError(f"{path} predicts {model.config.num_classes} classes but {data.dataset} has "
                         f"{len(classes)}: evaluate it on the kind of data it was trained on")
    device = resolve_device(device)
    model.to(device)
    loader = build_loader(manifest, model_config=model.config, data_config=replace(data, num_workers=num_workers),
                          train=False, batch_size=batch_size, seed=0, dist_info=DistInfo(), device=device)
    result = evaluate(model, loader, EvalPreset(size=model.config.input_size), device=device, amp=amp,
                      desc=f"eval {data.dataset} {split}", progress=progress)
    metrics = summarize(result["label"], result["prediction"], classes)
    metrics.update(checkpoint=str(path), epoch=int(state.get("epoch", -1)) + 1, dataset=data.dataset,
                   root=str(data.root), fold=data.fold, split=split, clips=len(manifest.records),
                   bad_frames=int(result["bad_frames"]))
    out_dir = Path(out_dir)
    write_predictions(out_dir, manifest, result, classes)
    (out_dir / "metrics.json").write_text(json.dumps(metrics, indent=2))
    return metrics
