"""Deployment statistics: each result checked against an independent reference computation, no database."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import stats as scipy_stats

from deployments import stats
from deployments.stats import (
    HISTOGRAM_SIZE,
    LATENCY_BOUNDS_MS,
    compare_arms,
    histogram_merge,
    histogram_percentile,
    label_shift,
    latency_bucket,
    msprt,
    numeric_shift,
    sequential_test_means,
    sequential_test_proportions,
    summarize,
    two_proportion_ztest,
    welch_ttest,
)


def _normal_two_sided_p(z: float) -> float:
    return math.erfc(abs(z) / math.sqrt(2))


def _histogram(bucket_counts: dict[int, int]) -> list[int]:
    counts = [0] * HISTOGRAM_SIZE
    for i, c in bucket_counts.items():
        counts[i] = c
    return counts


# --- latency histograms ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("ms", "bucket"),
    [(0, 0), (0.25, 0), (0.26, 1), (1, 2), (12, 8), (15, 8), (10000, 22), (10000.1, 23), (1e9, 23), (-3, 0)],
)
def test_latency_bucket_uses_inclusive_upper_bounds(ms, bucket):
    assert latency_bucket(ms) == bucket


def test_latency_bucket_rejects_nan():
    with pytest.raises(ValueError):
        latency_bucket(float("nan"))


def test_histogram_has_one_overflow_bucket():
    assert HISTOGRAM_SIZE == len(LATENCY_BOUNDS_MS) + 1 == 24
    assert list(LATENCY_BOUNDS_MS) == sorted(LATENCY_BOUNDS_MS)


def test_histogram_merge_pads_short_and_empty_lists():
    assert histogram_merge([], []) == [0] * HISTOGRAM_SIZE
    assert histogram_merge([1, 2], []) == [1, 2] + [0] * (HISTOGRAM_SIZE - 2)
    assert histogram_merge([1] * HISTOGRAM_SIZE, [0, 5]) == [1, 6] + [1] * (HISTOGRAM_SIZE - 2)
    assert histogram_merge([1] * HISTOGRAM_SIZE, [2] * HISTOGRAM_SIZE) == [3] * HISTOGRAM_SIZE


def test_histogram_merge_rejects_malformed_histograms():
    with pytest.raises(ValueError):
        histogram_merge([0] * (HISTOGRAM_SIZE + 1), [])
    with pytest.raises(ValueError):
        histogram_merge([-1], [])


def test_histogram_percentile_of_empty_histogram_is_none():
    assert histogram_percentile([], 50) is None
    assert histogram_percentile([0] * HISTOGRAM_SIZE, 99) is None


def test_histogram_percentile_interpolates_inside_the_bucket():
    # 60 requests in (0.5, 1] ms and 40 in (1, 2] ms, worked out by hand.
    counts = _histogram({2: 60, 3: 40})
    assert histogram_percentile(counts, 50) == pytest.approx(0.5 + 0.5 * 50 / 60)
    assert histogram_percentile(counts, 90) == pytest.approx(1 + 1 * 30 / 40)
    assert histogram_percentile(counts, 0) == pytest.approx(0.5)
    assert histogram_percentile(counts, 100) == pytest.approx(2.0)


def test_histogram_percentile_first_bucket_starts_at_zero_and_overflow_returns_last_bound():
    assert histogram_percentile(_histogram({0: 4}), 50) == pytest.approx(0.125)
    assert histogram_percentile(_histogram({23: 5}), 50) == 10000
    assert histogram_percentile(_histogram({8: 1, 23: 99}), 99) == 10000


def test_histogram_percentile_tracks_numpy_on_known_data():
    rng = np.random.default_rng(7)
    latencies = rng.uniform(20, 30, size=20_000)  # all inside the (20, 30] bucket, uniformly
    counts = [0] * HISTOGRAM_SIZE
    for ms in latencies:
        counts[latency_bucket(float(ms))] += 1
    assert counts[10] == 20_000
    for q in (10, 50, 95):
        assert histogram_percentile(counts, q) == pytest.approx(np.percentile(latencies, q), abs=0.1)


@pytest.mark.parametrize("q", [-1, 100.5])
def test_histogram_percentile_rejects_q_outside_0_100(q):
    with pytest.raises(ValueError):
        histogram_percentile([1], q)


# --- two-proportion z-test ------------------------------------------------------------------------------------------


def test_ztest_matches_textbook_computation():
    # A: 120/1000 = 12%, B: 150/1000 = 15%; pooled rate 0.135.
    result = two_proportion_ztest(120, 1000, 150, 1000)
    pooled = 270 / 2000
    z = (0.15 - 0.12) / math.sqrt(pooled * (1 - pooled) * (2 / 1000))
    se = math.sqrt(0.12 * 0.88 / 1000 + 0.15 * 0.85 / 1000)
    assert result["method"] == "two-proportion z-test (pooled)"
    assert (result["n_a"], result["n_b"]) == (1000, 1000)
    assert result["rate_a"] == pytest.approx(0.12)
    assert result["rate_b"] == pytest.approx(0.15)
    assert result["difference"] == pytest.approx(0.03)
    assert result["statistic"] == pytest.approx(z) == pytest.approx(1.9631, abs=1e-4)
    assert result["p_value"] == pytest.approx(_normal_two_sided_p(z)) == pytest.approx(0.0496, abs=1e-4)
    assert result["significant"] is True
    assert result["ci_low"] == pytest.approx(0.03 - 1.959964 * se, abs=1e-6)
    assert result["ci_high"] == pytest.approx(0.03 + 1.959964 * se, abs=1e-6)
    assert "note" not in result


def test_ztest_alpha_changes_significance_and_interval_width():
    strict = two_proportion_ztest(120, 1000, 150, 1000, alpha=0.01)
    loose = two_proportion_ztest(120, 1000, 150, 1000, alpha=0.05)
    assert strict["significant"] is False
    assert strict["ci_high"] - strict["ci_low"] > loose["ci_high"] - loose["ci_low"]


def test_ztest_swapping_arms_negates_the_difference():
    ab = two_proportion_ztest(30, 200, 45, 210)
    ba = two_proportion_ztest(45, 210, 30, 200)
    assert ab["statistic"] == pytest.approx(-ba["statistic"])
    assert ab["p_value"] == pytest.approx(ba["p_value"])
    assert ab["ci_low"] == pytest.approx(-ba["ci_high"])


@pytest.mark.parametrize("counts", [(0, 0, 5, 10), (5, 10, 0, 0), (0, 0, 0, 0), (0, 10, 0, 20), (10, 10, 20, 20)])
def test_ztest_degenerate_inputs_return_none_with_note(counts):
    result = two_proportion_ztest(*counts)
    assert result["statistic"] is None
    assert result["p_value"] is None
    assert result["significant"] is False
    assert result["note"]


def test_ztest_all_fail_vs_all_succeed_has_a_statistic_but_no_wald_interval():
    result = two_proportion_ztest(0, 10, 10, 10)
    assert result["statistic"] == pytest.approx(1 / math.sqrt(0.25 * 0.2))
    assert result["ci_low"] is None and result["ci_high"] is None
    assert result["note"]


@pytest.mark.parametrize(
    ("args", "kwargs"),
    [
        ((-1, 10, 1, 10), {}),
        ((1, -10, 1, 10), {}),
        ((11, 10, 1, 10), {}),
        ((1, 10, 3, 2), {}),
        ((1, 10, 1, 10), {"alpha": 0}),
    ],
)
def test_ztest_rejects_impossible_counts(args, kwargs):
    with pytest.raises(ValueError):
        two_proportion_ztest(*args, **kwargs)


# --- Welch t-test from summaries ------------------------------------------------------------------------------------


def test_welch_from_summaries_matches_scipy_on_raw_samples():
    rng = np.random.default_rng(11)
    a = rng.normal(100, 15, size=40)
    b = rng.normal(108, 30, size=65)
    result = welch_ttest(summarize(a), summarize(b))
    reference = scipy_stats.ttest_ind(b, a, equal_var=False)  # b first: the difference is b - a
    interval = reference.confidence_interval(0.95)
    assert result["method"] == "Welch t-test"
    assert (result["n_a"], result["n_b"]) == (40, 65)
    assert result["mean_a"] == pytest.approx(a.mean())
    assert result["mean_b"] == pytest.approx(b.mean())
    assert result["difference"] == pytest.approx(b.mean() - a.mean())
    assert result["statistic"] == pytest.approx(reference.statistic, rel=1e-9)
    assert result["p_value"] == pytest.approx(reference.pvalue, rel=1e-9)
    assert result["df"] == pytest.approx(reference.df, rel=1e-9)
    assert result["ci_low"] == pytest.approx(interval.low, rel=1e-9)
    assert result["ci_high"] == pytest.approx(interval.high, rel=1e-9)
    assert result["significant"] == (reference.pvalue < 0.05)


def test_welch_summaries_merge_like_the_database_would():
    rng = np.random.default_rng(3)
    a, b = rng.normal(5, 1, size=300), rng.normal(5.4, 1, size=280)
    merged = stats.summary_merge(summarize(a[:100]), summarize(a[100:]))
    assert merged[0] == 300
    result = welch_ttest(merged, summarize(b))
    reference = scipy_stats.ttest_ind(b, a, equal_var=False)
    assert result["p_value"] == pytest.approx(reference.pvalue, rel=1e-7)
    assert result["significant"] is True


@pytest.mark.parametrize(
    ("summary_a", "summary_b"),
    [((0, 0, 0), (5, 10, 30)), ((1, 3, 9), (5, 10, 30)), ((3, 6, 12), (4, 8, 16)), ((5, 10, 30), (1, 3, 9))],
)
def test_welch_degenerate_inputs_return_none_with_note(summary_a, summary_b):
    result = welch_ttest(summary_a, summary_b)
    assert result["statistic"] is None and result["p_value"] is None and result["df"] is None
    assert result["ci_low"] is None and result["ci_high"] is None
    assert result["significant"] is False
    assert result["note"]


@pytest.mark.filterwarnings("ignore:Precision loss occurred:RuntimeWarning")  # scipy's warning about constant data
def test_welch_one_constant_arm_is_still_testable():
    a, b = [2.0] * 10, [1.0, 2.0, 3.0, 4.0, 5.0]
    result = welch_ttest(summarize(a), summarize(b))
    reference = scipy_stats.ttest_ind(b, a, equal_var=False)
    assert result["p_value"] == pytest.approx(reference.pvalue)
    assert result["df"] == pytest.approx(4)


@pytest.mark.parametrize("bad", [(-1, 0, 0), (3, 1.0), (3, float("nan"), 1.0), (3, 1.0, -1.0)])
def test_welch_rejects_malformed_summaries(bad):
    with pytest.raises(ValueError):
        welch_ttest(bad, (5, 10, 30))


# --- mSPRT ----------------------------------------------------------------------------------------------------------


def test_msprt_matches_the_mixture_likelihood_ratio():
    diff, v, tau2 = 0.05, 1e-4, 9e-4  # z = 5
    lam = math.sqrt(v / (v + tau2)) * math.exp(tau2 * diff**2 / (2 * v * (v + tau2)))
    assert msprt(diff, v, tau2) == pytest.approx(min(1.0, 1 / lam))
    assert msprt(diff, v, tau2) < 0.05


def test_msprt_is_one_without_a_difference_and_falls_with_evidence():
    assert msprt(0.0, 1e-3, 1e-2) == 1.0
    assert msprt(1e-4, 1e-3, 1e-2) == 1.0
    p_values = [msprt(d, 1e-3, 1e-2) for d in (0.05, 0.1, 0.15, 0.2)]
    assert p_values == sorted(p_values, reverse=True)
    assert msprt(-0.2, 1e-3, 1e-2) == pytest.approx(msprt(0.2, 1e-3, 1e-2))
    assert msprt(50.0, 1e-6, 1.0) == 0.0  # overwhelming evidence underflows to 0 rather than overflowing


@pytest.mark.parametrize(
    ("diff", "var_diff", "tau2"), [(0.1, 0.0, 1.0), (0.1, -1.0, 1.0), (0.1, 1.0, 0.0), (math.inf, 1.0, 1.0)]
)
def test_msprt_rejects_invalid_variances(diff, var_diff, tau2):
    with pytest.raises(ValueError):
        msprt(diff, var_diff, tau2)


def test_sequential_running_minimum_never_increases_and_detects_a_real_effect():
    rng = np.random.default_rng(5)
    successes_a = successes_b = n = 0
    p_value, seen = 1.0, []
    for _ in range(40):
        successes_a += int(rng.binomial(100, 0.10))
        successes_b += int(rng.binomial(100, 0.16))
        n += 100
        result = sequential_test_proportions(successes_a, n, successes_b, n, previous_p=p_value)
        p_value = result["p_value"]
        seen.append(p_value)
    assert seen == sorted(seen, reverse=True)
    assert result["significant"] is True
    assert result["method"].startswith("mSPRT always-valid p-value (normal mixture, tau²=")
    assert (result["n_a"], result["n_b"]) == (4000, 4000)


def test_sequential_proportions_without_difference_is_one():
    result = sequential_test_proportions(100, 1000, 100, 1000)
    assert result["p_value"] == 1.0
    assert result["significant"] is False


@pytest.mark.parametrize("counts", [(0, 0, 3, 10), (0, 10, 0, 10), (10, 10, 5, 5)])
def test_sequential_proportions_degenerate_inputs_give_no_evidence(counts):
    result = sequential_test_proportions(*counts)
    assert result["p_value"] == 1.0
    assert result["significant"] is False
    assert result["note"]


def test_sequential_proportions_rejects_impossible_counts():
    with pytest.raises(ValueError):
        sequential_test_proportions(5, 4, 1, 10)
    with pytest.raises(ValueError):
        sequential_test_proportions(1, 4, 1, 10, previous_p=1.5)


def test_sequential_means_agrees_in_direction_with_welch_and_handles_degenerate_input():
    rng = np.random.default_rng(9)
    a, b = rng.normal(100, 10, size=2000), rng.normal(103, 10, size=2000)
    result = sequential_test_means(summarize(a), summarize(b))
    assert result["significant"] is True
    assert welch_ttest(summarize(a), summarize(b))["p_value"] <= result["p_value"]  # the price of peeking safely
    assert sequential_test_means((1, 5, 25), summarize(b))["p_value"] == 1.0
    assert sequential_test_means((3, 6, 12), (4, 8, 16))["note"]


def test_peeking_inflates_the_fixed_test_but_not_the_always_valid_one():
    """200 A/A experiments, each looked at after every batch of 50 per arm, 20 looks."""
    rng = np.random.default_rng(20261126)
    experiments, looks, batch, rate, alpha = 200, 20, 50, 0.1, 0.05
    cumulative = rng.binomial(batch, rate, size=(experiments, looks, 2)).cumsum(axis=1)
    fixed_false_positives = sequential_false_positives = 0
    for experiment in cumulative:
        fixed_hit = sequential_hit = False
        p_value = 1.0
        for look, (successes_a, successes_b) in enumerate(experiment, start=1):
            n = look * batch
            fixed = two_proportion_ztest(int(successes_a), n, int(successes_b), n, alpha)
            fixed_hit = fixed_hit or fixed["significant"]
            sequential = sequential_test_proportions(
                int(successes_a), n, int(successes_b), n, alpha, previous_p=p_value
            )
            p_value = sequential["p_value"]
            sequential_hit = sequential_hit or sequential["significant"]
        fixed_false_positives += fixed_hit
        sequential_false_positives += sequential_hit
    fixed_rate = fixed_false_positives / experiments
    sequential_rate = sequential_false_positives / experiments
    assert sequential_rate <= alpha + 0.02  # about alpha, allowing for 200 experiments' noise
    assert fixed_rate >= 2 * alpha  # peeking at a fixed-horizon test inflates its false-positive rate
    assert fixed_rate > sequential_rate


# --- compare_arms ---------------------------------------------------------------------------------------------------


def test_compare_binary_significant_names_rates_and_sample_sizes():
    result = compare_arms(
        {"name": "v1", "n": 10_000, "successes": 1_000}, {"name": "v2", "n": 10_200, "successes": 1_300}, "binary"
    )
    assert result["kind"] == "binary"
    assert result["arms"] == [
        {"name": "v1", "n": 10_000, "rate": pytest.approx(0.1)},
        {"name": "v2", "n": 10_200, "rate": pytest.approx(1_300 / 10_200)},
    ]
    assert result["fixed_horizon"]["method"] == "two-proportion z-test (pooled)"
    assert result["sequential"]["significant"] is True
    conclusion = result["conclusion"]
    assert "v2" in conclusion and "v1" in conclusion
    assert "12.7%" in conclusion and "10.0%" in conclusion
    assert "n=10,200 vs 10,000" in conclusion
    assert "significant under the sequential test (p" in conclusion


def test_compare_small_samples_says_keep_collecting_with_sample_sizes():
    result = compare_arms({"name": "A", "n": 38, "successes": 4}, {"name": "B", "n": 40, "successes": 6}, "binary")
    assert result["sequential"]["significant"] is False
    assert result["conclusion"].startswith("No significant difference yet")
    assert "n=40" in result["conclusion"] and "n=38" in result["conclusion"]
    assert "keep collecting" in result["conclusion"]


def test_compare_never_names_a_winner_on_a_fixed_horizon_result_alone():
    arm_a, arm_b = {"name": "A", "n": 1000, "successes": 120}, {"name": "B", "n": 1000, "successes": 150}
    result = compare_arms(arm_a, arm_b, "binary")
    assert result["fixed_horizon"]["significant"] is True
    assert result["sequential"]["significant"] is False
    assert result["conclusion"].startswith("No significant difference yet")
    assert "n=1,000" in result["conclusion"]
    assert "fixed-horizon" in result["conclusion"]


def test_compare_continuous_uses_welch_and_the_sequential_means_test():
    rng = np.random.default_rng(2)
    a, b = rng.normal(120, 20, size=3000), rng.normal(126, 20, size=3000)
    (n_a, total_a, sq_a), (n_b, total_b, sq_b) = summarize(a), summarize(b)
    result = compare_arms(
        {"name": "control", "n": n_a, "total": total_a, "total_sq": sq_a},
        {"name": "canary", "n": n_b, "total": total_b, "total_sq": sq_b},
        "continuous",
    )
    assert result["fixed_horizon"]["method"] == "Welch t-test"
    assert result["arms"][0] == {"name": "control", "n": 3000, "mean": pytest.approx(a.mean())}
    assert result["sequential"]["significant"] is True
    assert "n=3,000 vs 3,000" in result["conclusion"]
    assert "canary averages" in result["conclusion"]


def test_compare_with_an_empty_arm_still_reports_sample_sizes():
    result = compare_arms({"name": "A", "n": 0, "successes": 0}, {"name": "B", "n": 12, "successes": 3}, "binary")
    assert result["conclusion"] == "No significant difference yet between B (n=12) and A (n=0); keep collecting."


def test_compare_rejects_unknown_kind_and_missing_fields():
    with pytest.raises(ValueError):
        compare_arms({"name": "A", "n": 1, "successes": 0}, {"name": "B", "n": 1, "successes": 0}, "ordinal")
    with pytest.raises(ValueError):
        compare_arms({"name": "A", "n": 1}, {"name": "B", "n": 1, "successes": 0}, "binary")


# --- distribution shift ---------------------------------------------------------------------------------------------


def test_label_shift_matches_hand_computation_and_scipy():
    result = label_shift({"cat": 50, "dog": 50}, {"cat": 80, "dog": 20})
    psi = (0.8 - 0.5) * math.log(0.8 / 0.5) + (0.2 - 0.5) * math.log(0.2 / 0.5)
    m = [0.65, 0.35]
    kl_a = 0.5 * math.log2(0.5 / m[0]) + 0.5 * math.log2(0.5 / m[1])
    kl_b = 0.8 * math.log2(0.8 / m[0]) + 0.2 * math.log2(0.2 / m[1])
    assert result["method"] == "population stability index"
    assert (result["n_a"], result["n_b"]) == (100, 100)
    assert result["psi"] == pytest.approx(psi)
    assert result["js_distance"] == pytest.approx(math.sqrt((kl_a + kl_b) / 2))
    assert result["js_distance"] == pytest.approx(
        float(scipy_stats.entropy([0.5, 0.5], m, base=2) + scipy_stats.entropy([0.8, 0.2], m, base=2)) ** 0.5 / 2**0.5
    )


def test_label_shift_identical_and_disjoint_distributions():
    same = label_shift({"x": 3, "y": 7}, {"y": 70, "x": 30})
    assert same["psi"] == pytest.approx(0.0)
    assert same["js_distance"] == pytest.approx(0.0)
    disjoint = label_shift({"x": 10}, {"y": 10, "x": 0})
    assert disjoint["js_distance"] == pytest.approx(1.0)
    assert math.isfinite(disjoint["psi"]) and disjoint["psi"] > 5


def test_label_shift_empty_sides():
    both = label_shift({}, {"x": 0})
    assert both["psi"] == 0 and both["js_distance"] == 0 and both["note"]
    one = label_shift({"x": 4}, {})
    assert one["psi"] is None and one["js_distance"] is None and one["note"]
    with pytest.raises(ValueError):
        label_shift({"x": -1}, {"x": 1})


def test_numeric_shift_on_known_and_random_samples():
    disjoint = numeric_shift([1.0, 2.0, 3.0], [4.0, 5.0, 6.0])
    assert disjoint["method"] == "two-sample Kolmogorov–Smirnov"
    assert disjoint["statistic"] == pytest.approx(1.0)
    assert disjoint["p_value"] == pytest.approx(0.1)  # exact: 2 / C(6, 3)
    assert (disjoint["n_a"], disjoint["n_b"]) == (3, 3)
    rng = np.random.default_rng(1)
    base = rng.normal(size=2000).tolist()
    assert numeric_shift(base, rng.normal(size=2000).tolist())["p_value"] > 0.01
    assert numeric_shift(base, rng.normal(0.3, 1, size=2000).tolist())["p_value"] < 1e-6


def test_numeric_shift_empty_side_gives_none():
    result = numeric_shift([], [1.0, 2.0])
    assert result["statistic"] is None and result["p_value"] is None
    assert (result["n_a"], result["n_b"]) == (0, 2)
    with pytest.raises(ValueError):
        numeric_shift([float("nan")], [1.0])
