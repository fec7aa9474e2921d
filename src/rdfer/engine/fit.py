"""`fit`: a whole training run, from a config to a run folder.

RUN/
  config.yaml             the resolved config (plus data.classes)
  metrics.jsonl           one JSON line per epoch
  checkpoints/last.pt     written atomically after every epoch (resume point)
  checkpoints/best.pt     the epoch with the best VALIDATION WAR (written before last.pt: see _reconcile_best)
  final.json              last and best epoch: test WAR, UAR, per-class accuracy, confusion matrix;
                          written last, atomically: it marks a finished run

"Best" is chosen on a validation part of the training split (data.val_fraction of each class,
seeded, stratified; never trained on), never on the test split: the test split is only scored.
With data.val_fraction 0 every training clip is trained on and the last evaluated epoch is "best".
  predictions.csv         per-clip predictions of the last epoch (see outputs.py)
  features.npy            their features, rows aligned with predictions.csv
"""

import contextlib
import json
import math
import os
import time
from pathlib import Path
from typing import Callable, Optional

import torch

from rdfer.config import RESUME_OVERRIDABLE, absolute_paths, config_differences, save_config
from rdfer.data.features import FeatureCache, identity_preset
from rdfer.data.loader import build_loader, load_size_for
from rdfer.data.manifest import load_manifests, split_validation
from rdfer.data.transforms import EvalPreset, TrainPreset
from rdfer.engine.checkpoint import (
    atomic_save, load_training_checkpoint, rng_state, set_rng_state,
)
from rdfer.engine.loop import evaluate, train_one_epoch
from rdfer.engine.outputs import eval_metrics, ground_truth_for, train_metrics, window_metrics, write_predictions
from rdfer.engine.run_log import RunLog
from rdfer.engine.settings import check_run_settings
from rdfer.errors import NonFiniteLoss, RdferError
from rdfer.losses import ReweightedLoss
from rdfer.metrics import summarize
from rdfer.stats import format_interval
from rdfer.models import create_model
from rdfer.models.checkpoint import model_state
from rdfer.schema import TrainConfig, config_to_dict
from rdfer.utils.device import resolve_device
from rdfer.utils.distributed import DistInfo, barrier, init_distributed, shutdown_distributed
from rdfer.utils.outputs import append_line, read_jsonl, refuse_overwriting_inputs, write_text
from rdfer.utils.runlock import run_lock

# What a run writes into its folder (see the module docstring): never one of the files it reads.
RUN_FILES = ("config.yaml", "metrics.jsonl", "final.json", "predictions.csv", "features.npy",
             "checkpoints/last.pt", "checkpoints/best.pt")


def cosine_schedule(optimizer, *, lr: float, min_lr: float, total_steps: int, warmup_steps: int):
    """Per-step cosine from `lr` to `min_lr` (after an optional linear warm-up)."""

    def factor(step: int) -> float:
        if step < warmup_steps:
            return (step + 1) / warmup_steps
        progress = min(1.0, (step - warmup_steps) / max(1, total_steps - warmup_steps))
        return (min_lr + (lr - min_lr) * 0.5 * (1 + math.cos(math.pi * progress))) / lr

    return torch.optim.lr_scheduler.LambdaLR(optimizer, factor)


def fit(config: TrainConfig, run_dir, *, resume: bool = False, stop_after_epoch: Optional[int] = None,
        progress: bool = True, on_eval: Optional[Callable] = None, on_train: Optional[Callable] = None) -> dict:
    """Train `config` into `run_dir` and return the contents of final.json.

    Args:
        resume: continue the run in `run_dir` from checkpoints/last.pt.
        stop_after_epoch: stop after this many epochs (as if killed), for tests.
        on_eval: called as on_eval(epoch, evaluate's result, test manifest) after each test pass
            (main process; `rdfer audit` keeps every epoch's held-out predictions with it).
        on_train: called as on_train(epoch, the epoch's per-sample training rows, train manifest)
            after each training epoch (main process; `rdfer audit` keeps them).

    Raises:
        RdferError: among others, another run holds `run_dir` (rdfer.utils.runlock), or the loss
            became nan or inf (the epoch and step named; checkpoints/last.pt keeps the last good epoch).
    """
    main_process = int(os.environ.get("RANK", "0")) == 0  # under torchrun, rank 0 holds the lock
    with run_lock(run_dir, "train") if main_process else contextlib.nullcontext():
        return _fit(config, run_dir, resume=resume, stop_after_epoch=stop_after_epoch, progress=progress,
                    on_eval=on_eval, on_train=on_train)


