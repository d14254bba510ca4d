//! Customer lifetime value: the per-customer summary of `rfm_clv_summary`, the BG/NBD model
//! of repeat purchases (Fader, Hardie and Lee 2005) and the Gamma-Gamma model of spend per
//! purchase (Fader, Hardie and Lee 2005b; Fader and Hardie 2013), fitted by maximum
//! likelihood, and their predictions. Formulas and conventions are those of the Python
//! library lifetimes 0.11 (`summary_data_from_transaction_data`, `BetaGeoFitter`,
//! `GammaGammaFitter`, `customer_lifetime_value`), which the end-to-end tests compare with.

use super::codec::{Reader, Writer};
use super::error::{corrupt_state, invalid, out_of_range, show};
use super::rfm::check_ts;
use super::{CoreError, Partial};

const USECS_PER_DAY: i64 = 86_400_000_000;

// ---------------------------------------------------------------------------- units

/// The time unit of recency and t: a day, or a week of 7 days.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Unit {
    Day,
    Week,
}

impl Unit {
    pub fn parse(s: &str) -> Result<Unit, CoreError> {
        match s {
            "day" => Ok(Unit::Day),
            "week" => Ok(Unit::Week),
            _ => Err(invalid(format!("unit must be 'day' or 'week', got '{s}'"))),
        }
    }
    pub fn name(self) -> &'static str {
        match self {
            Unit::Day => "day",
            Unit::Week => "week",
        }
    }
    /// Days in one unit.
    pub fn days(self) -> f64 {
        match self {
            Unit::Day => 1.0,
            Unit::Week => 7.0,
        }
    }
    /// Units in one month, as lifetimes' `customer_lifetime_value` counts them.
    pub fn per_month(self) -> f64 {
        match self {
            Unit::Day => 30.0,
            Unit::Week => 4.345,
        }
    }
    fn code(self) -> u8 {
        match self {
            Unit::Day => 0,
            Unit::Week => 1,
        }
    }
    fn from_code(c: u8) -> Option<Unit> {
        match c {
            0 => Some(Unit::Day),
            1 => Some(Unit::Week),
            _ => None,
        }
    }
}

// ---------------------------------------------------------------------------- summary

/// The state of `rfm_clv_summary` for one customer: the purchase days (UTC calendar days)
/// with the amount spent on each. Rows are appended; days are merged when the list has
/// grown to twice its last merged length, and before the summary.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct ClvState {
    as_of: Option<i64>,
    unit: Option<Unit>,
    days: Vec<(i64, f64)>,
    merged: usize,
}

/// What `rfm_clv_summary` returns: lifetimes' frequency, recency, T and monetary_value.
#[derive(Clone, Debug, PartialEq)]
pub struct ClvSummary {
    pub frequency: i64,
    pub recency: f64,
    pub t: f64,
    pub monetary: f64,
}

fn day_of(ts: i64) -> i64 {
    ts.div_euclid(USECS_PER_DAY)
}

impl ClvState {
    fn set(&mut self, as_of: i64, unit: Unit) -> Result<(), CoreError> {
        match self.as_of {
            Some(a) if a != as_of => return Err(invalid("as_of must be the same for every row of a group")),
            Some(_) => {}
            None => {
                check_ts("as_of", as_of)?;
                self.as_of = Some(as_of);
            }
        }
        match self.unit {
            Some(u) if u != unit => Err(invalid("unit must be the same for every row of a group")),
            _ => {
                self.unit = Some(unit);
                Ok(())
            }
        }
    }

    /// One purchase row (rows with a NULL order_ts or amount are not passed in).
    #[inline]
    pub fn update(&mut self, ts: i64, amount: f64, as_of: i64, unit: Unit) -> Result<(), CoreError> {
        self.set(as_of, unit)?;
        if !amount.is_finite() || amount < 0.0 {
            return Err(invalid(format!("amount must be a finite number >= 0, got {}", show(amount)))
                .hint("The models count purchases: leave returns and cancellations out of the rows."));
        }
        check_ts("order_ts", ts)?;
        if ts > as_of {
            return Err(
                invalid("a row's order_ts is later than as_of").hint("Filter the rows with order_ts <= as_of, or use a later as_of.")
            );
        }
        let day = day_of(ts);
        match self.days.last_mut() {
            Some(last) if last.0 == day => last.1 += amount,
            _ => {
                self.days.push((day, amount));
                if self.days.len() >= 2 * self.merged.max(8) {
                    self.merge_days();
                }
            }
        }
        Ok(())
    }

    /// Sorts the days and adds up the amounts of equal days.
    fn merge_days(&mut self) {
        self.days.sort_by_key(|d| d.0);
        let mut out = 0;
        for i in 0..self.days.len() {
            if out > 0 && self.days[out - 1].0 == self.days[i].0 {
                self.days[out - 1].1 += self.days[i].1;
            } else {
                self.days[out] = self.days[i];
                out += 1;
            }
        }
        self.days.truncate(out);
        self.merged = out;
    }

    /// lifetimes' summary with daily periods: frequency = purchase days - 1, recency = first
    /// to last purchase day, t = first purchase day to as_of's day (in units), monetary =
    /// mean amount of the purchase days after the first (0 without any).
    pub fn finalize(&mut self) -> Option<ClvSummary> {
        let as_of = self.as_of?;
        let unit = self.unit?;
        if self.days.is_empty() {
            return None;
        }
        self.merge_days();
        let first = self.days[0].0;
        let last = self.days[self.days.len() - 1].0;
        let repeat = &self.days[1..];
        let monetary = if repeat.is_empty() { 0.0 } else { repeat.iter().map(|d| d.1).sum::<f64>() / repeat.len() as f64 };
        Some(ClvSummary {
            frequency: repeat.len() as i64,
            recency: (last - first) as f64 / unit.days(),
            t: (day_of(as_of) - first) as f64 / unit.days(),
            monetary,
        })
    }
}

impl Partial for ClvState {
    fn empty() -> Self {
        ClvState::default()
    }
    fn merge(&mut self, other: &mut ClvState) -> Result<(), CoreError> {
        if let (Some(a), Some(u)) = (other.as_of, other.unit) {
            self.set(a, u)?;
        }
        self.days.append(&mut other.days);
        if self.days.len() >= 2 * self.merged.max(8) {
            self.merge_days();
        }
        Ok(())
    }
    fn serialize_into(&self, out: &mut Vec<u8>) {
        let mut w = Writer { buf: std::mem::take(out) };
        w.buf.reserve(26 + 16 * self.days.len());
        w.u8(self.as_of.is_some() as u8);
        w.i64(self.as_of.unwrap_or(0));
        w.u8(self.unit.map_or(255, Unit::code));
        w.u64(self.days.len() as u64);
        for (d, a) in &self.days {
            w.i64(*d);
            w.f64(*a);
        }
        *out = w.buf;
    }
    fn deserialize(buf: &[u8]) -> Result<ClvState, CoreError> {
        let mut r = Reader::new(buf);
        let has = r.u8()?;
        let as_of = r.i64()?;
        let unit = r.u8()?;
        if has > 1 {
            return Err(corrupt_state("flags"));
        }
        let unit = if unit == 255 { None } else { Some(Unit::from_code(unit).ok_or_else(|| corrupt_state("unit"))?) };
        let n = r.u64()?;
        if n > (buf.len() / 16) as u64 {
            return Err(corrupt_state("day count"));
        }
        let mut days = Vec::with_capacity(n as usize);
        for _ in 0..n {
            days.push((r.i64()?, r.f64()?));
        }
        r.finish()?;
        Ok(ClvState { as_of: (has == 1).then_some(as_of), unit, days, merged: 0 })
    }
}

// ---------------------------------------------------------------------------- special functions

pub fn ln_gamma(x: f64) -> f64 {
    libm::lgamma(x)
}

/// The digamma function for x > 0: recurrence up to 10, then the asymptotic series.
pub fn digamma(mut x: f64) -> f64 {
    let mut r = 0.0;
    while x < 10.0 {
        r -= 1.0 / x;
        x += 1.0;
    }
    let f = 1.0 / (x * x);
    r + x.ln()
        - 0.5 / x
        - f * (1.0 / 12.0 - f * (1.0 / 120.0 - f * (1.0 / 252.0 - f * (1.0 / 240.0 - f * (1.0 / 132.0 - f * 691.0 / 32760.0)))))
}

/// A buffer of floats for one call: on the stack up to 64 of them, else on the heap.
struct Scratch {
    stack: [f64; 64],
    heap: Vec<f64>,
}

impl Scratch {
    fn new() -> Scratch {
        Scratch { stack: [0.0; 64], heap: Vec::new() }
    }

    fn take(&mut self, n: usize) -> &mut [f64] {
        if n <= self.stack.len() {
            &mut self.stack[..n]
        } else {
            self.heap.resize(n, 0.0);
            &mut self.heap
        }
    }
}

