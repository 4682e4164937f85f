"""Pure statistics for the rollout monitor and A/B comparisons: latency histograms, arm tests and shift measures."""

from __future__ import annotations

import bisect
import math
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
from scipy import stats
from scipy.special import rel_entr

# --------------------------------------------------------------------------------------------------------------------
# Latency histograms
# --------------------------------------------------------------------------------------------------------------------

LATENCY_BOUNDS_MS: tuple[float, ...] = (
    0.25, 0.5, 1, 2, 3, 5, 7.5, 10, 15, 20, 30, 50, 75, 100, 150, 200, 300, 500, 750, 1000, 2000, 5000, 10000,
)  # fmt: skip
HISTOGRAM_SIZE = len(LATENCY_BOUNDS_MS) + 1  # the last bucket counts everything above the last bound

Summary = tuple[int, float, float]  # (n, total, total_sq): sums a database can aggregate and arms can be merged by


def latency_bucket(ms: float) -> int:
    """Return the histogram bucket of a latency: the first bound it does not exceed, or the overflow bucket."""
    if math.isnan(ms):
        raise ValueError("latency must be a number, not NaN")
    # Bounds are inclusive upper edges, so bisect_left; negative readings (clock skew) land in the first bucket.
    return bisect.bisect_left(LATENCY_BOUNDS_MS, ms)


def _check_histogram(counts: Sequence[int]) -> None:
    if len(counts) > HISTOGRAM_SIZE:
        raise ValueError(f"a latency histogram has at most {HISTOGRAM_SIZE} buckets, got {len(counts)}")
    if any(c < 0 for c in counts):
        raise ValueError("histogram counts must not be negative")


def histogram_merge(a: list[int], b: list[int]) -> list[int]:
    """Add two histograms bucket by bucket, treating missing trailing buckets as zero."""
    _check_histogram(a)
    _check_histogram(b)
    merged = [0] * HISTOGRAM_SIZE
    for counts in (a, b):
        for i, c in enumerate(counts):
            merged[i] += int(c)
    return merged


def histogram_percentile(counts: list[int], q: float) -> float | None:
    """Estimate the q-th percentile (0..100) by linear interpolation inside its bucket; None for an empty histogram."""
    if not 0 <= q <= 100:
        raise ValueError(f"q must be between 0 and 100, got {q}")
    _check_histogram(counts)
    total = sum(counts)
    if total == 0:
        return None
    rank = q / 100 * total
    below = 0
    for i, c in enumerate(counts):
        if c > 0 and below + c >= rank:
            if i == len(LATENCY_BOUNDS_MS):
                return float(LATENCY_BOUNDS_MS[-1])  # the overflow bucket has no upper edge to interpolate to
            lower = 0.0 if i == 0 else float(LATENCY_BOUNDS_MS[i - 1])
            upper = float(LATENCY_BOUNDS_MS[i])
            return lower + (upper - lower) * (rank - below) / c
        below += c
    raise AssertionError("unreachable: rank never exceeds the total")  # pragma: no cover


# --------------------------------------------------------------------------------------------------------------------
# Validation helpers
# --------------------------------------------------------------------------------------------------------------------


def _check_alpha(alpha: float) -> None:
    if not 0 < alpha < 1:
        raise ValueError(f"alpha must be strictly between 0 and 1, got {alpha}")


def _check_binary(successes: int, n: int, arm: str) -> None:
    if n < 0 or successes < 0:
        raise ValueError(f"arm {arm}: counts must not be negative (successes={successes}, n={n})")
    if successes > n:
        raise ValueError(f"arm {arm}: successes ({successes}) exceed observations ({n})")


def _check_summary(summary: Sequence[float], arm: str) -> tuple[int, float, float]:
    if len(summary) != 3:
        raise ValueError(f"arm {arm}: a summary is (n, total, total_sq), got {len(summary)} values")
    n, total, total_sq = int(summary[0]), float(summary[1]), float(summary[2])
    if n < 0:
        raise ValueError(f"arm {arm}: n must not be negative, got {n}")
    if not (math.isfinite(total) and math.isfinite(total_sq)) or total_sq < 0:
        raise ValueError(f"arm {arm}: total and total_sq must be finite and total_sq non-negative")
    return n, total, total_sq


def _mean_var(n: int, total: float, total_sq: float) -> tuple[float | None, float | None]:
    """Return the mean and unbiased sample variance of a summary (None where undefined)."""
    mean = total / n if n else None
    if n < 2:
        return mean, None
    # Clamp: rounding in total_sq - total²/n can dip just below zero for constant data.
    return mean, max(0.0, (total_sq - total * total / n) / (n - 1))


