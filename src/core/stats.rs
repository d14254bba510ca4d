//! The statistics of experiments: normal, Student t and chi-square distributions, sample
//! sizes and power, the two-proportion z-test, Newcomb's interval for a difference of
//! proportions, Welch's t-test, Holm's adjustment. Each is the formula statsmodels or scipy
//! uses (named at each function), computed to about 1e-14 relative, so that results agree
//! with theirs to 1e-9.

use super::error::invalid;
use super::CoreError;

const SQRT_2: f64 = std::f64::consts::SQRT_2;

// ---------------------------------------------------------------------------- normal

/// P(Z <= x).
pub fn norm_cdf(x: f64) -> f64 {
    0.5 * libm::erfc(-x / SQRT_2)
}

/// P(Z > x), accurate in the upper tail.
pub fn norm_sf(x: f64) -> f64 {
    0.5 * libm::erfc(x / SQRT_2)
}

fn norm_pdf(x: f64) -> f64 {
    (-0.5 * x * x).exp() / (2.0 * std::f64::consts::PI).sqrt()
}

/// The x with P(Z <= x) = p (0 < p < 1): Acklam's rational approximation (1e-9), then two
/// Halley steps on erfc, to the last few ulps.
pub fn norm_ppf(p: f64) -> f64 {
    if p <= 0.0 {
        return f64::NEG_INFINITY;
    }
    if p >= 1.0 {
        return f64::INFINITY;
    }
    const A: [f64; 6] =
        [-3.969683028665376e1, 2.209460984245205e2, -2.759285104469687e2, 1.38357751867269e2, -3.066479806614716e1, 2.506628277459239];
    const B: [f64; 5] = [-5.447609879822406e1, 1.615858368580409e2, -1.556989798598866e2, 6.680131188771972e1, -1.328068155288572e1];
    const C: [f64; 6] =
        [-7.784894002430293e-3, -3.223964580411365e-1, -2.400758277161838, -2.549732539343734, 4.374664141464968, 2.938163982698783];
    const D: [f64; 4] = [7.784695709041462e-3, 3.224671290700398e-1, 2.445134137142996, 3.754408661907416];
    let low = 0.02425;
    let mut x = if p < low {
        let q = (-2.0 * p.ln()).sqrt();
        (((((C[0] * q + C[1]) * q + C[2]) * q + C[3]) * q + C[4]) * q + C[5]) / ((((D[0] * q + D[1]) * q + D[2]) * q + D[3]) * q + 1.0)
    } else if p <= 1.0 - low {
        let q = p - 0.5;
        let r = q * q;
        (((((A[0] * r + A[1]) * r + A[2]) * r + A[3]) * r + A[4]) * r + A[5]) * q
            / (((((B[0] * r + B[1]) * r + B[2]) * r + B[3]) * r + B[4]) * r + 1.0)
    } else {
        let q = (-2.0 * (1.0 - p).ln()).sqrt();
        -(((((C[0] * q + C[1]) * q + C[2]) * q + C[3]) * q + C[4]) * q + C[5]) / ((((D[0] * q + D[1]) * q + D[2]) * q + D[3]) * q + 1.0)
    };
    for _ in 0..2 {
        // Halley on f(x) = cdf(x) - p, measured in the tail where p is, for accuracy.
        let e = if p < 0.5 { norm_cdf(x) - p } else { (1.0 - p) - norm_sf(x) };
        let u = e / norm_pdf(x);
        x -= u / (1.0 + x * u / 2.0);
    }
    x
}

/// The x with P(Z > x) = q (scipy's `norm.isf`), accurate for tiny q.
pub fn norm_isf(q: f64) -> f64 {
    -norm_ppf(q)
}

// ---------------------------------------------------------------------------- gamma, beta

fn ln_gamma(x: f64) -> f64 {
    libm::lgamma(x)
}