/// The Gauss hypergeometric function 2F1(a, b; c; z) for 0 <= z < 1 and c > 0 at each z of
/// `zs`, as (1 - z)^e (1 + out[j]), e being the returned exponent: by its power series, with
/// Euler's transformation (1 - z)^(c-a-b) 2F1(c-a, c-b; c; z) when c - a - b < 0 (e = c - a - b,
/// else 0), so that the series stays of order one and the large factor can be taken in logs
/// (lifetimes does the same when the direct value overflows). `out` gets the series minus its
/// first term 1, so that values near 1 keep their precision. The coefficients
/// (a)_n (b)_n / ((c)_n n!) do not depend on z, so they are computed once for all of them.
pub fn hyp2f1_many(a: f64, b: f64, c: f64, zs: &[f64], out: &mut [f64]) -> Result<f64, CoreError> {
    if let Some(z) = zs.iter().find(|z| !(0.0..1.0).contains(*z)) {
        return Err(out_of_range(format!("hypergeometric function outside its domain (z = {z})"))
            .hint("periods is too long for the model: periods / (alpha + t + periods) rounds to 1."));
    }
    if c <= 0.0 {
        return Err(out_of_range(format!("hypergeometric function outside its domain (c = {c})")));
    }
    let euler = c - a - b < 0.0;
    let (a2, b2) = if euler { (c - a, c - b) } else { (a, b) };
    let k = zs.len();
    // Sums of the series but its first term in `out`, powers of z in a scratch buffer.
    let mut scratch = Scratch::new();
    let powers = scratch.take(k);
    powers.fill(1.0);
    let sums = &mut out[..k];
    sums.fill(0.0);
    // Past n0 every factor (a2 + n), (b2 + n) is positive, so the terms keep one sign and
    // shrink fastest at the smaller z: the series stops when the term at the largest z is
    // below 1e-16 of its sum and then the term at every z is below 1e-16 of that z's sum
    // (checked only once the first holds, so the inner loop only adds).
    let n0 = (-a2).max(-b2).max(0.0);
    let j_max = (0..k).fold(0, |m, j| if zs[j] > zs[m] { j } else { m });
    let z_max = zs.get(j_max).copied().unwrap_or(0.0);
    let mut coef = 1.0;
    let mut p_max = 1.0;
    let mut done = false;
    for n in 0..2_000_000u32 {
        let n = n as f64;
        coef *= (a2 + n) * (b2 + n) / ((c + n) * (n + 1.0));
        for j in 0..k {
            powers[j] *= zs[j];
            sums[j] += coef * powers[j];
        }
        p_max *= z_max;
        let small = n >= n0
            && (coef * p_max).abs() <= 1e-16 * sums.get(j_max).map_or(1.0, |s| (1.0 + s).abs())
            && (0..k).all(|j| (coef * powers[j]).abs() <= 1e-16 * (1.0 + sums[j]).abs());
        if (small && n > 2.0) || coef == 0.0 {
            done = true;
            break;
        }
    }
    if !done {
        return Err(out_of_range(format!("hypergeometric series did not converge (a = {a}, b = {b}, c = {c})")));
    }
    for j in 0..k {
        let s = 1.0 + out[j];
        if s.is_nan() || s <= 0.0 || s.is_infinite() {
            return Err(out_of_range(format!("hypergeometric series did not converge (a = {a}, b = {b}, c = {c}, z = {})", zs[j])));
        }
    }
    Ok(if euler { c - a - b } else { 0.0 })
}

// ---------------------------------------------------------------------------- optimizer

/// The result of a minimization.
#[derive(Clone, Debug)]
pub struct Optimum<const N: usize> {
    pub x: [f64; N],
    pub f: f64,
    pub iterations: usize,
    /// Largest absolute component of the gradient at x.
    pub gradient: f64,
    pub converged: bool,
    /// Evaluations of the objective and its gradient.
    pub evaluations: usize,
    /// The final estimate of the inverse Hessian.
    pub h: [[f64; N]; N],
    /// Of `iterations`, those on a sample of the customers (see `maximize`).
    pub sample_iterations: usize,
}

fn dot<const N: usize>(a: &[f64; N], b: &[f64; N]) -> f64 {
    a.iter().zip(b).map(|(x, y)| x * y).sum()
}

fn max_abs<const N: usize>(a: &[f64; N]) -> f64 {
    a.iter().fold(0.0, |m, x| m.max(x.abs()))
}

/// BFGS with a backtracking (Armijo) line search. Stops when the largest gradient component
/// is below `gtol`; at the objective's rounding floor (a step that lowers it by less than
/// 1e-15 relative), at once when the gradient is below `accept`, else after five steps in a
/// row that neither lower the objective nor halve the gradient: ill-conditioned likelihoods
/// reach that floor with a gradient above `gtol`. Converged when the gradient is then below
/// `accept`. `f` returns the value
/// and gradient (non-finite values count as +infinity, so the line search steps back from
/// them). `check` runs every iteration. `h0` is an estimate of the inverse Hessian at x0 (else
/// it starts as the identity, scaled after the first step).
pub fn bfgs<const N: usize>(
    x0: [f64; N],
    h0: Option<[[f64; N]; N]>,
    mut f: impl FnMut(&[f64; N]) -> (f64, [f64; N]),
    max_iter: usize,
    gtol: f64,
    accept: f64,
    check: &mut dyn FnMut(),
) -> Optimum<N> {
    let mut x = x0;
    let (mut fx, mut g) = f(&x);
    let mut evaluations = 1;
    let mut h = [[0.0; N]; N];
    for (i, row) in h.iter_mut().enumerate() {
        row[i] = 1.0;
    }
    let mut first = true;
    if let Some(h0) = h0 {
        h = h0;
        first = false;
    }
    let mut it = 0;
    let mut stalled = 0;
    while it < max_iter && stalled < 5 {
        check();
        if !fx.is_finite() || g.iter().any(|v| !v.is_finite()) {
            break;
        }
        if max_abs(&g) < gtol {
            return Optimum { x, f: fx, iterations: it, gradient: max_abs(&g), converged: true, evaluations, h, sample_iterations: 0 };
        }
        it += 1;
        let mut d = [0.0; N];
        for i in 0..N {
            d[i] = -(0..N).map(|j| h[i][j] * g[j]).sum::<f64>();
        }
        let mut slope = dot(&d, &g);
        if slope >= 0.0 {
            // Not a descent direction: restart from the steepest descent.
            for i in 0..N {
                d[i] = -g[i];
                h[i] = [0.0; N];
                h[i][i] = 1.0;
            }
            slope = dot(&d, &g);
            first = true;
        }
        // Keep the first step (and any step) within a factor e^5 of each parameter.
        let mut step = (5.0 / max_abs(&d)).min(1.0);
        let mut accepted = None;
        let mut first_trial = None;
        let mut halvings = 0;
        for _ in 0..40 {
            let mut xn = x;
            for i in 0..N {
                xn[i] += step * d[i];
            }
            let (fxn, gn) = f(&xn);
            evaluations += 1;
            let finite = fxn.is_finite() && gn.iter().all(|v| v.is_finite());
            if finite && fxn <= fx + 1e-4 * step * slope {
                accepted = Some((xn, fxn, gn));
                break;
            }
            if finite && first_trial.is_none() {
                first_trial = Some((xn, fxn, gn));
            }
            step *= 0.5;
            halvings += 1;
        }
        // Near the optimum the objective's rounding hides the decrease the gradient still
        // shows: then take the full step if it keeps the objective within rounding and makes
        // the gradient smaller (the gradient is the more precise of the two there).
        if accepted.is_none() {
            accepted = first_trial.filter(|(_, fxn, gn)| *fxn <= fx + 1e-13 * fx.abs().max(1.0) && max_abs(gn) < max_abs(&g));
        }
        let Some((xn, fxn, gn)) = accepted else {
            // No decrease along the direction: at the precision of the objective.
            break;
        };
        let mut s = [0.0; N];
        let mut y = [0.0; N];
        for i in 0..N {
            s[i] = xn[i] - x[i];
            y[i] = gn[i] - g[i];
        }
        let sy = dot(&s, &y);
        if halvings > 8 {
            // The inverse Hessian estimate no longer points well: start it again.
            first = true;
        }
        if sy > 1e-300 {
            if first {
                let scale = sy / dot(&y, &y);
                for (i, row) in h.iter_mut().enumerate() {
                    *row = [0.0; N];
                    row[i] = scale;
                }
                first = false;
            }
            // H <- (I - rho s y') H (I - rho y s') + rho s s'
            let rho = 1.0 / sy;
            let mut hy = [0.0; N];
            for i in 0..N {
                hy[i] = (0..N).map(|j| h[i][j] * y[j]).sum();
            }
            let yhy = dot(&y, &hy);
            for i in 0..N {
                for j in 0..N {
                    h[i][j] += rho * ((1.0 + rho * yhy) * s[i] * s[j] - hy[i] * s[j] - s[i] * hy[j]);
                }
            }
        }
        // At the objective's rounding floor: stop at once when the gradient is already
        // acceptable, else after five such steps.
        let flat = fxn >= fx - 1e-15 * fx.abs();
        // Progress is a lower objective, or (at the floor) a gradient halved.
        let progress = !flat || max_abs(&gn) < 0.5 * max_abs(&g);
        // A step found only after 20 halvings: BFGS has reached the floor too (the polish
        // below takes over).
        stalled = if (flat && max_abs(&gn) < accept) || halvings > 20 {
            5
        } else if progress {
            0
        } else {
            stalled + 1
        };
        x = xn;
        fx = fxn;
        g = gn;
    }
    // Stopped at the objective's rounding floor with a gradient still above `accept`: the
    // gradient is more precise than the objective there, so polish with Newton steps on a
    // Hessian from central differences of the gradient, kept while the gradient shrinks.
    if fx.is_finite() && max_abs(&g) >= accept && it < max_iter {
        for _ in 0..8 {
            check();
            let mut hess = [[0.0; N]; N];
            for j in 0..N {
                let h = 1e-5 * (1.0 + x[j].abs());
                let (mut up, mut dn) = (x, x);
                up[j] += h;
                dn[j] -= h;
                let (gu, gd) = (f(&up).1, f(&dn).1);
                evaluations += 2;
                for i in 0..N {
                    hess[i][j] = (gu[i] - gd[i]) / (2.0 * h);
                }
            }
            let Some(step) = solve(hess, g) else { break };
            let mut xn = x;
            for i in 0..N {
                xn[i] -= step[i];
            }
            let (fxn, gn) = f(&xn);
            evaluations += 1;
            it += 1;
            if !(fxn.is_finite() && max_abs(&gn) < max_abs(&g) && fxn <= fx + 1e-13 * fx.abs().max(1.0)) {
                break;
            }
            (x, fx, g) = (xn, fxn, gn);
            if max_abs(&g) < gtol {
                break;
            }
        }
    }
    let gradient = max_abs(&g);
    Optimum { x, f: fx, iterations: it, gradient, converged: fx.is_finite() && gradient < accept, evaluations, h, sample_iterations: 0 }
}

