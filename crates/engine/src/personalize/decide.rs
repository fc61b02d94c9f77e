//! Decisions: items to show, the next best action and an explanation a customer could read,
//! made through the gate for the personalisation purpose — or, when it stays shut, from
//! nothing about the customer at all.

use std::collections::BTreeSet;

use consentric_model::{ProfileId, Stage};
use consentric_personalize::explain::{DataUsed, Reason};
use consentric_personalize::nba::{self, Excluded};
use consentric_personalize::Recommender;
use consentric_policy::{gate, ConsentState, Grant, Refusal};
use consentric_store::{DecisionFacts, Snapshot, StoreError, Unflushed, WriteTx};
use serde::Serialize;
use serde_json::json;

use super::decision_request::{DecisionMode, DecisionRequest, Outcome};
use super::settings::RecommenderKind;
use super::train::opens_interactions;
use super::Trained;
use crate::audit;
use crate::error::EngineError;
use crate::ledger::to_records;
use crate::lifecycle::opens_purchases;
use crate::profiles::find_profile_in;
use crate::profiles::{iso, ProfileRef};

/// Longest placement name.
const MAX_PLACEMENT: usize = 64;

/// One suggested item.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct DecisionItem {
    /// The item (product id).
    pub item: String,
    /// Its score (model units; higher is better).
    pub score: f32,
    /// The item of the customer's history that led to it, when personal.
    pub because: Option<String>,
}

/// The action chosen.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct DecisionAction {
    /// Its name in the catalogue.
    pub name: String,
    /// What it is.
    pub description: String,
    /// The channel it uses.
    pub channel: String,
    /// The purpose that channel needed (and has a basis).
    pub purpose: Option<String>,
    /// uplift × value.
    pub expected_value: f64,
    /// Whether the value was the customer's CLV.
    pub value_from_clv: bool,
}

/// An action not chosen, and why.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ExcludedAction {
    /// Its name.
    pub name: String,
    /// Why (`stage`, `no_channel_consent`, `capped`, `cooldown`, or `ranked_lower`).
    pub why: serde_json::Value,
}

/// Why the answer is what it is, in words a customer could read.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Explanation {
    /// Whether anything about the customer was used.
    pub personal: bool,
    /// The purpose it was used under (absent when nothing personal was).
    pub purpose: Option<String>,
    /// What was used.
    pub data_used: Vec<String>,
    /// Why these items and this action.
    pub reasons: Vec<String>,
}

/// `GET /v1/decisions/{customer}`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Decision {
    /// The customer (empty for a visitor with no profile).
    pub profile_id: String,
    /// Where it will be shown.
    pub placement: String,
    /// When (RFC 3339).
    pub decided_at: String,
    /// What chose the items: `als`, `knn`, `popularity`, or `none` before any training.
    pub recommender: String,
    /// When the models were trained (RFC 3339).
    pub model_trained_at: Option<String>,
    /// Items, best first.
    pub items: Vec<DecisionItem>,
    /// The next best action, if any may be taken.
    pub action: Option<DecisionAction>,
    /// The rest of the catalogue, with reasons.
    pub excluded_actions: Vec<ExcludedAction>,
    /// The customer's stage, when it was used.
    pub stage: Option<Stage>,
    /// Why.
    pub explanation: Explanation,
}

/// What a decision read about its customer (see `Context::read_for_decision`).
struct DecisionRead {
    id: ProfileId,
    consent: ConsentState,
    /// What the personalisation purpose's grant opened, if it opened their interactions;
    /// `Err` names a purpose the configuration refers to but does not declare.
    personal: Result<Option<Personal>, String>,
    /// The stage, when it is kept under a purpose of its own that has a basis.
    stage_elsewhere: Option<Stage>,
}

/// The grant for the personalisation purpose and the facts read through it.
struct Personal {
    grant: Grant,
    facts: DecisionFacts,
    with_purchases: bool,
}

/// What this service works on, handed to it by the context.
pub(crate) struct DecisionService<'a> {
    pub(crate) store: &'a consentric_store::Store,
    pub(crate) clock: &'a dyn crate::clock::Clock,
    pub(crate) policy: &'a consentric_policy::PolicySet,
    pub(crate) lifecycle: &'a crate::lifecycle::Lifecycle,
    pub(crate) personalize: &'a crate::personalize::Personalize,
    pub(crate) lifecycle_scores: crate::lifecycle::service::LifecycleScores<'a>,
    pub(crate) decisions: &'a crate::group_commit::GroupCommit<
        crate::personalize::DecisionRequest,
        crate::personalize::DecisionOutcome,
    >,
}

