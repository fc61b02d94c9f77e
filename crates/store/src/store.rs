use std::path::Path;
use std::sync::Arc;

use consentric_vault::Vault;

use consentric_model::{Identity, ProfileId};

use crate::access::Opens;
use crate::backend::{Backend, BackendKind, Param};
use crate::error::StoreError;
use crate::postgres_backend::PostgresBackend;
use crate::records::{
    ApiKeyRecord, AuditRow, ConsentRow, EventRecord, IdentityLinkRecord, IdentityRecord,
    ProfileRecord, TraitRecord,
};
use crate::sealing::Sealer;
use crate::sql;
use crate::sqlite_backend::{SqliteBackend, SqliteOptions};
use crate::tx::{self, WriteTx};

/// The profile a grant opens. The personal-data reads below take a grant ([`Opens`]) instead
/// of a profile id, so they cannot be called without one: a purpose's from the policy gate, or
/// an access grant that only the audit writer makes.
fn subject(grant: &impl Opens) -> Result<ProfileId, StoreError> {
    grant.profile_id()
}

/// The typed store the engine talks to, whatever database is behind it.
const BUMP_POPULATION_EPOCH: &str = "UPDATE population_epoch SET n = n + 1 WHERE id = 1";

/// A committed transaction that may not be on stable storage yet (see
/// [`Store::write_unflushed`]); pass it to [`Store::flush`] before acknowledging anything.
#[must_use = "a commit must be flushed before it is acknowledged"]
#[derive(Debug)]
pub struct Unflushed(Option<u64>);

impl Unflushed {
    /// Nothing left to flush: no transaction was committed, or each one was flushed already.
    pub fn nothing() -> Self {
        Unflushed(None)
    }
}

pub struct Store {
    pub(crate) backend: Box<dyn Backend>,
    /// Seals personal columns (event payloads, trait values); `None` stores them in the clear
    /// (benchmarks of the vault's cost only).
    pub(crate) vault: Option<Arc<Vault>>,
}

impl Store {
    /// Wraps a backend and brings its schema up to date.
    ///
    /// # Errors
    /// If a migration fails or the schema is newer than this build.
    pub fn new(backend: Box<dyn Backend>) -> Result<Self, StoreError> {
        backend.migrate()?;
        Ok(Store {
            backend,
            vault: None,
        })
    }

    /// The embedded default: `consentric.db` in `data_dir`.
    ///
    /// # Errors
    /// If the directory or file cannot be created or migrated.
    pub fn open_sqlite(data_dir: &Path, options: SqliteOptions) -> Result<Self, StoreError> {
        let backend = SqliteBackend::open(&data_dir.join("consentric.db"), options)?;
        Store::new(Box::new(backend))
    }

    /// A PostgreSQL database at `url`, with at most `pool_size` connections for work.
    ///
    /// # Errors
    /// If the server cannot be reached or migrated.
    pub fn connect_postgres(url: &str, pool_size: usize) -> Result<Self, StoreError> {
        Store::new(Box::new(PostgresBackend::connect(url, pool_size)?))
    }

    /// This store with personal columns sealed by `vault` from now on.
    pub fn with_vault(mut self, vault: Arc<Vault>) -> Self {
        self.vault = Some(vault);
        self
    }

    pub(crate) fn vault_arc(&self) -> Option<Arc<Vault>> {
        self.vault.clone()
    }

    /// The vault sealing this store's personal columns, if any.
    pub fn vault(&self) -> Option<&Vault> {
        self.vault.as_deref()
    }

    /// See [`Backend::checkpoint`]: after an erasure, nothing of it stays in the log.
    ///
    /// # Errors
    /// Database faults.
    pub fn checkpoint(&self) -> Result<(), StoreError> {
        self.backend.checkpoint()
    }

    /// What other processes on this database announce from now on; `None` on SQLite.
    ///
    /// # Errors
    /// The listening connection cannot be opened.
    pub fn listen(&self) -> Result<Option<Box<dyn crate::backend::ChangeFeed>>, StoreError> {
        self.backend.listen()
    }

    /// Which database is behind this store.
    pub fn kind(&self) -> BackendKind {
        self.backend.kind()
    }

