"""`rdfer features`: encode every frame of a dataset once with a frozen encoder.

    rdfer features --config CFG --out features.npz      # CFG's model has frozen_encoder: true
    rdfer train --config CFG --set data.features=features.npz --out RUN

The frames go through exactly what an uncached run does to them (decode at
load_size, the evaluation preset's resize, the model's normalisation and
encoder), one clip at a time; see `rdfer.data.features` for the file.
"""

import json
import time
from pathlib import Path

import torch

from rdfer.data.dataset import ClipDataset
from rdfer.data.features import cache_meta, clip_key, save_feature_cache
from rdfer.data.files import clip_stamp
from rdfer.data.frames import read_clip
from rdfer.data.loader import load_size_for
from rdfer.data.manifest import dataset_files, load_manifests
from rdfer.data.transforms import EvalPreset
from rdfer.errors import RdferError
from rdfer.models import create_model
from rdfer.schema import TrainConfig
from rdfer.utils.outputs import refuse_overwriting_inputs
from rdfer.utils.progress import progress_bar
from rdfer.utils.runlock import run_lock


def build_feature_cache(config: TrainConfig, out, *, inputs=(), progress: bool = True) -> dict:
    """Cache the frozen encoder's features of every clip of the config's train and test splits.

    Args:
        inputs: files read besides the data (the config file), which `out` must not be.

    Returns:
        dict: "path", "clips", "frames", "seconds", "meta" (JSON: what made the features).
    Raises:
        RdferError: among others, `out` is one of the files read (a split list, a clip, the config),
            or another run writes it.
    """
    out = Path(out)
    if out.exists() and not out.is_file():
        raise RdferError(f"--out {out} is a folder; give the path of the cache file to write (e.g. features.npz)")
    if not out.parent.is_dir():
        raise RdferError(f"--out {out}: folder {out.parent} does not exist")
    with run_lock(out, "features"):
        return _build(config, out, inputs, progress)


def _build(config: TrainConfig, out: Path, inputs, progress: bool) -> dict:
    started = time.time()
    if config.threads:
        torch.set_num_threads(config.threads)
    train, test = load_manifests(config.data)
    data = config.data
    refuse_overwriting_inputs([out], [*inputs, *train.inputs(), *test.inputs(), data.ground_truth,
                                      *dataset_files(data.dataset, data.root)])
    model = create_model(config.model.name, num_classes=len(train.classes), **config.model.options).eval()
    model_config = model.config
    if not getattr(model_config, "frozen_encoder", False):
        raise RdferError(f"model {model_config.name} has no frozen encoder: features are cached only for "
                         "--set model.options.frozen_encoder=true (the encoder is then never trained)")
    load_size = load_size_for(model_config.input_size, config.data.load_size)
    preset = EvalPreset(size=model_config.input_size)
    keys, seen, features, stamps, frames = [], set(), [], [], 0
    for manifest in (train, test):
        dataset = ClipDataset(manifest, train=False, load_size=load_size)
        bar = progress_bar(manifest.records, enabled=progress, desc=f"encoding {manifest.split}", leave=False,
                           dynamic_ncols=True)
        for i, record in enumerate(bar):
            key = clip_key(record.path)
            if key in seen:  # a clip in both splits (FERV39K, csv) is encoded once
                continue
            stamps.append(clip_stamp(record.path))  # before reading: a clip rewritten meanwhile shows as stale
            source = dataset.open_clip(i)
            if source.num_frames == 0:
                raise RdferError(f"clip {record.clip_id}: no frames in {record.path}")
            video, _ = read_clip(source, torch.arange(source.num_frames).numpy(), record.clip_id)  # (L, 3, S, S)
            keys.append(key)
            seen.add(key)
            features.append(model.frame_features(preset(video)[None])[0].numpy())  # (L, D)
            frames += source.num_frames
    meta = cache_meta(model_config, load_size)
    meta.update(model=model_config.name, root=str(config.data.root))
    save_feature_cache(out, features, keys, meta, stamps)
    return {"path": str(out), "clips": len(keys), "frames": frames, "seconds": round(time.time() - started, 1),
            "meta": json.dumps(meta)}
