//! Significance tests used to compare two prompt versions (or any A/B pair of span populations).
//!
//! Everything here is pure arithmetic: no I/O, no clocks, no randomness. Every function accepts arbitrary
//! floating-point input (including NaN, infinities, empty slices) without panicking; inputs that cannot
//! support a meaningful test yield `None` rather than a misleading p-value.
//!
//! Distribution tails come from `statrs`' regularized incomplete beta (Student's t) and complementary error
//! function (standard normal), which are accurate far into the tails, unlike naive `1 - cdf` subtraction.

use serde::Serialize;

/// Summary statistics of one sample, enough for a Welch t test.
///
/// Kept as moments (rather than raw values) so callers can feed pre-aggregated sums from the store
/// (count, sum, sum of squares) without materialising every span.
#[derive(Debug, Clone, Copy, Default, Serialize)]
pub struct Moments {
    pub n: f64,
    pub mean: f64,
    /// Sample variance with the n-1 (Bessel) denominator; 0 when n < 2.
    pub variance: f64,
}

impl Moments {
    /// Moments of the finite values in `values`; NaN and ±∞ are skipped because one bad span must not
    /// poison a whole comparison. Uses Welford's update, which stays accurate when the mean is large
    /// relative to the spread (e.g. latencies around 10 000 ms varying by a few ms).
    pub fn from_values(values: &[f64]) -> Moments {
        let mut count = 0.0_f64;
        let mut mean = 0.0_f64;
        let mut sum_sq_dev = 0.0_f64;
        for &value in values.iter().filter(|v| v.is_finite()) {
            count += 1.0;
            let delta = value - mean;
            mean += delta / count;
            sum_sq_dev += delta * (value - mean);
        }
        let variance = if count >= 2.0 { (sum_sq_dev / (count - 1.0)).max(0.0) } else { 0.0 };
        if !mean.is_finite() || !variance.is_finite() {
            return Moments::default();
        }
        Moments { n: count, mean, variance }
    }

    /// Moments from pre-aggregated count, sum and sum of squares (what a SQL `COUNT/SUM/SUM(x*x)` gives).
    ///
    /// Catastrophic cancellation can make `sum_sq - n*mean²` slightly negative; it is clamped to 0.
    /// Non-finite or non-positive `n` yields the empty default (n = 0).
    pub fn from_sums(n: f64, sum: f64, sum_sq: f64) -> Moments {
        if !(n.is_finite() && sum.is_finite() && sum_sq.is_finite()) || n <= 0.0 {
            return Moments::default();
        }
        let mean = sum / n;
        let variance = if n >= 2.0 { ((sum_sq - n * mean * mean) / (n - 1.0)).max(0.0) } else { 0.0 };
        if !mean.is_finite() || !variance.is_finite() {
            return Moments::default();
        }
        Moments { n, mean, variance }
    }

    fn is_usable(&self) -> bool {
        self.n.is_finite() && self.mean.is_finite() && self.variance.is_finite() && self.variance >= 0.0
    }
}

/// Outcome of a two-sided test. `significant` is `p_value < alpha` (false for a NaN or out-of-range alpha).
#[derive(Debug, Clone, Copy, Serialize)]
pub struct TestResult {
    pub statistic: f64,
    pub p_value: f64,
    pub significant: bool,
}

impl TestResult {
    fn new(statistic: f64, p_value: f64, alpha: f64) -> TestResult {
        let p_value = p_value.clamp(0.0, 1.0);
        let alpha_is_valid = alpha.is_finite() && alpha > 0.0 && alpha < 1.0;
        TestResult { statistic, p_value, significant: alpha_is_valid && p_value < alpha }
    }
}

