//! A line of a CDNOW or MovieLens import: never a panic (an import goes on past a bad line).
#![no_main]

use std::collections::HashSet;

use consentric_model::import_lines::{cdnow_line, movielens_line};
use consentric_model::Envelope;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Some((&which, rest)) = data.split_first() else {
        return;
    };
    let Ok(line) = std::str::from_utf8(rest) else {
        return;
    };
    let env = Envelope::new(
        chrono::DateTime::UNIX_EPOCH + chrono::TimeDelta::days(20_000),
        "f",
    );
    let shift = chrono::TimeDelta::days(i64::from(which) * 1000 - 100_000);
    let consent = vec!["analytics".to_owned()];
    let mut consented = HashSet::new();
    let line_no = u64::from(which % 3);
    let _ = if which % 2 == 0 {
        cdnow_line(line, line_no, shift, &env, &consent, &mut consented)
    } else {
        movielens_line(line, line_no, shift, &env, &consent, &mut consented)
    };
});