def _fit(config: TrainConfig, run_dir, *, resume: bool, stop_after_epoch: Optional[int], progress: bool,
         on_eval: Optional[Callable], on_train: Optional[Callable]) -> dict:
    run_dir = Path(run_dir)
    config = absolute_paths(config)  # the saved config.yaml must work from any folder
    device = resolve_device(config.device, "--set device=")
    dist_info = init_distributed(device.type)
    if device.type == "cuda" and dist_info.enabled:
        device = torch.device("cuda", dist_info.local_rank)
    if not resume and (run_dir / "checkpoints" / "last.pt").exists():
        raise RdferError(f"{run_dir} already holds a run: use --resume {run_dir} to continue it, or another --out")
    if resume and not (run_dir / "checkpoints" / "last.pt").exists() and (run_dir / "config.yaml").is_file():
        print(f"{run_dir} stopped before its first epoch ended: starting it from epoch 1", flush=True)
        resume = False
    if resume and (run_dir / "final.json").is_file():
        print(f"{run_dir} has already finished all its epochs: nothing to resume (results: "
              f"{run_dir / 'final.json'})", flush=True)
        return json.loads((run_dir / "final.json").read_text())
    run_log = None
    try:
        if config.threads:
            torch.set_num_threads(config.threads)
        torch.manual_seed(config.seed)
        train_manifest, test_manifest = load_manifests(config.data)
        refuse_overwriting_inputs([run_dir / name for name in RUN_FILES],
                                  [*train_manifest.inputs(), *test_manifest.inputs(), config.data.ground_truth,
                                   config.data.features])
        foreign = [name for name in (*RUN_FILES, "metrics.json") if (run_dir / name).exists()]
        if not resume and foreign and not (run_dir / "config.yaml").is_file():  # e.g. rdfer eval's folder
            raise RdferError(f"--out {run_dir} holds {', '.join(foreign[:3])} of something other than a training run "
                             "(rdfer eval's outputs?): training there would replace them; give another --out")
        train_manifest, val_manifest = split_validation(train_manifest, config.data.val_fraction, config.seed)
        classes = list(train_manifest.classes)
        check_run_settings(config, num_classes=len(classes))  # before the model is built: one line if off
        model = create_model(config.model.name, num_classes=len(classes), **config.model.options).to(device)
        model_config = model.config
        evidence = getattr(getattr(model, "detector", None), "evidence", None)
        if evidence is not None and config.loss.guide_weight == 0:
            evidence.requires_grad_(False)  # no guide loss trains it (and DDP wants every trained parameter used)
        cache = _feature_cache(config, model_config)
        loader_args = dict(num_frames=model_config.num_frames, seed=config.seed, num_workers=config.data.num_workers,
                           load_size=load_size_for(model_config.input_size, config.data.load_size),
                           skip_bad=config.data.skip_bad, cache=cache, dist_info=dist_info,
                           pin_memory=device.type == "cuda")
        train_loader = build_loader(train_manifest, train=True, batch_size=config.optim.batch_size, **loader_args)
        test_loader = build_loader(test_manifest, train=False, batch_size=config.optim.batch_size, **loader_args)
        val_loader = (build_loader(val_manifest, train=False, batch_size=config.optim.batch_size, **loader_args)
                      if len(val_manifest) else None)
        train_preset, eval_preset = _presets(config, model_config, cached=cache is not None)

        optim = config.optim
        optimizer = torch.optim.AdamW(param_groups(model, optim), lr=optim.lr, weight_decay=optim.weight_decay)
        steps = len(train_loader)
        scheduler = cosine_schedule(optimizer, lr=optim.lr, min_lr=optim.min_lr, total_steps=optim.epochs * steps,
                                    warmup_steps=optim.lr_warmup_epochs * steps)
        scaler = torch.amp.GradScaler("cuda", enabled=device.type == "cuda" and config.amp == "fp16")
        loss_fn = ReweightedLoss(config.loss, num_samples=len(train_manifest.records)).to(device)
        train_model = model
        if dist_info.enabled:
            train_model = torch.nn.parallel.DistributedDataParallel(
                model, device_ids=[device.index] if device.type == "cuda" else None)
        if config.compile:
            train_model = torch.compile(train_model)

        ground_truth = ground_truth_for(config.data, train_manifest)
        test_truth = ground_truth_for(config.data, test_manifest)
        generator = torch.Generator(device=device)
        start_epoch, best = 0, None
        if resume:
            last = run_dir / "checkpoints" / "last.pt"
            state = load_training_checkpoint(last)
            _check_resumable(last, state, config, run_dir)
            try:
                model.load_state_dict(state["model"])
                optimizer.load_state_dict(state["optimizer"])
                scheduler.load_state_dict(state["scheduler"])
                scaler.load_state_dict(state["scaler"])
                loss_fn.load_state_dict(state["loss"])
                set_rng_state(state["rng"])
            except (RuntimeError, ValueError, KeyError, TypeError, IndexError) as error:
                first = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
                raise RdferError(f"{last} does not fit the run's {config.model.name} model and settings "
                                 f"({first[:160]}); it is a checkpoint of another model or run: start a new "
                                 "run (--out) instead of --resume") from None
            start_epoch, best = state["epoch"] + 1, _reconcile_best(run_dir, state, config.save_best, dist_info)
            if dist_info.is_main:
                print(f"resuming {run_dir} after epoch {start_epoch} of {optim.epochs}", flush=True)
        if dist_info.is_main:  # a resumed run's too: it records --set data.root and the like
            run_dir.mkdir(parents=True, exist_ok=True)
            save_config(config, run_dir / "config.yaml", extra={"data": {"classes": classes}})
        if dist_info.is_main:
            _truncate_metrics(run_dir / "metrics.jsonl", keep_epochs=start_epoch)
        run_log = RunLog(run_dir, start_epoch=start_epoch, classes=classes, n1=model_config.n1,
                         wandb_project=config.wandb, config=config_to_dict(config), enabled=dist_info.is_main)
        barrier(dist_info)

        def save(epoch: int, best, improved: bool) -> None:
            """best.pt, then last.pt: a kill between the two leaves a best.pt newer than last.pt's
            record, which resume adopts (`_reconcile_best`)."""
            payload = {**model_state(model), "classes": classes, "train_config": config_to_dict(config),
                       "epoch": epoch, "optimizer": optimizer.state_dict(), "scheduler": scheduler.state_dict(),
                       "scaler": scaler.state_dict(), "loss": loss_fn.state_dict(), "rng": rng_state(),
                       "best": best}
            if improved and config.save_best:
                atomic_save(payload, run_dir / "checkpoints" / "best.pt")
            atomic_save(payload, run_dir / "checkpoints" / "last.pt")

        last_eval, last_summary = None, None
        for epoch in range(start_epoch, optim.epochs):
            started = time.time()
            train_loader.batch_sampler.sampler.set_epoch(epoch)
            # The augmentation stream of epoch e depends only on (seed, e): see rdfer/data/loader.py.
            generator.manual_seed(config.seed * 100_003 + epoch)
            desc = f"epoch {epoch + 1}/{optim.epochs}"
            try:
                stats = train_one_epoch(train_model, train_loader, train_preset, loss_fn, optimizer, scheduler,
                                        scaler, epoch=epoch, device=device, amp=config.amp, generator=generator,
                                        grad_clip=optim.grad_clip, dist_info=dist_info, desc=desc, progress=progress)
            except NonFiniteLoss as error:  # nothing of this epoch is saved: last.pt keeps the last good one
                kept = (f"checkpoints/last.pt keeps epoch {epoch}, the last good one" if epoch
                        else "no epoch had finished, so nothing was saved")
                raise RdferError(f"{run_dir}: {error} of epoch {epoch + 1} (lr {optimizer.param_groups[0]['lr']:.3g}):"
                                 f" training stopped; {kept}; lower optim.lr or set optim.grad_clip, and train "
                                 "again into a new --out") from None
            loss_fn.end_epoch()
            if on_train is not None and dist_info.is_main:
                on_train(epoch + 1, stats["rows"], train_manifest)
            record = {"epoch": epoch + 1, "lr": optimizer.param_groups[0]["lr"]}
            record.update({k: v for k, v in stats.items() if k != "rows"})
            record.update(train_metrics(stats["rows"], ground_truth, model_config.n1))
            is_last = epoch + 1 == optim.epochs
            if is_last or (epoch + 1) % config.eval_every == 0:
                try:
                    if val_loader is not None:  # the selection's evidence: training clips held out
                        val = _summary(evaluate(model, val_loader, eval_preset, device=device, amp=config.amp,
                                                dist_info=dist_info, desc=f"{desc} val", progress=progress),
                                       classes, epoch + 1)
                        record.update(val_war=val["war"], val_uar=val["uar"])
                    last_eval = evaluate(model, test_loader, eval_preset, device=device, amp=config.amp,
                                         dist_info=dist_info, desc=f"{desc} test", progress=progress)
                except RdferError as error:  # e.g. an undecodable test clip: keep this epoch's training
                    if dist_info.is_main:
                        append_line(run_dir / "metrics.jsonl", json.dumps(record))
                        save(epoch, best, improved=False)
                    raise RdferError(f"{error} (epoch {epoch + 1}'s training is saved: once that is fixed, "
                                     f"rdfer train --resume {run_dir} goes on from it)") from None
                last_summary = _summary(last_eval, classes, epoch + 1)
                if on_eval is not None and dist_info.is_main:
                    on_eval(epoch + 1, last_eval, test_manifest)
                record.update(war=last_summary["war"], uar=last_summary["uar"], **eval_metrics(last_eval),
                              **window_metrics(last_eval, test_truth, model_config.num_frames,
                                               model_config.n1 * model_config.n2, classes))
            record["time_s"] = round(time.time() - started, 2)
            improved = "war" in record and is_better(record, best)
            if improved:
                best = _selected(last_summary, record, len(val_manifest))
            if dist_info.is_main:
                append_line(run_dir / "metrics.jsonl", json.dumps(record))
                evaluated = "war" in record
                run_log.log_epoch(record, train_agreement=stats["rows"]["agreement"],
                                  test_agreement=last_eval["agreement"] if evaluated else None,
                                  confusion=last_summary["confusion"] if evaluated else None)
                save(epoch, best, improved)
                _print_epoch(record)
            if stop_after_epoch is not None and epoch + 1 >= stop_after_epoch:
                return {}
        if last_eval is None and start_epoch >= optim.epochs:
            # Killed after the last epoch's checkpoint but before final.json: evaluate its weights again.
            last_eval = evaluate(model, test_loader, eval_preset, device=device, amp=config.amp,
                                 dist_info=dist_info, desc="final test", progress=progress)
            last_summary = _summary(last_eval, classes, optim.epochs)
        final = {"last": last_summary, "best": best,
                 "selection": (f"best = the epoch with the highest WAR on the validation part ({len(val_manifest)} "
                               "training clips held out, data.val_fraction); its test figures are reported, the "
                               "test split chose nothing" if len(val_manifest) else
                               "best = the last evaluated epoch (data.val_fraction 0: no validation part)")}
        if dist_info.is_main and last_eval is not None:
            write_predictions(run_dir, test_manifest, last_eval, classes)
            write_text(run_dir / "final.json", json.dumps(final, indent=2))  # last: it marks the run done
        return final
    finally:
        if run_log is not None:
            run_log.close()
        shutdown_distributed()


