"""Engine: config, a real short training run, resume equivalence, DDP, eval, cv, bench."""

import csv
import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml

from rdfer.config import load_config
from rdfer.engine import evaluate_checkpoint, fit, run_cv
from rdfer.engine.fit import cosine_schedule
from rdfer.data.loader import EpochSampler
from rdfer.errors import RdferError
from rdfer.metrics import summarize

CONFIGS = Path(__file__).resolve().parents[1] / "src" / "rdfer" / "configs"


def tiny_config(root, *extra):
    """rdfer_tiny at 32 px on CPU, two epochs (one warm-up): the recipe's code paths in seconds."""
    return load_config(CONFIGS / "demo.yaml", (
        f"data.root={root}", "data.num_workers=0", "optim.epochs=2", "optim.batch_size=8",
        "loss.warmup_epochs=1", "model.options.input_size=32", *extra))


def read_jsonl(path):
    return [json.loads(line) for line in Path(path).read_text().splitlines()]


def test_every_shipped_config_loads_and_names_a_registered_model():
    from rdfer.models import list_models

    models = set(list_models())
    files = sorted(CONFIGS.glob("*.yaml"))
    assert len(files) >= 20
    for path in files:
        config = load_config(path)
        assert config.model.name in models, f"{path.name} names unknown model {config.model.name}"
    paper = load_config(CONFIGS / "dfew_rdfer_plus_r50.yaml")
    assert (paper.optim.epochs, paper.optim.batch_size, paper.optim.lr, paper.optim.min_lr) == (100, 128, 7e-4, 7e-6)
    assert (paper.loss.t_h, paper.loss.t_n, paper.loss.w_hard, paper.loss.warmup_epochs) == (0.2, 0.1, 1.5, 10)


def test_config_overrides_and_errors(tmp_path):
    config = load_config(CONFIGS / "demo.yaml", ("optim.lr=0.5", "model.options.resample=false"))
    assert config.optim.lr == 0.5 and config.model.options["resample"] is False
    assert config.model.options["encoder"] == "mini_xception"  # the file's other options are kept
    with pytest.raises(RdferError, match="optim.learning_rate"):
        load_config(CONFIGS / "demo.yaml", ("optim.learning_rate=1",))
    with pytest.raises(RdferError, match="not found"):
        load_config(tmp_path / "missing.yaml")
    with pytest.raises(RdferError, match="strategy"):
        load_config(None, ("loss.strategy=magic",))


def test_cosine_schedule_runs_from_lr_to_min_lr():
    param = torch.nn.Parameter(torch.zeros(1))
    optimizer = torch.optim.AdamW([param], lr=1e-3)
    scheduler = cosine_schedule(optimizer, lr=1e-3, min_lr=1e-5, total_steps=10, warmup_steps=0)
    lrs = []
    for _ in range(10):
        lrs.append(optimizer.param_groups[0]["lr"])
        optimizer.step()
        scheduler.step()
    assert lrs[0] == pytest.approx(1e-3)
    assert all(a > b for a, b in zip(lrs, lrs[1:]))
    assert optimizer.param_groups[0]["lr"] == pytest.approx(1e-5)


def test_epoch_sampler_shards_are_disjoint_and_repeatable():
    shards = [list(EpochSampler(10, seed=1, shuffle=True, rank=r, world_size=3)) for r in range(3)]
    indices = [i for shard in shards for _, i in shard]
    assert len(indices) == 9 and len(set(indices)) == 9  # remainder dropped, equal shards
    again = EpochSampler(10, seed=1, shuffle=True)
    first = list(again)
    again.set_epoch(1)
    assert list(EpochSampler(10, seed=1, shuffle=True)) == first and list(again) != first
    eval_shards = [[i for _, i in EpochSampler(10, 0, False, r, 3)] for r in range(3)]
    assert sorted(i for s in eval_shards for i in s) == list(range(10))  # every clip once


def test_validation_part_is_stratified_seeded_and_disjoint(tiny_dfew):
    from rdfer.data import build_manifest
    from rdfer.data.manifest import split_validation

    train = build_manifest("dfew", tiny_dfew, "train", fold=1)
    kept, val = split_validation(train, 0.25, seed=4)
    assert len(val) == round(0.25 * len(train)) and len(kept) + len(val) == len(train)
    assert not {r.clip_id for r in kept.records} & {r.clip_id for r in val.records}
    # Stratified: each class gives its share, give or take the one clip of rounding.
    for name, count in train.class_counts().items():
        assert abs(val.class_counts()[name] - 0.25 * count) < 1 and (count == 0 or kept.class_counts()[name] >= 1)
    assert split_validation(train, 0.25, seed=4)[1].records == val.records
    assert split_validation(train, 0.25, seed=5)[1].records != val.records
    whole, nothing = split_validation(train, 0.0, seed=4)
    assert whole is train and len(nothing) == 0


