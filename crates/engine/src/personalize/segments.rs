//! Segments: named conditions over what the personalisation purpose may see of a customer —
//! defined (sensitive traits refused), previewed live over the customers with a basis for it,
//! and proposed by k-means; the facts a condition needs, read through the grant. Kept
//! membership is in `membership.rs`.

use consentric_model::CallType;
use consentric_personalize::kmeans::best_k;
use consentric_personalize::segments::{Condition, Field};
use consentric_policy::DataCategory;
use serde::Serialize;
use serde_json::{json, Value};

use super::facts::category;
use crate::audit;
use crate::error::EngineError;
use crate::lifecycle::DAY_MS;
use crate::profiles::iso;

/// Longest segment name.
const MAX_NAME: usize = 64;

/// A stored segment.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SegmentView {
    /// Its name.
    pub name: String,
    /// Its condition.
    pub definition: Value,
    /// When it was last defined (RFC 3339).
    pub updated_at: String,
}

/// A segment's size and first members.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SegmentPreview {
    /// The segment.
    pub name: String,
    /// The purpose it was evaluated under.
    pub purpose: String,
    /// Customers in it.
    pub size: usize,
    /// Customers evaluated (with a basis for the purpose).
    pub evaluated: usize,
    /// Customers left out for want of a basis.
    pub left_out: usize,
    /// Up to the requested number of members (profile ids).
    pub members: Vec<String>,
}

/// A cluster k-means found, described by its centre.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SegmentProposal {
    /// Clusters chosen (by silhouette).
    pub k: usize,
    /// Mean silhouette of the chosen clustering.
    pub silhouette: f64,
    /// Customers clustered.
    pub customers: usize,
    /// Customers left out for want of a basis.
    pub left_out: usize,
    /// The features, in the order of each centre.
    pub features: Vec<String>,
    /// Per cluster: size and centre.
    pub clusters: Vec<Value>,
}

/// What this service works on, handed to it by the context.
pub(crate) struct SegmentService<'a> {
    pub(crate) store: &'a consentric_store::Store,
    pub(crate) clock: &'a dyn crate::clock::Clock,
    pub(crate) policy: &'a consentric_policy::PolicySet,
    pub(crate) personalize: &'a crate::personalize::Personalize,
    pub(crate) segment_facts: crate::personalize::facts::SegmentFacts<'a>,
    pub(crate) memberships: crate::personalize::membership::MembershipService<'a>,
    pub(crate) populations: crate::population::Populations<'a>,
}

