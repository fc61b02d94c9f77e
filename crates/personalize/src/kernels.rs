//! The vector arithmetic of ALS training, written once over `pulp::Simd` and compiled for
//! every instruction set pulp knows; the widest one this CPU has is picked at run time
//! (`pulp::Arch::dispatch`: AVX2 with fused multiply-add on most x86-64 machines, NEON on
//! ARM, plain code elsewhere). A build for the x86-64 baseline has only 4-lane SSE2 without
//! fused multiply-add, which left our training 1.2× slower per iteration than `implicit`'s
//! BLAS on a machine with AVX-512.
//!
//! Each entry point dispatches once and runs all its work inside, since the helpers must be
//! inlined into the dispatched function to be compiled with its instructions.

use pulp::{Arch, Simd, WithSimd};

/// YᵀY + λI for the row-major `f`-column matrix `y`.
pub(crate) fn gram(y: &[f32], f: usize, reg: f32) -> Vec<f32> {
    Arch::new().dispatch(Gram { y, f, reg })
}

/// One row's least-squares system against fixed factors: `steps` CG steps on
/// (G + Σ (c − 1) y yᵀ) x = Σ c y from `x`, where `g` is [`gram`] of `y` and `row` lists
/// (item, confidence) pairs.
pub(crate) struct RowSystem<'a> {
    pub(crate) y: &'a [f32],
    pub(crate) g: &'a [f32],
    pub(crate) f: usize,
    pub(crate) steps: usize,
}

impl RowSystem<'_> {
    /// Solves each `f`-long row of `xs` in turn, `observed(j, buffer)` filling the buffer
    /// with row j's (item, confidence) pairs; one dispatch for all of them.
    pub(crate) fn solve_rows(
        &self,
        observed: impl FnMut(usize, &mut Vec<(u32, f32)>),
        xs: &mut [f32],
    ) {
        Arch::new().dispatch(SolveRows {
            system: self,
            observed,
            xs,
        });
    }
}

struct Gram<'a> {
    y: &'a [f32],
    f: usize,
    reg: f32,
}

impl WithSimd for Gram<'_> {
    type Output = Vec<f32>;

    #[inline(always)]
    fn with_simd<S: Simd>(self, simd: S) -> Vec<f32> {
        let Gram { y, f, reg } = self;
        let mut g = vec![0f32; f * f];
        for row in y.chunks_exact(f) {
            for (a, &ya) in row.iter().enumerate() {
                axpy(simd, ya, row, &mut g[a * f..(a + 1) * f]);
            }
        }
        for a in 0..f {
            g[a * f + a] += reg;
        }
        g
    }
}

struct SolveRows<'s, 'x, F> {
    system: &'s RowSystem<'s>,
    observed: F,
    xs: &'x mut [f32],
}

impl<F: FnMut(usize, &mut Vec<(u32, f32)>)> WithSimd for SolveRows<'_, '_, F> {
    type Output = ();

    #[inline(always)]
    fn with_simd<S: Simd>(self, simd: S) {
        let SolveRows {
            system,
            mut observed,
            xs,
        } = self;
        let f = system.f;
        let mut s = Scratch {
            r: vec![0.0; f],
            p: vec![0.0; f],
            ap: vec![0.0; f],
        };
        let mut row = Vec::new();
        for (j, x) in xs.chunks_exact_mut(f).enumerate() {
            row.clear();
            observed(j, &mut row);
            solve_row(simd, system, &row, x, &mut s);
        }
    }
}

struct Scratch {
    r: Vec<f32>,
    p: Vec<f32>,
    ap: Vec<f32>,
}

#[inline(always)]
fn solve_row<S: Simd>(
    simd: S,
    sys: &RowSystem<'_>,
    row: &[(u32, f32)],
    x: &mut [f32],
    s: &mut Scratch,
) {
    let f = sys.f;
    let item = |i: u32| &sys.y[i as usize * f..(i as usize + 1) * f];
    // r = b − A x
    matvec(simd, sys.g, x, &mut s.r);
    s.r.iter_mut().for_each(|v| *v = -*v);
    for &(i, c) in row {
        let yi = item(i);
        axpy(simd, c - (c - 1.0) * dot(simd, yi, x), yi, &mut s.r);
    }
    s.p.copy_from_slice(&s.r);
    let mut rs_old = dot(simd, &s.r, &s.r);
    if rs_old < 1e-20 {
        return;
    }
    for _ in 0..sys.steps {
        matvec(simd, sys.g, &s.p, &mut s.ap);
        for &(i, c) in row {
            let yi = item(i);
            axpy(simd, (c - 1.0) * dot(simd, yi, &s.p), yi, &mut s.ap);
        }
        let pap = dot(simd, &s.p, &s.ap);
        if pap <= 0.0 || !pap.is_finite() {
            return;
        }
        let a = rs_old / pap;
        axpy(simd, a, &s.p, x);
        axpy(simd, -a, &s.ap, &mut s.r);
        let rs_new = dot(simd, &s.r, &s.r);
        if rs_new < 1e-20 {
            return;
        }
        let beta = rs_new / rs_old;
        for (p, r) in s.p.iter_mut().zip(&s.r) {
            *p = r + beta * *p;
        }
        rs_old = rs_new;
    }
}

