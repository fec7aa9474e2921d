"""scripts/study_stats.py: saved study tables re-analysed (paired over seeds, Holm) against hand figures."""

import csv

import pytest
from scipy import stats as scipy_stats


def _write(path, rows):
    with open(path, "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=["noise", "strategy", "seed", "war", "memorised"])
        writer.writeheader()
        writer.writerows(rows)


def test_strategies_are_paired_with_ce_by_seed_and_holm_corrected(tmp_path, load_script):
    study_stats = load_script("study_stats")
    ce, gce, elr = [60.0, 62.0, 61.0], [64.0, 65.5, 66.0], [59.0, 63.0, 60.5]
    rows = [{"noise": "symmetric_40", "strategy": name, "seed": s, "war": war[s], "memorised": 0.3}
            for name, war in (("ce", ce), ("gce", gce), ("elr", elr)) for s in range(3)]
    first, second = tmp_path / "a.csv", tmp_path / "b.csv"
    _write(first, rows[:5])
    _write(second, rows[3:])  # overlapping rows count once
    found = {item["strategy"]: item for item in study_stats.analyse(study_stats.read_rows([first, second]))}

    assert found["ce"]["seeds"] == 3 and "t_p" not in found["ce"]
    diffs = [g - c for g, c in zip(gce, ce)]
    assert found["gce"]["diff"] == pytest.approx(sum(diffs) / 3)
    p_gce = scipy_stats.ttest_rel(gce, ce).pvalue
    p_elr = scipy_stats.ttest_rel(elr, ce).pvalue
    assert found["gce"]["t_p"] == pytest.approx(p_gce)
    half = scipy_stats.t.ppf(0.975, 2) * scipy_stats.tstd(diffs) / 3 ** 0.5
    assert found["gce"]["diff_ci"] == pytest.approx([sum(diffs) / 3 - half, sum(diffs) / 3 + half])
    # Holm over the two comparisons: the smaller p doubled, the larger kept (running maximum).
    low, high = sorted([p_gce, p_elr])
    expected = {p_gce: min(1, 2 * low) if p_gce == low else max(min(1, 2 * low), high)}
    assert found["gce"]["holm_p"] == pytest.approx(expected[p_gce])
    assert found["elr"]["holm_p"] == pytest.approx(max(min(1, 2 * low), high) if p_elr == high else min(1, 2 * low))

    out = tmp_path / "study.md"
    study_stats.main(["--out", str(out), f"table={first},{second}"])
    text = out.read_text()
    assert "Holm correction over the 2 comparisons" in text and "| symmetric_40 | gce | 3 |" in text
