//! The privacy parts of `consentric.toml` — `[[purposes]]`, `[[schema]]`, `[consent]` — as
//! `serve` checks them at start: never a panic; a policy that is accepted then reads consent
//! signals from an event without one.
#![no_main]

use consentric_model::{parse_typed_event, Envelope};
use consentric_policy::{ConsentSettings, FieldRule, PolicySet, Purpose};
use libfuzzer_sys::fuzz_target;
use serde::Deserialize;

#[derive(Deserialize)]
struct Config {
    purposes: Option<Vec<Purpose>>,
    #[serde(default)]
    schema: Vec<FieldRule>,
    #[serde(default)]
    consent: ConsentSettings,
}

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let Ok(config) = toml::from_str::<Config>(text) else {
        return;
    };
    let Ok(policy) = PolicySet::new(config.purposes, &config.schema, &config.consent) else {
        return;
    };
    let env = Envelope::new(chrono::DateTime::UNIX_EPOCH, "f");
    let event = br#"{"type":"track","userId":"u","event":"E","context":{"consent":{"categoryPreferences":{"analytics":true}}}}"#;
    if let Ok(batch) = parse_typed_event(event, &env) {
        for e in &batch.events {
            let _ = policy.signals(e, true);
            let _ = policy.prepare(e.clone(), &[]);
        }
    }
});