    /// Runs `work` in one transaction. If it returns `Err`, nothing it did is kept and its
    /// error is returned as is.
    ///
    /// # Errors
    /// The closure's error, or a store error converted into `E`.
    pub fn write<T, E: From<StoreError>>(
        &self,
        work: impl FnOnce(&mut WriteTx<'_>) -> Result<T, E>,
    ) -> Result<T, E> {
        self.write_with(false, work)
    }

    /// [`Store::write`] for a transaction that rewrites many pages (an erasure, an import's
    /// commit): SQLite gives it a larger page cache for its duration.
    ///
    /// # Errors
    /// The closure's error, or a store error converted into `E`.
    pub fn write_large<T, E: From<StoreError>>(
        &self,
        work: impl FnOnce(&mut WriteTx<'_>) -> Result<T, E>,
    ) -> Result<T, E> {
        self.write_with(true, work)
    }

    /// [`Store::write`] (`large`: [`Store::write_large`]) that returns once the transaction
    /// is committed, perhaps before it is on stable storage, so that a writer serving many
    /// callers can start the next transaction while the disk works. Nothing may be told the
    /// work is done before [`Store::flush`] of the returned [`Unflushed`] has returned.
    ///
    /// # Errors
    /// The closure's error, or a store error converted into `E`.
    pub fn write_unflushed<T, E: From<StoreError>>(
        &self,
        large: bool,
        work: impl FnOnce(&mut WriteTx<'_>) -> Result<T, E>,
    ) -> Result<(T, Unflushed), E> {
        let (out, n) = self.write_inner(large, work)?;
        Ok((out, Unflushed(n)))
    }

    /// Whether a short write begun now should be committed and durable within a fraction of
    /// a millisecond (see [`Backend::writes_are_quick`]); `false` when the database cannot
    /// tell.
    pub fn writes_are_quick(&self) -> bool {
        self.backend.writes_are_quick()
    }

    /// Returns once the commit of a [`Store::write_unflushed`] is on stable storage.
    ///
    /// # Errors
    /// If it could not be made durable: then no one may be told it is.
    pub fn flush(&self, pending: Unflushed) -> Result<(), StoreError> {
        match pending.0 {
            Some(n) => self.backend.flush(n),
            None => Ok(()),
        }
    }

    fn write_with<T, E: From<StoreError>>(
        &self,
        large: bool,
        work: impl FnOnce(&mut WriteTx<'_>) -> Result<T, E>,
    ) -> Result<T, E> {
        let (out, n) = self.write_inner(large, work)?;
        self.flush(Unflushed(n))?;
        Ok(out)
    }

    fn write_inner<T, E: From<StoreError>>(
        &self,
        large: bool,
        work: impl FnOnce(&mut WriteTx<'_>) -> Result<T, E>,
    ) -> Result<(T, Option<u64>), E> {
        let mut work = Some(work);
        let mut output: Option<Result<T, E>> = None;
        let mut sealed = None;
        let mut run = |conn: &mut dyn crate::backend::Conn| {
            let f = work.take().ok_or_else(StoreError::aborted)?;
            crate::fence::check_fence(conn)?;
            let mut tx = WriteTx {
                conn,
                sealer: Sealer::new(self.vault.clone()),
                population_changed: false,
                audit_tail: None,
            };
            match f(&mut tx) {
                Ok(v) => {
                    if tx.population_changed {
                        tx.conn.exec(BUMP_POPULATION_EPOCH, &[])?;
                    }
                    output = Some(Ok(v));
                    sealed = Some(tx.sealer);
                    Ok(())
                }
                Err(e) => {
                    output = Some(Err(e));
                    Err(StoreError::aborted())
                }
            }
        };
        let result = self.backend.transaction_unflushed(large, &mut run);
        if result.is_ok() {
            if let Some(s) = sealed {
                s.committed();
            }
        }
        match (result, output) {
            (Ok(n), Some(out)) => out.map(|v| (v, n)),
            (Err(_), Some(Err(e))) => Err(e),
            (Err(e), _) => Err(e.into()),
            (Ok(_), None) => Err(StoreError::aborted().into()),
        }
    }

    /// A number that changes with every commit that creates, merges or deletes a profile or
    /// writes the consent ledger — across processes, since it lives in the database. Whatever
    /// is derived from who exists and what they consented to may be reused while it stands.
    ///
    /// # Errors
    /// Database faults.
    pub fn population_epoch(&self) -> Result<i64, StoreError> {
        self.read(|c| {
            c.query("SELECT n FROM population_epoch WHERE id = 1", &[])?
                .into_iter()
                .next()
                .and_then(|r| r.into_iter().next())
                .map_or(Ok(0), |v| v.int())
        })
    }

    pub(crate) fn read<T>(
        &self,
        work: impl FnOnce(&mut dyn crate::backend::Conn) -> Result<T, StoreError>,
    ) -> Result<T, StoreError> {
        self.read_with(false, work)
    }

    /// [`Store::read`] for a few point reads (see [`Backend::read_short`]).
    pub(crate) fn read_short<T>(
        &self,
        work: impl FnOnce(&mut dyn crate::backend::Conn) -> Result<T, StoreError>,
    ) -> Result<T, StoreError> {
        self.read_with(true, work)
    }

    fn read_with<T>(
        &self,
        short: bool,
        work: impl FnOnce(&mut dyn crate::backend::Conn) -> Result<T, StoreError>,
    ) -> Result<T, StoreError> {
        let mut work = Some(work);
        let mut output = None;
        let mut run = |conn: &mut dyn crate::backend::Conn| {
            let f = work.take().ok_or_else(StoreError::aborted)?;
            output = Some(f(conn)?);
            Ok(())
        };
        match short {
            true => self.backend.read_short(&mut run)?,
            false => self.backend.read(&mut run)?,
        }
        output.ok_or_else(StoreError::aborted)
    }

    /// Follows merges: the profile that `id` is now (itself if never merged away), or `None`
    /// if no such profile exists.
    ///
    /// # Errors
    /// Database faults.
    pub fn resolve_profile(&self, id: &ProfileId) -> Result<Option<ProfileId>, StoreError> {
        self.snapshot(|s| s.resolve_profile(id))
    }

    /// The profile an identity belongs to.
    ///
    /// # Errors
    /// Database faults.
    pub fn find_identity(&self, identity: &Identity) -> Result<Option<ProfileId>, StoreError> {
        self.snapshot(|s| s.find_identity(identity))
    }

    /// The row (counters) of the profile `grant` opens.
    ///
    /// # Errors
    /// Database faults.
    pub fn profile(&self, grant: &impl Opens) -> Result<Option<ProfileRecord>, StoreError> {
        let id = subject(grant)?;
        self.read(|c| tx::profile(c, &id))
    }

    /// The profiles merged into `id`.
    ///
    /// # Errors
    /// Database faults.
    pub fn merged_from(&self, id: &ProfileId) -> Result<Vec<ProfileId>, StoreError> {
        self.read(|c| tx::merged_from(c, id))
    }

    /// The traits, by name, of the profile `grant` opens; the caller keeps only what the grant
    /// permits.
    ///
    /// # Errors
    /// Database faults.
    pub fn traits(&self, grant: &impl Opens) -> Result<Vec<TraitRecord>, StoreError> {
        let id = subject(grant)?;
        self.read(|c| tx::traits_of(c, &mut Sealer::new(self.vault.clone()), &id))
    }

    /// The identities of the profile `grant` opens.
    ///
    /// # Errors
    /// Database faults.
    pub fn identities(&self, grant: &impl Opens) -> Result<Vec<IdentityRecord>, StoreError> {
        let id = subject(grant)?;
        self.read(|c| tx::identities_of(c, &mut Sealer::new(self.vault.clone()), &id))
    }

    /// The identity-graph edges leaving the identities of the profile `grant` opens.
    ///
    /// # Errors
    /// Database faults.
    pub fn identity_links(
        &self,
        grant: &impl Opens,
    ) -> Result<Vec<IdentityLinkRecord>, StoreError> {
        let id = subject(grant)?;
        self.read(|c| tx::links_of(c, &mut Sealer::new(self.vault.clone()), &id))
    }

    /// The latest `limit` events, newest first, of the profile `grant` opens; the caller
    /// prunes them to what the grant permits.
    ///
    /// # Errors
    /// Database faults.
    pub fn events(&self, grant: &impl Opens, limit: u32) -> Result<Vec<EventRecord>, StoreError> {
        let id = subject(grant)?;
        self.read(|c| {
            tx::events_of(
                c,
                &mut Sealer::new(self.vault.clone()),
                &id,
                i64::from(limit),
            )
        })
    }

    /// How many events are stored.
    ///
    /// # Errors
    /// Database faults.
    pub fn event_count(&self) -> Result<u64, StoreError> {
        self.read(|c| tx::count(c, sql::EVENT_COUNT))
    }

    /// How many (unmerged) profiles exist.
    ///
    /// # Errors
    /// Database faults.
    pub fn profile_count(&self) -> Result<u64, StoreError> {
        self.read(|c| tx::count(c, sql::PROFILE_COUNT))
    }

    /// The key whose secret hashes to `hash`.
    ///
    /// # Errors
    /// Database faults.
    pub fn api_key_by_hash(&self, hash: &str) -> Result<Option<ApiKeyRecord>, StoreError> {
        self.read(|c| {
            c.query(sql::API_KEY_BY_HASH, &[Param::Text(hash)])?
                .into_iter()
                .next()
                .map(tx::api_key)
                .transpose()
        })
    }

    /// Every key, oldest first.
    ///
    /// # Errors
    /// Database faults.
    pub fn api_keys(&self) -> Result<Vec<ApiKeyRecord>, StoreError> {
        self.read(|c| {
            c.query(sql::API_KEYS, &[])?
                .into_iter()
                .map(tx::api_key)
                .collect()
        })
    }

    /// A profile's consent ledger, in the order it was written.
    ///
    /// # Errors
    /// Database faults.
    pub fn consent(&self, id: &ProfileId) -> Result<Vec<ConsentRow>, StoreError> {
        self.snapshot(|s| s.consent(id))
    }

    /// Up to `limit` audit records after position `after`, in chain order.
    ///
    /// # Errors
    /// Database faults.
    pub fn audit_page(&self, after: i64, limit: u32) -> Result<Vec<AuditRow>, StoreError> {
        self.read(|c| tx::audit_page(c, after, i64::from(limit)))
    }

    /// The latest `limit` audit records before position `before`, newest first: a page of
    /// the log walked backwards.
    ///
    /// # Errors
    /// Database faults.
    pub fn audit_latest(&self, before: i64, limit: u32) -> Result<Vec<AuditRow>, StoreError> {
        self.read(|c| tx::audit_latest(c, before, i64::from(limit)))
    }

    /// The audit records about `subject` after position `after`, oldest first.
    ///
    /// # Errors
    /// Database faults.
    pub fn audit_of(
        &self,
        subject: &str,
        after: i64,
        limit: u32,
    ) -> Result<Vec<AuditRow>, StoreError> {
        self.read(|c| tx::audit_of(c, subject, after, i64::from(limit)))
    }

    /// A page of the events of the profile `grant` opens, in storage order after position
    /// `after_seq`: how an export walks a long history without holding it.
    ///
    /// # Errors
    /// Database faults.
    pub fn events_page(
        &self,
        grant: &impl Opens,
        after_seq: i64,
        limit: u32,
    ) -> Result<Vec<EventRecord>, StoreError> {
        let id = subject(grant)?;
        self.read(|c| {
            tx::events_page(
                c,
                &mut Sealer::new(self.vault.clone()),
                &id,
                after_seq,
                i64::from(limit),
            )
        })
    }

    /// Whether the database answers (for `/readyz`).
    ///
    /// # Errors
    /// The database's fault, if it does not.
    pub fn ping(&self) -> Result<(), StoreError> {
        self.read(|c| c.query("SELECT 1", &[]).map(drop))
    }
}

#[cfg(test)]
mod tests {
    use crate::{SqliteOptions, Store, StoreError};
    use consentric_model::ProfileId;

    /// Outside the bench's build, a store without a vault writes no personal data: creating a
    /// profile (its data key) and storing an event payload are both refused, and nothing of
    /// the transaction stays.
    #[cfg(not(feature = "bench-reference"))]
    #[test]
    fn a_store_without_a_vault_refuses_personal_data() {
        use consentric_model::MessageId;
        let dir = tempfile::tempdir().expect("dir");
        let store = Store::open_sqlite(dir.path(), SqliteOptions::default()).expect("store");
        let who = ProfileId::parse("p-1").expect("id");
        let refused = store.write(|tx| tx.create_profile(&who, 1));
        assert!(matches!(refused, Err(StoreError::Vault(_))), "{refused:?}");
        let id = MessageId::parse("m-1").expect("id");
        let event = crate::NewEvent {
            message_id: &id,
            profile_id: &who,
            call_type: "track",
            event_name: Some("Order Completed"),
            ts: 1,
            received_at: 1,
            payload: r#"{"email":"ada@example.com"}"#,
        };
        let refused = store.write(|tx| tx.insert_event(&event));
        assert!(matches!(refused, Err(StoreError::Vault(_))), "{refused:?}");
        assert_eq!(store.event_count().expect("count"), 0);
        assert_eq!(store.profile_count().expect("count"), 0);
    }
}
