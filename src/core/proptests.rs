//! Seeded property tests of what parallel workers and Citus rely on: partial states merged
//! in any split and any order equal the serial state; quantiles equal a sort-based
//! reference; assignment equals brute force after the stored preprocessing.

use super::encode::Encoding;
use super::model::{train, Assigner, Options, SelectK};
use super::pca::Components;
use super::quantile::{percentiles, BreaksState, IqrState};
use super::rfm::{RfmCore, RfmLines};
use super::rng::Rng;
use super::scale::Outliers;
use super::Partial;

const DAY: i64 = 86_400_000_000;
const CASES: u64 = 150;

/// Splits 0..n into 1..=6 random contiguous parts.
fn random_splits(rng: &mut Rng, n: usize) -> Vec<std::ops::Range<usize>> {
    let parts = 1 + rng.below(6) as usize;
    let mut cuts: Vec<usize> = (0..parts - 1).map(|_| rng.below(n as u64 + 1) as usize).collect();
    cuts.push(0);
    cuts.push(n);
    cuts.sort_unstable();
    cuts.windows(2).map(|w| w[0]..w[1]).collect()
}

/// Builds one partial state per part, ships each through its bytes, and merges them in a
/// random order into a fresh state (as a Finalize Aggregate does).
fn merged<T: Partial>(rng: &mut Rng, n: usize, build: impl Fn(std::ops::Range<usize>) -> T) -> T {
    let mut parts: Vec<T> = random_splits(rng, n).into_iter().map(|r| T::deserialize(&build(r).serialize()).unwrap()).collect();
    let mut out = T::empty();
    while !parts.is_empty() {
        let i = rng.below(parts.len() as u64) as usize;
        let mut p = parts.swap_remove(i);
        out.merge(&mut p).unwrap();
    }
    out
}

fn close(a: f64, b: f64) -> bool {
    (a - b).abs() <= 1e-9 * a.abs().max(b.abs()).max(1.0)
}

#[test]
fn rfm_states_merge_in_any_split_and_order() {
    for case in 0..CASES {
        let mut rng = Rng::new(case);
        let n = rng.below(300) as usize;
        let rows: Vec<(i64, f64, String)> = (0..n)
            .map(|_| {
                let amount = (rng.f64() - 0.15) * 1000.0; // some returns
                (rng.below(700) as i64 * DAY + rng.below(DAY as u64) as i64, amount, format!("inv{}", rng.below(40)))
            })
            .collect();
        let as_of = 800 * DAY;
        let core = |r: std::ops::Range<usize>| {
            let mut s = RfmCore::default();
            rows[r].iter().for_each(|(t, a, _)| {
                s.update(*t, *a, as_of).unwrap();
            });
            s
        };
        let lines = |r: std::ops::Range<usize>| {
            let mut s = RfmLines::new();
            rows[r].iter().for_each(|(t, a, o)| s.update(*t, *a, o.as_bytes(), as_of).unwrap());
            s
        };
        for (want, got) in
            [(core(0..n).finalize(), merged(&mut rng, n, core).finalize()), (lines(0..n).finalize(), merged(&mut rng, n, lines).finalize())]
        {
            match (want, got) {
                (None, None) => {}
                (Some(w), Some(g)) => {
                    assert_eq!(
                        (w.frequency, w.recency, w.first_purchase, w.last_purchase),
                        (g.frequency, g.recency, g.first_purchase, g.last_purchase),
                        "case {case}"
                    );
                    assert!(close(w.monetary, g.monetary), "case {case}: {} vs {}", w.monetary, g.monetary);
                }
                (w, g) => panic!("case {case}: {w:?} vs {g:?}"),
            }
        }
    }
}