/// Welch's unequal-variance t test (two-sided) with Welch–Satterthwaite degrees of freedom.
///
/// `statistic` is t for `a − b` (positive when a's mean is larger). Returns `None` when either sample has
/// n < 2, any moment is non-finite, or both variances are 0 and the means are equal (nothing to test).
/// When both variances are 0 but the means differ, the difference is certain: t = ±∞ and p = 0
/// (note `serde_json` writes ±∞ as `null`).
pub fn welch_t_test(a: &Moments, b: &Moments, alpha: f64) -> Option<TestResult> {
    if !a.is_usable() || !b.is_usable() || a.n < 2.0 || b.n < 2.0 {
        return None;
    }
    let se_sq_a = a.variance / a.n;
    let se_sq_b = b.variance / b.n;
    let se_sq = se_sq_a + se_sq_b;
    let mean_diff = a.mean - b.mean;
    if se_sq <= 0.0 {
        if mean_diff == 0.0 {
            return None;
        }
        return Some(TestResult::new(f64::INFINITY.copysign(mean_diff), 0.0, alpha));
    }
    let t = mean_diff / se_sq.sqrt();
    let df_denominator = se_sq_a * se_sq_a / (a.n - 1.0) + se_sq_b * se_sq_b / (b.n - 1.0);
    let df = se_sq * se_sq / df_denominator;
    if !t.is_finite() || !df.is_finite() || df <= 0.0 {
        return None;
    }
    Some(TestResult::new(t, students_t_two_sided_p(t, df)?, alpha))
}

/// Two-proportion z test (two-sided, pooled variance), e.g. error rates of two prompt versions.
///
/// `statistic` is z for `p_a − p_b`. Returns `None` when a sample is empty, counts are negative, non-finite
/// or exceed their n, or the pooled proportion is 0 or 1 (no variance, so no test).
pub fn two_proportion_z_test(successes_a: f64, n_a: f64, successes_b: f64, n_b: f64, alpha: f64) -> Option<TestResult> {
    let all_finite = [successes_a, n_a, successes_b, n_b].iter().all(|v| v.is_finite());
    if !all_finite || n_a <= 0.0 || n_b <= 0.0 {
        return None;
    }
    if successes_a < 0.0 || successes_b < 0.0 || successes_a > n_a || successes_b > n_b {
        return None;
    }
    let pooled = (successes_a + successes_b) / (n_a + n_b);
    if pooled <= 0.0 || pooled >= 1.0 {
        return None;
    }
    let standard_error = (pooled * (1.0 - pooled) * (1.0 / n_a + 1.0 / n_b)).sqrt();
    if standard_error.is_nan() || standard_error <= 0.0 {
        return None;
    }
    let z = (successes_a / n_a - successes_b / n_b) / standard_error;
    if !z.is_finite() {
        return None;
    }
    Some(TestResult::new(z, normal_two_sided_p(z), alpha))
}

/// Mann–Whitney U test (two-sided) for samples far from normal, such as latency with long tails.
///
/// Uses the normal approximation with tie correction and a 0.5 continuity correction — the same as
/// `scipy.stats.mannwhitneyu(a, b, method="asymptotic", use_continuity=True)`, whose `statistic` (U of `a`)
/// is what `statistic` holds. The approximation is poor below roughly 8 values per sample; callers should
/// treat such p-values as indicative. NaN values are dropped (±∞ are kept: they rank fine). Returns `None`
/// when either sample is empty after dropping NaN, or every value is tied (zero variance).
pub fn mann_whitney_u(a: &[f64], b: &[f64], alpha: f64) -> Option<TestResult> {
    let mut pooled: Vec<(f64, bool)> = a
        .iter()
        .filter(|v| !v.is_nan())
        .map(|&v| (v, true))
        .chain(b.iter().filter(|v| !v.is_nan()).map(|&v| (v, false)))
        .collect();
    let n_a = pooled.iter().filter(|(_, from_a)| *from_a).count() as f64;
    let n_b = pooled.len() as f64 - n_a;
    if n_a == 0.0 || n_b == 0.0 {
        return None;
    }
    pooled.sort_by(|x, y| x.0.total_cmp(&y.0));

    // Average ranks for ties; accumulate Σ(t³ − t) for the variance correction.
    let total = pooled.len();
    let mut rank_sum_a = 0.0;
    let mut tie_term = 0.0;
    let mut start = 0;
    while start < total {
        let mut end = start + 1;
        while end < total && pooled[end].0 == pooled[start].0 {
            end += 1;
        }
        let tied = (end - start) as f64;
        let average_rank = (start + end + 1) as f64 / 2.0; // ranks are 1-based: (start+1 + end) / 2
        let from_a = pooled[start..end].iter().filter(|(_, from_a)| *from_a).count() as f64;
        rank_sum_a += average_rank * from_a;
        tie_term += tied * tied * tied - tied;
        start = end;
    }

    let n = n_a + n_b;
    let u_a = rank_sum_a - n_a * (n_a + 1.0) / 2.0;
    let mean_u = n_a * n_b / 2.0;
    let variance_u = n_a * n_b / 12.0 * ((n + 1.0) - tie_term / (n * (n - 1.0)));
    if !variance_u.is_finite() || variance_u <= 0.0 {
        return None;
    }
    let z = ((u_a - mean_u).abs() - 0.5).max(0.0) / variance_u.sqrt();
    Some(TestResult::new(u_a, normal_two_sided_p(z), alpha))
}

