//! Implicit-feedback alternating least squares (Hu, Koren and Volinsky 2008) with the
//! conjugate-gradient solver of Takács, Pilászy and Tikk (2011), as the `implicit` package
//! runs it: a few CG steps per row, warm-started from the previous iteration.
//!
//! Confidence is `alpha × strength`; an observed pair has preference 1, every other pair
//! preference 0 with confidence 1. Minimises
//! Σ c_ui (p_ui − x_u·y_i)² + λ (Σ‖x_u‖² + Σ‖y_i‖²).

use std::time::{Duration, Instant};

use pulp::{Arch, Simd, WithSimd};
use serde::{Deserialize, Serialize};

use crate::interactions::Sparse;
use crate::kernels::{self, gram, RowSystem};
use crate::rng::SplitMix64;
use crate::topk::{top_k, TopK};
use crate::{Recommender, Scored};

/// How ALS trains.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct AlsParams {
    /// Latent factors per user and item.
    pub factors: usize,
    /// λ, added to the diagonal of each least-squares system.
    pub regularization: f32,
    /// Confidence per unit of interaction strength.
    pub alpha: f32,
    /// Alternations (users then items).
    pub iterations: usize,
    /// Conjugate-gradient steps per row and alternation.
    pub cg_steps: usize,
    /// Seed of the initial factors: the same data and seed give the same model.
    pub seed: u64,
}

impl Default for AlsParams {
    fn default() -> Self {
        AlsParams {
            factors: 64,
            regularization: 0.05,
            alpha: 10.0,
            iterations: 15,
            cg_steps: 3,
            seed: 42,
        }
    }
}

/// A trained factorisation.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Als {
    params: AlsParams,
    items: usize,
    /// Item factors, row-major (items × factors).
    item_factors: Vec<f32>,
    /// User factors of the training users, row-major (users × factors).
    #[serde(skip)]
    user_factors: Vec<f32>,
    /// YᵀY + λI of the item factors, made on first fold-in (it costs items × factors²).
    #[serde(skip)]
    gram: std::sync::OnceLock<Vec<f32>>,
    /// (YᵀY + λI)⁻¹ in f64, made on first fold-in of a short history (see [`woodbury`]);
    /// `None` if the Gram matrix could not be factorised.
    #[serde(skip)]
    gram_inverse: std::sync::OnceLock<Option<Vec<f64>>>,
    /// The item factors again, largest norm first, made on first use (see [`ByNorm`]).
    #[serde(skip)]
    by_norm: std::sync::OnceLock<ByNorm>,
}

/// The items in order of decreasing factor norm, with their factors in that order, so that
/// scoring can stop early and stay exact: by Cauchy–Schwarz no item scores more than
/// ‖x‖‖y‖, so once the k-th best score found exceeds that bound for the next item in this
/// order, it exceeds every score left. Popular items have the largest factors and usually
/// the best scores, so most of the catalogue is never read.
#[derive(Debug, Clone, PartialEq)]
struct ByNorm {
    ids: Vec<u32>,
    /// ‖y‖ of each, in f64, widened by the most an f32 dot product of this length can
    /// round up (so a computed score never exceeds its bound).
    bounds: Vec<f64>,
    /// Row-major, in `ids` order.
    factors: Vec<f32>,
}

impl ByNorm {
    fn new(item_factors: &[f32], f: usize) -> Self {
        // Each of the f products and sums rounds by at most ε/2, relative to Σ|x_i y_i| ≤ ‖x‖‖y‖.
        let widen = 1.0 + 4.0 * f as f64 * f64::from(f32::EPSILON);
        let norm = |row: &[f32]| {
            let n = row
                .iter()
                .map(|&v| f64::from(v) * f64::from(v))
                .sum::<f64>()
                .sqrt();
            // A factor that is not finite is never skipped (its score is checked, not bounded).
            if n.is_finite() {
                n * widen
            } else {
                f64::INFINITY
            }
        };
        let mut order: Vec<(u32, f64)> = item_factors
            .chunks_exact(f)
            .enumerate()
            .map(|(i, row)| (i as u32, norm(row)))
            .collect();
        order.sort_by(|a, b| b.1.total_cmp(&a.1).then(a.0.cmp(&b.0)));
        let mut factors = Vec::with_capacity(item_factors.len());
        for &(i, _) in &order {
            let i = i as usize;
            factors.extend_from_slice(&item_factors[i * f..(i + 1) * f]);
        }
        ByNorm {
            ids: order.iter().map(|o| o.0).collect(),
            bounds: order.iter().map(|o| o.1).collect(),
            factors,
        }
    }
}