def param_groups(model: torch.nn.Module, optim) -> list:
    """AdamW parameter groups: the frame encoder at `optim.encoder_lr` when that is set, the rest at `optim.lr`
    (group 0, whose lr metrics.jsonl records)."""
    if optim.encoder_lr is None:
        return [{"params": list(model.parameters())}]
    encoder = getattr(model, "encoder", None)
    if not isinstance(encoder, torch.nn.Module):
        raise RdferError(f"optim.encoder_lr is set, but model {model.config.name} has no frame encoder "
                         "(`encoder`) to give it to; drop optim.encoder_lr")
    own = {id(p) for p in encoder.parameters()}
    return [{"params": [p for p in model.parameters() if id(p) not in own]},
            {"params": list(encoder.parameters()), "lr": optim.encoder_lr}]


def _feature_cache(config: TrainConfig, model_config):
    """The `FeatureCache` of data.features, checked against the model; None without one."""
    if not config.data.features:
        return None
    cache = FeatureCache(config.data.features)
    cache.check(model_config, load_size_for(model_config.input_size, config.data.load_size))
    return cache


def _presets(config: TrainConfig, model_config, cached: bool) -> tuple:
    """(train, eval) presets. A frozen encoder trains on the eval preset's frames (no pixel
    augmentation), so that its features, and a cache of them, depend on each frame alone."""
    if cached:
        return identity_preset, identity_preset
    eval_preset = EvalPreset(size=model_config.input_size)
    if getattr(model_config, "frozen_encoder", False):
        return eval_preset, eval_preset
    return TrainPreset(size=model_config.input_size, scale=tuple(config.data.crop_scale)), eval_preset


