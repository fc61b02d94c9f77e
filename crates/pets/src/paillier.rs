//! Paillier's additively homomorphic encryption (Paillier 1999), for private intersection-sum:
//! the partner encrypts its values, we add the ones that match without seeing any, and only the
//! key holder can open the total.
//!
//! Keys are at least 2048 bits (two 1024-bit primes from RustCrypto's `crypto-primes`, BPSW
//! tested), with g = n + 1 so that g^m = 1 + m·n. Arithmetic is `dashu`'s (pure Rust, already
//! in the build for OpenDP). The key holder encrypts by the Chinese remainder theorem, and its
//! randomness r^n is h^x for a fixed h = y^n and a fresh 448-bit x (the short-exponent variant
//! of Damgård, Jurik and Nielsen 2010), computed from precomputed tables of h's powers, so an
//! encryption is a few hundred multiplications instead of two full exponentiations.
//! Decryption is by CRT too.

use dashu::base::{BitTest, Gcd};
use dashu::integer::fast_div::ConstDivisor;
use dashu::integer::modular::Reduced;
use dashu::integer::UBig;
use zeroize::Zeroize;

/// Smallest modulus accepted, in bits.
pub const MIN_BITS: usize = 2048;
/// The modulus sizes keys are generated at.
pub const SIZES: [usize; 3] = [2048, 3072, 4096];
/// Bits of the short exponent x in r^n = h^x.
const SHORT_EXPONENT_BITS: usize = 448;
/// Window width of the fixed-base tables.
const WINDOW: usize = 8;

/// Why a key or ciphertext is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PaillierError {
    /// The modulus is smaller than [`MIN_BITS`] or even.
    #[error("a Paillier modulus must be odd and at least {MIN_BITS} bits")]
    WeakModulus,
    /// Not an element of Z*_{n²}: zero, too large, or sharing a factor with n.
    #[error("a ciphertext outside the Paillier group")]
    NotInGroup,
    /// A plaintext at least n.
    #[error("a plaintext beyond the modulus")]
    PlaintextTooLarge,
    /// The system's randomness failed.
    #[error("no randomness: {0}")]
    Entropy(String),
}

/// Anyone's key: encrypts and adds.
#[derive(Debug, Clone)]
pub struct PublicKey {
    n: UBig,
    n2: UBig,
    ring: ConstDivisor,
}

/// A ciphertext, known to be in Z*_{n²} of its key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Ciphertext(UBig);

/// Powers h^(d·2^(w·j)) modulo one prime's square, for fixed-base exponentiation.
struct Table {
    ring: ConstDivisor,
    rows: Vec<Vec<UBig>>,
}

/// The key holder's key: decrypts, and encrypts fast. It lives for one session, in memory;
/// `dashu` cannot wipe its integers in place, so the primes are freed, not zeroised, when it
/// is dropped.
pub struct SecretKey {
    public: PublicKey,
    p: UBig,
    q: UBig,
    p2: ConstDivisor,
    q2: ConstDivisor,
    /// (q²)^{-1} mod p², to recombine residues mod p² and q².
    q2_inv_p2: UBig,
    /// p − 1 and q − 1, the decryption exponents.
    p1: UBig,
    q1: UBig,
    /// L_p(g^(p−1) mod p²)^{-1} mod p, and the same for q.
    hp: UBig,
    hq: UBig,
    /// q^{-1} mod p, to recombine plaintexts.
    q_inv_p: UBig,
    tables: [Table; 2],
}

/// A uniform integer in [0, bound) from the operating system's randomness (with 128 extra
/// bits, so the modular reduction's bias is below 2⁻¹²⁸).
///
/// # Errors
/// No randomness.
pub fn random_below(bound: &UBig) -> Result<UBig, PaillierError> {
    let bytes = bound.bit_len().div_ceil(8) + 16;
    let mut buf = vec![0u8; bytes];
    getrandom::fill(&mut buf).map_err(|e| PaillierError::Entropy(e.to_string()))?;
    let r = UBig::from_be_bytes(&buf) % bound;
    buf.zeroize();
    Ok(r)
}

fn random_bits(bits: usize) -> Result<UBig, PaillierError> {
    let mut buf = vec![0u8; bits.div_ceil(8)];
    getrandom::fill(&mut buf).map_err(|e| PaillierError::Entropy(e.to_string()))?;
    let r = UBig::from_be_bytes(&buf);
    buf.zeroize();
    Ok(r)
}

