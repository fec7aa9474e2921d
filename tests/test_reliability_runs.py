"""Issue 11, items 2, 4, 7 and 8 (runs): no lost epoch, consistent checkpoints, safe
`rdfer eval` output, resume rules, one-line errors. Tiny synthetic runs on CPU."""

import json
import os
import shutil
from pathlib import Path

import pytest
import torch
import yaml

from rdfer.cli import main
from rdfer.config import load_config, resume_config
from rdfer.data import build_manifest
from rdfer.engine import evaluate_checkpoint, fit
from rdfer.engine.checkpoint import atomic_save
from rdfer.errors import RdferError

CONFIGS = Path(__file__).resolve().parents[1] / "src" / "rdfer" / "configs"


def config_args(root, epochs=1):
    return [f"data.root={root}", "data.num_workers=0", f"optim.epochs={epochs}", "optim.batch_size=8",
            "loss.warmup_epochs=0", "model.options.input_size=32", "device=cpu"]


def tiny(root, *extra, epochs=1):
    return load_config(CONFIGS / "demo.yaml", tuple(config_args(root, epochs)) + extra)


def _corrupt_clip(root, split, k=0):
    record = build_manifest("dfew", root, split).records[k]
    for frame in Path(record.path).iterdir():
        frame.write_bytes(b"not an image")
    return record.clip_id


def test_undecodable_train_clip_is_skipped_under_skip_bad(data, tmp_path, capsys):
    bad = _corrupt_clip(data, "train", 3)
    with pytest.raises(RdferError, match=f"clip {bad}: none of its"):
        fit(tiny(data), tmp_path / "strict", progress=False)
    final = fit(tiny(data, "data.skip_bad=true"), tmp_path / "run", progress=False)
    assert final["last"]["epoch"] == 1
    assert f"leaving out dfew train clip {bad}" in capsys.readouterr().err
    samples = json.loads((tmp_path / "run" / "metrics.jsonl").read_text().splitlines()[0])["samples"]
    from rdfer.data.manifest import split_validation

    part = split_validation(build_manifest("dfew", data, "train"), 0.1, 0)[0]  # the validation part trains on nothing
    expected = len(part) - (bad in {r.clip_id for r in part.records})
    assert samples == expected


def test_undecodable_test_clip_never_loses_the_epoch(data, tmp_path):
    bad = _corrupt_clip(data, "test", 0)
    run = tmp_path / "run"
    with pytest.raises(RdferError, match=f"clip {bad}: none of its.*epoch 1's training is saved"):
        fit(tiny(data, epochs=2), run, progress=False)
    state = torch.load(run / "checkpoints" / "last.pt", weights_only=True)
    assert state["epoch"] == 0  # the trained epoch was kept
    saved = yaml.safe_load((run / "config.yaml").read_text())
    config = resume_config(saved, ("data.skip_bad=true",), "config.yaml")
    final = fit(config, run, resume=True, progress=False)
    assert final["last"]["epoch"] == 2 and (run / "final.json").is_file()
    clips = [line.split(",")[0] for line in (run / "predictions.csv").read_text().splitlines()[1:]]
    assert bad not in clips and len(clips) == len(build_manifest("dfew", data, "test").records) - 1


def test_best_pt_is_written_before_last_pt(data, tmp_path, monkeypatch):
    import sys

    fit_module = sys.modules["rdfer.engine.fit"]  # rdfer.engine.fit is also the name of the function
    order = []

    def recording_save(payload, path):
        order.append(Path(path).name)
        atomic_save(payload, path)

    monkeypatch.setattr(fit_module, "atomic_save", recording_save)
    fit(tiny(data), tmp_path / "run", progress=False)
    assert order == ["best.pt", "last.pt"]


def _fake_checkpoint(path, epoch, best_epoch, war):
    atomic_save({"model": {}, "optimizer": {}, "rng": {}, "epoch": epoch,
                 "best": {"epoch": best_epoch, "war": war}}, path)


