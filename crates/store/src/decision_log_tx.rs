//! The decision log: each recorded decision and why it was made, sealed under the customer's
//! key. It is personal data like any other: read through a grant, exported, moved by merges,
//! deleted by erasure and by the withdrawal of the purpose it was kept for, and swept by
//! retention. Later work (journeys, fairness audits) reads the same log.

use consentric_model::ProfileId;

use crate::access::Opens;
use crate::backend::Param;
use crate::error::StoreError;
use crate::sealing::Sealer;
use crate::store::Store;
use crate::tx::{next, take, WriteTx};

const LOG: &str = "INSERT INTO decision_log (profile_id, seq, decided_at, placement, record) VALUES (?1, (SELECT COALESCE(MAX(seq), 0) + 1 FROM decision_log WHERE profile_id = ?1), ?2, ?3, ?4)";
const LATEST: &str = "SELECT seq, decided_at, placement, record FROM decision_log WHERE profile_id = ?1 ORDER BY decided_at DESC, seq DESC LIMIT ?2";
const PAGE: &str = "SELECT seq, decided_at, placement, record FROM decision_log WHERE profile_id = ?1 AND seq > ?2 ORDER BY seq LIMIT ?3";
const SWEEP: &str = "DELETE FROM decision_log WHERE decided_at < ?1";
/// The sealed field's name (bound into each value, so it opens as nothing else).
const FIELD: &str = "decision";

/// One logged decision.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DecisionLogRow {
    /// Its number in the customer's log (1, 2, …).
    pub seq: i64,
    /// When it was made (ms).
    pub decided_at: i64,
    /// Where it was shown.
    pub placement: String,
    /// What was decided and why, as JSON.
    pub record: String,
}

impl WriteTx<'_> {
    /// Appends a decision (`record`, JSON) to the customer's log, sealed under their key.
    pub fn log_decision(
        &mut self,
        profile: &ProfileId,
        at: i64,
        placement: &str,
        record: &str,
    ) -> Result<(), StoreError> {
        let sealed = self
            .sealer
            .seal(self.conn, profile.as_str(), FIELD, record, at)?;
        self.conn
            .exec(
                LOG,
                &[
                    Param::Text(profile.as_str()),
                    Param::Int(at),
                    Param::Text(placement),
                    Param::Text(&sealed),
                ],
            )
            .map(drop)
    }

    /// Forgets the customer's logged decisions (the purpose they were kept for lost its basis).
    pub fn drop_decision_log(&mut self, profile: &ProfileId) -> Result<u64, StoreError> {
        self.conn.exec(
            crate::sql::DELETE_DECISIONS,
            &[Param::Text(profile.as_str())],
        )
    }

    /// Deletes every logged decision made before `before` (ms): retention.
    pub fn sweep_decision_log(&mut self, before: i64) -> Result<u64, StoreError> {
        self.conn.exec(SWEEP, &[Param::Int(before)])
    }
}

impl Store {
    /// Unwraps `profile`'s data key into the vault's cache, on a read connection: a decision
    /// does it while it reads, so that sealing its log record inside the shared write
    /// transaction finds the key there instead of reading and unwrapping it while every
    /// other decision waits for the writer.
    ///
    /// # Errors
    /// Database faults, or a key that does not unwrap.
    pub fn warm_key(&self, profile: &ProfileId) -> Result<(), StoreError> {
        let Some(vault) = self.vault.clone() else {
            return Ok(());
        };
        let id = consentric_vault::KeyId::parse(profile.as_str())?;
        if vault.cached(&id).is_some() {
            return Ok(());
        }
        self.read(|c| {
            let mut sealer = Sealer::new(Some(vault.clone()));
            sealer.key_of(c, &id).map(drop)
        })
    }

    /// The latest `limit` decisions of the customer `grant` opens, newest first.
    ///
    /// # Errors
    /// Database faults, or a value that does not open.
    pub fn decision_log(
        &self,
        grant: &impl Opens,
        limit: u32,
    ) -> Result<Vec<DecisionLogRow>, StoreError> {
        let id = grant.profile_id()?;
        self.decisions(
            LATEST,
            &[Param::Text(id.as_str()), Param::Int(limit.into())],
        )
    }

    /// A page of the decisions of the customer `grant` opens, oldest first, after number
    /// `after_seq`: how an export walks a long log without holding it.
    ///
    /// # Errors
    /// Database faults, or a value that does not open.
    pub fn decision_log_page(
        &self,
        grant: &impl Opens,
        after_seq: i64,
        limit: u32,
    ) -> Result<Vec<DecisionLogRow>, StoreError> {
        let id = grant.profile_id()?;
        self.decisions(
            PAGE,
            &[
                Param::Text(id.as_str()),
                Param::Int(after_seq),
                Param::Int(limit.into()),
            ],
        )
    }

    fn decisions(
        &self,
        sql: &'static str,
        params: &[Param<'_>],
    ) -> Result<Vec<DecisionLogRow>, StoreError> {
        self.read(|c| {
            let mut sealer = Sealer::new(self.vault.clone());
            c.query(sql, params)?
                .into_iter()
                .map(|row| {
                    let mut it = take(row, 4)?;
                    Ok(DecisionLogRow {
                        seq: next(&mut it)?.int()?,
                        decided_at: next(&mut it)?.int()?,
                        placement: next(&mut it)?.text()?,
                        record: sealer.open(c, next(&mut it)?.text()?, FIELD)?,
                    })
                })
                .collect()
        })
    }
}
