//! Next best action: from a catalogue of actions, the ones that suit a customer's stage, whose
//! channel they consented to, that no frequency cap or cooldown forbids — ranked by expected
//! value. Every action left out is left out for a stated reason.

use consentric_model::Stage;
use serde::{Deserialize, Serialize};

/// Milliseconds in a day.
const DAY_MS: f64 = 86_400_000.0;

/// At most `count` times in any `days` days.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Cap {
    /// How many times.
    pub count: u32,
    /// Within how many days.
    pub days: f64,
}

/// One action of the catalogue (`[[personalize.actions]]`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Action {
    /// Stable name (`win-back-offer`).
    pub name: String,
    /// What the customer is told it is.
    #[serde(default)]
    pub description: String,
    /// The stages it suits; empty: any stage (a stage-free rule, usable without
    /// personalisation).
    #[serde(default)]
    pub stages: Vec<Stage>,
    /// The channel it uses (`email`, `sms`, `push`, `web`).
    pub channel: String,
    /// The purpose that channel needs (`marketing.email`); `None` for on-site placements
    /// that contact no one.
    #[serde(default)]
    pub purpose: Option<String>,
    /// The value of a success when the customer's CLV is unknown (or unused).
    #[serde(default = "one")]
    pub value: f64,
    /// Prior probability that the action changes the outcome (its uplift).
    pub uplift: f64,
    /// Weigh the customer's CLV instead of `value` when it is known.
    #[serde(default)]
    pub use_clv: bool,
    /// Frequency cap.
    #[serde(default)]
    pub cap: Option<Cap>,
    /// Days after being chosen before it may be chosen again.
    #[serde(default)]
    pub cooldown_days: f64,
}

fn one() -> f64 {
    1.0
}

/// Why an action in the catalogue was not chosen.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "reason", rename_all = "snake_case")]
pub enum Excluded {
    /// It suits other stages (or the stage may not be used).
    Stage,
    /// Its channel's purpose has no basis for this customer.
    NoChannelConsent {
        /// The purpose it needs.
        purpose: String,
    },
    /// Chosen `count` times in the cap's window already.
    Capped {
        /// Times in the window.
        count: u32,
    },
    /// Chosen too recently.
    Cooldown {
        /// When it may be chosen again (ms).
        until: i64,
    },
    /// Eligible, but another action promised more.
    RankedLower {
        /// Its expected value.
        expected_value: f64,
    },
}

/// What the ranking knows of the customer.
pub struct Context<'a> {
    /// Their stage, when it may be used (`None` without a basis, or not yet placed).
    pub stage: Option<Stage>,
    /// Their CLV, when it may be used.
    pub clv: Option<f64>,
    /// Whether `purpose` has a basis for them now.
    pub has_basis: &'a dyn Fn(&str) -> bool,
    /// Actions chosen for them before: (name, ms).
    pub history: &'a [(String, i64)],
    /// Now (ms).
    pub now: i64,
}

/// An action that may be chosen, with its expected value.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Ranked<'a> {
    /// The action.
    pub action: &'a Action,
    /// uplift × (CLV or value).
    pub expected_value: f64,
    /// Whether the value came from the customer's CLV.
    pub from_clv: bool,
}

/// The longest look-back any action's cap or cooldown needs (ms), so the caller reads only
/// that much history.
pub fn look_back_ms(catalogue: &[Action]) -> i64 {
    catalogue
        .iter()
        .map(|a| a.cap.map_or(0.0, |c| c.days).max(a.cooldown_days))
        .fold(0.0, f64::max)
        .mul_add(DAY_MS, 0.0) as i64
}

/// Ranks the catalogue for one customer: eligible actions best first (ties by name), and the
/// rest with the reason each was left out.
pub fn rank<'a>(
    catalogue: &'a [Action],
    cx: &Context<'_>,
) -> (Vec<Ranked<'a>>, Vec<(&'a Action, Excluded)>) {
    let mut ok = Vec::new();
    let mut out = Vec::new();
    for a in catalogue {
        match exclusion(a, cx) {
            Some(why) => out.push((a, why)),
            None => {
                let (base, from_clv) = match (a.use_clv, cx.clv) {
                    (true, Some(clv)) => (clv, true),
                    _ => (a.value, false),
                };
                ok.push(Ranked {
                    action: a,
                    expected_value: a.uplift * base,
                    from_clv,
                });
            }
        }
    }
    ok.sort_by(|x, y| {
        y.expected_value
            .total_cmp(&x.expected_value)
            .then(x.action.name.cmp(&y.action.name))
    });
    (ok, out)
}

fn exclusion(a: &Action, cx: &Context<'_>) -> Option<Excluded> {
    if !a.stages.is_empty() && !cx.stage.is_some_and(|s| a.stages.contains(&s)) {
        return Some(Excluded::Stage);
    }
    if let Some(p) = &a.purpose {
        if !(cx.has_basis)(p) {
            return Some(Excluded::NoChannelConsent { purpose: p.clone() });
        }
    }
    let mine = || {
        cx.history
            .iter()
            .filter(|(n, _)| *n == a.name)
            .map(|(_, at)| *at)
    };
    if let Some(cap) = a.cap {
        let since = cx.now - (cap.days * DAY_MS) as i64;
        let count = mine().filter(|&at| at > since).count() as u32;
        if count >= cap.count {
            return Some(Excluded::Capped { count });
        }
    }
    if a.cooldown_days > 0.0 {
        if let Some(last) = mine().max() {
            let until = last + (a.cooldown_days * DAY_MS) as i64;
            if cx.now < until {
                return Some(Excluded::Cooldown { until });
            }
        }
    }
    None
}