/// Solves a x = b by Gaussian elimination with partial pivoting (None when singular).
fn solve<const N: usize>(mut a: [[f64; N]; N], mut b: [f64; N]) -> Option<[f64; N]> {
    for col in 0..N {
        let pivot = (col..N).max_by(|&i, &j| a[i][col].abs().total_cmp(&a[j][col].abs()))?;
        if a[pivot][col].abs() <= 1e-300 || a[pivot][col].is_nan() {
            return None;
        }
        a.swap(col, pivot);
        b.swap(col, pivot);
        let top = a[col];
        for row in col + 1..N {
            let factor = a[row][col] / top[col];
            for (v, t) in a[row].iter_mut().zip(&top).skip(col) {
                *v -= factor * t;
            }
            b[row] -= factor * b[col];
        }
    }
    let mut x = [0.0; N];
    for row in (0..N).rev() {
        let tail: f64 = (row + 1..N).map(|k| a[row][k] * x[k]).sum();
        x[row] = (b[row] - tail) / a[row][row];
    }
    x.iter().all(|v| v.is_finite()).then_some(x)
}

// ---------------------------------------------------------------------------- sums

/// Patterns per chunk of a parallel likelihood sum.
const CHUNK: usize = 8192;

/// Sums `part(range)` over 0..n in fixed chunks of CHUNK, adding the chunks' sums in chunk
/// order, so the result is the same whatever the number of threads. The chunks are spread
/// over `threads` threads (the calling one included); they only compute.
fn chunked_sum<const K: usize>(n: usize, threads: usize, part: impl Fn(std::ops::Range<usize>) -> [f64; K] + Sync) -> [f64; K] {
    let chunks = n.div_ceil(CHUNK);
    let range = |c: usize| c * CHUNK..((c + 1) * CHUNK).min(n);
    let mut partials = vec![[0.0; K]; chunks];
    let threads = threads.clamp(1, chunks.max(1));
    if threads == 1 {
        for (c, p) in partials.iter_mut().enumerate() {
            *p = part(range(c));
        }
    } else {
        std::thread::scope(|scope| {
            let part = &part;
            let mut slots: Vec<&mut [f64; K]> = partials.iter_mut().collect();
            let mut lanes: Vec<Vec<(usize, &mut [f64; K])>> = (0..threads).map(|_| Vec::new()).collect();
            for (c, slot) in slots.drain(..).enumerate() {
                lanes[c % threads].push((c, slot));
            }
            let mut lanes = lanes.into_iter();
            let own = lanes.next().unwrap_or_default();
            for lane in lanes {
                scope.spawn(move || {
                    for (c, slot) in lane {
                        *slot = part(range(c));
                    }
                });
            }
            for (c, slot) in own {
                *slot = part(range(c));
            }
        });
    }
    let mut total = [0.0; K];
    for p in &partials {
        for k in 0..K {
            total[k] += p[k];
        }
    }
    total
}

// ---------------------------------------------------------------------------- BG/NBD

/// BG/NBD parameters: purchase rates Gamma(r, alpha), dropout probabilities Beta(a, b).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct BgNbd {
    pub r: f64,
    pub alpha: f64,
    pub a: f64,
    pub b: f64,
}

/// Gamma-Gamma parameters: spend per transaction Gamma(p, nu), nu ~ Gamma(q, v).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct GammaGamma {
    pub p: f64,
    pub q: f64,
    pub v: f64,
}

/// Customers for the BG/NBD likelihood, condensed into distinct (frequency, recency, t)
/// patterns with their counts (the likelihood is a sum over customers).
pub struct BgData {
    pub n: u64,
    xs: Vec<f64>,
    x_count: Vec<f64>,
    pat_x: Vec<u32>,
    pat_tx: Vec<f64>,
    pat_t: Vec<f64>,
    pat_w: Vec<f64>,
    sum_x: f64,
    max_t: f64,
}

/// Checks one customer's (frequency, recency, t) as lifetimes' `_check_inputs` does.
pub fn check_customer(x: f64, tx: f64, t: f64) -> Result<(), CoreError> {
    let bad = |m: String| Err(invalid(m));
    if !x.is_finite() || !tx.is_finite() || !t.is_finite() {
        return bad(format!("frequency, recency and t must be finite numbers, got {}, {}, {}", show(x), show(tx), show(t)));
    }
    if x < 0.0 || tx < 0.0 || t < 0.0 {
        return bad(format!("frequency, recency and t must not be negative, got {}, {}, {}", show(x), show(tx), show(t)));
    }
    if x.fract() != 0.0 {
        return bad(format!("frequency must be a whole number of repeat purchases, got {x}"));
    }
    if tx > t {
        return bad(format!("recency ({tx}) is greater than t ({t})"));
    }
    if x == 0.0 && tx != 0.0 {
        return bad(format!("recency is {tx} for a customer with frequency 0 (it must be 0: no repeat purchase)"));
    }
    Ok(())
}

impl BgData {
    /// Groups the customers into distinct patterns, in one canonical order (by frequency,
    /// recency, t), so that the sums, and so the fit, do not depend on the order rows come in.
    pub fn new(rows: impl IntoIterator<Item = (f64, f64, f64)>) -> Result<BgData, CoreError> {
        let mut keys: Vec<(u64, u64, u64)> = Vec::new();
        for (x, tx, t) in rows {
            check_customer(x, tx, t)?;
            // +0.0 for -0.0, so that equal values group together.
            keys.push(((x + 0.0).to_bits(), (tx + 0.0).to_bits(), (t + 0.0).to_bits()));
        }
        if keys.is_empty() {
            return Err(invalid("no customers to fit (every row had a NULL value)"));
        }
        // The values are finite and >= 0, so their bit patterns sort as the numbers do; equal
        // customers are then next to each other (sorting is 4 times faster than hashing here).
        keys.sort_unstable();
        let mut runs: Vec<((u64, u64, u64), f64)> = Vec::new();
        for k in keys {
            match runs.last_mut() {
                Some((last, w)) if *last == k => *w += 1.0,
                _ => runs.push((k, 1.0)),
            }
        }
        let list = runs.into_iter().map(|((x, tx, t), w)| (f64::from_bits(x), f64::from_bits(tx), f64::from_bits(t), w));
        let d = BgData::from_sorted(list);
        if d.max_t <= 0.0 {
            return Err(invalid("t is 0 for every customer: the model needs customers observed for some time"));
        }
        Ok(d)
    }