impl Als {
    /// Trains on a user × item strength matrix; `on_iteration` hears each alternation's
    /// number and duration. Rows are spread over the cores.
    pub fn train(
        user_items: &Sparse,
        params: AlsParams,
        mut on_iteration: impl FnMut(usize, Duration),
    ) -> Self {
        let f = params.factors.max(1);
        let cui = user_items.scaled(params.alpha);
        let ciu = cui.transpose();
        let mut rng = SplitMix64::new(params.seed);
        let mut init =
            |n: usize| -> Vec<f32> { (0..n * f).map(|_| (rng.next_f64() * 0.01) as f32).collect() };
        let mut users = init(cui.rows());
        let mut items = init(cui.cols());
        for it in 0..params.iterations {
            let start = Instant::now();
            least_squares_cg(&cui, &mut users, &items, f, &params);
            least_squares_cg(&ciu, &mut items, &users, f, &params);
            on_iteration(it, start.elapsed());
        }
        Als {
            params,
            items: cui.cols(),
            item_factors: items,
            user_factors: users,
            gram: std::sync::OnceLock::new(),
            gram_inverse: std::sync::OnceLock::new(),
            by_norm: std::sync::OnceLock::new(),
        }
    }

    /// The parameters it was trained with.
    pub fn params(&self) -> &AlsParams {
        &self.params
    }

    /// Item `i`'s factors.
    pub fn item(&self, i: u32) -> &[f32] {
        let f = self.params.factors;
        let i = i as usize;
        self.item_factors.get(i * f..(i + 1) * f).unwrap_or(&[])
    }

    /// Training user `u`'s factors (empty for a model read back from storage).
    pub fn user(&self, u: usize) -> &[f32] {
        let f = self.params.factors;
        self.user_factors.get(u * f..(u + 1) * f).unwrap_or(&[])
    }

    /// How many items the model knows.
    pub fn items(&self) -> usize {
        self.items
    }

    /// Factors for someone with history `seen`, solved exactly against the item factors, as
    /// training's CG converges to (so a customer's newest interactions count without
    /// retraining). A history much shorter than the factor count is folded in through the
    /// cached inverse of the Gram matrix (see [`woodbury`]); a longer one by a Cholesky
    /// factorisation of its own system.
    pub fn fold_in(&self, seen: &[(u32, f32)]) -> Vec<f32> {
        let f = self.params.factors;
        let used: Vec<(&[f32], f64)> = seen
            .iter()
            .filter(|&&(i, w)| (i as usize) < self.items && w > 0.0)
            .map(|&(i, w)| (self.item(i), f64::from(w * self.params.alpha)))
            .collect();
        if !used.is_empty() && used.len() * 4 <= f && used.iter().all(|&(_, c)| c > 1.0) {
            let inverse = self.gram_inverse.get_or_init(|| {
                let gram = self.gram_matrix(f);
                invert_spd(gram.iter().map(|&v| f64::from(v)).collect(), f)
            });
            if let Some(x) = inverse.as_deref().and_then(|inv| woodbury(inv, &used, f)) {
                return x;
            }
        }
        self.fold_in_direct(&used)
    }

    fn gram_matrix(&self, f: usize) -> &[f32] {
        self.gram
            .get_or_init(|| gram(&self.item_factors, f, self.params.regularization))
    }

    /// A = YᵀY + λI + Σ (c − 1) y yᵀ, b = Σ c y, solved by Cholesky in f64 for stability.
    fn fold_in_direct(&self, used: &[(&[f32], f64)]) -> Vec<f32> {
        let f = self.params.factors;
        let mut a: Vec<f64> = self.gram_matrix(f).iter().map(|&v| f64::from(v)).collect();
        let mut b = vec![0f64; f];
        for &(y, c) in used {
            for r in 0..f {
                let yr = f64::from(y[r]);
                b[r] += c * yr;
                let row = &mut a[r * f..r * f + f];
                for (s, ys) in row.iter_mut().zip(y).take(r + 1) {
                    *s += (c - 1.0) * yr * f64::from(*ys);
                }
            }
        }
        match cholesky_solve(&mut a, &mut b, f) {
            true => b.into_iter().map(|v| v as f32).collect(),
            false => vec![0.0; f],
        }
    }