fn inverse(x: &UBig, m: &UBig) -> Option<UBig> {
    let ring = ConstDivisor::new(m.clone());
    ring.reduce(x.clone()).inv().map(|r| r.residue())
}

fn pow_mod(base: &UBig, exp: &UBig, ring: &ConstDivisor) -> UBig {
    ring.reduce(base.clone()).pow(exp).residue()
}

impl Table {
    fn new(base: &UBig, modulus: UBig) -> Table {
        let ring = ConstDivisor::new(modulus);
        let windows = SHORT_EXPONENT_BITS.div_ceil(WINDOW);
        let mut rows = Vec::with_capacity(windows);
        let mut b = ring.reduce(base.clone());
        for _ in 0..windows {
            let mut row = Vec::with_capacity(1 << WINDOW);
            let mut acc = ring.reduce(UBig::ONE);
            for _ in 0..(1 << WINDOW) {
                row.push(acc.residue());
                acc *= &b;
            }
            rows.push(row);
            // b ← b^(2^w)
            for _ in 0..WINDOW {
                b = b.clone() * &b;
            }
        }
        Table { ring, rows }
    }

    /// base^x for x < 2^SHORT_EXPONENT_BITS, converting each power as it is used (for a
    /// single encryption; runs of them use [`Table::prepare`]).
    fn pow(&self, x: &UBig) -> UBig {
        let mut acc = self.ring.reduce(UBig::ONE);
        for (j, row) in self.rows.iter().enumerate() {
            let digit = window(x, j);
            if digit != 0 {
                acc *= self.ring.reduce(row[digit].clone());
            }
        }
        acc.residue()
    }

    /// The powers in the ring's own form, for a run of encryptions.
    fn prepare(&self) -> Prepared<'_> {
        Prepared {
            ring: &self.ring,
            rows: self
                .rows
                .iter()
                .map(|row| row.iter().map(|x| self.ring.reduce(x.clone())).collect())
                .collect(),
        }
    }
}

/// The `j`-th window of x's bits.
fn window(x: &UBig, j: usize) -> usize {
    (0..WINDOW).fold(0, |d, b| d | (usize::from(x.bit(j * WINDOW + b)) << b))
}

/// A [`Table`] ready to multiply: no conversion per multiplication.
struct Prepared<'a> {
    ring: &'a ConstDivisor,
    rows: Vec<Vec<Reduced<'a>>>,
}

impl Prepared<'_> {
    /// base^x for x < 2^SHORT_EXPONENT_BITS: one multiplication per window.
    fn pow(&self, x: &UBig) -> Reduced<'_> {
        let mut acc = self.ring.reduce(UBig::ONE);
        for (j, row) in self.rows.iter().enumerate() {
            let digit = window(x, j);
            if digit != 0 {
                acc *= &row[digit];
            }
        }
        acc
    }
}

impl PublicKey {
    /// The key of modulus `n` (as the key holder sent it).
    ///
    /// # Errors
    /// [`PaillierError::WeakModulus`] below [`MIN_BITS`] or for an even modulus.
    pub fn from_modulus(n: UBig) -> Result<PublicKey, PaillierError> {
        if n.bit_len() < MIN_BITS || !n.bit(0) {
            return Err(PaillierError::WeakModulus);
        }
        let n2 = &n * &n;
        Ok(PublicKey {
            ring: ConstDivisor::new(n2.clone()),
            n,
            n2,
        })
    }

    /// The modulus, big-endian.
    pub fn to_bytes(&self) -> Vec<u8> {
        self.n.to_be_bytes().into_vec()
    }

    /// The key from [`PublicKey::to_bytes`].
    ///
    /// # Errors
    /// As [`PublicKey::from_modulus`].
    pub fn from_bytes(bytes: &[u8]) -> Result<PublicKey, PaillierError> {
        PublicKey::from_modulus(UBig::from_be_bytes(bytes))
    }

    /// The modulus n (plaintexts are integers modulo n).
    pub fn modulus(&self) -> &UBig {
        &self.n
    }

    /// (1 + m·n) mod n².
    fn g_to(&self, m: &UBig) -> Result<UBig, PaillierError> {
        if m >= &self.n {
            return Err(PaillierError::PlaintextTooLarge);
        }
        Ok((UBig::ONE + m * &self.n) % &self.n2)
    }

