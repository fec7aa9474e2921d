"""`rdfer audit`, training half: out-of-fold predictions for every labelled clip.

Every labelled clip of the configured dataset gets a prediction from a model
that did not train on it: k-fold cross-validation on the *given* labels. DFEW
and MAFW use their official 5 folds (a clip's fold is the test list it is in);
FERV39K (train and test lists together) and CSV manifests get seeded,
class-stratified folds. A clip's given label is the label of its train lists
(DFEW, MAFW: the synthetic benchmark writes flipped labels there and true ones
in the test lists), else of the list it is in.

Each fold is an ordinary `fit` run on a CSV manifest (`path,label,split`)
written for it, so any training config works, the cached frozen-feature mode
included. The held-out clips are that run's test split, listed with their
given labels.

OUT/
  audit.json                 what was audited: the config, the folds, the clip count
  clips.csv                  clip_id,path,label,fold: the audited clips, given labels (class names)
  folds/fold_K.csv           fold K's manifest for `fit` (dataset: csv)
  folds/fold_K/              fold K's run folder (predictions.csv = its held-out clips)
  folds/fold_K/epochs/epoch_E.npz   fold K's held-out predictions after epoch E (every epoch)
  oof_predictions.csv        every clip's held-out prediction: clip_id,path,fold,label,prediction,
                             agreement,clip_predictions,p_<Class>... (label = given, class indices)
  oof_epochs.npz             every epoch's held-out predictions, rows as in oof_predictions.csv:
                             probabilities (E, N, K) and clip_probabilities (E, N, n1, K)

A rerun with the same config and clips reuses finished folds and resumes an
interrupted one; any other folder given as OUT is refused.
"""

import csv
import json
import time
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Optional

import numpy as np

from rdfer.analysis.run import read_predictions
from rdfer.data import build_manifest
from rdfer.data.layouts import LAYOUTS, SPLITS
from rdfer.engine.fit import fit
from rdfer.errors import RdferError
from rdfer.schema import TrainConfig, config_to_dict
from rdfer.utils.bounded_tables import csv_table, read_json
from rdfer.utils.outputs import atomic_open, write_text
from rdfer.utils.runlock import run_lock

MARKER = "audit.json"
OFFICIAL_FOLDS = tuple(name for name, layout in LAYOUTS.items() if layout.folds)  # dfew, mafw
# Settings that may change between an audit and its rerun: they change speed, not what a fold learns.
IGNORED_SETTINGS = ("config.data.num_workers", "config.threads")


@dataclass(frozen=True)
class AuditClip:
    clip_id: str  # as the dataset's lists name it
    path: str  # absolute frame folder or video file
    label: int  # given label, index into classes
    fold: int  # 1..K: the fold that holds the clip out


def _manifest(config: TrainConfig, split: str, fold: int = 1):
    data = config.data
    return build_manifest(data.dataset, data.root, split, fold=fold, skip_bad=data.skip_bad, csv_path=data.csv)


def collect_clips(config: TrainConfig, folds: Optional[int] = None) -> tuple:
    """Every labelled clip of the configured dataset with its given label and fold.

    Args:
        folds: number of folds; None = the official 5 folds of DFEW/MAFW, else 5
            seeded class-stratified folds. A number for DFEW/MAFW replaces the
            official folds by seeded ones.

    Returns:
        (classes, [AuditClip], official): `official` says the dataset's own folds were used.
    """
    data = config.data
    dataset = data.dataset.lower()
    if dataset == "packed":
        raise RdferError("rdfer audit reads frames from the dataset itself: set data.dataset to dfew, mafw, "
                         "ferv39k or csv (not packed)")
    if dataset != "csv" and not data.root:
        raise RdferError("data.root is not set: give --set data.root=PATH (the dataset's root folder)")
    if folds is not None and folds < 2:
        raise RdferError(f"--folds {folds}: give at least 2 folds")
    official = dataset in OFFICIAL_FOLDS and folds is None
    entries = {}  # clip_id -> [path, label, official fold]
    if dataset in OFFICIAL_FOLDS:
        given = {}
        for fold in LAYOUTS[dataset].folds:
            test = _manifest(config, "test", fold)
            classes = test.classes
            for record in test.records:
                if record.clip_id in entries:
                    raise RdferError(f"{dataset} clip {record.clip_id} is in the test lists of folds "
                                     f"{entries[record.clip_id][2]} and {fold}: the folds must not overlap")
                entries[record.clip_id] = [record.path, record.label, fold]
            for record in _manifest(config, "train", fold).records:
                known = given.setdefault(record.clip_id, record.label)
                if known != record.label:
                    raise RdferError(f"{dataset} clip {record.clip_id} has label {classes[known]} in one train "
                                     f"list and {classes[record.label]} in fold {fold}'s; fix the lists")
        for clip_id, entry in entries.items():
            entry[1] = given.get(clip_id, entry[1])  # the label the models would train on
    else:
        splits = SPLITS if dataset in LAYOUTS else ("all",)  # FERV39K: its train and test lists; csv: every row
        for split in splits:
            manifest = _manifest(config, split)
            classes = manifest.classes
            for record in manifest.records:
                if record.clip_id in entries:
                    raise RdferError(f"{dataset} clip {record.clip_id} is listed in both the train and the test "
                                     "list; list each clip once")
                entries[record.clip_id] = [record.path, record.label, 0]
    ids = list(entries)
    labels = np.array([entries[c][1] for c in ids])
    k = 5 if folds is None else int(folds)
    if not official:
        assigned = stratified_folds(labels, k, config.seed)
        for clip_id, fold in zip(ids, assigned):
            entries[clip_id][2] = int(fold)
    if len(ids) < 2 * k:
        raise RdferError(f"{len(ids)} labelled clips are too few for {k} folds: give fewer --folds")
    clips = [AuditClip(c, entries[c][0], int(entries[c][1]), int(entries[c][2])) for c in ids]
    return tuple(classes), clips, official


