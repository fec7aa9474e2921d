"""`rdfer study`: the Table IV strategies under known noise, end to end on a tiny scale."""

import csv

import pytest

from rdfer.cli import main
from rdfer.engine.study import SETTINGS, run_study
from rdfer.errors import RdferError
from rdfer.utils.ground_truth import KIND_COLUMNS


def test_tiny_study_writes_table_csv_and_plot_and_reuses_runs(tmp_path, capsys):
    out = tmp_path / "study"
    overrides = ("optim.epochs=2", "loss.warmup_epochs=1", "optim.batch_size=16")
    report = run_study(out, jobs=1, seeds=(0, 1), strategies=("ce", "agreement"), overrides=overrides, clips=60,
                       progress=False)
    text = report.read_text()
    for setting in ("20% symmetric noise", "40% symmetric noise", "30% pair noise"):
        assert f"## {setting}" in text
    with open(out / "study.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    assert len(rows) == len(SETTINGS) * 2 * 2  # settings x strategies x seeds
    assert {r["epochs"] for r in rows} == {"2"}
    # Vanilla CE weights nothing 0: its w=0 columns are empty, never a made-up number.
    ce_rows = [r for r in rows if r["strategy"] == "ce"]
    assert all(r["zeroed_precision"] == "" for r in ce_rows)
    agreement_rows = [r for r in rows if r["strategy"] == "agreement"]
    assert all(r["zeroed_precision"] != "" for r in agreement_rows)  # t_n of each batch is weighted 0
    table_rows = [line for line in text.splitlines() if line.startswith("| ce |")]
    assert len(table_rows) == 6 and " - |" in table_rows[0]  # 3 main tables, 3 of the hard kinds
    # Per hard kind: CE weights no clip of any kind 0 or above 1; agreement up-weights some.
    assert table_rows[3].count("0 / 0") == 8
    assert {r[f"upweighted_{k}"] for r in agreement_rows for k in KIND_COLUMNS} - {"", "0.0"}
    assert all(r["best_war"] != "" and 1 <= int(r["best_epoch"]) <= 2 for r in rows)
    assert (out / "study.png").stat().st_size > 10_000
    # Ground truth was read: the pair-noise benchmark flipped labels to their confusable class.
    gt = list(csv.DictReader(open(out / "data" / "pair_30" / "ground_truth.csv")))
    assert sum(int(r["is_noisy"]) for r in gt) == round(0.3 * 60)

    capsys.readouterr()
    run_study(out, jobs=1, seeds=(0, 1), strategies=("ce", "agreement"), overrides=overrides, clips=60,
              progress=False)
    assert "12 runs (12 already finished)" in capsys.readouterr().out


def test_study_refuses_a_foreign_folder_and_bad_options(tmp_path, capsys):
    (tmp_path / "mine").mkdir()
    (tmp_path / "mine" / "notes.txt").write_text("keep me")
    with pytest.raises(RdferError, match="not empty"):
        run_study(tmp_path / "mine", jobs=1, progress=False)
    assert (tmp_path / "mine" / "notes.txt").read_text() == "keep me"
    assert main(["study", "--out", str(tmp_path / "s"), "--strategies", "ce,magic"]) == 2
    assert "magic" in capsys.readouterr().err
    assert main(["study", "--out", str(tmp_path / "s"), "--seeds", "a,b"]) == 2
    assert "--seeds" in capsys.readouterr().err
    assert main(["study", "--out", str(tmp_path / "s"), "--settings", "symmetric_20,uniform_90"]) == 2
    assert "uniform_90" in capsys.readouterr().err
