//! Why a decision came out as it did, as data. A decision collects these while it is made; they
//! are rendered to words a customer could read in one place ([`Reason::text`],
//! [`DataUsed::text`]), so every explanation says the same thing the same way, and a test can
//! ask what was said without matching sentences.

use consentric_model::Stage;

/// One reason for the items or the action.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reason {
    /// Nothing about the customer was used: `purpose` has no basis for them.
    NoBasis {
        /// The personalisation purpose.
        purpose: String,
    },
    /// A visitor with no profile: nothing is known about them.
    Stranger,
    /// The customer's lifecycle stage was used.
    Stage(Stage),
    /// No recommender has been trained yet.
    NotTrained,
    /// The items follow from one the customer showed interest in.
    BecauseOf {
        /// The item of their history.
        seen: String,
        /// The first item it led to.
        suggested: String,
    },
    /// Nothing of the customer's history is known to the model: popular items instead.
    NoHistory,
    /// The action chosen, and why it fits.
    Action {
        /// Its name in the catalogue.
        name: String,
        /// Whether it suits the customer's stage (otherwise it suits every customer).
        for_stage: bool,
        /// The purpose its channel needed, which the customer agreed to.
        purpose: Option<String>,
    },
}

impl Reason {
    /// The reason in a customer's words.
    pub fn text(&self) -> String {
        match self {
            Reason::NoBasis { purpose } => format!(
                "You have not agreed to {purpose}, so nothing about you was used: these are our most popular items, and only actions that suit every customer."
            ),
            Reason::Stranger => "We do not know you yet, so these are our most popular items, and only actions that suit every customer.".into(),
            Reason::Stage(s) => format!("You are in the {s} stage."),
            Reason::NotTrained => "No recommender has been trained yet.".into(),
            Reason::BecauseOf { seen, suggested } => format!(
                "Because you showed interest in {seen}, we suggest {suggested} and similar items."
            ),
            Reason::NoHistory => "We know no products of yours yet, so these are popular items.".into(),
            Reason::Action { name, for_stage, purpose } => {
                let fits = if *for_stage { "it suits your stage" } else { "it suits every customer" };
                match purpose {
                    Some(p) => format!("{name}: {fits}, and you agreed to {p}."),
                    None => format!("{name}: {fits}."),
                }
            }
        }
    }
}

/// One kind of the customer's data a decision used.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DataUsed {
    /// Their item interactions (how many items).
    Interactions(usize),
    /// Their lifecycle stage, kept under the decision's own purpose.
    Stage,
    /// Their lifecycle stage, kept under another purpose that has a basis.
    StageKeptFor(String),
    /// Their purchases, for their value.
    Purchases,
    /// The actions chosen for them before (frequency caps).
    ActionsTaken,
    /// Their consent choices.
    Consent,
}

impl DataUsed {
    /// What was used, in a customer's words.
    pub fn text(&self) -> String {
        match self {
            DataUsed::Interactions(n) => {
                format!("the products you viewed, added or bought ({n} items)")
            }
            DataUsed::Stage => "your lifecycle stage".into(),
            DataUsed::StageKeptFor(p) => format!("your lifecycle stage (kept for {p})"),
            DataUsed::Purchases => "your purchase history, to estimate your value to us".into(),
            DataUsed::ActionsTaken => {
                "the actions we chose for you before (to respect frequency caps)".into()
            }
            DataUsed::Consent => "your consent choices".into(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_action_says_why_it_fits_and_which_consent_it_needed() {
        let a = |for_stage, purpose: Option<&str>| Reason::Action {
            name: "win-back-offer".into(),
            for_stage,
            purpose: purpose.map(str::to_owned),
        };
        assert_eq!(
            a(true, Some("marketing.email")).text(),
            "win-back-offer: it suits your stage, and you agreed to marketing.email."
        );
        assert_eq!(
            a(false, None).text(),
            "win-back-offer: it suits every customer."
        );
        assert_eq!(
            Reason::Stage(Stage::Churned).text(),
            "You are in the churned stage."
        );
        assert!(DataUsed::Interactions(3).text().contains("(3 items)"));
    }
}