def _reconcile_best(run_dir: Path, state: dict, save_best: bool, dist_info: DistInfo):
    """The best-epoch record to resume with, made to agree with checkpoints/best.pt.

    best.pt is written before last.pt: after a kill between the two, best.pt
    holds a newer epoch than last.pt records as best; that epoch was trained
    and evaluated, so its record is adopted. A run written in the older order
    (last.pt first) can hold a best.pt older than last.pt's record; when that
    best epoch is last.pt's own, last.pt is copied to best.pt.
    """
    best = state["best"]
    path = run_dir / "checkpoints" / "best.pt"
    if not save_best or best is None:
        return best
    stored = load_training_checkpoint(path).get("best") if path.is_file() else None
    stored_epoch = stored["epoch"] if stored else None
    if stored_epoch is not None and stored_epoch > best["epoch"]:
        if dist_info.is_main:
            print(f"resume: best.pt holds epoch {stored_epoch} (WAR {stored['war']:.2f}), written just before the "
                  f"run stopped; it stays the best epoch", flush=True)
        return stored
    if stored_epoch != best["epoch"] and best["epoch"] == state["epoch"] + 1 and dist_info.is_main:
        print(f"resume: best.pt did not hold the best epoch {best['epoch']} (the run stopped while writing it); "
              "copied it from last.pt", flush=True)
        atomic_save(state, path)
    return best


