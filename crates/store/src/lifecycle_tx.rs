//! Lifecycle rows: purchases by day, the event counts stage rules look at, each customer's
//! stage with its transitions, and fitted model parameters. Derived from events, kept in step
//! by ingest, moved by merges and deleted by erasure. Reads of a customer's rows take a grant.

use std::collections::{BTreeMap, HashMap, HashSet};

use consentric_model::{ProfileId, Stage};
use consentric_policy::Grant;

use crate::backend::{Cell, Conn, Param};
use crate::error::StoreError;
use crate::sql;
use crate::store::Store;
use crate::tx::{consent_row, next, profile_id, take, WriteTx};

const ADD_PURCHASE: &str = "INSERT INTO lifecycle_purchases (profile_id, day, amount) VALUES (?1, ?2, ?3) ON CONFLICT (profile_id, day) DO UPDATE SET amount = lifecycle_purchases.amount + excluded.amount";
const COUNT_EVENT: &str = "INSERT INTO lifecycle_counts (profile_id, event, n) VALUES (?1, ?2, ?3) ON CONFLICT (profile_id, event) DO UPDATE SET n = lifecycle_counts.n + excluded.n";
const FACTS: &str = "SELECT p.first_seen, p.last_seen, p.order_count, p.revenue, t.to_stage, t.at, t.rule, t.n, EXISTS (SELECT 1 FROM lifecycle_counts c WHERE c.profile_id = p.profile_id) FROM profiles p LEFT JOIN lifecycle_transitions t ON t.profile_id = p.profile_id AND t.n = (SELECT MAX(l.n) FROM lifecycle_transitions l WHERE l.profile_id = p.profile_id) WHERE p.profile_id = ?1";
const COUNTS_OF: &str = "SELECT event, n FROM lifecycle_counts WHERE profile_id = ?1";
const ADD_TRANSITION: &str = "INSERT INTO lifecycle_transitions (profile_id, n, from_stage, to_stage, at, rule) VALUES (?1, ?2, ?3, ?4, ?5, ?6)";
const STAGE_OF: &str = "SELECT to_stage, at, rule, n FROM lifecycle_transitions WHERE profile_id = ?1 ORDER BY n DESC LIMIT 1";
const TRANSITIONS_OF: &str = "SELECT from_stage, to_stage, at, rule FROM lifecycle_transitions WHERE profile_id = ?1 ORDER BY n";
const ALL_TRANSITIONS: &str = "SELECT profile_id, from_stage, to_stage, at, rule FROM lifecycle_transitions ORDER BY profile_id, n";
const PURCHASES_OF: &str =
    "SELECT day, amount FROM lifecycle_purchases WHERE profile_id = ?1 ORDER BY day";
const ALL_PURCHASES: &str =
    "SELECT profile_id, day, amount FROM lifecycle_purchases ORDER BY profile_id, day";
const PUT_MODEL: &str = "INSERT INTO lifecycle_models (name, params, fitted_at) VALUES (?1, ?2, ?3) ON CONFLICT (name) DO UPDATE SET params = excluded.params, fitted_at = excluded.fitted_at";
const MODELS: &str = "SELECT name, params, fitted_at FROM lifecycle_models ORDER BY name";
const PROFILE_IDS: &str = "SELECT profile_id FROM profiles ORDER BY profile_id";
/// Only what decides one purpose's basis: its records and restrictions (no evidence).
const CONSENT_ABOUT: &str = "SELECT profile_id, seq, purpose, decision, source, purpose_version, decided_at, '', recorded_at, assurance FROM consent_ledger WHERE purpose = ?1 OR purpose = ?2 ORDER BY profile_id, seq";

/// A customer's current stage.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StageRow {
    /// The stage.
    pub stage: Stage,
    /// Since when (ms).
    pub since: i64,
    /// The rule that placed the customer there.
    pub rule: String,
    /// The number of the transition that did (the customer's history is numbered 1, 2, …).
    pub n: i64,
}

/// One stage change.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TransitionRow {
    /// The stage left, if any.
    pub from: Option<Stage>,
    /// The stage entered.
    pub to: Stage,
    /// When (ms).
    pub at: i64,
    /// The rule that caused it.
    pub rule: String,
}

/// A day's purchases.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct PurchaseDay {
    /// Days since 1970-01-01.
    pub day: i64,
    /// Amount spent that day.
    pub amount: f64,
}

