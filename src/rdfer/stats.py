"""Statistics for comparing runs, as pure functions (docs/statistics.md).

Two kinds of evidence, kept apart:

- Within one test set (two runs scored on the same clips): a paired bootstrap
  over clips of a metric difference (`paired_bootstrap`), the bootstrap
  interval of one run's metric (`bootstrap_ci`), and the exact McNemar test on
  per-clip correctness (`mcnemar_exact`). These measure how much the figure
  would move with another draw of test clips of the same kind; they say
  nothing about another training seed.
- Across seeds or folds (one figure per run): the sample sd (`sample_sd`,
  ddof 1), paired tests where the runs pair up by seed or fold
  (`paired_tests`: paired t and Wilcoxon signed-rank), Welch's t-test where
  they do not (`welch_test`), and Holm's step-down correction over a family
  of p-values (`holm`).

Metrics are WAR and UAR in PERCENT, as in `rdfer.metrics`; differences are
"B minus A" in percentage points. Every resampling function takes a seed and
returns the same figures for the same seed.
"""

from dataclasses import dataclass
import math

import numpy as np


class _LazyScipyStats:
    """scipy.stats, imported on first use: importing it costs about 0.7 s of CPU, and this module is
    imported while every `rdfer` command builds its parser (through rdfer.audit.verdict)."""

    def __getattr__(self, name):
        from scipy import stats

        return getattr(stats, name)


_scipy_stats = _LazyScipyStats()

# The metrics the resampling functions know, each a function of (y_true, y_pred) -> percent.
METRICS = ("war", "uar")
DEFAULT_RESAMPLES = 2000
DEFAULT_LEVEL = 0.95


def _as_labels(values, name: str) -> np.ndarray:
    array = np.asarray(values, dtype=np.int64).ravel()
    if array.size == 0:
        raise ValueError(f"{name} is empty")
    return array


def _check_same_length(**arrays) -> int:
    sizes = {name: len(a) for name, a in arrays.items()}
    if len(set(sizes.values())) != 1:
        raise ValueError("arrays differ in length: " + ", ".join(f"{k} {v}" for k, v in sizes.items()))
    return next(iter(sizes.values()))


def _resampled_metric(y_true: np.ndarray, correct: np.ndarray, index: np.ndarray, metric: str,
                      num_classes: int) -> np.ndarray:
    """The metric (percent) of every bootstrap sample at once.

    Args:
        y_true: (N,) true classes.
        correct: (N,) 1.0 where the prediction was right.
        index: (B, N) clip indices, one row per bootstrap sample.
        metric: "war" or "uar".

    Returns:
        (B,) the metric of each sample; for UAR the mean recall over the classes
        present in that sample (as `rdfer.metrics.uar`).
    """
    hits = correct[index]  # (B, N)
    if metric == "war":
        return 100.0 * hits.mean(axis=1)
    if metric != "uar":
        raise ValueError(f"unknown metric {metric!r}; expected one of {METRICS}")
    labels = y_true[index]  # (B, N)
    recall = np.full((len(index), num_classes), np.nan)  # (B, K)
    for k in range(num_classes):  # one class at a time keeps memory at (B, N)
        in_class = labels == k
        support = in_class.sum(axis=1)
        right = (in_class * hits).sum(axis=1)
        recall[:, k] = np.where(support > 0, 100.0 * right / np.maximum(support, 1), np.nan)
    return np.nanmean(recall, axis=1)


def _point_metric(y_true: np.ndarray, correct: np.ndarray, metric: str, num_classes: int) -> float:
    return float(_resampled_metric(y_true, correct, np.arange(len(y_true))[None], metric, num_classes)[0])


def _percentile_interval(samples: np.ndarray, level: float) -> list[float]:
    tail = 100.0 * (1.0 - level) / 2.0
    low, high = np.percentile(samples, [tail, 100.0 - tail])
    return [float(low), float(high)]


def _bootstrap_index(n: int, resamples: int, seed: int) -> np.ndarray:
    """(resamples, n) clip indices drawn with replacement, the same for the same seed."""
    return np.random.default_rng(seed).integers(0, n, size=(resamples, n))