/// Σ aᵢbᵢ, over two vector accumulators so that consecutive multiply-adds do not wait for
/// each other.
#[inline(always)]
pub(crate) fn dot<S: Simd>(simd: S, a: &[f32], b: &[f32]) -> f32 {
    let (va, ta) = S::as_simd_f32s(a);
    let (vb, tb) = S::as_simd_f32s(b);
    let (mut acc0, mut acc1) = (simd.splat_f32s(0.0), simd.splat_f32s(0.0));
    let (pa, pb) = (va.chunks_exact(2), vb.chunks_exact(2));
    let (ra, rb) = (pa.remainder(), pb.remainder());
    for (x, y) in pa.zip(pb) {
        acc0 = simd.mul_add_e_f32s(x[0], y[0], acc0);
        acc1 = simd.mul_add_e_f32s(x[1], y[1], acc1);
    }
    for (x, y) in ra.iter().zip(rb) {
        acc0 = simd.mul_add_e_f32s(*x, *y, acc0);
    }
    let mut sum = simd.reduce_sum_f32s(simd.add_f32s(acc0, acc1));
    for (x, y) in ta.iter().zip(tb) {
        sum += x * y;
    }
    sum
}

/// y ← y + a x.
#[inline(always)]
fn axpy<S: Simd>(simd: S, a: f32, x: &[f32], y: &mut [f32]) {
    let (vx, tx) = S::as_simd_f32s(x);
    let (vy, ty) = S::as_mut_simd_f32s(y);
    let va = simd.splat_f32s(a);
    for (yv, xv) in vy.iter_mut().zip(vx) {
        *yv = simd.mul_add_e_f32s(va, *xv, *yv);
    }
    for (yi, xi) in ty.iter_mut().zip(tx) {
        *yi += a * xi;
    }
}

/// out ← M x for the row-major square matrix `m`.
#[inline(always)]
fn matvec<S: Simd>(simd: S, m: &[f32], x: &[f32], out: &mut [f32]) {
    for (o, row) in out.iter_mut().zip(m.chunks_exact(x.len())) {
        *o = dot(simd, row, x);
    }
}

/// [`dot`] for one pair, dispatched on its own: what scoring computes, for comparisons.
#[cfg(test)]
pub(crate) fn dot_once(a: &[f32], b: &[f32]) -> f32 {
    Arch::new().dispatch(tests::Dot { a, b })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The dispatched kernels compute what the plain arithmetic does, for lengths that are
    /// and are not multiples of any vector width.
    #[test]
    fn the_kernels_agree_with_plain_arithmetic() {
        for n in [1usize, 3, 7, 8, 9, 16, 17, 31, 64, 65] {
            let a: Vec<f32> = (0..n).map(|i| (i as f32 * 0.37).sin()).collect();
            let b: Vec<f32> = (0..n).map(|i| (i as f32 * 0.11).cos()).collect();
            let plain: f32 = a.iter().zip(&b).map(|(x, y)| x * y).sum();
            let fast = Arch::new().dispatch(Dot { a: &a, b: &b });
            assert!((plain - fast).abs() < 1e-4, "n = {n}: {plain} vs {fast}");
            let mut y = b.clone();
            Arch::new().dispatch(Axpy {
                a: 0.5,
                x: &a,
                y: &mut y,
            });
            for ((yi, xi), bi) in y.iter().zip(&a).zip(&b) {
                assert!((yi - (bi + 0.5 * xi)).abs() < 1e-6, "n = {n}");
            }
        }
    }

    pub(crate) struct Dot<'a> {
        pub(crate) a: &'a [f32],
        pub(crate) b: &'a [f32],
    }

    impl WithSimd for Dot<'_> {
        type Output = f32;
        fn with_simd<S: Simd>(self, simd: S) -> f32 {
            dot(simd, self.a, self.b)
        }
    }

    struct Axpy<'a> {
        a: f32,
        x: &'a [f32],
        y: &'a mut [f32],
    }

    impl WithSimd for Axpy<'_> {
        type Output = ();
        fn with_simd<S: Simd>(self, simd: S) {
            axpy(simd, self.a, self.x, self.y);
        }
    }
}