def test_resume_adopts_a_best_pt_newer_than_last_pt(tmp_path, capsys):
    from rdfer.utils.distributed import DistInfo
    from rdfer.engine.fit import _reconcile_best

    ckpt = tmp_path / "checkpoints"
    # Killed between best.pt (epoch 3, WAR 60) and last.pt (still epoch 2, best epoch 1).
    _fake_checkpoint(ckpt / "best.pt", epoch=2, best_epoch=3, war=60.0)
    state = {"epoch": 1, "best": {"epoch": 1, "war": 50.0}}
    assert _reconcile_best(tmp_path, state, True, DistInfo()) == {"epoch": 3, "war": 60.0}
    assert "best.pt holds epoch 3" in capsys.readouterr().out
    # The older order: last.pt (epoch 3, best 3) written, killed before best.pt (still epoch 1).
    _fake_checkpoint(ckpt / "best.pt", epoch=0, best_epoch=1, war=40.0)
    state = {"model": {}, "optimizer": {}, "rng": {}, "epoch": 2, "best": {"epoch": 3, "war": 70.0}}
    assert _reconcile_best(tmp_path, state, True, DistInfo())["epoch"] == 3
    assert torch.load(ckpt / "best.pt", weights_only=True)["best"]["epoch"] == 3


def test_killed_before_final_json_is_completed_on_resume(data, tmp_path):
    run = tmp_path / "run"
    fit(tiny(data), run, progress=False)
    expected = json.loads((run / "final.json").read_text())
    (run / "final.json").unlink()
    (run / "predictions.csv").unlink()
    final = fit(tiny(data), run, resume=True, progress=False)
    assert json.loads((run / "final.json").read_text()) == expected == final
    assert (run / "predictions.csv").is_file()


def test_resuming_a_finished_run_says_so(data, tmp_path, capsys):
    run = tmp_path / "run"
    fit(tiny(data), run, progress=False)
    capsys.readouterr()
    assert main(["train", "--resume", str(run), "--no-progress"]) == 0
    out = capsys.readouterr().out
    assert "already finished all its epochs" in out and "done: last epoch 1" in out


def test_relative_data_root_is_saved_absolute(data, tmp_path, monkeypatch):
    monkeypatch.chdir(data.parent)
    run = tmp_path / "run"
    fit(tiny(Path(data.name)), run, progress=False)
    saved = yaml.safe_load((run / "config.yaml").read_text())
    assert saved["data"]["root"] == str(data.resolve())
    monkeypatch.chdir(tmp_path / "run")  # eval from another folder finds the data
    metrics = evaluate_checkpoint(run / "checkpoints" / "last.pt", tmp_path / "eval", num_workers=0, progress=False)
    assert metrics["clips"] == len(build_manifest("dfew", data, "test").records)


def test_resume_refuses_out_config_and_training_overrides(data, tmp_path, capsys):
    run = tmp_path / "run"
    fit(tiny(data), run, stop_after_epoch=1, progress=False)
    for extra, expected in ((["--out", str(tmp_path / "other")], "argument --out: not allowed with argument --resume"),
                            (["--config", "demo"], "--config cannot be used with it"),
                            (["--set", "optim.lr=1"], "optim.lr cannot change when resuming")):
        assert main(["train", "--resume", str(run), *extra]) == 2
        err = capsys.readouterr().err
        assert err.count("\n") == 1
        assert __import__("re").search(expected, err), err


def test_resume_applies_a_moved_data_root(data, tmp_path):
    run = tmp_path / "run"
    fit(tiny(data, epochs=2), run, stop_after_epoch=1, progress=False)
    moved = tmp_path / "moved"
    os.rename(data, moved)
    assert main(["train", "--resume", str(run), "--set", f"data.root={moved}", "--no-progress"]) == 0
    assert yaml.safe_load((run / "config.yaml").read_text())["data"]["root"] == str(moved)
    assert json.loads((run / "final.json").read_text())["last"]["epoch"] == 2


@pytest.fixture()
def trained(data, tmp_path):
    run = tmp_path / "run"
    fit(tiny(data), run, progress=False)
    return run