/// Quantile of an ascending-sorted slice with linear interpolation between closest ranks (numpy's default,
/// "type 7"). `q` is in [0, 1] (0.95 = p95). Returns `None` for an empty slice or a `q` outside [0, 1] or NaN.
/// The slice is not re-checked for order (that would cost O(n) per call); NaN inside it propagates to the result.
pub fn quantile(sorted: &[f64], q: f64) -> Option<f64> {
    if sorted.is_empty() || !(0.0..=1.0).contains(&q) {
        return None;
    }
    let position = q * (sorted.len() - 1) as f64;
    let lower = position.floor() as usize;
    let upper = position.ceil() as usize;
    let (low_value, high_value) = (*sorted.get(lower)?, *sorted.get(upper)?);
    if lower == upper {
        return Some(low_value);
    }
    Some(low_value + (high_value - low_value) * (position - lower as f64))
}

/// P(|T| ≥ |t|) for Student's t with `df` degrees of freedom, via I_{df/(df+t²)}(df/2, 1/2).
fn students_t_two_sided_p(t: f64, df: f64) -> Option<f64> {
    let x = df / (df + t * t);
    statrs::function::beta::checked_beta_reg(df / 2.0, 0.5, x.clamp(0.0, 1.0)).ok().filter(|p| p.is_finite())
}

/// P(|Z| ≥ |z|) for the standard normal, via erfc (accurate in the far tail).
fn normal_two_sided_p(z: f64) -> f64 {
    statrs::function::erf::erfc(z.abs() / std::f64::consts::SQRT_2)
}

#[cfg(test)]
mod tests {
    use super::*;

    const TOLERANCE: f64 = 1e-4;

    fn assert_close(actual: f64, expected: f64, what: &str) {
        assert!((actual - expected).abs() <= TOLERANCE, "{what}: got {actual}, expected {expected}");
    }

    // Reference numbers below were produced with scipy 1.17.1 (see each test for the exact call).

    #[test]
    fn welch_matches_scipy_on_textbook_samples() {
        // scipy.stats.ttest_ind(a, b, equal_var=False) -> t=-2.455356398286006, p=0.021378001462866992
        let a = [27.5, 21.0, 19.0, 23.6, 17.0, 17.9, 16.9, 20.1, 21.9, 22.6, 23.1, 19.6, 19.0, 21.7, 21.4];
        let b = [27.1, 22.0, 20.8, 23.4, 23.4, 23.5, 25.8, 22.0, 24.8, 20.2, 21.9, 22.1, 22.9, 20.5, 24.4];
        let result = welch_t_test(&Moments::from_values(&a), &Moments::from_values(&b), 0.05).unwrap();
        assert_close(result.statistic, -2.455356398286006, "t");
        assert_close(result.p_value, 0.021378001462866992, "p");
        assert!(result.significant);

        // Unequal sizes and variances: t=-1.5654335235985037, p=0.14884169660532817
        let a = [17.2, 20.9, 22.6, 18.1, 21.7, 21.4, 23.5, 24.2, 14.7, 21.8];
        let b = [
            21.5, 22.8, 21.0, 23.0, 21.6, 23.6, 22.5, 20.7, 23.4, 21.8, 20.7, 21.7, 21.5, 22.5, 23.6, 21.5, 22.5, 23.5,
            21.5, 21.8,
        ];
        let result = welch_t_test(&Moments::from_values(&a), &Moments::from_values(&b), 0.05).unwrap();
        assert_close(result.statistic, -1.5654335235985037, "t");
        assert_close(result.p_value, 0.14884169660532817, "p");
        assert!(!result.significant);
    }

