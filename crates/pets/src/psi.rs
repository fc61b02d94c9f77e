//! Private set intersection by commutative blinding over Ristretto255 (the Diffie–Hellman PSI
//! of Meadows 1986 / Huberman, Franklin and Hogg 1999, as in Google's Private Join and Compute
//! and OpenMined's PSI): each side hashes its identifiers to the group and raises them to a
//! secret scalar; the other side raises them again; since `H(x)^ab = H(x)^ba`, doubly blinded
//! values match exactly when the identifiers do, and nothing else about them can be learnt
//! without a secret scalar (decisional Diffie–Hellman in the random-oracle model).
//!
//! Blinded sets travel sorted by their encoding: the encodings are pseudorandom, so sorting is a
//! shuffle that leaves no trace of the original order.

use std::collections::HashSet;

use curve25519_dalek::ristretto::{CompressedRistretto, RistrettoPoint};
use curve25519_dalek::scalar::Scalar;
use sha2::{Digest, Sha512};
use zeroize::Zeroize;

/// A blinded identifier on the wire: a compressed Ristretto255 point.
pub type Blinded = [u8; 32];

/// Domain separation: these hashes are for this protocol only.
const DOMAIN: &[u8] = b"consentric/psi/v1";

/// Why a set cannot be blinded again.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PsiError {
    /// The bytes at this position are not the canonical encoding of a Ristretto255 point.
    #[error("element {0} is not a valid Ristretto255 encoding")]
    InvalidPoint(usize),
    /// The identity point (it would match every identity and blinds nothing).
    #[error("element {0} is the identity")]
    Identity(usize),
    /// The system's randomness failed.
    #[error("no randomness: {0}")]
    Entropy(String),
}

/// What kind of identifier, so that both sides normalise alike.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum IdKind {
    /// E-mail: trimmed, lower-cased.
    Email,
    /// Phone: E.164 (`+` and digits; a leading `00` becomes `+`).
    Phone,
}

impl IdKind {
    /// The identifier as both sides hash it, or `None` if it is not one of this kind.
    pub fn normalise(self, raw: &str) -> Option<String> {
        match self {
            IdKind::Email => {
                let e = raw.trim().to_lowercase();
                let (local, domain) = e.split_once('@')?;
                (!local.is_empty() && domain.contains('.') && !e.contains(char::is_whitespace))
                    .then_some(e)
            }
            IdKind::Phone => {
                let t = raw.trim();
                let (plus, rest) = match t.strip_prefix('+') {
                    Some(r) => (true, r),
                    None => (t.starts_with("00"), t.strip_prefix("00").unwrap_or(t)),
                };
                if !plus {
                    return None; // without a country code the number is ambiguous
                }
                let digits: String = rest
                    .chars()
                    .filter(|c| !matches!(c, ' ' | '-' | '(' | ')' | '.'))
                    .collect();
                (digits.len() >= 8
                    && digits.len() <= 15
                    && digits.chars().all(|c| c.is_ascii_digit())
                    && !digits.starts_with('0'))
                .then(|| format!("+{digits}"))
            }
        }
    }

    fn tag(self) -> &'static [u8] {
        match self {
            IdKind::Email => b"email",
            IdKind::Phone => b"phone",
        }
    }
}

/// `H(id)`: SHA-512 of the domain, kind and normalised identifier, mapped to the group
/// (Elligator, as RFC 9496's hash-to-group).
fn hash_to_group(kind: IdKind, normalised: &str) -> RistrettoPoint {
    let mut h = Sha512::new();
    h.update(DOMAIN);
    h.update([0]);
    h.update(kind.tag());
    h.update([0]);
    h.update(normalised.as_bytes());
    let wide: [u8; 64] = h.finalize().into();
    RistrettoPoint::from_uniform_bytes(&wide)
}

/// One side's secret scalar for one session. Zeroised when dropped.
pub struct Blinder(Scalar);

impl Drop for Blinder {
    fn drop(&mut self) {
        self.0.zeroize();
    }
}

/// Runs `f` over `items` on every core, keeping the order.
fn parallel<T: Sync, U: Send>(items: &[T], f: impl Fn(usize, &T) -> U + Sync) -> Vec<U> {
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get());
    if threads <= 1 || items.len() < 1024 {
        return items.iter().enumerate().map(|(i, x)| f(i, x)).collect();
    }
    let chunk = items.len().div_ceil(threads);
    std::thread::scope(|s| {
        let handles: Vec<_> = items
            .chunks(chunk)
            .enumerate()
            .map(|(c, part)| {
                let f = &f;
                s.spawn(move || {
                    part.iter()
                        .enumerate()
                        .map(|(i, x)| f(c * chunk + i, x))
                        .collect::<Vec<U>>()
                })
            })
            .collect();
        handles
            .into_iter()
            .flat_map(|h| h.join().unwrap_or_else(|p| std::panic::resume_unwind(p)))
            .collect()
    })
}

impl Blinder {
    /// A fresh secret scalar from the operating system's randomness.
    ///
    /// # Errors
    /// If the system has no randomness to give.
    pub fn random() -> Result<Self, PsiError> {
        let mut wide = [0u8; 64];
        getrandom::fill(&mut wide).map_err(|e| PsiError::Entropy(e.to_string()))?;
        let s = Scalar::from_bytes_mod_order_wide(&wide);
        wide.zeroize();
        Ok(Blinder(s))
    }

