//! splitmix64: a small, fast, portable PRNG, so that a seed gives the same model everywhere.

#[derive(Clone, Debug)]
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Self {
        Rng(seed ^ 0x9E37_79B9_7F4A_7C15)
    }

    /// An independent stream `i` of `seed` (one per KMeans run, one for sampling, ...).
    pub fn stream(seed: u64, i: u64) -> Self {
        let mut r = Rng::new(seed ^ (i.wrapping_add(1)).wrapping_mul(0xD6E8_FEB8_6659_FD93));
        r.next_u64();
        r
    }

    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform in [0, 1).
    pub fn f64(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64
    }

    /// Uniform in 0..n (n > 0).
    pub fn below(&mut self, n: u64) -> u64 {
        ((self.next_u64() as u128 * n as u128) >> 64) as u64
    }

    /// `m` distinct indices of 0..n, ascending (Knuth's selection sampling: one pass,
    /// memory for the sample only).
    pub fn sample(&mut self, n: usize, m: usize) -> Vec<usize> {
        let m = m.min(n);
        let mut out = Vec::with_capacity(m);
        for i in 0..n {
            if out.len() == m {
                break;
            }
            // Take i with probability (still needed) / (still left).
            if self.below((n - i) as u64) < (m - out.len()) as u64 {
                out.push(i);
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sample_is_distinct_and_deterministic() {
        let a = Rng::new(1).sample(100, 30);
        let b = Rng::new(1).sample(100, 30);
        assert_eq!(a, b);
        let mut s = a.clone();
        s.sort();
        s.dedup();
        assert_eq!(s.len(), 30);
        assert!(s.iter().all(|i| *i < 100));
        assert_eq!(Rng::new(1).sample(5, 10).len(), 5);
    }

    #[test]
    fn uniform_in_range() {
        let mut r = Rng::new(3);
        for _ in 0..1000 {
            let x = r.f64();
            assert!((0.0..1.0).contains(&x));
            assert!(r.below(7) < 7);
        }
    }
}
