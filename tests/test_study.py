"""`rdfer study`: the Table IV strategies under known noise, end to end on a tiny scale."""

import csv

import numpy as np

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
    # The small-loss control is measured for every strategy, at the noisy set's budget.
    assert all(0 <= float(r["small_loss_precision"]) <= 1 for r in rows)
    table_rows = [line for line in text.splitlines() if line.startswith("| ce |")]
    assert len(table_rows) == 6 and " - |" in table_rows[0]  # 3 main tables, 3 of the hard kinds
    # Per hard kind: CE weights no clip of any kind 0 or above 1; agreement up-weights some.
    assert table_rows[3].count("0 / 0") == 8
    assert {r[f"upweighted_{k}"] for r in agreement_rows for k in KIND_COLUMNS} - {"", "0.0"}
    assert all(r["best_war"] != "" and 1 <= int(r["best_epoch"]) <= 2 for r in rows)
    assert (out / "study.png").stat().st_size > 10_000
    # Each setting's agreement runs against CE: per-seed WAR differences from study.csv, per-clip
    # counts from the runs' predictions.csv, and wording that follows the Holm-corrected p.
    with open(out / "comparisons.csv", newline="") as f:
        comparisons = list(csv.DictReader(f))
    assert [(c["noise"], c["strategy"]) for c in comparisons] == [(s.name, "agreement") for s in SETTINGS]
    for c in comparisons:
        war = {(r["strategy"], r["seed"]): float(r["war"]) for r in rows if r["noise"] == c["noise"]}
        diffs = [war["agreement", s] - war["ce", s] for s in ("0", "1")]
        assert float(c["war_diff"]) == pytest.approx(np.mean(diffs))
        assert float(c["sd_diff"]) == pytest.approx(np.std(diffs, ddof=1))
        alone = [0, 0]
        for seed in (0, 1):
            right = {}
            for strategy in ("ce", "agreement"):
                with open(out / "runs" / c["noise"] / strategy / f"seed_{seed}" / "predictions.csv") as f:
                    right[strategy] = {r["clip_id"]: r["label"] == r["prediction"] for r in csv.DictReader(f)}
            alone[0] += sum(right["ce"][k] and not right["agreement"][k] for k in right["ce"])
            alone[1] += sum(right["agreement"][k] and not right["ce"][k] for k in right["ce"])
        assert (int(c["only_reference"]), int(c["only_strategy"])) == tuple(alone)
        significant = float(c["t_holm_p"]) <= 0.05
        assert c["verdict"].startswith(("above ce", "below ce") if significant else ("no detectable", "not tested"))
        assert f"| agreement | 2 | {float(c['war_diff']):+.1f} |" in text and c["verdict"] in text
    assert "## Against ce" in text and "mean ± sample sd (ddof 1)" in text
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


def test_strategies_against_ce_paired_over_seeds_pooled_mcnemar_and_holm():
    from rdfer.engine.study import compare_strategies

    setting = SETTINGS[0]
    war = {"ce": [50, 52, 54], "gce": [55, 57, 60], "agreement": [50, 51, 53]}
    rows = [{"noise": setting.name, "strategy": name, "seed": seed, "war": float(values[seed])}
            for name, values in war.items() for seed in range(3)]
    calls = []

    def correctness(noise, reference, strategy, seed):
        calls.append((noise, reference, strategy, seed))
        # Per seed: 1 clip right by CE alone, 2 right by the strategy alone, 3 by both, 1 by neither.
        return (np.array([1, 0, 0, 1, 1, 1, 0], bool), np.array([0, 1, 1, 1, 1, 1, 0], bool))

    found = compare_strategies(rows, correctness, [setting], ("ce", "gce", "agreement"))
    assert [c["strategy"] for c in found] == ["gce", "agreement"]
    assert len(calls) == 6 and all(call[1] == "ce" for call in calls)
    gce, agreement = found
    # gce - ce per seed: 5, 5, 6 -> mean 16/3, sd 1/sqrt 3, t = 16 on 2 df: p = 1 - t / sqrt(t**2 + 2).
    assert gce["war_diff"] == pytest.approx(16 / 3) and gce["sd_diff"] == pytest.approx(1 / np.sqrt(3))
    t_gce = 1 - 16 / np.sqrt(258)
    # agreement - ce per seed: 0, -1, -1 -> mean -2/3, sd 1/sqrt 3, t = -2: p = 1 - 2 / sqrt 6.
    t_agreement = 1 - 2 / np.sqrt(6)
    assert gce["t_p"] == pytest.approx(t_gce) and agreement["t_p"] == pytest.approx(t_agreement)
    # Holm over the 2 comparisons: the smaller p doubled, the larger kept (and never below it).
    assert gce["t_holm_p"] == pytest.approx(2 * t_gce) and agreement["t_holm_p"] == pytest.approx(t_agreement)
    # Pooled McNemar: 3 clips right by CE alone, 6 by the strategy alone: 2 * P(X <= 3), X ~ B(9, 1/2).
    assert (gce["only_reference"], gce["only_strategy"]) == (3, 6)
    assert gce["mcnemar_p"] == pytest.approx(2 * (1 + 9 + 36 + 84) / 512)
    assert gce["mcnemar_holm_p"] == pytest.approx(min(1, 2 * gce["mcnemar_p"]))
    assert gce["verdict"] == f"above ce (Holm p={2 * t_gce:.2g})"
    assert agreement["verdict"] == f"no detectable difference (Holm p={t_agreement:.2g})"
