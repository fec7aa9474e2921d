"""`rdfer bench train`: training clips/s from (a) synthetic tensors and (b) the real loader.

The ratio b/a says how much of the model's speed the data pipeline keeps: 1.0
means loading never makes the GPU (or CPU) wait.
"""

import tempfile
import time
from pathlib import Path
from typing import Optional

import torch

from rdfer.data.loader import build_loader, load_size_for
from rdfer.data.manifest import build_manifest
from rdfer.data.transforms import TrainPreset
from rdfer.engine.loop import autocast
from rdfer.losses import ReweightConfig, ReweightedLoss
from rdfer.models import create_model
from rdfer.synth import write_synthetic
from rdfer.utils.device import resolve_device


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def bench_train(model_name: str, options: Optional[dict] = None, *, batch_size: int = 16, steps: int = 10,
                warmup: int = 3, dataset: str = "dfew", root: Optional[str] = None, fold: int = 1,
                num_workers: int = 2, device: str = "auto", amp: str = "bf16", compile: bool = False,
                print_fn=print) -> dict:
    """Time `steps` training steps (after `warmup` untimed ones) both ways.

    Without `root`, a small synthetic DFEW-layout dataset is rendered into a
    temporary folder at the model's load size.

    Returns:
        dict with synthetic_clips_per_s, loader_clips_per_s, ratio and the set-up.
    """
    device = resolve_device(device)
    with tempfile.TemporaryDirectory(prefix="rdfer-bench-") as tmp:
        model = create_model(model_name, **(options or {})).to(device)
        mc = model.config
        load_size = load_size_for(mc.input_size)
        if root is None:
            clips = max(64, batch_size * (steps + warmup) // 4)
            print_fn(f"no --root: rendering {clips} synthetic clips at {load_size} px into {tmp}")
            root = str(write_synthetic(Path(tmp) / "synth", layout="dfew", clips=clips, seed=0, size=load_size,
                                       progress=False))
            dataset = "dfew"
        manifest = build_manifest(dataset, root, "train", fold=fold)
        if mc.num_classes != len(manifest.classes):
            model = create_model(model_name, **{**(options or {}), "num_classes": len(manifest.classes)}).to(device)
        loader = build_loader(manifest, num_frames=mc.num_frames, train=True, batch_size=batch_size, seed=0,
                              num_workers=num_workers, load_size=load_size, pin_memory=device.type == "cuda")
        loss_fn = ReweightedLoss(ReweightConfig(warmup_epochs=0), num_samples=len(manifest.records)).to(device)
        optimizer = torch.optim.AdamW(model.parameters(), lr=1e-4)
        step_model = torch.compile(model) if compile else model
        preset = TrainPreset(size=mc.input_size)
        generator = torch.Generator(device=device).manual_seed(0)
        model.train()

        def step(video_uint8: torch.Tensor, labels: torch.Tensor, indices: torch.Tensor) -> None:
            video = preset(video_uint8.to(device, non_blocking=True), generator=generator)
            with autocast(device, amp):
                out = step_model(video)
            loss, _ = loss_fn(out.logits.float(), out.clip_logits.float(), labels.to(device),
                              indices.to(device), 1, evidence=out.evidence, log_weights=out.log_weights)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()

        def batches():
            while True:  # cycle through the loader as often as the timing needs
                for epoch_batch in loader:
                    yield epoch_batch

        # (a) synthetic tensors already in memory: the model's own speed.
        shape = (batch_size, mc.num_frames, 3, load_size, load_size)
        fake = torch.randint(0, 256, shape, dtype=torch.uint8, device=device)
        labels = torch.randint(0, mc.num_classes, (batch_size,))
        indices = torch.arange(batch_size) % len(manifest.records)
        for _ in range(warmup):
            step(fake, labels, indices)
        _sync(device)
        start = time.perf_counter()
        for _ in range(steps):
            step(fake, labels, indices)
        _sync(device)
        synthetic = batch_size * steps / (time.perf_counter() - start)

        # (b) the real loader from disk, decoding included.
        stream = batches()
        for _ in range(warmup):
            b = next(stream)
            step(b["video"], b["label"], b["index"])
        _sync(device)
        start, clips = time.perf_counter(), 0
        for _ in range(steps):
            b = next(stream)
            step(b["video"], b["label"], b["index"])
            clips += b["video"].shape[0]
        _sync(device)
        real = clips / (time.perf_counter() - start)

    result = {"model": model_name, "device": str(device), "batch_size": batch_size, "frames": mc.num_frames,
              "input_size": mc.input_size, "load_size": load_size, "workers": num_workers, "steps": steps,
              "synthetic_clips_per_s": synthetic, "loader_clips_per_s": real, "ratio": real / synthetic}
    print_fn(f"model {model_name} on {device}: batch {batch_size}, {mc.num_frames} frames of "
             f"{mc.input_size} px (loaded at {load_size}), {num_workers} workers, {steps} timed steps")
    print_fn(f"(a) synthetic tensors: {synthetic:8.1f} clips/s")
    print_fn(f"(b) real loader:       {real:8.1f} clips/s")
    print_fn(f"ratio b/a: {real / synthetic:.2f}")
    return result