    /// The best `k` items for factors `x`, leaving out `seen`: items are scored in order of
    /// decreasing factor norm until no item left can reach the k-th best (see [`ByNorm`]).
    pub fn recommend_for(&self, x: &[f32], seen: &[(u32, f32)], k: usize) -> Vec<Scored> {
        let f = self.params.factors;
        let mut s: Vec<u32> = seen.iter().map(|s| s.0).collect();
        s.sort_unstable();
        let skip = |i: u32| s.binary_search(&i).is_ok();
        if x.len() != f || f == 0 {
            return top_k(&vec![0f32; self.items], k, skip);
        }
        let order = self
            .by_norm
            .get_or_init(|| ByNorm::new(&self.item_factors, f));
        let nx = x
            .iter()
            .map(|&v| f64::from(v) * f64::from(v))
            .sum::<f64>()
            .sqrt();
        Arch::new()
            .dispatch(ScoreByNorm {
                order,
                x,
                nx,
                k,
                skip,
            })
            .into_sorted()
    }

    /// The seen item most like `item` (cosine of factors, times its strength).
    pub fn because(&self, seen: &[(u32, f32)], item: u32) -> Option<u32> {
        let y = self.item(item);
        let norm = |v: &[f32]| dot(v, v).sqrt().max(f32::MIN_POSITIVE);
        seen.iter()
            .filter(|(s, _)| (*s as usize) < self.items)
            .map(|&(s, w)| {
                let ys = self.item(s);
                (s, w * dot(y, ys) / (norm(y) * norm(ys)))
            })
            .max_by(|a, b| a.1.total_cmp(&b.1).then(b.0.cmp(&a.0)))
            .map(|(s, _)| s)
    }
}

impl Recommender for Als {
    fn recommend(&self, seen: &[(u32, f32)], k: usize) -> Vec<Scored> {
        let x = self.fold_in(seen);
        self.recommend_for(&x, seen, k)
    }
}

/// Scores items in [`ByNorm`] order until none left can reach the k-th best, with the
/// widest vectors this CPU has (see `kernels`).
struct ScoreByNorm<'a, F> {
    order: &'a ByNorm,
    x: &'a [f32],
    /// ‖x‖.
    nx: f64,
    k: usize,
    skip: F,
}

impl<F: Fn(u32) -> bool> WithSimd for ScoreByNorm<'_, F> {
    type Output = TopK;

    #[inline(always)]
    fn with_simd<S: Simd>(self, simd: S) -> TopK {
        let ScoreByNorm {
            order,
            x,
            nx,
            k,
            skip,
        } = self;
        let mut best = TopK::new(k);
        // The k-th best score so far (−∞ until k are kept): less cannot get in.
        let mut floor = f64::NEG_INFINITY;
        let rows = order.factors.chunks_exact(x.len());
        for ((&i, &bound), y) in order.ids.iter().zip(&order.bounds).zip(rows) {
            if nx * bound < floor {
                break;
            }
            let score = kernels::dot(simd, y, x);
            if f64::from(score) >= floor && best.offer(i, score, &skip) {
                floor = best.floor().map_or(f64::NEG_INFINITY, f64::from);
            }
        }
        best
    }
}

/// Solves every row of `x` against fixed `y`, a few CG steps each, over the cores.
fn least_squares_cg(c: &Sparse, x: &mut [f32], y: &[f32], f: usize, p: &AlsParams) {
    let g = gram(y, f, p.regularization);
    let system = RowSystem {
        y,
        g: &g,
        f,
        steps: p.cg_steps,
    };
    let rows = c.rows();
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get());
    let chunk = rows.div_ceil(threads.max(1)).max(1);
    std::thread::scope(|scope| {
        for (k, xs) in x.chunks_mut(chunk * f).enumerate() {
            let system = &system;
            scope.spawn(move || {
                let observed = |j: usize, row: &mut Vec<(u32, f32)>| {
                    let (cols, vals) = c.row(k * chunk + j);
                    row.extend(
                        cols.iter()
                            .zip(vals)
                            .filter(|(_, &v)| v > 0.0)
                            .map(|(&i, &v)| (i, v)),
                    );
                };
                system.solve_rows(observed, xs);
            });
        }
    });
}

/// Solves A x = b in place for symmetric positive definite A (lower triangle filled), by
/// Cholesky; `b` becomes x. False if A is not positive definite.
fn cholesky_solve(a: &mut [f64], b: &mut [f64], n: usize) -> bool {
    if !cholesky(a, n) {
        return false;
    }
    solve_factored(a, b, n);
    true
}

