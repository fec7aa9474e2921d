"""One training epoch and one evaluation pass: plain functions, explicit arguments.

Both take batches of uint8 video `(B, T, C, H, W)` from the loader, move them to
the device, apply the train or eval preset there (batched) and run the model.
"""

import contextlib
from typing import Callable, Optional

import numpy as np
import torch

from rdfer.errors import NonFiniteLoss
from rdfer.losses import HARD, NOISY, agreement, clip_majority
from rdfer.models.detector import farthest_from_first
from rdfer.utils.distributed import DistInfo, gather_objects
from rdfer.utils.progress import progress_bar


def autocast(device: torch.device, amp: str):
    """bf16/fp16 autocast on GPU; plain float32 on CPU (CPU autocast slows LSTMs down)."""
    if device.type != "cuda" or amp == "off":
        return contextlib.nullcontext()
    return torch.autocast("cuda", dtype=torch.bfloat16 if amp == "bf16" else torch.float16)


def train_one_epoch(
    model: torch.nn.Module,
    loader,
    preset: Callable,
    loss_fn,
    optimizer: torch.optim.Optimizer,
    scheduler,
    scaler,
    *,
    epoch: int,
    device: torch.device,
    amp: str,
    generator: torch.Generator,
    grad_clip: Optional[float] = None,
    dist_info: DistInfo = DistInfo(),
    desc: str = "train",
    progress: bool = True,
) -> dict:
    """Train for one epoch.

    Returns:
        dict with `train_loss` (mean weighted loss), `hard_share`, `noisy_share`
        (shares of samples the reweighting marked), `bad_frames` (corrupt frames
        replaced while loading), `samples`, and `rows`: per-sample numpy arrays
        of every sample seen on every rank, sorted by index: "index", "label"
        (the given label), "prediction" (video), "clip_correct" (how many of the
        n1 clips predict the given label), "p_label" (the video's probability of the
        given label), "agreement", "kind" (ORDINARY / HARD / NOISY), "weight"
        (the loss weight it got) and "largest_loss" (bool: in the small-loss trick's
        set at the noisy set's budget, the control beside the partition).

    Raises:
        NonFiniteLoss: the loss of a batch is nan or inf (named with its step).
    """
    model.train()
    total_loss, seen, bad_frames = 0.0, 0, 0
    rows: dict[str, list] = {k: [] for k in ("index", "label", "prediction", "clip_correct", "p_label", "agreement",
                                             "kind", "weight", "largest_loss")}
    bar = progress_bar(loader, enabled=progress and dist_info.is_main, desc=desc, leave=False, dynamic_ncols=True)
    for step, batch in enumerate(bar, 1):
        video = preset(batch["video"].to(device, non_blocking=True), generator=generator)  # (B, T, C, H, W)
        targets = batch["label"].to(device)
        indices = batch["index"].to(device)
        with autocast(device, amp):
            out = model(video)
        loss, info = loss_fn(out.logits.float(), out.clip_logits.float(), targets, indices, epoch,
                             evidence=out.evidence, log_weights=out.log_weights)
        if not torch.isfinite(loss):  # before the step: the weights stay those of the last good step
            raise NonFiniteLoss(loss.item(), step)
        optimizer.zero_grad(set_to_none=True)
        scaler.scale(loss).backward()
        if grad_clip:
            scaler.unscale_(optimizer)
            torch.nn.utils.clip_grad_norm_(model.parameters(), grad_clip)
        scaler.step(optimizer)
        scaler.update()
        scheduler.step()

        batch_size = targets.shape[0]
        total_loss += loss.item() * batch_size
        seen += batch_size
        bad_frames += int(batch["bad_frames"].sum())
        clip_predictions = out.clip_logits.detach().argmax(-1)  # (B, n1)
        rows["index"].append(batch["index"])
        rows["label"].append(batch["label"])
        rows["prediction"].append(out.logits.detach().argmax(-1).cpu())
        rows["clip_correct"].append((clip_predictions == targets[:, None]).sum(1).cpu())
        rows["p_label"].append(out.logits.detach().float().softmax(-1).gather(1, targets[:, None])[:, 0].cpu())
        rows["agreement"].append(info["agreement"].cpu())
        rows["kind"].append(info["kinds"].cpu())
        rows["weight"].append(info["weights"].float().cpu())
        rows["largest_loss"].append(info["largest_loss"].cpu())
        bar.set_postfix(loss=f"{total_loss / seen:.3f}")

    # Gather every process's rows so the shares describe the whole epoch.
    local = {k: torch.cat(v).numpy() if v else np.zeros((0,)) for k, v in rows.items()}
    parts = gather_objects((total_loss, bad_frames, local), dist_info)
    total_loss, bad_frames = sum(p[0] for p in parts), sum(p[1] for p in parts)
    merged = {k: np.concatenate([p[2][k] for p in parts]) for k in rows}
    order = np.argsort(merged["index"], kind="stable")
    seen = max(len(order), 1)
    return {
        "train_loss": total_loss / seen,
        "hard_share": float((merged["kind"] == HARD).sum()) / seen,
        "noisy_share": float((merged["kind"] == NOISY).sum()) / seen,
        "bad_frames": bad_frames,
        "samples": seen,
        "rows": {k: v[order] for k, v in merged.items()},
    }


