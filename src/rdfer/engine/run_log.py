"""Live training curves: TensorBoard event files in the run folder, and optionally wandb.

Every `fit` (so `rdfer train`, `cv`, `study` and `audit`) writes, once per epoch,
into RUN/ (open it with `tensorboard --logdir RUN`, or a folder of runs):

    scalars     every number of that epoch's metrics.jsonl line, as GROUP/NAME at
                step = epoch: train/loss, train/war, train/clip_acc, train/hard_share,
                train/noisy_share, train/memorised, ..., test/war, test/uar,
                test/clip_acc, test/majority_match, run/lr, run/time_s
    histograms  train/agreement (every training sample's agreement of its n1 clip
                predictions) and test/agreement (every test clip's), per epoch
    images      test/confusion, the row-normalised confusion matrix of each evaluated epoch

A resumed run opens its writer with `purge_step` = the first epoch it repeats, so
TensorBoard drops what the killed run wrote for that epoch: the curves hold each
epoch once. Only rank 0 writes under DDP (`fit` makes the other ranks' RunLog a no-op).

wandb (`--set wandb=PROJECT`, off by default) logs the same scalars and
histograms; it is imported only then, and a missing package is a one-line error.
"""

import json
import tempfile
from pathlib import Path
from typing import Optional

import numpy as np

from rdfer.errors import RdferError
from rdfer.utils.outputs import write_text

# metrics.jsonl keys that describe the test pass; the rest describe training, except RUN_KEYS.
TEST_KEYS = ("war", "uar", "clip_acc", "majority_match")
RUN_KEYS = ("lr", "time_s", "bad_frames", "samples")
WANDB_ID_FILE = "wandb_id.txt"


def scalar_tags(record: dict) -> dict:
    """The numbers of one metrics.jsonl record as {TensorBoard tag: value}, step (epoch) left out.

    Nested mappings become paths (`train/hard_kinds/mixed/zeroed`, `test/agreement/0.25`: the
    share at each agreement level); None (a share of an empty set) and non-numbers are skipped.
    """
    tags = {}
    for key, value in record.items():
        if key == "epoch":
            continue
        if key in TEST_KEYS or key.startswith("test_"):
            tag = f"test/{key.removeprefix('test_')}"
        elif key in RUN_KEYS:
            tag = f"run/{key}"
        else:
            tag = f"train/{key.removeprefix('train_')}"
        tags.update(_numbers(tag, value))
    return tags


def _numbers(tag: str, value) -> dict:
    """{tag: value} for a number, {tag/key/...: number} for nested mappings, {} otherwise."""
    if isinstance(value, dict):
        return {k: v for key, inner in value.items() for k, v in _numbers(f"{tag}/{key}", inner).items()}
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return {}
    return {tag: value}


class RunLog:
    """Writes one run's epochs to TensorBoard (and wandb when asked); a no-op when not `enabled`.

    Args:
        run_dir: the run folder; the event files go into it.
        start_epoch: the first epoch (0-based) this process trains; above 0 on resume.
        classes: class names, for the confusion matrix image.
        n1: clips per video (agreement levels are k / n1).
        wandb_project: a wandb project name, or None (off).
        config: the resolved config as a dict, given to wandb.
        enabled: False on every DDP rank but 0.
    """

    def __init__(self, run_dir, *, start_epoch: int, classes: list, n1: int, wandb_project: Optional[str] = None,
                 config: Optional[dict] = None, enabled: bool = True):
        self.run_dir, self.classes, self.n1 = Path(run_dir), list(classes), n1
        self.writer, self.wandb = None, None
        if not enabled:
            return
        from torch.utils.tensorboard import SummaryWriter  # needs the tensorboard package (a dependency)

        # purge_step: TensorBoard discards events at steps >= the first repeated epoch from earlier files.
        self.writer = SummaryWriter(str(self.run_dir), purge_step=start_epoch + 1 if start_epoch else None)
        if wandb_project:
            self.wandb = _start_wandb(self.run_dir, wandb_project, config or {})

    def log_epoch(self, record: dict, *, train_agreement: np.ndarray, test_agreement: Optional[np.ndarray] = None,
                  confusion: Optional[list] = None) -> None:
        """Log one epoch: `record` is its metrics.jsonl line; agreements are per-sample arrays in [0, 1];
        `confusion` the (K, K) test counts of an evaluated epoch (None otherwise)."""
        if self.writer is None:
            return
        step = record["epoch"]
        scalars = scalar_tags(record)
        for tag, value in scalars.items():
            self.writer.add_scalar(tag, value, step)
        # One bin per agreement level k / n1 (k = 1..n1), centred on it.
        edges = (np.arange(1, self.n1 + 2) - 0.5) / self.n1
        histograms = {"train/agreement": train_agreement, "test/agreement": test_agreement}
        for tag, values in histograms.items():
            if values is not None and len(values):
                self.writer.add_histogram(tag, np.asarray(values, dtype=np.float64), step, bins=edges)
        if confusion is not None:
            self.writer.add_image("test/confusion", confusion_image(confusion, self.classes, step), step,
                                  dataformats="HWC")
        self.writer.flush()  # a live TensorBoard sees the epoch now, and a kill loses none of it
        if self.wandb is not None:
            logged = dict(scalars)
            for tag, values in histograms.items():
                if values is not None and len(values):
                    logged[tag] = self.wandb.Histogram(np.asarray(values, dtype=np.float64), num_bins=self.n1)
            self.wandb.log(logged, step=step)

    def close(self) -> None:
        if self.writer is not None:
            self.writer.close()
            self.writer = None
        if self.wandb is not None:
            self.wandb.finish()
            self.wandb = None


def confusion_image(confusion, classes: list, epoch: int) -> np.ndarray:
    """The annotated, row-normalised confusion matrix (analysis Fig. 5) as uint8 RGB (H, W, 3)."""
    from PIL import Image

    from rdfer.figures.paper import fig_confusion  # matplotlib: loaded only when a run evaluates

    with tempfile.TemporaryDirectory() as folder:
        path = fig_confusion(confusion, classes, Path(folder) / "confusion.png", title=f"Test, epoch {epoch}")
        with Image.open(path) as image:
            return np.asarray(image.convert("RGB"))


def _start_wandb(run_dir: Path, project: str, config: dict):
    """wandb.init for this run folder; a resumed run continues the same wandb run (its id is kept in RUN/)."""
    try:
        import wandb
    except ImportError:
        raise RdferError(f"wandb={project!r} asks for Weights & Biases logging, but the wandb package is not "
                         "installed: pip install wandb, or drop --set wandb=... (TensorBoard files are written "
                         "either way)") from None
    id_file = run_dir / WANDB_ID_FILE
    run_id = id_file.read_text().strip() if id_file.is_file() else wandb.util.generate_id()
    write_text(id_file, run_id + "\n")
    wandb.init(project=project, name=run_dir.name, id=run_id, resume="allow", dir=str(run_dir),
               config=json.loads(json.dumps(config, default=str)))
    return wandb