def summarize(values: Sequence[float]) -> Summary:
    """Return the running summary (n, total, total_sq) of raw values."""
    arr = np.asarray(values, dtype=float)
    return int(arr.size), float(arr.sum()), float(np.dot(arr, arr))


def summary_merge(a: Summary, b: Summary) -> Summary:
    """Add two running summaries, as when combining batches or shards."""
    return a[0] + b[0], a[1] + b[1], a[2] + b[2]


# --------------------------------------------------------------------------------------------------------------------
# Fixed-horizon tests: valid only when looked at once, at a sample size fixed in advance
# --------------------------------------------------------------------------------------------------------------------


def two_proportion_ztest(successes_a: int, n_a: int, successes_b: int, n_b: int, alpha: float = 0.05) -> dict[str, Any]:
    """Test whether two success rates differ with a pooled z-test, with an unpooled Wald CI for rate_b - rate_a."""
    _check_binary(successes_a, n_a, "A")
    _check_binary(successes_b, n_b, "B")
    _check_alpha(alpha)
    rate_a = successes_a / n_a if n_a else None
    rate_b = successes_b / n_b if n_b else None
    result: dict[str, Any] = {
        "method": "two-proportion z-test (pooled)",
        "n_a": n_a,
        "n_b": n_b,
        "rate_a": rate_a,
        "rate_b": rate_b,
        "difference": None,
        "ci_low": None,
        "ci_high": None,
        "statistic": None,
        "p_value": None,
        "significant": False,
    }
    if rate_a is None or rate_b is None:
        result["note"] = "an arm has no observations yet"
        return result
    result["difference"] = difference = rate_b - rate_a
    se_unpooled = math.sqrt(rate_a * (1 - rate_a) / n_a + rate_b * (1 - rate_b) / n_b)
    if se_unpooled > 0:
        half_width = float(stats.norm.ppf(1 - alpha / 2)) * se_unpooled
        result["ci_low"], result["ci_high"] = difference - half_width, difference + half_width
    pooled = (successes_a + successes_b) / (n_a + n_b)
    if pooled in (0.0, 1.0):
        result["note"] = "every observation in both arms has the same outcome; there is no variance to test"
        return result
    if se_unpooled == 0:
        result["note"] = "both observed rates are 0 or 1, so the Wald interval is undefined"
    z = difference / math.sqrt(pooled * (1 - pooled) * (1 / n_a + 1 / n_b))
    p_value = float(2 * stats.norm.sf(abs(z)))
    result.update(statistic=z, p_value=p_value, significant=p_value < alpha)
    return result


def welch_ttest(summary_a: Summary, summary_b: Summary, alpha: float = 0.05) -> dict[str, Any]:
    """Test whether two means differ with Welch's t-test, computed from running summaries (n, total, total_sq)."""
    n_a, total_a, sq_a = _check_summary(summary_a, "A")
    n_b, total_b, sq_b = _check_summary(summary_b, "B")
    _check_alpha(alpha)
    mean_a, var_a = _mean_var(n_a, total_a, sq_a)
    mean_b, var_b = _mean_var(n_b, total_b, sq_b)
    result: dict[str, Any] = {
        "method": "Welch t-test",
        "n_a": n_a,
        "n_b": n_b,
        "mean_a": mean_a,
        "mean_b": mean_b,
        "difference": mean_b - mean_a if mean_a is not None and mean_b is not None else None,
        "ci_low": None,
        "ci_high": None,
        "statistic": None,
        "df": None,
        "p_value": None,
        "significant": False,
    }
    if var_a is None or var_b is None:
        result["note"] = "each arm needs at least 2 observations"
        return result
    se2_a, se2_b = var_a / n_a, var_b / n_b
    se2 = se2_a + se2_b
    if se2 == 0:
        result["note"] = "both arms have zero variance; there is nothing to test"
        return result
    se = math.sqrt(se2)
    df = se2 * se2 / (se2_a * se2_a / (n_a - 1) + se2_b * se2_b / (n_b - 1))
    t = result["difference"] / se
    p_value = float(2 * stats.t.sf(abs(t), df))
    half_width = float(stats.t.ppf(1 - alpha / 2, df)) * se
    result.update(
        ci_low=result["difference"] - half_width,
        ci_high=result["difference"] + half_width,
        statistic=t,
        df=df,
        p_value=p_value,
        significant=p_value < alpha,
    )
    return result