    #[test]
    fn welch_from_sums_matches_scipy_from_stats() {
        // scipy.stats.ttest_ind_from_stats(1.2, sqrt(0.3), 40, 1.05, sqrt(0.6), 55, equal_var=False)
        // -> t=1.1055415967851325, p=0.2717784575442889
        let sums = |n: f64, mean: f64, variance: f64| (n, n * mean, variance * (n - 1.0) + n * mean * mean);
        let (n_a, sum_a, sum_sq_a) = sums(40.0, 1.2, 0.3);
        let (n_b, sum_b, sum_sq_b) = sums(55.0, 1.05, 0.6);
        let a = Moments::from_sums(n_a, sum_a, sum_sq_a);
        let b = Moments::from_sums(n_b, sum_b, sum_sq_b);
        assert_close(a.variance, 0.3, "variance a");
        let result = welch_t_test(&a, &b, 0.05).unwrap();
        assert_close(result.statistic, 1.1055415967851325, "t");
        assert_close(result.p_value, 0.2717784575442889, "p");
    }

    #[test]
    fn moments_from_values_and_sums_agree_and_skip_nan() {
        let values = [1.0, 2.0, 3.0, 4.0, f64::NAN, f64::INFINITY];
        let moments = Moments::from_values(&values);
        assert_eq!(moments.n, 4.0);
        assert_close(moments.mean, 2.5, "mean");
        assert_close(moments.variance, 5.0 / 3.0, "variance");
        let from_sums = Moments::from_sums(4.0, 10.0, 30.0);
        assert_close(from_sums.variance, moments.variance, "variance from sums");
        assert_eq!(Moments::from_values(&[]).n, 0.0);
        assert_eq!(Moments::from_values(&[7.0]).variance, 0.0);
        assert_eq!(Moments::from_sums(0.0, 1.0, 1.0).n, 0.0);
        assert_eq!(Moments::from_sums(f64::NAN, 1.0, 1.0).n, 0.0);
        // Cancellation must not produce a negative variance.
        assert!(Moments::from_sums(3.0, 3.0e9, 3.0e18).variance >= 0.0);
        // Welford keeps precision with a large offset.
        let offset: Vec<f64> = [1.0, 2.0, 3.0, 4.0].iter().map(|v| v + 1e9).collect();
        assert_close(Moments::from_values(&offset).variance, 5.0 / 3.0, "offset variance");
    }

    #[test]
    fn welch_equal_samples_not_significant_and_degenerate_is_none() {
        let a = Moments::from_values(&[1.0, 2.0, 3.0, 4.0, 5.0]);
        let result = welch_t_test(&a, &a, 0.05).unwrap();
        assert_eq!(result.statistic, 0.0);
        assert_close(result.p_value, 1.0, "p");
        assert!(!result.significant);

        let single = Moments::from_values(&[1.0]);
        assert!(welch_t_test(&single, &a, 0.05).is_none());
        let constant = Moments::from_values(&[2.0, 2.0, 2.0]);
        assert!(welch_t_test(&constant, &constant, 0.05).is_none());
        let other_constant = Moments::from_values(&[3.0, 3.0, 3.0]);
        let certain = welch_t_test(&constant, &other_constant, 0.05).unwrap();
        assert_eq!(certain.p_value, 0.0);
        assert!(certain.statistic.is_infinite() && certain.statistic < 0.0);
        let nan = Moments { n: 10.0, mean: f64::NAN, variance: 1.0 };
        assert!(welch_t_test(&nan, &a, 0.05).is_none());
        assert!(!welch_t_test(&a, &a, f64::NAN).unwrap().significant);
    }

    #[test]
    fn welch_clearly_different_is_significant() {
        let a: Vec<f64> = (0..50).map(|i| 100.0 + (i % 7) as f64).collect();
        let b: Vec<f64> = (0..50).map(|i| 130.0 + (i % 5) as f64).collect();
        let result = welch_t_test(&Moments::from_values(&a), &Moments::from_values(&b), 0.01).unwrap();
        assert!(result.significant);
        assert!(result.p_value < 1e-10);
        assert!(result.statistic < 0.0);
    }

    #[test]
    fn two_proportion_matches_scipy() {
        // z from the pooled formula; p cross-checked with scipy.stats.chi2_contingency(correction=False)
        let cases = [
            (45.0, 500.0, 30.0, 500.0, 1.8009006755629924, 0.07171853650843422),
            (120.0, 1000.0, 100.0, 1000.0, 1.4293008498232314, 0.15291778186394195),
            (3.0, 40.0, 9.0, 35.0, -2.1465741571734474, 0.031827199132860105),
        ];
        for (successes_a, n_a, successes_b, n_b, z, p) in cases {
            let result = two_proportion_z_test(successes_a, n_a, successes_b, n_b, 0.05).unwrap();
            assert_close(result.statistic, z, "z");
            assert_close(result.p_value, p, "p");
            assert_eq!(result.significant, p < 0.05);
        }
    }