    /// Every `stride`-th pattern (in the canonical order, so a sample across frequencies and
    /// times) with its count: the warm start of the fit (see `maximize`).
    fn sample(&self, stride: usize) -> BgData {
        BgData::from_sorted(
            (0..self.patterns()).step_by(stride).map(|i| (self.xs[self.pat_x[i] as usize], self.pat_tx[i], self.pat_t[i], self.pat_w[i])),
        )
    }

    /// Patterns (x, tx, t, count) in the canonical order.
    fn from_sorted(list: impl ExactSizeIterator<Item = (f64, f64, f64, f64)>) -> BgData {
        let len = list.len();
        let mut d = BgData {
            n: 0,
            xs: vec![],
            x_count: vec![],
            pat_x: Vec::with_capacity(len),
            pat_tx: Vec::with_capacity(len),
            pat_t: Vec::with_capacity(len),
            pat_w: Vec::with_capacity(len),
            sum_x: 0.0,
            max_t: 0.0,
        };
        for (x, tx, t, w) in list {
            if d.xs.last() != Some(&x) {
                d.xs.push(x);
                d.x_count.push(0.0);
            }
            let k = d.xs.len() - 1;
            d.x_count[k] += w;
            d.pat_x.push(k as u32);
            d.pat_tx.push(tx);
            d.pat_t.push(t);
            d.pat_w.push(w);
            d.sum_x += w * x;
            d.max_t = d.max_t.max(t);
            d.n += w as u64;
        }
        d
    }

    pub fn patterns(&self) -> usize {
        self.pat_w.len()
    }

    /// Total log-likelihood at `m` with times multiplied by `scale`, and its gradient with
    /// respect to (r, alpha, a, b); the patterns are summed on `threads` threads.
    pub fn loglik(&self, m: &BgNbd, scale: f64, grad: bool, threads: usize) -> (f64, [f64; 4]) {
        let BgNbd { r, alpha, a, b } = *m;
        let n = self.n as f64;
        let mut ll = n * (r * alpha.ln() + ln_gamma(a + b) - ln_gamma(r) - ln_gamma(b));
        let mut g = [0.0; 4];
        if grad {
            g[0] = n * (alpha.ln() - digamma(r));
            g[1] = n * r / alpha;
            g[2] = n * digamma(a + b);
            g[3] = n * (digamma(a + b) - digamma(b));
        }
        // Per distinct frequency: the terms that depend on x only.
        let mut ln_d = vec![0.0; self.xs.len()];
        for (k, (&x, &c)) in self.xs.iter().zip(&self.x_count).enumerate() {
            ll += c * (ln_gamma(r + x) + ln_gamma(b + x) - ln_gamma(a + b + x));
            ln_d[k] = if x > 0.0 { a.ln() - (b + x - 1.0).ln() } else { f64::NEG_INFINITY };
            if grad {
                let dabx = digamma(a + b + x);
                g[0] += c * digamma(r + x);
                g[2] -= c * dabx;
                g[3] += c * (digamma(b + x) - dabx);
            }
        }
        let sums = chunked_sum(self.pat_w.len(), threads, |range| {
            let mut s = [0.0; 5];
            for i in range {
                let k = self.pat_x[i] as usize;
                let x = self.xs[k];
                let w = self.pat_w[i];
                let at = alpha + self.pat_t[i] * scale;
                let lt = at.ln();
                let a3 = -(r + x) * lt;
                if x == 0.0 {
                    s[0] += w * a3;
                    if grad {
                        s[1] -= w * lt;
                        s[2] -= w * (r + x) / at;
                    }
                    continue;
                }
                let ax = alpha + self.pat_tx[i] * scale;
                let lx = ax.ln();
                let a4 = ln_d[k] - (r + x) * lx;
                let (hi, lo) = if a3 > a4 { (a3, a4) } else { (a4, a3) };
                let e = (lo - hi).exp();
                s[0] += w * (hi + e.ln_1p());
                if grad {
                    // Shares of the two terms in exp(a3) + exp(a4).
                    let wa = if a3 > a4 { 1.0 / (1.0 + e) } else { e / (1.0 + e) };
                    let wd = 1.0 - wa;
                    s[1] -= w * (wa * lt + wd * lx);
                    s[2] -= w * (r + x) * (wa / at + wd / ax);
                    s[3] += w * wd / a;
                    s[4] -= w * wd / (b + x - 1.0);
                }
            }
            s
        });
        ll += sums[0];
        for k in 0..4 {
            g[k] += sums[k + 1];
        }
        (ll, g)
    }
}

/// A fitted model with its diagnostics.
#[derive(Clone, Debug)]
pub struct Fit<P> {
    pub params: P,
    /// Total log-likelihood of the data (times in the data's unit), as the paper reports it.
    pub loglik: f64,
    pub iterations: usize,
    /// Largest absolute gradient component of the objective at the optimum (per customer,
    /// with respect to the log parameters).
    pub gradient: f64,
    pub n: u64,
    pub evaluations: usize,
    /// Of `iterations`, those on a sample of the customers (the warm start of `maximize`).
    pub sample_iterations: usize,
}

impl<P> Fit<P> {
    fn new<const N: usize>(params: P, loglik: f64, opt: &Optimum<N>, n: u64) -> Fit<P> {
        Fit {
            params,
            loglik,
            iterations: opt.iterations,
            gradient: opt.gradient,
            n,
            evaluations: opt.evaluations,
            sample_iterations: opt.sample_iterations,
        }
    }
}

/// Gradient tolerances of the fits (objective per customer, log parameters): BFGS stops
/// below GTOL, or at the objective's rounding floor with a gradient below ACCEPT (scipy's
/// BFGS in lifetimes stops at 1e-7).
pub const GTOL: f64 = 1e-10;
pub const ACCEPT: f64 = 1e-7;

fn check_params(model: &str, names: &[&str], values: &[f64]) -> Result<(), CoreError> {
    for (n, v) in names.iter().zip(values) {
        if !(v.is_finite() && *v > 1e-10 && *v < 1e10) {
            return Err(out_of_range(format!("the {model} fit did not converge: parameter {n} went to {}", show(*v)))
                .hint("The data may not fit the model (for example too few repeat customers); a penalizer of 0.001 to 0.1 keeps the parameters finite."));
        }
    }
    Ok(())
}

/// Fits BG/NBD by maximum likelihood, as lifetimes' `BetaGeoFitter.fit` does: log
/// parameters, times scaled so that the largest t is 1, objective = mean negative
/// log-likelihood + penalizer * (r^2 + alpha_scaled^2 + a^2 + b^2), start at exp(0.1).
pub fn fit_bgnbd(data: &BgData, penalizer: f64, max_iter: usize, threads: usize, check: &mut dyn FnMut()) -> Result<Fit<BgNbd>, CoreError> {
    fit_bgnbd_warm(data, penalizer, max_iter, threads, data.patterns() >= WARM_MIN, check)
}

/// `fit_bgnbd`, with or without the warm start on a sample.
fn fit_bgnbd_warm(
    data: &BgData,
    penalizer: f64,
    max_iter: usize,
    threads: usize,
    warm: bool,
    check: &mut dyn FnMut(),
) -> Result<Fit<BgNbd>, CoreError> {
    let scale = 1.0 / data.max_t;
    let sample = warm.then(|| data.sample(WARM_STRIDE));
    fn loglik(d: &BgData, scale: f64, threads: usize) -> impl Fn(&[f64; 4]) -> (f64, [f64; 4]) + Sync + '_ {
        move |p| d.loglik(&BgNbd { r: p[0], alpha: p[1], a: p[2], b: p[3] }, scale, true, threads)
    }
    let (full, part) = (loglik(data, scale, threads), sample.as_ref().map(|s| loglik(s, scale, threads)));
    let opt = maximize((data.n, &full), sample.as_ref().zip(part.as_ref()).map(|(s, f)| (s.n, f as _)), penalizer, max_iter, check)?;
    let p = opt.x.map(f64::exp);
    let params = BgNbd { r: p[0], alpha: p[1] / scale, a: p[2], b: p[3] };
    check_params("BG/NBD", &["r", "alpha", "a", "b"], &[params.r, params.alpha, params.a, params.b])?;
    if !opt.converged {
        let at = format!("r = {:.4e}, alpha = {:.4e}, a = {:.4e}, b = {:.4e}", params.r, params.alpha, params.a, params.b);
        return Err(not_converged("BG/NBD", &opt, &at));
    }
    let (loglik, _) = data.loglik(&params, 1.0, false, threads);
    Ok(Fit::new(params, loglik, &opt, data.n))
}

/// Fits with at least this many patterns (BG/NBD) or customers (Gamma-Gamma) start from a fit
/// on every WARM_STRIDE-th of them (see `maximize`).
const WARM_MIN: usize = 50_000;
pub const WARM_STRIDE: usize = 16;

/// A log-likelihood of `n` customers: total and gradient with respect to the parameters.
type Loglik<'a, const N: usize> = (u64, &'a (dyn Fn(&[f64; N]) -> (f64, [f64; N]) + Sync));

