//! Keeping the best `k` of many scores without sorting them all.

use std::cmp::Ordering;

use crate::Scored;

/// Best first; ties go to the lower item index so results are reproducible.
fn better(a: &Scored, b: &Scored) -> Ordering {
    b.1.partial_cmp(&a.1)
        .unwrap_or(Ordering::Equal)
        .then(a.0.cmp(&b.0))
}

/// The `k` best of `scores` (index = item), skipping items for which `skip` says so and
/// non-finite scores.
pub(crate) fn top_k(scores: &[f32], k: usize, skip: impl Fn(u32) -> bool) -> Vec<Scored> {
    let mut all: Vec<Scored> = scores
        .iter()
        .enumerate()
        .filter(|(i, s)| s.is_finite() && !skip(*i as u32))
        .map(|(i, s)| (i as u32, *s))
        .collect();
    best(&mut all, k)
}

/// Sorts the `k` best of `all` to its front and returns them.
pub(crate) fn best(all: &mut Vec<Scored>, k: usize) -> Vec<Scored> {
    if k == 0 {
        return Vec::new();
    }
    if all.len() > k {
        all.select_nth_unstable_by(k - 1, better);
        all.truncate(k);
    }
    all.sort_unstable_by(better);
    std::mem::take(all)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keeps_the_best_in_order_and_breaks_ties_by_index() {
        let got = top_k(&[0.5, 2.0, f32::NAN, 2.0, 1.0, 3.0], 3, |i| i == 5);
        assert_eq!(got, vec![(1, 2.0), (3, 2.0), (4, 1.0)]);
        assert!(top_k(&[1.0], 0, |_| false).is_empty());
    }
}