@pytest.mark.parametrize("content", [b"", b"not a checkpoint", "truncated", "pickle"])
def test_eval_corrupt_checkpoint_is_one_line(trained, tmp_path, capsys, content):
    bad = tmp_path / "bad.pt"
    if content == "truncated":
        data = (trained / "checkpoints" / "last.pt").read_bytes()
        bad.write_bytes(data[: len(data) // 2])
    elif content == "pickle":
        torch.save({"model": {}, "x": Path("/")}, bad)  # a Python object weights_only refuses
    else:
        bad.write_bytes(content)
    assert main(["eval", "--checkpoint", str(bad), "--out", str(tmp_path / "eval")]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"rdfer eval: error: checkpoint {bad} cannot be read: ") and err.count("\n") == 1
    assert "weights_only=False" not in err and "Traceback" not in err


def test_eval_checks_out_before_the_pass(trained, tmp_path, monkeypatch, capsys):
    import rdfer.engine.evaluation as evaluation

    monkeypatch.setattr(evaluation, "evaluate", lambda *a, **k: pytest.fail("evaluated before checking --out"))
    a_file = tmp_path / "a_file"
    a_file.write_text("x")
    checkpoint = str(trained / "checkpoints" / "last.pt")
    assert main(["eval", "--checkpoint", checkpoint, "--out", str(a_file)]) == 2
    assert "is a file" in capsys.readouterr().err
    assert main(["eval", "--checkpoint", checkpoint, "--out", str(a_file / "eval")]) == 2
    assert "cannot be written" in capsys.readouterr().err
    locked = tmp_path / "locked"
    locked.mkdir()
    locked.chmod(0o500)
    if not os.access(locked, os.W_OK):  # (root ignores permissions: then only the case above counts)
        assert main(["eval", "--checkpoint", checkpoint, "--out", str(locked / "eval")]) == 2
        assert "cannot be written" in capsys.readouterr().err


def test_eval_into_the_run_never_replaces_its_test_predictions(trained, capsys):
    before = (trained / "predictions.csv").read_bytes()
    code = main(["eval", "--checkpoint", str(trained / "checkpoints" / "last.pt"), "--out", str(trained),
                 "--split", "train", "--workers", "0", "--no-progress"])
    assert code == 2 and "training run folder" in capsys.readouterr().err
    assert (trained / "predictions.csv").read_bytes() == before


def test_eval_into_another_splits_folder_is_refused(trained, tmp_path, capsys):
    checkpoint = str(trained / "checkpoints" / "last.pt")
    out = str(tmp_path / "eval")
    assert main(["eval", "--checkpoint", checkpoint, "--out", out, "--workers", "0", "--no-progress"]) == 0
    capsys.readouterr()
    assert main(["eval", "--checkpoint", checkpoint, "--out", out, "--split", "train", "--workers", "0"]) == 2
    assert "holds the evaluation of split 'test'" in capsys.readouterr().err


def test_argparse_errors_are_one_line_exit_2(capsys):
    assert main(["train", "--out", "run", "--no-such-option"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("rdfer train: error: unrecognized arguments: --no-such-option")
    assert main(["eval", "--batch-size", "many"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("rdfer eval: error: argument --batch-size: 'many' is not an integer")


def test_resume_of_a_run_killed_in_its_first_epoch_starts_it(data, tmp_path, capsys):
    run = tmp_path / "run"
    fit(tiny(data), run, stop_after_epoch=1, progress=False)
    shutil.rmtree(run / "checkpoints")  # as if killed before the first checkpoint
    capsys.readouterr()
    assert main(["train", "--resume", str(run), "--no-progress"]) == 0
    assert "stopped before its first epoch ended: starting it from epoch 1" in capsys.readouterr().out
    assert (run / "final.json").is_file() and len((run / "metrics.jsonl").read_text().splitlines()) == 1


def test_eval_with_a_bad_split_leaves_no_folder(trained, tmp_path, capsys):
    out = tmp_path / "eval"
    assert main(["eval", "--checkpoint", str(trained / "checkpoints" / "last.pt"), "--out", str(out),
                 "--split", "val"]) == 2
    assert "unknown split 'val'" in capsys.readouterr().err and not out.exists()
