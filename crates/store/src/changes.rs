//! Changes one process announces to every other process on the same PostgreSQL, so that what
//! each keeps in memory (unwrapped data keys, loaded models) follows the database.
//!
//! An announcement is a `pg_notify` inside the transaction that makes the change: PostgreSQL
//! delivers it when, and only if, that transaction commits. A payload names ids and kinds of
//! change, never personal data. SQLite is one process's file: announcing there does nothing,
//! and there is nothing to listen to.

/// The channel every node listens on.
pub(crate) const CHANNEL: &str = "consentric_changes";

/// What another node may have to drop or reload.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Change {
    /// A customer was erased: forget the data keys named (the profile's and its requests'),
    /// and any message to the contacts whose keyed hashes are given.
    Erased {
        /// Data-key ids to forget.
        keys: Vec<String>,
        /// Keyed hashes of contact addresses (`Vault::keyed_hash("outbox", …)`).
        contacts: Vec<String>,
    },
    /// Recommenders were trained: load them.
    Recommenders,
    /// Lifecycle models were fitted: load them.
    Scorer,
    /// A segment was defined: ingest must note whom it touches.
    Segments,
}

impl Change {
    /// The notification's payload: a word, then space-separated fields (ids and hex hashes
    /// hold no spaces; contacts follow a `|`).
    pub fn encode(&self) -> String {
        match self {
            Change::Erased { keys, contacts } => {
                format!("erased {}|{}", keys.join(" "), contacts.join(" "))
            }
            Change::Recommenders => "recommenders".into(),
            Change::Scorer => "scorer".into(),
            Change::Segments => "segments".into(),
        }
    }

    /// The change a payload names; `None` for one this version does not know (a newer node's).
    pub fn decode(payload: &str) -> Option<Change> {
        let (word, rest) = payload.split_once(' ').unwrap_or((payload, ""));
        let words = |s: &str| -> Vec<String> { s.split_whitespace().map(str::to_owned).collect() };
        match word {
            "erased" => {
                let (keys, contacts) = rest.split_once('|').unwrap_or((rest, ""));
                Some(Change::Erased {
                    keys: words(keys),
                    contacts: words(contacts),
                })
            }
            "recommenders" => Some(Change::Recommenders),
            "scorer" => Some(Change::Scorer),
            "segments" => Some(Change::Segments),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn payloads_round_trip() {
        for change in [
            Change::Erased {
                keys: vec!["prof_1".into(), "dsr_2".into()],
                contacts: vec!["ab12".into()],
            },
            Change::Erased {
                keys: vec!["prof_1".into()],
                contacts: vec![],
            },
            Change::Recommenders,
            Change::Scorer,
            Change::Segments,
        ] {
            assert_eq!(Change::decode(&change.encode()), Some(change));
        }
        assert_eq!(Change::decode("from-a-newer-node x"), None);
    }
}