/// ln Γ(a) - ln Γ(a + b), without the cancellation of two large log-gammas when a is large.
fn ln_gamma_ratio(a: f64, b: f64) -> f64 {
    if a < 20.0 {
        return ln_gamma(a) - ln_gamma(a + b);
    }
    // Stirling: ln Γ(z) = (z - 1/2) ln z - z + ln(2π)/2 + c(z), c(z) = 1/12z - 1/360z³ + ...
    let c = |z: f64| {
        let z2 = z * z;
        1.0 / (12.0 * z) - 1.0 / (360.0 * z * z2) + 1.0 / (1260.0 * z * z2 * z2) - 1.0 / (1680.0 * z * z2 * z2 * z2)
    };
    let ab = a + b;
    -(a - 0.5) * (b / a).ln_1p() - b * ab.ln() + b + (c(a) - c(ab))
}

/// ln B(a, b).
fn ln_beta(a: f64, b: f64) -> f64 {
    if a >= b {
        ln_gamma(b) + ln_gamma_ratio(a, b)
    } else {
        ln_gamma(a) + ln_gamma_ratio(b, a)
    }
}

/// The continued fraction of the incomplete beta function (modified Lentz), valid for
/// x < (a + 1) / (a + b + 2).
fn beta_cf(a: f64, b: f64, x: f64) -> f64 {
    const TINY: f64 = 1e-300;
    let (qab, qap, qam) = (a + b, a + 1.0, a - 1.0);
    let mut c = 1.0;
    let mut d = 1.0 - qab * x / qap;
    if d.abs() < TINY {
        d = TINY;
    }
    d = 1.0 / d;
    let mut h = d;
    for m in 1..100_000 {
        let m = m as f64;
        let m2 = 2.0 * m;
        let aa = m * (b - m) * x / ((qam + m2) * (a + m2));
        d = 1.0 + aa * d;
        if d.abs() < TINY {
            d = TINY;
        }
        c = 1.0 + aa / c;
        if c.abs() < TINY {
            c = TINY;
        }
        d = 1.0 / d;
        h *= d * c;
        let aa = -(a + m) * (qab + m) * x / ((a + m2) * (qap + m2));
        d = 1.0 + aa * d;
        if d.abs() < TINY {
            d = TINY;
        }
        c = 1.0 + aa / c;
        if c.abs() < TINY {
            c = TINY;
        }
        d = 1.0 / d;
        let del = d * c;
        h *= del;
        if (del - 1.0).abs() < 1e-16 {
            break;
        }
    }
    h
}

/// The regularized incomplete beta function I_x(a, b) and its complement 1 - I_x(a, b),
/// each computed directly where it is small. The caller gives x and y = 1 - x and their
/// logarithms, each computed without cancellation (x near 1 is where large degrees of
/// freedom put it).
fn beta_inc(a: f64, b: f64, x: f64, y: f64, ln_x: f64, ln_y: f64) -> (f64, f64) {
    if x <= 0.0 {
        return (0.0, 1.0);
    }
    if y <= 0.0 {
        return (1.0, 0.0);
    }
    if x < (a + 1.0) / (a + b + 2.0) {
        let v = (a * ln_x + b * ln_y - ln_beta(a, b)).exp() * beta_cf(a, b, x) / a;
        (v, 1.0 - v)
    } else {
        let w = (b * ln_y + a * ln_x - ln_beta(b, a)).exp() * beta_cf(b, a, y) / b;
        (1.0 - w, w)
    }
}

/// P(T > t) for Student's t with `df` degrees of freedom (scipy's `t.sf`), df > 0.
pub fn t_sf(t: f64, df: f64) -> f64 {
    if t.is_infinite() {
        return if t > 0.0 { 0.0 } else { 1.0 };
    }
    // P(|T| > |t|) = I_x(df/2, 1/2) with x = df / (df + t^2).
    let t2 = t * t;
    let (x, y) = (df / (df + t2), t2 / (df + t2));
    let ln_x = -(t2 / df).ln_1p();
    let ln_y = if t2 > 0.0 { t2.ln() - (df + t2).ln() } else { f64::NEG_INFINITY };
    let (tail, _) = beta_inc(df / 2.0, 0.5, x, y, ln_x, ln_y);
    if t > 0.0 {
        0.5 * tail
    } else {
        1.0 - 0.5 * tail
    }
}