/// What the stage rules need of one customer, read in one statement.
#[derive(Debug, Clone, PartialEq)]
pub struct StageFacts {
    /// First event (ms).
    pub first_seen: i64,
    /// Latest event (ms).
    pub last_seen: i64,
    /// Orders.
    pub orders: u64,
    /// Revenue.
    pub revenue: f64,
    /// Current stage.
    pub stage: Option<StageRow>,
    /// Whether any rule-counted event is stored for the customer.
    pub has_counts: bool,
}

/// Stored parameters of a fitted model.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ModelRow {
    /// `bg_nbd`, `pareto_nbd`, `gamma_gamma`.
    pub name: String,
    /// The fit, as JSON.
    pub params: String,
    /// When it was fitted (ms).
    pub fitted_at: i64,
}

fn stage(text: String) -> Result<Stage, StoreError> {
    text.parse()
        .map_err(|e| StoreError::Corrupt(format!("lifecycle stage: {e}")))
}

fn opt_stage(cell: Cell) -> Result<Option<Stage>, StoreError> {
    cell.opt_text()?.map(stage).transpose()
}

fn facts(conn: &mut dyn Conn, profile: &ProfileId) -> Result<Option<StageFacts>, StoreError> {
    let Some(row) = conn
        .query(FACTS, &[Param::Text(profile.as_str())])?
        .into_iter()
        .next()
    else {
        return Ok(None);
    };
    facts_row(&mut take(row, 9)?).map(Some)
}

/// [`StageFacts`] from the columns of [`FACTS`], in order.
pub(crate) fn facts_row(it: &mut std::vec::IntoIter<Cell>) -> Result<StageFacts, StoreError> {
    let first_seen = next(it)?.int()?;
    let last_seen = next(it)?.int()?;
    let orders = next(it)?.int()?.max(0) as u64;
    let revenue = next(it)?.real()?;
    let s = opt_stage(next(it)?)?;
    let since = next(it)?.opt_int()?;
    let rule = next(it)?.opt_text()?;
    let n = next(it)?.opt_int()?;
    let stage = match (s, since, rule, n) {
        (Some(stage), Some(since), Some(rule), Some(n)) => Some(StageRow {
            stage,
            since,
            rule,
            n,
        }),
        _ => None,
    };
    let has_counts = next(it)?.int()? != 0;
    Ok(StageFacts {
        first_seen,
        last_seen,
        orders,
        revenue,
        stage,
        has_counts,
    })
}

pub(crate) fn purchases_of(
    conn: &mut dyn Conn,
    profile: &str,
) -> Result<Vec<PurchaseDay>, StoreError> {
    conn.query(PURCHASES_OF, &[Param::Text(profile)])?
        .into_iter()
        .map(|row| {
            let mut it = take(row, 2)?;
            Ok(PurchaseDay {
                day: next(&mut it)?.int()?,
                amount: next(&mut it)?.real()?,
            })
        })
        .collect()
}

fn counts(conn: &mut dyn Conn, profile: &ProfileId) -> Result<BTreeMap<String, u64>, StoreError> {
    conn.query(COUNTS_OF, &[Param::Text(profile.as_str())])?
        .into_iter()
        .map(|row| {
            let mut it = take(row, 2)?;
            Ok((next(&mut it)?.text()?, next(&mut it)?.int()?.max(0) as u64))
        })
        .collect()
}

fn transition(it: &mut std::vec::IntoIter<Cell>) -> Result<TransitionRow, StoreError> {
    Ok(TransitionRow {
        from: opt_stage(next(it)?)?,
        to: stage(next(it)?.text()?)?,
        at: next(it)?.int()?,
        rule: next(it)?.text()?,
    })
}