def stratified_folds(labels: np.ndarray, k: int, seed: int) -> np.ndarray:
    """Fold numbers 1..k: each class's clips, shuffled (seeded), dealt round-robin from a rolling start.

    Folds are class-stratified and their sizes differ by at most 1.
    """
    rng = np.random.default_rng(seed)
    folds = np.zeros(len(labels), int)
    start = 0
    for c in np.unique(labels):
        members = rng.permutation(np.flatnonzero(labels == c))
        folds[members] = (start + np.arange(len(members))) % k + 1
        start = (start + len(members)) % k
    return folds


def _clips_rows(classes, clips) -> list:
    return [[c.clip_id, c.path, classes[c.label], str(c.fold)] for c in clips]


def prepare_out(out_dir: Path, config: TrainConfig, classes, clips, official: bool) -> None:
    """Create OUT, or check that it holds an audit of this very config and clip set."""
    marker = out_dir / MARKER
    rows = _clips_rows(classes, clips)
    settings = {"config": config_to_dict(config), "folds": max(c.fold for c in clips), "official_folds": official,
                "classes": list(classes), "clips": len(clips)}
    settings = json.loads(json.dumps(settings))  # tuples -> lists, as they will read back
    if out_dir.exists() and not out_dir.is_dir():
        raise RdferError(f"--out {out_dir} is a file; give a new folder (or an earlier audit's)")
    if out_dir.is_dir() and any(out_dir.iterdir()):
        if not marker.is_file():
            raise RdferError(f"--out {out_dir} is not empty and holds no audit ({MARKER}); "
                             "give a new folder, or the folder of an earlier audit to finish it")
        before = read_json(marker, "audit.json")
        changed = [key for key in _differences(before.get("settings", {}), settings) if key not in IGNORED_SETTINGS]
        with csv_table(out_dir / "clips.csv") as table:
            same_clips = list(table)[1:] == rows
        if changed or not same_clips:
            what = ", ".join(changed[:6]) if changed else "the clips or their folds"
            raise RdferError(f"{out_dir} holds an audit of another setting ({what} differ); its folds cannot be "
                             "reused: give another --out")
        return
    (out_dir / "folds").mkdir(parents=True, exist_ok=True)
    with atomic_open(out_dir / "clips.csv", "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["clip_id", "path", "label", "fold"])
        writer.writerows(rows)
    write_text(marker, json.dumps({"rdfer_audit": 1, "settings": settings}, indent=1))


def _differences(a, b, prefix: str = "") -> list:
    """Dotted keys whose values differ between two nested dicts (a: the earlier audit's).

    A key the earlier audit does not record is a setting added to rdfer since: it is
    not a difference, so that an audit survives an upgrade of rdfer.
    """
    if isinstance(a, dict) and isinstance(b, dict):
        out = []
        for key in sorted(a):
            out += _differences(a[key], b.get(key), f"{prefix}{key}.")
        return out
    return [] if a == b else [prefix.rstrip(".")]


def write_fold_manifest(path: Path, classes, clips, fold: int) -> None:
    """`path,label,split` with absolute paths and class names: train = the other folds, test = this one."""
    with atomic_open(path, "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["path", "label", "split"])
        for c in clips:
            writer.writerow([c.path, classes[c.label], "test" if c.fold == fold else "train"])


def fold_config(config: TrainConfig, manifest: Path) -> TrainConfig:
    """The training config of one fold: the user's, reading the fold's manifest.

    The held-out split is predicted after every epoch (the verdict pools the
    epochs; a test pass costs about a quarter of a fold's epoch, as the held-out
    fold is a quarter of the training folds' size). It is the audit's input,
    not a model-selection signal: no best.pt is kept, and no validation part is
    held out of the training folds (data.val_fraction 0: every clip trains).
    """
    data = replace(config.data, dataset="csv", csv=str(manifest), root=str(manifest.parent), fold=1,
                   train_split="train", test_split="test", ground_truth=None, val_fraction=0.0)
    return replace(config, data=data, eval_every=1, save_best=False)


def _save_npz(target: Path, name: str, **arrays) -> None:
    target.mkdir(parents=True, exist_ok=True)
    with atomic_open(target / f"{name}.npz", "wb", fsync=False) as f:
        np.savez(f, **arrays)


def epoch_savers(run_dir: Path) -> dict:
    """fit's on_eval and on_train for one fold: RUN/epochs/epoch_E.npz (the held-out clips' paths and
    probabilities) and RUN/epochs/train_E.npz (each training clip's probability of its given label
    and how many of its clip predictions name it, as the model saw it in that epoch's training pass)."""
    target = Path(run_dir) / "epochs"

    def on_eval(epoch: int, result: dict, manifest) -> None:
        _save_npz(target, f"epoch_{epoch}", path=np.array([manifest.records[int(i)].path for i in result["index"]]),
                  probabilities=result["probabilities"].astype(np.float32),
                  clip_probabilities=result["clip_probabilities"].astype(np.float32))

    def on_train(epoch: int, rows: dict, manifest) -> None:
        _save_npz(target, f"train_{epoch}", path=np.array([manifest.records[int(i)].path for i in rows["index"]]),
                  p_label=rows["p_label"].astype(np.float32), clip_correct=rows["clip_correct"].astype(np.int8))

    return {"on_eval": on_eval, "on_train": on_train}


def run_audit_folds(config: TrainConfig, out_dir, *, folds: Optional[int] = None, progress: bool = True) -> Path:
    """Train every fold (reusing finished ones) and write OUT/oof_predictions.csv; returns its path.

    One audit at a time holds OUT (rdfer.utils.runlock)."""
    out_dir = Path(out_dir)
    with run_lock(out_dir, "audit"):
        return _audit_folds(config, out_dir, folds, progress)


def _audit_folds(config: TrainConfig, out_dir: Path, folds: Optional[int], progress: bool) -> Path:
    classes, clips, official = collect_clips(config, folds)
    prepare_out(out_dir, config, classes, clips, official)
    k = max(c.fold for c in clips)
    how = "official folds" if official else f"{k} class-stratified folds (seed {config.seed})"
    print(f"audit: {len(clips)} labelled clips of {config.data.dataset}, {len(classes)} classes, {how}", flush=True)
    for fold in range(1, k + 1):
        run_dir = out_dir / "folds" / f"fold_{fold}"
        held_out = sum(c.fold == fold for c in clips)
        if (run_dir / "final.json").is_file() and (run_dir / "predictions.csv").is_file():
            print(f"fold {fold}/{k}: finished earlier, reusing {run_dir / 'predictions.csv'}", flush=True)
            continue
        manifest = out_dir / "folds" / f"fold_{fold}.csv"
        write_fold_manifest(manifest, classes, clips, fold)
        resume = (run_dir / "checkpoints" / "last.pt").is_file()
        print(f"fold {fold}/{k}: {'resuming' if resume else 'training'} on {len(clips) - held_out} clips, "
              f"holding out {held_out}, into {run_dir}", flush=True)
        started = time.time()
        fit(fold_config(config, manifest), run_dir, resume=resume, progress=progress, **epoch_savers(run_dir))
        print(f"fold {fold}/{k}: done in {time.time() - started:.0f}s", flush=True)
    return gather_out_of_fold(out_dir, classes, clips)


def gather_out_of_fold(out_dir: Path, classes, clips) -> Path:
    """Join the folds' predictions.csv into OUT/oof_predictions.csv, one row per audited clip."""
    # fit's CSV manifest resolves symlinks in the paths it is given
    by_path = {str(Path(c.path).resolve()): c for c in clips}
    rows = {}
    k = max(c.fold for c in clips)
    for fold in range(1, k + 1):
        path = out_dir / "folds" / f"fold_{fold}" / "predictions.csv"
        p = read_predictions(path)
        if tuple(p.classes) != tuple(classes):
            raise RdferError(f"{path} names classes {', '.join(p.classes)}, not the dataset's "
                             f"{', '.join(classes)}; delete {path.parent} and rerun")
        for i, clip_path in enumerate(p.path):
            clip = by_path.get(clip_path)
            if clip is None or clip.fold != fold or clip.label != int(p.label[i]):
                raise RdferError(f"{path}: clip {clip_path} is not a held-out clip of fold {fold} with its given "
                                 f"label; delete {path.parent} and rerun")
            clip_predictions = " ".join(str(int(k)) for k in p.clip_predictions[i]) if p.clip_predictions else ""
            rows[clip.path] = [clip.clip_id, clip.path, fold, clip.label, int(p.prediction[i]),
                               f"{p.agreement[i]:.2f}", clip_predictions] + [f"{v:.5f}" for v in p.probabilities[i]]
    missing = [c.clip_id for c in clips if c.path not in rows]
    if missing:
        raise RdferError(f"{len(missing)} clip(s) have no held-out prediction (e.g. {missing[0]}); the folds' runs "
                         f"skipped them (data.skip_bad?): fix the clips and rerun")
    target = out_dir / "oof_predictions.csv"
    with atomic_open(target, "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["clip_id", "path", "fold", "label", "prediction", "agreement", "clip_predictions"]
                        + [f"p_{name}" for name in classes])
        writer.writerows(rows[c.path] for c in clips)
    gather_epochs(out_dir, clips)
    return target


def gather_epochs(out_dir: Path, clips) -> Optional[Path]:
    """OUT/oof_epochs.npz from the folds' epochs/epoch_E.npz, rows aligned with oof_predictions.csv.

    Written only when every fold kept the same epochs (an audit made before
    per-epoch predictions were kept has none: the verdict then uses the last epoch).
    """
    k = max(c.fold for c in clips)
    epochs = None
    for fold in range(1, k + 1):
        found = sorted(int(p.stem.split("_")[1]) for p in (out_dir / "folds" / f"fold_{fold}" / "epochs").glob(
            "epoch_*.npz") if not p.stem.endswith(".part"))
        epochs = found if epochs is None else [e for e in epochs if e in found]
    target = out_dir / "oof_epochs.npz"
    if not epochs:
        target.unlink(missing_ok=True)
        return None
    row = {str(Path(c.path).resolve()): i for i, c in enumerate(clips)}
    probabilities = clip_probabilities = None
    for e, epoch in enumerate(epochs):
        for fold in range(1, k + 1):
            with np.load(out_dir / "folds" / f"fold_{fold}" / "epochs" / f"epoch_{epoch}.npz") as data:
                rows = [row[str(p)] for p in data["path"]]
                if probabilities is None:
                    probabilities = np.full((len(epochs), len(clips)) + data["probabilities"].shape[1:], np.nan,
                                            np.float32)
                    clip_probabilities = np.full((len(epochs), len(clips)) + data["clip_probabilities"].shape[1:],
                                                 np.nan, np.float32)
                probabilities[e, rows] = data["probabilities"]
                clip_probabilities[e, rows] = data["clip_probabilities"]
    train = _gather_training(out_dir, clips, row, epochs, k, n1=clip_probabilities.shape[2])
    with atomic_open(target, "wb") as f:
        np.savez_compressed(f, epochs=np.array(epochs), probabilities=probabilities,
                            clip_probabilities=clip_probabilities, **train)
    return target


def _gather_training(out_dir: Path, clips, row: dict, epochs: list, k: int, n1: int) -> dict:
    """Each clip's training-pass evidence per epoch, averaged over the folds that trained on it:
    train_p_label (E, N) and train_clip_correct (E, N, share of clip predictions naming the label).
    Empty when a fold kept no training rows (an audit from before they were kept)."""
    p_label = np.zeros((len(epochs), len(clips)))
    clip_correct = np.zeros((len(epochs), len(clips)))
    counts = np.zeros((len(epochs), len(clips)))
    for e, epoch in enumerate(epochs):
        for fold in range(1, k + 1):
            path = out_dir / "folds" / f"fold_{fold}" / "epochs" / f"train_{epoch}.npz"
            if not path.is_file():
                return {}
            with np.load(path) as data:
                rows = np.array([row[str(p)] for p in data["path"]])
                np.add.at(p_label[e], rows, data["p_label"])
                np.add.at(clip_correct[e], rows, data["clip_correct"] / n1)
                np.add.at(counts[e], rows, 1)
    counts = np.maximum(counts, 1)
    return {"train_p_label": (p_label / counts).astype(np.float32),
            "train_clip_correct": (clip_correct / counts).astype(np.float32)}
