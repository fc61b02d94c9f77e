//! Keeping the best `k` of many scores without sorting them all.

use std::cmp::Ordering;
use std::collections::BinaryHeap;

use crate::Scored;

/// Best first; ties go to the lower item index so results are reproducible.
fn better(a: &Scored, b: &Scored) -> Ordering {
    b.1.partial_cmp(&a.1)
        .unwrap_or(Ordering::Equal)
        .then(a.0.cmp(&b.0))
}

/// The `k` best of `scores` (index = item), skipping items for which `skip` says so and
/// non-finite scores. Keeps a bounded min-heap, so a large catalogue costs one pass and no
/// allocation beyond `k`.
pub(crate) fn top_k(scores: &[f32], k: usize, skip: impl Fn(u32) -> bool) -> Vec<Scored> {
    if k == 0 {
        return Vec::new();
    }
    let mut heap: BinaryHeap<Worst> = BinaryHeap::with_capacity(k + 1);
    for (i, &s) in scores.iter().enumerate() {
        if !s.is_finite() {
            continue;
        }
        let candidate = Worst((i as u32, s));
        if heap.len() == k {
            // The heap's top is the worst kept; only something better gets in.
            if heap
                .peek()
                .is_some_and(|w| candidate.cmp(w) != Ordering::Less)
            {
                continue;
            }
        }
        if skip(i as u32) {
            continue;
        }
        heap.push(candidate);
        if heap.len() > k {
            heap.pop();
        }
    }
    let mut all: Vec<Scored> = heap.into_iter().map(|w| w.0).collect();
    all.sort_unstable_by(better);
    all
}

/// Orders so the heap's top is the worst of the kept: "greater" means worse.
struct Worst(Scored);

impl PartialEq for Worst {
    fn eq(&self, other: &Self) -> bool {
        self.cmp(other) == Ordering::Equal
    }
}
impl Eq for Worst {}
impl PartialOrd for Worst {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}
impl Ord for Worst {
    fn cmp(&self, other: &Self) -> Ordering {
        better(&self.0, &other.0)
    }
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
    fn the_heap_agrees_with_sorting_everything() {
        let scores: Vec<f32> = (0..500u32)
            .map(|i| ((i * 7919) % 101) as f32 / 7.0)
            .collect();
        for k in [1, 5, 10, 100, 600] {
            let mut all: Vec<Scored> = scores
                .iter()
                .enumerate()
                .filter(|(i, _)| i % 3 != 0)
                .map(|(i, s)| (i as u32, *s))
                .collect();
            all.sort_unstable_by(better);
            all.truncate(k);
            assert_eq!(top_k(&scores, k, |i| i % 3 == 0), all, "k = {k}");
        }
    }

    #[test]
    fn keeps_the_best_in_order_and_breaks_ties_by_index() {
        let got = top_k(&[0.5, 2.0, f32::NAN, 2.0, 1.0, 3.0], 3, |i| i == 5);
        assert_eq!(got, vec![(1, 2.0), (3, 2.0), (4, 1.0)]);
        assert!(top_k(&[1.0], 0, |_| false).is_empty());
    }
}
