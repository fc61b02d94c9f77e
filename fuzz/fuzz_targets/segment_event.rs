//! A single Segment call (`/v1/track` and friends): never a panic; what parses serialises to
//! JSON that parses again as the same call.
#![no_main]

use consentric_model::{parse_event, parse_typed_event, CallType, Envelope};
use libfuzzer_sys::fuzz_target;

const CALLS: [CallType; 6] = [
    CallType::Identify,
    CallType::Track,
    CallType::Page,
    CallType::Screen,
    CallType::Group,
    CallType::Alias,
];

fuzz_target!(|data: &[u8]| {
    let Some((&which, body)) = data.split_first() else {
        return;
    };
    let call = CALLS[usize::from(which) % CALLS.len()];
    let env = Envelope::new(
        chrono::DateTime::UNIX_EPOCH + chrono::TimeDelta::days(20_000),
        "f",
    );
    if let Ok(batch) = parse_event(body, call, &env) {
        for event in batch.events {
            let again = serde_json::to_vec(&event.to_json()).expect("an event serialises");
            let reparsed = parse_typed_event(&again, &env).expect("a stored event parses again");
            assert_eq!(reparsed.events[0].call().call_type(), call);
        }
    }
});