def bootstrap_interval(statistic, n: int, *, resamples: int = DEFAULT_RESAMPLES, level: float = DEFAULT_LEVEL,
                       seed: int = 0) -> list[float]:
    """Percentile bootstrap interval of any statistic of N items (clips) resampled with replacement.

    Args:
        statistic: called once with a (resamples, N) array of item indices, one bootstrap sample per
            row; returns the (resamples,) values of the statistic. For a paired comparison it
            returns the difference of the two statistics on the same rows.
        n: N, the number of items.

    Returns:
        [low, high]; the same for the same seed.
    """
    return _percentile_interval(np.asarray(statistic(_bootstrap_index(n, resamples, seed)), dtype=np.float64), level)


def bootstrap_ci(y_true, y_pred, metric: str = "war", *, resamples: int = DEFAULT_RESAMPLES,
                 level: float = DEFAULT_LEVEL, seed: int = 0, num_classes: int | None = None) -> dict:
    """One run's metric with a percentile bootstrap interval over its test clips.

    Args:
        y_true, y_pred: (N,) integer classes of the same N clips.
        metric: "war" or "uar" (percent).
        resamples: bootstrap samples of N clips drawn with replacement.
        level: the interval's coverage (0.95: the 2.5th and 97.5th percentiles).
        seed: the resampling seed; the same seed gives the same interval.
        num_classes: K; default one more than the largest class seen.

    Returns:
        {"value": the metric on all clips, "ci": [low, high], "n": N}.
    """
    y_true, y_pred = _as_labels(y_true, "y_true"), _as_labels(y_pred, "y_pred")
    n = _check_same_length(y_true=y_true, y_pred=y_pred)
    k = num_classes or int(max(y_true.max(), y_pred.max())) + 1
    correct = (y_true == y_pred).astype(np.float64)
    samples = _resampled_metric(y_true, correct, _bootstrap_index(n, resamples, seed), metric, k)
    return {"value": _point_metric(y_true, correct, metric, k), "ci": _percentile_interval(samples, level), "n": n}


def paired_bootstrap(y_true, pred_a, pred_b, metric: str = "war", *, resamples: int = DEFAULT_RESAMPLES,
                     level: float = DEFAULT_LEVEL, seed: int = 0, num_classes: int | None = None) -> dict:
    """The difference B minus A of a metric, with a paired percentile bootstrap over test clips.

    Each bootstrap sample draws N clips with replacement and scores BOTH runs on
    the same drawn clips, so what the two runs share (which clips are easy)
    cancels. Two identical runs give a difference of 0 and the interval [0, 0].

    Args:
        y_true: (N,) true classes; pred_a, pred_b: (N,) the two runs' predictions
            of the same clips in the same order.
        metric: "war" or "uar" (percent; the difference is in points).
        resamples, level, seed, num_classes: as `bootstrap_ci`.

    Returns:
        {"diff": metric(B) - metric(A) on all clips, "ci": [low, high],
        "a": metric(A), "b": metric(B), "n": N}.
    """
    y_true = _as_labels(y_true, "y_true")
    pred_a, pred_b = _as_labels(pred_a, "pred_a"), _as_labels(pred_b, "pred_b")
    n = _check_same_length(y_true=y_true, pred_a=pred_a, pred_b=pred_b)
    k = num_classes or int(max(y_true.max(), pred_a.max(), pred_b.max())) + 1
    correct_a = (y_true == pred_a).astype(np.float64)
    correct_b = (y_true == pred_b).astype(np.float64)
    index = _bootstrap_index(n, resamples, seed)
    samples = (_resampled_metric(y_true, correct_b, index, metric, k)
               - _resampled_metric(y_true, correct_a, index, metric, k))
    a = _point_metric(y_true, correct_a, metric, k)
    b = _point_metric(y_true, correct_b, metric, k)
    return {"diff": b - a, "ci": _percentile_interval(samples, level), "a": a, "b": b, "n": n}