# --------------------------------------------------------------------------------------------------------------------
# Sequential test: always-valid p-values (mSPRT)
# --------------------------------------------------------------------------------------------------------------------

# Default mixing standard deviation, in standard deviations of one observation: tau = 0.1 sigma mixes over "small"
# standardised effects (Cohen's d around 0.1), where a rollout's regressions usually sit. Scaling tau by sigma makes
# the test unit-free: for proportions sigma² = p(1-p) of the pooled rate, so at a 10% base rate tau = 0.1 * 0.3, an
# absolute difference of 3 percentage points (tau² = 9e-4). A larger effect_size finds big effects sooner, small later.
DEFAULT_EFFECT_SIZE = 0.1


def msprt(diff: float, var_diff: float, tau2: float) -> float:
    """Return the mSPRT always-valid p-value min(1, 1/Lambda) for one look at an estimated difference of means.

    Lambda = sqrt(V / (V + tau²)) * exp(tau² diff² / (2 V (V + tau²))), V = var_diff, is the likelihood ratio of
    a N(0, tau²) mixture of alternatives against "no difference" (Johari et al., "Always valid inference", normal
    approximation). Under the null it is a martingale, so by Ville's inequality the chance that 1/Lambda *ever* drops
    to alpha is at most alpha: keep the running minimum over looks for a monotone p-value.
    """
    if not math.isfinite(diff):
        raise ValueError(f"diff must be finite, got {diff}")
    if not (var_diff > 0 and math.isfinite(var_diff)):
        raise ValueError(f"var_diff must be positive and finite, got {var_diff}")
    if not (tau2 > 0 and math.isfinite(tau2)):
        raise ValueError(f"tau2 must be positive and finite, got {tau2}")
    # Work in logs: exp() of the exponent overflows long before the p-value stops being meaningful.
    log_lambda = 0.5 * math.log(var_diff / (var_diff + tau2)) + tau2 * diff * diff / (2 * var_diff * (var_diff + tau2))
    return 1.0 if log_lambda <= 0 else math.exp(-log_lambda)


def _sequential_result(
    p_value: float, tau2: float | None, n_a: int, n_b: int, alpha: float, previous_p: float, note: str | None = None
) -> dict[str, Any]:
    p_value = min(p_value, previous_p)
    tau_text = "from the data" if tau2 is None else f"{tau2:.3g}"
    result: dict[str, Any] = {
        "method": f"mSPRT always-valid p-value (normal mixture, tau²={tau_text})",
        "p_value": p_value,
        "significant": p_value <= alpha,
        "n_a": n_a,
        "n_b": n_b,
    }
    if note:
        result["note"] = note
    return result


def _check_previous_p(previous_p: float) -> None:
    if not 0 <= previous_p <= 1:
        raise ValueError(f"previous_p must be a p-value in 0..1, got {previous_p}")


def sequential_test_proportions(
    successes_a: int,
    n_a: int,
    successes_b: int,
    n_b: int,
    alpha: float = 0.05,
    *,
    effect_size: float = DEFAULT_EFFECT_SIZE,
    previous_p: float = 1.0,
) -> dict[str, Any]:
    """Return the mSPRT always-valid p-value for rate_b - rate_a, safe to check after every batch.

    Unlike `two_proportion_ztest`, whose false-positive rate grows every time it is looked at before the planned
    sample size, this p-value may be checked after every batch without inflating the false-positive rate above alpha.
    Pass the previous look's p-value as `previous_p` to keep it monotone. The difference is treated as normal with
    the pooled (null) variance p(1-p)(1/n_a + 1/n_b), and tau² = (effect_size)² p(1-p). Before any variance is seen
    (an empty arm, or every outcome equal) the p-value is 1: no evidence yet.
    """
    _check_binary(successes_a, n_a, "A")
    _check_binary(successes_b, n_b, "B")
    _check_alpha(alpha)
    _check_previous_p(previous_p)
    if n_a == 0 or n_b == 0:
        return _sequential_result(1.0, None, n_a, n_b, alpha, previous_p, "an arm has no observations yet")
    pooled = (successes_a + successes_b) / (n_a + n_b)
    if pooled in (0.0, 1.0):
        return _sequential_result(
            1.0, None, n_a, n_b, alpha, previous_p, "every observation has the same outcome; no evidence yet"
        )
    sigma2 = pooled * (1 - pooled)
    tau2 = effect_size * effect_size * sigma2
    p_value = msprt(successes_b / n_b - successes_a / n_a, sigma2 * (1 / n_a + 1 / n_b), tau2)
    return _sequential_result(p_value, tau2, n_a, n_b, alpha, previous_p)