/// The t with P(T > t) = q (scipy's `t.isf`).
pub fn t_isf(q: f64, df: f64) -> f64 {
    if q <= 0.0 {
        return f64::INFINITY;
    }
    if q >= 1.0 {
        return f64::NEG_INFINITY;
    }
    if q > 0.5 {
        return -t_isf(1.0 - q, df);
    }
    // Bracket the root from the normal quantile outwards, then bisect the tail probability
    // in log space (the sf is monotone), finishing with secant steps.
    let mut lo = 0.0f64;
    let mut hi = norm_isf(q).max(1.0);
    while t_sf(hi, df) > q {
        lo = hi;
        hi *= 2.0;
        if hi > 1e300 {
            return f64::INFINITY;
        }
    }
    for _ in 0..200 {
        let mid = 0.5 * (lo + hi);
        if t_sf(mid, df) > q {
            lo = mid;
        } else {
            hi = mid;
        }
        if hi - lo <= 1e-15 * hi.abs().max(1e-300) {
            break;
        }
    }
    0.5 * (lo + hi)
}

/// The regularized upper incomplete gamma function Q(a, x).
fn gamma_q(a: f64, x: f64) -> f64 {
    if x <= 0.0 {
        return 1.0;
    }
    let ln_front = a * x.ln() - x - ln_gamma(a);
    if x < a + 1.0 {
        // Series for P(a, x).
        let (mut ap, mut sum, mut del) = (a, 1.0 / a, 1.0 / a);
        for _ in 0..100_000 {
            ap += 1.0;
            del *= x / ap;
            sum += del;
            if del.abs() < sum.abs() * 1e-17 {
                break;
            }
        }
        1.0 - sum * ln_front.exp()
    } else {
        // Continued fraction for Q(a, x) (modified Lentz).
        const TINY: f64 = 1e-300;
        let mut b = x + 1.0 - a;
        let mut c = 1.0 / TINY;
        let mut d = 1.0 / b;
        let mut h = d;
        for i in 1..100_000 {
            let an = -(i as f64) * (i as f64 - a);
            b += 2.0;
            d = an * d + b;
            if d.abs() < TINY {
                d = TINY;
            }
            c = b + an / c;
            if c.abs() < TINY {
                c = TINY;
            }
            d = 1.0 / d;
            let del = d * c;
            h *= del;
            if (del - 1.0).abs() < 1e-16 {
                break;
            }
        }
        ln_front.exp() * h
    }
}

/// P(X > x) for a chi-square with `df` degrees of freedom (scipy's `chi2.sf`).
pub fn chi2_sf(x: f64, df: f64) -> f64 {
    gamma_q(df / 2.0, x / 2.0)
}

// ---------------------------------------------------------------------------- power

/// Checks a probability argument in (0, 1).
fn unit(what: &str, v: f64) -> Result<f64, CoreError> {
    if v.is_finite() && v > 0.0 && v < 1.0 {
        Ok(v)
    } else {
        Err(invalid(format!("{what} must be between 0 and 1 (exclusive), got {v}")))
    }
}

/// The power of a two-sided z-test at standardized distance `s` = effect · sqrt(n_eff)
/// (statsmodels' `normal_power`).
fn two_sided_power(s: f64, crit: f64) -> f64 {
    norm_sf(crit - s) + norm_cdf(-crit - s)
}

