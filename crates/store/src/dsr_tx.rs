//! Data-subject requests: who asked (their identity as a blind index, and sealed with their
//! contact address under the request's own data key, shredded when the request is done), what
//! for, under which law, by when, and where the request stands.

use consentric_model::Identity;

use crate::backend::{Cell, Conn, Param};
use crate::error::StoreError;
use crate::sealing::{identity_field, Sealer};
use crate::sql;
use crate::store::Store;
use crate::tx::WriteTx;

/// A request as stored, with its identity and contact opened (`None` once shredded).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DsrRow {
    /// `dsr_…`.
    pub request_id: String,
    /// `access`, `erasure`, `restriction`.
    pub kind: String,
    /// `gdpr` or `ccpa`.
    pub regime: String,
    /// The identity named, while the request's key exists.
    pub identity: Option<Identity>,
    /// Where the verification code went, while the request's key exists.
    pub contact: Option<String>,
    /// `received`, `verified`, `in_progress`, `completed`, `rejected`.
    pub status: String,
    /// When it arrived (ms).
    pub received_at: i64,
    /// When it must be answered (ms), extensions included.
    pub due_at: i64,
    /// Days of extension granted.
    pub extended: i64,
    /// SHA-256 of the request id and the one-time code.
    pub code_hash: String,
    /// When the code stops working (ms).
    pub code_expires_at: i64,
    /// Wrong codes tried.
    pub attempts: i64,
    /// Last change (ms).
    pub updated_at: i64,
    /// What processing produced (JSON), or why it was rejected.
    pub outcome: Option<String>,
}

/// A new request.
#[derive(Debug, Clone)]
pub struct NewDsr<'a> {
    /// Its id, which also names its data key.
    pub request_id: &'a str,
    /// What is asked.
    pub kind: &'a str,
    /// Under which law.
    pub regime: &'a str,
    /// Whom it is about.
    pub identity: &'a Identity,
    /// Where the code goes.
    pub contact: &'a str,
    /// Arrival (ms).
    pub received_at: i64,
    /// Deadline (ms).
    pub due_at: i64,
    /// See [`DsrRow::code_hash`].
    pub code_hash: &'a str,
    /// See [`DsrRow::code_expires_at`].
    pub code_expires_at: i64,
}

const CONTACT_FIELD: &str = "dsr:contact";

/// What [`WriteTx::scrub_dsrs_of`] scrubbed.
#[derive(Debug, Default)]
pub struct Scrubbed {
    /// The requests' ids (and their keys' names).
    pub requests: Vec<String>,
    /// The contact addresses they held.
    pub contacts: Vec<String>,
}

impl WriteTx<'_> {
    /// Stores a new request, its identity and contact sealed under a key of its own.
    pub fn insert_dsr(&mut self, r: &NewDsr<'_>) -> Result<(), StoreError> {
        let identity_sealed = self.sealer.seal(
            self.conn,
            r.request_id,
            &identity_field(r.identity.kind.as_str()),
            &r.identity.value,
            r.received_at,
        )?;
        let contact_sealed = self.sealer.seal(
            self.conn,
            r.request_id,
            CONTACT_FIELD,
            r.contact,
            r.received_at,
        )?;
        let blind = self.sealer.blind(r.identity);
        self.conn
            .exec(
                sql::INSERT_DSR,
                &[
                    Param::Text(r.request_id),
                    Param::Text(r.kind),
                    Param::Text(r.regime),
                    Param::Text(r.identity.kind.as_str()),
                    Param::Text(&blind.value),
                    Param::Text(&identity_sealed),
                    Param::Text(&contact_sealed),
                    Param::Int(r.received_at),
                    Param::Int(r.due_at),
                    Param::Text(r.code_hash),
                    Param::Int(r.code_expires_at),
                ],
            )
            .map(drop)
    }

    /// A request, as this transaction sees it, held against concurrent changes until the
    /// transaction ends (SQLite serialises writers; PostgreSQL locks the row).
    pub fn dsr(&mut self, request_id: &str) -> Result<Option<DsrRow>, StoreError> {
        // Read to be changed: on PostgreSQL the row stays locked until the commit.
        let sql = match self.conn.kind() {
            crate::BackendKind::Sqlite => sql::DSR_BY_ID,
            crate::BackendKind::Postgres => sql::DSR_BY_ID_FOR_UPDATE,
        };
        let rows = self.conn.query(sql, &[Param::Text(request_id)])?;
        let sealer = &mut self.sealer;
        rows.into_iter()
            .next()
            .map(|r| dsr_row(self.conn, sealer, r))
            .transpose()
    }

    /// Updates where a request stands.
    pub fn update_dsr(&mut self, r: &DsrRow) -> Result<(), StoreError> {
        self.conn
            .exec(
                sql::UPDATE_DSR,
                &[
                    Param::Text(&r.request_id),
                    Param::Text(&r.status),
                    Param::Int(r.due_at),
                    Param::Int(r.extended),
                    Param::Int(r.attempts),
                    Param::Int(r.updated_at),
                    Param::OptText(r.outcome.as_deref()),
                ],
            )
            .map(drop)
    }

    /// Scrubs every request about a customer being erased, named by their `identities`: each
    /// request's key is destroyed (its identity and contact can no longer be read), its blind
    /// index and code hash are cleared, and an open one is closed with `outcome` (what proves
    /// it was honoured, or why it could not be). Returns the contact addresses the requests
    /// held, opened before their keys went, so that copies elsewhere (an outbox) can be
    /// forgotten too, and the requests' ids (their keys' names).
    pub fn scrub_dsrs_of(
        &mut self,
        identities: &[Identity],
        outcome: &str,
        at: i64,
    ) -> Result<Scrubbed, StoreError> {
        let mut scrubbed = Scrubbed::default();
        for identity in identities {
            let blind = self.sealer.blind(identity);
            let rows = self.conn.query(
                sql::DSRS_OF_IDENTITY,
                &[
                    Param::Text(identity.kind.as_str()),
                    Param::Text(&blind.value),
                ],
            )?;
            for row in rows {
                let mut cells = row.into_iter();
                let (Some(id), Some(contact)) = (cells.next(), cells.next()) else {
                    return Err(StoreError::Corrupt("a request row without its id".into()));
                };
                let (id, contact) = (id.text()?, contact.text()?);
                if let Some(c) = self
                    .sealer
                    .open_if_kept(self.conn, contact, CONTACT_FIELD)?
                {
                    scrubbed.contacts.push(c);
                }
                self.conn.exec(
                    sql::SCRUB_DSR,
                    &[Param::Text(&id), Param::Text(outcome), Param::Int(at)],
                )?;
                self.conn.exec(sql::DELETE_KEYS, &[Param::Text(&id)])?;
                scrubbed.requests.push(id);
            }
        }
        Ok(scrubbed)
    }

    /// Destroys a request's key: its identity and contact can no longer be read.
    pub fn shred_dsr(&mut self, request_id: &str) -> Result<(), StoreError> {
        self.conn
            .exec(sql::DELETE_KEYS, &[Param::Text(request_id)])
            .map(drop)
    }
}