def test_best_epoch_is_chosen_on_validation_never_on_test(tiny_dfew, tmp_path, monkeypatch):
    # Validation and test disagree: epoch 1 is perfect on test and wrong on validation, epoch 2 the
    # reverse. The best epoch must be 2 (validation), whose test WAR is 0.
    import importlib

    fit_module = importlib.import_module("rdfer.engine.fit")  # rdfer.engine.fit is also the function
    real = fit_module.evaluate

    def scripted(model, loader, preset, *, desc, **kwargs):
        result = real(model, loader, preset, desc=desc, **kwargs)
        epoch = int(desc.split()[1].split("/")[0])
        right = (epoch == 1) == desc.endswith("test")
        result["prediction"] = result["label"] if right else (result["label"] + 1) % 7
        return result

    monkeypatch.setattr(fit_module, "evaluate", scripted)
    final = fit(tiny_config(tiny_dfew, "data.val_fraction=0.2"), tmp_path / "run", progress=False)
    epochs = read_jsonl(tmp_path / "run" / "metrics.jsonl")
    assert [(e["val_war"], e["war"]) for e in epochs] == [(0.0, 100.0), (100.0, 0.0)]
    assert final["best"]["epoch"] == 2 and final["best"]["war"] == 0.0 and final["best"]["val_war"] == 100.0
    assert "validation" in final["best"]["selected_on"] and "validation" in final["selection"]
    saved = torch.load(tmp_path / "run" / "checkpoints" / "best.pt", weights_only=True)
    assert saved["epoch"] == 1  # 0-based: best.pt holds the second epoch's weights
    # Without a validation part, the last epoch is "best", whatever the test split says.
    final = fit(tiny_config(tiny_dfew, "data.val_fraction=0", "optim.epochs=2"), tmp_path / "none", progress=False)
    assert final["best"]["epoch"] == 2 and final["best"]["selected_on"].startswith("the last epoch")
    assert "val_war" not in read_jsonl(tmp_path / "none" / "metrics.jsonl")[0]


def test_short_training_run_writes_every_file(tiny_dfew, tmp_path):
    run = tmp_path / "run"
    final = fit(tiny_config(tiny_dfew), run, progress=False)
    for name in ("config.yaml", "metrics.jsonl", "final.json", "predictions.csv", "features.npy",
                 "checkpoints/last.pt", "checkpoints/best.pt"):
        assert (run / name).is_file(), name
    epochs = read_jsonl(run / "metrics.jsonl")
    assert [e["epoch"] for e in epochs] == [1, 2]
    for key in ("train_loss", "war", "uar", "hard_share", "noisy_share", "noisy_precision", "noisy_recall"):
        assert all(key in e for e in epochs), key
    # After warm-up the agreement strategy marks ~t_n of each batch noisy.
    assert epochs[-1]["noisy_share"] > 0
    saved = yaml.safe_load((run / "config.yaml").read_text())
    assert saved["data"]["classes"][0] == "Happy" and saved["optim"]["epochs"] == 2

    # final.json's last epoch is exactly what predictions.csv says.
    with open(run / "predictions.csv") as f:
        rows = list(csv.DictReader(f))
    labels = np.array([int(r["label"]) for r in rows])
    preds = np.array([int(r["prediction"]) for r in rows])
    recomputed = summarize(labels, preds, saved["data"]["classes"])
    on_disk = json.loads((run / "final.json").read_text())
    assert on_disk["last"]["war"] == pytest.approx(recomputed["war"])
    assert on_disk["last"]["uar"] == pytest.approx(recomputed["uar"])
    # "best" is the epoch with the highest validation WAR (ties: the earlier), scored on the test split.
    val_best = max(epochs, key=lambda e: (e["val_war"], -e["epoch"]))
    assert on_disk["best"]["epoch"] == val_best["epoch"] and on_disk["best"]["val_war"] == val_best["val_war"]
    assert on_disk["best"]["war"] == val_best["war"] and on_disk["best"]["selected_on"].startswith("validation")
    assert final["last"]["war"] == on_disk["last"]["war"]
    assert np.load(run / "features.npy").shape[0] == len(rows)
    probs = np.array([[float(r[k]) for k in r if k.startswith("p_")] for r in rows])
    assert probs.shape[1] == 7 and np.allclose(probs.sum(1), 1, atol=1e-3)
    assert {r["agreement"] for r in rows} <= {"0.25", "0.50", "0.75", "1.00"}
    assert all(r["mu"] != "" for r in rows)  # rdfer_tiny re-samples: mu/delta are reported

    # A checkpoint loads with weights_only=True and evaluates to the same predictions.
    state = torch.load(run / "checkpoints" / "last.pt", map_location="cpu", weights_only=True)
    assert state["epoch"] == 1 and state["classes"][0] == "Happy"
    metrics = evaluate_checkpoint(run / "checkpoints" / "last.pt", tmp_path / "eval", num_workers=0,
                                  progress=False)
    assert metrics["war"] == pytest.approx(on_disk["last"]["war"])
    with open(tmp_path / "eval" / "predictions.csv") as f:
        assert [r["prediction"] for r in csv.DictReader(f)] == [r["prediction"] for r in rows]

    with pytest.raises(RdferError, match="--resume"):
        fit(tiny_config(tiny_dfew), run, progress=False)


