//! What the ingest writer learnt in earlier transactions: which profile an identity belongs to
//! and each profile's consent ledger (raw and folded). A returning customer's events then cost
//! no look-ups before their insert.
//!
//! The cache is only as good as the knowledge that nobody else wrote since it was filled. Each
//! ingest transaction reads the store's [`ChangeToken`]; if it does not directly follow the
//! token of the transaction that last filled the cache (another write in this process — a
//! consent change, a retention sweep, an audited read — or a commit by another process on the
//! same SQLite file), the cache is emptied before it is used. A store that cannot tell
//! (PostgreSQL, where other instances may write) never caches. What a transaction learns is
//! absorbed only after it commits, so a rolled-back transaction leaves nothing behind.

use std::collections::{HashMap, HashSet};

use consentric_model::{Identity, ProfileId};
use consentric_policy::ConsentState;
use consentric_store::{ChangeToken, ConsentRow};

use crate::lifecycle::CustomerFacts;

/// Most identities (and, separately, profiles' ledgers) kept; past it the cache starts over.
/// About 150 bytes an identity: tens of megabytes at most.
const MAX_ENTRIES: usize = 200_000;

/// The cross-transaction cache. Only the group-commit leader touches it, one transaction at a
/// time.
#[derive(Default)]
pub(crate) struct IngestCache {
    token: Option<ChangeToken>,
    pub(crate) identities: HashMap<Identity, ProfileId>,
    pub(crate) consent: HashMap<ProfileId, Vec<ConsentRow>>,
    pub(crate) folded: HashMap<ProfileId, ConsentState>,
    /// What stage placement knows of each customer (see `lifecycle::facts`).
    pub(crate) facts: HashMap<ProfileId, CustomerFacts>,
}

/// What one committed transaction learnt, to be absorbed into the cache.
#[derive(Default)]
pub(crate) struct Learnt {
    pub identities: HashMap<Identity, ProfileId>,
    pub consent: HashMap<ProfileId, Vec<ConsentRow>>,
    pub folded: HashMap<ProfileId, ConsentState>,
    /// Profiles merged away in the transaction (they no longer exist).
    pub merged_from: HashSet<ProfileId>,
    /// Profiles that received a merge (their ledgers changed).
    pub merged_into: HashSet<ProfileId>,
    pub facts: HashMap<ProfileId, CustomerFacts>,
    /// Profiles whose lifecycle rows changed behind the facts' back (a consent change may
    /// delete a stage): what the cache knows of them is dropped.
    pub facts_dirty: HashSet<ProfileId>,
}

impl IngestCache {
    /// Empties the cache unless the transaction holding `token` directly follows the one that
    /// last filled it. Returns whether the cache may be used.
    pub(crate) fn validate(&mut self, token: Option<ChangeToken>) -> bool {
        let valid = match (&self.token, &token) {
            (Some(prev), Some(now)) => now.follows(prev),
            _ => false,
        };
        if !valid {
            self.clear();
        }
        token.is_some()
    }

    /// Forgets everything.
    pub(crate) fn clear(&mut self) {
        self.token = None;
        self.identities.clear();
        self.consent.clear();
        self.folded.clear();
        self.facts.clear();
    }

    /// Takes in what a committed transaction (holding `token`) learnt.
    pub(crate) fn absorb(&mut self, token: Option<ChangeToken>, learnt: Learnt) {
        let Some(token) = token else {
            self.clear();
            return;
        };
        if !learnt.merged_from.is_empty() {
            self.identities
                .retain(|_, p| !learnt.merged_from.contains(p));
        }
        for p in learnt.merged_from.iter().chain(&learnt.merged_into) {
            self.consent.remove(p);
            self.folded.remove(p);
            self.facts.remove(p);
        }
        for p in &learnt.facts_dirty {
            self.facts.remove(p);
        }
        self.facts.extend(learnt.facts);
        if self.facts.len() > MAX_ENTRIES {
            self.facts.clear();
        }
        self.identities.extend(learnt.identities);
        self.consent.extend(learnt.consent);
        self.folded.extend(learnt.folded);
        if self.identities.len() > MAX_ENTRIES {
            self.identities.clear();
        }
        if self.consent.len() > MAX_ENTRIES || self.folded.len() > MAX_ENTRIES {
            self.consent.clear();
            self.folded.clear();
        }
        self.token = Some(token);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn token(data_version: i64, seq: u64) -> Option<ChangeToken> {
        Some(ChangeToken { data_version, seq })
    }

    fn filled(at: Option<ChangeToken>) -> IngestCache {
        let mut c = IngestCache::default();
        let mut learnt = Learnt::default();
        let p = ProfileId::parse("prof_a").expect("id");
        let id = Identity {
            kind: consentric_model::IdentityKind::UserId,
            value: "u1".into(),
        };
        learnt.identities.insert(id, p.clone());
        learnt.consent.insert(p, Vec::new());
        c.absorb(at, learnt);
        c
    }

    #[test]
    fn kept_only_when_nothing_else_wrote_in_between() {
        let mut c = filled(token(7, 10));
        assert!(c.validate(token(7, 11)));
        assert_eq!(c.identities.len(), 1, "the next transaction may use it");

        let mut c = filled(token(7, 10));
        c.validate(token(7, 12));
        assert!(c.identities.is_empty(), "another write in this process");

        let mut c = filled(token(7, 10));
        c.validate(token(8, 11));
        assert!(c.identities.is_empty(), "a commit by another connection");

        let mut c = filled(token(7, 10));
        assert!(!c.validate(None), "a store that cannot tell never caches");
        assert!(c.identities.is_empty());
    }

    #[test]
    fn merges_evict_what_pointed_at_the_merged_profiles() {
        let mut c = filled(token(1, 1));
        let a = ProfileId::parse("prof_a").expect("id");
        let mut learnt = Learnt::default();
        learnt.merged_from.insert(a.clone());
        c.absorb(token(1, 2), learnt);
        assert!(c.identities.is_empty());
        assert!(!c.consent.contains_key(&a));
    }
}
