//! IAB TCF v2 (v2.0 to v2.2) TC strings: the core segment and the Publisher TC segment, decoded.
//!
//! A TC string is base64url (no padding) segments separated by `.`; the first is the core
//! segment, a bit field whose layout the IAB's "Consent string and vendor list formats v2"
//! specifies. We read what consent mapping needs — purpose consents and legitimate-interest
//! flags — and the header fields that identify the string; vendor sections are not read. Of the
//! optional segments that follow (each led by a 3-bit type), the Publisher TC segment (type 3)
//! holds the publisher's own purposes — the site's first-party processing, which is what this
//! platform does — and is read; disclosed and allowed vendors (types 1, 2) are skipped.

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
    /// The Publisher TC segment, when the string has one.
    pub publisher: Option<PublisherTc>,
}

/// The publisher's own purposes (the Publisher TC segment).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PublisherTc {
    /// TCF purposes consented to for the publisher (1..=24).
    pub purpose_consents: Vec<u8>,
    /// TCF purposes whose legitimate interest the publisher established, not objected to.
    pub purpose_legitimate_interests: Vec<u8>,
    /// The publisher's custom purposes consented to (1..=63).
    pub custom_purpose_consents: Vec<u8>,
    /// The publisher's custom purposes on legitimate interest, not objected to.
    pub custom_purpose_legitimate_interests: Vec<u8>,
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
    let raw = raw.trim();
    if raw.is_empty() || raw.len() > 8192 {
        return Err(PolicyError::MalformedTcString("empty or over 8 KB".into()));
    }
    let mut segments = raw.split('.');
    let core = segments.next().unwrap_or_default().trim_end_matches('=');
    if core.is_empty() || core.len() > 4096 {
        return Err(PolicyError::MalformedTcString("empty or over 4 KB".into()));
    }
    let bytes = unbase64(core)?;
    let mut tc = decode_core(&bytes)?;
    for segment in segments {
        let bytes = unbase64(segment.trim_end_matches('='))?;
        let mut bits = Bits {
            bytes: &bytes,
            pos: 0,
        };
        if bits.take(3)? == 3 {
            if tc.publisher.is_some() {
                return Err(PolicyError::MalformedTcString(
                    "two Publisher TC segments".into(),
                ));
            }
            tc.publisher = Some(decode_publisher(&mut bits)?);
        }
    }
    Ok(tc)
}

fn unbase64(segment: &str) -> Result<Vec<u8>, PolicyError> {
    base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(segment)
        .map_err(|e| PolicyError::MalformedTcString(format!("not base64url: {e}")))
}

/// The Publisher TC segment after its type: the publisher's purposes, then its custom ones.
fn decode_publisher(bits: &mut Bits<'_>) -> Result<PublisherTc, PolicyError> {
    let purpose_consents = bits.flags(24)?;
    let purpose_legitimate_interests = bits.flags(24)?;
    let custom = bits.take(6)? as usize;
    Ok(PublisherTc {
        purpose_consents,
        purpose_legitimate_interests,
        custom_purpose_consents: bits.flags(custom)?,
        custom_purpose_legitimate_interests: bits.flags(custom)?,
    })
}

fn decode_core(bytes: &[u8]) -> Result<TcString, PolicyError> {
    let mut bits = Bits { bytes, pos: 0 };
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
        publisher: None,
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

    /// Made with the IAB Tech Lab's @iabtcf/core 1.5.6 (`TCString.encode` of a model with
    /// core purposes 1 and 2, publisher purposes 1, 3 and 7, publisher legitimate interests 2
    /// and 8, two custom purposes of which the second is consented to; segments core and
    /// Publisher TC), whose own decoder reports the values below.
    #[test]
    fn decodes_the_publisher_tc_segment() {
        let tc =
            decode("CP-oB1AP-oB1AAKACBENCWEgAMAAAAAAAAqIAAAAAAAA.dEAACCAAASAA").expect("decodes");
        assert_eq!(tc.cmp_id, 10);
        assert_eq!(tc.publisher_country, "FR");
        assert_eq!(tc.purpose_consents, [1, 2]);
        let publisher = tc.publisher.expect("a Publisher TC segment");
        assert_eq!(publisher.purpose_consents, [1, 3, 7]);
        assert_eq!(publisher.purpose_legitimate_interests, [2, 8]);
        assert_eq!(publisher.custom_purpose_consents, [2]);
        assert!(publisher.custom_purpose_legitimate_interests.is_empty());
        // Without it, there is none.
        let core = decode("CP-oB1AP-oB1AAKACBENCWEgAMAAAAAAAAqIAAAAAAAA").expect("core");
        assert!(core.publisher.is_none());
        // A truncated segment is refused, not read short.
        assert!(decode("CP-oB1AP-oB1AAKACBENCWEgAMAAAAAAAAqIAAAAAAAA.dEAA").is_err());
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
