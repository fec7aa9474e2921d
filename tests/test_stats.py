"""rdfer.stats against hand computations."""

import math

import numpy as np
import pytest

from rdfer import metrics, stats


def _correct(pattern: str) -> np.ndarray:
    return np.array([c == "1" for c in pattern])


def test_mcnemar_exact_matches_the_binomial_by_hand():
    # 1 clip right by A alone, 6 right by B alone, 3 right by both, 2 by neither.
    a = _correct("1" + "000000" + "111" + "00")
    b = _correct("0" + "111111" + "111" + "00")
    result = stats.mcnemar_exact(a, b)
    assert (result["only_a"], result["only_b"], result["both"], result["neither"]) == (1, 6, 3, 2)
    # Two-sided binomial at 1/2 over 7 discordant clips: 2 * (C(7,0) + C(7,1)) / 2**7.
    assert result["p"] == pytest.approx(2 * (1 + 7) / 128)
    # Symmetric in which run is called A.
    assert stats.mcnemar_exact(b, a)["p"] == pytest.approx(result["p"])
    # 5 discordant clips all for B: 2 / 2**5.
    assert stats.mcnemar_exact(_correct("00000"), _correct("11111"))["p"] == pytest.approx(2 / 32)


def test_a_run_against_itself_gives_zero_and_p_one():
    rng = np.random.default_rng(0)
    y = rng.integers(0, 7, 150)
    pred = np.where(rng.random(150) < 0.6, y, rng.integers(0, 7, 150))
    for metric in stats.METRICS:
        result = stats.paired_bootstrap(y, pred, pred, metric, resamples=500)
        assert result["diff"] == 0.0 and result["ci"] == [0.0, 0.0]
    assert stats.mcnemar_exact(y == pred, y == pred)["p"] == 1.0


def test_holm_on_a_known_list():
    # Sorted: 0.005*4 = 0.02, 0.01*3 = 0.03, 0.03*2 = 0.06, 0.04*1 = 0.04 -> kept at 0.06 (monotone).
    assert stats.holm([0.01, 0.04, 0.03, 0.005]) == pytest.approx([0.03, 0.06, 0.06, 0.02])
    assert stats.holm([0.5, 0.9]) == pytest.approx([1.0, 1.0])  # capped at 1
    adjusted = stats.holm([0.01, float("nan"), 0.02])  # NaN: not tested, not counted in m
    assert math.isnan(adjusted[1]) and adjusted[0] == pytest.approx(0.02) and adjusted[2] == pytest.approx(0.02)


def test_sample_sd_uses_ddof_one():
    assert stats.sample_sd([1, 2, 3, 4]) == pytest.approx(math.sqrt(5 / 3))  # population sd: sqrt(5/4)
    assert stats.sample_sd([7.0]) == 0.0
    assert stats.mean_sd([50, 52, 57]) == pytest.approx((53.0, math.sqrt(13.0)))
    with pytest.raises(ValueError):
        stats.sample_sd([1.0, float("nan")])
    # t(0.975, 2 df) = 4.302653 from a table: 53 +- 4.302653 * sqrt(13) / sqrt(3).
    half = 4.302653 * math.sqrt(13) / math.sqrt(3)
    assert stats.mean_ci([50, 52, 57]) == pytest.approx([53 - half, 53 + half], abs=1e-4)
    assert all(math.isnan(x) for x in stats.mean_ci([50]))


def test_paired_tests_by_hand():
    # Differences 3, 2, 4: mean 3, sd 1, t = 3 / (1 / sqrt 3) = sqrt 27 on 2 degrees of freedom;
    # the t distribution with 2 df has P(|T| > t) = 1 - t / sqrt(t**2 + 2).
    result = stats.paired_tests([50, 52, 54], [53, 54, 58])
    assert result["n"] == 3 and result["mean_diff"] == pytest.approx(3.0) and result["sd_diff"] == pytest.approx(1.0)
    assert result["t_p"] == pytest.approx(1 - math.sqrt(27 / 29))
    # Wilcoxon signed-rank, all 3 differences positive: 2 of the 2**3 equally likely sign patterns.
    assert result["wilcoxon_p"] == pytest.approx(2 / 8)
    same = stats.paired_tests([50, 52, 54], [50, 52, 54])
    assert same["t_p"] == 1.0 and same["wilcoxon_p"] == 1.0
    assert math.isnan(stats.paired_tests([50], [52])["t_p"])


