//! The next-best-action catalogue as operators read it: each action's rules, and how often it
//! was chosen.

use serde::Serialize;

use crate::error::EngineError;

/// One action of the catalogue.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ActionView {
    /// Its name.
    pub name: String,
    /// What the customer is told it is.
    pub description: String,
    /// The stages it suits (empty: any).
    pub stages: Vec<String>,
    /// Its channel.
    pub channel: String,
    /// The purpose the channel needs, if any.
    pub purpose: Option<String>,
    /// Its frequency cap: at most `count` in `days`.
    pub cap: Option<(u32, f64)>,
    /// Days before it may be chosen again for the same customer.
    pub cooldown_days: f64,
    /// Times chosen by recorded decisions.
    pub chosen: u64,
}

/// The catalogue with each action's count.
pub(crate) fn catalogue(
    store: &consentric_store::Store,
    actions: &[consentric_personalize::nba::Action],
) -> Result<Vec<ActionView>, EngineError> {
    let chosen = store.actions_chosen()?;
    Ok(actions
        .iter()
        .map(|a| ActionView {
            name: a.name.clone(),
            description: a.description.clone(),
            stages: a.stages.iter().map(|s| s.as_str().to_owned()).collect(),
            channel: a.channel.clone(),
            purpose: a.purpose.clone(),
            cap: a.cap.as_ref().map(|c| (c.count, c.days)),
            cooldown_days: a.cooldown_days,
            chosen: chosen
                .iter()
                .find(|(n, _)| *n == a.name)
                .map_or(0, |(_, n)| *n),
        })
        .collect())
}