/// Customers per arm (control, treatment = ratio x control) for a two-sided test of an
/// effect size `effect` (Cohen's h or d): statsmodels' `NormalIndPower().solve_power(
/// effect_size, alpha=alpha, power=power, ratio=ratio)` for nobs1, rounded up, and the
/// treatment arm ratio times that, rounded up. Also returns the unrounded nobs1.
pub fn sample_size(effect: f64, alpha: f64, power: f64, ratio: f64) -> Result<(u64, u64, f64), CoreError> {
    unit("alpha", alpha)?;
    unit("power", power)?;
    if !(ratio.is_finite() && ratio > 0.0) {
        return Err(invalid(format!("ratio must be a finite number > 0, got {ratio}")));
    }
    if !effect.is_finite() || effect == 0.0 {
        return Err(invalid("the effect to detect must be a finite number other than 0"));
    }
    if power <= alpha {
        return Err(invalid(format!(
            "power ({power}) must be greater than alpha ({alpha}): a test of size alpha has that power with no data"
        )));
    }
    let crit = norm_isf(alpha / 2.0);
    // Solve two_sided_power(s) = power for s > 0 (increasing in s), by bisection.
    let (mut lo, mut hi) = (0.0f64, crit + norm_isf(1.0 - power).abs() + 10.0);
    for _ in 0..300 {
        let mid = 0.5 * (lo + hi);
        if two_sided_power(mid, crit) < power {
            lo = mid;
        } else {
            hi = mid;
        }
        if hi - lo <= 4.0 * f64::EPSILON * hi {
            break;
        }
    }
    let s = 0.5 * (lo + hi);
    // n_eff = 1 / (1/n1 + 1/(ratio n1)) = n1 ratio / (1 + ratio).
    let n_eff = (s / effect.abs()).powi(2);
    let n1 = n_eff * (1.0 + ratio) / ratio;
    if !n1.is_finite() || n1 > 9.0e18 {
        return Err(invalid("the effect to detect is too small: the customers needed exceed what can be counted"));
    }
    let control = n1.ceil().max(1.0);
    let treatment = (ratio * control).ceil().max(1.0);
    Ok((control as u64, treatment as u64, n1))
}

/// Cohen's h between two proportions (statsmodels' `proportion_effectsize(p1, p2)`).
pub fn proportion_effectsize(p1: f64, p2: f64) -> f64 {
    2.0 * p1.sqrt().asin() - 2.0 * p2.sqrt().asin()
}

/// The smallest effect size detectable with `n1` customers in control and `ratio` x n1 in
/// treatment at this alpha and power (the inverse of `sample_size`).
pub fn detectable_effect(n1: f64, alpha: f64, power: f64, ratio: f64) -> Option<f64> {
    if !(n1 > 0.0 && ratio > 0.0 && power > alpha) {
        return None;
    }
    let crit = norm_isf(alpha / 2.0);
    let (mut lo, mut hi) = (0.0f64, crit + norm_isf(1.0 - power).abs() + 10.0);
    for _ in 0..300 {
        let mid = 0.5 * (lo + hi);
        if two_sided_power(mid, crit) < power {
            lo = mid;
        } else {
            hi = mid;
        }
    }
    let n_eff = n1 * ratio / (1.0 + ratio);
    Some(0.5 * (lo + hi) / n_eff.sqrt())
}

// ---------------------------------------------------------------------------- tests

/// A two-sided test: the statistic and its p-value.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Test {
    pub stat: f64,
    pub p_value: f64,
}

/// The pooled two-proportion z-test of x1/n1 against x2/n2 (statsmodels'
/// `proportions_ztest([x1, x2], [n1, n2])`). None when the pooled rate is 0 or 1 (no
/// variance: statsmodels returns NaN).
pub fn proportions_ztest(x1: u64, n1: u64, x2: u64, n2: u64) -> Option<Test> {
    if n1 == 0 || n2 == 0 {
        return None;
    }
    let (x1f, n1f, x2f, n2f) = (x1 as f64, n1 as f64, x2 as f64, n2 as f64);
    let pooled = (x1f + x2f) / (n1f + n2f);
    let var = pooled * (1.0 - pooled) * (1.0 / n1f + 1.0 / n2f);
    if var <= 0.0 {
        return None;
    }
    let z = (x1f / n1f - x2f / n2f) / var.sqrt();
    Some(Test { stat: z, p_value: 2.0 * norm_sf(z.abs()) })
}

/// Wilson's score interval of x/n at confidence 1 - alpha (statsmodels'
/// `proportion_confint(x, n, alpha, method='wilson')`).
pub fn wilson(x: u64, n: u64, alpha: f64) -> (f64, f64) {
    let (x, n) = (x as f64, n as f64);
    let z = norm_isf(alpha / 2.0);
    let z2 = z * z;
    let p = x / n;
    let denom = 1.0 + z2 / n;
    let center = (p + z2 / (2.0 * n)) / denom;
    let half = z * (p * (1.0 - p) / n + z2 / (4.0 * n * n)).sqrt() / denom;
    (center - half, center + half)
}

