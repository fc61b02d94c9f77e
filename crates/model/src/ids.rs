use std::fmt;

/// Longest identifier we accept; Segment documents no limit, but an id longer than this is a
/// bug or an attack, and it would bloat every index it sits in.
const MAX_ID_LEN: usize = 512;

fn clean_id(raw: &str) -> Option<String> {
    let trimmed = raw.trim();
    (!trimmed.is_empty() && trimmed.len() <= MAX_ID_LEN && !trimmed.contains('\0'))
        .then(|| trimmed.to_owned())
}

macro_rules! string_id {
    ($(#[$doc:meta])* $name:ident) => {
        $(#[$doc])*
        #[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub struct $name(String);

        impl $name {
            /// Accepts a non-empty id of at most 512 bytes without NUL, trimmed of whitespace.
            pub fn parse(raw: &str) -> Option<Self> {
                clean_id(raw).map($name)
            }

            /// The id as text.
            pub fn as_str(&self) -> &str {
                &self.0
            }
        }

        impl AsRef<str> for $name {
            fn as_ref(&self) -> &str {
                &self.0
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }
    };
}

string_id!(
    /// The sender's unique id of an event; retries carry the same one, which is what makes
    /// ingestion exactly-once.
    MessageId
);
string_id!(
    /// The business's own, stable id of a known customer (`userId`).
    UserId
);
string_id!(
    /// A device- or cookie-scoped id for a visitor who may not be known yet (`anonymousId`).
    AnonymousId
);
string_id!(
    /// Consentric's own id of a profile; survives identity merges (the merged-away id redirects).
    ProfileId
);

/// Which namespace an identity value lives in; the same string may be a user id in one and an
/// anonymous id in the other, and they must not be confused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum IdentityKind {
    /// A `userId`.
    UserId,
    /// An `anonymousId`.
    AnonymousId,
}

impl IdentityKind {
    /// Spelling in storage and on the wire.
    pub fn as_str(self) -> &'static str {
        match self {
            IdentityKind::UserId => "user_id",
            IdentityKind::AnonymousId => "anonymous_id",
        }
    }

    /// Inverse of [`IdentityKind::as_str`].
    pub fn parse(raw: &str) -> Option<Self> {
        match raw {
            "user_id" | "userId" => Some(IdentityKind::UserId),
            "anonymous_id" | "anonymousId" => Some(IdentityKind::AnonymousId),
            _ => None,
        }
    }
}

/// One node of the identity graph: a kind and a value.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Identity {
    /// The namespace.
    pub kind: IdentityKind,
    /// The value, already validated as an id.
    pub value: String,
}

impl Identity {
    /// A known customer's identity.
    pub fn user(id: &UserId) -> Self {
        Identity {
            kind: IdentityKind::UserId,
            value: id.as_str().to_owned(),
        }
    }

    /// A visitor's identity.
    pub fn anonymous(id: &AnonymousId) -> Self {
        Identity {
            kind: IdentityKind::AnonymousId,
            value: id.as_str().to_owned(),
        }
    }
}

impl fmt::Display for Identity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.kind.as_str(), self.value)
    }
}
