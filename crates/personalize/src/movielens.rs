//! MovieLens as RecBole ships it (`ml-100k.inter`: a header line, then tab-separated
//! `user_id item_id rating timestamp`). Parsing only: the CLI fetches and reads the file.

use crate::interactions::{Interaction, Vocabulary};

/// Users, items and their interactions, as dense indices.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Dataset {
    /// User ids, by index.
    pub users: Vocabulary,
    /// Item ids, by index.
    pub items: Vocabulary,
    /// Every interaction, in file order (strength = rating, time in ms).
    pub interactions: Vec<Interaction>,
}

/// Why a file is not MovieLens.
#[derive(Debug, thiserror::Error, PartialEq)]
#[error("line {line}: {message}")]
pub struct DatasetError {
    /// 1-based line number.
    pub line: usize,
    /// What is wrong with it.
    pub message: String,
}

/// Parses a RecBole `.inter` file (the header line is recognised by its `:token` types).
///
/// # Errors
/// A [`DatasetError`] naming the first line with too few fields or a bad number.
pub fn parse_inter(text: &str) -> Result<Dataset, DatasetError> {
    let mut d = Dataset::default();
    for (n, line) in text.lines().enumerate() {
        if line.trim().is_empty() || (n == 0 && line.contains(":token")) {
            continue;
        }
        let bad = |message: &str| DatasetError {
            line: n + 1,
            message: message.to_owned(),
        };
        let f: Vec<&str> = line.split('\t').collect();
        let [user, item, rating, ts] = f[..] else {
            return Err(bad("expected 4 tab-separated fields"));
        };
        let weight: f32 = rating.trim().parse().map_err(|_| bad("bad rating"))?;
        let secs: f64 = ts.trim().parse().map_err(|_| bad("bad timestamp"))?;
        let user = d.users.intern(user.trim());
        let item = d.items.intern(item.trim());
        d.interactions.push(Interaction {
            user,
            item,
            weight,
            at: (secs * 1000.0) as i64,
        });
    }
    Ok(d)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_recbole_inter_and_names_bad_lines() {
        let text = "user_id:token\titem_id:token\trating:float\ttimestamp:float\n\
                    196\t242\t3\t881250949\n186\t302\t3\t891717742\n196\t302\t5\t881250950\n";
        let d = parse_inter(text).expect("parses");
        assert_eq!(
            (d.users.len(), d.items.len(), d.interactions.len()),
            (2, 2, 3)
        );
        assert_eq!(d.interactions[2].user, 0);
        assert_eq!(d.interactions[2].item, 1);
        assert_eq!(d.interactions[2].at, 881_250_950_000);
        let err = parse_inter("1\t2\tx\t3\n").expect_err("bad rating");
        assert_eq!(
            err,
            DatasetError {
                line: 1,
                message: "bad rating".into()
            }
        );
    }
}