def test_welch_test_by_hand():
    from scipy.stats import t as t_dist

    a, b = [1.0, 2.0, 3.0], [4.0, 6.0, 8.0, 10.0]
    # var(a) = 1, var(b) = 20/3: se = sqrt(1/3 + 5/3) = sqrt 2; t = (7 - 2) / sqrt 2;
    # Welch-Satterthwaite df = 2**2 / ((1/3)**2 / 2 + (5/3)**2 / 3).
    t = 5 / math.sqrt(2)
    df = 4 / ((1 / 3) ** 2 / 2 + (5 / 3) ** 2 / 3)
    result = stats.welch_test(a, b)
    assert result["mean_diff"] == pytest.approx(5.0)
    assert result["p"] == pytest.approx(2 * t_dist.sf(t, df))
    assert stats.welch_test([3.0, 3.0], [3.0, 3.0])["p"] == 1.0


def test_bootstrap_is_deterministic_for_a_seed_and_brackets_the_point():
    rng = np.random.default_rng(1)
    y = rng.integers(0, 5, 200)
    pred_a = np.where(rng.random(200) < 0.5, y, (y + 1) % 5)
    pred_b = np.where(rng.random(200) < 0.7, y, (y + 1) % 5)
    first = stats.paired_bootstrap(y, pred_a, pred_b, "war", resamples=1000, seed=3)
    assert first == stats.paired_bootstrap(y, pred_a, pred_b, "war", resamples=1000, seed=3)
    assert first["ci"] != stats.paired_bootstrap(y, pred_a, pred_b, "war", resamples=1000, seed=4)["ci"]
    assert first["ci"][0] < first["diff"] < first["ci"][1]
    assert first["diff"] == pytest.approx(metrics.war(y, pred_b) - metrics.war(y, pred_a))
    uar = stats.paired_bootstrap(y, pred_a, pred_b, "uar", resamples=1000, seed=3)
    assert uar["diff"] == pytest.approx(metrics.uar(y, pred_b, 5) - metrics.uar(y, pred_a, 5))
    assert uar["ci"][0] < uar["diff"] < uar["ci"][1]
    one = stats.bootstrap_ci(y, pred_b, "uar", resamples=1000, seed=3)
    assert one["value"] == pytest.approx(metrics.uar(y, pred_b, 5)) and one["ci"][0] < one["value"] < one["ci"][1]


def test_paired_bootstrap_width_matches_the_normal_approximation():
    # 400 clips: B right alone on 60, A right alone on 20 (d = +1 / -1), the rest agree (d = 0).
    # WAR diff = 100 * mean(d) = 10 points; its sd = 100 * sd(d) / sqrt(n), sd(d) with ddof 0.
    n = 400
    d = np.zeros(n)
    d[:60], d[60:80] = 1, -1
    y = np.zeros(n, dtype=int)
    pred_a = np.where(d == 1, 1, 0)  # A wrong where only B is right
    pred_b = np.where(d == -1, 1, 0)  # B wrong where only A is right
    result = stats.paired_bootstrap(y, pred_a, pred_b, "war", resamples=4000, seed=0, num_classes=2)
    sd = 100 * d.std() / math.sqrt(n)
    assert result["diff"] == pytest.approx(10.0)
    assert (result["ci"][1] - result["ci"][0]) == pytest.approx(2 * 1.96 * sd, rel=0.1)
    assert result["ci"][0] == pytest.approx(10 - 1.96 * sd, abs=0.25 * sd)


def test_paired_bootstrap_interval_covers_the_true_difference():
    # Test sets drawn from a population where B beats A by exactly 5 points of WAR:
    # the 95% interval should hold 5 in most of them (a broken pairing or interval would not).
    rng = np.random.default_rng(5)
    held = 0
    for _ in range(100):
        y = np.zeros(300, dtype=int)
        # Per clip: both right 55%, only B 15%, only A 10%, neither 20% -> B - A = 5 points.
        kind = rng.choice(4, size=300, p=[0.55, 0.15, 0.10, 0.20])
        correct_a, correct_b = np.isin(kind, [0, 2]), np.isin(kind, [0, 1])
        result = stats.paired_bootstrap(y, np.where(correct_a, 0, 1), np.where(correct_b, 0, 1), "war",
                                        resamples=400, seed=int(rng.integers(1 << 30)), num_classes=2)
        held += result["ci"][0] <= 5.0 <= result["ci"][1]
    assert held >= 85


def test_verdict_words_follow_the_statistics():
    assert stats.verdict(3.2, 0.012, "CE").words == "above CE (Holm p=0.012)"
    assert stats.verdict(-3.2, 0.03, "CE").words == "below CE (Holm p=0.03)"
    below_alpha = stats.verdict(3.2, 0.2, "CE")
    assert below_alpha.words == "no detectable difference (Holm p=0.2)" and not below_alpha.significant
    assert stats.verdict(1.0, float("nan"), "CE").words.startswith("not tested")


def test_mismatched_lengths_are_refused():
    with pytest.raises(ValueError, match="differ in length"):
        stats.paired_bootstrap([0, 1, 2], [0, 1, 2], [0, 1])
    with pytest.raises(ValueError, match="differ in length"):
        stats.mcnemar_exact([True], [True, False])