/// A retail catalogue: what `consentric.toml` starts from.
pub fn retail_actions() -> Vec<Action> {
    let a = |name: &str,
             description: &str,
             stages: &[Stage],
             channel: &str,
             purpose: Option<&str>,
             uplift: f64,
             value: f64,
             use_clv: bool,
             cap: Option<Cap>,
             cooldown_days: f64| Action {
        name: name.into(),
        description: description.into(),
        stages: stages.to_vec(),
        channel: channel.into(),
        purpose: purpose.map(str::to_owned),
        value,
        uplift,
        use_clv,
        cap,
        cooldown_days,
    };
    let weekly = |count| Some(Cap { count, days: 7.0 });
    vec![
        a(
            "onboarding-guide",
            "A guide to getting the most from your first order.",
            &[Stage::Acquisition, Stage::Onboarding],
            "email",
            Some("marketing.email"),
            0.10,
            20.0,
            false,
            weekly(2),
            2.0,
        ),
        a(
            "cross-sell",
            "Products that go with what you bought.",
            &[Stage::Engagement, Stage::Expansion],
            "email",
            Some("marketing.email"),
            0.04,
            40.0,
            true,
            weekly(1),
            5.0,
        ),
        a(
            "loyalty-reward",
            "A thank-you reward for loyal customers.",
            &[Stage::Retention, Stage::Expansion],
            "email",
            Some("marketing.email"),
            0.05,
            40.0,
            true,
            weekly(1),
            7.0,
        ),
        a(
            "referral-ask",
            "Invite a friend and both get a discount.",
            &[Stage::Advocacy],
            "email",
            Some("marketing.email"),
            0.06,
            30.0,
            false,
            weekly(1),
            14.0,
        ),
        a(
            "win-back-offer",
            "A discount to come back.",
            &[Stage::Churned],
            "email",
            Some("marketing.email"),
            0.08,
            30.0,
            true,
            weekly(1),
            14.0,
        ),
        a(
            "welcome-back",
            "New since your last visit.",
            &[Stage::Reactivated],
            "web",
            None,
            0.05,
            20.0,
            false,
            None,
            1.0,
        ),
        a(
            "homepage-banner",
            "This week's featured products.",
            &[],
            "web",
            None,
            0.01,
            10.0,
            false,
            None,
            0.0,
        ),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cx<'a>(
        stage: Option<Stage>,
        history: &'a [(String, i64)],
        basis: &'a dyn Fn(&str) -> bool,
    ) -> Context<'a> {
        Context {
            stage,
            clv: Some(500.0),
            has_basis: basis,
            history,
            now: 100 * DAY_MS as i64,
        }
    }

    #[test]
    fn suits_the_stage_needs_channel_consent_and_ranks_by_expected_value() {
        let cat = retail_actions();
        let yes = |_: &str| true;
        let (ok, _) = rank(&cat, &cx(Some(Stage::Churned), &[], &yes));
        assert_eq!(ok[0].action.name, "win-back-offer");
        assert!((ok[0].expected_value - 0.08 * 500.0).abs() < 1e-9 && ok[0].from_clv);
        assert_eq!(ok[1].action.name, "homepage-banner");
        let no = |p: &str| p != "marketing.email";
        let (ok, out) = rank(&cat, &cx(Some(Stage::Churned), &[], &no));
        assert!(
            ok.iter().all(|r| r.action.purpose.is_none()),
            "no e-mail without its consent"
        );
        assert!(out.iter().any(|(a, why)| a.name == "win-back-offer"
            && *why
                == Excluded::NoChannelConsent {
                    purpose: "marketing.email".into()
                }));
        // Without a usable stage only stage-free actions remain.
        let (ok, _) = rank(&cat, &cx(None, &[], &yes));
        assert_eq!(
            ok.iter()
                .map(|r| r.action.name.as_str())
                .collect::<Vec<_>>(),
            ["homepage-banner"]
        );
    }

    #[test]
    fn caps_and_cooldowns_hold() {
        let cat = retail_actions();
        let yes = |_: &str| true;
        let day = DAY_MS as i64;
        let now = 100 * day;
        // onboarding-guide: 2 a week, 2-day cooldown.
        let h = vec![("onboarding-guide".to_owned(), now - day)];
        let (_, out) = rank(&cat, &cx(Some(Stage::Onboarding), &h, &yes));
        assert!(out
            .iter()
            .any(|(a, w)| a.name == "onboarding-guide"
                && *w == Excluded::Cooldown { until: now + day }));
        let h = vec![
            ("onboarding-guide".to_owned(), now - 6 * day),
            ("onboarding-guide".to_owned(), now - 3 * day),
        ];
        let (_, out) = rank(&cat, &cx(Some(Stage::Onboarding), &h, &yes));
        assert!(out
            .iter()
            .any(|(a, w)| a.name == "onboarding-guide" && *w == Excluded::Capped { count: 2 }));
        let h = vec![
            ("onboarding-guide".to_owned(), now - 8 * day),
            ("onboarding-guide".to_owned(), now - 3 * day),
        ];
        let (ok, _) = rank(&cat, &cx(Some(Stage::Onboarding), &h, &yes));
        assert_eq!(ok[0].action.name, "onboarding-guide");
        assert_eq!(look_back_ms(&cat), 14 * day);
    }
}