def test_resumed_run_equals_uninterrupted_run(tiny_dfew, tmp_path):
    config = tiny_config(tiny_dfew, "data.num_workers=1")
    fit(config, tmp_path / "straight", progress=False)
    fit(config, tmp_path / "killed", stop_after_epoch=1, progress=False)
    assert len(read_jsonl(tmp_path / "killed" / "metrics.jsonl")) == 1
    # A kill in the middle of epoch 2 leaves a metrics line that the resumed run must replace.
    with open(tmp_path / "killed" / "metrics.jsonl", "a") as f:
        f.write(json.dumps({"epoch": 2, "partial": True}) + "\n")
    fit(config, tmp_path / "killed", resume=True, progress=False)

    a = torch.load(tmp_path / "straight" / "checkpoints" / "last.pt", weights_only=True)
    b = torch.load(tmp_path / "killed" / "checkpoints" / "last.pt", weights_only=True)
    assert a["model"].keys() == b["model"].keys()
    for key in a["model"]:
        assert torch.equal(a["model"][key], b["model"][key]), key
    strip = lambda rows: [{k: v for k, v in r.items() if k != "time_s"} for r in rows]  # noqa: E731
    assert strip(read_jsonl(tmp_path / "straight" / "metrics.jsonl")) == \
        strip(read_jsonl(tmp_path / "killed" / "metrics.jsonl"))
    assert json.loads((tmp_path / "straight" / "final.json").read_text()) == \
        json.loads((tmp_path / "killed" / "final.json").read_text())


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.mark.parametrize("guide_weight", ["1", "0"])  # 0: the detector's evidence head is left out of training
def test_ddp_two_cpu_processes_cover_the_whole_test_set(tiny_dfew, tmp_path, guide_weight):
    run = tmp_path / "ddp"
    cmd = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node=2", "--master_addr=127.0.0.1",
           f"--master_port={_free_port()}", "-m", "rdfer", "train", "--config", str(CONFIGS / "demo.yaml"),
           "--out", str(run), "--no-progress", "--set", f"data.root={tiny_dfew}", "--set", "data.num_workers=0",
           "--set", "optim.epochs=2", "--set", "optim.batch_size=8", "--set", "loss.warmup_epochs=0",
           "--set", "model.options.input_size=32", "--set", f"loss.guide_weight={guide_weight}"]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=300, env=env)
    assert done.returncode == 0, done.stderr[-3000:]
    with open(run / "predictions.csv") as f:
        rows = list(csv.DictReader(f))
    from rdfer.data import build_manifest

    test_clips = build_manifest("dfew", tiny_dfew, "test", fold=1).records
    assert sorted(r["clip_id"] for r in rows) == sorted(c.clip_id for c in test_clips)  # each once
    final = json.loads((run / "final.json").read_text())
    labels = np.array([int(r["label"]) for r in rows])
    preds = np.array([int(r["prediction"]) for r in rows])
    assert final["last"]["war"] == pytest.approx(summarize(labels, preds, final["last"]["per_class"])["war"])
    epochs = read_jsonl(run / "metrics.jsonl")
    from rdfer.data.manifest import split_validation

    train_clips = len(split_validation(build_manifest("dfew", tiny_dfew, "train", fold=1), 0.1, 0)[0])
    per_rank = train_clips // 2 // 4 * 4  # each rank's shard in full batches of 8 / 2 (drop_last under DDP)
    assert epochs[0]["samples"] == 2 * per_rank  # both ranks' samples counted
    assert all("val_war" in e for e in epochs)  # the validation part is scored under DDP too
    assert done.stdout.count("done:") == 1  # only rank 0 prints
    assert len(list(run.glob("events.out.tfevents.*"))) == 1  # only rank 0 writes TensorBoard events