def mcnemar_exact(correct_a, correct_b) -> dict:
    """Exact McNemar test of two runs' per-clip correctness on the same clips.

    Only the discordant clips count: `only_a` right by A alone, `only_b` right
    by B alone. Under "the runs are equally accurate" each discordant clip is
    a fair coin, so p is the two-sided binomial test of `only_b` successes in
    `only_a + only_b` trials at 1/2 (scipy.stats.binomtest). No discordant clip
    (for instance a run against itself) gives p = 1.

    Args:
        correct_a, correct_b: (N,) booleans (or 0/1) per clip, same clip order.

    Returns:
        {"only_a": int, "only_b": int, "both": int, "neither": int, "p": float}.
    """
    a = np.asarray(correct_a, dtype=bool).ravel()
    b = np.asarray(correct_b, dtype=bool).ravel()
    _check_same_length(correct_a=a, correct_b=b)
    only_a, only_b = int(np.sum(a & ~b)), int(np.sum(~a & b))
    discordant = only_a + only_b
    p = 1.0 if discordant == 0 else float(_scipy_stats.binomtest(only_b, discordant, 0.5).pvalue)
    return {"only_a": only_a, "only_b": only_b, "both": int(np.sum(a & b)), "neither": int(np.sum(~a & ~b)),
            "p": min(1.0, p)}


def sample_sd(values) -> float:
    """The sample standard deviation (ddof 1) of figures over seeds or folds; 0.0 for one value.

    NaN values are an error (a missing run must not shrink the spread silently).
    """
    values = np.asarray(values, dtype=np.float64).ravel()
    if values.size == 0:
        raise ValueError("no values")
    if not np.isfinite(values).all():
        raise ValueError(f"non-finite value among {values.tolist()}")
    return float(values.std(ddof=1)) if values.size > 1 else 0.0


def mean_sd(values) -> tuple[float, float]:
    """(mean, sample sd with ddof 1) of figures over seeds or folds."""
    values = np.asarray(values, dtype=np.float64).ravel()
    return float(values.mean()), sample_sd(values)


def mean_ci(values, level: float = DEFAULT_LEVEL) -> list[float]:
    """The t interval of the mean of figures over seeds or folds: mean +- t(level, n-1) * sd / sqrt(n).

    This is how far the mean over this many seeds or folds may lie from the mean over many more; NaN
    bounds for fewer than 2 values.
    """
    values = np.asarray(values, dtype=np.float64).ravel()
    mean, sd = mean_sd(values)
    if values.size < 2:
        return [float("nan"), float("nan")]
    half = float(_scipy_stats.t.ppf(0.5 + level / 2, values.size - 1)) * sd / math.sqrt(values.size)
    return [mean - half, mean + half]


def paired_tests(a, b) -> dict:
    """Paired tests of B against A where the runs pair up (same seed, same fold).

    Args:
        a, b: (n,) one figure per pair, same order (e.g. WAR of CE and of GCE per seed).

    Returns:
        {"n": n, "mean_diff": mean of b - a, "sd_diff": sample sd of b - a,
        "t_p": two-sided paired t-test p (scipy.stats.ttest_rel),
        "wilcoxon_p": two-sided exact Wilcoxon signed-rank p (scipy.stats.wilcoxon)}.
        With fewer than 2 pairs both p are NaN; all differences 0 gives p = 1.
        A Wilcoxon test on n pairs cannot go below 2 / 2**n (0.25 at n = 3):
        with few seeds read the t-test and say how many pairs there were.
    """
    a = np.asarray(a, dtype=np.float64).ravel()
    b = np.asarray(b, dtype=np.float64).ravel()
    n = _check_same_length(a=a, b=b)
    diff = b - a
    result = {"n": n, "mean_diff": float(diff.mean()) if n else float("nan"),
              "sd_diff": sample_sd(diff) if n else float("nan"), "t_p": float("nan"), "wilcoxon_p": float("nan")}
    if n < 2:
        return result
    if np.all(diff == 0):
        result.update(t_p=1.0, wilcoxon_p=1.0)
        return result
    if np.all(diff == diff[0]):  # no spread: the t statistic is infinite
        result["t_p"] = 0.0
    else:
        result["t_p"] = float(_scipy_stats.ttest_rel(b, a).pvalue)
    result["wilcoxon_p"] = float(_scipy_stats.wilcoxon(b, a, zero_method="wilcox").pvalue)
    return result


def welch_test(a, b) -> dict:
    """Welch's unequal-variance t-test of B against A where the runs do not pair up.

    Returns:
        {"n_a", "n_b", "mean_diff": mean(b) - mean(a), "p": two-sided p}
        (p is NaN with fewer than 2 figures on a side; 1 when all figures are equal).
    """
    a = np.asarray(a, dtype=np.float64).ravel()
    b = np.asarray(b, dtype=np.float64).ravel()
    result = {"n_a": len(a), "n_b": len(b), "mean_diff": float(b.mean() - a.mean()), "p": float("nan")}
    if len(a) < 2 or len(b) < 2:
        return result
    if np.all(np.concatenate([a, b]) == a[0]):
        result["p"] = 1.0
    else:
        result["p"] = float(_scipy_stats.ttest_ind(b, a, equal_var=False).pvalue)
    return result


