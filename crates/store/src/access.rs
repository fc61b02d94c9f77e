//! The two keys to a customer's rows. A purpose's [`Grant`] comes from the policy gate and opens
//! what that purpose may use; an [`AccessGrant`] opens everything held about one customer, for
//! access rather than processing (the operator's administration, the customer's own access
//! request). An access grant has no public constructor: only [`WriteTx::audit_access`] makes
//! one, in the transaction that appends its audit record, so a read of everything about a
//! customer cannot happen without a record of who read it.
//!
//! [`WriteTx::audit_access`]: crate::WriteTx::audit_access

use consentric_model::ProfileId;
use consentric_policy::Grant;

use crate::error::StoreError;

/// Permission to read everything held about one customer, made only together with its audit
/// record.
#[derive(Debug, PartialEq, Eq)]
pub struct AccessGrant {
    subject: ProfileId,
    at: i64,
    audit_seq: i64,
}

impl AccessGrant {
    /// Made only by the audit writer, after it appended record `audit_seq`.
    pub(crate) fn recorded(subject: ProfileId, at: i64, audit_seq: i64) -> Self {
        AccessGrant {
            subject,
            at,
            audit_seq,
        }
    }

    /// Whose data it opens.
    pub fn subject(&self) -> &ProfileId {
        &self.subject
    }

    /// When it was opened (ms), the time of its audit record.
    pub fn at(&self) -> i64 {
        self.at
    }

    /// The audit record that made it.
    pub fn audit_seq(&self) -> i64 {
        self.audit_seq
    }
}

mod sealed {
    pub trait Sealed {}
    impl Sealed for consentric_policy::Grant {}
    impl Sealed for super::AccessGrant {}
}

/// What the store's reads of one customer's rows take: a purpose's grant or an access grant,
/// and nothing else (the trait is sealed).
pub trait Opens: sealed::Sealed {
    /// The profile it opens.
    ///
    /// # Errors
    /// [`StoreError::NotAProfile`] for a grant whose subject is not a profile id.
    fn profile_id(&self) -> Result<ProfileId, StoreError>;
}

impl Opens for Grant {
    fn profile_id(&self) -> Result<ProfileId, StoreError> {
        ProfileId::parse(self.subject())
            .ok_or_else(|| StoreError::NotAProfile(self.subject().to_owned()))
    }
}

impl Opens for AccessGrant {
    fn profile_id(&self) -> Result<ProfileId, StoreError> {
        Ok(self.subject.clone())
    }
}