impl SegmentService<'_> {
    /// Defines (or redefines) a segment. Refuses conditions that do not parse and any that
    /// look at a sensitive trait (`user.demographic.*`): segments feed decisions.
    ///
    /// # Errors
    /// [`EngineError::Invalid`] naming the problem, or a database fault.
    pub fn define_segment(
        &self,
        name: &str,
        definition: &Value,
        actor: &str,
    ) -> Result<SegmentView, EngineError> {
        if name.is_empty()
            || name.len() > MAX_NAME
            || !name
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"-_".contains(&b))
        {
            return Err(EngineError::Invalid {
                field: "name".into(),
                message: format!("1 to {MAX_NAME} letters, digits, `-` or `_`"),
            });
        }
        let condition = self.checked(definition)?;
        let now = self.clock.now().timestamp_millis();
        let text = condition.to_json().to_string();
        self.store.write(|tx| {
            tx.put_segment(name, &text, now)?;
            tx.clear_segment(name)?;
            tx.announce(&consentric_store::Change::Segments)?;
            audit::append(
                tx,
                now,
                actor,
                "segment.defined",
                None,
                &json!({"name": name}),
            )
        })?;
        self.personalize
            .has_segments
            .store(true, std::sync::atomic::Ordering::Relaxed);
        // Its members, from everyone with a basis; later changes follow ingest.
        self.memberships
            .evaluate_memberships(None, Some(name), actor)?;
        Ok(SegmentView {
            name: name.to_owned(),
            definition: condition.to_json(),
            updated_at: iso(now),
        })
    }

    /// Every segment.
    ///
    /// # Errors
    /// Database faults.
    pub fn segments(&self) -> Result<Vec<SegmentView>, EngineError> {
        Ok(self
            .store
            .segments()?
            .into_iter()
            .map(|s| SegmentView {
                definition: serde_json::from_str(&s.definition).unwrap_or(Value::Null),
                name: s.name,
                updated_at: iso(s.updated_at),
            })
            .collect())
    }

    /// Deletes a segment.
    ///
    /// # Errors
    /// Not found, or a database fault.
    pub fn delete_segment(&self, name: &str, actor: &str) -> Result<(), EngineError> {
        let now = self.clock.now().timestamp_millis();
        let found = self.store.write(|tx| {
            let found = tx.delete_segment(name)?;
            if found {
                audit::append(
                    tx,
                    now,
                    actor,
                    "segment.deleted",
                    None,
                    &json!({"name": name}),
                )?;
            }
            Ok::<_, consentric_store::StoreError>(found)
        })?;
        if found {
            Ok(())
        } else {
            Err(EngineError::NotFound(format!("segment `{name}`")))
        }
    }

    /// `definition` as a condition a segment may have: well formed, and no sensitive trait.
    fn checked(&self, definition: &Value) -> Result<Condition, EngineError> {
        let invalid = |message: String| EngineError::Invalid {
            field: "definition".into(),
            message,
        };
        let condition = Condition::parse(definition).map_err(invalid)?;
        for f in condition.fields() {
            if let Field::Trait(t) = f {
                let sensitive = self
                    .policy
                    .schema
                    .category(CallType::Identify, None, &["traits", t.as_str()])
                    .is_some_and(DataCategory::is_sensitive);
                if sensitive {
                    return Err(invalid(format!(
                        "`trait.{t}` is a sensitive category and may not define a segment"
                    )));
                }
            }
        }
        Ok(condition)
    }

    /// How many customers with a basis for the personalisation purpose a condition not yet
    /// saved would hold now (the console sizes it while it is typed); audited.
    ///
    /// # Errors
    /// [`EngineError::Invalid`] naming `definition`, or a database fault.
    pub fn size_of(&self, definition: &Value, actor: &str) -> Result<SegmentPreview, EngineError> {
        let condition = self.checked(definition)?;
        self.evaluate("(unsaved)", &condition, 0, actor)
    }

    /// Sizes a segment over the customers with a basis for the personalisation purpose and
    /// lists up to `limit` members, evaluating it now. Audited (it reads personal data of many
    /// customers).
    ///
    /// # Errors
    /// Not found, or a database fault.
    pub fn preview_segment(
        &self,
        name: &str,
        limit: usize,
        actor: &str,
    ) -> Result<SegmentPreview, EngineError> {
        let row = self
            .store
            .segments()?
            .into_iter()
            .find(|s| s.name == name)
            .ok_or_else(|| EngineError::NotFound(format!("segment `{name}`")))?;
        let condition = serde_json::from_str(&row.definition)
            .map_err(|e| e.to_string())
            .and_then(|v| Condition::parse(&v))
            .map_err(|e| EngineError::Config(format!("stored segment `{name}`: {e}")))?;
        self.evaluate(name, &condition, limit, actor)
    }

    /// Evaluates `condition` for every customer with a basis for the personalisation purpose;
    /// the first `limit` members are named.
    fn evaluate(
        &self,
        name: &str,
        condition: &Condition,
        limit: usize,
        actor: &str,
    ) -> Result<SegmentPreview, EngineError> {
        let purpose = &self.personalize.settings.purpose;
        let now = self.clock.now();
        let (grants, left_out) =
            self.populations
                .population_where(purpose, now, "personalize", |_| true)?;
        let mut members = Vec::new();
        let mut size = 0;
        for g in &grants {
            let facts = self
                .segment_facts
                .segment_facts(g, &condition.fields(), now)?;
            if condition.holds(&|f| facts.get(f).cloned()) {
                size += 1;
                if members.len() < limit {
                    members.push(g.subject().to_owned());
                }
            }
        }
        self.store.write(|tx| {
            audit::append(
                tx,
                now.timestamp_millis(),
                actor,
                "segment.evaluated",
                None,
                &json!({"name": name, "purpose": purpose, "customers": grants.len(), "size": size}),
            )
        })?;
        Ok(SegmentPreview {
            name: name.to_owned(),
            purpose: purpose.clone(),
            size,
            evaluated: grants.len(),
            left_out,
            members,
        })
    }

    /// Clusters customers with a basis for the personalisation purpose by behaviour (orders,
    /// revenue, events, days since last seen, distinct items) with k-means, k in 2..=`max_k`
    /// chosen by silhouette; each cluster described by its centre, for someone to name and
    /// define as a segment.
    ///
    /// # Errors
    /// A database fault.
    pub fn propose_segments(
        &self,
        max_k: usize,
        actor: &str,
    ) -> Result<SegmentProposal, EngineError> {
        let purpose = &self.personalize.settings.purpose;
        let now = self.clock.now();
        let now_ms = now.timestamp_millis();
        let (grants, left_out) =
            self.populations
                .population_where(purpose, now, "personalize", |g| {
                    ["user.behavior.purchase", "user.financial.transaction"]
                        .iter()
                        .all(|c| category(c).is_some_and(|c| g.permits(&c)))
                })?;
        let items = self.store.interactions_for(&grants)?;
        let mut rows = Vec::new();
        for g in &grants {
            let Some(p) = self.store.profile(g)? else {
                continue;
            };
            let c = p.counters;
            let distinct = consentric_model::ProfileId::parse(g.subject())
                .and_then(|id| items.get(&id))
                .map_or(0, Vec::len);
            rows.push(vec![
                c.order_count as f64,
                c.revenue,
                c.event_count as f64,
                (now_ms - c.last_seen) as f64 / DAY_MS as f64,
                distinct as f64,
            ]);
        }
        let clustering = best_k(&rows, 2..=max_k.max(2), 42);
        self.store.write(|tx| {
            audit::append(
                tx,
                now_ms,
                actor,
                "segments.proposed",
                None,
                &json!({"purpose": purpose, "customers": rows.len()}),
            )
        })?;
        let features = [
            "orders",
            "revenue",
            "events",
            "days_since_last_seen",
            "distinct_items",
        ];
        Ok(match clustering {
            Some(c) => SegmentProposal {
                k: c.k,
                silhouette: c.silhouette,
                customers: rows.len(),
                left_out,
                features: features.iter().map(|s| (*s).to_owned()).collect(),
                clusters: c
                    .centroids
                    .iter()
                    .zip(&c.sizes)
                    .map(|(centre, size)| {
                        let named: serde_json::Map<String, Value> = features
                            .iter()
                            .zip(centre)
                            .map(|(f, v)| ((*f).to_owned(), json!((v * 100.0).round() / 100.0)))
                            .collect();
                        json!({"size": size, "centre": named})
                    })
                    .collect(),
            },
            None => SegmentProposal {
                k: 0,
                silhouette: 0.0,
                customers: rows.len(),
                left_out,
                features: features.iter().map(|s| (*s).to_owned()).collect(),
                clusters: Vec::new(),
            },
        })
    }
}
