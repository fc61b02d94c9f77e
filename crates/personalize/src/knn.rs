//! Item-item nearest neighbours: cosine over co-occurrence, shrunk towards zero when few
//! customers back it.

use serde::{Deserialize, Serialize};

use crate::interactions::Sparse;
use crate::topk::{best, top_k};
use crate::{Recommender, Scored};

/// How item-kNN trains.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct KnnParams {
    /// Neighbours kept per item.
    pub neighbours: usize,
    /// Shrinkage λ: a similarity backed by n co-occurrences is multiplied by n / (n + λ), so
    /// two items that happen to share one customer do not look alike (Koren 2008).
    pub shrinkage: f32,
}

impl Default for KnnParams {
    fn default() -> Self {
        KnnParams {
            neighbours: 100,
            shrinkage: 10.0,
        }
    }
}

/// For each item, its most similar items.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ItemKnn {
    params: KnnParams,
    neighbours: Vec<Vec<Scored>>,
}

impl ItemKnn {
    /// Trains on a user × item matrix (which items a user touched; strengths are ignored for
    /// similarity and used when scoring). Spreads items over the cores.
    pub fn train(user_items: &Sparse, params: KnnParams) -> Self {
        let item_users = user_items.transpose();
        let items = user_items.cols();
        let counts: Vec<f32> = (0..items)
            .map(|i| item_users.row(i).0.len() as f32)
            .collect();
        let threads = std::thread::available_parallelism().map_or(1, |n| n.get());
        let chunk = items.div_ceil(threads.max(1)).max(1);
        let mut neighbours: Vec<Vec<Scored>> = vec![Vec::new(); items];
        std::thread::scope(|scope| {
            for (c, out) in neighbours.chunks_mut(chunk).enumerate() {
                let (item_users, counts) = (&item_users, &counts);
                scope.spawn(move || {
                    let mut co = vec![0f32; items];
                    let mut touched: Vec<u32> = Vec::new();
                    for (k, slot) in out.iter_mut().enumerate() {
                        let i = c * chunk + k;
                        for &u in item_users.row(i).0 {
                            for &j in user_items.row(u as usize).0 {
                                if co[j as usize] == 0.0 {
                                    touched.push(j);
                                }
                                co[j as usize] += 1.0;
                            }
                        }
                        let mut sims: Vec<Scored> = touched
                            .iter()
                            .filter(|&&j| j as usize != i)
                            .map(|&j| {
                                let n = co[j as usize];
                                let cos = n / (counts[i] * counts[j as usize]).sqrt();
                                (j, cos * n / (n + params.shrinkage))
                            })
                            .collect();
                        *slot = best(&mut sims, params.neighbours);
                        for &j in &touched {
                            co[j as usize] = 0.0;
                        }
                        touched.clear();
                    }
                });
            }
        });
        ItemKnn { params, neighbours }
    }

    /// An item's neighbours, most similar first.
    pub fn neighbours(&self, item: u32) -> &[Scored] {
        self.neighbours
            .get(item as usize)
            .map_or(&[], Vec::as_slice)
    }

    /// How many items the model knows.
    pub fn items(&self) -> usize {
        self.neighbours.len()
    }

    /// The seen item that contributed most to `item`'s score: the "because you bought …".
    pub fn because(&self, seen: &[(u32, f32)], item: u32) -> Option<u32> {
        seen.iter()
            .filter_map(|&(s, w)| {
                self.neighbours(s)
                    .iter()
                    .find(|(j, _)| *j == item)
                    .map(|(_, sim)| (s, sim * w))
            })
            .max_by(|a, b| a.1.total_cmp(&b.1).then(b.0.cmp(&a.0)))
            .map(|(s, _)| s)
    }
}

impl Recommender for ItemKnn {
    fn recommend(&self, seen: &[(u32, f32)], k: usize) -> Vec<Scored> {
        if seen.len() * self.params.neighbours > self.items() {
            let mut scores = vec![0f32; self.items()];
            for &(s, w) in seen {
                for &(j, sim) in self.neighbours(s) {
                    scores[j as usize] += sim * w;
                }
            }
            let mut seen_items: Vec<u32> = seen.iter().map(|s| s.0).collect();
            seen_items.sort_unstable();
            let mut out = top_k(&scores, k, |i| seen_items.binary_search(&i).is_ok());
            out.retain(|s| s.1 > 0.0);
            return out;
        }
        let mut scores: std::collections::HashMap<u32, f32> = std::collections::HashMap::new();
        for &(s, w) in seen {
            for &(j, sim) in self.neighbours(s) {
                *scores.entry(j).or_default() += sim * w;
            }
        }
        let mut all: Vec<Scored> = scores
            .into_iter()
            .filter(|(j, v)| *v > 0.0 && !seen.iter().any(|(s, _)| s == j))
            .collect();
        best(&mut all, k)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Users 0–2 buy items 0 and 1 together; user 3 buys 2 and 3 together; item 4 once.
    fn baskets() -> Sparse {
        Sparse::from_triples(
            5,
            5,
            [
                (0, 0, 1.0),
                (0, 1, 1.0),
                (1, 0, 1.0),
                (1, 1, 1.0),
                (2, 0, 1.0),
                (2, 1, 1.0),
                (2, 4, 1.0),
                (3, 2, 1.0),
                (3, 3, 1.0),
            ],
        )
    }

    #[test]
    fn co_bought_items_are_neighbours_and_shrinkage_discounts_thin_evidence() {
        let knn = ItemKnn::train(
            &baskets(),
            KnnParams {
                neighbours: 10,
                shrinkage: 1.0,
            },
        );
        // 0 and 1: 3 co-occurrences, cosine 1, shrunk by 3/4.
        assert_eq!(knn.neighbours(0)[0], (1, 0.75));
        // 2 and 3: cosine 1 too, but backed by one customer: 1/2.
        assert_eq!(knn.neighbours(2), &[(3, 0.5)]);
        assert_eq!(knn.recommend(&[(0, 1.0)], 1), vec![(1, 0.75)]);
        assert_eq!(knn.because(&[(4, 1.0), (0, 2.0)], 1), Some(0));
        // Nothing in common with anything: no suggestion rather than noise.
        assert!(knn.recommend(&[(3, 1.0)], 3).iter().all(|s| s.0 == 2));
    }

    #[test]
    fn dense_and_sparse_scoring_agree() {
        let knn = ItemKnn::train(
            &baskets(),
            KnnParams {
                neighbours: 1,
                shrinkage: 0.0,
            },
        );
        // 5 seen × 1 neighbour = 5 = items: the sparse path; 6 forces the dense one.
        let seen = [(0, 1.0), (2, 1.0), (4, 0.5)];
        let sparse = knn.recommend(&seen, 3);
        let dense = knn.recommend(
            &[(0, 1.0), (2, 1.0), (4, 0.5), (4, 0.0), (4, 0.0), (4, 0.0)],
            3,
        );
        assert_eq!(sparse, dense);
    }
}