def test_cv_reports_each_fold_and_keeps_finished_folds(tiny_dfew, tmp_path, capsys):
    config = tiny_config(tiny_dfew, "optim.epochs=1")
    summary = run_cv(config, tmp_path / "cv", folds=(1, 2), progress=False)
    assert set(summary["folds"]) == {"1", "2"}
    wars = [summary["folds"][f]["last_war"] for f in ("1", "2")]
    assert summary["mean"]["last_war"] == pytest.approx(np.mean(wars))
    assert summary["std"]["last_war"] == pytest.approx(np.std(wars, ddof=1))
    half = 12.706204736 * np.std(wars, ddof=1) / np.sqrt(2)  # t(0.975, 1 df) from a table
    assert summary["ci95"]["last_war"] == pytest.approx([np.mean(wars) - half, np.mean(wars) + half])
    assert "mean ± sample sd" in (tmp_path / "cv" / "cv_summary.md").read_text()
    run_cv(config, tmp_path / "cv", folds=(1, 2), progress=False)
    assert capsys.readouterr().out.count("already finished") == 2


def test_bench_train_prints_both_figures_and_their_ratio(tiny_dfew, capsys):
    from rdfer.engine.bench import bench_train

    result = bench_train("rdfer_tiny", {"input_size": 32}, batch_size=4, steps=2, warmup=1, root=str(tiny_dfew),
                         num_workers=0, device="cpu")
    out = capsys.readouterr().out
    assert "(a) synthetic tensors" in out and "(b) real loader" in out and "ratio b/a" in out
    assert result["ratio"] == pytest.approx(result["loader_clips_per_s"] / result["synthetic_clips_per_s"])
    assert result["frames"] == 64