impl DecisionService<'_> {
    /// Decides for a customer at a placement: up to `limit` items, the next best action and
    /// the explanation. Personal only with a basis for the personalisation purpose; the
    /// chosen action is recorded (caps and cooldowns count it) and the decision audited in
    /// one transaction, shared with concurrent decisions.
    ///
    /// # Errors
    /// Not found, an invalid placement or limit, configuration or database faults.
    pub fn decide(
        &self,
        who: &ProfileRef,
        placement: &str,
        limit: Option<usize>,
        actor: &str,
    ) -> Result<Decision, EngineError> {
        self.decide_as(who, placement, limit, DecisionMode::Record, actor)
    }

    /// The decision [`DecisionService::decide`] would make now, without recording it: no cap or
    /// cooldown is spent. Still a read of personal data, so it is audited
    /// (`decision.previewed`).
    ///
    /// # Errors
    /// As [`DecisionService::decide`].
    pub fn preview_decision(
        &self,
        who: &ProfileRef,
        placement: &str,
        limit: Option<usize>,
        actor: &str,
    ) -> Result<Decision, EngineError> {
        self.decide_as(who, placement, limit, DecisionMode::Preview, actor)
    }

    fn decide_as(
        &self,
        who: &ProfileRef,
        placement: &str,
        limit: Option<usize>,
        mode: DecisionMode,
        actor: &str,
    ) -> Result<Decision, EngineError> {
        let settings = &self.personalize.settings;
        if placement.is_empty()
            || placement.len() > MAX_PLACEMENT
            || !placement
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"-_.".contains(&b))
        {
            return Err(EngineError::Invalid {
                field: "placement".into(),
                message: format!("1 to {MAX_PLACEMENT} letters, digits, `-`, `_` or `.`"),
            });
        }
        let limit = limit.unwrap_or(settings.default_limit);
        if limit == 0 || limit > settings.max_limit {
            return Err(EngineError::Invalid {
                field: "limit".into(),
                message: format!("must be 1 to {}", settings.max_limit),
            });
        }
        let now = self.clock.now();
        let purpose = &settings.purpose;
        let Some(read) = self
            .store
            .snapshot(|s| self.read_for_decision(s, who, purpose, now))?
        else {
            // A visitor we do not know (a first page view, or someone erased): nothing is known
            // about them, so the answer is the non-personal one and nothing is recorded.
            if matches!(who, ProfileRef::Profile(_)) {
                return Err(EngineError::NotFound("profile".into()));
            }
            return Ok(self.decide_for_stranger(placement, limit));
        };
        let DecisionRead {
            id,
            consent,
            personal,
            stage_elsewhere,
        } = read;
        let mut personal = personal.map_err(|p| {
            EngineError::Config(format!("[personalize] names the unknown purpose `{p}`"))
        })?;
        let models = self.personalize.models();
        let mut data_used = Vec::new();
        let mut reasons = Vec::new();
        let (mut stage, mut clv) = (None, None);
        let (items, recommender) = match personal.as_mut() {
            Some(p) => {
                let with_stage = self.lifecycle.settings.stage_purpose == *purpose;
                let facts = &mut p.facts;
                let rows = &facts.interactions;
                data_used.push(DataUsed::Interactions(rows.len()));
                stage = match with_stage {
                    true => facts.stage.as_ref().map(|s| s.stage),
                    false => stage_elsewhere,
                };
                if let Some(s) = stage {
                    data_used.push(if with_stage {
                        DataUsed::Stage
                    } else {
                        DataUsed::StageKeptFor(self.lifecycle.settings.stage_purpose.clone())
                    });
                    reasons.push(Reason::Stage(s));
                }
                if p.with_purchases {
                    clv = self
                        .lifecycle_scores
                        .clv_of_days(std::mem::take(&mut facts.purchases), now);
                }
                if clv.is_some() {
                    data_used.push(DataUsed::Purchases);
                }
                personal_items(
                    models.as_deref(),
                    rows,
                    settings.recommender,
                    limit,
                    &mut reasons,
                )
            }
            None => {
                reasons.push(Reason::NoBasis {
                    purpose: purpose.clone(),
                });
                let items = models
                    .as_deref()
                    .map(|m| named(m, m.popularity.top(limit), |_| None))
                    .unwrap_or_default();
                let how = if models.is_some() {
                    "popularity"
                } else {
                    "none"
                };
                (items, how.to_owned())
            }
        };
        let with_basis: BTreeSet<String> = self
            .personalize
            .catalogue
            .iter()
            .filter_map(|a| a.purpose.as_deref())
            .filter(|p| {
                self.policy
                    .registry
                    .get(p)
                    .is_ok_and(|purpose| consent.has_basis(purpose, now))
            })
            .map(str::to_owned)
            .collect();
        if mode == DecisionMode::Record {
            self.store.warm_key(&id)?;
        }
        let log = (mode == DecisionMode::Record).then(|| {
            (
                placement.to_owned(),
                json!({"personal": personal.is_some(),
                       "purpose": personal.as_ref().map(|p| p.grant.purpose().as_str()),
                       "recommender": recommender,
                       "items": items.iter().map(|i| i.item.as_str()).collect::<Vec<_>>(),
                       "stage": stage,
                       "data_used": data_used.iter().map(DataUsed::text).collect::<Vec<_>>(),
                       "reasons": reasons.iter().map(Reason::text).collect::<Vec<_>>()}),
            )
        });
        let request = DecisionRequest {
            profile: id.clone(),
            mode,
            log,
            stage,
            clv,
            with_basis,
            now: now.timestamp_millis(),
            actor: actor.to_owned(),
            audit: json!({"purpose": personal.as_ref().map(|p| p.grant.purpose().as_str()),
                          "personal": personal.is_some(), "placement": placement,
                          "items": items.len(), "recommender": recommender,
                          "used": data_used.iter().map(DataUsed::text).collect::<Vec<_>>()}),
        };
        let outcome = self.decisions.submit(
            request,
            |group| self.commit_decisions(group),
            |p| Ok(self.store.flush(p)?),
        )?;
        let action = outcome.chosen.and_then(|(name, ev, from_clv)| {
            let a = self.personalize.catalogue.iter().find(|a| a.name == name)?;
            reasons.push(Reason::Action {
                name: a.name.clone(),
                for_stage: !a.stages.is_empty(),
                purpose: a.purpose.clone(),
            });
            Some(DecisionAction {
                name: a.name.clone(),
                description: a.description.clone(),
                channel: a.channel.clone(),
                purpose: a.purpose.clone(),
                expected_value: ev,
                value_from_clv: from_clv,
            })
        });
        data_used.push(DataUsed::ActionsTaken);
        data_used.push(DataUsed::Consent);
        let excluded_actions = outcome
            .excluded
            .into_iter()
            .map(|(name, why)| ExcludedAction {
                name,
                why: serde_json::to_value(why).unwrap_or_default(),
            })
            .collect();
        Ok(Decision {
            profile_id: id.to_string(),
            placement: placement.to_owned(),
            decided_at: iso(now.timestamp_millis()),
            recommender,
            model_trained_at: models.as_ref().map(|m| iso(m.trained_at)),
            items,
            action,
            excluded_actions,
            stage,
            explanation: Explanation {
                personal: personal.is_some(),
                purpose: personal.map(|p| p.grant.purpose().as_str().to_owned()),
                // The one place reasons become words.
                data_used: data_used.iter().map(DataUsed::text).collect(),
                reasons: reasons.iter().map(Reason::text).collect(),
            },
        })
    }

    /// Whether a decision begun now should finish within a fraction of a millisecond: its
    /// reads and scoring are that short, and so is its write while the store's writes are
    /// quick (no large or long write holding the writer, quick flushes). A server may then
    /// decide on the thread that received the request rather than hand it to one that may
    /// wait: the hand-off and the wake-up back cost a quarter of a decision.
    pub fn decisions_are_quick(&self) -> bool {
        self.store.writes_are_quick()
    }

    /// Everything a decision reads about the customer, on one snapshot: who they are, their
    /// consent and — only through the grant the gate makes from it — their facts. `None` when
    /// `who` names no one.
    fn read_for_decision(
        &self,
        s: &mut Snapshot<'_>,
        who: &ProfileRef,
        purpose: &str,
        now: chrono::DateTime<chrono::Utc>,
    ) -> Result<Option<DecisionRead>, StoreError> {
        let Some(id) = find_profile_in(s, who)? else {
            return Ok(None);
        };
        let consent = ConsentState::fold(to_records(&s.consent(&id)?));
        let registry = &self.policy.registry;
        let grant = match gate::open(registry, &consent, purpose, id.as_str(), now) {
            Ok(g) if opens_interactions(&g) => Some(g),
            Ok(_) | Err(Refusal::NoBasis { .. }) => None,
            Err(Refusal::UnknownPurpose(p)) => {
                return Ok(Some(DecisionRead {
                    id,
                    consent,
                    personal: Err(p),
                    stage_elsewhere: None,
                }))
            }
        };
        let (mut personal, mut stage_elsewhere) = (None, None);
        if let Some(grant) = grant {
            let stage_purpose = &self.lifecycle.settings.stage_purpose;
            let with_stage = stage_purpose == purpose;
            let with_purchases = self.lifecycle.scorer().is_some() && opens_purchases(&grant);
            let facts = s.decision_facts(&grant, with_stage, with_purchases)?;
            if !with_stage {
                // The stage is kept under its own purpose: read it only with a grant for it.
                if let Ok(g) = gate::open(registry, &consent, stage_purpose, id.as_str(), now) {
                    stage_elsewhere = s.stage(&g)?.map(|r| r.stage);
                }
            }
            personal = Some(Personal {
                grant,
                facts,
                with_purchases,
            });
        }
        Ok(Some(DecisionRead {
            id,
            consent,
            personal: Ok(personal),
            stage_elsewhere,
        }))
    }

    /// The answer for a visitor with no profile: popular items and the actions that suit
    /// every customer and need no consent. Nothing is read about anyone, nothing recorded.
    fn decide_for_stranger(&self, placement: &str, limit: usize) -> Decision {
        let now = self.clock.now();
        let models = self.personalize.models();
        let items = models
            .as_deref()
            .map(|m| named(m, m.popularity.top(limit), |_| None))
            .unwrap_or_default();
        let no_basis = |_: &str| false;
        let cx = nba::Context {
            stage: None,
            clv: None,
            has_basis: &no_basis,
            history: &[],
            now: now.timestamp_millis(),
        };
        let (ranked, left_out) = nba::rank(&self.personalize.catalogue, &cx);
        let action = ranked.first().map(|c| DecisionAction {
            name: c.action.name.clone(),
            description: c.action.description.clone(),
            channel: c.action.channel.clone(),
            purpose: c.action.purpose.clone(),
            expected_value: c.expected_value,
            value_from_clv: c.from_clv,
        });
        let excluded_actions = left_out
            .into_iter()
            .map(|(a, why)| (a.name.clone(), why))
            .chain(ranked.iter().skip(1).map(|c| {
                (
                    c.action.name.clone(),
                    Excluded::RankedLower {
                        expected_value: c.expected_value,
                    },
                )
            }))
            .map(|(name, why)| ExcludedAction {
                name,
                why: serde_json::to_value(why).unwrap_or_default(),
            })
            .collect();
        Decision {
            profile_id: String::new(),
            placement: placement.to_owned(),
            decided_at: iso(now.timestamp_millis()),
            recommender: if models.is_some() {
                "popularity"
            } else {
                "none"
            }
            .to_owned(),
            model_trained_at: models.as_ref().map(|m| iso(m.trained_at)),
            items,
            action,
            excluded_actions,
            stage: None,
            explanation: Explanation {
                personal: false,
                purpose: None,
                data_used: Vec::new(),
                reasons: vec![Reason::Stranger.text()],
            },
        }
    }

    /// Ranks, records and audits a group of decisions in one transaction (each customer
    /// locked first, so concurrent decisions cannot both pass a cap), to be flushed before
    /// anyone is answered; a failed group is retried decision by decision, each flushed.
    pub(super) fn commit_decisions(
        &self,
        group: &[DecisionRequest],
    ) -> (Vec<Result<Outcome, EngineError>>, Unflushed) {
        let together = self.store.write_unflushed(false, |tx| {
            group
                .iter()
                .map(|r| self.decide_in(tx, r))
                .collect::<Result<Vec<_>, StoreError>>()
        });
        match together {
            Ok((outcomes, pending)) => (outcomes.into_iter().map(Ok).collect(), pending),
            Err(e) if group.len() == 1 => (vec![Err(e.into())], Unflushed::nothing()),
            Err(_) => {
                let each = group
                    .iter()
                    .map(|r| {
                        self.store
                            .write(|tx| self.decide_in(tx, r))
                            .map_err(EngineError::from)
                    })
                    .collect();
                (each, Unflushed::nothing())
            }
        }
    }

    fn decide_in(&self, tx: &mut WriteTx<'_>, r: &DecisionRequest) -> Result<Outcome, StoreError> {
        let catalogue = &self.personalize.catalogue;
        // The customer may have been erased, or merged into another profile, since the
        // decision's reads: then nothing is recorded, so no action or audit record of a
        // profile that no longer exists is written after it was deleted.
        if !tx.lock_profile(&r.profile)? {
            return Ok(Outcome {
                chosen: None,
                excluded: Vec::new(),
            });
        }
        let since = r.now - nba::look_back_ms(catalogue);
        let history: Vec<(String, i64)> = tx
            .actions_since(&r.profile, since)?
            .into_iter()
            .map(|a| (a.action, a.at))
            .collect();
        let has_basis = |p: &str| r.with_basis.contains(p);
        let cx = nba::Context {
            stage: r.stage,
            clv: r.clv,
            has_basis: &has_basis,
            history: &history,
            now: r.now,
        };
        let (ranked, left_out) = nba::rank(catalogue, &cx);
        let chosen = ranked
            .first()
            .map(|c| (c.action.name.clone(), c.expected_value, c.from_clv));
        let mut excluded: Vec<(String, Excluded)> = left_out
            .into_iter()
            .map(|(a, why)| (a.name.clone(), why))
            .collect();
        excluded.extend(ranked.iter().skip(1).map(|c| {
            (
                c.action.name.clone(),
                Excluded::RankedLower {
                    expected_value: c.expected_value,
                },
            )
        }));
        if let (Some((name, _, _)), DecisionMode::Record) = (&chosen, r.mode) {
            tx.record_action(&r.profile, name, r.now)?;
        }
        if let Some((placement, record)) = &r.log {
            let mut record = record.clone();
            record["action"] = json!(chosen.as_ref().map(|c| c.0.as_str()));
            tx.log_decision(&r.profile, r.now, placement, &record.to_string())?;
        }
        let mut detail = r.audit.clone();
        detail["action"] = json!(chosen.as_ref().map(|c| c.0.as_str()));
        audit::append(
            tx,
            r.now,
            &r.actor,
            r.mode.audit_action(),
            Some(r.profile.as_str()),
            &detail,
        )?;
        Ok(Outcome { chosen, excluded })
    }
}