    /// Encrypts `m` with fresh randomness r^n (a full exponentiation; the key holder's
    /// [`SecretKey::encrypt`] is much faster).
    ///
    /// # Errors
    /// A plaintext at least n, or no randomness.
    pub fn encrypt(&self, m: &UBig) -> Result<Ciphertext, PaillierError> {
        let gm = self.g_to(m)?;
        let rn = self.randomness()?;
        Ok(Ciphertext(
            (self.ring.reduce(gm) * self.ring.reduce(rn)).residue(),
        ))
    }

    /// A fresh r^n mod n², r uniform in Z*_n.
    fn randomness(&self) -> Result<UBig, PaillierError> {
        loop {
            let r = random_below(&self.n)?;
            if r != UBig::ZERO && (&r).gcd(&self.n) == UBig::ONE {
                return Ok(pow_mod(&r, &self.n, &self.ring));
            }
        }
    }

    /// Enc(a + b).
    pub fn add(&self, a: &Ciphertext, b: &Ciphertext) -> Ciphertext {
        Ciphertext((self.ring.reduce(a.0.clone()) * self.ring.reduce(b.0.clone())).residue())
    }

    /// The sum of many ciphertexts (Enc(0) for none).
    pub fn sum<'a>(&self, cs: impl IntoIterator<Item = &'a Ciphertext>) -> Ciphertext {
        let mut acc = self.ring.reduce(UBig::ONE);
        for c in cs {
            acc *= self.ring.reduce(c.0.clone());
        }
        Ciphertext(acc.residue())
    }

    /// The same plaintext under fresh randomness, so that the holder cannot tell which
    /// ciphertexts were combined.
    ///
    /// # Errors
    /// No randomness.
    pub fn rerandomize(&self, c: &Ciphertext) -> Result<Ciphertext, PaillierError> {
        let rn = self.randomness()?;
        Ok(Ciphertext(
            (self.ring.reduce(c.0.clone()) * self.ring.reduce(rn)).residue(),
        ))
    }

    /// A ciphertext received, checked to be in Z*_{n²}.
    ///
    /// # Errors
    /// [`PaillierError::NotInGroup`].
    pub fn ciphertext(&self, bytes: &[u8]) -> Result<Ciphertext, PaillierError> {
        let c = UBig::from_be_bytes(bytes);
        if c == UBig::ZERO || c >= self.n2 || (&c).gcd(&self.n) != UBig::ONE {
            return Err(PaillierError::NotInGroup);
        }
        Ok(Ciphertext(c))
    }
}

impl Ciphertext {
    /// Big-endian bytes.
    pub fn to_bytes(&self) -> Vec<u8> {
        self.0.to_be_bytes().into_vec()
    }
}

/// L(x) = (x − 1) / d.
fn l(x: &UBig, d: &UBig) -> UBig {
    (x - UBig::ONE) / d
}

impl SecretKey {
    /// A fresh key pair with a modulus of `bits`: one of [`SIZES`].
    ///
    /// # Errors
    /// [`PaillierError::WeakModulus`] for another size; no randomness.
    pub fn generate(bits: usize) -> Result<SecretKey, PaillierError> {
        if !SIZES.contains(&bits) {
            return Err(PaillierError::WeakModulus);
        }
        let mut rng = rand_core::UnwrapErr(getrandom04::SysRng);
        loop {
            let p = prime(&mut rng, bits / 2);
            let q = prime(&mut rng, bits / 2);
            // Two primes with their top bit set make 2·half − 1 or 2·half bits: keep the latter.
            if p == q || (&p * &q).bit_len() < bits {
                continue;
            }
            return SecretKey::from_primes(p, q);
        }
    }