    #[test]
    fn two_proportion_degenerate_and_equal() {
        assert!(two_proportion_z_test(0.0, 0.0, 1.0, 10.0, 0.05).is_none());
        assert!(two_proportion_z_test(0.0, 10.0, 0.0, 10.0, 0.05).is_none());
        assert!(two_proportion_z_test(10.0, 10.0, 10.0, 10.0, 0.05).is_none());
        assert!(two_proportion_z_test(11.0, 10.0, 1.0, 10.0, 0.05).is_none());
        assert!(two_proportion_z_test(-1.0, 10.0, 1.0, 10.0, 0.05).is_none());
        assert!(two_proportion_z_test(f64::NAN, 10.0, 1.0, 10.0, 0.05).is_none());
        let equal = two_proportion_z_test(50.0, 1000.0, 50.0, 1000.0, 0.05).unwrap();
        assert!(!equal.significant);
        assert_close(equal.p_value, 1.0, "p");
        let different = two_proportion_z_test(200.0, 1000.0, 50.0, 1000.0, 0.05).unwrap();
        assert!(different.significant);
    }

    #[test]
    fn mann_whitney_matches_scipy_with_ties() {
        // scipy.stats.mannwhitneyu(a, b, alternative="two-sided", method="asymptotic", use_continuity=True)
        let latency_a =
            [120.0, 135.0, 128.0, 410.0, 132.0, 140.0, 128.0, 125.0, 900.0, 131.0, 129.0, 128.0, 150.0, 133.0, 127.0];
        let latency_b =
            [142.0, 150.0, 128.0, 160.0, 155.0, 148.0, 1200.0, 151.0, 149.0, 158.0, 160.0, 147.0, 128.0, 152.0];
        let result = mann_whitney_u(&latency_a, &latency_b, 0.05).unwrap();
        assert_close(result.statistic, 47.5, "U");
        assert_close(result.p_value, 0.012615196685633533, "p");
        assert!(result.significant);

        let a = [1.0, 2.0, 2.0, 3.0, 3.0, 3.0, 4.0, 5.0];
        let b = [3.0, 4.0, 4.0, 5.0, 5.0, 6.0, 7.0, 7.0, 8.0];
        let result = mann_whitney_u(&a, &b, 0.05).unwrap();
        assert_close(result.statistic, 7.5, "U");
        assert_close(result.p_value, 0.006373133838085873, "p");
    }

    #[test]
    fn mann_whitney_equal_degenerate_and_nan() {
        let a = [5.0, 1.0, 4.0, 2.0, 3.0];
        let same = mann_whitney_u(&a, &a, 0.05).unwrap();
        assert!(!same.significant);
        assert_close(same.p_value, 1.0, "p");
        assert!(mann_whitney_u(&[], &a, 0.05).is_none());
        assert!(mann_whitney_u(&[f64::NAN], &a, 0.05).is_none());
        assert!(mann_whitney_u(&[2.0, 2.0], &[2.0, 2.0, 2.0], 0.05).is_none());
        let with_nan = mann_whitney_u(&[1.0, f64::NAN, 2.0], &[3.0, 4.0, f64::INFINITY], 0.05).unwrap();
        assert!(with_nan.p_value.is_finite());
    }

    #[test]
    fn quantile_matches_numpy_linear() {
        // numpy.quantile([1, 2, 3.5, 4, 10], q)
        let sorted = [1.0, 2.0, 3.5, 4.0, 10.0];
        for (q, expected) in [(0.0, 1.0), (0.25, 2.0), (0.5, 3.5), (0.9, 7.6), (0.95, 8.8), (1.0, 10.0)] {
            assert_close(quantile(&sorted, q).unwrap(), expected, "quantile");
        }
        assert_eq!(quantile(&[], 0.5), None);
        assert_eq!(quantile(&sorted, 1.5), None);
        assert_eq!(quantile(&sorted, -0.1), None);
        assert_eq!(quantile(&sorted, f64::NAN), None);
        assert_eq!(quantile(&[42.0], 0.99), Some(42.0));
    }
}