impl Store {
    /// A request, read without a write transaction.
    ///
    /// # Errors
    /// Database faults.
    pub fn dsr(&self, request_id: &str) -> Result<Option<DsrRow>, StoreError> {
        let vault = self.vault_arc();
        self.read(|c| {
            let rows = c.query(sql::DSR_BY_ID, &[Param::Text(request_id)])?;
            let mut sealer = Sealer::new(vault.clone());
            rows.into_iter()
                .next()
                .map(|r| dsr_row(c, &mut sealer, r))
                .transpose()
        })
    }

    /// Requests, oldest deadline first; only those open and due before `due_before` if given.
    ///
    /// # Errors
    /// Database faults.
    pub fn dsr_list(&self, due_before: Option<i64>) -> Result<Vec<DsrRow>, StoreError> {
        let vault = self.vault_arc();
        self.read(|c| {
            let rows = match due_before {
                Some(t) => c.query(sql::DSR_OVERDUE, &[Param::Int(t)])?,
                None => c.query(sql::DSR_ALL, &[])?,
            };
            let mut sealer = Sealer::new(vault.clone());
            rows.into_iter()
                .map(|r| dsr_row(c, &mut sealer, r))
                .collect()
        })
    }
}

fn dsr_row(conn: &mut dyn Conn, sealer: &mut Sealer, row: Vec<Cell>) -> Result<DsrRow, StoreError> {
    if row.len() != 16 {
        return Err(StoreError::Corrupt("dsr row".into()));
    }
    let mut it = row.into_iter();
    let mut next = || {
        it.next()
            .ok_or_else(|| StoreError::Corrupt("dsr row".into()))
    };
    let request_id = next()?.text()?;
    let kind = next()?.text()?;
    let regime = next()?.text()?;
    let identity_kind = next()?.text()?;
    let _blind = next()?.text()?;
    let identity_sealed = next()?.text()?;
    let contact_sealed = next()?.text()?;
    let identity = sealer
        .open_if_kept(conn, identity_sealed, &identity_field(&identity_kind))?
        .map(|value| {
            consentric_model::IdentityKind::parse(&identity_kind)
                .map(|kind| Identity { kind, value })
                .ok_or_else(|| StoreError::Corrupt(format!("identity kind {identity_kind}")))
        })
        .transpose()?;
    let contact = sealer.open_if_kept(conn, contact_sealed, CONTACT_FIELD)?;
    Ok(DsrRow {
        request_id,
        kind,
        regime,
        identity,
        contact,
        status: next()?.text()?,
        received_at: next()?.int()?,
        due_at: next()?.int()?,
        extended: next()?.int()?,
        code_hash: next()?.text()?,
        code_expires_at: next()?.int()?,
        attempts: next()?.int()?,
        updated_at: next()?.int()?,
        outcome: next()?.opt_text()?,
    })
}