    fn from_primes(p: UBig, q: UBig) -> Result<SecretKey, PaillierError> {
        let n = &p * &q;
        let public = PublicKey::from_modulus(n.clone())?;
        let (pp, qq) = (&p * &p, &q * &q);
        let p2 = ConstDivisor::new(pp.clone());
        let q2 = ConstDivisor::new(qq.clone());
        let q2_inv_p2 = inverse(&qq, &pp).ok_or(PaillierError::WeakModulus)?;
        let (p1, q1) = (&p - UBig::ONE, &q - UBig::ONE);
        let g = &n + UBig::ONE;
        let hp = inverse(&l(&pow_mod(&g, &p1, &p2), &p), &p).ok_or(PaillierError::WeakModulus)?;
        let hq = inverse(&l(&pow_mod(&g, &q1, &q2), &q), &q).ok_or(PaillierError::WeakModulus)?;
        let q_inv_p = inverse(&q, &p).ok_or(PaillierError::WeakModulus)?;
        // h = y^n mod n² for a random unit y: the base of every r^n = h^x.
        let h = public.randomness()?;
        let tables = [Table::new(&(&h % &pp), pp), Table::new(&(&h % &qq), qq)];
        Ok(SecretKey {
            public,
            p,
            q,
            p2,
            q2,
            q2_inv_p2,
            p1,
            q1,
            hp,
            hq,
            q_inv_p,
            tables,
        })
    }

    /// The public half.
    pub fn public(&self) -> &PublicKey {
        &self.public
    }

    /// Combines residues mod p² and mod q² into one mod n².
    fn crt2(&self, a: UBig, b: UBig) -> UBig {
        // x = b + q²·((a − b)·(q²)^{-1} mod p²)
        let diff = (self.p2.reduce(a) - self.p2.reduce(b.clone()))
            * self.p2.reduce(self.q2_inv_p2.clone());
        b + self.q2.value() * diff.residue()
    }

    /// Encrypts `m` as the key holder: (1 + m·n)·h^x with a fresh short x, by CRT.
    ///
    /// # Errors
    /// A plaintext at least n, or no randomness.
    pub fn encrypt(&self, m: &UBig) -> Result<Ciphertext, PaillierError> {
        let gm = self.public.g_to(m)?;
        let x = random_bits(SHORT_EXPONENT_BITS)?;
        let [tp, tq] = &self.tables;
        let cp = (tp.ring.reduce(tp.pow(&x)) * tp.ring.reduce(gm.clone())).residue();
        let cq = (tq.ring.reduce(tq.pow(&x)) * tq.ring.reduce(gm)).residue();
        Ok(Ciphertext(self.crt2(cp, cq)))
    }

