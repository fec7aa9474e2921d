"""Live training curves: TensorBoard event files read back with TensorBoard's own reader; wandb on request;
progress bars off when the output is not a terminal."""

import io
import json
import shutil
import sys
import types
from pathlib import Path

import numpy as np
import pytest
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

from rdfer.config import load_config
from rdfer.engine import fit
from rdfer.engine.run_log import RunLog, scalar_tags
from rdfer.errors import RdferError
from rdfer.utils.progress import progress_bar

CONFIGS = Path(__file__).resolve().parents[1] / "src" / "rdfer" / "configs"


def events(run: Path) -> EventAccumulator:
    accumulator = EventAccumulator(str(run), size_guidance={"scalars": 0, "histograms": 0, "images": 0})
    accumulator.Reload()
    return accumulator


def test_training_curves_hold_every_metric_once_per_epoch_across_a_killed_and_resumed_run(
        tiny_dfew, tmp_path, capsys):
    config = load_config(CONFIGS / "demo.yaml", (
        f"data.root={tiny_dfew}", "data.num_workers=0", "optim.epochs=3", "optim.batch_size=8",
        "loss.warmup_epochs=1", "model.options.input_size=32"))
    run = tmp_path / "run"
    fit(config, run, stop_after_epoch=1, progress=True)
    epoch_1 = tmp_path / "last_after_epoch_1.pt"
    shutil.copy(run / "checkpoints" / "last.pt", epoch_1)
    fit(config, run, resume=True, stop_after_epoch=2, progress=True)
    # A kill after epoch 2's curves were written but before its checkpoint: resume repeats epoch 2.
    shutil.copy(epoch_1, run / "checkpoints" / "last.pt")
    fit(config, run, resume=True, progress=True)

    # stderr is not a terminal here (captured): no progress bar may land in it.
    captured = capsys.readouterr()
    assert "epoch 1/3" not in captured.err and "it/s" not in captured.err
    assert "epoch 3" in captured.out  # the per-epoch lines still print

    records = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    assert [r["epoch"] for r in records] == [1, 2, 3]
    board = events(run)
    tags = board.Tags()
    for tag in ("train/loss", "train/war", "train/clip_acc", "train/hard_share", "train/noisy_share",
                "train/memorised", "train/noisy_precision", "test/war", "test/uar", "test/clip_acc", "run/lr"):
        assert tag in tags["scalars"], tag
        steps = [e.step for e in board.Scalars(tag)]
        assert steps == [1, 2, 3], (tag, steps)  # each epoch once: the killed epoch 2 was purged
    # Every number of metrics.jsonl is a scalar, with its value (as float32).
    for record in records:
        for tag, value in scalar_tags(record).items():
            logged = {e.step: e.value for e in board.Scalars(tag)}
            assert logged[record["epoch"]] == pytest.approx(value, rel=1e-5, abs=1e-6), tag
    # Agreement histograms per epoch: counts per level add up to the samples; test histogram = its shares.
    for tag in ("train/agreement", "test/agreement"):
        assert [e.step for e in board.Histograms(tag)] == [1, 2, 3], tag
    train_hist = board.Histograms("train/agreement")[-1].histogram_value
    assert train_hist.num == records[-1]["samples"]
    test_hist = board.Histograms("test/agreement")[-1].histogram_value
    shares = np.array(test_hist.bucket)[np.array(test_hist.bucket) > 0] / test_hist.num
    expected = np.array([s for s in records[-1]["test_agreement"].values() if s > 0])
    assert shares == pytest.approx(expected)
    images = board.Images("test/confusion")
    assert [e.step for e in images] == [1, 2, 3] and images[-1].width > 100 and images[-1].height > 100


def test_scalar_tags_group_train_test_and_run_values_and_skip_the_rest():
    record = {"epoch": 4, "lr": 1e-3, "train_loss": 1.5, "hard_share": 0.2, "war": 50.0, "memorised": None,
              "test_agreement": {"0.25": 1.0}, "time_s": 3.0, "note": "text",
              "hard_kinds": {"mixed": {"n": 3, "zeroed": None, "upweighted": 0.5}}}
    assert scalar_tags(record) == {"run/lr": 1e-3, "train/loss": 1.5, "train/hard_share": 0.2, "test/war": 50.0,
                                   "test/agreement/0.25": 1.0, "run/time_s": 3.0,
                                   "train/hard_kinds/mixed/n": 3, "train/hard_kinds/mixed/upweighted": 0.5}


def test_a_run_log_that_is_not_enabled_writes_nothing(tmp_path):
    run_log = RunLog(tmp_path, start_epoch=0, classes=["a", "b"], n1=4, enabled=False)
    run_log.log_epoch({"epoch": 1, "train_loss": 1.0}, train_agreement=np.ones(3))
    run_log.close()
    assert list(tmp_path.iterdir()) == []


def test_wandb_is_imported_only_when_asked_and_missing_wandb_is_one_line(tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "wandb", None)  # `import wandb` raises ImportError
    RunLog(tmp_path / "off", start_epoch=0, classes=["a"], n1=4).close()  # off by default: no import
    with pytest.raises(RdferError, match="pip install wandb") as error:
        RunLog(tmp_path / "on", start_epoch=0, classes=["a"], n1=4, wandb_project="dfer")
    assert "\n" not in str(error.value)


def test_wandb_gets_the_scalars_and_histograms_and_a_resumed_run_keeps_its_id(tmp_path, monkeypatch):
    calls = []
    fake = types.ModuleType("wandb")
    fake.util = types.SimpleNamespace(generate_id=lambda: f"id{len(calls)}")
    fake.init = lambda **kw: calls.append(("init", kw))
    fake.log = lambda data, step: calls.append(("log", data, step))
    fake.finish = lambda: calls.append(("finish",))
    fake.Histogram = lambda values, num_bins: ("histogram", len(values), num_bins)
    monkeypatch.setitem(sys.modules, "wandb", fake)
    for start in (0, 1):
        run_log = RunLog(tmp_path, start_epoch=start, classes=["a", "b"], n1=4, wandb_project="dfer",
                         config={"seed": 0})
        run_log.log_epoch({"epoch": start + 1, "train_loss": 0.5, "war": 40.0}, train_agreement=np.full(6, 0.75),
                          test_agreement=np.full(2, 1.0), confusion=[[1, 0], [0, 1]])
        run_log.close()
    inits = [c[1] for c in calls if c[0] == "init"]
    assert inits[0]["project"] == "dfer" and inits[0]["id"] == inits[1]["id"] and inits[1]["resume"] == "allow"
    logs = [c for c in calls if c[0] == "log"]
    assert logs[1][2] == 2 and logs[1][1]["train/loss"] == 0.5 and logs[1][1]["test/war"] == 40.0
    assert logs[1][1]["train/agreement"] == ("histogram", 6, 4)


class _Terminal(io.StringIO):
    def isatty(self):
        return True


def test_progress_bars_draw_on_a_terminal_only():
    for stream, drawn in ((io.StringIO(), False), (_Terminal(), True)):
        for _ in progress_bar(range(3), desc="work", file=stream):
            pass
        assert ("work" in stream.getvalue()) == drawn
    quiet = _Terminal()
    for _ in progress_bar(range(3), enabled=False, desc="work", file=quiet):
        pass
    assert quiet.getvalue() == ""