def holm(p_values) -> list[float]:
    """Holm's step-down adjusted p-values of a family of tests, in the input order.

    The i-th smallest of m p-values is multiplied by (m - i + 1), running maxima
    keep the order, and the result is capped at 1. A test is significant at
    level alpha after correction when its adjusted p is <= alpha; this controls
    the chance of any false claim in the family at alpha. NaN p-values (tests
    that could not run) stay NaN and do not count towards m.
    """
    p = np.asarray(p_values, dtype=np.float64).ravel()
    adjusted = np.full(p.shape, np.nan)
    valid = np.flatnonzero(np.isfinite(p))
    m = len(valid)
    running = 0.0
    for rank, i in enumerate(valid[np.argsort(p[valid], kind="stable")]):
        running = max(running, min(1.0, (m - rank) * p[i]))
        adjusted[i] = running
    return adjusted.tolist()


@dataclass(frozen=True)
class Verdict:
    """How a report words a comparison of B against A.

    words: "above A (Holm p=0.012)", "below A (Holm p=0.03)" or
    "no detectable difference (Holm p=0.41)"; significant: adjusted p <= alpha.
    """
    words: str
    significant: bool


def verdict(diff: float, adjusted_p: float, reference: str, alpha: float = 0.05, label: str = "Holm p") -> Verdict:
    """The wording a report uses for B minus A = `diff` with (corrected) p `adjusted_p` against `reference`."""
    if adjusted_p is None or not math.isfinite(adjusted_p):
        return Verdict("not tested (too few runs)", False)
    figure = f"{label}={adjusted_p:.2g}"
    if adjusted_p <= alpha and diff != 0:
        return Verdict(f"{'above' if diff > 0 else 'below'} {reference} ({figure})", True)
    return Verdict(f"no detectable difference ({figure})", False)


def correlation_ci(x, y, *, resamples: int = DEFAULT_RESAMPLES, level: float = DEFAULT_LEVEL,
                   seed: int = 0) -> dict:
    """Pearson's r of paired values with a percentile bootstrap interval over the pairs.

    Pairs (clips) are drawn with replacement (`scipy.stats.bootstrap`, paired);
    resamples in which either side is constant are left out of the interval.

    Args:
        x, y: (N,) values of the same N items (e.g. each test clip's mu and its true apex centre).
        resamples, level, seed: as in `bootstrap_ci`.

    Returns:
        {"value": r on all pairs, "ci": [low, high], "n": N}; value and ci are None
        when fewer than 3 pairs are given or either side is constant.
    """
    x, y = np.asarray(x, dtype=np.float64).ravel(), np.asarray(y, dtype=np.float64).ravel()
    n = _check_same_length(x=x, y=y)
    if n < 3 or np.std(x) < 1e-12 or np.std(y) < 1e-12:
        return {"value": None, "ci": None, "n": n}

    def pearson(a, b, axis=-1):
        a = a - a.mean(axis=axis, keepdims=True)
        b = b - b.mean(axis=axis, keepdims=True)
        with np.errstate(invalid="ignore", divide="ignore"):
            return (a * b).sum(axis=axis) / np.sqrt((a * a).sum(axis=axis) * (b * b).sum(axis=axis))

    samples = _scipy_stats.bootstrap((x, y), pearson, paired=True, vectorized=True, n_resamples=resamples,
                                     method="percentile", random_state=np.random.default_rng(seed),
                                     confidence_level=level).bootstrap_distribution
    samples = samples[np.isfinite(samples)]
    return {"value": float(pearson(x, y)), "ci": _percentile_interval(samples, level), "n": n}


def format_interval(value, ci, digits: int = 2) -> str:
    """A figure with its interval as reports print it: "0.61 [0.48, 0.72]"; "–" for None, no brackets without ci."""
    if value is None:
        return "–"
    return f"{value:.{digits}f}" + (f" [{ci[0]:.{digits}f}, {ci[1]:.{digits}f}]" if ci else "")