impl WriteTx<'_> {
    /// Adds an order's amount to the customer's purchases of that day.
    pub fn add_purchase(
        &mut self,
        profile: &ProfileId,
        day: i64,
        amount: f64,
    ) -> Result<(), StoreError> {
        self.conn
            .exec(
                ADD_PURCHASE,
                &[
                    Param::Text(profile.as_str()),
                    Param::Int(day),
                    Param::Real(amount),
                ],
            )
            .map(drop)
    }

    /// Adds `n` to the customer's count of `event`.
    pub fn count_event(
        &mut self,
        profile: &ProfileId,
        event: &str,
        n: u64,
    ) -> Result<(), StoreError> {
        self.conn
            .exec(
                COUNT_EVENT,
                &[
                    Param::Text(profile.as_str()),
                    Param::Text(event),
                    Param::Int(n as i64),
                ],
            )
            .map(drop)
    }

    /// What the stage rules need of `profile`, or `None` if it does not exist.
    pub fn stage_facts(&mut self, profile: &ProfileId) -> Result<Option<StageFacts>, StoreError> {
        facts(self.conn, profile)
    }

    /// Locks `profile`'s row until the transaction ends (a no-op write: PostgreSQL takes a row
    /// lock; SQLite's single writer already excludes others, so there it only looks the row
    /// up). Returns whether it exists.
    pub fn lock_profile(&mut self, profile: &ProfileId) -> Result<bool, StoreError> {
        if self.conn.kind() == crate::BackendKind::Sqlite {
            return Ok(!self
                .conn
                .query(
                    "SELECT 1 FROM profiles WHERE profile_id = ?1",
                    &[Param::Text(profile.as_str())],
                )?
                .is_empty());
        }
        Ok(self.conn.exec(
            "UPDATE profiles SET last_seen = last_seen WHERE profile_id = ?1",
            &[Param::Text(profile.as_str())],
        )? > 0)
    }

    /// `profile`'s purchases by day, oldest first.
    pub fn purchase_days(&mut self, profile: &ProfileId) -> Result<Vec<PurchaseDay>, StoreError> {
        purchases_of(self.conn, profile.as_str())
    }

    /// The counted events of `profile`.
    pub fn event_counts(
        &mut self,
        profile: &ProfileId,
    ) -> Result<BTreeMap<String, u64>, StoreError> {
        counts(self.conn, profile)
    }

    /// Moves `profile` to a new stage at `at`, recording the transition (number `n`, the one
    /// after the customer's latest) and its rule. The latest transition is the current stage.
    pub fn set_stage(
        &mut self,
        profile: &ProfileId,
        n: i64,
        from: Option<Stage>,
        to: Stage,
        at: i64,
        rule: &str,
    ) -> Result<(), StoreError> {
        self.conn
            .exec(
                ADD_TRANSITION,
                &[
                    Param::Text(profile.as_str()),
                    Param::Int(n),
                    Param::OptText(from.map(Stage::as_str)),
                    Param::Text(to.as_str()),
                    Param::Int(at),
                    Param::Text(rule),
                ],
            )
            .map(drop)
    }

    /// Forgets `profile`'s stage and its history (the purpose that placed it lost its basis).
    /// Returns the rows deleted.
    pub fn drop_stage(&mut self, profile: &ProfileId) -> Result<u64, StoreError> {
        self.conn
            .exec(sql::DELETE_TRANSITIONS, &[Param::Text(profile.as_str())])
    }

    /// Forgets the model stored under `name`, if any.
    pub fn delete_model(&mut self, name: &str) -> Result<(), StoreError> {
        self.conn
            .exec(
                "DELETE FROM lifecycle_models WHERE name = ?1",
                &[Param::Text(name)],
            )
            .map(drop)
    }

    /// Stores a fitted model's parameters under `name`, replacing an earlier fit.
    pub fn put_model(&mut self, name: &str, params: &str, at: i64) -> Result<(), StoreError> {
        self.conn
            .exec(
                PUT_MODEL,
                &[Param::Text(name), Param::Text(params), Param::Int(at)],
            )
            .map(drop)
    }
}

/// The subjects `grants` open.
fn subjects(grants: &[Grant]) -> HashSet<&str> {
    grants.iter().map(Grant::subject).collect()
}

impl Store {
    /// The customer's purchases by day, oldest first.
    ///
    /// # Errors
    /// Database faults.
    pub fn purchases(&self, grant: &Grant) -> Result<Vec<PurchaseDay>, StoreError> {
        self.read(|c| purchases_of(c, grant.subject()))
    }

    /// Purchases by day of every customer a grant opens, in one scan.
    ///
    /// # Errors
    /// Database faults.
    pub fn purchases_for(
        &self,
        grants: &[Grant],
    ) -> Result<HashMap<ProfileId, Vec<PurchaseDay>>, StoreError> {
        let open = subjects(grants);
        self.read(|c| {
            let mut out: HashMap<ProfileId, Vec<PurchaseDay>> = HashMap::new();
            for row in c.query(ALL_PURCHASES, &[])? {
                let mut it = take(row, 3)?;
                let p = next(&mut it)?.text()?;
                if !open.contains(p.as_str()) {
                    continue;
                }
                out.entry(profile_id(p)?).or_default().push(PurchaseDay {
                    day: next(&mut it)?.int()?,
                    amount: next(&mut it)?.real()?,
                });
            }
            Ok(out)
        })
    }

