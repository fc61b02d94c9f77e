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
    let mut best = TopK::new(k);
    for (i, &s) in scores.iter().enumerate() {
        best.offer(i as u32, s, &skip);
    }
    best.into_sorted()
}

/// The `k` best items offered so far, in any order of offering: the result is the same set
/// (best score first, ties to the lower index) whatever the order.
pub(crate) struct TopK {
    k: usize,
    heap: BinaryHeap<Worst>,
}

impl TopK {
    pub(crate) fn new(k: usize) -> Self {
        TopK {
            k,
            heap: BinaryHeap::with_capacity(k + 1),
        }
    }

    /// Offers item `i` with score `s`; `skip` is asked only about an item good enough to keep.
    /// Whether it was kept.
    pub(crate) fn offer(&mut self, i: u32, s: f32, skip: impl Fn(u32) -> bool) -> bool {
        if self.k == 0 || !s.is_finite() {
            return false;
        }
        let candidate = Worst((i, s));
        if self.heap.len() == self.k {
            // The heap's top is the worst kept; only something better gets in.
            if self
                .heap
                .peek()
                .is_some_and(|w| candidate.cmp(w) != Ordering::Less)
            {
                return false;
            }
        }
        if skip(i) {
            return false;
        }
        self.heap.push(candidate);
        if self.heap.len() > self.k {
            self.heap.pop();
        }
        true
    }

    /// The score of the worst item kept once `k` are: an item scoring less cannot get in.
    pub(crate) fn floor(&self) -> Option<f32> {
        match self.heap.len() == self.k {
            true => self.heap.peek().map(|w| w.0 .1),
            false => None,
        }
    }

    /// The items kept, best first.
    pub(crate) fn into_sorted(self) -> Vec<Scored> {
        let mut all: Vec<Scored> = self.heap.into_iter().map(|w| w.0).collect();
        all.sort_unstable_by(better);
        all
    }
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