/// Maximizes a log-likelihood of `n` customers as lifetimes does: BFGS on the log
/// parameters from exp(0.1), objective = mean negative log-likelihood + penalizer * (sum of
/// squared parameters). With a `sample` (the same likelihood on a systematic sample of the
/// customers), BFGS first runs on the sample, and the fit on all customers starts from the
/// sample's optimum and inverse Hessian: the two mean objectives have nearly the same minimum
/// and curvature, so the full fit then takes a few iterations instead of a few dozen. The
/// result is the optimum of the full objective either way; iterations and evaluations count
/// both stages, each of which may take `max_iter` iterations.
fn maximize<const N: usize>(
    full: Loglik<N>,
    sample: Option<Loglik<N>>,
    penalizer: f64,
    max_iter: usize,
    check: &mut dyn FnMut(),
) -> Result<Optimum<N>, CoreError> {
    if !(penalizer.is_finite() && penalizer >= 0.0) {
        return Err(invalid(format!("penalizer must be a finite number >= 0, got {}", show(penalizer))));
    }
    fn objective<'a, const N: usize>((n, loglik): Loglik<'a, N>, penalizer: f64) -> impl Fn(&[f64; N]) -> (f64, [f64; N]) + 'a {
        let n = n as f64;
        move |th| {
            let p = th.map(f64::exp);
            let (ll, g) = loglik(&p);
            let f = -ll / n + penalizer * p.iter().map(|v| v * v).sum::<f64>();
            let mut gt = [0.0; N];
            for i in 0..N {
                gt[i] = (-g[i] / n + 2.0 * penalizer * p[i]) * p[i];
            }
            (f, gt)
        }
    }
    let warm = sample.map(|s| bfgs([0.1; N], None, objective(s, penalizer), max_iter, GTOL, ACCEPT, check));
    let (x0, h0) = match &warm {
        Some(w) if w.converged => (w.x, Some(w.h)),
        _ => ([0.1; N], None),
    };
    let mut opt = bfgs(x0, h0, objective(full, penalizer), max_iter, GTOL, ACCEPT, check);
    // A sample fit that did not converge (max_iter reached) is not used, nor counted.
    if let Some(w) = warm.filter(|w| w.converged) {
        opt.iterations += w.iterations;
        opt.evaluations += w.evaluations;
        opt.sample_iterations = w.iterations;
    }
    Ok(opt)
}

fn not_converged<const N: usize>(model: &str, opt: &Optimum<N>, at: &str) -> CoreError {
    out_of_range(format!(
        "the {model} fit did not converge in {} iterations (largest gradient component {:.1e}, at {at})",
        opt.iterations, opt.gradient
    ))
    .hint(
        "A parameter running off to a very large or small value means the data do not determine it (for example nobody \
         seems to drop out); a penalizer (0.001 to 0.1) keeps the parameters finite. Otherwise raise max_iter.",
    )
}

/// Repeat customers for the Gamma-Gamma likelihood: (frequency, mean spend), weight 1 each.
pub struct GgData {
    pub n: u64,
    xs: Vec<f64>,
    x_count: Vec<f64>,
    pat_x: Vec<f64>,
    pat_m: Vec<f64>,
    /// Sums over customers of x ln m, ln m and x ln x (the parts linear in the parameters).
    sum_x_ln_m: f64,
    sum_ln_m: f64,
    sum_x_ln_x: f64,
}

impl GgData {
    /// Customers with frequency > 0 only; the others are skipped (they carry no spend). One
    /// entry per customer (mean spends rarely repeat, so grouping would cost more than it
    /// saves), in one canonical order (by frequency, then mean spend) so that the fit does not
    /// depend on the order rows come in.
    pub fn new(rows: impl IntoIterator<Item = (f64, f64)>) -> Result<GgData, CoreError> {
        // (x, m) > 0: their bit patterns sort as the numbers do.
        let mut list: Vec<(u64, u64)> = Vec::new();
        for (x, m) in rows {
            if !m.is_finite() {
                return Err(invalid(format!("monetary must be a finite number, got {}", show(m))));
            }
            if x == 0.0 {
                continue;
            }
            if m <= 0.0 {
                return Err(invalid(format!("monetary must be > 0 for a customer with repeat purchases, got {m}"))
                    .hint("monetary is the mean spend of the repeat purchases; leave returns and free orders out."));
            }
            list.push((x.to_bits(), m.to_bits()));
        }
        if list.is_empty() {
            return Err(invalid("no customer has a repeat purchase, so the Gamma-Gamma spend model cannot be fitted")
                .hint("Pass monetary => NULL to fit BG/NBD alone."));
        }
        list.sort_unstable();
        Ok(GgData::from_sorted(list.into_iter().map(|(x, m)| (f64::from_bits(x), f64::from_bits(m)))))
    }

    /// Every `stride`-th customer in the canonical order: the warm start of the fit.
    fn sample(&self, stride: usize) -> GgData {
        GgData::from_sorted((0..self.pat_x.len()).step_by(stride).map(|i| (self.pat_x[i], self.pat_m[i])))
    }

    /// Customers (x, m) in the canonical order.
    fn from_sorted(list: impl ExactSizeIterator<Item = (f64, f64)>) -> GgData {
        let mut d = GgData {
            n: list.len() as u64,
            xs: vec![],
            x_count: vec![],
            pat_x: Vec::with_capacity(list.len()),
            pat_m: Vec::with_capacity(list.len()),
            sum_x_ln_m: 0.0,
            sum_ln_m: 0.0,
            sum_x_ln_x: 0.0,
        };
        for (x, m) in list {
            if d.xs.last() != Some(&x) {
                d.xs.push(x);
                d.x_count.push(0.0);
            }
            let k = d.xs.len() - 1;
            d.x_count[k] += 1.0;
            d.pat_x.push(x);
            d.pat_m.push(m);
            d.sum_x_ln_m += x * m.ln();
            d.sum_ln_m += m.ln();
            d.sum_x_ln_x += x * x.ln();
        }
        d
    }

    /// Total log-likelihood and its gradient with respect to (p, q, v).
    pub fn loglik(&self, m: &GammaGamma, grad: bool, threads: usize) -> (f64, [f64; 3]) {
        let GammaGamma { p, q, v } = *m;
        let n = self.n as f64;
        let mut ll = n * (q * v.ln() - ln_gamma(q)) + p * (self.sum_x_ln_m + self.sum_x_ln_x) - self.sum_ln_m;
        let mut g = [0.0; 3];
        if grad {
            g[0] = self.sum_x_ln_m + self.sum_x_ln_x;
            g[1] = n * (v.ln() - digamma(q));
            g[2] = n * q / v;
        }
        for (&x, &c) in self.xs.iter().zip(&self.x_count) {
            ll += c * (ln_gamma(p * x + q) - ln_gamma(p * x));
            if grad {
                let d = digamma(p * x + q);
                g[0] += c * x * (d - digamma(p * x));
                g[1] += c * d;
            }
        }
        let sums = chunked_sum(self.pat_x.len(), threads, |range| {
            let mut s = [0.0; 4];
            for i in range {
                let (x, mm) = (self.pat_x[i], self.pat_m[i]);
                let sv = x * mm + v;
                let l = sv.ln();
                s[0] -= (p * x + q) * l;
                if grad {
                    s[1] -= x * l;
                    s[2] -= l;
                    s[3] -= (p * x + q) / sv;
                }
            }
            s
        });
        ll += sums[0];
        for k in 0..3 {
            g[k] += sums[k + 1];
        }
        (ll, g)
    }
}

/// Fits Gamma-Gamma by maximum likelihood as lifetimes' `GammaGammaFitter.fit` does (log
/// parameters, no scaling, objective = mean negative log-likelihood + penalizer * (p^2 +
/// q^2 + v^2), start at exp(0.1)). A fitted q <= 1 is refused: the population's mean spend,
/// v p / (q - 1), would be infinite.
pub fn fit_gamma_gamma(
    data: &GgData,
    penalizer: f64,
    max_iter: usize,
    threads: usize,
    check: &mut dyn FnMut(),
) -> Result<Fit<GammaGamma>, CoreError> {
    fit_gamma_gamma_warm(data, penalizer, max_iter, threads, data.pat_x.len() >= WARM_MIN, check)
}