#[test]
fn quantile_states_merge_and_match_a_sort() {
    for case in 0..CASES {
        let mut rng = Rng::new(1000 + case);
        let n = 1 + rng.below(200) as usize;
        let values: Vec<f64> = (0..n).map(|_| (rng.below(25) as f64 - 5.0) * 0.5).collect(); // ties
        let iqr = |r: std::ops::Range<usize>| {
            let mut s = IqrState::default();
            values[r].iter().for_each(|v| s.update(*v, 1.5).unwrap());
            s
        };
        let got = merged(&mut rng, n, iqr).finalize().unwrap().unwrap();
        let mut sorted = values.clone();
        sorted.sort_by(f64::total_cmp);
        let reference = |p: f64| {
            let pos = p * (n - 1) as f64;
            let (lo, hi) = (pos.floor() as usize, pos.ceil() as usize);
            if lo == hi {
                sorted[lo]
            } else {
                sorted[lo] + (sorted[hi] - sorted[lo]) * (pos - lo as f64)
            }
        };
        assert_eq!((got.q1, got.median, got.q3), (reference(0.25), reference(0.5), reference(0.75)), "case {case}");
        let classes = 2 + rng.below(8) as i32;
        let breaks = |r: std::ops::Range<usize>| {
            let mut s = BreaksState::default();
            values[r].iter().for_each(|v| s.update(Some(*v), Some(-*v), None, classes).unwrap());
            s
        };
        let (_, [cuts, neg, none]) = merged(&mut rng, n, breaks).finalize().unwrap();
        let want: Vec<f64> = (1..classes).map(|i| reference(i as f64 / classes as f64)).collect();
        assert_eq!(cuts.unwrap(), want, "case {case}");
        assert!(neg.is_some() && none.is_none());
        let ps: Vec<f64> = (0..=10).map(|i| i as f64 / 10.0).collect();
        let direct = percentiles(&mut values.clone(), &ps).unwrap();
        assert_eq!(direct, ps.iter().map(|p| reference(*p)).collect::<Vec<_>>(), "case {case}");
    }
}

#[test]
fn assignment_equals_brute_force_on_random_models() {
    let features: Vec<String> = vec!["recency".into(), "frequency".into(), "monetary".into()];
    for case in 0..20 {
        let mut rng = Rng::new(5000 + case);
        let n = 60 + rng.below(300) as usize;
        let raw: Vec<f64> =
            (0..n).flat_map(|_| [rng.f64() * 700.0, 1.0 + (rng.f64() * rng.f64() * 40.0).floor(), (rng.f64() * 9.0).exp()]).collect();
        let outliers = [Outliers::Clip, Outliers::Drop, Outliers::Keep][case as usize % 3];
        let opts = Options {
            k: Some(2 + rng.below(5) as usize),
            k_min: 2,
            k_max: 2,
            select_k: SelectK::Silhouette,
            outliers,
            log_features: Some(if case % 2 == 0 { vec!["frequency".into(), "monetary".into()] } else { vec![] }),
            standardize: case % 4 != 3,
            n_init: 2,
            max_iter: 100,
            tolerance: 1e-4,
            seed: case,
            threads: 1,
            // Every third case projects onto 2 principal components first.
            pca: (case % 3 == 1).then_some(Components::Count(2)),
            max_levels: 20,
        };
        let m = train(raw, &features, Encoding::numeric(&features), &opts, &[], &mut |_| {}, &mut || {}).unwrap().model;
        for _ in 0..50 {
            let x = [rng.f64() * 900.0 - 100.0, rng.f64() * 60.0, rng.f64() * 20_000.0 - 1000.0];
            let s = &m.scaler;
            let z: Vec<f64> = (0..3)
                .map(|j| {
                    let mut v = if s.outliers == Outliers::Keep { x[j] } else { x[j].max(s.lower[j]).min(s.upper[j]) };
                    if s.log[j] {
                        v = v.signum() * v.abs().ln_1p();
                    }
                    (v - s.mean[j]) / s.scale[j]
                })
                .collect();
            // Projection by hand: loadings times the centred row.
            let z: Vec<f64> = match &m.pca {
                Some(p) => p.components.iter().map(|w| (0..3).map(|j| w[j] * (z[j] - p.center[j])).sum()).collect(),
                None => z,
            };
            let brute = (0..m.clusters.len())
                .map(|c| (c, z.iter().zip(&m.clusters[c].scaled).map(|(a, b)| (a - b) * (a - b)).sum::<f64>()))
                .fold((0, f64::INFINITY), |best, (c, d)| if d < best.1 { (c, d) } else { best });
            let mut row = x;
            assert_eq!(Assigner::new(&m).assign(&mut row).unwrap(), brute.0, "case {case}, x {x:?}");
        }
    }
}
