//! Offline evaluation: hold out what customers did last, recommend from the rest, and count
//! how much of the held-out part the recommendations found.

use serde::{Deserialize, Serialize};

use crate::interactions::{Interaction, Sparse};
use crate::Scored;

/// How interactions are divided into training and test.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub enum Split {
    /// Each user's latest interaction is the test; users with one interaction only train.
    LeaveLastOut,
    /// Everything after the time by which `1 − test_fraction` of interactions had happened
    /// is the test, for users who also have something before it.
    Time {
        /// Share of interactions (by time) held out.
        test_fraction: f64,
    },
}

/// A division of interactions: what to train on, and for each user the items to find.
#[derive(Debug, Clone, PartialEq)]
pub struct Divided {
    /// Training interactions.
    pub train: Vec<Interaction>,
    /// Held-out items per user (distinct, not in the user's training items), by user index.
    pub test: Vec<Vec<u32>>,
}

/// Divides `interactions` of `users` users as `how` says. Order within equal timestamps
/// follows the input order, so the division is reproducible.
pub fn split(interactions: &[Interaction], users: usize, how: Split) -> Divided {
    let mut order: Vec<usize> = (0..interactions.len()).collect();
    order.sort_by_key(|&i| (interactions[i].at, i));
    let mut is_test = vec![false; interactions.len()];
    match how {
        Split::LeaveLastOut => {
            let mut last: Vec<Option<usize>> = vec![None; users];
            let mut count = vec![0usize; users];
            for &i in &order {
                let u = interactions[i].user as usize;
                if u < users {
                    last[u] = Some(i);
                    count[u] += 1;
                }
            }
            for (u, l) in last.iter().enumerate() {
                if let (Some(i), true) = (l, count[u] > 1) {
                    is_test[*i] = true;
                }
            }
        }
        Split::Time { test_fraction } => {
            let keep = ((1.0 - test_fraction.clamp(0.0, 1.0)) * order.len() as f64) as usize;
            for &i in order.iter().skip(keep) {
                is_test[i] = true;
            }
        }
    }
    let train: Vec<Interaction> = interactions
        .iter()
        .zip(&is_test)
        .filter(|(_, t)| !**t)
        .map(|(i, _)| *i)
        .collect();
    let mut trained: Vec<Vec<u32>> = vec![Vec::new(); users];
    for i in &train {
        if let Some(t) = trained.get_mut(i.user as usize) {
            t.push(i.item);
        }
    }
    trained.iter_mut().for_each(|t| {
        t.sort_unstable();
        t.dedup();
    });
    let mut test: Vec<Vec<u32>> = vec![Vec::new(); users];
    for (i, _) in interactions.iter().zip(&is_test).filter(|(_, t)| **t) {
        let u = i.user as usize;
        if u < users && !trained[u].is_empty() && trained[u].binary_search(&i.item).is_err() {
            test[u].push(i.item);
        }
    }
    test.iter_mut().for_each(|t| {
        t.sort_unstable();
        t.dedup();
    });
    Divided { train, test }
}

/// Ranking quality at a cut-off, averaged over users with something to find.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Metrics {
    /// The cut-off.
    pub k: usize,
    /// Users evaluated.
    pub users: usize,
    /// Hits / k.
    pub precision: f64,
    /// Hits / held-out items.
    pub recall: f64,
    /// Discounted cumulative gain over the ideal one (binary relevance).
    pub ndcg: f64,
    /// Share of the catalogue that appeared in anyone's list.
    pub coverage: f64,
}

/// Scores the lists `recommend(user, training items, k)` gives against `test`.
pub fn evaluate(
    recommend: impl Fn(usize, &[(u32, f32)], usize) -> Vec<Scored>,
    train: &Sparse,
    test: &[Vec<u32>],
    k: usize,
) -> Metrics {
    let mut shown = vec![false; train.cols()];
    let (mut p, mut r, mut n, mut users) = (0.0, 0.0, 0.0, 0usize);
    for (u, truth) in test.iter().enumerate() {
        if truth.is_empty() {
            continue;
        }
        let seen = train.row_pairs(u);
        let list = recommend(u, &seen, k);
        let mut hits = 0usize;
        let mut dcg = 0.0;
        for (rank, (item, _)) in list.iter().take(k).enumerate() {
            if let Some(s) = shown.get_mut(*item as usize) {
                *s = true;
            }
            if truth.binary_search(item).is_ok() {
                hits += 1;
                dcg += 1.0 / ((rank + 2) as f64).log2();
            }
        }
        let ideal: f64 = (0..truth.len().min(k))
            .map(|rank| 1.0 / ((rank + 2) as f64).log2())
            .sum();
        p += hits as f64 / k as f64;
        r += hits as f64 / truth.len() as f64;
        n += dcg / ideal;
        users += 1;
    }
    let per = |x: f64| if users == 0 { 0.0 } else { x / users as f64 };
    Metrics {
        k,
        users,
        precision: per(p),
        recall: per(r),
        ndcg: per(n),
        coverage: shown.iter().filter(|s| **s).count() as f64 / train.cols().max(1) as f64,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn i(user: u32, item: u32, at: i64) -> Interaction {
        Interaction {
            user,
            item,
            weight: 1.0,
            at,
        }
    }

    #[test]
    fn leave_last_out_holds_out_each_users_latest() {
        let all = [
            i(0, 1, 5),
            i(0, 2, 9),
            i(0, 3, 7),
            i(1, 4, 1),
            i(2, 1, 3),
            i(2, 1, 4),
        ];
        let d = split(&all, 3, Split::LeaveLastOut);
        assert_eq!(d.test, vec![vec![2], vec![], vec![]]); // user 2's last is already trained
        assert_eq!(d.train.len(), 4); // user 2's repeat is held out, and found nowhere to test
    }

    #[test]
    fn time_split_holds_out_the_latest_share() {
        let all = [i(0, 1, 1), i(0, 2, 2), i(1, 3, 3), i(0, 4, 4), i(2, 5, 5)];
        let d = split(&all, 3, Split::Time { test_fraction: 0.4 });
        assert_eq!(d.test, vec![vec![4], vec![], vec![]]); // user 2 has no history before
        assert_eq!(d.train.len(), 3);
    }

    #[test]
    fn metrics_by_hand() {
        let train = Sparse::from_triples(2, 4, [(0, 0, 1.0), (1, 0, 1.0)]);
        let test = vec![vec![1, 2], vec![3]];
        // user 0 gets [1, 3]: one hit at rank 1; user 1 gets [2, 3]: one hit at rank 2.
        let m = evaluate(
            |u, _, _| {
                if u == 0 {
                    vec![(1, 1.0), (3, 0.5)]
                } else {
                    vec![(2, 1.0), (3, 0.5)]
                }
            },
            &train,
            &test,
            2,
        );
        assert_eq!(m.users, 2);
        assert!((m.precision - 0.5).abs() < 1e-12);
        assert!((m.recall - (0.5 + 1.0) / 2.0).abs() < 1e-12);
        let ideal0 = 1.0 + 1.0 / 3f64.log2();
        let expected = (1.0 / ideal0 + 1.0 / 3f64.log2()) / 2.0;
        assert!((m.ndcg - expected).abs() < 1e-12);
        assert!((m.coverage - 0.75).abs() < 1e-12);
    }
}