def is_better(record: dict, best) -> bool:
    """Whether an evaluated epoch's record beats the best so far: a higher validation WAR (`val_war`);
    without a validation part, every evaluated epoch (the last one ends "best"). Test figures never count."""
    if "val_war" not in record:
        return True
    if best is None or best.get("val_war") is None:
        return True
    return record["val_war"] > best["val_war"]


def _selected(test_summary: dict, record: dict, val_clips: int) -> dict:
    """The best-epoch summary: its test figures, plus what chose it."""
    if "val_war" not in record:
        return {**test_summary, "selected_on": "the last epoch, no validation part"}
    return {**test_summary, "selected_on": f"validation WAR, {val_clips} training clips held out",
            "val_war": record["val_war"], "val_uar": record["val_uar"]}


def _check_resumable(checkpoint: Path, state: dict, config: TrainConfig, run_dir: Path) -> None:
    """Stop (one line naming the keys) when the run's config.yaml is not the config its checkpoint was trained
    with, apart from what `--resume --set` may change (RESUME_OVERRIDABLE: where the data is, how it is loaded)."""
    saved = state.get("train_config")
    if not isinstance(saved, dict):  # a checkpoint from before configs were stored in it: nothing to compare
        return
    changed = config_differences(saved, config, ignore=RESUME_OVERRIDABLE)
    if changed:
        more = f" and {len(changed) - 4} more" if len(changed) > 4 else ""
        raise RdferError(f"{run_dir / 'config.yaml'} differs from the config {checkpoint} was trained with "
                         f"({'; '.join(changed[:4])}{more}); resuming would go on with other settings: restore it, "
                         f"or start a new run with --out (resume may change only {', '.join(RESUME_OVERRIDABLE)})")


