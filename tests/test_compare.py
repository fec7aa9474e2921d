"""`rdfer compare RUN_A RUN_B --out DIR` against a hand computation on two fabricated runs."""

import csv
import json

import pytest

from rdfer.cli import main

CLASSES = ["Happy", "Sad", "Angry"]
# (clip id, true label, run A's prediction, run B's prediction) of 10 test clips.
CLIPS = [
    ("c0", 0, 0, 0), ("c1", 0, 0, 0), ("c2", 0, 1, 0), ("c3", 0, 0, 2),
    ("c4", 1, 1, 1), ("c5", 1, 0, 1), ("c6", 1, 2, 1),
    ("c7", 2, 2, 2), ("c8", 2, 0, 0), ("c9", 2, 2, 2),
]
# By hand:
#   A right on c0 c1 c3 c4 c7 c9 -> WAR 60; recalls Happy 3/4, Sad 1/3, Angry 2/3 -> UAR (75 + 33.33 + 66.67) / 3 = 58.33
#   B right on c0 c1 c2 c4 c5 c6 c7 c9 -> WAR 80; recalls 3/4, 3/3, 2/3 -> UAR (75 + 100 + 66.67) / 3 = 80.56
#   right by A alone: c3 (1); by B alone: c2 c5 c6 (3); both 5; neither c8 (1)
#   exact McNemar: 2 * P(X <= 1), X ~ Binomial(4, 1/2) = 2 * (1 + 4) / 16 = 0.625
WAR_A, WAR_B = 60.0, 80.0
UAR_A, UAR_B = (75 + 100 / 3 + 200 / 3) / 3, (75 + 100 + 200 / 3) / 3


def write_run(folder, column: int, order=None, drop=None):
    folder.mkdir(parents=True)
    rows = [CLIPS[i] for i in (order or range(len(CLIPS))) if CLIPS[i][0] != drop]
    with open(folder / "predictions.csv", "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["clip_id", "path", "label", "prediction", "agreement", "mu", "delta",
                         *(f"p_{c}" for c in CLASSES)])
        for clip, label, *predictions in rows:
            probs = [0.1] * len(CLASSES)
            probs[predictions[column]] = 0.8
            writer.writerow([clip, f"/data/{clip}", label, predictions[column], "1.00", "", "", *probs])
    return folder


@pytest.fixture
def runs(tmp_path):
    # B lists its clips in another order: the command must pair them by clip id.
    return write_run(tmp_path / "a", 0), write_run(tmp_path / "b", 1, order=[9, 3, 0, 5, 1, 8, 2, 7, 6, 4])


def test_compare_matches_the_hand_computation(runs, tmp_path, capsys):
    a, b = runs
    assert main(["compare", str(a), str(b), "--out", str(tmp_path / "cmp")]) == 0
    result = json.loads((tmp_path / "cmp" / "compare.json").read_text())
    assert result["n_clips"] == 10
    assert result["a"]["war"] == pytest.approx(WAR_A) and result["b"]["war"] == pytest.approx(WAR_B)
    assert result["a"]["uar"] == pytest.approx(UAR_A) and result["b"]["uar"] == pytest.approx(UAR_B)
    assert result["war_diff"] == pytest.approx(20.0)
    assert result["uar_diff"] == pytest.approx(UAR_B - UAR_A)
    assert result["mcnemar"] == {"only_a": 1, "only_b": 3, "both": 5, "neither": 1}
    assert result["mcnemar_p"] == pytest.approx(0.625)
    for key in ("war_diff", "uar_diff"):
        low, high = result[f"{key}_ci"]
        assert low <= result[key] <= high and -100 <= low < high <= 100
    for side in ("a", "b"):
        low, high = result[side]["war_ci"]
        assert 0 <= low <= result[side]["war"] <= high <= 100
    printed = capsys.readouterr().out
    assert "war_diff (B - A): +20.00 points" in printed and "mcnemar_p: 0.625" in printed
    assert f"wrote {tmp_path / 'cmp' / 'compare.json'}" in printed

    # Swapping A and B with the same seed draws the same clips: the difference and its interval negate.
    assert main(["compare", str(b), str(a), "--out", str(tmp_path / "swap")]) == 0
    swapped = json.loads((tmp_path / "swap" / "compare.json").read_text())
    assert swapped["war_diff"] == pytest.approx(-20.0)
    assert swapped["war_diff_ci"] == pytest.approx([-result["war_diff_ci"][1], -result["war_diff_ci"][0]])
    assert swapped["mcnemar_p"] == pytest.approx(0.625)


def test_a_run_against_itself(runs, tmp_path):
    a, _ = runs
    assert main(["compare", str(a), str(a), "--out", str(tmp_path / "self")]) == 0
    result = json.loads((tmp_path / "self" / "compare.json").read_text())
    assert result["war_diff"] == 0 and result["war_diff_ci"] == [0, 0]
    assert result["uar_diff"] == 0 and result["uar_diff_ci"] == [0, 0]
    assert result["mcnemar_p"] == 1.0


def test_refuses_runs_that_cannot_be_paired(runs, tmp_path, capsys):
    a, b = runs
    short = write_run(tmp_path / "short", 1, drop="c4")
    assert main(["compare", str(a), str(short), "--out", str(tmp_path / "x")]) == 2
    error = capsys.readouterr().err.strip()
    assert len(error.splitlines()) == 1 and "different clips (1 only in A, 0 only in B, e.g. 'c4'" in error
    assert not (tmp_path / "x" / "compare.json").exists()

    empty = tmp_path / "empty"
    empty.mkdir()
    assert main(["compare", str(a), str(empty), "--out", str(tmp_path / "x")]) == 2
    assert "predictions.csv not found" in capsys.readouterr().err

    damaged = tmp_path / "damaged"
    damaged.mkdir()
    lines = (b / "predictions.csv").read_text().splitlines()
    lines[3] = lines[3].replace(",1.00,", ",high,")
    (damaged / "predictions.csv").write_text("\n".join(lines) + "\n")
    assert main(["compare", str(a), str(damaged), "--out", str(tmp_path / "x")]) == 2
    error = capsys.readouterr().err.strip()
    assert len(error.splitlines()) == 1 and "predictions.csv, line 4" in error

    relabelled = write_run(tmp_path / "relabelled", 1)
    text = (relabelled / "predictions.csv").read_text().replace("c8,/data/c8,2,", "c8,/data/c8,1,")
    (relabelled / "predictions.csv").write_text(text)
    assert main(["compare", str(a), str(relabelled), "--out", str(tmp_path / "x")]) == 2
    assert "clip 'c8' has label Angry" in capsys.readouterr().err
