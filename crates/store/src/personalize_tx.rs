//! Personalisation rows: which items each customer interacted with (derived from events by
//! ingest), the actions decisions chose (for frequency caps and cooldowns), trained
//! recommender models and segment definitions. Interactions and actions are about a customer:
//! moved by merges, deleted by erasure and by withdrawal of the purpose that uses them; a
//! customer's interactions are read with a grant.

use std::collections::{HashMap, HashSet};

use consentric_model::ProfileId;
use consentric_policy::Grant;

use crate::backend::{Conn, Param};
use crate::error::StoreError;
use crate::sql;
use crate::store::Store;
use crate::tx::{next, profile_id, take, WriteTx};

const ADD_INTERACTION: &str = "INSERT INTO interactions (profile_id, item_id, weight, last_at) VALUES (?1, ?2, ?3, ?4) ON CONFLICT (profile_id, item_id) DO UPDATE SET weight = interactions.weight + excluded.weight, last_at = CASE WHEN excluded.last_at > interactions.last_at THEN excluded.last_at ELSE interactions.last_at END";
const INTERACTIONS_OF: &str = "SELECT item_id, weight, last_at FROM interactions WHERE profile_id = ?1 ORDER BY last_at DESC, item_id";
const ALL_INTERACTIONS: &str =
    "SELECT profile_id, item_id, weight, last_at FROM interactions ORDER BY profile_id, item_id";
const RECORD_ACTION: &str = "INSERT INTO decision_actions (profile_id, action, at, seq) VALUES (?1, ?2, ?3, (SELECT COALESCE(MAX(seq), 0) + 1 FROM decision_actions WHERE profile_id = ?1))";
const ACTIONS_SINCE: &str =
    "SELECT action, at FROM decision_actions WHERE profile_id = ?1 AND at >= ?2 ORDER BY at";
const PUT_MODEL: &str = "INSERT INTO recommender_models (name, body, trained_at) VALUES (?1, ?2, ?3) ON CONFLICT (name) DO UPDATE SET body = excluded.body, trained_at = excluded.trained_at";
const MODEL: &str = "SELECT body, trained_at FROM recommender_models WHERE name = ?1";
const PUT_SEGMENT: &str = "INSERT INTO segments (name, definition, updated_at) VALUES (?1, ?2, ?3) ON CONFLICT (name) DO UPDATE SET definition = excluded.definition, updated_at = excluded.updated_at";
const SEGMENTS: &str = "SELECT name, definition, updated_at FROM segments ORDER BY name";

const JOIN_SEGMENT: &str = "INSERT INTO segment_members (segment, profile_id, since) VALUES (?1, ?2, ?3) ON CONFLICT (segment, profile_id) DO NOTHING";
const LEAVE_SEGMENT: &str = "DELETE FROM segment_members WHERE segment = ?1 AND profile_id = ?2";
const MEMBERSHIPS_OF: &str =
    "SELECT segment FROM segment_members WHERE profile_id = ?1 ORDER BY segment";
const MEMBERS: &str =
    "SELECT profile_id FROM segment_members WHERE segment = ?1 ORDER BY since, profile_id LIMIT ?2";
const MEMBER_COUNT: &str = "SELECT COUNT(*) FROM segment_members WHERE segment = ?1";

/// How much a customer interacted with one item.
#[derive(Debug, Clone, PartialEq)]
pub struct InteractionRow {
    /// The item (a product id).
    pub item: String,
    /// Summed event weights.
    pub weight: f64,
    /// The latest interaction (ms).
    pub last_at: i64,
}

/// An action a decision chose for a customer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ActionTaken {
    /// The action's name.
    pub action: String,
    /// When (ms).
    pub at: i64,
}

/// What a personal decision reads of one customer, in one read transaction.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct DecisionFacts {
    /// Interactions, latest first.
    pub interactions: Vec<InteractionRow>,
    /// Current stage, when asked for.
    pub stage: Option<crate::StageRow>,
    /// Purchases by day, when asked for.
    pub purchases: Vec<crate::PurchaseDay>,
}

/// A stored segment definition.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SegmentRow {
    /// Its name.
    pub name: String,
    /// Its condition, as JSON.
    pub definition: String,
    /// When it was last defined (ms).
    pub updated_at: i64,
}

pub(crate) fn interactions_of(
    conn: &mut dyn Conn,
    profile: &str,
) -> Result<Vec<InteractionRow>, StoreError> {
    conn.query(INTERACTIONS_OF, &[Param::Text(profile)])?
        .into_iter()
        .map(|row| {
            let mut it = take(row, 3)?;
            Ok(InteractionRow {
                item: next(&mut it)?.text()?,
                weight: next(&mut it)?.real()?,
                last_at: next(&mut it)?.int()?,
            })
        })
        .collect()
}