/// Items for a customer with a basis: the configured recommender from their history, then
/// popular items they have not seen to fill the list.
fn personal_items(
    models: Option<&Trained>,
    rows: &[consentric_store::InteractionRow],
    kind: RecommenderKind,
    limit: usize,
    reasons: &mut Vec<Reason>,
) -> (Vec<DecisionItem>, String) {
    let Some(m) = models else {
        reasons.push(Reason::NotTrained);
        return (Vec::new(), "none".into());
    };
    let seen: Vec<(u32, f32)> = rows
        .iter()
        .filter_map(|r| m.vocabulary.get(&r.item).map(|i| (i, r.weight as f32)))
        .collect();
    let (mut items, mut how) = (Vec::new(), String::new());
    if !seen.is_empty() {
        items = match (kind, &m.als) {
            (RecommenderKind::Als, Some(als)) => {
                how = "als".into();
                named(m, als.recommend(&seen, limit), |i| als.because(&seen, i))
            }
            _ => {
                how = "knn".into();
                named(m, m.knn.recommend(&seen, limit), |i| {
                    m.knn.because(&seen, i)
                })
            }
        };
        if let Some(first) = items
            .iter()
            .find_map(|i| i.because.as_ref().map(|b| (b, &i.item)))
        {
            reasons.push(Reason::BecauseOf {
                seen: first.0.clone(),
                suggested: first.1.clone(),
            });
        }
    } else {
        reasons.push(Reason::NoHistory);
    }
    if items.len() < limit {
        let taken: BTreeSet<String> = items.iter().map(|i| i.item.clone()).collect();
        let fill: Vec<(u32, f32)> = m
            .popularity
            .recommend(&seen, limit + taken.len())
            .into_iter()
            .filter(|(i, _)| m.vocabulary.id(*i).is_some_and(|id| !taken.contains(id)))
            .take(limit - items.len())
            .collect();
        if !fill.is_empty() {
            how = if how.is_empty() {
                "popularity".into()
            } else {
                format!("{how}+popularity")
            };
        }
        items.extend(named(m, fill, |_| None));
    }
    if how.is_empty() {
        how = "popularity".into();
    }
    (items, how)
}

/// Item indices to ids, with the history item behind each.
fn named(
    m: &Trained,
    scored: Vec<(u32, f32)>,
    because: impl Fn(u32) -> Option<u32>,
) -> Vec<DecisionItem> {
    scored
        .into_iter()
        .filter_map(|(i, score)| {
            Some(DecisionItem {
                item: m.vocabulary.id(i)?.to_owned(),
                score,
                because: because(i)
                    .and_then(|b| m.vocabulary.id(b))
                    .map(str::to_owned),
            })
        })
        .collect()
}