/// `fit_gamma_gamma`, with or without the warm start on a sample.
fn fit_gamma_gamma_warm(
    data: &GgData,
    penalizer: f64,
    max_iter: usize,
    threads: usize,
    warm: bool,
    check: &mut dyn FnMut(),
) -> Result<Fit<GammaGamma>, CoreError> {
    let sample = warm.then(|| data.sample(WARM_STRIDE));
    fn loglik(d: &GgData, threads: usize) -> impl Fn(&[f64; 3]) -> (f64, [f64; 3]) + Sync + '_ {
        move |p| d.loglik(&GammaGamma { p: p[0], q: p[1], v: p[2] }, true, threads)
    }
    let (full, part) = (loglik(data, threads), sample.as_ref().map(|s| loglik(s, threads)));
    let opt = maximize((data.n, &full), sample.as_ref().zip(part.as_ref()).map(|(s, f)| (s.n, f as _)), penalizer, max_iter, check)?;
    let p = opt.x.map(f64::exp);
    let params = GammaGamma { p: p[0], q: p[1], v: p[2] };
    check_params("Gamma-Gamma", &["p", "q", "v"], &p)?;
    if !opt.converged {
        let at = format!("p = {:.4e}, q = {:.4e}, v = {:.4e}", params.p, params.q, params.v);
        return Err(not_converged("Gamma-Gamma", &opt, &at));
    }
    if params.q <= 1.0 {
        return Err(out_of_range(format!(
            "the Gamma-Gamma fit gives q = {} <= 1, for which the mean spend of the population is infinite",
            params.q
        ))
        .hint("q <= 1 means a heavy tail of customers with very large mean spend: check monetary for outliers, or fit BG/NBD alone with monetary => NULL."));
    }
    let (loglik, _) = data.loglik(&params, false, threads);
    Ok(Fit::new(params, loglik, &opt, data.n))
}

// ---------------------------------------------------------------------------- predictions

fn finite(what: &str, v: f64) -> Result<f64, CoreError> {
    if v.is_finite() {
        Ok(v)
    } else {
        Err(out_of_range(format!("{what} is out of range for float8 ({})", show(v))))
    }
}

impl BgNbd {
    /// Checks stored or user-given parameters (all finite and > 0).
    pub fn check(&self) -> Result<(), CoreError> {
        for (n, v) in [("r", self.r), ("alpha", self.alpha), ("a", self.a), ("b", self.b)] {
            if !(v.is_finite() && v > 0.0) {
                return Err(invalid(format!("BG/NBD parameter {n} must be a finite number > 0, got {}", show(v))));
            }
        }
        Ok(())
    }

    /// Expected repeat purchases in the next `t` units of a customer with (x, tx, T):
    /// lifetimes' `conditional_expected_number_of_purchases_up_to_time`.
    pub fn expected_purchases(&self, t: f64, x: f64, tx: f64, big_t: f64) -> Result<f64, CoreError> {
        let mut out = [0.0];
        self.expected_purchases_many(&[t], x, tx, big_t, &mut out)?;
        Ok(out[0])
    }

    /// `expected_purchases` at several horizons `ts` at once (one hypergeometric series).
    pub fn expected_purchases_many(&self, ts: &[f64], x: f64, tx: f64, big_t: f64, out: &mut [f64]) -> Result<(), CoreError> {
        check_customer(x, tx, big_t)?;
        if let Some(t) = ts.iter().find(|t| !(t.is_finite() && **t >= 0.0)) {
            return Err(invalid(format!("periods must be a finite number >= 0, got {}", show(*t))));
        }
        let BgNbd { r, alpha, a, b } = *self;
        let (ha, hb, hc) = (r + x, b + x, a + b + x - 1.0);
        let mut scratch = Scratch::new();
        let zs = scratch.take(ts.len());
        for (z, t) in zs.iter_mut().zip(ts) {
            *z = t / (alpha + big_t + t);
        }
        // ((alpha + T) / (alpha + T + t))^(r + x) 2F1(ha, hb; hc; z) = (1 - z)^e (1 + tail).
        let e = hyp2f1_many(ha, hb, hc, zs, out)? + (r + x);
        let first = (a + b + x - 1.0) / (a - 1.0);
        let denominator = 1.0 + if x > 0.0 { (a / (b + x - 1.0)) * ((alpha + big_t) / (alpha + tx)).powf(r + x) } else { 0.0 };
        let factor = first / denominator;
        for ((o, t), z) in out.iter_mut().zip(ts).zip(zs.iter()) {
            *o = if *t == 0.0 {
                0.0
            } else {
                let (tail, w) = (*o, e * (-z).ln_1p());
                // 1 - (1 - z)^e (1 + tail): without cancellation from the tail when the series
                // is near 1, in logs when it is large.
                let second = if tail.abs() <= 1.0 { -((1.0 + tail) * w.exp_m1() + tail) } else { -(tail.ln_1p() + w).exp_m1() };
                finite("expected purchases", factor * second)?
            };
        }
        Ok(())
    }

    /// Probability that a customer with (x, tx, T) is still active:
    /// lifetimes' `conditional_probability_alive`.
    pub fn p_alive(&self, x: f64, tx: f64, big_t: f64) -> Result<f64, CoreError> {
        check_customer(x, tx, big_t)?;
        if x == 0.0 {
            return Ok(1.0);
        }
        let BgNbd { r, alpha, a, b } = *self;
        let log_div = (r + x) * ((alpha + big_t) / (alpha + tx)).ln() + (a / (b + x - 1.0)).ln();
        // expit(-log_div)
        Ok(if log_div >= 0.0 {
            let e = (-log_div).exp();
            e / (1.0 + e)
        } else {
            1.0 / (1.0 + log_div.exp())
        })
    }
}

impl GammaGamma {
    pub fn check(&self) -> Result<(), CoreError> {
        for (n, v) in [("p", self.p), ("q", self.q), ("v", self.v)] {
            if !(v.is_finite() && v > 0.0) {
                return Err(invalid(format!("Gamma-Gamma parameter {n} must be a finite number > 0, got {}", show(v))));
            }
        }
        if self.q <= 1.0 {
            return Err(invalid(format!("Gamma-Gamma parameter q must be > 1, got {}", self.q)));
        }
        Ok(())
    }

    /// Expected spend per purchase of a customer with x repeat purchases of mean m:
    /// lifetimes' `conditional_expected_average_profit`.
    pub fn expected_spend(&self, x: f64, m: f64) -> Result<f64, CoreError> {
        if !(x.is_finite() && x >= 0.0 && x.fract() == 0.0) {
            return Err(invalid(format!("frequency must be a whole number >= 0, got {}", show(x))));
        }
        if !(m.is_finite() && m >= 0.0) {
            return Err(invalid(format!("monetary must be a finite number >= 0, got {}", show(m))));
        }
        let GammaGamma { p, q, v } = *self;
        let w = p * x / (p * x + q - 1.0);
        let population = v * p / (q - 1.0);
        finite("expected spend", (1.0 - w) * population + w * m)
    }
}

/// Customer lifetime value over `months` months, as lifetimes' `customer_lifetime_value`:
/// for each month i, the expected purchases between (i - 1) and i months (a month being 30
/// days or 4.345 weeks) times the expected spend, discounted by (1 + discount)^i.
#[allow(clippy::too_many_arguments)]
pub fn clv(
    bg: &BgNbd,
    gg: &GammaGamma,
    unit: Unit,
    x: f64,
    tx: f64,
    big_t: f64,
    m: f64,
    months: i32,
    discount: f64,
) -> Result<f64, CoreError> {
    if !(0..=1200).contains(&months) {
        return Err(invalid(format!("months must be between 0 and 1200, got {months}")));
    }
    if !(discount.is_finite() && discount > -1.0) {
        return Err(invalid(format!("monthly_discount must be a finite number > -1, got {}", show(discount))));
    }
    let spend = gg.expected_spend(x, m)?;
    let factor = unit.per_month();
    let months = months as usize;
    let (mut ts_scratch, mut purchases_scratch) = (Scratch::new(), Scratch::new());
    let (ts, purchases) = (ts_scratch.take(months), purchases_scratch.take(months));
    for (i, t) in ts.iter_mut().enumerate() {
        *t = (i + 1) as f64 * factor;
    }
    bg.expected_purchases_many(ts, x, tx, big_t, purchases)?;
    let mut value = 0.0;
    let mut before = 0.0;
    for (i, now) in purchases.iter().enumerate() {
        value += spend * (now - before) / (1.0 + discount).powi(i as i32 + 1);
        before = *now;
    }
    finite("customer lifetime value", value)
}

#[cfg(test)]
mod tests {
    use super::*;

    const DAY: i64 = USECS_PER_DAY;

    fn ln_hyp2f1(a: f64, b: f64, c: f64, z: f64) -> Result<f64, CoreError> {
        let mut out = [0.0];
        let e = hyp2f1_many(a, b, c, &[z], &mut out)?;
        Ok(out[0].ln_1p() + e * (-z).ln_1p())
    }

    fn summary(rows: &[(i64, f64)], as_of: i64, unit: Unit) -> ClvSummary {
        let mut s = ClvState::default();
        for (ts, amount) in rows {
            s.update(*ts, *amount, as_of, unit).unwrap();
        }
        s.finalize().unwrap()
    }

