//! IAB TCF v2 (v2.0 to v2.2) TC strings: the core segment, decoded.
//!
//! A TC string is base64url (no padding) segments separated by `.`; the first is the core
//! segment, a bit field whose layout the IAB's "Consent string and vendor list formats v2"
//! specifies. We read what consent mapping needs — purpose consents and legitimate-interest
//! flags — and the header fields that identify the string; vendor sections are not read.

use base64::Engine as _;
use chrono::{DateTime, TimeZone, Utc};

use crate::error::PolicyError;

/// The core segment's header and purpose fields.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TcString {
    /// Always 2.
    pub version: u8,
    /// When the string was first created.
    pub created: DateTime<Utc>,
    /// When it was last updated.
    pub last_updated: DateTime<Utc>,
    /// The consent management platform's IAB id.
    pub cmp_id: u16,
    /// Its version.
    pub cmp_version: u16,
    /// The CMP screen the consent was given on.
    pub consent_screen: u8,
    /// Two upper-case letters.
    pub consent_language: String,
    /// Global Vendor List version.
    pub vendor_list_version: u16,
    /// TCF policy version (4 is TCF v2.2).
    pub policy_version: u8,
    /// Whether the string is specific to one service.
    pub is_service_specific: bool,
    /// Special features opted into (1..=12).
    pub special_feature_opt_ins: Vec<u8>,
    /// TCF purposes consented to (1..=24).
    pub purpose_consents: Vec<u8>,
    /// TCF purposes whose legitimate interest was established and not objected to (1..=24).
    pub purpose_legitimate_interests: Vec<u8>,
    /// Publisher country, two upper-case letters.
    pub publisher_country: String,
}

struct Bits<'a> {
    bytes: &'a [u8],
    pos: usize,
}

impl Bits<'_> {
    fn take(&mut self, n: usize) -> Result<u64, PolicyError> {
        if self.pos + n > self.bytes.len() * 8 {
            return Err(PolicyError::MalformedTcString(format!(
                "core segment ends at bit {}, field needs bits {}..{}",
                self.bytes.len() * 8,
                self.pos,
                self.pos + n
            )));
        }
        let mut v = 0u64;
        for _ in 0..n {
            let byte = self.bytes[self.pos / 8];
            let bit = (byte >> (7 - self.pos % 8)) & 1;
            v = (v << 1) | u64::from(bit);
            self.pos += 1;
        }
        Ok(v)
    }

    fn flags(&mut self, n: usize) -> Result<Vec<u8>, PolicyError> {
        let mut set = Vec::new();
        for id in 1..=n {
            if self.take(1)? == 1 {
                set.push(id as u8);
            }
        }
        Ok(set)
    }

    fn time(&mut self) -> Result<DateTime<Utc>, PolicyError> {
        let deciseconds = self.take(36)? as i64;
        Utc.timestamp_millis_opt(deciseconds * 100)
            .single()
            .ok_or_else(|| PolicyError::MalformedTcString("timestamp out of range".into()))
    }

    fn letters(&mut self) -> Result<String, PolicyError> {
        let a = self.take(6)? as u8;
        let b = self.take(6)? as u8;
        if a > 25 || b > 25 {
            return Err(PolicyError::MalformedTcString(
                "a letter code is not A–Z".into(),
            ));
        }
        Ok([char::from(b'A' + a), char::from(b'A' + b)]
            .iter()
            .collect())
    }
}

/// Decodes the core segment of `raw`.
///
/// # Errors
/// [`PolicyError::MalformedTcString`]: not base64url, too short, not version 2, or a field out of
/// range.
pub fn decode(raw: &str) -> Result<TcString, PolicyError> {
    let core = raw
        .trim()
        .split('.')
        .next()
        .unwrap_or_default()
        .trim_end_matches('=');
    if core.is_empty() || core.len() > 4096 {
        return Err(PolicyError::MalformedTcString("empty or over 4 KB".into()));
    }
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(core)
        .map_err(|e| PolicyError::MalformedTcString(format!("not base64url: {e}")))?;
    let mut bits = Bits {
        bytes: &bytes,
        pos: 0,
    };
    let version = bits.take(6)? as u8;
    if version != 2 {
        return Err(PolicyError::MalformedTcString(format!(
            "version {version}; only TCF v2 strings are read"
        )));
    }
    Ok(TcString {
        version,
        created: bits.time()?,
        last_updated: bits.time()?,
        cmp_id: bits.take(12)? as u16,
        cmp_version: bits.take(12)? as u16,
        consent_screen: bits.take(6)? as u8,
        consent_language: bits.letters()?,
        vendor_list_version: bits.take(12)? as u16,
        policy_version: bits.take(6)? as u8,
        is_service_specific: bits.take(1)? == 1,
        special_feature_opt_ins: {
            bits.take(1)?; // use non-standard texts
            bits.flags(12)?
        },
        purpose_consents: bits.flags(24)?,
        purpose_legitimate_interests: bits.flags(24)?,
        publisher_country: {
            bits.take(1)?; // purpose one treatment
            bits.letters()?
        },
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(s: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(s)
            .expect("time")
            .with_timezone(&Utc)
    }

    // Reference values below are what the IAB Tech Lab's own decoder, @iabtcf/core 1.x,
    // reports for these strings.

    /// The example TC string of IAB's Global Privacy Platform documentation.
    #[test]
    fn decodes_the_iab_gpp_example() {
        let tc = decode("CPXxRfAPXxRfAAfKABENB-CgAAAAAAAAAAYgAAAAAAAA").expect("decodes");
        assert_eq!(tc.version, 2);
        assert_eq!(tc.created, t("2022-04-20T22:00:00Z"));
        assert_eq!(tc.cmp_id, 31);
        assert_eq!(tc.cmp_version, 640);
        assert_eq!(tc.consent_screen, 1);
        assert_eq!(tc.consent_language, "EN");
        assert_eq!(tc.vendor_list_version, 126);
        assert_eq!(tc.policy_version, 2);
        assert!(tc.is_service_specific);
        assert!(tc.purpose_consents.is_empty());
        assert_eq!(tc.publisher_country, "DE");
    }

    /// An example from the documentation of a public TCF decoder (lib_tcstring).
    #[test]
    fn decodes_purpose_consents() {
        let tc = decode("COvFyGBOvFyGBAbAAAENAPCAAOAAAAAAAAAAAEEUACCKAAA").expect("decodes");
        assert_eq!(tc.created, t("2020-02-20T23:57:39.300Z"));
        assert_eq!(tc.cmp_id, 27);
        assert_eq!(tc.vendor_list_version, 15);
        assert_eq!(tc.purpose_consents, [1, 2, 3]);
        assert!(tc.purpose_legitimate_interests.is_empty());
        assert_eq!(tc.publisher_country, "AA");
    }

    #[test]
    fn malformed_strings_are_refused_with_a_reason() {
        for bad in [
            "",
            "!!!",
            "BOONm0NOONm0NABABAENAa-AAAARh7______b9_3__7_9uz_Kv_K7Vf7nnG072lPVA9LTOQ6gEaY",
            "CPXxRf",
        ] {
            let e = decode(bad).expect_err(bad);
            assert!(matches!(e, PolicyError::MalformedTcString(_)), "{bad}: {e}");
        }
    }
}
