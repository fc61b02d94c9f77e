//! The non-personal fallback: the items most customers interacted with.

use serde::{Deserialize, Serialize};

use crate::interactions::Sparse;
use crate::{Recommender, Scored};

/// Items ranked by how many distinct users interacted with them.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Popularity {
    /// (item, distinct users), most popular first.
    ranked: Vec<(u32, u32)>,
}

impl Popularity {
    /// Counts each item's users in a user × item matrix.
    pub fn train(user_items: &Sparse) -> Self {
        let mut counts = vec![0u32; user_items.cols()];
        for u in 0..user_items.rows() {
            for &i in user_items.row(u).0 {
                counts[i as usize] += 1;
            }
        }
        let mut ranked: Vec<(u32, u32)> = counts
            .into_iter()
            .enumerate()
            .filter(|(_, n)| *n > 0)
            .map(|(i, n)| (i as u32, n))
            .collect();
        ranked.sort_unstable_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(&b.0)));
        Popularity { ranked }
    }

    /// The `k` most popular items, whoever asks (the answer without personal data).
    pub fn top(&self, k: usize) -> Vec<Scored> {
        self.ranked
            .iter()
            .take(k)
            .map(|&(i, n)| (i, n as f32))
            .collect()
    }
}

impl Recommender for Popularity {
    fn recommend(&self, seen: &[(u32, f32)], k: usize) -> Vec<Scored> {
        self.ranked
            .iter()
            .filter(|(i, _)| !seen.iter().any(|(s, _)| s == i))
            .take(k)
            .map(|&(i, n)| (i, n as f32))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranks_by_distinct_users_and_skips_what_was_seen() {
        let m = Sparse::from_triples(3, 3, [(0, 2, 5.0), (1, 2, 1.0), (2, 2, 1.0), (0, 1, 9.0)]);
        let p = Popularity::train(&m);
        assert_eq!(p.top(5), vec![(2, 3.0), (1, 1.0)]);
        assert_eq!(p.recommend(&[(2, 1.0)], 5), vec![(1, 1.0)]);
    }
}
