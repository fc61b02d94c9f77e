//! K-means over behaviour features, with k chosen by the silhouette: proposes segments the
//! data suggests, for a person to name and keep (or not).

use serde::{Deserialize, Serialize};

use crate::rng::SplitMix64;

/// A clustering of standardised feature rows.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Clustering {
    /// Clusters.
    pub k: usize,
    /// Centroids in the original feature units, one row per cluster.
    pub centroids: Vec<Vec<f64>>,
    /// Cluster of each row.
    pub assignment: Vec<usize>,
    /// Rows per cluster.
    pub sizes: Vec<usize>,
    /// Mean silhouette (−1 … 1; higher is better separated).
    pub silhouette: f64,
}

/// Most rows the silhouette is computed over (it is quadratic); a seeded sample beyond.
const SILHOUETTE_SAMPLE: usize = 2_000;

/// Tries every k in `ks` and keeps the clustering with the best silhouette. Features are
/// standardised first so no unit dominates. `None` with fewer rows than 2 × the smallest k.
pub fn best_k(
    rows: &[Vec<f64>],
    ks: std::ops::RangeInclusive<usize>,
    seed: u64,
) -> Option<Clustering> {
    let (z, mean, sd) = standardise(rows);
    ks.filter(|&k| k >= 2 && rows.len() >= 2 * k)
        .map(|k| {
            let (centroids, assignment) = lloyd(&z, k, seed);
            let silhouette = silhouette(&z, &assignment, k, seed);
            let mut sizes = vec![0; k];
            assignment.iter().for_each(|&c| sizes[c] += 1);
            let centroids = centroids
                .into_iter()
                .map(|c| {
                    c.iter()
                        .enumerate()
                        .map(|(j, v)| v * sd[j] + mean[j])
                        .collect()
                })
                .collect();
            Clustering {
                k,
                centroids,
                assignment,
                sizes,
                silhouette,
            }
        })
        .max_by(|a, b| a.silhouette.total_cmp(&b.silhouette).then(b.k.cmp(&a.k)))
}

fn standardise(rows: &[Vec<f64>]) -> (Vec<Vec<f64>>, Vec<f64>, Vec<f64>) {
    let d = rows.first().map_or(0, Vec::len);
    let n = rows.len().max(1) as f64;
    let mean: Vec<f64> = (0..d)
        .map(|j| rows.iter().map(|r| r[j]).sum::<f64>() / n)
        .collect();
    let sd: Vec<f64> = (0..d)
        .map(|j| {
            let v = rows.iter().map(|r| (r[j] - mean[j]).powi(2)).sum::<f64>() / n;
            if v > 0.0 {
                v.sqrt()
            } else {
                1.0
            }
        })
        .collect();
    let z = rows
        .iter()
        .map(|r| {
            r.iter()
                .enumerate()
                .map(|(j, v)| (v - mean[j]) / sd[j])
                .collect()
        })
        .collect();
    (z, mean, sd)
}

fn dist2(a: &[f64], b: &[f64]) -> f64 {
    a.iter().zip(b).map(|(x, y)| (x - y).powi(2)).sum()
}

/// k-means++ seeding, then Lloyd's iterations until no row moves (at most 100).
fn lloyd(z: &[Vec<f64>], k: usize, seed: u64) -> (Vec<Vec<f64>>, Vec<usize>) {
    let mut rng = SplitMix64::new(seed);
    let mut centroids = vec![z[rng.below(z.len())].clone()];
    let mut d2: Vec<f64> = z.iter().map(|r| dist2(r, &centroids[0])).collect();
    while centroids.len() < k {
        let total: f64 = d2.iter().sum();
        let mut pick = rng.next_f64() * total;
        let mut chosen = z.len() - 1;
        for (i, d) in d2.iter().enumerate() {
            if pick < *d {
                chosen = i;
                break;
            }
            pick -= d;
        }
        centroids.push(z[chosen].clone());
        for (i, r) in z.iter().enumerate() {
            d2[i] = d2[i].min(dist2(r, &centroids[centroids.len() - 1]));
        }
    }
    let mut assignment = vec![usize::MAX; z.len()];
    for _ in 0..100 {
        let mut moved = false;
        for (i, r) in z.iter().enumerate() {
            let c = nearest(r, &centroids);
            if assignment[i] != c {
                assignment[i] = c;
                moved = true;
            }
        }
        if !moved {
            break;
        }
        let d = z[0].len();
        let mut sums = vec![vec![0.0; d]; k];
        let mut counts = vec![0usize; k];
        for (r, &c) in z.iter().zip(&assignment) {
            counts[c] += 1;
            sums[c].iter_mut().zip(r).for_each(|(s, v)| *s += v);
        }
        for c in 0..k {
            if counts[c] > 0 {
                centroids[c] = sums[c].iter().map(|s| s / counts[c] as f64).collect();
            }
        }
    }
    (centroids, assignment)
}

fn nearest(r: &[f64], centroids: &[Vec<f64>]) -> usize {
    centroids
        .iter()
        .enumerate()
        .map(|(c, m)| (c, dist2(r, m)))
        .min_by(|a, b| a.1.total_cmp(&b.1))
        .map_or(0, |(c, _)| c)
}

/// Mean silhouette over (a seeded sample of) rows.
fn silhouette(z: &[Vec<f64>], assignment: &[usize], k: usize, seed: u64) -> f64 {
    let mut idx: Vec<usize> = (0..z.len()).collect();
    if idx.len() > SILHOUETTE_SAMPLE {
        let mut rng = SplitMix64::new(seed ^ 0x5111);
        for i in 0..SILHOUETTE_SAMPLE {
            let j = i + rng.below(idx.len() - i);
            idx.swap(i, j);
        }
        idx.truncate(SILHOUETTE_SAMPLE);
    }
    let mut total = 0.0;
    for &i in &idx {
        let mut sum = vec![0.0; k];
        let mut count = vec![0usize; k];
        for &j in &idx {
            if i != j {
                sum[assignment[j]] += dist2(&z[i], &z[j]).sqrt();
                count[assignment[j]] += 1;
            }
        }
        let own = assignment[i];
        if count[own] == 0 {
            continue; // a singleton's silhouette is 0
        }
        let a = sum[own] / count[own] as f64;
        let b = (0..k)
            .filter(|&c| c != own && count[c] > 0)
            .map(|c| sum[c] / count[c] as f64)
            .fold(f64::INFINITY, f64::min);
        if b.is_finite() {
            total += (b - a) / a.max(b);
        }
    }
    total / idx.len().max(1) as f64
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_three_well_separated_groups_and_is_reproducible() {
        let mut rows = Vec::new();
        let mut rng = SplitMix64::new(1);
        for (cx, cy) in [(0.0, 0.0), (10.0, 0.0), (0.0, 10.0)] {
            for _ in 0..40 {
                rows.push(vec![cx + rng.next_f64(), cy + rng.next_f64()]);
            }
        }
        let c = best_k(&rows, 2..=6, 9).expect("clusters");
        assert_eq!(c.k, 3);
        assert_eq!(
            c.sizes
                .iter()
                .copied()
                .collect::<std::collections::BTreeSet<_>>()
                .len(),
            1
        );
        assert!(c.silhouette > 0.8, "{}", c.silhouette);
        // centroids are in original units
        assert!(c
            .centroids
            .iter()
            .any(|m| (m[0] - 10.5).abs() < 0.5 && m[1] < 1.5));
        assert_eq!(best_k(&rows, 2..=6, 9), Some(c));
        assert_eq!(best_k(&rows[..3], 2..=6, 9), None);
    }
}