    /// `H(id)^k` for each (already normalised) identifier, in the given order.
    pub fn blind(&self, kind: IdKind, ids: &[String]) -> Vec<Blinded> {
        parallel(ids, |_, id| {
            (hash_to_group(kind, id) * self.0).compress().to_bytes()
        })
    }

    /// `x^k` for each of the other side's blinded values, in the given order.
    ///
    /// # Errors
    /// [`PsiError`] naming the first element that is not a valid point, or the identity.
    pub fn reblind(&self, points: &[Blinded]) -> Result<Vec<Blinded>, PsiError> {
        parallel(points, |i, p| {
            let point = CompressedRistretto(*p)
                .decompress()
                .ok_or(PsiError::InvalidPoint(i))?;
            if point == RistrettoPoint::default() {
                return Err(PsiError::Identity(i));
            }
            Ok((point * self.0).compress().to_bytes())
        })
        .into_iter()
        .collect()
    }
}

/// Sorts blinded values: a shuffle that keeps nothing of the original order.
pub fn shuffled(mut points: Vec<Blinded>) -> Vec<Blinded> {
    points.sort_unstable();
    points
}

/// How many of `ours` (doubly blinded) appear in `theirs` (doubly blinded); each distinct value
/// counts once, so duplicates on either side do not inflate the overlap.
pub fn cardinality(ours: &[Blinded], theirs: &[Blinded]) -> usize {
    let theirs: HashSet<&Blinded> = theirs.iter().collect();
    let ours: HashSet<&Blinded> = ours.iter().collect();
    ours.iter().filter(|p| theirs.contains(*p)).count()
}

/// The positions in `ours` (doubly blinded, in our original order) whose value is in `theirs`.
pub fn matched(ours: &[Blinded], theirs: &[Blinded]) -> Vec<usize> {
    let theirs: HashSet<&Blinded> = theirs.iter().collect();
    ours.iter()
        .enumerate()
        .filter(|(_, p)| theirs.contains(p))
        .map(|(i, _)| i)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn emails(range: std::ops::Range<usize>) -> Vec<String> {
        range
            .map(|i| {
                IdKind::Email
                    .normalise(&format!("  Customer{i}@Example.com "))
                    .expect("email")
            })
            .collect()
    }

    /// Both sides' steps, in one place: (cardinality, our matched positions).
    fn run(ours: &[String], theirs: &[String]) -> (usize, Vec<usize>) {
        let (a, b) = (Blinder::random().expect("a"), Blinder::random().expect("b"));
        let a1 = a.blind(IdKind::Email, ours);
        let ab = b.reblind(&a1).expect("valid"); // order kept: matches mode
        let b1 = shuffled(b.blind(IdKind::Email, theirs));
        let ba = a.reblind(&b1).expect("valid");
        let card = cardinality(&shuffled(ab.clone()), &ba);
        (card, matched(&ab, &ba))
    }

    #[test]
    fn finds_exactly_the_overlap() {
        let ours = emails(0..200);
        for (theirs, want) in [
            (emails(1000..1200), 0), // 0%
            (emails(198..400), 2),   // 1%
            (emails(100..300), 100), // 50%
            (emails(0..200), 200),   // 100%
            (Vec::new(), 0),         // empty
        ] {
            let (card, m) = run(&ours, &theirs);
            assert_eq!(card, want);
            assert_eq!(m.len(), want);
            for i in m {
                assert!(theirs.contains(&ours[i]), "{} matched but absent", ours[i]);
            }
        }
        // Duplicates on either side count once in the cardinality.
        let mut dup = emails(0..10);
        dup.extend(emails(0..10));
        assert_eq!(run(&dup, &emails(5..15)).0, 5);
        assert_eq!(run(&emails(5..15), &dup).0, 5);
        assert_eq!(run(&[], &emails(0..3)).0, 0);
    }

    #[test]
    fn identifiers_are_normalised_alike_and_refused_when_not_identifiers() {
        assert_eq!(
            IdKind::Email.normalise(" Ada@Example.COM\n"),
            Some("ada@example.com".into())
        );
        assert_eq!(IdKind::Email.normalise("not an email"), None);
        assert_eq!(IdKind::Email.normalise("@example.com"), None);
        assert_eq!(
            IdKind::Phone.normalise("+44 (20) 7946-0958"),
            Some("+442079460958".into())
        );
        assert_eq!(
            IdKind::Phone.normalise("0044 20 7946 0958"),
            Some("+442079460958".into())
        );
        assert_eq!(IdKind::Phone.normalise("020 7946 0958"), None);
        assert_eq!(IdKind::Phone.normalise("+12"), None);
    }

    #[test]
    fn bad_points_are_refused_by_position() {
        let b = Blinder::random().expect("b");
        let good = b.blind(IdKind::Email, &emails(0..2));
        let mut bad = good.clone();
        bad.push([0xff; 32]);
        assert_eq!(b.reblind(&bad), Err(PsiError::InvalidPoint(2)));
        let identity = RistrettoPoint::default().compress().to_bytes();
        assert_eq!(b.reblind(&[identity]), Err(PsiError::Identity(0)));
        assert!(b.reblind(&good).is_ok());
    }
}
