//! The squared Euclidean distance and the nearest-centroid search every part of pg_rfm
//! uses: training, metrics and assignment.

/// Squared Euclidean distance between two rows of the same length.
#[inline(always)]
pub fn dist2(a: &[f64], b: &[f64]) -> f64 {
    let mut s = 0.0;
    for (x, y) in a.iter().zip(b) {
        let t = x - y;
        s += t * t;
    }
    s
}

/// Index and squared distance of the centroid nearest to `x` among `centroids` (flat rows
/// of `x.len()` values), the lowest index on ties. Inlined, so that a row length known at
/// compile time unrolls the distance loop.
#[inline(always)]
pub fn nearest(x: &[f64], centroids: &[f64]) -> (usize, f64) {
    let mut best = (0, f64::INFINITY);
    if x.is_empty() {
        return best;
    }
    for (c, cent) in centroids.chunks_exact(x.len()).enumerate() {
        let dd = dist2(x, cent);
        if dd < best.1 {
            best = (c, dd);
        }
    }
    best
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hand_worked() {
        assert_eq!(dist2(&[1.0, 2.0], &[4.0, 6.0]), 25.0);
        // Centroids (0,0), (3,4), (3,4): the point (3,3) is 1 from both copies; the first wins.
        assert_eq!(nearest(&[3.0, 3.0], &[0.0, 0.0, 3.0, 4.0, 3.0, 4.0]), (1, 1.0));
        assert_eq!(nearest(&[], &[1.0]), (0, f64::INFINITY));
    }
}
