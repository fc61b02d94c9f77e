//! A small seeded generator (SplitMix64) so training is reproducible without a dependency.

/// SplitMix64 (Steele, Lea and Flood 2014): fast, seedable, good enough for initial factors,
/// k-means seeding and benchmark traffic; never used for anything secret. Its states never
/// repeat within 2^64 draws and its output function is a bijection, so neither do its draws.
pub struct SplitMix64(u64);

impl SplitMix64 {
    /// A generator whose draws are fixed by `seed`.
    pub fn new(seed: u64) -> Self {
        SplitMix64(seed)
    }

    /// The next draw.
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform in [0, 1).
    pub(crate) fn next_f64(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64
    }

    /// Uniform in [0, n).
    pub(crate) fn below(&mut self, n: usize) -> usize {
        (self.next_f64() * n as f64) as usize % n.max(1)
    }
}
