//! An e-mail address as Consentric compares them: trimmed and lower-cased, so that the address
//! a customer types into the privacy centre finds the one their profile holds.

use std::fmt;

/// A plausible e-mail address, normalised: one `@` with something on both sides, a dot in the
/// domain, no spaces or control characters, at most 254 bytes (RFC 5321's path limit).
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct Email(String);

impl Email {
    /// Reads an address, or says nothing: what is not an address is simply not one.
    pub fn parse(raw: &str) -> Option<Self> {
        let s = raw.trim().to_lowercase();
        let (local, domain) = s.split_once('@')?;
        let ok = !local.is_empty()
            && domain.contains('.')
            && !domain.starts_with('.')
            && !domain.ends_with('.')
            && !domain.contains('@')
            && s.len() <= 254
            && !s.chars().any(|c| c.is_whitespace() || c.is_control());
        ok.then_some(Email(s))
    }

    /// The normalised address.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Email {
    // Addresses are personal data: logs and panics show only the domain.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let domain = self.0.split_once('@').map_or("", |(_, d)| d);
        write!(f, "Email(…@{domain})")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn addresses_are_normalised_and_nonsense_is_refused() {
        let e = Email::parse("  Ada.Lovelace@Example.COM ").expect("an address");
        assert_eq!(e.as_str(), "ada.lovelace@example.com");
        assert_eq!(format!("{e:?}"), "Email(…@example.com)");
        for bad in [
            "",
            "ada",
            "@example.com",
            "ada@",
            "ada@localhost",
            "a b@example.com",
            "a@b@example.com",
            "ada@.com",
            "ada@example.",
        ] {
            assert!(Email::parse(bad).is_none(), "{bad:?}");
        }
        assert!(Email::parse(&format!("{}@example.com", "a".repeat(250))).is_none());
    }
}
