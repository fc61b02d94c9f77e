//! Reads that must agree with each other, made on one snapshot of the database: a decision
//! finds its customer, reads their consent and, with the grant the policy room makes from it,
//! their facts, all as of one moment (on SQLite; PostgreSQL reads statement by statement, see
//! `Backend::read`). One read transaction instead of one per read is also cheaper: SQLite
//! checks the WAL, and drops a stale page cache, once.

use consentric_model::{Identity, ProfileId};
use consentric_policy::Grant;

use crate::backend::Conn;
use crate::error::StoreError;
use crate::lifecycle_tx::{purchases_of, stage_of};
use crate::personalize_tx::{interactions_of, DecisionFacts};
use crate::records::ConsentRow;
use crate::sealing::Sealer;
use crate::store::Store;
use crate::tx;
use crate::StageRow;

/// An open read transaction; see [`Store::snapshot`].
pub struct Snapshot<'a> {
    conn: &'a mut dyn Conn,
    sealer: &'a Sealer,
}

impl Store {
    /// Runs `work` on one snapshot of the database. For a few point reads (a decision's, a
    /// profile look-up): on SQLite it may hold the writer's connection while it runs, so
    /// `work` must be short and must not write.
    ///
    /// # Errors
    /// Database faults, and whatever `work` returns.
    pub fn snapshot<T>(
        &self,
        work: impl FnOnce(&mut Snapshot<'_>) -> Result<T, StoreError>,
    ) -> Result<T, StoreError> {
        let sealer = Sealer::new(self.vault_arc());
        self.read_short(|conn| {
            work(&mut Snapshot {
                conn,
                sealer: &sealer,
            })
        })
    }
}

impl Snapshot<'_> {
    /// The profile an identity belongs to.
    ///
    /// # Errors
    /// Database faults.
    pub fn find_identity(&mut self, identity: &Identity) -> Result<Option<ProfileId>, StoreError> {
        tx::find_identity(self.conn, self.sealer, identity)
    }

    /// Follows merges: the profile that `id` is now (itself if never merged away), or `None`
    /// if no such profile exists.
    ///
    /// # Errors
    /// Database faults.
    pub fn resolve_profile(&mut self, id: &ProfileId) -> Result<Option<ProfileId>, StoreError> {
        if let Some(into) = tx::merged_into(self.conn, id)? {
            return Ok(Some(into));
        }
        Ok(tx::profile(self.conn, id)?.map(|p| p.profile_id))
    }

    /// A profile's consent ledger, in the order it was written.
    ///
    /// # Errors
    /// Database faults.
    pub fn consent(&mut self, id: &ProfileId) -> Result<Vec<ConsentRow>, StoreError> {
        tx::consent_of(self.conn, id)
    }

    /// What a decision reads about the customer `grant` opens: their interactions, and their
    /// stage and purchase days when asked (the caller asks only when the grant's purpose may
    /// use them).
    ///
    /// # Errors
    /// Database faults.
    pub fn decision_facts(
        &mut self,
        grant: &Grant,
        with_stage: bool,
        with_purchases: bool,
    ) -> Result<DecisionFacts, StoreError> {
        let p = grant.subject();
        Ok(DecisionFacts {
            interactions: interactions_of(self.conn, p)?,
            stage: if with_stage {
                stage_of(self.conn, p)?
            } else {
                None
            },
            purchases: if with_purchases {
                purchases_of(self.conn, p)?
            } else {
                Vec::new()
            },
        })
    }

    /// The current stage of the customer `grant` opens.
    ///
    /// # Errors
    /// Database faults.
    pub fn stage(&mut self, grant: &Grant) -> Result<Option<StageRow>, StoreError> {
        stage_of(self.conn, grant.subject())
    }
}