    fn encrypt_prepared(
        &self,
        m: &UBig,
        [p, q]: &[Prepared<'_>; 2],
    ) -> Result<Ciphertext, PaillierError> {
        let gm = self.public.g_to(m)?;
        let x = random_bits(SHORT_EXPONENT_BITS)?;
        let cp = (p.pow(&x) * p.ring.reduce(gm.clone())).residue();
        let cq = (q.pow(&x) * q.ring.reduce(gm)).residue();
        Ok(Ciphertext(self.crt2(cp, cq)))
    }

    /// Encrypts many values on this thread only, in order (for measuring one core).
    ///
    /// # Errors
    /// No randomness.
    pub fn encrypt_many_on_one_core(
        &self,
        values: &[u64],
    ) -> Result<Vec<Ciphertext>, PaillierError> {
        let prepared = [self.tables[0].prepare(), self.tables[1].prepare()];
        values
            .iter()
            .map(|v| self.encrypt_prepared(&UBig::from(*v), &prepared))
            .collect()
    }

    /// Encrypts many values on every core, in order.
    ///
    /// # Errors
    /// No randomness.
    pub fn encrypt_many(&self, values: &[u64]) -> Result<Vec<Ciphertext>, PaillierError> {
        let threads = std::thread::available_parallelism().map_or(1, |n| n.get());
        let chunk = values.len().div_ceil(threads).max(1);
        std::thread::scope(|s| {
            let handles: Vec<_> = values
                .chunks(chunk)
                .map(|part| {
                    s.spawn(move || {
                        let prepared = [self.tables[0].prepare(), self.tables[1].prepare()];
                        part.iter()
                            .map(|v| self.encrypt_prepared(&UBig::from(*v), &prepared))
                            .collect::<Result<Vec<_>, _>>()
                    })
                })
                .collect();
            let mut out = Vec::with_capacity(values.len());
            for h in handles {
                out.extend(h.join().map_err(|_| {
                    PaillierError::Entropy("an encryption thread panicked".into())
                })??);
            }
            Ok(out)
        })
    }

    /// The plaintext, modulo n.
    pub fn decrypt(&self, c: &Ciphertext) -> UBig {
        let mp = (l(&pow_mod(&c.0, &self.p1, &self.p2), &self.p) * &self.hp) % &self.p;
        let mq = (l(&pow_mod(&c.0, &self.q1, &self.q2), &self.q) * &self.hq) % &self.q;
        // m = mq + q·((mp − mq)·q^{-1} mod p)
        let pr = ConstDivisor::new(self.p.clone());
        let diff = (pr.reduce(mp) - pr.reduce(mq.clone())) * pr.reduce(self.q_inv_p.clone());
        mq + &self.q * diff.residue()
    }
}

/// A random prime of `bits` (half of one of [`SIZES`]) with its top bit set.
fn prime(rng: &mut rand_core::UnwrapErr<getrandom04::SysRng>, bits: usize) -> UBig {
    use crypto_primes::{random_prime, Flavor};
    match bits {
        1536 => {
            let p: crypto_bigint::U1536 = random_prime(rng, Flavor::Any, 1536);
            UBig::from_be_bytes(&p.to_be_bytes())
        }
        2048 => {
            let p: crypto_bigint::U2048 = random_prime(rng, Flavor::Any, 2048);
            UBig::from_be_bytes(&p.to_be_bytes())
        }
        _ => {
            let p: crypto_bigint::U1024 = random_prime(rng, Flavor::Any, 1024);
            UBig::from_be_bytes(&p.to_be_bytes())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key() -> &'static SecretKey {
        static KEY: std::sync::OnceLock<SecretKey> = std::sync::OnceLock::new();
        KEY.get_or_init(|| SecretKey::generate(2048).expect("key"))
    }

    #[test]
    fn encrypts_adds_and_decrypts_exactly() {
        let sk = key();
        let pk = sk.public();
        assert!(pk.modulus().bit_len() >= 2048);
        let values: Vec<u64> = vec![0, 1, 42, 1_000_000, u64::MAX];
        let cs: Vec<Ciphertext> = values
            .iter()
            .map(|v| sk.encrypt(&UBig::from(*v)).expect("enc"))
            .collect();
        for (v, c) in values.iter().zip(&cs) {
            assert_eq!(sk.decrypt(c), UBig::from(*v));
        }
        let total: UBig = values.iter().map(|v| UBig::from(*v)).sum();
        assert_eq!(sk.decrypt(&pk.sum(&cs)), total);
        // Public-key encryption and re-randomisation agree with the key holder's.
        let c = pk.encrypt(&UBig::from(7u8)).expect("enc");
        let r = pk.rerandomize(&c).expect("rerandomize");
        assert_ne!(c, r, "fresh randomness");
        assert_eq!(sk.decrypt(&pk.add(&c, &r)), UBig::from(14u8));
        // Two encryptions of the same value differ.
        assert_ne!(
            sk.encrypt(&UBig::ONE).expect("enc"),
            sk.encrypt(&UBig::ONE).expect("enc")
        );
        assert_eq!(sk.decrypt(&pk.sum([])), UBig::ZERO);
    }

    #[test]
    fn larger_moduli_encrypt_and_decrypt() {
        let sk = SecretKey::generate(3072).expect("key");
        assert!(sk.public().modulus().bit_len() >= 3072);
        let cs = sk.encrypt_many(&[5, 7]).expect("enc");
        assert_eq!(sk.decrypt(&sk.public().sum(&cs)), UBig::from(12u8));
    }

    #[test]
    fn refuses_what_is_not_in_the_group() {
        let pk = key().public();
        assert_eq!(pk.ciphertext(&[0]), Err(PaillierError::NotInGroup));
        let n2 = pk.modulus() * pk.modulus();
        assert_eq!(
            pk.ciphertext(&n2.to_be_bytes()),
            Err(PaillierError::NotInGroup)
        );
        assert_eq!(
            pk.ciphertext(&pk.modulus().to_be_bytes()),
            Err(PaillierError::NotInGroup),
            "shares a factor with n"
        );
        assert_eq!(
            pk.encrypt(pk.modulus()),
            Err(PaillierError::PlaintextTooLarge)
        );
        assert!(matches!(
            PublicKey::from_modulus(UBig::from(15u8)),
            Err(PaillierError::WeakModulus)
        ));
        let round = PublicKey::from_bytes(&pk.to_bytes()).expect("key");
        assert_eq!(round.modulus(), pk.modulus());
        assert!(matches!(
            SecretKey::generate(1024),
            Err(PaillierError::WeakModulus)
        ));
    }
}