    #[test]
    fn summary_by_hand() {
        // Purchases on days 10 (twice), 13 and 24, as_of day 31 at noon.
        let rows = [(10 * DAY + 5, 3.0), (24 * DAY, 8.0), (10 * DAY + 99, 4.0), (13 * DAY + 7, 2.0)];
        let s = summary(&rows, 31 * DAY + DAY / 2, Unit::Day);
        assert_eq!(s, ClvSummary { frequency: 2, recency: 14.0, t: 21.0, monetary: 5.0 });
        let w = summary(&rows, 31 * DAY + DAY / 2, Unit::Week);
        assert_eq!(w.frequency, 2);
        assert!((w.recency - 2.0).abs() < 1e-15 && (w.t - 3.0).abs() < 1e-15);
        // One purchase day: frequency 0, recency 0, monetary 0.
        let one = summary(&[(5 * DAY, 7.0), (5 * DAY + 1, 1.0)], 9 * DAY, Unit::Day);
        assert_eq!(one, ClvSummary { frequency: 0, recency: 0.0, t: 4.0, monetary: 0.0 });
        // Days before 2000-01-01 (negative timestamps) are calendar days too.
        let neg = summary(&[(-DAY - 1, 1.0), (-DAY + 1, 2.0)], 0, Unit::Day);
        assert_eq!(neg, ClvSummary { frequency: 1, recency: 1.0, t: 2.0, monetary: 2.0 });
    }

    #[test]
    fn summary_merges_in_any_split() {
        let rows: Vec<(i64, f64)> = (0..200).map(|i| ((i * 7919 % 61) * DAY + i, (i % 13) as f64)).collect();
        let whole = summary(&rows, 70 * DAY, Unit::Day);
        for cut in [0, 1, 57, 150, 199] {
            let mut a = ClvState::default();
            let mut b = ClvState::default();
            for (i, (ts, amt)) in rows.iter().enumerate() {
                if i < cut { &mut a } else { &mut b }.update(*ts, *amt, 70 * DAY, Unit::Day).unwrap();
            }
            let mut b = ClvState::deserialize(&b.serialize()).unwrap();
            a.merge(&mut b).unwrap();
            let got = a.finalize().unwrap();
            assert_eq!(got.frequency, whole.frequency);
            assert_eq!(got.recency, whole.recency);
            assert!((got.monetary - whole.monetary).abs() < 1e-12);
        }
    }

    #[test]
    fn summary_errors() {
        let mut s = ClvState::default();
        assert!(s.update(2 * DAY, 1.0, DAY, Unit::Day).unwrap_err().message.contains("later than as_of"));
        assert!(s.update(0, -1.0, DAY, Unit::Day).unwrap_err().message.contains(">= 0"));
        s.update(0, 1.0, DAY, Unit::Day).unwrap();
        assert!(s.update(0, 1.0, 2 * DAY, Unit::Day).unwrap_err().message.contains("as_of must be the same"));
        assert!(s.update(0, 1.0, DAY, Unit::Week).unwrap_err().message.contains("unit must be the same"));
        assert!(ClvState::deserialize(&[1, 0, 0]).is_err());
        let mut bytes = s.serialize();
        bytes[9] = 7;
        assert!(ClvState::deserialize(&bytes).is_err());
        assert!(Unit::parse("month").is_err());
    }

    #[test]
    fn solve_by_hand() {
        // 2x + y = 5, x + 3y + z = 7, y + 4z = 9 -> (2, 1, 2); a zero pivot is swapped away.
        let x = solve([[2.0, 1.0, 0.0], [1.0, 3.0, 1.0], [0.0, 1.0, 4.0]], [5.0, 7.0, 9.0]).unwrap();
        assert!(x.iter().zip([2.0, 1.0, 2.0]).all(|(a, b)| (a - b).abs() < 1e-14), "{x:?}");
        assert_eq!(solve([[0.0, 1.0], [1.0, 0.0]], [3.0, 4.0]), Some([4.0, 3.0]));
        assert_eq!(solve([[1.0, 2.0], [2.0, 4.0]], [1.0, 2.0]), None);
    }

    #[test]
    fn digamma_and_hyp2f1() {
        // psi(1) = -Euler-Mascheroni, psi(1/2) = -gamma - 2 ln 2.
        let g = 0.577_215_664_901_532_9;
        assert!((digamma(1.0) + g).abs() < 1e-14);
        assert!((digamma(0.5) + g + 2.0 * 2f64.ln()).abs() < 1e-14);
        // 2F1(1, 1; 2; z) = -ln(1 - z) / z; 2F1(a, b; b; z) = (1 - z)^-a.
        for z in [0.1, 0.5, 0.9, 0.99] {
            let v = ln_hyp2f1(1.0, 1.0, 2.0, z).unwrap();
            assert!((v - (-(-z).ln_1p() / z).ln()).abs() < 1e-13, "{z}");
            let w = ln_hyp2f1(2.5, 3.0, 3.0, z).unwrap();
            assert!((w + 2.5 * (-z).ln_1p()).abs() < 1e-12, "{z}");
        }
    }

    #[test]
    fn bfgs_finds_the_minimum_of_rosenbrock() {
        let f = |x: &[f64; 2]| {
            let (a, b) = (x[0], x[1]);
            ((1.0 - a).powi(2) + 100.0 * (b - a * a).powi(2), [-2.0 * (1.0 - a) - 400.0 * a * (b - a * a), 200.0 * (b - a * a)])
        };
        let o = bfgs([-1.2, 1.0], None, f, 500, 1e-10, 1e-10, &mut || {});
        assert!(o.converged);
        assert!((o.x[0] - 1.0).abs() < 1e-8 && (o.x[1] - 1.0).abs() < 1e-8);
    }

    /// The BG/NBD likelihood of the paper's example customer classes is what the formula
    /// gives by hand, and the gradient equals central differences.
    #[test]
    fn bgnbd_loglik_and_gradient() {
        let rows = vec![(2.0, 30.43, 38.86), (1.0, 1.71, 38.86), (0.0, 0.0, 38.86), (0.0, 0.0, 38.86), (5.0, 20.0, 30.0)];
        let d = BgData::new(rows.clone()).unwrap();
        assert_eq!(d.patterns(), 4);
        let m = BgNbd { r: 0.243, alpha: 4.414, a: 0.793, b: 2.426 };
        let by_hand: f64 = rows
            .iter()
            .map(|&(x, tx, t)| {
                let BgNbd { r, alpha, a, b } = m;
                let a1 = ln_gamma(r + x) - ln_gamma(r) + r * alpha.ln();
                let a2 = ln_gamma(a + b) + ln_gamma(b + x) - ln_gamma(b) - ln_gamma(a + b + x);
                let a3 = (-(r + x) * (alpha + t).ln()).exp();
                let a4 = if x > 0.0 { (a / (b + x - 1.0)) * (-(r + x) * (alpha + tx).ln()).exp() } else { 0.0 };
                a1 + a2 + (a3 + a4).ln()
            })
            .sum();
        let (ll, g) = d.loglik(&m, 1.0, true, 2);
        assert!((ll - by_hand).abs() < 1e-11 * by_hand.abs());
        let p = [m.r, m.alpha, m.a, m.b];
        for i in 0..4 {
            let h = 1e-6 * p[i];
            let mut up = p;
            let mut dn = p;
            up[i] += h;
            dn[i] -= h;
            let at = |q: [f64; 4]| d.loglik(&BgNbd { r: q[0], alpha: q[1], a: q[2], b: q[3] }, 1.0, false, 1).0;
            let num = (at(up) - at(dn)) / (2.0 * h);
            assert!((num - g[i]).abs() < 1e-6 * (1.0 + g[i].abs()), "{i}: {num} vs {}", g[i]);
        }
    }

    #[test]
    fn gamma_gamma_loglik_and_gradient() {
        let rows = vec![(2.0, 22.35), (1.0, 11.77), (0.0, 0.0), (4.0, 30.0), (1.0, 11.77)];
        let d = GgData::new(rows.clone()).unwrap();
        assert_eq!(d.n, 4);
        let m = GammaGamma { p: 6.25, q: 3.74, v: 15.44 };
        let by_hand: f64 = rows
            .iter()
            .filter(|r| r.0 > 0.0)
            .map(|&(x, mm)| {
                let GammaGamma { p, q, v } = m;
                ln_gamma(p * x + q) - ln_gamma(p * x) - ln_gamma(q) + q * v.ln() + (p * x - 1.0) * mm.ln() + p * x * x.ln()
                    - (p * x + q) * (x * mm + v).ln()
            })
            .sum();
        let (ll, g) = d.loglik(&m, true, 2);
        assert!((ll - by_hand).abs() < 1e-11 * by_hand.abs());
        let p = [m.p, m.q, m.v];
        for i in 0..3 {
            let h = 1e-6 * p[i];
            let mut up = p;
            let mut dn = p;
            up[i] += h;
            dn[i] -= h;
            let at = |q: [f64; 3]| d.loglik(&GammaGamma { p: q[0], q: q[1], v: q[2] }, false, 1).0;
            let num = (at(up) - at(dn)) / (2.0 * h);
            assert!((num - g[i]).abs() < 1e-6 * (1.0 + g[i].abs()), "{i}: {num} vs {}", g[i]);
        }
    }

