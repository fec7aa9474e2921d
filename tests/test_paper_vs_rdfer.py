"""scripts/paper_vs_rdfer.py: its paired comparisons against a hand computation on made-up runs."""

from pathlib import Path

import numpy as np
import pytest

CLASSES = ("Happy", "Sad", "Neutral")


@pytest.fixture(scope="module")
def script(load_script):
    return load_script("paper_vs_rdfer")


def write_run(folder: Path, labels, predictions) -> None:
    folder.mkdir(parents=True)
    rows = ["clip_id,path,label,prediction,agreement," + ",".join(f"p_{c}" for c in CLASSES)]
    for i, (label, prediction) in enumerate(zip(labels, predictions)):
        probs = ",".join("1.0" if k == prediction else "0.0" for k in range(len(CLASSES)))
        rows.append(f"{i:05d},clips/{i:05d},{label},{prediction},1.0,{probs}")
    (folder / "predictions.csv").write_text("\n".join(rows) + "\n")


def test_comparisons_pair_runs_by_seed_and_pool_clips_for_mcnemar(script, tmp_path):
    labels = [0, 1, 2, 0, 1, 2, 0, 1, 2, 0]
    # Per seed, A right on the first `a` clips, B on the first `b` (so only B right on b - a clips).
    right = {"ref": {1: 5, 2: 6, 3: 4}, "new": {1: 7, 2: 6, 3: 7}}
    figures = {name: {} for name in right}
    for name, counts in right.items():
        for seed, count in counts.items():
            predictions = [label if i < count else (label + 1) % 3 for i, label in enumerate(labels)]
            write_run(tmp_path / "runs" / name / f"seed_{seed}", labels, predictions)
            figures[name][seed] = {"war": 10.0 * count, "clip_acc": 0.1 * count, "mu_apex_corr": 0.1 * seed}
    lines = script.comparisons(tmp_path, [1, 2, 3], figures, "ref", ["new"])
    cells = [cell.strip() for cell in lines[-1].strip("|").split("|")]
    diffs = np.array([20.0, 0.0, 30.0])  # WAR of new minus ref, points
    half = 4.302653 * diffs.std(ddof=1) / np.sqrt(3)  # t(0.975, 2)
    assert cells[0] == "`new`"
    assert cells[1] == f"{diffs.mean():+.1f} [{diffs.mean() - half:+.1f}, {diffs.mean() + half:+.1f}]"
    # McNemar over the 30 pooled clips: 0 right only under ref, 5 only under new -> p = 2 / 2**5.
    assert cells[4] == f"{2 / 2 ** 5:.3f} (0 / 5)"
    assert cells[5].split("; ")[0].startswith("+20.0 [")  # seed 1's paired bootstrap over its 10 clips
    assert cells[6] == f"{np.mean([2, 0, 3]) * 10:+.1f}" and cells[7] == "+0.00"