/// Newcomb's hybrid score interval for p1 - p2 (statsmodels'
/// `confint_proportions_2indep(x1, n1, x2, n2, method='newcomb', compare='diff')`).
pub fn newcomb_diff(x1: u64, n1: u64, x2: u64, n2: u64, alpha: f64) -> Option<(f64, f64)> {
    if n1 == 0 || n2 == 0 {
        return None;
    }
    let (p1, p2) = (x1 as f64 / n1 as f64, x2 as f64 / n2 as f64);
    let (l1, u1) = wilson(x1, n1, alpha);
    let (l2, u2) = wilson(x2, n2, alpha);
    let d = p1 - p2;
    Some((d - ((p1 - l1).powi(2) + (u2 - p2).powi(2)).sqrt(), d + ((u1 - p1).powi(2) + (p2 - l2).powi(2)).sqrt()))
}

/// Mean, sample variance (ddof 1) and count of a sample, two passes.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Moments {
    pub n: usize,
    pub mean: f64,
    pub var: f64,
}

pub fn moments(x: &[f64]) -> Moments {
    let n = x.len();
    if n == 0 {
        return Moments { n, mean: f64::NAN, var: f64::NAN };
    }
    let mean = x.iter().sum::<f64>() / n as f64;
    let var = if n > 1 { x.iter().map(|v| (v - mean) * (v - mean)).sum::<f64>() / (n - 1) as f64 } else { f64::NAN };
    Moments { n, mean, var }
}

/// Welch's t-test of mean(a) - mean(b), with its confidence interval at 1 - alpha (scipy's
/// `ttest_ind(a, b, equal_var=False)` and its `confidence_interval`). None when a side has
/// fewer than two values or both variances are 0.
pub fn welch(a: &Moments, b: &Moments, alpha: f64) -> Option<(Test, f64, (f64, f64))> {
    if a.n < 2 || b.n < 2 {
        return None;
    }
    let (va, vb) = (a.var / a.n as f64, b.var / b.n as f64);
    let se2 = va + vb;
    if se2.is_nan() || se2 <= 0.0 {
        return None;
    }
    let se = se2.sqrt();
    let df = se2 * se2 / (va * va / (a.n - 1) as f64 + vb * vb / (b.n - 1) as f64);
    let diff = a.mean - b.mean;
    let t = diff / se;
    let p = 2.0 * t_sf(t.abs(), df);
    let q = t_isf(alpha / 2.0, df);
    Some((Test { stat: t, p_value: p.min(1.0) }, df, (diff - q * se, diff + q * se)))
}

/// Holm's step-down adjustment (statsmodels' `multipletests(p, method='holm')[1]`), None
/// kept as None and left out of the family.
pub fn holm(p: &[Option<f64>]) -> Vec<Option<f64>> {
    let mut idx: Vec<usize> = (0..p.len()).filter(|&i| p[i].is_some()).collect();
    idx.sort_by(|&i, &j| p[i].partial_cmp(&p[j]).unwrap_or(std::cmp::Ordering::Equal).then(i.cmp(&j)));
    let m = idx.len();
    let mut out = vec![None; p.len()];
    let mut running = 0.0f64;
    for (rank, &i) in idx.iter().enumerate() {
        let adj = ((m - rank) as f64 * p[i].unwrap_or(1.0)).min(1.0);
        running = running.max(adj);
        out[i] = Some(running);
    }
    out
}