    /// Simulated BG/NBD customers: the fit recovers the generating parameters.
    #[test]
    fn bgnbd_fit_recovers_simulated_parameters() {
        use crate::core::rng::Rng;
        let truth = BgNbd { r: 0.5, alpha: 10.0, a: 0.8, b: 2.5 };
        let mut rng = Rng::new(7);
        let rows: Vec<(f64, f64, f64)> = (0..20_000).map(|_| simulate(&truth, 52.0, &mut rng)).collect();
        let d = BgData::new(rows.clone()).unwrap();
        let f = fit_bgnbd(&d, 0.0, 1000, 2, &mut || {}).unwrap();
        // The fit does not depend on the number of threads, nor on the order of the rows.
        let one = fit_bgnbd(&d, 0.0, 1000, 1, &mut || {}).unwrap();
        assert_eq!(f.params, one.params);
        let mut reversed = rows.clone();
        reversed.reverse();
        let back = fit_bgnbd(&BgData::new(reversed).unwrap(), 0.0, 1000, 2, &mut || {}).unwrap();
        assert_eq!(f.params, back.params);
        let p = f.params;
        assert!((p.r / truth.r - 1.0).abs() < 0.1, "{p:?}");
        assert!((p.alpha / truth.alpha - 1.0).abs() < 0.15, "{p:?}");
        assert!((p.a / truth.a - 1.0).abs() < 0.25, "{p:?}");
        assert!((p.b / truth.b - 1.0).abs() < 0.3, "{p:?}");
        // At the optimum the gradient of the total log-likelihood vanishes.
        let (_, g) = d.loglik(&p, 1.0, true, 3);
        let scaled = [g[0] * p.r, g[1] * p.alpha, g[2] * p.a, g[3] * p.b];
        assert!(scaled.iter().all(|v| v.abs() < 1e-4 * d.n as f64), "{scaled:?}");
    }

    /// The warm start on a sample reaches the optimum of the full fit, in fewer evaluations of
    /// the full likelihood.
    #[test]
    fn warm_start_reaches_the_same_optimum() {
        use crate::core::rng::Rng;
        let truth = BgNbd { r: 0.5, alpha: 30.0, a: 0.8, b: 3.0 };
        let mut rng = Rng::new(11);
        let rows: Vec<(f64, f64, f64)> = (0..60_000).map(|_| simulate(&truth, 30.0 + 700.0 * rng.f64(), &mut rng)).collect();
        let d = BgData::new(rows.clone()).unwrap();
        assert!(d.patterns() >= WARM_MIN);
        let cold = fit_bgnbd_warm(&d, 0.0, 1000, 2, false, &mut || {}).unwrap();
        let warm = fit_bgnbd(&d, 0.0, 1000, 2, &mut || {}).unwrap();
        assert!(warm.sample_iterations > 0 && cold.sample_iterations == 0);
        let (c, w) = (cold.params, warm.params);
        for (x, y) in [(c.r, w.r), (c.alpha, w.alpha), (c.a, w.a), (c.b, w.b)] {
            assert!((x / y - 1.0).abs() < 1e-7, "{c:?} vs {w:?}");
        }
        assert!((cold.loglik - warm.loglik).abs() < 1e-9 * cold.loglik.abs());
        // Gamma-Gamma on spends of mean 20 around the customers' own means.
        let spends: Vec<(f64, f64)> =
            rows.iter().filter(|r| r.0 > 0.0).map(|r| (r.0, 20.0 * gamma(6.0, &mut rng) / gamma(4.0, &mut rng).max(0.5))).collect();
        let g = GgData::new(spends).unwrap();
        let cold = fit_gamma_gamma_warm(&g, 0.0, 1000, 2, false, &mut || {}).unwrap();
        let warm = fit_gamma_gamma_warm(&g, 0.0, 1000, 2, true, &mut || {}).unwrap();
        assert!(warm.sample_iterations > 0);
        let (c, w) = (cold.params, warm.params);
        // Gamma-Gamma's p, q and v are strongly correlated: both stop at the objective's
        // rounding floor with gradients near 1e-8, a few 1e-7 apart.
        for (x, y) in [(c.p, w.p), (c.q, w.q), (c.v, w.v)] {
            assert!((x / y - 1.0).abs() < 1e-6, "{c:?} vs {w:?}");
        }
    }

    /// One customer of a BG/NBD process observed for `t` units (whole days).
    fn simulate(m: &BgNbd, t: f64, rng: &mut crate::core::rng::Rng) -> (f64, f64, f64) {
        let lambda = gamma(m.r, rng) / m.alpha;
        let p = beta(m.a, m.b, rng);
        let mut now = 0.0;
        let mut x = 0.0;
        let mut last = 0.0;
        loop {
            now += -(1.0 - rng.f64()).ln() / lambda;
            if now > t {
                break;
            }
            x += 1.0;
            last = now;
            if rng.f64() < p {
                break;
            }
        }
        (x, last, t)
    }

    fn gamma(shape: f64, rng: &mut crate::core::rng::Rng) -> f64 {
        // Marsaglia-Tsang, with the shape < 1 boost.
        if shape < 1.0 {
            return gamma(shape + 1.0, rng) * rng.f64().powf(1.0 / shape);
        }
        let d = shape - 1.0 / 3.0;
        let c = 1.0 / (9.0 * d).sqrt();
        loop {
            let (u1, u2) = (rng.f64().max(1e-300), rng.f64());
            let z = (-2.0 * u1.ln()).sqrt() * (2.0 * std::f64::consts::PI * u2).cos();
            let v = (1.0 + c * z).powi(3);
            if v > 0.0 && rng.f64().max(1e-300).ln() < 0.5 * z * z + d - d * v + d * v.ln() {
                return d * v;
            }
        }
    }

    fn beta(a: f64, b: f64, rng: &mut crate::core::rng::Rng) -> f64 {
        let x = gamma(a, rng);
        x / (x + gamma(b, rng))
    }

    #[test]
    fn predictions_by_hand() {
        let m = BgNbd { r: 0.243, alpha: 4.414, a: 0.793, b: 2.426 };
        // No repeat purchase: alive for sure; the expectation is the population's
        // E[X(t)] = (a+b-1)/(a-1) [1 - ((alpha)/(alpha+t))^r 2F1(r, b; a+b-1; t/(alpha+t))]
        // at T = 0.
        assert_eq!(m.p_alive(0.0, 0.0, 10.0).unwrap(), 1.0);
        let t = 39.0;
        let pop = (m.a + m.b - 1.0) / (m.a - 1.0)
            * (1.0 - (m.alpha / (m.alpha + t)).powf(m.r) * ln_hyp2f1(m.r, m.b, m.a + m.b - 1.0, t / (m.alpha + t)).unwrap().exp());
        assert!((m.expected_purchases(t, 0.0, 0.0, 0.0).unwrap() - pop).abs() < 1e-12);
        assert_eq!(m.expected_purchases(0.0, 3.0, 5.0, 9.0).unwrap(), 0.0);
        // P(alive) by the paper's formula 1 / (1 + a/(b+x-1) ((alpha+T)/(alpha+tx))^(r+x)).
        let (x, tx, big_t) = (2.0, 30.43, 38.86);
        let want = 1.0 / (1.0 + m.a / (m.b + x - 1.0) * ((m.alpha + big_t) / (m.alpha + tx)).powf(m.r + x));
        assert!((m.p_alive(x, tx, big_t).unwrap() - want).abs() < 1e-15);
        let gg = GammaGamma { p: 6.25, q: 3.74, v: 15.44 };
        let w = 6.25 * 2.0 / (6.25 * 2.0 + 2.74);
        assert!((gg.expected_spend(2.0, 22.35).unwrap() - ((1.0 - w) * 15.44 * 6.25 / 2.74 + w * 22.35)).abs() < 1e-12);
        // CLV of one month is the first month's expected purchases times the spend, discounted.
        let one = clv(&m, &gg, Unit::Week, x, tx, big_t, 22.35, 1, 0.01).unwrap();
        let e = m.expected_purchases(4.345, x, tx, big_t).unwrap();
        assert!((one - e * gg.expected_spend(x, 22.35).unwrap() / 1.01).abs() < 1e-12);
        assert!(m.expected_purchases(1.0, 1.5, 0.0, 1.0).is_err());
        assert!(m.p_alive(1.0, 5.0, 4.0).is_err());
        assert!(GammaGamma { p: 1.0, q: 0.9, v: 1.0 }.check().is_err());
    }
}