def sequential_test_means(
    summary_a: Summary,
    summary_b: Summary,
    alpha: float = 0.05,
    *,
    effect_size: float = DEFAULT_EFFECT_SIZE,
    previous_p: float = 1.0,
) -> dict[str, Any]:
    """Return the mSPRT always-valid p-value for mean_b - mean_a, safe to check after every batch.

    Unlike `welch_ttest`, this p-value may be checked after every batch without inflating the false-positive rate
    above alpha; pass the previous look's p-value as `previous_p` to keep it monotone. The difference uses the
    unpooled variance var_a/n_a + var_b/n_b, and tau² = (effect_size)² times the pooled per-observation variance.
    Before each arm has 2 observations with some variance the p-value is 1: no evidence yet.
    """
    n_a, total_a, sq_a = _check_summary(summary_a, "A")
    n_b, total_b, sq_b = _check_summary(summary_b, "B")
    _check_alpha(alpha)
    _check_previous_p(previous_p)
    mean_a, var_a = _mean_var(n_a, total_a, sq_a)
    mean_b, var_b = _mean_var(n_b, total_b, sq_b)
    if mean_a is None or mean_b is None or var_a is None or var_b is None:
        return _sequential_result(1.0, None, n_a, n_b, alpha, previous_p, "each arm needs at least 2 observations")
    var_diff = var_a / n_a + var_b / n_b
    if var_diff == 0:
        note = "both arms have zero variance; no evidence yet"
        return _sequential_result(1.0, None, n_a, n_b, alpha, previous_p, note)
    sigma2 = ((n_a - 1) * var_a + (n_b - 1) * var_b) / (n_a + n_b - 2)
    tau2 = effect_size * effect_size * sigma2
    return _sequential_result(msprt(mean_b - mean_a, var_diff, tau2), tau2, n_a, n_b, alpha, previous_p)


# --------------------------------------------------------------------------------------------------------------------
# A/B comparison
# --------------------------------------------------------------------------------------------------------------------


def _arm_field(arm: Mapping[str, Any], key: str, label: str) -> Any:
    try:
        return arm[key]
    except KeyError:
        raise ValueError(f"arm {label} is missing {key!r}")


def _format_p(p: float) -> str:
    return "p<0.001" if p < 0.001 else f"p={p:.3g}"


def _format_rate(rate: float) -> str:
    return f"{rate:.2%}" if 0 < rate < 0.01 else f"{rate:.1%}"


def compare_arms(arm_a: Mapping[str, Any], arm_b: Mapping[str, Any], kind: str, alpha: float = 0.05) -> dict[str, Any]:
    """Compare control arm A with candidate arm B by a fixed-horizon and a sequential test, and say what it means.

    Arms are {"name", "n", "successes"} for kind "binary" or {"name", "n", "total", "total_sq"} for "continuous".
    Only the sequential test decides the conclusion, because a monitor looks at the comparison again and again.
    """
    name_a, name_b = str(arm_a.get("name") or "A"), str(arm_b.get("name") or "B")
    n_a, n_b = int(_arm_field(arm_a, "n", name_a)), int(_arm_field(arm_b, "n", name_b))
    if kind == "binary":
        s_a, s_b = int(_arm_field(arm_a, "successes", name_a)), int(_arm_field(arm_b, "successes", name_b))
        fixed = two_proportion_ztest(s_a, n_a, s_b, n_b, alpha)
        sequential = sequential_test_proportions(s_a, n_a, s_b, n_b, alpha)
        value_a, value_b = fixed["rate_a"], fixed["rate_b"]
        arms = [{"name": name_a, "n": n_a, "rate": value_a}, {"name": name_b, "n": n_b, "rate": value_b}]
    elif kind == "continuous":
        summary_a = (n_a, _arm_field(arm_a, "total", name_a), _arm_field(arm_a, "total_sq", name_a))
        summary_b = (n_b, _arm_field(arm_b, "total", name_b), _arm_field(arm_b, "total_sq", name_b))
        fixed = welch_ttest(summary_a, summary_b, alpha)
        sequential = sequential_test_means(summary_a, summary_b, alpha)
        value_a, value_b = fixed["mean_a"], fixed["mean_b"]
        arms = [{"name": name_a, "n": n_a, "mean": value_a}, {"name": name_b, "n": n_b, "mean": value_b}]
    else:
        raise ValueError(f"kind must be 'binary' or 'continuous', got {kind!r}")

    sizes = f"(n={n_b:,} vs {n_a:,})"
    if sequential["significant"]:
        if kind == "binary":
            level = f"{name_b}'s rate is {_format_rate(value_b)} vs {name_a}'s {_format_rate(value_a)}"
        else:
            level = f"{name_b} averages {value_b:,.4g} vs {name_a} {value_a:,.4g}"
        conclusion = (
            f"{level} {sizes}; the difference is significant under the sequential test "
            f"({_format_p(sequential['p_value'])})."
        )
    else:
        conclusion = (
            f"No significant difference yet between {name_b} (n={n_b:,}) and {name_a} (n={n_a:,}); keep collecting."
        )
        if fixed["significant"]:
            conclusion += (
                f" The fixed-horizon test alone ({_format_p(fixed['p_value'])}) is not enough while results are"
                " checked repeatedly."
            )
    return {"kind": kind, "arms": arms, "fixed_horizon": fixed, "sequential": sequential, "conclusion": conclusion}