impl WriteTx<'_> {
    /// Adds `weight` to the customer's interaction with `item`, seen at `at`.
    pub fn add_interaction(
        &mut self,
        profile: &ProfileId,
        item: &str,
        weight: f64,
        at: i64,
    ) -> Result<(), StoreError> {
        self.conn
            .exec(
                ADD_INTERACTION,
                &[
                    Param::Text(profile.as_str()),
                    Param::Text(item),
                    Param::Real(weight),
                    Param::Int(at),
                ],
            )
            .map(drop)
    }

    /// Forgets every interaction of `profile` (the purpose using them lost its basis).
    pub fn drop_interactions(&mut self, profile: &ProfileId) -> Result<u64, StoreError> {
        self.conn
            .exec(sql::DELETE_INTERACTIONS, &[Param::Text(profile.as_str())])
    }

    /// The actions chosen for `profile` since `since` (ms), oldest first. Read inside the
    /// transaction that records the next one, so caps hold under concurrent decisions.
    pub fn actions_since(
        &mut self,
        profile: &ProfileId,
        since: i64,
    ) -> Result<Vec<ActionTaken>, StoreError> {
        self.conn
            .query(
                ACTIONS_SINCE,
                &[Param::Text(profile.as_str()), Param::Int(since)],
            )?
            .into_iter()
            .map(|row| {
                let mut it = take(row, 2)?;
                Ok(ActionTaken {
                    action: next(&mut it)?.text()?,
                    at: next(&mut it)?.int()?,
                })
            })
            .collect()
    }

    /// Records that `action` was chosen for `profile` at `at`.
    pub fn record_action(
        &mut self,
        profile: &ProfileId,
        action: &str,
        at: i64,
    ) -> Result<(), StoreError> {
        self.conn
            .exec(
                RECORD_ACTION,
                &[
                    Param::Text(profile.as_str()),
                    Param::Text(action),
                    Param::Int(at),
                ],
            )
            .map(drop)
    }

    /// Stores a trained recommender under `name`, replacing the previous one.
    pub fn put_recommender(&mut self, name: &str, body: &str, at: i64) -> Result<(), StoreError> {
        self.conn
            .exec(
                PUT_MODEL,
                &[Param::Text(name), Param::Text(body), Param::Int(at)],
            )
            .map(drop)
    }

    /// Defines (or redefines) a segment.
    pub fn put_segment(&mut self, name: &str, definition: &str, at: i64) -> Result<(), StoreError> {
        self.conn
            .exec(
                PUT_SEGMENT,
                &[Param::Text(name), Param::Text(definition), Param::Int(at)],
            )
            .map(drop)
    }

    /// Deletes a segment and its memberships; whether it existed.
    pub fn delete_segment(&mut self, name: &str) -> Result<bool, StoreError> {
        self.clear_segment(name)?;
        Ok(self
            .conn
            .exec("DELETE FROM segments WHERE name = ?1", &[Param::Text(name)])?
            > 0)
    }

    /// Forgets every member of a segment (before it is evaluated afresh).
    pub fn clear_segment(&mut self, name: &str) -> Result<u64, StoreError> {
        self.conn.exec(
            "DELETE FROM segment_members WHERE segment = ?1",
            &[Param::Text(name)],
        )
    }

    /// The segments `profile` is in.
    pub fn memberships(&mut self, profile: &ProfileId) -> Result<Vec<String>, StoreError> {
        self.conn
            .query(MEMBERSHIPS_OF, &[Param::Text(profile.as_str())])?
            .into_iter()
            .map(|row| next(&mut take(row, 1)?)?.text())
            .collect()
    }

    /// Puts `profile` in `segment` from `at` (no change if already in).
    pub fn join_segment(
        &mut self,
        segment: &str,
        profile: &ProfileId,
        at: i64,
    ) -> Result<(), StoreError> {
        self.conn
            .exec(
                JOIN_SEGMENT,
                &[
                    Param::Text(segment),
                    Param::Text(profile.as_str()),
                    Param::Int(at),
                ],
            )
            .map(drop)
    }

    /// Takes `profile` out of `segment`.
    pub fn leave_segment(&mut self, segment: &str, profile: &ProfileId) -> Result<(), StoreError> {
        self.conn
            .exec(
                LEAVE_SEGMENT,
                &[Param::Text(segment), Param::Text(profile.as_str())],
            )
            .map(drop)
    }

    /// Takes `profile` out of every segment (the purpose segments serve lost its basis).
    pub fn drop_memberships(&mut self, profile: &ProfileId) -> Result<u64, StoreError> {
        self.conn
            .exec(sql::DELETE_MEMBERSHIPS, &[Param::Text(profile.as_str())])
    }
}