def test_curate_ranks_confident_disagreement_as_mislabelled(tmp_path):
    from rdfer.audit.curate import curate

    classes = ["Happy", "Sad"]
    # (clip, label, p_Happy, agreement): clip 3 is confidently Sad with 4 agreeing clips but labelled Happy.
    table = [("1", 0, 0.9, 1.0), ("2", 1, 0.2, 1.0), ("3", 0, 0.05, 1.0), ("4", 0, 0.6, 0.5),
             ("5", 1, 0.3, 0.75), ("6", 0, 0.7, 1.0), ("7", 1, 0.1, 1.0), ("8", 0, 0.8, 0.75),
             ("9", 1, 0.45, 0.25), ("10", 0, 0.9, 1.0)]
    path = tmp_path / "predictions.csv"
    with open(path, "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["clip_id", "path", "label", "prediction", "agreement", "mu", "delta", "p_Happy", "p_Sad"])
        for clip, label, p_happy, agree in table:
            writer.writerow([clip, "", label, int(p_happy < 0.5), agree, "", "", p_happy, 1 - p_happy])
    gt = tmp_path / "ground_truth.csv"
    gt.write_text("video_name,true_label,given_label,is_noisy,is_hard,apex_start,apex_end\n"
                  + "".join(f"{c},1,1,{int(c == '3')},0,0,1\n" for c, *_ in table))
    summary = curate([path], tmp_path / "out", t_h=0.2, t_n=0.1, ground_truth=gt)
    with open(tmp_path / "out" / "suspected_mislabelled.csv") as f:
        suspects = list(csv.DictReader(f))
    assert [r["clip_id"] for r in suspects] == ["3"] and suspects[0]["predicted"] == "Sad"
    with open(tmp_path / "out" / "hard.csv") as f:
        assert [r["clip_id"] for r in csv.DictReader(f)] == ["9", "4"]  # lowest agreement first
    assert (summary["noisy_precision"], summary["noisy_recall"]) == (1.0, 1.0)
    with pytest.raises(RdferError, match="not found"):
        curate([tmp_path / "nope.csv"], tmp_path / "out")


def test_rdfer_curate_is_a_deprecated_alias_that_still_runs(tmp_path, capsys):
    from rdfer.cli import main

    path = tmp_path / "predictions.csv"
    rows = ["clip_id,path,label,prediction,agreement,mu,delta,p_Happy,p_Sad"]
    rows += [f"c{i},,{i % 2},{i % 2},1.0,,,{0.9 - 0.8 * (i % 2)},{0.1 + 0.8 * (i % 2)}" for i in range(10)]
    path.write_text("\n".join(rows) + "\n")
    assert main(["curate", "--predictions", str(path), "--out", str(tmp_path / "out")]) == 0
    captured = capsys.readouterr()
    deprecations = [line for line in captured.err.splitlines() if "deprecated" in line]
    assert len(deprecations) == 1 and "rdfer audit" in deprecations[0]
    assert "10 clips judged" in captured.out and (tmp_path / "out" / "suspected_mislabelled.csv").is_file()


def test_demo_pipeline_end_to_end_and_reuses_finished_work(tmp_path, capsys):
    from rdfer.demo import run_demo

    overrides = ("optim.epochs=1", "optim.batch_size=8", "loss.warmup_epochs=0")
    report = run_demo(tmp_path / "demo", overrides=overrides, clips=30)
    text = report.read_text()
    assert "vanilla_ce" in text and "agreement" in text and "WAR" in text and "clip acc" in text
    assert "rdfer study --out DIR" in text  # one seed decides nothing: the report points to the study
    for name in ("vanilla_ce", "agreement"):
        assert (tmp_path / "demo" / "runs" / name / "report.md").is_file()
        assert f"runs/{name}/report.md" in text
        assert f"runs/{name}/report_files/agreement_histograms.png" in text
        assert (tmp_path / "demo" / "runs" / name / "report_files" / "agreement_histograms.png").is_file()
    ce = read_jsonl(tmp_path / "demo" / "runs" / "vanilla_ce" / "metrics.jsonl")
    assert len(ce) == 1 and "noisy_precision" in ce[0]  # the synthetic ground truth was found
    assert "memorised" in ce[0] and "test_agreement" in ce[0] and "clip_acc" in ce[0]
    assert (tmp_path / "demo" / "data" / "features.npz").is_file()  # trained from the feature cache
    # The verdict line compares the best last-epoch WAR with always answering the largest class.
    labels = [int(r["label"]) for r in csv.DictReader(open(tmp_path / "demo" / "runs" / "vanilla_ce" / "predictions.csv"))]
    majority = 100 * max(labels.count(c) for c in set(labels)) / len(labels)
    best_war = max(json.loads((tmp_path / "demo" / "runs" / n / "final.json").read_text())["last"]["war"]
                   for n in ("vanilla_ce", "agreement"))
    assert f"{majority:.1f}% WAR" in text
    assert "recall cannot exceed about 50%" in text  # t_n = 10% of each batch marked, 20% flipped
    assert "marks the 10% of each batch it ranks noisiest" in text
    # The paired comparison is rdfer compare's, on the same two runs, in the report and in compare.json.
    from rdfer.analysis.compare import compare_pair, format_comparison

    paired = compare_pair(tmp_path / "demo" / "runs" / "vanilla_ce", tmp_path / "demo" / "runs" / "agreement")
    assert format_comparison(paired) in text
    saved = json.loads((tmp_path / "demo" / "compare" / "compare.json").read_text())
    assert saved["war_diff"] == pytest.approx(paired["war_diff"]) and saved["mcnemar_p"] == pytest.approx(paired["mcnemar_p"])
    assert ("**Read with care**" in text) == (best_war < majority + 5)
    assert ("within test-set noise" in text) == (best_war >= majority + 5)
    assert yaml.safe_load((tmp_path / "demo" / "runs" / "agreement" / "config.yaml").read_text())["loss"][
        "strategy"] == "agreement"
    capsys.readouterr()
    run_demo(tmp_path / "demo", overrides=overrides)
    out = capsys.readouterr().out
    assert "reusing the synthetic benchmark" in out and out.count("reusing the finished run") == 2


def test_demo_verdict_warns_below_majority_and_states_test_noise_above():
    from rdfer.demo import _verdict

    labels = [0] * 40 + [1] * 30 + [2] * 30  # the largest class alone gives 40% WAR
    assert "**Read with care**" in _verdict(44.0, labels) and "40.0% WAR" in _verdict(44.0, labels)
    assert "40.0% WAR of always answering" in _verdict(64.0, labels)
    learned = _verdict(64.0, labels)
    assert "Read with care" not in learned
    # Two binomial standard errors at 64% WAR on 100 clips: 2 * sqrt(0.64 * 0.36 / 100) = 9.6 points.
    assert "on 100 test clips a war difference under about 9.6 points" in learned.lower()