# --------------------------------------------------------------------------------------------------------------------
# Distribution shift (canary analysis)
# --------------------------------------------------------------------------------------------------------------------

PSI_EPSILON = 1e-4  # floor for a category's share, so an empty category adds a large but finite term to the PSI


def label_shift(counts_a: Mapping[str, int], counts_b: Mapping[str, int]) -> dict[str, Any]:
    """Measure how far the label distribution moved from A to B by population stability index and JS distance.

    Shares below PSI_EPSILON are floored (and renormalised) for the PSI only; the Jensen-Shannon distance (base 2,
    0 = identical, 1 = disjoint) needs no smoothing. Rule of thumb: PSI < 0.1 stable, 0.1-0.25 moderate, > 0.25 major.
    """
    if any(c < 0 for c in (*counts_a.values(), *counts_b.values())):
        raise ValueError("label counts must not be negative")
    n_a, n_b = int(sum(counts_a.values())), int(sum(counts_b.values()))
    result: dict[str, Any] = {
        "method": "population stability index",
        "psi": 0.0,
        "js_distance": 0.0,
        "n_a": n_a,
        "n_b": n_b,
    }
    if n_a == 0 and n_b == 0:
        result["note"] = "both sides are empty"
        return result
    if n_a == 0 or n_b == 0:
        result.update(psi=None, js_distance=None, note="one side is empty; there is nothing to compare it with")
        return result
    labels = sorted(set(counts_a) | set(counts_b))
    p = np.array([counts_a.get(label, 0) for label in labels], dtype=float) / n_a
    q = np.array([counts_b.get(label, 0) for label in labels], dtype=float) / n_b
    p_smooth = np.maximum(p, PSI_EPSILON)
    q_smooth = np.maximum(q, PSI_EPSILON)
    p_smooth /= p_smooth.sum()
    q_smooth /= q_smooth.sum()
    result["psi"] = float(np.sum((q_smooth - p_smooth) * np.log(q_smooth / p_smooth)))
    m = (p + q) / 2
    js_divergence = (rel_entr(p, m).sum() + rel_entr(q, m).sum()) / 2 / math.log(2)
    result["js_distance"] = math.sqrt(min(1.0, max(0.0, float(js_divergence))))  # clamp rounding at both ends
    return result


def numeric_shift(values_a: Sequence[float], values_b: Sequence[float]) -> dict[str, Any]:
    """Test whether two samples of a numeric feature or score come from the same distribution (two-sample KS)."""
    result: dict[str, Any] = {
        "method": "two-sample Kolmogorov–Smirnov",
        "statistic": None,
        "p_value": None,
        "n_a": len(values_a),
        "n_b": len(values_b),
    }
    if not len(values_a) or not len(values_b):
        result["note"] = "one side is empty; there is nothing to compare"
        return result
    a, b = np.asarray(values_a, dtype=float), np.asarray(values_b, dtype=float)
    if not (np.isfinite(a).all() and np.isfinite(b).all()):
        raise ValueError("values must be finite numbers")
    ks = stats.ks_2samp(a, b)
    result.update(statistic=float(ks.statistic), p_value=float(ks.pvalue))
    return result