/// Pearson's chi-square goodness of fit of counts against expected shares (scipy's
/// `chisquare(observed, f_exp=shares * total)`): the p-value, None without customers.
pub fn chisquare(observed: &[u64], shares: &[f64]) -> Option<f64> {
    let total: u64 = observed.iter().sum();
    if total == 0 || observed.len() < 2 {
        return None;
    }
    let stat: f64 = observed
        .iter()
        .zip(shares)
        .map(|(&o, &s)| {
            let e = s * total as f64;
            (o as f64 - e).powi(2) / e
        })
        .sum();
    Some(chi2_sf(stat, (observed.len() - 1) as f64))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn close(a: f64, b: f64, rel: f64) -> bool {
        (a - b).abs() <= rel * b.abs().max(1e-300)
    }

    /// Values from scipy 1.16 (printed with repr).
    #[test]
    fn distributions_match_scipy() {
        let cases = [
            (norm_isf(0.025), 1.9599639845400545),
            (norm_ppf(0.8), 0.8416212335729143),
            (norm_isf(1e-10), 6.361340902404056),
            (norm_sf(8.0), 6.22096057427174e-16),
            (t_sf(2.0, 10.0), 0.03669401738537018),
            (t_sf(-1.5, 3.5), 0.8910909064923275),
            (t_sf(30.0, 7.25), 3.5821312680180587e-09),
            (t_isf(0.025, 10.0), 2.2281388519862753),
            (t_isf(0.025, 12345.6), 1.9601561582595106),
            (chi2_sf(3.0, 1.0), 0.08326451666355042),
            (chi2_sf(25.0, 4.0), 5.0309817823062075e-05),
            (chi2_sf(0.5, 9.0), 0.9999695662588389),
            (t_sf(5.0, 1e6), 2.8669989354453723e-07),
            (t_sf(0.3, 2e6), 0.3820885934002733),
            (t_isf(0.025, 1e6), 1.9599663568141072),
            (t_sf(12.0, 150000.0), 1.839789486568962e-33),
        ];
        for (i, (got, want)) in cases.iter().enumerate() {
            assert!(close(*got, *want, 1e-11), "case {i}: {got} vs {want}");
        }
    }

    /// statsmodels: NormalIndPower().solve_power(effect_size=proportion_effectsize(0.055,
    /// 0.05), alpha=0.05, power=0.8, ratio=1) = 31217.423430777748; ratio 2: 23413.067572772798.
    #[test]
    fn sample_sizes_match_statsmodels() {
        let h = proportion_effectsize(0.055, 0.05);
        assert!(close(h, 0.022424345475803797, 1e-14));
        let (c, t, n1) = sample_size(h, 0.05, 0.8, 1.0).unwrap();
        assert!(close(n1, 31217.423430777748, 1e-8), "{n1}");
        assert_eq!((c, t), (31218, 31218));
        let (c, t, n1) = sample_size(h, 0.05, 0.8, 2.0).unwrap();
        assert!(close(n1, 23413.067572772798, 1e-8), "{n1}");
        assert_eq!((c, t), (23414, 46828));
        // The inverse: the effect detectable with that many customers is h again.
        assert!(close(detectable_effect(n1, 0.05, 0.8, 2.0).unwrap(), h, 1e-12));
        assert!(sample_size(h, 0.05, 0.04, 1.0).is_err());
        assert!(sample_size(0.0, 0.05, 0.8, 1.0).is_err());
        assert!(sample_size(h, 1.0, 0.8, 1.0).is_err());
    }

    #[test]
    fn tests_by_hand() {
        // 60/1000 against 50/1000: pooled 0.055; z = 0.01 / sqrt(0.055 * 0.945 * 0.002).
        let t = proportions_ztest(60, 1000, 50, 1000).unwrap();
        assert!(close(t.stat, 0.01 / (0.055f64 * 0.945 * 0.002).sqrt(), 1e-14));
        assert!(proportions_ztest(0, 10, 0, 10).is_none());
        // Holm: sorted 0.01, 0.02, 0.03 times 3, 2, 1, running maximum.
        let h = holm(&[Some(0.03), Some(0.01), None, Some(0.02)]);
        assert_eq!(h, vec![Some(0.04), Some(0.03), None, Some(0.04)]);
        let a = moments(&[1.0, 2.0, 3.0, 4.0]);
        assert_eq!((a.mean, a.var), (2.5, 5.0 / 3.0));
        assert!(welch(&moments(&[1.0, 1.0]), &moments(&[2.0, 2.0]), 0.05).is_none());
        assert!(close(chisquare(&[50, 50], &[0.5, 0.5]).unwrap(), 1.0, 1e-15));
    }
}
