//! Time-based one-time passwords (RFC 6238) for operators' second factor: HMAC-SHA1 over the
//! 30-second step count, dynamically truncated to six digits, as every authenticator app
//! computes them. A code is accepted for the step before and after too (clock drift).

use hmac::{Hmac, Mac};

/// Seconds per step.
pub const STEP_SECONDS: i64 = 30;

/// The `digits`-digit code of `secret` at Unix time `at` (seconds).
pub fn code_at(secret: &[u8], at: i64, digits: u32) -> String {
    let counter = at.div_euclid(STEP_SECONDS) as u64;
    let mut mac = <Hmac<sha1::Sha1> as Mac>::new_from_slice(secret)
        .unwrap_or_else(|_| unreachable!("HMAC takes a key of any length"));
    mac.update(&counter.to_be_bytes());
    let h = mac.finalize().into_bytes();
    let offset = usize::from(h[h.len() - 1] & 0x0f);
    let binary = (u32::from(h[offset] & 0x7f) << 24)
        | (u32::from(h[offset + 1]) << 16)
        | (u32::from(h[offset + 2]) << 8)
        | u32::from(h[offset + 3]);
    let modulus = 10u32.pow(digits);
    format!("{:0width$}", binary % modulus, width = digits as usize)
}

/// Whether `given` is the six-digit code of `secret` at `at`, or one step either side;
/// compared in constant time. Returns the step it matched, so a caller can refuse a step
/// already used.
pub fn matches(secret: &[u8], given: &str, at: i64) -> Option<i64> {
    let given = given.trim();
    if given.len() != 6 || !given.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    (-1..=1).map(|d| at + d * STEP_SECONDS).find_map(|t| {
        let want = code_at(secret, t, 6);
        let same = want
            .bytes()
            .zip(given.bytes())
            .fold(0u8, |acc, (a, b)| acc | (a ^ b))
            == 0;
        same.then(|| t.div_euclid(STEP_SECONDS))
    })
}

/// A secret in base32 (RFC 4648, no padding), as authenticator apps take it.
pub fn base32(bytes: &[u8]) -> String {
    const ALPHABET: &[u8; 32] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";
    let mut out = String::new();
    let (mut buffer, mut bits) = (0u32, 0u32);
    for &b in bytes {
        buffer = (buffer << 8) | u32::from(b);
        bits += 8;
        while bits >= 5 {
            bits -= 5;
            out.push(char::from(ALPHABET[((buffer >> bits) & 31) as usize]));
        }
    }
    if bits > 0 {
        out.push(char::from(ALPHABET[((buffer << (5 - bits)) & 31) as usize]));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    /// RFC 6238, appendix B, the SHA-1 rows.
    #[test]
    fn the_rfc_s_test_vectors() {
        let secret = b"12345678901234567890";
        for (t, code) in [
            (59, "94287082"),
            (1_111_111_109, "07081804"),
            (1_111_111_111, "14050471"),
            (1_234_567_890, "89005924"),
            (2_000_000_000, "69279037"),
            (20_000_000_000, "65353130"),
        ] {
            assert_eq!(code_at(secret, t, 8), code, "at {t}");
        }
    }

    #[test]
    fn a_code_works_one_step_either_side_and_no_further() {
        let secret = b"12345678901234567890";
        let now = 1_111_111_111;
        let code = code_at(secret, now, 6);
        assert_eq!(matches(secret, &code, now), Some(now / 30));
        assert!(matches(secret, &code, now + 30).is_some());
        assert!(matches(secret, &code, now - 30).is_some());
        assert!(matches(secret, &code, now + 90).is_none());
        assert!(matches(secret, "12345", now).is_none());
        assert!(matches(secret, "abcdef", now).is_none());
    }

    #[test]
    fn base32_as_rfc_4648_writes_it() {
        assert_eq!(base32(b"foobar"), "MZXW6YTBOI");
        assert_eq!(
            base32(b"12345678901234567890"),
            "GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ"
        );
    }
}