    /// The customer's current stage.
    ///
    /// # Errors
    /// Database faults.
    pub fn stage(&self, grant: &Grant) -> Result<Option<StageRow>, StoreError> {
        self.snapshot(|s| s.stage(grant))
    }
}

/// `profile`'s current stage.
pub(crate) fn stage_of(c: &mut dyn Conn, profile: &str) -> Result<Option<StageRow>, StoreError> {
    let Some(row) = c
        .query(STAGE_OF, &[Param::Text(profile)])?
        .into_iter()
        .next()
    else {
        return Ok(None);
    };
    let mut it = take(row, 4)?;
    Ok(Some(StageRow {
        stage: stage(next(&mut it)?.text()?)?,
        since: next(&mut it)?.int()?,
        rule: next(&mut it)?.text()?,
        n: next(&mut it)?.int()?,
    }))
}

impl Store {
    /// The customer's stage transitions, oldest first.
    ///
    /// # Errors
    /// Database faults.
    pub fn transitions(&self, grant: &Grant) -> Result<Vec<TransitionRow>, StoreError> {
        self.read(|c| {
            c.query(TRANSITIONS_OF, &[Param::Text(grant.subject())])?
                .into_iter()
                .map(|row| transition(&mut take(row, 4)?))
                .collect()
        })
    }

    /// Transitions of every customer a grant opens, in one scan.
    ///
    /// # Errors
    /// Database faults.
    pub fn transitions_for(
        &self,
        grants: &[Grant],
    ) -> Result<HashMap<ProfileId, Vec<TransitionRow>>, StoreError> {
        let open = subjects(grants);
        self.read(|c| {
            let mut out: HashMap<ProfileId, Vec<TransitionRow>> = HashMap::new();
            for row in c.query(ALL_TRANSITIONS, &[])? {
                let mut it = take(row, 5)?;
                let p = next(&mut it)?.text()?;
                if open.contains(p.as_str()) {
                    out.entry(profile_id(p)?)
                        .or_default()
                        .push(transition(&mut it)?);
                }
            }
            Ok(out)
        })
    }

    /// Fitted models.
    ///
    /// # Errors
    /// Database faults.
    pub fn models(&self) -> Result<Vec<ModelRow>, StoreError> {
        self.read(|c| {
            c.query(MODELS, &[])?
                .into_iter()
                .map(|row| {
                    let mut it = take(row, 3)?;
                    Ok(ModelRow {
                        name: next(&mut it)?.text()?,
                        params: next(&mut it)?.text()?,
                        fitted_at: next(&mut it)?.int()?,
                    })
                })
                .collect()
        })
    }

    /// Every profile id: the population a bulk computation must account for, in or left out.
    ///
    /// # Errors
    /// Database faults.
    pub fn profile_ids(&self) -> Result<Vec<ProfileId>, StoreError> {
        self.read(|c| {
            c.query(PROFILE_IDS, &[])?
                .into_iter()
                .map(|row| profile_id(next(&mut take(row, 1)?)?.text()?))
                .collect()
        })
    }

    /// The records that decide `purpose`'s basis (its own and restrictions), per profile, in
    /// one scan: what bulk computations fold to decide whom the gate lets in for it.
    ///
    /// # Errors
    /// Database faults.
    pub fn consent_about(
        &self,
        purpose: &str,
    ) -> Result<HashMap<ProfileId, Vec<crate::records::ConsentRow>>, StoreError> {
        self.read(|c| {
            let mut out: HashMap<ProfileId, Vec<crate::records::ConsentRow>> = HashMap::new();
            for row in c.query(
                CONSENT_ABOUT,
                &[
                    Param::Text(purpose),
                    Param::Text(consentric_policy::RESTRICTION),
                ],
            )? {
                let mut it = take(row, 10)?;
                let p = profile_id(next(&mut it)?.text()?)?;
                let _seq = next(&mut it)?;
                out.entry(p).or_default().push(consent_row(&mut it)?);
            }
            Ok(out)
        })
    }
}