/// Factorises a symmetric positive definite `a` (its lower triangle read) in place into L
/// with A = LLᵀ; false if it is not positive definite.
fn cholesky(a: &mut [f64], n: usize) -> bool {
    for j in 0..n {
        let mut d = a[j * n + j];
        for k in 0..j {
            d -= a[j * n + k] * a[j * n + k];
        }
        if d <= 0.0 || !d.is_finite() {
            return false;
        }
        let d = d.sqrt();
        a[j * n + j] = d;
        for i in j + 1..n {
            let mut v = a[i * n + j];
            for k in 0..j {
                v -= a[i * n + k] * a[j * n + k];
            }
            a[i * n + j] = v / d;
        }
    }
    true
}

/// Solves LLᵀ x = b in place, `l` from [`cholesky`].
fn solve_factored(l: &[f64], b: &mut [f64], n: usize) {
    for i in 0..n {
        let mut v = b[i];
        for k in 0..i {
            v -= l[i * n + k] * b[k];
        }
        b[i] = v / l[i * n + i];
    }
    for i in (0..n).rev() {
        let mut v = b[i];
        for k in i + 1..n {
            v -= l[k * n + i] * b[k];
        }
        b[i] = v / l[i * n + i];
    }
}

/// The inverse of a symmetric positive definite `a` (n × n, row-major), or `None`.
fn invert_spd(mut a: Vec<f64>, n: usize) -> Option<Vec<f64>> {
    if !cholesky(&mut a, n) {
        return None;
    }
    let mut inv = vec![0f64; n * n];
    let mut col = vec![0f64; n];
    for j in 0..n {
        col.fill(0.0);
        col[j] = 1.0;
        solve_factored(&a, &mut col, n);
        for (i, v) in col.iter().enumerate() {
            inv[i * n + j] = *v;
        }
    }
    Some(inv)
}

/// [`dot`] in f64 for the fold-in's solves: four lanes, so the compiler vectorises it.
fn dot64(a: &[f64], b: &[f64]) -> f64 {
    let mut acc = [0f64; 4];
    let (ca, cb) = (a.chunks_exact(4), b.chunks_exact(4));
    let (ra, rb) = (ca.remainder(), cb.remainder());
    for (x, y) in ca.zip(cb) {
        for k in 0..4 {
            acc[k] += x[k] * y[k];
        }
    }
    acc.iter().sum::<f64>() + ra.iter().zip(rb).map(|(x, y)| x * y).sum::<f64>()
}

/// Fold-in by the Woodbury identity: with G = YᵀY + λI, U the k seen items' factors and
/// C = diag(c − 1), (G + UCUᵀ)⁻¹ b = z − W (C⁻¹ + UᵀW)⁻¹ Uᵀz, where z = G⁻¹b and W = G⁻¹U.
/// With G⁻¹ cached that is k + 1 products with an f × f matrix and a k × k solve, instead of
/// building and factorising an f × f system per customer. Needs every c > 1 (so the k × k
/// system is positive definite); `None` if it is not.
fn woodbury(inverse: &[f64], used: &[(&[f32], f64)], f: usize) -> Option<Vec<f32>> {
    let k = used.len();
    let ys: Vec<Vec<f64>> = used
        .iter()
        .map(|(y, _)| y.iter().map(|&v| f64::from(v)).collect())
        .collect();
    let mut b = vec![0f64; f];
    for (y, &(_, c)) in ys.iter().zip(used) {
        for (br, yr) in b.iter_mut().zip(y) {
            *br += c * yr;
        }
    }
    let times_inverse =
        |v: &[f64]| -> Vec<f64> { inverse.chunks_exact(f).map(|row| dot64(row, v)).collect() };
    let z = times_inverse(&b);
    let w: Vec<Vec<f64>> = ys.iter().map(|y| times_inverse(y)).collect();
    let mut s = vec![0f64; k * k];
    for i in 0..k {
        for j in 0..k {
            s[i * k + j] = dot64(&ys[i], &w[j]);
        }
        s[i * k + i] += 1.0 / (used[i].1 - 1.0);
    }
    let mut t: Vec<f64> = ys.iter().map(|y| dot64(y, &z)).collect();
    if !cholesky_solve(&mut s, &mut t, k) {
        return None;
    }
    let x: Vec<f32> = (0..f)
        .map(|r| {
            let v = z[r] - w.iter().zip(&t).map(|(wj, tj)| wj[r] * tj).sum::<f64>();
            v as f32
        })
        .collect();
    x.iter().all(|v| v.is_finite()).then_some(x)
}