@torch.no_grad()
def evaluate(
    model: torch.nn.Module,
    loader,
    preset: Callable,
    *,
    device: torch.device,
    amp: str,
    dist_info: DistInfo = DistInfo(),
    desc: str = "eval",
    progress: bool = True,
) -> dict:
    """Predict every clip of `loader`'s dataset (each rank a shard; results gathered).

    Returns:
        dict of numpy arrays sorted by dataset index: `index` (N,), `label` (N,),
        `prediction` (N,), `probabilities` (N, C), `agreement` (N,),
        `clip_predictions` (N, n1) (each clip's class), `clip_probabilities` (N, n1, C),
        `clip_majority` (N,)
        (their most frequent class, see `rdfer.losses.clip_majority`), `mu` (N,),
        `delta` (N,) (NaN for models without re-sampling), `features` (N, D), `farthest` (N,)
        (the label-free apex estimate of `rdfer.models.detector.farthest_from_first`, the
        detector's control),
        and the int `bad_frames`.
    """
    model.eval()
    rows: dict[str, list] = {k: [] for k in ("index", "label", "probabilities", "agreement", "clip_predictions",
                                             "clip_probabilities", "clip_majority", "mu", "delta", "features",
                                             "farthest")}
    bad_frames = 0
    bar = progress_bar(loader, enabled=progress and dist_info.is_main, desc=desc, leave=False, dynamic_ncols=True)
    for batch in bar:
        video = preset(batch["video"].to(device, non_blocking=True))  # (B, T, C, H, W)
        with autocast(device, amp):
            out = model(video)
        batch_size = video.shape[0]
        nan = torch.full((batch_size,), float("nan"))
        rows["index"].append(batch["index"])
        rows["label"].append(batch["label"])
        rows["probabilities"].append(out.logits.float().softmax(-1).cpu())
        rows["agreement"].append(agreement(out.clip_logits.float()).cpu())
        rows["clip_predictions"].append(out.clip_logits.argmax(-1).cpu())  # (B, n1)
        rows["clip_probabilities"].append(out.clip_logits.float().softmax(-1).cpu())  # (B, n1, C)
        rows["clip_majority"].append(clip_majority(out.clip_logits.float()).cpu())
        rows["mu"].append(nan if out.mu is None else out.mu.float().cpu())
        rows["delta"].append(nan if out.delta is None else out.delta.float().cpu())
        rows["features"].append(out.features.float().cpu())
        rows["farthest"].append(farthest_from_first(video).cpu())
        bad_frames += int(batch["bad_frames"].sum())

    local = {k: torch.cat(v).numpy() if v else np.zeros((0,)) for k, v in rows.items()}
    parts = gather_objects((local, bad_frames), dist_info)
    merged = {k: np.concatenate([p[0][k] for p in parts if len(p[0][k])]) for k in rows}
    order = np.argsort(merged["index"], kind="stable")
    result = {k: v[order] for k, v in merged.items()}
    result["prediction"] = result["probabilities"].argmax(-1)
    result["bad_frames"] = sum(p[1] for p in parts)
    return result