def _summary(result: dict, classes: list, epoch: int) -> dict:
    summary = summarize(result["label"], result["prediction"], classes)
    summary["epoch"] = epoch
    summary["bad_frames"] = int(result["bad_frames"])
    return summary


def _truncate_metrics(path: Path, keep_epochs: int) -> None:
    """Drop lines of epochs that a resumed run repeats (the epoch it was killed in) and a line torn by a
    kill or a full disk (it is not JSON: the epoch it began is repeated)."""
    if not path.exists():
        return
    kept = [record for record in read_jsonl(path, repair=True) if record["epoch"] <= keep_epochs]
    write_text(path, "".join(json.dumps(record) + "\n" for record in kept))


def _r(record: dict, key: str) -> str:
    """A correlation of a metrics.jsonl record with its bootstrap interval: "0.61 [0.48, 0.72]"."""
    return format_interval(record.get(key), record.get(f"{key}_ci"))


def _print_epoch(record: dict) -> None:
    parts = [f"epoch {record['epoch']}", f"loss {record['train_loss']:.4f}",
             f"hard {record['hard_share']:.0%}", f"noisy {record['noisy_share']:.0%}",
             f"train acc video/clip {record['train_war']:.0%}/{record['train_clip_acc']:.0%}"]
    if "war" in record:
        if "val_war" in record:
            parts.append(f"val WAR {record['val_war']:.2f}")
        parts += [f"WAR {record['war']:.2f}", f"UAR {record['uar']:.2f}", f"clip acc {record['clip_acc']:.0%}",
                  f"majority=video {record['majority_match']:.0%}",
                  "agreement " + "/".join(f"{v:.0%}" for v in record["test_agreement"].values())]
    if record.get("mu_apex_corr") is not None:
        parts.append(f"mu~apex r {_r(record, 'mu_apex_corr')} (sd {record['mu_sd']:.3f}), "
                     f"delta {record['delta_mean']:.2f}, window on apex {record['window_on_apex']:.0%}")
    if record.get("mu_apex_corr_expression") is not None:
        parts.append(f"r over expression clips {_r(record, 'mu_apex_corr_expression')} "
                     f"(farthest-from-first control {_r(record, 'farthest_apex_corr_expression')})")
    if "noisy_precision" in record:
        parts += [f"noisy P/R {record['noisy_precision']:.2f}/{record['noisy_recall']:.2f}"]
    if record.get("small_loss_precision") is not None:
        parts += [f"(small-loss control {record['small_loss_precision']:.2f}/{record['small_loss_recall']:.2f})"]
    if record.get("memorised") is not None:
        parts.append(f"memorised {record['memorised']:.0%}")
    if record.get("bad_frames"):
        parts.append(f"{record['bad_frames']} corrupt frames replaced")
    print("  ".join(parts) + f"  ({record['time_s']:.0f}s)", flush=True)