impl Store {
    /// The customer's interactions, latest first.
    ///
    /// # Errors
    /// Database faults.
    pub fn interactions(&self, grant: &Grant) -> Result<Vec<InteractionRow>, StoreError> {
        self.read(|c| interactions_of(c, grant.subject()))
    }

    /// Interactions of every customer a grant opens, in one scan.
    ///
    /// # Errors
    /// Database faults.
    pub fn interactions_for(
        &self,
        grants: &[Grant],
    ) -> Result<HashMap<ProfileId, Vec<InteractionRow>>, StoreError> {
        let open: HashSet<&str> = grants.iter().map(Grant::subject).collect();
        self.read(|c| {
            let mut out: HashMap<ProfileId, Vec<InteractionRow>> = HashMap::new();
            for row in c.query(ALL_INTERACTIONS, &[])? {
                let mut it = take(row, 4)?;
                let p = next(&mut it)?.text()?;
                if !open.contains(p.as_str()) {
                    continue;
                }
                let r = InteractionRow {
                    item: next(&mut it)?.text()?,
                    weight: next(&mut it)?.real()?,
                    last_at: next(&mut it)?.int()?,
                };
                out.entry(profile_id(p)?).or_default().push(r);
            }
            Ok(out)
        })
    }

    /// A stored recommender (its body and training time), if trained.
    ///
    /// # Errors
    /// Database faults.
    pub fn recommender(&self, name: &str) -> Result<Option<(String, i64)>, StoreError> {
        self.read(|c| {
            let Some(row) = c.query(MODEL, &[Param::Text(name)])?.into_iter().next() else {
                return Ok(None);
            };
            let mut it = take(row, 2)?;
            Ok(Some((next(&mut it)?.text()?, next(&mut it)?.int()?)))
        })
    }

    /// How many customers are in `segment`, and up to `limit` of them (longest members first).
    ///
    /// # Errors
    /// Database faults.
    pub fn segment_members(
        &self,
        segment: &str,
        limit: usize,
    ) -> Result<(u64, Vec<ProfileId>), StoreError> {
        self.read(|c| {
            let n = c
                .query(MEMBER_COUNT, &[Param::Text(segment)])?
                .into_iter()
                .next()
                .map(|row| next(&mut take(row, 1)?)?.int())
                .transpose()?
                .unwrap_or(0);
            let members = c
                .query(
                    MEMBERS,
                    &[
                        Param::Text(segment),
                        Param::Int(limit.min(i64::MAX as usize) as i64),
                    ],
                )?
                .into_iter()
                .map(|row| profile_id(next(&mut take(row, 1)?)?.text()?))
                .collect::<Result<Vec<_>, _>>()?;
            Ok((n.max(0) as u64, members))
        })
    }

    /// Every segment definition, by name.
    ///
    /// # Errors
    /// Database faults.
    pub fn segments(&self) -> Result<Vec<SegmentRow>, StoreError> {
        self.read(|c| {
            c.query(SEGMENTS, &[])?
                .into_iter()
                .map(|row| {
                    let mut it = take(row, 3)?;
                    Ok(SegmentRow {
                        name: next(&mut it)?.text()?,
                        definition: next(&mut it)?.text()?,
                        updated_at: next(&mut it)?.int()?,
                    })
                })
                .collect()
        })
    }
}

const ACTIONS_CHOSEN: &str =
    "SELECT action, COUNT(*) FROM decision_actions GROUP BY action ORDER BY action";

impl Store {
    /// How many times each action was chosen (recorded decisions), by name.
    ///
    /// # Errors
    /// Database faults.
    pub fn actions_chosen(&self) -> Result<Vec<(String, u64)>, StoreError> {
        self.read(|c| {
            c.query(ACTIONS_CHOSEN, &[])?
                .into_iter()
                .map(|r| {
                    let mut c = crate::tx::take(r, 2)?;
                    let name = crate::tx::next(&mut c)?.text()?;
                    let n = crate::tx::next(&mut c)?.int()?;
                    Ok((name, u64::try_from(n).unwrap_or(0)))
                })
                .collect()
        })
    }
}