/// Dot product with eight lanes, so the compiler vectorises it.
pub(crate) fn dot(a: &[f32], b: &[f32]) -> f32 {
    let mut acc = [0f32; 8];
    let (ca, cb) = (a.chunks_exact(8), b.chunks_exact(8));
    let (ra, rb) = (ca.remainder(), cb.remainder());
    for (x, y) in ca.zip(cb) {
        for k in 0..8 {
            acc[k] += x[k] * y[k];
        }
    }
    let mut sum: f32 = acc.iter().sum();
    for (x, y) in ra.iter().zip(rb) {
        sum += x * y;
    }
    sum
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Two taste groups: users 0–9 like items 0–4, users 10–19 like items 5–9; each user
    /// misses one item of their group.
    fn two_groups() -> Sparse {
        let mut t = Vec::new();
        for u in 0..20u32 {
            let base = if u < 10 { 0 } else { 5 };
            for i in 0..5u32 {
                if i != u % 5 {
                    t.push((u, base + i, 1.0));
                }
            }
        }
        Sparse::from_triples(20, 10, t)
    }

    fn params() -> AlsParams {
        AlsParams {
            factors: 4,
            regularization: 0.1,
            alpha: 20.0,
            iterations: 10,
            cg_steps: 3,
            seed: 7,
        }
    }

    #[test]
    fn recommends_the_missing_item_of_the_users_group() {
        let m = two_groups();
        let als = Als::train(&m, params(), |_, _| {});
        for u in [0usize, 3, 12, 19] {
            let seen = m.row_pairs(u);
            let best = als.recommend(&seen, 1)[0].0;
            let group = if u < 10 { 0 } else { 5 };
            assert_eq!(best, group + (u as u32 % 5), "user {u}");
            // the trained factors agree with the fold-in
            let trained = als.recommend_for(als.user(u), &seen, 1)[0].0;
            assert_eq!(trained, best, "user {u}");
        }
        assert!(als.because(&[(0, 1.0), (7, 1.0)], 1) == Some(0));
    }

    #[test]
    fn the_same_seed_gives_the_same_model_and_iterations_are_reported() {
        let m = two_groups();
        let mut heard = Vec::new();
        let a = Als::train(&m, params(), |i, _| heard.push(i));
        let b = Als::train(&m, params(), |_, _| {});
        assert_eq!(a, b);
        assert_eq!(heard, (0..10).collect::<Vec<_>>());
        let c = Als::train(
            &m,
            AlsParams {
                seed: 8,
                ..params()
            },
            |_, _| {},
        );
        assert_ne!(a.item(0), c.item(0));
    }

    /// A short history folded in through the cached inverse (Woodbury) gives the factors
    /// the per-customer factorisation gives, for any factor count, history and weights.
    #[test]
    fn woodbury_fold_in_equals_the_factorisation() {
        let mut rng = SplitMix64::new(11);
        for f in [4, 8, 13, 32, 64] {
            let items = 40;
            let als = Als {
                params: AlsParams {
                    factors: f,
                    ..AlsParams::default()
                },
                items,
                item_factors: (0..items * f)
                    .map(|_| (rng.next_f64() - 0.3) as f32)
                    .collect(),
                user_factors: Vec::new(),
                gram: std::sync::OnceLock::new(),
                gram_inverse: std::sync::OnceLock::new(),
                by_norm: std::sync::OnceLock::new(),
            };
            for k in 1..=f / 4 {
                let seen: Vec<(u32, f32)> = (0..k)
                    .map(|j| ((j * 7 % items) as u32, 0.2 + rng.next_f64() as f32 * 3.0))
                    .collect();
                let used: Vec<(&[f32], f64)> = seen
                    .iter()
                    .map(|&(i, w)| (als.item(i), f64::from(w * als.params.alpha)))
                    .collect();
                let inverse = invert_spd(
                    als.gram_matrix(f).iter().map(|&v| f64::from(v)).collect(),
                    f,
                )
                .expect("a positive definite Gram matrix");
                let fast = woodbury(&inverse, &used, f).expect("every c > 1");
                let direct = als.fold_in_direct(&used);
                assert_eq!(als.fold_in(&seen), fast, "fold_in took the other path");
                for (a, b) in fast.iter().zip(&direct) {
                    assert!(
                        (a - b).abs() <= 1e-4 * (1.0 + b.abs()),
                        "f = {f}, k = {k}: {fast:?} against {direct:?}"
                    );
                }
            }
        }
    }

    proptest::proptest! {
        /// Scoring in norm order and stopping at the Cauchy–Schwarz bound returns exactly
        /// what scoring every item returns: the same items, scores and order, ties included.
        #[test]
        fn stopping_early_returns_what_scoring_everything_returns(
            f in 1usize..20,
            items in 1usize..60,
            seed in proptest::prelude::any::<u64>(),
            k in 1usize..70,
            seen_every in 2u32..9,
            copies in 0usize..4,
        ) {
            let mut rng = SplitMix64::new(seed);
            // A popularity-like spread of norms, signs of both kinds, and copied rows for ties.
            let mut item_factors: Vec<f32> = (0..items * f)
                .map(|j| ((rng.next_f64() - 0.4) * (1.0 + (j / f) as f64 * 0.3)) as f32)
                .collect();
            for c in 0..copies.min(items - 1) {
                let (from, to) = (c * f, (items - 1 - c) * f);
                let row: Vec<f32> = item_factors[from..from + f].to_vec();
                item_factors[to..to + f].copy_from_slice(&row);
            }
            let als = Als {
                params: AlsParams { factors: f, ..AlsParams::default() },
                items,
                item_factors,
                user_factors: Vec::new(),
                gram: std::sync::OnceLock::new(),
                gram_inverse: std::sync::OnceLock::new(),
                by_norm: std::sync::OnceLock::new(),
            };
            let x: Vec<f32> = (0..f).map(|_| (rng.next_f64() - 0.3) as f32).collect();
            let seen: Vec<(u32, f32)> = (0..items as u32)
                .filter(|i| i % seen_every == 0)
                .map(|i| (i, 1.0))
                .collect();
            let scores: Vec<f32> = (0..items as u32)
                .map(|i| kernels::dot_once(als.item(i), &x))
                .collect();
            let everything = top_k(&scores, k, |i| i % seen_every == 0);
            proptest::prop_assert_eq!(als.recommend_for(&x, &seen, k), everything);
        }
    }

    #[test]
    fn fold_in_equals_many_cg_steps() {
        let m = two_groups();
        let als = Als::train(
            &m,
            AlsParams {
                factors: 12,
                ..params()
            },
            |_, _| {},
        );
        let seen = m.row_pairs(3);
        let exact = als.fold_in(&seen);
        let g = gram(&als.item_factors, 12, als.params.regularization);
        let row: Vec<(u32, f32)> = seen
            .iter()
            .map(|&(i, w)| (i, w * als.params.alpha))
            .collect();
        let mut cg = vec![0f32; 12];
        let system = RowSystem {
            y: &als.item_factors,
            g: &g,
            f: 12,
            steps: 200,
        };
        system.solve_rows(|_, r| r.extend_from_slice(&row), &mut cg);
        for (a, b) in exact.iter().zip(&cg) {
            assert!(
                (a - b).abs() < 1e-3 * (1.0 + b.abs()),
                "{exact:?} vs {cg:?}"
            );
        }
    }

    #[test]
    fn cg_with_enough_steps_solves_the_normal_equations() {
        // One row, f steps from zero: the exact least-squares solution.
        let y: Vec<f32> = vec![1.0, 0.0, 0.5, 1.0, 0.0, 2.0];
        let f = 2;
        let g = gram(&y, f, 0.1);
        let row = [(0u32, 3.0f32), (2, 2.0)];
        let mut x = vec![0.0; f];
        let system = RowSystem {
            y: &y,
            g: &g,
            f,
            steps: f,
        };
        system.solve_rows(|_, r| r.extend_from_slice(&row), &mut x);
        // A = G + Σ (c−1) y yᵀ, b = Σ c y.
        let mut a = g.clone();
        let mut b = [0f32; 2];
        for &(i, c) in &row {
            let yi = &y[i as usize * f..i as usize * f + f];
            for r in 0..f {
                b[r] += c * yi[r];
                for s in 0..f {
                    a[r * f + s] += (c - 1.0) * yi[r] * yi[s];
                }
            }
        }
        let ax = [a[0] * x[0] + a[1] * x[1], a[2] * x[0] + a[3] * x[1]];
        assert!(
            (ax[0] - b[0]).abs() < 1e-4 && (ax[1] - b[1]).abs() < 1e-4,
            "{ax:?} vs {b:?}"
        );
    }
}
